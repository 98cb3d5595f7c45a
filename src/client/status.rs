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

use super::Scope;
use crate::bundle::load::Loaded;
use crate::zoi::config::{self, Config, Layer, Source};
use crate::zoi::paths::{Env, LayoutKind};

#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    pub layer: &'static str,
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

#[derive(Debug, Clone, Serialize)]
pub struct Trap {
    pub kind: &'static str,
    /// `error` (the mirror is not, or not reliably, in use) or `warning`.
    pub severity: &'static str,
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
}

fn read_layer(name: &'static str, path: &Path) -> ReadLayer {
    let mut info = LayerInfo {
        layer: name,
        path: path.to_path_buf(),
        exists: path.exists(),
        problem: None,
    };
    let layer = match std::fs::read_to_string(path) {
        Err(_) => Layer::absent(),
        Ok(text) => match Layer::from_text(&text) {
            Ok(l) => {
                info.problem = l.discarded.clone();
                l
            }
            Err(e) => {
                info.problem = Some(format!("YAML syntax error: {e}"));
                Layer::absent()
            }
        },
    };
    ReadLayer { info, layer }
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
    let expected_layer = super::bundle_layer(bundle, scope)?;
    let keys = super::managed(bundle, scope)?;

    let sys = read_layer("system", &env.system_config());
    let usr = read_layer("user", &env.user_config(target.layout)?);
    let prj = read_layer("project", &env.project_config());

    let mut traps = Vec::new();
    for l in [&sys, &usr, &prj] {
        if let Some(p) = &l.info.problem {
            let syntax = p.starts_with("YAML syntax error");
            traps.push(Trap {
                kind: if syntax { "layer_syntax_error" } else { "layer_discarded" },
                severity: "error",
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
                    kind: "legacy_required_missing",
                    severity: "error",
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
                kind: "legacy_file_ignored",
                severity: "warning",
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
            kind: "cache_mirrors_resorted",
            severity: "warning",
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
            kind: "unsigned_head",
            severity: "error",
            message: format!(
                "authorities are set for {}, but the synced registry's HEAD commit is unsigned: `zoi sync` will roll back",
                reg.url
            ),
            hint: "sign the mirror's repo.yaml commit (`db sync` with registry.signing_key)".into(),
        });
    }

    let in_sync = settings.iter().all(|s| s.ok) && traps.iter().all(|t| t.severity != "error");
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
