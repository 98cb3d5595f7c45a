//! `revert`: giving back each managed key what it had before the first
//! apply, and removing the extension from Zoi.
//!
//! Rules, per key recorded in the state: a key still holding what apply
//! wrote (or an older apply's value still on disk) is `restored` to its
//! original value — and its original text (comments, indentation, style)
//! when the value is the original one; a key the user changed since is
//! `kept`; a key already back is `unchanged`. A list the user extended
//! keeps the user's entries (see [`super::merge`]). Zoi's record is
//! removed when it still exists; if `zoi extension remove` fails, the
//! config is still restored but the state is kept, so running revert
//! again finishes the job. A run takes a backup first and the lock while
//! it writes; `--dry-run` only computes the diff.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use serde_yaml::Value;

use super::config_file::{
    backup, ensure_writable, read_current, splice, unified_diff, write_config,
};
use super::target::Scope;
use super::{failpoint, lock, merge, state, yamledit, zoi_cli};
use crate::error::{ErrorKind, Failure, io_failure};
use crate::fsutil;
use crate::zoi::paths::Env;

/// What revert did with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevertAction {
    /// Set back to its value before the first apply.
    Restored,
    /// Changed by the user after apply, so left alone.
    Kept,
    /// Already what it was before apply.
    Unchanged,
}

impl RevertAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RevertAction::Restored => "restored",
            RevertAction::Kept => "kept",
            RevertAction::Unchanged => "unchanged",
        }
    }
}

impl std::fmt::Display for RevertAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so width and alignment in format strings apply.
        f.pad(self.as_str())
    }
}

/// What revert did with Zoi's record of the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoiRemoval {
    /// `zoi extension remove` removed it.
    Removed,
    /// Zoi holds no record of it (or apply did not register it).
    NotRegistered,
    /// Zoi holds it, but no `zoi` was found to remove it.
    NotFound,
    /// `zoi extension remove` failed: the state is kept.
    Failed,
}

impl ZoiRemoval {
    pub fn as_str(self) -> &'static str {
        match self {
            ZoiRemoval::Removed => "removed",
            ZoiRemoval::NotRegistered => "not_registered",
            ZoiRemoval::NotFound => "not_found",
            ZoiRemoval::Failed => "failed",
        }
    }
}

impl std::fmt::Display for ZoiRemoval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so width and alignment in format strings apply.
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct RevertOptions {
    pub name: String,
    pub scope: Scope,
    pub env: Env,
    pub zoi: Option<zoi_cli::Zoi>,
    pub dry_run: bool,
    pub lock_timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevertKey {
    pub key: String,
    pub action: RevertAction,
    pub now: Option<Value>,
    pub after: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevertReport {
    pub extension: String,
    pub scope: Scope,
    /// False when there was nothing to revert.
    pub reverted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_path: Option<PathBuf>,
    pub keys: Vec<RevertKey>,
    pub zoi: ZoiRemoval,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    pub notes: Vec<String>,
}

/// Reverts what every apply of `opts.name` changed.
pub fn revert(opts: &RevertOptions) -> Result<RevertReport> {
    let state_dir = opts.env.state_dir(opts.scope == Scope::System)?;
    let state_path = state::path(&state_dir, &opts.name, opts.scope.as_str());
    let mut report = RevertReport {
        extension: opts.name.clone(),
        scope: opts.scope,
        reverted: false,
        config_path: None,
        keys: Vec::new(),
        zoi: ZoiRemoval::NotRegistered,
        backup: None,
        diff: None,
        notes: Vec::new(),
    };
    let _lock = if opts.dry_run || !state_dir.exists() {
        None
    } else {
        let l = lock::lock(&state_dir, opts.lock_timeout)?;
        fsutil::remove_stale_temps(&state_path);
        Some(l)
    };
    let Some(st) = state::read(&state_path)
        .map_err(|e| Failure::new(ErrorKind::StateInvalid, format!("{e:#}")))?
    else {
        report.notes.push(format!(
            "nothing to revert: no state for {} in {}",
            opts.name,
            state_dir.display()
        ));
        return Ok(report);
    };
    report.config_path = Some(st.config_path.clone());

    if !opts.dry_run {
        fsutil::remove_stale_temps(&st.config_path);
    }
    let current = read_current(&st.config_path)?;
    if !opts.dry_run {
        ensure_writable(&st.config_path)?;
    }
    let mut edits = Vec::new();
    for (key, ks) in &st.keys {
        let now = current.get(key).cloned();
        let written: Vec<&Value> = ks.written().collect();
        let action = match merge::restore_any(key, now.as_ref(), &written, ks.before.as_ref()) {
            merge::Restore::Set(v) if v == now => RevertKey {
                key: key.clone(),
                action: RevertAction::Unchanged,
                now: now.clone(),
                after: v,
            },
            merge::Restore::Set(v) => {
                edits.push((key.clone(), v.clone()));
                RevertKey {
                    key: key.clone(),
                    action: RevertAction::Restored,
                    now: now.clone(),
                    after: v,
                }
            }
            merge::Restore::Kept => RevertKey {
                key: key.clone(),
                action: RevertAction::Kept,
                now: now.clone(),
                after: now.clone(),
            },
        };
        report.keys.push(action);
    }
    let old_text = current.text.clone().unwrap_or_default();
    let mut new_text = if edits.is_empty() {
        old_text.clone()
    } else {
        splice(&old_text, &current.mapping, &edits, &mut report.notes)?
    };
    // A key restored to its original value gets its original text back too
    // (comments, indentation, flow or block style).
    for (key, value) in &edits {
        let ks = &st.keys[key];
        if let (Some(v), Some(raw)) = (value, &ks.before_text)
            && ks.before.as_ref() == Some(v)
            && let Ok(t) = yamledit::set_raw(&new_text, key, raw, v)
        {
            new_text = t;
        }
    }

    if opts.dry_run {
        report.diff = Some(unified_diff(
            &st.config_path,
            &old_text,
            &new_text,
            current.text.is_some(),
        ));
        return Ok(report);
    }

    // Is Zoi still holding the record apply made? (The user may have run
    // `zoi extension remove` already.)
    let still_registered = st.zoi_registered
        && opts
            .env
            .user_data(st.layout)
            .ok()
            .and_then(|d| zoi_cli::registered(&d, &opts.name))
            .is_some();
    let touches = new_text != old_text || (still_registered && opts.zoi.is_some());
    if current.text.is_some() && touches {
        report.backup = Some(backup(&st.config_path)?);
    }
    failpoint("revert-after-backup");
    if still_registered {
        match &opts.zoi {
            Some(zoi) => match zoi.extension_remove(&opts.name) {
                Ok(_) => report.zoi = ZoiRemoval::Removed,
                Err(e) => {
                    report.zoi = ZoiRemoval::Failed;
                    report
                        .notes
                        .push(format!("zoi extension remove failed: {e:#}"));
                }
            },
            None => {
                report.zoi = ZoiRemoval::NotFound;
                report.notes.push(format!(
                    "the extension is registered with Zoi but zoi was not found: run `zoi extension remove {}`",
                    opts.name
                ));
            }
        }
    }

    // Zoi's remove rewrote the file from its own records; the user's text
    // (comments included) with the recorded values restored wins.
    if current.text.is_some() && touches {
        write_config(&st.config_path, &new_text, opts.scope)?;
    }
    failpoint("revert-after-config");
    if report.zoi == ZoiRemoval::Failed {
        // Zoi still holds the extension: keep the state so that a later
        // revert (after fixing what made Zoi fail) finishes the job.
        report.notes.push(format!(
            "the state was kept; fix the Zoi error, then run `zoi-mirror revert {}` again",
            opts.name
        ));
        return Ok(report);
    }
    std::fs::remove_file(&state_path).map_err(|e| io_failure("remove", &state_path, &e))?;
    report.reverted = true;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON names are a contract (`revert --json`); `as_str` (human
    /// output) must say the same.
    #[test]
    fn states_serialise_as_before() {
        for (a, name) in [
            (RevertAction::Restored, "restored"),
            (RevertAction::Kept, "kept"),
            (RevertAction::Unchanged, "unchanged"),
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), name);
            assert_eq!(a.to_string(), name);
        }
        for (z, name) in [
            (ZoiRemoval::Removed, "removed"),
            (ZoiRemoval::NotRegistered, "not_registered"),
            (ZoiRemoval::NotFound, "not_found"),
            (ZoiRemoval::Failed, "failed"),
        ] {
            assert_eq!(serde_json::to_value(z).unwrap(), name);
            assert_eq!(z.to_string(), name);
        }
    }
}
