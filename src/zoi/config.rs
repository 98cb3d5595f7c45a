//! Zoi's `config.yaml` layers: the types, exactly as Zoi 1.29.4 serialises
//! them, and the merge Zoi performs across the system, user and project
//! layers.
//!
//! The structs mirror Zoi's own field names, order, defaults and
//! `skip_serializing_if` rules on purpose: a file we write then looks exactly
//! like a file Zoi writes (compare `fixtures/zoi-built/config.after-extension-add.yaml`),
//! and a file we *read* fails to parse in exactly the cases where Zoi would
//! silently throw the whole layer away. Both properties are what the rest of
//! the tool relies on to tell the user the truth about their machine.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

/// One registry entry (`default_registry`, `added_registries[]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Registry {
    #[serde(default)]
    pub handle: String,
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "no_authorities")]
    pub authorities: Option<Vec<String>>,
}

fn no_authorities(a: &Option<Vec<String>>) -> bool {
    a.as_ref().is_none_or(Vec::is_empty)
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RemotePolicyConfig {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub signature_url: String,
    #[serde(default)]
    pub trusted_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SignatureEnforcement {
    #[serde(default)]
    pub enable: bool,
    #[serde(default)]
    pub trusted_keys: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `policy:` — the `*_unoverridable` locks count only in the system layer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default, skip_serializing_if = "is_false")]
    pub repos_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub telemetry_enabled_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub audit_log_enabled_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub rollback_enabled_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub default_registry_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub added_registries_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub git_repos_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_deny_lists_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub signature_enforcement_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect_db_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub max_resolution_depth_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub max_delta_steps_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub kernel_retention_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub offline_mode_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub pkg_dirs_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub cache_mirrors_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub jobs_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub advisory_enforcement_unoverridable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub system_generations_limit_unoverridable: bool,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_licenses: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_licenses: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_packages: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_packages: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_repos: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_repos: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_enforcement: Option<SignatureEnforcement>,
}

/// The settings a system policy can lock (`<name>_unoverridable`).
pub const LOCKS: [&str; 19] = [
    "repos",
    "default_registry",
    "added_registries",
    "git_repos",
    "telemetry_enabled",
    "audit_log_enabled",
    "rollback_enabled",
    "protect_db",
    "jobs",
    "advisory_enforcement",
    "system_generations_limit",
    "max_resolution_depth",
    "offline_mode",
    "pkg_dirs",
    "cache_mirrors",
    "allow_deny_lists",
    "signature_enforcement",
    "max_delta_steps",
    "kernel_retention",
];

impl Policy {
    /// Mutable access to the lock flag named `name` (one of [`LOCKS`]).
    pub fn lock_mut(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "repos" => &mut self.repos_unoverridable,
            "default_registry" => &mut self.default_registry_unoverridable,
            "added_registries" => &mut self.added_registries_unoverridable,
            "git_repos" => &mut self.git_repos_unoverridable,
            "telemetry_enabled" => &mut self.telemetry_enabled_unoverridable,
            "audit_log_enabled" => &mut self.audit_log_enabled_unoverridable,
            "rollback_enabled" => &mut self.rollback_enabled_unoverridable,
            "protect_db" => &mut self.protect_db_unoverridable,
            "jobs" => &mut self.jobs_unoverridable,
            "advisory_enforcement" => &mut self.advisory_enforcement_unoverridable,
            "system_generations_limit" => &mut self.system_generations_limit_unoverridable,
            "max_resolution_depth" => &mut self.max_resolution_depth_unoverridable,
            "offline_mode" => &mut self.offline_mode_unoverridable,
            "pkg_dirs" => &mut self.pkg_dirs_unoverridable,
            "cache_mirrors" => &mut self.cache_mirrors_unoverridable,
            "allow_deny_lists" => &mut self.allow_deny_lists_unoverridable,
            "signature_enforcement" => &mut self.signature_enforcement_unoverridable,
            "max_delta_steps" => &mut self.max_delta_steps_unoverridable,
            "kernel_retention" => &mut self.kernel_retention_unoverridable,
            _ => return None,
        })
    }

    pub fn is_locked(&self, name: &str) -> bool {
        self.clone().lock_mut(name).is_some_and(|b| *b)
    }
}

fn default_true() -> bool {
    true
}
fn default_generations() -> u32 {
    4
}
fn default_delta_steps() -> u32 {
    3
}
fn default_kernel_retention() -> u32 {
    3
}

/// One `config.yaml` layer, field for field as Zoi 1.29.4 defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(default)]
    pub default_registry: Option<Registry>,
    #[serde(default)]
    pub added_registries: Vec<Registry>,
    #[serde(default)]
    pub git_repos: Vec<String>,
    #[serde(default = "default_true")]
    pub rollback_enabled: bool,
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub remote_policy: Option<RemotePolicyConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// A `HashMap` in Zoi; ordered here so our output is deterministic.
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    #[serde(default = "default_generations")]
    pub system_generations_limit: u32,
    #[serde(default = "default_delta_steps")]
    pub max_delta_steps: u32,
    #[serde(default = "default_kernel_retention")]
    pub kernel_retention: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            repos: Vec::new(),
            package_managers: None,
            native_package_manager: None,
            telemetry_enabled: false,
            audit_log_enabled: false,
            registry: None,
            default_registry: None,
            added_registries: Vec::new(),
            git_repos: Vec::new(),
            rollback_enabled: true,
            policy: Policy::default(),
            remote_policy: None,
            jobs: None,
            protect_db: false,
            max_resolution_depth: None,
            offline_mode: false,
            pkg_dirs: Vec::new(),
            cache_mirrors: Vec::new(),
            versions: BTreeMap::new(),
            system_generations_limit: 4,
            max_delta_steps: 3,
            kernel_retention: 3,
        }
    }
}

/// The booleans Zoi ≤ 1.25 required in every layer: a layer without them
/// was discarded by those clients, so every layer we write carries them.
pub const LEGACY_REQUIRED_BOOLS: [&str; 4] = [
    "telemetry_enabled",
    "audit_log_enabled",
    "protect_db",
    "offline_mode",
];

/// The official registry Zoi falls back to when no layer names one.
pub const BUILTIN_REGISTRY_URL: &str = "https://gitlab.com/zillowe/zillwen/zusty/zoidberg";
pub const BUILTIN_HANDLE: &str = "zoidberg";

/// One layer as found on disk: its raw YAML (presence of a key matters to
/// Zoi's merge) and how Zoi will read it.
#[derive(Debug, Clone)]
pub struct Layer {
    pub raw: Value,
    pub parsed: Config,
    /// Why Zoi would silently replace this layer by defaults, if it would.
    pub discarded: Option<String>,
}

impl Layer {
    pub fn absent() -> Self {
        Layer {
            raw: Value::Null,
            parsed: Config::default(),
            discarded: None,
        }
    }

    /// Reads a layer's text the way Zoi's `read_config` does. A YAML syntax
    /// error is returned as `Err` (Zoi's config-reading commands stop on it);
    /// a type error makes the layer count as defaults (`discarded`).
    pub fn from_text(text: &str) -> Result<Self, serde_yaml::Error> {
        let raw: Value = serde_yaml::from_str(text)?;
        Ok(Self::from_value(raw))
    }

    pub fn from_value(raw: Value) -> Self {
        match serde_yaml::from_value::<Config>(raw.clone()) {
            Ok(parsed) => Layer {
                raw,
                parsed,
                discarded: None,
            },
            Err(e) => Layer {
                raw,
                parsed: Config::default(),
                discarded: Some(e.to_string()),
            },
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.raw.get(key).is_some()
    }

    /// The legacy-required booleans this layer lacks (Zoi ≤ 1.25 discards it).
    pub fn missing_legacy_bools(&self) -> Vec<&'static str> {
        if self.raw.is_null() {
            return Vec::new();
        }
        LEGACY_REQUIRED_BOOLS
            .into_iter()
            .filter(|k| self.raw.get(*k).is_none())
            .collect()
    }
}

/// Which layer decided a merged value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    System,
    User,
    Project,
    /// Zoi's built-in default (no layer set it).
    Default,
    /// A list concatenated from several layers.
    Merged,
}

/// The merged config plus, for the scalar keys, which layer won.
#[derive(Debug, Clone)]
pub struct Merged {
    pub config: Config,
    pub deciders: BTreeMap<&'static str, Source>,
}

/// Zoi's layer merge (`zoi_core::config::read_config`, 1.29.4) without the
/// remote-policy cache. `active_tiers` are the registry's `active: true` tiers,
/// used when the merged `repos` is empty (pass `None` when no registry is
/// synced, as Zoi then leaves `repos` empty).
pub fn merge(
    system: &Layer,
    user: &Layer,
    project: &Layer,
    active_tiers: Option<Vec<String>>,
) -> Merged {
    let sys = &system.parsed;
    let usr = &user.parsed;
    let prj = &project.parsed;
    let policy = sys.policy.clone();
    let mut out = Config {
        policy: policy.clone(),
        ..Config::default()
    };
    let mut deciders = BTreeMap::new();

    // Lists: system first; user and project appended unless locked; then
    // sorted and de-duplicated, which is why `cache_mirrors` end up
    // alphabetical whatever order they were written in.
    let list = |get: fn(&Config) -> &Vec<String>, locked: bool| {
        let mut v = get(sys).clone();
        if !locked {
            v.extend(get(usr).iter().cloned());
            v.extend(get(prj).iter().cloned());
        }
        v.sort();
        v.dedup();
        v
    };
    out.repos = list(|c| &c.repos, policy.repos_unoverridable);
    out.git_repos = list(|c| &c.git_repos, policy.git_repos_unoverridable);
    out.pkg_dirs = list(|c| &c.pkg_dirs, policy.pkg_dirs_unoverridable);
    out.cache_mirrors = list(|c| &c.cache_mirrors, policy.cache_mirrors_unoverridable);
    for k in ["repos", "git_repos", "pkg_dirs", "cache_mirrors"] {
        deciders.insert(k, Source::Merged);
    }

    // added_registries: concatenated, first URL wins.
    let mut added = sys.added_registries.clone();
    if !policy.added_registries_unoverridable {
        added.extend(usr.added_registries.iter().cloned());
        added.extend(prj.added_registries.iter().cloned());
    }
    let mut seen = BTreeSet::new();
    added.retain(|r| seen.insert(r.url.clone()));
    out.added_registries = added;
    deciders.insert("added_registries", Source::Merged);

    out.package_managers = prj
        .package_managers
        .clone()
        .or_else(|| usr.package_managers.clone())
        .or_else(|| sys.package_managers.clone());
    out.native_package_manager = prj
        .native_package_manager
        .clone()
        .or_else(|| usr.native_package_manager.clone())
        .or_else(|| sys.native_package_manager.clone());
    out.registry = prj
        .registry
        .clone()
        .or_else(|| usr.registry.clone())
        .or_else(|| sys.registry.clone());
    out.remote_policy = sys.remote_policy.clone();

    // Scalars: the project layer, then the user layer, win when they *contain
    // the key* (not when the value differs from the default) and the system
    // policy does not lock it.
    macro_rules! scalar {
        ($field:ident, $lock:expr) => {{
            let key = stringify!($field);
            let (value, source) = if project.has(key) && !$lock {
                (prj.$field.clone(), Source::Project)
            } else if user.has(key) && !$lock {
                (usr.$field.clone(), Source::User)
            } else {
                (
                    sys.$field.clone(),
                    if system.has(key) {
                        Source::System
                    } else {
                        Source::Default
                    },
                )
            };
            out.$field = value;
            deciders.insert(key, source);
        }};
    }
    scalar!(telemetry_enabled, policy.telemetry_enabled_unoverridable);
    scalar!(audit_log_enabled, policy.audit_log_enabled_unoverridable);
    scalar!(rollback_enabled, policy.rollback_enabled_unoverridable);
    scalar!(default_registry, policy.default_registry_unoverridable);
    scalar!(jobs, policy.jobs_unoverridable);
    scalar!(protect_db, policy.protect_db_unoverridable);
    scalar!(
        max_resolution_depth,
        policy.max_resolution_depth_unoverridable
    );
    scalar!(offline_mode, policy.offline_mode_unoverridable);
    scalar!(
        system_generations_limit,
        policy.system_generations_limit_unoverridable
    );
    scalar!(max_delta_steps, policy.max_delta_steps_unoverridable);
    // kernel_retention keeps the built-in default unless some layer sets it.
    scalar!(kernel_retention, policy.kernel_retention_unoverridable);

    out.versions = sys.versions.clone();
    out.versions.extend(usr.versions.clone());
    out.versions.extend(prj.versions.clone());

    if !policy.allow_deny_lists_unoverridable {
        macro_rules! list_policy {
            ($f:ident) => {
                if prj.policy.$f.is_some() {
                    out.policy.$f = prj.policy.$f.clone();
                } else if usr.policy.$f.is_some() {
                    out.policy.$f = usr.policy.$f.clone();
                }
            };
        }
        list_policy!(allowed_licenses);
        list_policy!(denied_licenses);
        list_policy!(allowed_packages);
        list_policy!(denied_packages);
        list_policy!(allowed_repos);
        list_policy!(denied_repos);
    }
    if !policy.signature_enforcement_unoverridable {
        if prj.policy.signature_enforcement.is_some() {
            out.policy.signature_enforcement = prj.policy.signature_enforcement.clone();
        } else if usr.policy.signature_enforcement.is_some() {
            out.policy.signature_enforcement = usr.policy.signature_enforcement.clone();
        }
    }

    // A legacy bare `registry:` URL stands in for a missing default_registry.
    if let Some(url) = out.registry.take()
        && out.default_registry.is_none()
    {
        out.default_registry = Some(Registry {
            url,
            ..Registry::default()
        });
    }
    if out.default_registry.is_none() {
        out.default_registry = Some(Registry {
            handle: BUILTIN_HANDLE.to_string(),
            url: BUILTIN_REGISTRY_URL.to_string(),
            advisory_prefix: Some("ZSA".to_string()),
            ..Registry::default()
        });
        deciders.insert("default_registry", Source::Default);
    }

    if out.repos.is_empty()
        && let Some(active) = active_tiers
    {
        out.repos = active;
        deciders.insert("repos", Source::Default);
    }

    Merged {
        config: out,
        deciders,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(text: &str) -> Layer {
        Layer::from_text(text).unwrap()
    }

    #[test]
    fn default_serialisation_matches_what_zoi_writes() {
        // The field set and order of a file Zoi 1.29.4 re-serialised.
        let mut c = Config {
            repos: vec!["core".into(), "main".into(), "extra".into()],
            ..Config::default()
        };
        c.default_registry = Some(Registry {
            url: "git://127.0.0.1:9418/zoidberg.git".into(),
            ..Registry::default()
        });
        let text = serde_yaml::to_string(&c).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with([' ', '-']))
            .filter_map(|l| l.split(':').next())
            .collect();
        assert_eq!(
            keys,
            [
                "repos",
                "package_managers",
                "native_package_manager",
                "telemetry_enabled",
                "audit_log_enabled",
                "default_registry",
                "added_registries",
                "git_repos",
                "rollback_enabled",
                "policy",
                "remote_policy",
                "protect_db",
                "max_resolution_depth",
                "offline_mode",
                "pkg_dirs",
                "cache_mirrors",
                "versions",
                "system_generations_limit",
                "max_delta_steps",
                "kernel_retention"
            ]
        );
    }

    #[test]
    fn a_wrong_type_discards_the_layer() {
        let l = layer("offline_mode: true\ncache_mirrors: notalist\n");
        assert!(l.discarded.is_some());
        assert!(!l.parsed.offline_mode);
    }

    #[test]
    fn merge_concatenates_sorts_and_dedups_lists() {
        let sys = layer("cache_mirrors: [https://z.example, https://a.example]\n");
        let usr = layer("cache_mirrors: [https://m.example, https://a.example]\n");
        let m = merge(&sys, &usr, &Layer::absent(), None);
        assert_eq!(
            m.config.cache_mirrors,
            [
                "https://a.example",
                "https://m.example",
                "https://z.example"
            ]
        );
    }

    #[test]
    fn lock_keeps_system_value() {
        let sys = layer(
            "default_registry: {handle: corp, url: https://git.corp/z.git}\npolicy: {default_registry_unoverridable: true}\n",
        );
        let usr = layer("default_registry: {handle: '', url: https://evil/z.git}\n");
        let m = merge(&sys, &usr, &Layer::absent(), None);
        assert_eq!(
            m.config.default_registry.unwrap().url,
            "https://git.corp/z.git"
        );
        assert_eq!(m.deciders["default_registry"], Source::System);

        let sys = layer("default_registry: {handle: corp, url: https://git.corp/z.git}\n");
        let m = merge(&sys, &usr, &Layer::absent(), None);
        assert_eq!(m.config.default_registry.unwrap().url, "https://evil/z.git");
        assert_eq!(m.deciders["default_registry"], Source::User);
    }

    #[test]
    fn presence_not_value_decides_scalars() {
        // The user layer says `false` explicitly: it wins over system `true`.
        let sys = layer("offline_mode: true\n");
        let usr = layer("offline_mode: false\n");
        let m = merge(&sys, &usr, &Layer::absent(), None);
        assert!(!m.config.offline_mode);
        assert_eq!(m.deciders["offline_mode"], Source::User);
    }

    #[test]
    fn empty_repos_fall_back_to_active_tiers() {
        let m = merge(
            &Layer::absent(),
            &Layer::absent(),
            &Layer::absent(),
            Some(vec!["core".into(), "main".into()]),
        );
        assert_eq!(m.config.repos, ["core", "main"]);
        assert_eq!(m.config.default_registry.unwrap().handle, "zoidberg");
    }

    #[test]
    fn every_lock_name_has_a_flag() {
        let mut p = Policy::default();
        for l in LOCKS {
            *p.lock_mut(l).unwrap() = true;
            assert!(p.is_locked(l));
        }
        assert!(p.lock_mut("nope").is_none());
    }
}
