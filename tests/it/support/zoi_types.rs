//! Test-side copies of the Zoi 1.29.4 structs our YAML must deserialise
//! into (`zoi_core::types::{Config, Registry, RepoConfig, …}`), written from
//! Zoi's source independently of `src/zoi/`, so that a mistake there cannot
//! hide itself. `LegacyConfig` adds what Zoi ≤ 1.25 required.

#![allow(dead_code)]

use std::collections::HashMap;

use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
pub struct Registry {
    #[serde(default)]
    pub handle: String,
    #[serde(default)]
    pub url: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub advisory_prefix: Option<String>,
    pub authorities: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
pub struct SignatureEnforcementPolicy {
    #[serde(default)]
    pub enable: bool,
    #[serde(default)]
    pub trusted_keys: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct Policy {
    #[serde(default)]
    pub repos_unoverridable: bool,
    #[serde(default)]
    pub default_registry_unoverridable: bool,
    #[serde(default)]
    pub added_registries_unoverridable: bool,
    #[serde(default)]
    pub cache_mirrors_unoverridable: bool,
    #[serde(default)]
    pub pkg_dirs_unoverridable: bool,
    #[serde(default)]
    pub offline_mode_unoverridable: bool,
    #[serde(default)]
    pub allow_deny_lists_unoverridable: bool,
    #[serde(default)]
    pub signature_enforcement_unoverridable: bool,
    pub allowed_licenses: Option<Vec<String>>,
    pub denied_licenses: Option<Vec<String>>,
    pub allowed_packages: Option<Vec<String>>,
    pub denied_packages: Option<Vec<String>>,
    pub allowed_repos: Option<Vec<String>>,
    pub denied_repos: Option<Vec<String>>,
    pub signature_enforcement: Option<SignatureEnforcementPolicy>,
}

#[derive(Debug, Deserialize)]
pub struct RemotePolicyConfig {
    #[serde(default)]
    pub url: String,
}

fn yes() -> bool {
    true
}

/// `zoi_core::types::Config` (1.29.4).
#[derive(Debug, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub repos: Vec<String>,
    #[serde(default)]
    pub package_managers: Option<Vec<String>>,
    #[serde(default)]
    pub native_package_manager: Option<String>,
    #[serde(default)]
    pub telemetry_enabled: bool,
    #[serde(default)]
    pub audit_log_enabled: bool,
    #[serde(default)]
    pub registry: Option<String>,
    #[serde(default)]
    pub default_registry: Option<Registry>,
    #[serde(default)]
    pub added_registries: Vec<Registry>,
    #[serde(default)]
    pub git_repos: Vec<String>,
    #[serde(default = "yes")]
    pub rollback_enabled: bool,
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub remote_policy: Option<RemotePolicyConfig>,
    #[serde(default)]
    pub jobs: Option<usize>,
    #[serde(default)]
    pub protect_db: bool,
    #[serde(default)]
    pub max_resolution_depth: Option<u8>,
    #[serde(default)]
    pub offline_mode: bool,
    #[serde(default)]
    pub pkg_dirs: Vec<String>,
    #[serde(default)]
    pub cache_mirrors: Vec<String>,
    #[serde(default)]
    pub versions: HashMap<String, String>,
    #[serde(default)]
    pub system_generations_limit: u32,
    #[serde(default)]
    pub max_delta_steps: u32,
    #[serde(default)]
    pub kernel_retention: u32,
}

/// What Zoi ≤ 1.25 required of every layer: the four booleans.
#[derive(Debug, Deserialize)]
pub struct LegacyConfig {
    pub telemetry_enabled: bool,
    pub audit_log_enabled: bool,
    pub protect_db: bool,
    pub offline_mode: bool,
}

#[derive(Debug, Deserialize)]
pub struct GitLink {
    #[serde(rename = "type")]
    pub link_type: String,
    pub url: String,
}

#[derive(Debug, Deserialize)]
pub struct PkgLink {
    #[serde(rename = "type")]
    pub link_type: String,
    pub url: String,
    pub pgp: Option<String>,
    pub hash: Option<String>,
    pub size: Option<String>,
    pub files: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PgpKey {
    pub name: String,
    pub key: String,
}

#[derive(Debug, Deserialize)]
pub struct RepoEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub repo_type: String,
    pub active: bool,
}

/// `zoi_core::types::RepoConfig` (1.29.4).
#[derive(Debug, Deserialize)]
pub struct RepoConfig {
    #[serde(default)]
    pub version: Option<String>,
    pub name: String,
    pub description: String,
    pub advisory_prefix: Option<String>,
    #[serde(default)]
    pub git: Vec<GitLink>,
    #[serde(default)]
    pub pkg: Vec<PkgLink>,
    #[serde(default)]
    pub db: Option<String>,
    #[serde(default)]
    pub pgp: Vec<PgpKey>,
    #[serde(default)]
    pub repos: Vec<RepoEntry>,
}
