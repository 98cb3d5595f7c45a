//! `mirror.toml`, the one file that describes a company's mirror.
//!
//! [`load`] reads and validates it and reports *every* problem at once with
//! file, line and column: IT fixes a spec in one round trip instead of one
//! error per run. The validated [`Spec`] holds plain values with all defaults
//! resolved, so nothing downstream has to know about TOML or defaults.
//!
//! One idea per file: `reader` is the span-aware schema reader,
//! `sections/` holds one reader per table (`[extension]`, `[registry]`,
//! `[binaries]`, `[binaries.storage]`, `[client]`, `[system]`, `[setup]`),
//! `upstream_input` finds upstream's repo.yaml, `urls` the URL rules,
//! `validate` the checks across sections, and `load` runs them in order.

pub mod init;
mod load;
mod reader;
mod sections;
pub mod template;
mod upstream_input;
mod urls;
mod validate;

use std::path::PathBuf;

pub use load::{load, load_str};

/// Where the upstream `repo.yaml` a spec is read against comes from.
#[derive(Debug, Clone, Default)]
pub enum UpstreamInput {
    /// `registry.upstream_repo_yaml` when the spec sets it, else the
    /// built-in description of Zoidberg.
    #[default]
    Auto,
    /// A file given on the command line (`--upstream-repo-yaml`).
    File(PathBuf),
    /// Bytes read elsewhere (the `db sync` cache, an upstream commit),
    /// with a phrase saying where from.
    Bytes { origin: String, bytes: Vec<u8> },
}

use crate::zoi::archive::ArchiveKind;
use crate::zoi::config::SignatureEnforcement;
use crate::zoi::platform::Platform;
use crate::zoi::repo::{PgpKey, RepoEntry, RepoYaml};

/// The default layout on the binary host, from the seed guide.
pub const DEFAULT_LAYOUT: &str = crate::zoi::layout::DEFAULT;
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
    /// The upstream `repo.yaml` the mirror's is derived from.
    pub upstream: RepoYaml,
    /// Where `upstream` came from.
    pub upstream_origin: UpstreamOrigin,
}

/// Where a spec's upstream `repo.yaml` came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamOrigin {
    /// A file (`--upstream-repo-yaml` or `registry.upstream_repo_yaml`).
    File(PathBuf),
    /// Bytes from elsewhere, described in words.
    Given(String),
    /// The built-in description of Zoidberg.
    BuiltIn,
}

impl std::fmt::Display for UpstreamOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamOrigin::File(p) => write!(f, "file {}", p.display()),
            UpstreamOrigin::Given(s) => f.write_str(s),
            UpstreamOrigin::BuiltIn => f.write_str(crate::zoi::upstream::ORIGIN),
        }
    }
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

#[derive(Debug, Clone)]
pub struct Binaries {
    /// Base URL, without a trailing slash.
    pub url: String,
    pub layout: String,
    pub format: ArchiveKind,
    /// Whether detached `.sig` files are published next to the archives.
    pub signatures: bool,
    /// Fallback hosts with the same tree.
    pub mirrors: Vec<String>,
    pub platforms: Vec<Platform>,
    /// Folder under `url` holding the keys (`<keys_dir>/<name>.asc`).
    pub keys_dir: String,
    /// `binaries.trust`: names (or fingerprints) of the keys whose
    /// signatures clients accept on archives; `None` = upstream's keys.
    pub trust: Option<Vec<String>>,
    /// `binaries.sign_key`: GnuPG key `bin sync` re-signs archives with.
    pub sign_key: Option<String>,
    /// `binaries.allow_unsigned`: place archives without verifying
    /// upstream's signatures (for registries that publish no keys).
    pub allow_unsigned: bool,
    /// `[binaries.storage]`: where the tree lives when it is object
    /// storage.
    pub storage: Storage,
}

/// `[binaries.storage]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Storage {
    /// `url = "s3://bucket/prefix"`: the default `bin sync --dest`.
    pub url: Option<String>,
    pub s3: crate::storage::S3Settings,
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

    /// The folder template of source bundles: the layout without the
    /// segments that name a platform (a `.zsa` serves every platform, and
    /// Zoi fills `{os}`/`{arch}` with the client's own).
    pub fn source_layout(&self) -> String {
        self.layout
            .split('/')
            .filter(|seg| {
                !["{os}", "{arch}", "{platform}"]
                    .iter()
                    .any(|p| seg.contains(p))
            })
            .filter(|seg| !seg.is_empty())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The source bundle URL template on `base`.
    pub fn source_template(&self, base: &str) -> String {
        let layout = self.source_layout();
        let dir = if layout.is_empty() {
            base.trim_end_matches('/').to_string()
        } else {
            format!("{}/{layout}", base.trim_end_matches('/'))
        };
        format!("{dir}/{{name}}-{{version}}.zsa")
    }

    /// The URL of a key on the binary host.
    pub fn key_url(&self, name: &str) -> String {
        format!(
            "{}/{}/{name}.asc",
            self.url,
            self.keys_dir.trim_matches('/')
        )
    }

    /// Where a key lives under the binary host's root folder.
    pub fn key_path(&self, name: &str) -> String {
        format!("{}/{name}.asc", self.keys_dir.trim_matches('/'))
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

    /// The names of the keys upstream's repo.yaml declares (`pgp:`): the
    /// keys that sign upstream's archives.
    pub fn upstream_keys(&self) -> Vec<String> {
        self.upstream.pgp.iter().map(|k| k.name.clone()).collect()
    }

    /// Keys whose signatures clients accept on archives: `binaries.trust`,
    /// else upstream's keys.
    pub fn archive_trust(&self) -> Vec<String> {
        self.binaries
            .trust
            .clone()
            .unwrap_or_else(|| self.upstream_keys())
    }

    /// Whether clients verify signatures at all: the registry entry lists
    /// authorities, or the system policy enforces signatures.
    pub fn clients_verify(&self) -> bool {
        !self.registry.authorities.is_empty() || self.enforced_keys().is_some()
    }

    /// `system.signature_enforcement.trusted_keys` when enforcement is on:
    /// then Zoi verifies archives against exactly these (they take
    /// precedence over authorities).
    pub fn enforced_keys(&self) -> Option<&[String]> {
        self.system
            .signature_enforcement
            .as_ref()
            .filter(|s| s.enable)
            .map(|s| s.trusted_keys.as_slice())
    }

    /// The registry entry's `authorities` clients get: the company's own
    /// (for the overlay HEAD) and the keys that sign the archives. Empty
    /// when the spec sets none (clients then verify nothing).
    pub fn client_authorities(&self) -> Vec<String> {
        if self.registry.authorities.is_empty() {
            return Vec::new();
        }
        let mut out = self.registry.authorities.clone();
        for k in self.archive_trust() {
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }

    /// The keys the extension delivers: `[[client.pgp]]`, plus the
    /// company's copy of each upstream key clients must trust.
    pub fn delivered_keys(&self) -> Vec<ClientKey> {
        let mut out = self.client.pgp.clone();
        if !self.clients_verify() {
            return out;
        }
        let mut wanted = self.client_authorities();
        wanted.extend(self.enforced_keys().unwrap_or_default().iter().cloned());
        for name in wanted {
            // Zoi's own built-in keys are on every client already (and
            // rewritten at every start): delivering them would only make
            // the extension collide with them.
            if self.upstream.pgp.iter().any(|k| k.name == name)
                && !crate::zoi::pgp::BUILTIN_KEYS.contains(&name.as_str())
                && !out.iter().any(|k| k.name == name)
            {
                out.push(ClientKey {
                    source: KeySource::Url(self.binaries.key_url(&name)),
                    name,
                });
            }
        }
        out
    }
}
