//! `mirror.toml`, the one file that describes a company's mirror.
//!
//! [`load`] reads and validates it and reports *every* problem at once with
//! file, line and column: IT fixes a spec in one round trip instead of one
//! error per run. The validated [`Spec`] holds plain values with all defaults
//! resolved, so nothing downstream has to know about TOML or defaults.

mod load;
pub mod template;

use std::path::PathBuf;

pub use load::{load, load_str};

use crate::zoi::config::SignatureEnforcement;
use crate::zoi::platform::Platform;
use crate::zoi::repo::{PgpKey, RepoEntry, RepoYaml};

/// The default layout on the binary host, from the seed guide.
pub const DEFAULT_LAYOUT: &str = "{repo}/{os}/{arch}/{version}";
pub const DEFAULT_BRANCH: &str = "main";
pub const DEFAULT_HANDLE: &str = "zoidberg";

#[derive(Debug, Clone)]
pub struct Spec {
    /// The file it was read from (relative paths in the spec are relative to
    /// its directory).
    pub file: PathBuf,
    pub extension: Extension,
    pub registry: Registry,
    pub binaries: Binaries,
    pub client: Client,
    pub system: System,
    /// The one-command setup scripts (when `[setup]` is present).
    pub setup: Option<Setup>,
    /// The upstream `repo.yaml` the mirror's is built from (the file named
    /// by `registry.upstream_repo_yaml`/`--upstream-repo-yaml`, or the
    /// built-in Zoidberg description).
    pub upstream: RepoYaml,
}

#[derive(Debug, Clone)]
pub struct Extension {
    pub name: String,
    pub version: semver::Version,
    pub description: String,
    pub license: String,
    /// The registry tier the extension is published in (its `repo`).
    pub tier: String,
    pub maintainer_name: String,
    pub maintainer_email: String,
}

#[derive(Debug, Clone)]
pub struct Registry {
    /// The internal git URL clients sync from.
    pub url: String,
    pub mirrors: Vec<String>,
    pub upstream: String,
    pub branch: String,
    pub handle: String,
    pub authorities: Vec<String>,
    /// repo.yaml `name`, `description`, `advisory_prefix` (defaults from upstream).
    pub name: String,
    pub description: String,
    pub advisory_prefix: Option<String>,
    /// The key `db sync` signs the overlay commit with.
    pub signing_key: Option<String>,
    /// Tiers the company adds to upstream's.
    pub tiers: Vec<RepoEntry>,
    /// Keys added to repo.yaml's `pgp` list.
    pub keys: Vec<PgpKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `.zpa`, Zoi ≥ 1.23.
    Zpa,
    /// `.pkg.tar.zst`, the seed guide's legacy naming (Zoi < 1.23).
    PkgTarZst,
}

impl ArchiveFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ArchiveFormat::Zpa => "zpa",
            ArchiveFormat::PkgTarZst => "pkg.tar.zst",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Binaries {
    /// Base URL, without a trailing slash.
    pub url: String,
    pub layout: String,
    pub format: ArchiveFormat,
    /// Whether detached `.sig` files are published next to the archives.
    pub signatures: bool,
    /// Fallback hosts with the same tree.
    pub mirrors: Vec<String>,
    pub platforms: Vec<Platform>,
}

impl Binaries {
    /// The directory template of an archive on a host with base URL `base`.
    pub fn dir_template(&self, base: &str) -> String {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            self.layout.trim_matches('/')
        )
    }

    /// The full archive URL template on `base`.
    pub fn archive_template(&self, base: &str) -> String {
        format!(
            "{}/{{name}}-{{version}}-{{platform}}.{}",
            self.dir_template(base),
            self.format.extension()
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Url(String),
    Fingerprint(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey {
    pub name: String,
    pub source: KeySource,
}

impl ClientKey {
    /// The `key` value of Zoi's `pgp` change (a URL or a fingerprint).
    pub fn zoi_key(&self) -> &str {
        match &self.source {
            KeySource::Url(u) | KeySource::Fingerprint(u) => u,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    /// Tiers written explicitly into `repos` (never empty after loading).
    pub tiers: Vec<String>,
    /// Tiers to add with Zoi's `repo-add` change (explicit opt-in).
    pub repo_add: Vec<String>,
    pub cache_mirrors: Vec<String>,
    pub pkg_dirs: Vec<String>,
    pub offline: Option<bool>,
    pub registries: Vec<String>,
    pub git_repos: Vec<String>,
    pub pgp: Vec<ClientKey>,
}

#[derive(Debug, Clone, Default)]
pub struct System {
    pub lock: Vec<String>,
    pub allowed_packages: Option<Vec<String>>,
    pub denied_packages: Option<Vec<String>>,
    pub allowed_repos: Option<Vec<String>>,
    pub denied_repos: Option<Vec<String>>,
    pub allowed_licenses: Option<Vec<String>>,
    pub denied_licenses: Option<Vec<String>>,
    pub signature_enforcement: Option<SignatureEnforcement>,
}

/// `[setup]`: where the bundle is published and which `zoi-mirror`
/// binaries the setup scripts may download.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Base URL the bundle directory `<name>-<version>/` is published under.
    pub url: String,
    /// `zoi-mirror` executables to publish, per platform (paths resolved
    /// against the spec's directory).
    pub tools: std::collections::BTreeMap<Platform, PathBuf>,
}

impl Setup {
    /// The bundle's own URL, with a trailing slash.
    pub fn bundle_url(&self, dir_name: &str) -> String {
        format!("{}/{dir_name}/", self.url.trim_end_matches('/'))
    }
}

impl Spec {
    /// The directory name of this spec's bundle: `<name>-<version>`.
    pub fn bundle_dir_name(&self) -> String {
        format!("{}-{}", self.extension.name, self.extension.version)
    }
}
