//! `status`: does this machine's Zoi still use the mirror, and if not, why?
//!
//! "Uses the mirror" is decided by what Zoi will *actually* use after its
//! merge and policy rules, not by what one file says: a user layer can be
//! shadowed by a system lock, a whole layer can be silently discarded over
//! one wrong type, and a `repos` list can switch off tiers. So we read all
//! three layers, merge them exactly as Zoi does, and report for every
//! managed setting the expected value, each layer's value, the effective
//! value and the layer that decided it, plus the traps Zoi sets.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;
use serde_yaml::Value;

use super::target::Scope;
use crate::bundle::load::Loaded;
use crate::zoi::config::{self, Config, Layer, Source};
use crate::zoi::paths::{Env, LayoutKind};

/// One of Zoi's three config layers, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerName {
    System,
    User,
    Project,
}

impl LayerName {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerName::System => "system",
            LayerName::User => "user",
            LayerName::Project => "project",
        }
    }
}

impl std::fmt::Display for LayerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so width and alignment in format strings apply.
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    pub layer: LayerName,
    pub path: PathBuf,
    pub exists: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    pub key: String,
    pub expected: Value,
    pub system: Option<Value>,
    pub user: Option<Value>,
    pub project: Option<Value>,
    pub effective: Value,
    pub decided_by: Source,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// A way Zoi can end up not using the mirror although the file says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrapKind {
    /// A layer Zoi cannot parse (commands fail; ignored at start-up).
    LayerSyntaxError,
    /// A layer Zoi silently replaces by its defaults (a wrong type).
    LayerDiscarded,
    /// A legacy-layout layer without the booleans Zoi ≤ 1.25 requires.
    LegacyRequiredMissing,
    /// `~/.zoi/pkgs/config.yaml` next to the XDG file Zoi ≥ 1.26 reads.
    LegacyFileIgnored,
    /// Zoi sorts `cache_mirrors`, so the preferred one is not tried first.
    CacheMirrorsResorted,
    /// Authorities are set but the synced registry's HEAD is unsigned.
    UnsignedHead,
}

impl TrapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrapKind::LayerSyntaxError => "layer_syntax_error",
            TrapKind::LayerDiscarded => "layer_discarded",
            TrapKind::LegacyRequiredMissing => "legacy_required_missing",
            TrapKind::LegacyFileIgnored => "legacy_file_ignored",
            TrapKind::CacheMirrorsResorted => "cache_mirrors_resorted",
            TrapKind::UnsignedHead => "unsigned_head",
        }
    }
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so width and alignment in format strings apply.
        f.pad(self.as_str())
    }
}

/// How bad a trap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The mirror is not, or not reliably, in use: `status` is out of sync.
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so width and alignment in format strings apply.
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Trap {
    pub kind: TrapKind,
    pub severity: Severity,
    pub message: String,
    pub hint: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub extension: String,
    pub version: String,
    pub scope: Scope,
    pub layout: LayoutKind,
    pub layout_reason: String,
    pub in_sync: bool,
    pub layers: Vec<LayerInfo>,
    pub settings: Vec<Setting>,
    pub traps: Vec<Trap>,
}

struct ReadLayer {
    info: LayerInfo,
    layer: Layer,
    /// What `info.problem` is, decided where it is found.
    problem_kind: Option<TrapKind>,
}

fn read_layer(name: LayerName, path: &Path) -> ReadLayer {
    let mut info = LayerInfo {
        layer: name,
        path: path.to_path_buf(),
        exists: path.exists(),
        problem: None,
    };
    let mut problem_kind = None;
    let layer = match std::fs::read_to_string(path) {
        Err(_) => Layer::absent(),
        Ok(text) => match Layer::from_text(&text) {
            Ok(l) => {
                info.problem = l.discarded.clone();
                problem_kind = info.problem.is_some().then_some(TrapKind::LayerDiscarded);
                l
            }
            Err(e) => {
                info.problem = Some(format!("YAML syntax error: {e}"));
                problem_kind = Some(TrapKind::LayerSyntaxError);
                Layer::absent()
            }
        },
    };
    ReadLayer {
        info,
        layer,
        problem_kind,
    }
}

fn yaml<T: Serialize>(t: &T) -> Value {
    serde_yaml::to_value(t).unwrap_or(Value::Null)
}

fn missing<'a>(expected: &'a [String], effective: &[String]) -> Vec<&'a str> {
    expected
        .iter()
        .filter(|e| !effective.contains(e))
        .map(String::as_str)
        .collect()
}

/// Whether the HEAD commit of a registry clone is signed (`None`: unknown).
fn head_signed(clone: &Path) -> Option<bool> {
    if !clone.join(".git").exists() && !clone.join("HEAD").exists() {
        return None;
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(clone)
        .args(["log", "-1", "--format=%G?"])
        .output()
        .ok()?;
    let flag = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // N: no signature, B: a bad one — Zoi rejects both.
    out.status
        .success()
        .then_some(!matches!(flag.as_str(), "N" | "B" | ""))
}

/// Drift report for `bundle` on this machine.
pub fn status(
    bundle: &Loaded,
    scope: Scope,
    env: &Env,
    layout: Option<LayoutKind>,
    zoi_version: Option<&semver::Version>,
) -> Result<StatusReport> {
    let target = super::resolve_target(env, scope, layout, zoi_version)?;
    let expected_layer = super::apply::bundle_layer(bundle, scope)?;
    let keys = super::apply::managed(bundle, scope)?;

    let sys = read_layer(LayerName::System, &env.system_config());
    let usr = read_layer(LayerName::User, &env.user_config(target.layout)?);
    let prj = read_layer(LayerName::Project, &env.project_config());

    let mut traps = Vec::new();
    for l in [&sys, &usr, &prj] {
        if let (Some(p), Some(kind)) = (&l.info.problem, l.problem_kind) {
            let syntax = kind == TrapKind::LayerSyntaxError;
            traps.push(Trap {
                kind,
                severity: Severity::Error,
                message: if syntax {
                    format!(
                        "{} has a YAML syntax error: Zoi commands that read config fail, and at start-up the layer is ignored ({p})",
                        l.info.path.display()
                    )
                } else {
                    format!(
                        "Zoi silently replaces {} by defaults, losing every setting in it: {p}",
                        l.info.path.display()
                    )
                },
                hint: "fix the value named above; `zoi-mirror apply` refuses to edit such a file".into(),
            });
        }
        if target.layout == LayoutKind::Legacy && l.info.exists && l.info.problem.is_none() {
            let lacking = l.layer.missing_legacy_bools();
            if !lacking.is_empty() {
                traps.push(Trap {
                    kind: TrapKind::LegacyRequiredMissing,
                    severity: Severity::Error,
                    message: format!(
                        "{} lacks {} which Zoi <= 1.25 requires: that Zoi ignores the whole layer",
                        l.info.path.display(),
                        lacking.join(", ")
                    ),
                    hint: "run `zoi-mirror apply` (it adds them) or add them by hand".into(),
                });
            }
        }
    }
    if target.layout == LayoutKind::Xdg && scope == Scope::User {
        let legacy = env.user_config(LayoutKind::Legacy)?;
        if legacy.exists() {
            traps.push(Trap {
                kind: TrapKind::LegacyFileIgnored,
                severity: Severity::Warning,
                message: format!(
                    "{} exists, but Zoi >= 1.26 reads {} and ignores the old file (no migration)",
                    legacy.display(),
                    usr.info.path.display()
                ),
                hint: "move any settings you still need into the new file, then delete the old one"
                    .into(),
            });
        }
    }

    // The synced registry's repo.yaml decides the tiers when repos is empty.
    let data_dir = env.user_data(target.layout)?;
    let handle_for_db = |m: &Config| {
        m.default_registry
            .as_ref()
            .map(|r| r.handle.clone())
            .unwrap_or_default()
    };
    let pre = config::merge(&sys.layer, &usr.layer, &prj.layer, None);
    let handle = handle_for_db(&pre.config);
    let db_clone = data_dir.join("pkgs").join("db").join(&handle);
    let active = std::fs::read_to_string(db_clone.join("repo.yaml"))
        .ok()
        .and_then(|t| crate::zoi::repo::RepoYaml::parse(&t).ok())
        .map(|r| r.active_tiers());
    let merged = config::merge(&sys.layer, &usr.layer, &prj.layer, active);
    let eff = &merged.config;

    let mut settings = Vec::new();
    for key in &keys {
        let layer_val = |l: &ReadLayer| l.layer.raw.get(key.as_str()).cloned();
        let (expected, effective, ok, why): (Value, Value, bool, Option<String>) =
            match key.as_str() {
                "repos" | "git_repos" | "pkg_dirs" | "cache_mirrors" => {
                    let (exp, got) = match key.as_str() {
                        "repos" => (&expected_layer.repos, &eff.repos),
                        "git_repos" => (&expected_layer.git_repos, &eff.git_repos),
                        "pkg_dirs" => (&expected_layer.pkg_dirs, &eff.pkg_dirs),
                        _ => (&expected_layer.cache_mirrors, &eff.cache_mirrors),
                    };
                    let lacking = missing(exp, got);
                    let why = (!lacking.is_empty()).then(|| {
                        if key == "repos" {
                            format!(
                                "Zoi activates only the tiers listed; {} not active",
                                lacking.join(", ")
                            )
                        } else {
                            format!("missing {}", lacking.join(", "))
                        }
                    });
                    (yaml(exp), yaml(got), lacking.is_empty(), why)
                }
                "added_registries" => {
                    let urls: Vec<String> =
                        eff.added_registries.iter().map(|r| r.url.clone()).collect();
                    let exp: Vec<String> = expected_layer
                        .added_registries
                        .iter()
                        .map(|r| r.url.clone())
                        .collect();
                    let lacking = missing(&exp, &urls);
                    (
                        yaml(&expected_layer.added_registries),
                        yaml(&eff.added_registries),
                        lacking.is_empty(),
                        (!lacking.is_empty()).then(|| format!("missing {}", lacking.join(", "))),
                    )
                }
                "default_registry" => {
                    let exp = expected_layer.default_registry.clone().unwrap_or_default();
                    let got = eff.default_registry.clone().unwrap_or_default();
                    let auth = |a: &Option<Vec<String>>| {
                        let mut v = a.clone().unwrap_or_default();
                        v.sort();
                        v
                    };
                    let mut problems = Vec::new();
                    if got.url != exp.url {
                        problems.push(format!("Zoi syncs from {} instead of {}", got.url, exp.url));
                    }
                    if got.handle != exp.handle {
                        problems.push(format!(
                        "handle is {:?} instead of {:?}: package ids (#handle@tier/name) change",
                        got.handle, exp.handle
                    ));
                    }
                    if auth(&got.authorities) != auth(&exp.authorities) {
                        problems.push(format!(
                            "authorities are {:?} instead of {:?}",
                            auth(&got.authorities),
                            auth(&exp.authorities)
                        ));
                    }
                    (
                        yaml(&exp),
                        yaml(&got),
                        problems.is_empty(),
                        (!problems.is_empty()).then(|| problems.join("; ")),
                    )
                }
                "offline_mode" => {
                    let ok = eff.offline_mode == expected_layer.offline_mode;
                    (
                        Value::Bool(expected_layer.offline_mode),
                        Value::Bool(eff.offline_mode),
                        ok,
                        (!ok).then(|| "offline mode differs".to_string()),
                    )
                }
                "policy" => {
                    // Locks count only in the system layer.
                    let exp = yaml(&expected_layer.policy);
                    let got = yaml(&sys.layer.parsed.policy);
                    let lacking: Vec<String> = match (&exp, &got) {
                        (Value::Mapping(e), Value::Mapping(g)) => e
                            .iter()
                            .filter(|(k, v)| g.get(*k) != Some(*v))
                            .filter_map(|(k, _)| k.as_str().map(String::from))
                            .collect(),
                        _ => Vec::new(),
                    };
                    (
                        exp,
                        got,
                        lacking.is_empty(),
                        (!lacking.is_empty())
                            .then(|| format!("system policy lacks {}", lacking.join(", "))),
                    )
                }
                _ => continue,
            };
        settings.push(Setting {
            key: key.clone(),
            expected,
            system: layer_val(&sys),
            user: layer_val(&usr),
            project: layer_val(&prj),
            effective,
            decided_by: merged
                .deciders
                .get(key.as_str())
                .copied()
                .unwrap_or(Source::System),
            ok,
            why,
        });
    }

    let exp_mirrors = &expected_layer.cache_mirrors;
    let mut sorted = exp_mirrors.clone();
    sorted.sort();
    if *exp_mirrors != sorted {
        traps.push(Trap {
            kind: TrapKind::CacheMirrorsResorted,
            severity: Severity::Warning,
            message: format!(
                "Zoi sorts cache_mirrors alphabetically after merging, so it tries {} first, not {}",
                sorted[0], exp_mirrors[0]
            ),
            hint: "name the mirrors so the preferred one sorts first".into(),
        });
    }
    if let Some(reg) = &eff.default_registry
        && reg.authorities.as_ref().is_some_and(|a| !a.is_empty())
        && let Some(false) = head_signed(&data_dir.join("pkgs").join("db").join(&reg.handle))
    {
        traps.push(Trap {
            kind: TrapKind::UnsignedHead,
            severity: Severity::Error,
            message: format!(
                "authorities are set for {}, but the synced registry's HEAD commit is unsigned: `zoi sync` will roll back",
                reg.url
            ),
            hint: "sign the mirror's repo.yaml commit (`db sync` with registry.signing_key)".into(),
        });
    }

    let in_sync =
        settings.iter().all(|s| s.ok) && traps.iter().all(|t| t.severity != Severity::Error);
    Ok(StatusReport {
        extension: bundle.name().to_string(),
        version: bundle.manifest.extension.version.clone(),
        scope,
        layout: target.layout,
        layout_reason: target.layout_reason,
        in_sync,
        layers: vec![sys.info, usr.info, prj.info],
        settings,
        traps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON names are a contract (`status --json`); `as_str` (human
    /// output) must say the same.
    #[test]
    fn kinds_serialise_as_before() {
        for (k, name) in [
            (TrapKind::LayerSyntaxError, "layer_syntax_error"),
            (TrapKind::LayerDiscarded, "layer_discarded"),
            (TrapKind::LegacyRequiredMissing, "legacy_required_missing"),
            (TrapKind::LegacyFileIgnored, "legacy_file_ignored"),
            (TrapKind::CacheMirrorsResorted, "cache_mirrors_resorted"),
            (TrapKind::UnsignedHead, "unsigned_head"),
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), name);
            assert_eq!(k.to_string(), name);
        }
        for (s, name) in [(Severity::Error, "error"), (Severity::Warning, "warning")] {
            assert_eq!(serde_json::to_value(s).unwrap(), name);
            assert_eq!(s.to_string(), name);
        }
        for (l, name) in [
            (LayerName::System, "system"),
            (LayerName::User, "user"),
            (LayerName::Project, "project"),
        ] {
            assert_eq!(serde_json::to_value(l).unwrap(), name);
            assert_eq!(format!("{l:<8}|"), format!("{name:<8}|"));
        }
    }
}
