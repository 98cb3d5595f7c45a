//! `apply`: putting a bundle's settings into Zoi's config on this machine,
//! in three steps — plan the edits, plan what Zoi must do, execute.
//!
//! - **Plan the edits** ([`plan_edits`], no I/O): for each managed key, the
//!   value to write is the bundle's merged into what is there (entries an
//!   earlier version of the bundle added and this one dropped go, the
//!   user's own entries stay); the recorded `before` is the original from
//!   the first apply (even one that crashed before replacing the file),
//!   else what is there now; unchanged keys are not re-spliced (comments
//!   inside them stay); a legacy-layout layer gets the four booleans Zoi
//!   ≤ 1.25 requires.
//! - **Plan Zoi** ([`plan_zoi`]): user scope only, and only with a `zoi`
//!   found. The same version registered is `already_registered`; a change
//!   Zoi would refuse, or one that would later delete what the user has,
//!   is `skipped` (the config is then written directly); otherwise `added`
//!   or `replaced`, hiding from Zoi the tiers its `repo-add` would collide
//!   with (the final write puts them back).
//! - **Execute** ([`execute`]): backup, then the state (it records the
//!   original values, so a crash at any later point loses nothing), then
//!   Zoi (on failure the config and state are put back), then the config,
//!   then the final state. Every refusal is checked before the lock is
//!   taken, and again under it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use serde_yaml::{Mapping, Value};

use super::config_file::{
    Current, Edits, backup, create_dirs, ensure_writable, give_to_invoking_user, new_file_text,
    read_current, splice, stage_config, unified_diff, write_config,
};
use super::state::{self, KeyState, State};
use super::target::{Scope, Target, layout_name, resolve_target};
use super::{failpoint, lock, merge, yamledit, zoi_cli};
use crate::bundle::load::Loaded;
use crate::error::{ErrorKind, Failure, fail, io_failure};
use crate::fsutil;
use crate::zoi::config::{Config, LEGACY_REQUIRED_BOOLS};
use crate::zoi::extension::Change;
use crate::zoi::paths::{Env, LayoutKind};

/// What apply did (or would do) with Zoi's own record of the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoiAction {
    /// `zoi extension add` registered it.
    Added,
    /// Zoi already has this version.
    AlreadyRegistered,
    /// Another version was registered: removed, then this one added.
    Replaced,
    /// Zoi would refuse it (or later delete what the user has): the config
    /// was written directly.
    Skipped,
    /// No zoi, or the system scope: the config was written directly.
    NotUsed,
}

impl ZoiAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ZoiAction::Added => "added",
            ZoiAction::AlreadyRegistered => "already_registered",
            ZoiAction::Replaced => "replaced",
            ZoiAction::Skipped => "skipped",
            ZoiAction::NotUsed => "not_used",
        }
    }

    /// Zoi holds the extension after the run.
    fn registers(self) -> bool {
        matches!(
            self,
            ZoiAction::Added | ZoiAction::Replaced | ZoiAction::AlreadyRegistered
        )
    }

    /// This run adds it to Zoi (so undoing the run removes it).
    fn adds(self) -> bool {
        matches!(self, ZoiAction::Added | ZoiAction::Replaced)
    }
}

impl std::fmt::Display for ZoiAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so width and alignment in format strings apply.
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub scope: Scope,
    pub env: Env,
    pub layout: Option<LayoutKind>,
    /// `None`: do not use zoi (not found, or `--no-zoi`).
    pub zoi: Option<zoi_cli::Zoi>,
    pub dry_run: bool,
    pub lock_timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    pub key: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub changed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZoiReport {
    pub found: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub action: ZoiAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub extension: String,
    pub version: String,
    pub scope: Scope,
    pub target: Target,
    pub dry_run: bool,
    /// Nothing needed changing.
    pub already_applied: bool,
    /// The config file was written (or, with --dry-run, would be).
    pub changed: bool,
    pub keys: Vec<KeyReport>,
    pub zoi: ZoiReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
    pub state_file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    pub notes: Vec<String>,
    pub revert_command: String,
    /// How to undo this run alone (set when it changed something).
    #[serde(skip)]
    pub undo: Option<Undo>,
}

pub(super) fn bundle_layer(bundle: &Loaded, scope: Scope) -> Result<Config> {
    let bytes = bundle.verified(scope.bundle_layer())?;
    serde_yaml::from_slice(&bytes).map_err(|e| {
        Failure::new(
            ErrorKind::BundleInvalid,
            format!(
                "{} of {} is not a Zoi config layer: {e}",
                scope.bundle_layer(),
                bundle.source.display()
            ),
        )
        .hint("rebuild the bundle with `zoi-mirror build`; nothing was changed")
        .into()
    })
}

pub(super) fn managed(bundle: &Loaded, scope: Scope) -> Result<Vec<String>> {
    let keys = match scope {
        Scope::User => &bundle.manifest.manages.user,
        Scope::System => &bundle.manifest.manages.system,
    };
    for k in keys {
        if !merge::MANAGEABLE.contains(&k.as_str()) {
            return fail(
                Failure::new(
                    ErrorKind::BundleInvalid,
                    format!(
                        "bundle.json of {} manages `{k}`, which this zoi-mirror does not know how to apply",
                        bundle.source.display()
                    ),
                )
                .hint(format!(
                    "the bundle was built by a newer zoi-mirror ({} {}): upgrade zoi-mirror, or rebuild the bundle with this one; nothing was changed",
                    bundle.manifest.generator.name, bundle.manifest.generator.version
                )),
            );
        }
        if k == "policy" && scope == Scope::User {
            return fail(
                Failure::new(
                    ErrorKind::BundleInvalid,
                    format!(
                        "bundle.json of {} puts policy locks in the user scope; Zoi honours them only in the system file",
                        bundle.source.display()
                    ),
                )
                .hint("rebuild the bundle with `zoi-mirror build` (it puts policy in the system layer only); nothing was changed"),
            );
        }
    }
    Ok(keys.clone())
}

/// Refuses a state recorded for another config file.
fn check_applied_here(name: &str, previous: Option<&State>, target: &Target) -> Result<()> {
    if let Some(p) = previous
        && p.config_path != target.config_path
    {
        // Its `before` values belong to the other file: using them here
        // would overwrite this file's settings on revert.
        return fail(
            Failure::new(
                ErrorKind::AppliedElsewhere,
                format!(
                    "{name} was applied to {} ({} layout), not to {}",
                    p.config_path.display(),
                    layout_name(p.layout),
                    target.config_path.display()
                ),
            )
            .hint(format!(
                "revert it there first (`zoi-mirror revert {name} --layout {}`), then apply again",
                layout_name(p.layout)
            )),
        );
    }
    Ok(())
}

/// Refuses a second extension on keys another extension already manages in
/// the same file: reverting them in any order could not give back the
/// original file.
fn check_other_extensions(
    name: &str,
    scope: Scope,
    keys: &[String],
    target: &Target,
) -> Result<()> {
    let entries = match std::fs::read_dir(&target.state_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return fail(
                Failure::new(
                    ErrorKind::StateInvalid,
                    format!(
                        "cannot read zoi-mirror's state directory {}: {e}",
                        target.state_dir.display()
                    ),
                )
                .hint(format!(
                    "zoi-mirror reads the state of every extension applied there, so that two never manage the same setting: make the directory readable, then apply {name} again; nothing was changed"
                )),
            );
        }
    };
    let suffix = format!(".{}.json", scope.as_str());
    let mut others: Vec<(String, Vec<String>)> = Vec::new();
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(other) = file.strip_suffix(&suffix) else {
            continue;
        };
        if other == name || other.starts_with('.') {
            continue;
        }
        // A state that cannot be read could name any key: skipping it
        // would let two extensions manage the same one unnoticed.
        let st = match state::read(&e.path()) {
            Ok(Some(st)) => st,
            Ok(None) => continue,
            Err(err) => {
                return fail(
                    Failure::new(
                        ErrorKind::StateInvalid,
                        format!("cannot tell which settings {other} manages: {err:#}"),
                    )
                    .hint(format!(
                        "zoi-mirror reads the state of every extension applied to {}, so that two never manage the same setting. Restore {} from a backup (`zoi-mirror revert {other}` needs it), or remove it if {other} is no longer applied; then apply {name} again. Nothing was changed",
                        target.config_path.display(),
                        e.path().display()
                    )),
                );
            }
        };
        if st.config_path != target.config_path {
            continue;
        }
        let shared: Vec<String> = keys
            .iter()
            .filter(|k| st.keys.contains_key(k.as_str()))
            .cloned()
            .collect();
        if !shared.is_empty() {
            others.push((st.extension, shared));
        }
    }
    let Some((other, shared)) = others.into_iter().next() else {
        return Ok(());
    };
    let flag = if scope == Scope::System {
        " --scope system"
    } else {
        ""
    };
    fail(
        Failure::new(
            ErrorKind::ManagedByOther,
            format!(
                "{} already manages {} in {}; {name} manages {} too",
                other,
                shared.join(", "),
                target.config_path.display(),
                if shared.len() == 1 { "it" } else { "them" }
            ),
        )
        .hint(format!(
            "two extensions cannot share these settings: revert the other first (`zoi-mirror revert {other}{flag}`), then apply {name}; nothing was changed"
        )),
    )
}

/// Applies `bundle` to the machine.
pub fn apply(bundle: &Loaded, opts: &ApplyOptions) -> Result<ApplyReport> {
    let scope = opts.scope;
    let name = bundle.name().to_string();
    let version = bundle.manifest.extension.version.clone();
    let target = resolve_target(
        &opts.env,
        scope,
        opts.layout,
        opts.zoi.as_ref().and_then(|z| z.version.as_ref()),
    )?;
    let layer = bundle_layer(bundle, scope)?;
    let keys = managed(bundle, scope)?;
    let ext_file = bundle.verified_path(&bundle.extension_file())?;
    let state_path = state::path(&target.state_dir, &name, scope.as_str());
    let revert_command = format!(
        "zoi-mirror revert {name}{}",
        if scope == Scope::System {
            " --scope system"
        } else {
            ""
        }
    );

    // Everything that can refuse the run is checked before the lock (and
    // so the state directory) is created: a refused apply writes nothing.
    // The checks run again under the lock, where their answer holds.
    let preflight = || -> Result<(Current, Option<State>)> {
        let current = read_current(&target.config_path)?;
        if !opts.dry_run {
            ensure_writable(&target.config_path)?;
        }
        let previous = state::read(&state_path).map_err(|e| {
            Failure::new(ErrorKind::StateInvalid, format!("{e:#}"))
                .hint("remove the state file to start over")
        })?;
        check_applied_here(&name, previous.as_ref(), &target)?;
        check_other_extensions(&name, scope, &keys, &target)?;
        Ok((current, previous))
    };
    preflight()?;
    let lock = if opts.dry_run {
        None
    } else {
        let l = lock::lock(&target.state_dir, opts.lock_timeout)?;
        // Under sudo, a user-scope state dir must stay the user's.
        give_to_invoking_user(&target.state_dir, scope);
        give_to_invoking_user(&l.path, scope);
        // Temp files of runs killed mid-write: ours, and no run but us
        // can be writing them now.
        fsutil::remove_stale_temps(&target.config_path);
        fsutil::remove_stale_temps(&state_path);
        Some(l)
    };
    failpoint("after-lock");

    let (current, previous) = preflight()?;
    let edits = plan_edits(
        &keys,
        &layer,
        &current,
        previous.as_ref(),
        target.layout,
        || {
            // A system layer Zoi would discard counts as empty.
            let system = match scope {
                Scope::User => read_current(&opts.env.system_config())
                    .map(|c| c.mapping)
                    .unwrap_or_default(),
                Scope::System => Mapping::new(),
            };
            new_file_text(&name, bundle.version(), &system)
        },
    )?;
    let zoi = plan_zoi(
        opts.zoi.as_ref(),
        scope,
        target.zoi_data_dir.as_deref(),
        &name,
        &version,
        &extension_changes(bundle)?,
        &current,
        previous.as_ref(),
    )?;

    let new_state = State {
        format: state::STATE_FORMAT,
        extension: name.clone(),
        version: version.clone(),
        scope,
        config_path: target.config_path.clone(),
        layout: target.layout,
        bundle_sha512: bundle.manifest_sha512.clone(),
        zoi_registered: zoi.report.action.registers()
            || previous.as_ref().is_some_and(|p| p.zoi_registered),
        keys: edits.states.clone(),
    };
    let state_changes = previous.as_ref() != Some(&new_state);
    let config_changes = edits.config_changes();
    let already_applied = !config_changes && !state_changes && zoi.run.is_none();

    let mut report = ApplyReport {
        extension: name.clone(),
        version: version.clone(),
        scope,
        target: target.clone(),
        dry_run: opts.dry_run,
        already_applied,
        changed: config_changes,
        keys: edits.keys.clone(),
        zoi: zoi.report.clone(),
        backup: None,
        state_file: state_path.clone(),
        diff: None,
        notes: edits.notes.clone(),
        revert_command,
        undo: None,
    };
    if opts.dry_run {
        report.diff = Some(unified_diff(
            &target.config_path,
            &edits.old_text,
            &edits.new_text,
            edits.existed,
        ));
        return Ok(report);
    }
    if already_applied {
        return Ok(report);
    }
    execute(
        &Execution {
            zoi: opts.zoi.as_ref(),
            zoi_data_dir: target.zoi_data_dir.as_deref(),
            scope,
            name: &name,
            ext_file: &ext_file,
            config_path: &target.config_path,
            state_path: &state_path,
            current: &current,
            previous: previous.as_ref(),
            edits: &edits,
            zoi_run: zoi.run.as_ref(),
            new_state: &new_state,
        },
        &mut report,
    )?;
    if let Some(u) = report.undo.as_mut() {
        u.lock = lock.map(std::sync::Arc::new);
    }
    Ok(report)
}

/// What the config file is to become.
#[derive(Debug, Clone)]
struct EditPlan {
    keys: Vec<KeyReport>,
    /// Per managed key, what the state records.
    states: BTreeMap<String, KeyState>,
    notes: Vec<String>,
    /// The file exists (else it is created).
    existed: bool,
    /// Its text now (empty when it does not exist).
    old_text: String,
    new_text: String,
}

impl EditPlan {
    fn config_changes(&self) -> bool {
        !self.existed || self.new_text != self.old_text
    }
}

/// Plans the edits of `keys` from the bundle's `layer` into `current`
/// (`new_file`: the text of a new file, when there is none).
fn plan_edits(
    keys: &[String],
    layer: &Config,
    current: &Current,
    previous: Option<&State>,
    layout: LayoutKind,
    new_file: impl FnOnce() -> String,
) -> Result<EditPlan> {
    let mut notes = Vec::new();
    // before: the recorded original when we applied earlier (even if that
    // run crashed before replacing the file), else what is there now.
    let mut states = BTreeMap::new();
    let mut edits = Vec::new();
    let mut reports = Vec::new();
    for key in keys {
        let now = current.get(key).cloned();
        let prev = previous.and_then(|s| s.keys.get(key));
        let before = match prev {
            Some(ks) => ks.before.clone(),
            None => now.clone(),
        };
        // Entries an earlier version of the bundle added and this one no
        // longer lists (a retired mirror) go; the user's own entries stay.
        let base = match prev {
            Some(ks) => merge::without_retired(key, now.as_ref(), ks, layer),
            None => now.clone(),
        };
        let applied = merge::applied_value(key, base.as_ref(), layer);
        reports.push(KeyReport {
            key: key.clone(),
            before: now.clone(),
            after: Some(applied.clone()),
            changed: now.as_ref() != Some(&applied),
        });
        // Unchanged keys are not re-spliced: comments inside them stay.
        if now.as_ref() != Some(&applied) {
            edits.push((key.clone(), Some(applied.clone())));
        }
        let before_text = match prev {
            Some(ks) => ks.before_text.clone(),
            None => current
                .text
                .as_deref()
                .and_then(|t| yamledit::block_text(t, key)),
        };
        states.insert(
            key.clone(),
            KeyState {
                before,
                applied,
                replacing: Vec::new(),
                before_text,
            },
        );
    }
    // Zoi ≤ 1.25 discards a layer without the four booleans.
    if layout == LayoutKind::Legacy {
        for b in LEGACY_REQUIRED_BOOLS {
            if current.get(b).is_none() && !keys.iter().any(|k| k == b) {
                edits.push((b.to_string(), Some(Value::Bool(false))));
                notes.push(format!(
                    "added `{b}: false`, which Zoi <= 1.25 requires in every layer"
                ));
            }
        }
    }

    let existed = current.text.is_some();
    let old_text = current.text.clone().unwrap_or_default();
    let base_text = current.text.clone().unwrap_or_else(new_file);
    let base_mapping = if existed {
        current.mapping.clone()
    } else {
        match serde_yaml::from_str::<Value>(&base_text)? {
            Value::Mapping(m) => m,
            _ => Mapping::new(),
        }
    };
    let new_text = splice(&base_text, &base_mapping, &edits, &mut notes)?;
    Ok(EditPlan {
        keys: reports,
        states,
        notes,
        existed,
        old_text,
        new_text,
    })
}

/// What Zoi is to do, and the report saying so.
#[derive(Debug, Clone)]
struct ZoiPlan {
    report: ZoiReport,
    /// `None`: Zoi is not run.
    run: Option<ZoiRun>,
}

#[derive(Debug, Clone)]
struct ZoiRun {
    /// The version Zoi has registered, if another (removed first).
    registered: Option<zoi_cli::Registered>,
    /// Entries to hide from Zoi while it adds the extension.
    strip: Edits,
}

/// Plans Zoi's part: is the extension already registered (in Zoi's data
/// dir `data`), and would any of its `changes` collide?
#[allow(clippy::too_many_arguments)]
fn plan_zoi(
    zoi: Option<&zoi_cli::Zoi>,
    scope: Scope,
    data: Option<&Path>,
    name: &str,
    version: &str,
    changes: &[Change],
    current: &Current,
    previous: Option<&State>,
) -> Result<ZoiPlan> {
    let mut report = ZoiReport {
        found: zoi.is_some(),
        path: zoi.map(|z| z.path.clone()),
        version: zoi.and_then(|z| z.version.as_ref().map(ToString::to_string)),
        action: ZoiAction::NotUsed,
        reason: None,
    };
    let mut run = None;
    match (zoi, scope, data) {
        (None, _, _) => {
            report.reason =
                Some("zoi not found (or --no-zoi): the config was written directly".into());
        }
        (Some(_), Scope::System, _) => {
            report.reason = Some(
                "Zoi extensions change only the user config; the system layer is written directly"
                    .into(),
            );
        }
        (Some(_), Scope::User, Some(data)) => {
            let registered = zoi_cli::registered(data, name);
            let same = registered.as_ref().is_some_and(|r| r.version == version);
            if same {
                report.action = ZoiAction::AlreadyRegistered;
            } else {
                let user_cfg: Config =
                    serde_yaml::from_value(Value::Mapping(current.mapping.clone()))
                        .unwrap_or_default();
                // A version we registered earlier owns its keys, clones and
                // registries: removing it first frees them.
                let ours = registered.is_some() && previous.is_some_and(|p| p.zoi_registered);
                let blocking: Vec<String> = changes
                    .iter()
                    .filter(|c| !c.collision_is_hideable() && !ours)
                    .filter_map(|c| c.collision(&user_cfg, data))
                    .collect();
                if !blocking.is_empty() {
                    report.action = ZoiAction::Skipped;
                    report.reason = Some(format!(
                        "not registered with Zoi, which would refuse the extension or later delete what you already have: {}; the config was written directly",
                        blocking.join("; ")
                    ));
                } else {
                    // repo-add collides with tiers the user already lists:
                    // hide them from Zoi while it adds; the final write puts
                    // them back.
                    let mut strip = Vec::new();
                    let mut repos = merge_list(current.get("repos"));
                    let mut hidden = false;
                    for c in changes {
                        if let Change::RepoAdd { add } = c
                            && c.collision(&user_cfg, data).is_some()
                        {
                            repos.retain(|r| *r != add.to_lowercase());
                            hidden = true;
                        }
                    }
                    if hidden {
                        strip.push(("repos".to_string(), Some(serde_yaml::to_value(&repos)?)));
                    }
                    report.action = if registered.is_some() {
                        ZoiAction::Replaced
                    } else {
                        ZoiAction::Added
                    };
                    run = Some(ZoiRun { registered, strip });
                }
            }
        }
        (Some(_), Scope::User, None) => {}
    }
    Ok(ZoiPlan { report, run })
}

/// Everything [`execute`] needs, planned.
struct Execution<'a> {
    zoi: Option<&'a zoi_cli::Zoi>,
    /// Zoi's data dir, where its store says what it holds.
    zoi_data_dir: Option<&'a Path>,
    scope: Scope,
    name: &'a str,
    /// The extension file `zoi extension add` is given.
    ext_file: &'a Path,
    config_path: &'a Path,
    state_path: &'a Path,
    current: &'a Current,
    previous: Option<&'a State>,
    edits: &'a EditPlan,
    zoi_run: Option<&'a ZoiRun>,
    new_state: &'a State,
}

/// Carries the plan out, in the order that keeps every crash safe, and
/// records the backup and how to undo the run in `report`.
///
/// A kill leaves the page cache intact, so what it can interrupt is the
/// order of the steps (the failpoints). A power cut can also lose any write
/// not yet flushed to disk, so the flushes are ordered too. Each flush waits
/// for the disk's write cache (most of a local apply's time), so the ones
/// that need no order between them are issued together
/// ([`fsutil::sync_together`]: about one wait for the lot):
///
/// 1. the backup's bytes and the staged state's bytes, and the new config's
///    bytes when no Zoi run comes first (after one, the text Zoi's file
///    becomes is written and flushed whole at step 3): none needs another
///    first, and one commit carrying all the data leaves step 2 only names
///    to write. The state is renamed only after: renaming first could, after
///    a power cut, replace a good state (with the user's original values)
///    by an empty file.
/// 2. the state directory (the state's new name) and the config directory
///    (the backup's name). All of it before the config is replaced: a power
///    cut after the replacement must find the original values recorded and
///    the backup in place, and the new text whole, never an empty or
///    half-written config.
/// 3. the config directory again, after the rename: a run that says it
///    applied is still applied after a power cut (a lost rename would leave
///    the old config, which is safe, but not what the user was told).
///
/// That is three waits where separate file and directory flushes for the
/// state and the config took four (and the backup was not flushed at all).
/// The final state write of an upgrade (below) keeps its own two: it must
/// not reach the disk before the config it describes.
fn execute(x: &Execution<'_>, report: &mut ApplyReport) -> Result<()> {
    let scope = x.scope;
    let existed = x.edits.existed;
    // Zoi re-serialises the whole file when it adds an extension, so the
    // file is touched (and backed up) whenever Zoi runs, too.
    let touches = x.edits.config_changes() || x.zoi_run.is_some();
    if existed && touches {
        report.backup = Some(backup(x.config_path)?);
    }
    failpoint("after-backup");
    let previous_state_bytes = std::fs::read(x.state_path).ok();
    // The version Zoi holds, which this run replaces: `zoi extension
    // remove` deletes Zoi's copy of its file, kept here so that it can be
    // registered again if the run cannot finish, or is undone.
    let replaced = match (x.zoi, x.zoi_run) {
        (Some(_), Some(run)) => run.registered.as_ref().map(PreviousExtension::of),
        _ => None,
    };
    report.undo = Some(Undo {
        config_path: x.config_path.to_path_buf(),
        config_before: x.current.text.clone(),
        state_path: x.state_path.to_path_buf(),
        state_before: previous_state_bytes.clone(),
        zoi_added: report.zoi.action.adds(),
        version: report.version.clone(),
        replaced: replaced.clone(),
        backup: report.backup.clone(),
        scope,
        // Handed over by `apply` once the run is done.
        lock: None,
    });

    // The state goes first: it records the original values, so a crash at
    // any later point (even after Zoi rewrote the file) loses nothing. Until
    // the file is replaced it also names what an earlier apply wrote there
    // (`replacing`), so it describes the disk whenever a run is killed.
    let mut staged_state = x.new_state.clone();
    if let Some(prev) = x.previous {
        for (key, ks) in staged_state.keys.iter_mut() {
            if let Some(p) = prev.keys.get(key) {
                for v in p.written() {
                    if *v != ks.applied && !ks.replacing.contains(v) {
                        ks.replacing.push(v.clone());
                    }
                }
            }
        }
    }
    create_dirs(x.state_path, scope)?;
    let state_tmp = state::stage(x.state_path, &staged_state)?;
    // Flush 1 (see above). Without Zoi the new text is staged now, to be
    // flushed with the rest; with Zoi it is written after Zoi rewrote the
    // file (flush 3).
    let backup_file = match &report.backup {
        Some(b) => Some(open_to_flush(b).map_err(|e| io_failure("write", b, &e))?),
        None => None,
    };
    let config_tmp = if touches && x.zoi_run.is_none() {
        Some(stage_config(x.config_path, &x.edits.new_text, scope)?)
    } else {
        None
    };
    // Each file with the path an error names.
    let mut files = vec![(state_tmp.file(), x.state_path)];
    files.extend(backup_file.iter().zip(report.backup.as_deref()));
    files.extend(config_tmp.iter().map(|c| (c.file(), x.config_path)));
    let handles: Vec<&std::fs::File> = files.iter().map(|(f, _)| *f).collect();
    fsutil::sync_together(&handles, &[])
        .map_err(|u| io_failure("write", files[u.index].1, &u.error))?;
    let state_dir = state_tmp.dir().to_path_buf();
    state::rename_flushed(state_tmp, scope)?;
    // A kill here leaves the same files as one after flush 2: the page
    // cache survives it.
    failpoint("after-state");

    // Flush 2: the names (the new config's bytes went with flush 1).
    let config_dir = x.config_path.parent().unwrap_or(Path::new("."));
    let mut dirs = vec![state_dir.as_path()];
    if report.backup.is_some() {
        dirs.push(config_dir);
    }
    // Only folders, whose flushes are best effort: nothing to fail.
    let _ = fsutil::sync_together(&[], &dirs);

    if let (Some(zoi), Some(run)) = (x.zoi, x.zoi_run) {
        // On any failure from here on, the config, the state and Zoi's
        // record are put back as they were before this run, and the error
        // says exactly what could not be.
        let backup = report.backup.clone();
        let fail = |kind: ErrorKind,
                    why: String,
                    what: &str,
                    removed: Option<&PreviousExtension>,
                    zoi_text: Option<&str>|
         -> anyhow::Error {
            let restored = put_back(&PutBack {
                zoi: Some(zoi),
                name: x.name,
                scope,
                config_path: x.config_path,
                config_before: x.current.text.as_deref(),
                zoi_text,
                backup: backup.as_deref(),
                state: Some((x.state_path, previous_state_bytes.as_deref())),
                removed,
            });
            // The kind is the failure's own; the hint says what a failed
            // restore left behind.
            Failure::new(kind, why)
                .hint(format!("{what}; {}", restored.summary()))
                .into()
        };
        let mut removed = None;
        let mut zoi_text = None;
        if let Some(prev) = &replaced {
            if let Err(e) = zoi.extension_remove(x.name) {
                // A remove that failed half-way may have deleted the
                // record all the same: then it is registered again.
                let gone = x
                    .zoi_data_dir
                    .is_some_and(|d| zoi_cli::registered(d, x.name).is_none());
                return Err(fail(
                    ErrorKind::ZoiFailed,
                    format!("{e:#}"),
                    &format!(
                        "Zoi could not remove {} {}, which this run replaces (see its output above)",
                        x.name, prev.version
                    ),
                    gone.then_some(prev),
                    None,
                ));
            }
            removed = Some(prev);
            // The config without the old version's changes: the version is
            // registered again on top of it, should that be needed.
            zoi_text = std::fs::read_to_string(x.config_path).ok();
        }
        if !run.strip.is_empty() {
            let written = splice(
                &x.edits.old_text,
                &x.current.mapping,
                &run.strip,
                &mut Vec::new(),
            )
            .and_then(|stripped| write_config(x.config_path, &stripped, scope));
            if let Err(e) = written {
                return Err(fail(
                    kind_of(&e),
                    format!("{e:#}"),
                    "the tiers Zoi would refuse could not be hidden from it",
                    removed,
                    zoi_text.as_deref(),
                ));
            }
        }
        // Under sudo Zoi runs as the invoking user, who cannot read a
        // downloaded bundle (root's private temp dir): it gets a copy of
        // its own.
        let handed = if zoi.runs_as_another_user() {
            let bytes =
                std::fs::read(x.ext_file).map_err(|e| io_failure("read", x.ext_file, &e))?;
            Some(copy_for_zoi(
                &bytes,
                x.name,
                scope,
                "zoi-mirror-extension.",
            )?)
        } else {
            None
        };
        let ext_file = handed.as_ref().map_or(x.ext_file, |(_, f)| f.as_path());
        if let Err(e) = zoi.extension_add(ext_file) {
            return Err(fail(
                ErrorKind::ZoiFailed,
                format!("{e:#}"),
                "Zoi could not add the extension (see its output above)",
                removed,
                zoi_text.as_deref(),
            ));
        }
        failpoint("after-zoi");
    }

    // Flush 3 (in `finish` and `write_config`).
    match config_tmp {
        Some(c) => c.finish()?,
        None if touches => write_config(x.config_path, &x.edits.new_text, scope)?,
        None => {}
    }
    failpoint("after-config");
    if staged_state != *x.new_state {
        state::write(x.state_path, x.new_state, scope)?;
    }
    failpoint("after-final-state");
    Ok(())
}

/// The backup, opened to flush it (Windows flushes only a writable handle;
/// Unix any, and the backup of a file owned by another user may not be
/// writable for us).
fn open_to_flush(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(cfg!(windows))
        .open(path)
}

/// What one apply run changed, to put back (`apply --rollback-on-fail`):
/// the config text and state file from just before the run, and whether
/// the run registered the extension with Zoi (and which version it
/// replaced there).
#[derive(Debug, Clone)]
pub struct Undo {
    pub config_path: PathBuf,
    pub config_before: Option<String>,
    pub state_path: PathBuf,
    pub state_before: Option<Vec<u8>>,
    pub zoi_added: bool,
    /// The version the run registered.
    pub version: String,
    /// The version Zoi held before, which the run removed.
    pub replaced: Option<PreviousExtension>,
    /// The backup of the config taken by the run.
    pub backup: Option<PathBuf>,
    pub scope: Scope,
    /// The lock the run took, held for as long as this lives: the caller
    /// that may undo the run (`apply --verify --rollback-on-fail`, after
    /// its checks) does so with no other run in between, which could
    /// otherwise have its changes overwritten by this run's `config_before`.
    pub lock: Option<std::sync::Arc<lock::Lock>>,
}

/// A version of the extension Zoi held, with Zoi's own copy of the file it
/// was added from (`package.pkg.lua` in its store, which `zoi extension
/// remove` deletes): what it takes to register it again.
#[derive(Debug, Clone)]
pub struct PreviousExtension {
    pub version: String,
    /// Zoi's copy of the file, or why it could not be read.
    source: Result<Vec<u8>, String>,
}

impl PreviousExtension {
    fn of(r: &zoi_cli::Registered) -> Self {
        PreviousExtension {
            version: r.version.clone(),
            source: std::fs::read(r.dir.join("package.pkg.lua")).map_err(|e| e.to_string()),
        }
    }
}

/// `zoi extension add` of `prev` again, from a copy of its file.
fn register_again(
    zoi: &zoi_cli::Zoi,
    name: &str,
    prev: &PreviousExtension,
    scope: Scope,
) -> Result<()> {
    let source = match &prev.source {
        Ok(s) => s,
        Err(why) => anyhow::bail!(
            "Zoi's copy of its file (package.pkg.lua in Zoi's store) could not be read: {why}"
        ),
    };
    let (_dir, file) = copy_for_zoi(source, name, scope, "zoi-mirror-previous.")?;
    zoi.extension_add(&file)?;
    Ok(())
}

/// `bytes` as `<name>.pkg.lua` in a temp dir of its own (removed when the
/// dir is dropped), both given to the invoking user under sudo: Zoi runs
/// as them and must read it.
fn copy_for_zoi(
    bytes: &[u8],
    name: &str,
    scope: Scope,
    prefix: &str,
) -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    let file = dir.path().join(format!("{name}.pkg.lua"));
    std::fs::write(&file, bytes).map_err(|e| io_failure("write", &file, &e))?;
    give_to_invoking_user(dir.path(), scope);
    give_to_invoking_user(&file, scope);
    Ok((dir, file))
}

/// What to put back after a run that could not finish (or is undone).
struct PutBack<'a> {
    zoi: Option<&'a zoi_cli::Zoi>,
    name: &'a str,
    scope: Scope,
    config_path: &'a Path,
    /// The config's text before the run; `None`: there was no file.
    config_before: Option<&'a str>,
    /// The config as Zoi left it when it removed `removed`: the version is
    /// registered again on top of it (`None`: on the file as it is).
    zoi_text: Option<&'a str>,
    backup: Option<&'a Path>,
    /// The state file and its bytes before the run (`None`: there was
    /// none); `None` when the state is to stay as it is.
    state: Option<(&'a Path, Option<&'a [u8]>)>,
    /// The version the run removed from Zoi, to register again.
    removed: Option<&'a PreviousExtension>,
}

/// What [`put_back`] did and could not do, in words for the user.
#[derive(Debug, Default)]
struct Restored {
    done: Vec<String>,
    failed: Vec<String>,
    /// The kind of the first failure (`None`: nothing failed).
    kind: Option<ErrorKind>,
}

impl Restored {
    fn failed(&mut self, kind: ErrorKind, what: String) {
        self.kind.get_or_insert(kind);
        self.failed.push(what);
    }

    fn summary(&self) -> String {
        let done = if self.done.is_empty() {
            "nothing could be put back".to_string()
        } else {
            self.done.join(", ")
        };
        if self.failed.is_empty() {
            done
        } else {
            format!("{done}; NOT put back: {}", self.failed.join("; "))
        }
    }
}

/// Puts Zoi's record, the config and the state back as they were before a
/// run, each step tried whatever the others gave; says what it did.
fn put_back(p: &PutBack<'_>) -> Restored {
    let mut r = Restored::default();
    let mut zoi_lost = false;
    if let Some(prev) = p.removed {
        let again = match p.zoi {
            Some(zoi) => p
                .zoi_text
                .map_or(Ok(()), |t| write_config(p.config_path, t, p.scope))
                .and_then(|()| register_again(zoi, p.name, prev, p.scope)),
            None => Err(anyhow::anyhow!("zoi was not found")),
        };
        match again {
            Ok(()) => r
                .done
                .push(format!("Zoi holds {} {} again", p.name, prev.version)),
            Err(e) => {
                zoi_lost = true;
                r.failed(
                    ErrorKind::ZoiFailed,
                    format!(
                        "Zoi no longer holds {} {} and could not register it again ({e:#}); the state records that, and applying that version's bundle again registers it",
                        p.name, prev.version
                    ),
                );
            }
        }
    }
    let config = match p.config_before {
        Some(text) => write_config(p.config_path, text, p.scope),
        None => remove_if_there(p.config_path),
    };
    match config {
        Ok(()) => r.done.push(if p.config_before.is_some() {
            "the config was restored unchanged".to_string()
        } else {
            "the config this run created was removed".to_string()
        }),
        Err(e) => r.failed(
            ErrorKind::Io,
            format!(
                "the config {} could not be {} ({e:#}){}",
                p.config_path.display(),
                if p.config_before.is_some() {
                    "restored"
                } else {
                    "removed"
                },
                p.backup
                    .map(|b| format!("; the backup {} holds it as it was", b.display()))
                    .unwrap_or_default()
            ),
        ),
    }
    if let Some((path, before)) = p.state {
        // The state must not say Zoi holds what it no longer does.
        let mut unmarked = None;
        let bytes = match before {
            Some(b) if zoi_lost => Some(without_zoi_record(b).unwrap_or_else(|why| {
                unmarked = Some(why);
                b.to_vec()
            })),
            b => b.map(<[u8]>::to_vec),
        };
        let written = match &bytes {
            Some(b) => fsutil::atomic_write(path, b),
            None => remove_if_there(path),
        };
        match written {
            Ok(()) if let Some(why) = unmarked => r.failed(
                ErrorKind::Io,
                format!(
                    "zoi-mirror's state {} was restored, but still says Zoi holds the extension: it could not be rewritten ({why})",
                    path.display()
                ),
            ),
            Ok(()) if zoi_lost && bytes.is_some() => r.done.push(
                "zoi-mirror's state was restored (recording that Zoi does not hold the extension)"
                    .into(),
            ),
            Ok(()) => r.done.push("zoi-mirror's state was restored".into()),
            Err(e) => r.failed(
                ErrorKind::Io,
                format!(
                    "zoi-mirror's state {} could not be restored ({e:#})",
                    path.display()
                ),
            ),
        }
    }
    r
}

/// A state's bytes, saying Zoi holds no record of the extension.
fn without_zoi_record(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut st = serde_json::from_slice::<State>(bytes).map_err(|e| e.to_string())?;
    st.zoi_registered = false;
    state::encode(&st).map_err(|e| format!("{e:#}"))
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_failure("remove", path, &e).into())
        }
        _ => Ok(()),
    }
}

/// The kind of the first [`Failure`] in `e`'s chain (`internal` if none).
fn kind_of(e: &anyhow::Error) -> ErrorKind {
    crate::error::failure_of(e).map_or(ErrorKind::Internal, |f| f.kind)
}

/// Undoes exactly one apply run (not the whole history `revert` undoes):
/// Zoi's record (the run's version removed, the one it replaced registered
/// again), the config, the state. Every step is tried; the error, if any,
/// says what was and was not put back.
pub fn undo(u: &Undo, name: &str, zoi: Option<&zoi_cli::Zoi>) -> Result<()> {
    let mut removed_ours = true;
    let mut zoi_step = None;
    if u.zoi_added {
        let removal = match zoi {
            Some(zoi) => zoi.extension_remove(name).map(drop),
            None => Err(anyhow::anyhow!("zoi was not found")),
        };
        zoi_step = Some(removal.map_err(|e| {
            removed_ours = false;
            format!(
                "Zoi still holds {name} {} (`zoi extension remove {name}` failed: {e:#}); the state was kept, so `zoi-mirror revert {name}` can remove it",
                u.version
            )
        }));
    }
    let mut r = put_back(&PutBack {
        zoi,
        name,
        scope: u.scope,
        config_path: &u.config_path,
        config_before: u.config_before.as_deref(),
        zoi_text: None,
        backup: u.backup.as_deref(),
        // While Zoi holds this run's version, only this run's state says so.
        state: removed_ours.then_some((u.state_path.as_path(), u.state_before.as_deref())),
        removed: if removed_ours {
            u.replaced.as_ref()
        } else {
            None
        },
    });
    match zoi_step {
        Some(Ok(())) => r
            .done
            .insert(0, format!("Zoi no longer holds {name} {}", u.version)),
        // Zoi's step came first: its failure is the one the kind names.
        Some(Err(why)) => {
            r.kind = Some(ErrorKind::ZoiFailed);
            r.failed.insert(0, why);
        }
        None => {}
    }
    match r.kind {
        None => Ok(()),
        Some(kind) => Err(Failure::new(kind, r.summary()).into()),
    }
}

fn merge_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| serde_yaml::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// The extension's changes, from `bundle.json`.
pub fn extension_changes(bundle: &Loaded) -> Result<Vec<Change>> {
    Ok(bundle.manifest.extension_changes.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(y: &str) -> Value {
        serde_yaml::from_str(y).unwrap()
    }

    fn layer() -> Config {
        serde_yaml::from_str("repos: [core, acme]\ncache_mirrors: [https://m]\n").unwrap()
    }

    fn current(text: &str) -> Current {
        let mapping = match serde_yaml::from_str::<Value>(text).unwrap() {
            Value::Mapping(m) => m,
            _ => Mapping::new(),
        };
        Current {
            text: Some(text.to_string()),
            mapping,
        }
    }

    fn keys() -> Vec<String> {
        vec!["repos".into(), "cache_mirrors".into()]
    }

    /// The JSON names are a contract (`apply --json`); `as_str`
    /// (human output) must say the same.
    #[test]
    fn zoi_action_serialises_as_before() {
        let all = [
            (ZoiAction::Added, "added"),
            (ZoiAction::AlreadyRegistered, "already_registered"),
            (ZoiAction::Replaced, "replaced"),
            (ZoiAction::Skipped, "skipped"),
            (ZoiAction::NotUsed, "not_used"),
        ];
        for (a, name) in all {
            assert_eq!(serde_json::to_value(a).unwrap(), name);
            assert_eq!(a.as_str(), name);
            assert_eq!(format!("{a:<20}|"), format!("{name:<20}|"));
        }
    }

    #[test]
    fn plan_edits_merges_keeps_comments_and_unchanged_keys() {
        let cur = current("# mine\nrepos: [extra] # keep\ncache_mirrors: [https://m] # same\n");
        let plan = plan_edits(&keys(), &layer(), &cur, None, LayoutKind::Xdg, || {
            unreachable!("the file exists")
        })
        .unwrap();
        assert!(plan.existed && plan.config_changes());
        assert_eq!(
            plan.new_text,
            "# mine\nrepos:\n- extra\n- core\n- acme\ncache_mirrors: [https://m] # same\n"
        );
        let changed: Vec<(&str, bool)> = plan
            .keys
            .iter()
            .map(|k| (k.key.as_str(), k.changed))
            .collect();
        assert_eq!(changed, [("repos", true), ("cache_mirrors", false)]);
        let repos = &plan.states["repos"];
        assert_eq!(repos.before, Some(v("[extra]")));
        assert_eq!(repos.applied, v("[extra, core, acme]"));
        assert_eq!(repos.before_text.as_deref(), Some("repos: [extra] # keep"));
        assert!(plan.notes.is_empty());
    }

    #[test]
    fn plan_edits_keeps_the_first_original_and_fills_legacy_booleans() {
        let cur = current("repos: [core, acme]\n");
        let previous = State {
            format: state::STATE_FORMAT,
            extension: "acme".into(),
            version: "1.0.0".into(),
            scope: Scope::User,
            config_path: "/c".into(),
            layout: LayoutKind::Legacy,
            bundle_sha512: String::new(),
            zoi_registered: false,
            keys: [(
                "repos".to_string(),
                KeyState {
                    before: Some(v("[main]")),
                    applied: v("[core, acme]"),
                    replacing: Vec::new(),
                    before_text: Some("repos: [main]\n".into()),
                },
            )]
            .into(),
        };
        let plan = plan_edits(
            &["repos".to_string()],
            &layer(),
            &cur,
            Some(&previous),
            LayoutKind::Legacy,
            || unreachable!("the file exists"),
        )
        .unwrap();
        assert_eq!(plan.states["repos"].before, Some(v("[main]")));
        assert_eq!(
            plan.states["repos"].before_text.as_deref(),
            Some("repos: [main]\n")
        );
        for b in LEGACY_REQUIRED_BOOLS {
            assert!(plan.new_text.contains(&format!("{b}: false")), "{b}");
        }
        assert_eq!(plan.notes.len(), LEGACY_REQUIRED_BOOLS.len());
    }

    #[test]
    fn plan_edits_starts_a_missing_file_from_new_file() {
        let none = Current {
            text: None,
            mapping: Mapping::new(),
        };
        let plan = plan_edits(&keys(), &layer(), &none, None, LayoutKind::Xdg, || {
            "# new\njobs: 2\n".to_string()
        })
        .unwrap();
        assert!(!plan.existed && plan.config_changes());
        assert_eq!(plan.old_text, "");
        assert!(
            plan.new_text.starts_with("# new\njobs: 2\n"),
            "{}",
            plan.new_text
        );
        assert!(plan.new_text.contains("- acme"));
    }

    fn zoi() -> zoi_cli::Zoi {
        zoi_cli::Zoi {
            path: "/usr/bin/zoi".into(),
            version: Some(semver::Version::new(1, 29, 4)),
            root: None,
            as_invoking_user: false,
        }
    }

    #[test]
    fn plan_zoi_without_zoi_or_in_the_system_scope_writes_directly() {
        let cur = current("{}\n");
        let p = plan_zoi(None, Scope::User, None, "acme", "1.0.0", &[], &cur, None).unwrap();
        assert_eq!(p.report.action, ZoiAction::NotUsed);
        assert!(!p.report.found && p.run.is_none());
        assert!(p.report.reason.unwrap().contains("zoi not found"));
        let z = zoi();
        let p = plan_zoi(
            Some(&z),
            Scope::System,
            None,
            "acme",
            "1.0.0",
            &[],
            &cur,
            None,
        )
        .unwrap();
        assert_eq!(p.report.action, ZoiAction::NotUsed);
        assert!(p.report.found && p.run.is_none());
        assert!(p.report.reason.unwrap().contains("system layer"));
    }

    #[test]
    fn plan_zoi_adds_replaces_or_leaves_the_registered_version() {
        let data = tempfile::tempdir().unwrap();
        let cur = current("{}\n");
        let z = zoi();
        let plan = |version: &str| {
            plan_zoi(
                Some(&z),
                Scope::User,
                Some(data.path()),
                "acme",
                version,
                &[],
                &cur,
                None,
            )
            .unwrap()
        };
        let p = plan("1.0.0");
        assert_eq!(p.report.action, ZoiAction::Added);
        let run = p.run.unwrap();
        assert!(run.registered.is_none() && run.strip.is_empty());

        let dir = data.path().join("pkgs/store/x1-acme/1.0.0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("manifest.json"),
            r#"{"name":"acme","version":"1.0.0","package_type":"extension"}"#,
        )
        .unwrap();
        let p = plan("1.0.0");
        assert_eq!(p.report.action, ZoiAction::AlreadyRegistered);
        assert!(p.run.is_none());
        let p = plan("2.0.0");
        assert_eq!(p.report.action, ZoiAction::Replaced);
        assert_eq!(p.run.unwrap().registered.unwrap().version, "1.0.0");
    }

    #[test]
    fn execute_backs_up_writes_state_then_config_and_records_the_undo() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        let state_path = dir.path().join("state/acme.user.json");
        let old = "repos: [extra]\n";
        std::fs::write(&config, old).unwrap();
        let cur = current(old);
        let edits = plan_edits(
            &keys(),
            &layer(),
            &cur,
            None,
            LayoutKind::Xdg,
            || unreachable!(),
        )
        .unwrap();
        let new_state = State {
            format: state::STATE_FORMAT,
            extension: "acme".into(),
            version: "1.0.0".into(),
            scope: Scope::User,
            config_path: config.clone(),
            layout: LayoutKind::Xdg,
            bundle_sha512: String::new(),
            zoi_registered: false,
            keys: edits.states.clone(),
        };
        let zoi = plan_zoi(None, Scope::User, None, "acme", "1.0.0", &[], &cur, None).unwrap();
        let mut report = ApplyReport {
            extension: "acme".into(),
            version: "1.0.0".into(),
            scope: Scope::User,
            target: Target {
                scope: Scope::User,
                layout: LayoutKind::Xdg,
                layout_reason: String::new(),
                config_path: config.clone(),
                state_dir: dir.path().join("state"),
                zoi_data_dir: None,
            },
            dry_run: false,
            already_applied: false,
            changed: true,
            keys: edits.keys.clone(),
            zoi: zoi.report.clone(),
            backup: None,
            state_file: state_path.clone(),
            diff: None,
            notes: Vec::new(),
            revert_command: String::new(),
            undo: None,
        };
        execute(
            &Execution {
                zoi: None,
                zoi_data_dir: None,
                scope: Scope::User,
                name: "acme",
                ext_file: Path::new("/nonexistent"),
                config_path: &config,
                state_path: &state_path,
                current: &cur,
                previous: None,
                edits: &edits,
                zoi_run: zoi.run.as_ref(),
                new_state: &new_state,
            },
            &mut report,
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&config).unwrap(), edits.new_text);
        assert_eq!(
            std::fs::read_to_string(report.backup.as_ref().unwrap()).unwrap(),
            old
        );
        assert_eq!(state::read(&state_path).unwrap().unwrap(), new_state);
        let undo = report.undo.as_ref().unwrap();
        assert_eq!(undo.config_before.as_deref(), Some(old));
        assert!(undo.state_before.is_none() && !undo.zoi_added);
        super::undo(undo, "acme", None).unwrap();
        assert_eq!(std::fs::read_to_string(&config).unwrap(), old);
        assert!(!state_path.exists());
    }
}
