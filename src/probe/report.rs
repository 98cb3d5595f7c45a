//! What `check` reports: one [`UrlCheck`] per URL, grouped by registry,
//! key, host and package target, with the counts. Each field is part of
//! the JSON contract.

use serde::Serialize;

use crate::net::problem::{Kind, Problem, ProblemOut};
use crate::zoi::platform::Platform;

string_enum! {
    /// What a checked URL is.
    pub enum CheckKind {
        /// A registry's git URL (reachable, a git repository, HEAD).
        Git = "git",
        /// A registry as Zoi clones it (`--client` on a machine that has not
        /// synced).
        Registry = "registry",
        /// The registry's `repo.yaml` at HEAD.
        RepoYaml = "repo_yaml",
        /// The registry HEAD's signature by an authority.
        Signature = "signature",
        /// A key clients verify with.
        Key = "key",
        /// A binary host.
        Host = "host",
        /// A package archive.
        Archive = "archive",
        /// The archive's `.hash`.
        Hash = "hash",
        /// The archive's `.size`.
        Size = "size",
        /// The archive's `.files`.
        Files = "files",
        /// The archive's `.sig`.
        Pgp = "pgp",
        /// The archive downloaded and read in full (`--deep`).
        Deep = "deep",
    }
}

/// One URL checked.
#[derive(Debug, Clone, Serialize)]
pub struct UrlCheck {
    pub kind: CheckKind,
    /// Shown with credentials redacted.
    pub url: String,
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ProblemOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl UrlCheck {
    pub(crate) fn new(kind: CheckKind, url: &str) -> Self {
        UrlCheck {
            kind,
            url: crate::net::redact::redact(url),
            ok: true,
            status: None,
            latency_ms: 0.0,
            attempts: 0,
            error: None,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn fail(&mut self, p: Problem) {
        self.ok = false;
        self.error = Some(p.into());
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RegistryCheck {
    pub role: String,
    pub url: String,
    pub ok: bool,
    pub checks: Vec<UrlCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub package: String,
    pub version: String,
    pub platform: Platform,
    pub ok: bool,
    pub urls: Vec<UrlCheck>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub urls: usize,
    pub ok: usize,
    pub failed: usize,
    pub warnings: usize,
    pub targets: usize,
    pub targets_failed: usize,
    pub fallbacks_failed: usize,
    /// Failures by kind.
    pub by_kind: std::collections::BTreeMap<Kind, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How the check was planned (e.g. a machine that never synced).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub registry: Vec<RegistryCheck>,
    /// The keys clients verify with (only when they verify anything).
    pub keys: Vec<UrlCheck>,
    /// Binary hosts answering at all.
    pub hosts: Vec<UrlCheck>,
    pub packages: Vec<TargetCheck>,
    /// `cache_mirrors` candidates for the archives, reported apart: Zoi
    /// tries them only when the main URL fails.
    pub fallbacks: Vec<UrlCheck>,
    pub counts: Counts,
    pub elapsed_ms: f64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.counts.failed == 0
    }
}
