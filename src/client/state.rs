//! Per-extension state: what each managed key was before the first apply
//! and what apply wrote, so revert can undo exactly that.
//!
//! The state is written *before* the config is replaced. A crash between
//! the two leaves a state whose `applied` values are not (yet) in the file;
//! the next apply keeps the recorded `before` values, so the user's original
//! settings are never lost, whatever point a run was killed at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::target::Scope;
use crate::error::{ErrorKind, Failure};
use crate::fsutil;
use crate::zoi::paths::LayoutKind;

pub const STATE_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyState {
    /// The key's value before the first apply; `None`: the key was absent.
    pub before: Option<Value>,
    /// The value apply wrote.
    pub applied: Value,
    /// Values earlier applies wrote that may still be on disk: an upgrade
    /// records the old version's value here before it replaces the file,
    /// and drops it once the file is written. A crash in between leaves a
    /// state that still describes what is on disk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replacing: Vec<Value>,
    /// The key's exact text (comments, indentation, style) before the first
    /// apply, so revert can put it back as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_text: Option<String>,
}

impl KeyState {
    /// Every value apply may have left in the file for this key.
    pub fn written(&self) -> impl Iterator<Item = &Value> {
        std::iter::once(&self.applied).chain(self.replacing.iter())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    pub extension: String,
    pub version: String,
    pub scope: Scope,
    pub config_path: PathBuf,
    pub layout: LayoutKind,
    /// SHA-512 of the applied bundle's `bundle.json`.
    pub bundle_sha512: String,
    /// Whether apply registered the extension with Zoi (so revert runs
    /// `zoi extension remove`).
    pub zoi_registered: bool,
    pub keys: BTreeMap<String, KeyState>,
}

/// `<state dir>/<name>.<scope>.json`.
pub fn path(state_dir: &Path, name: &str, scope: &str) -> PathBuf {
    state_dir.join(format!("{name}.{scope}.json"))
}

pub fn read(path: &Path) -> Result<Option<State>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let s: State = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a zoi-mirror state file", path.display()))?;
            Ok(Some(s))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub fn encode(state: &State) -> Result<Vec<u8>> {
    let mut v = serde_json::to_vec_pretty(state)?;
    v.push(b'\n');
    Ok(v)
}

/// [`write`] in two halves, for a caller that flushes the state together
/// with other files ([`fsutil::sync_together`]): the bytes staged next to
/// `path`, not yet visible.
pub(super) fn stage(path: &Path, st: &State) -> Result<fsutil::Staged> {
    fsutil::stage_replacement(path, &encode(st)?).map_err(|e| write_failure(path, &e).into())
}

/// Renames a [`stage`]d state, once its file was flushed, over `path`; the
/// caller flushes the directory. A new state is given to the invoking user
/// under `sudo`.
pub(super) fn rename_flushed(staged: fsutil::Staged, scope: Scope) -> Result<()> {
    let path = staged.target().to_path_buf();
    let existed = path.exists();
    staged
        .rename_flushed()
        .map_err(|e| write_failure(&path, &e))?;
    finish_write(&path, existed, scope);
    Ok(())
}

fn finish_write(path: &Path, existed: bool, scope: Scope) {
    if !existed {
        super::config_file::give_to_invoking_user(path, scope);
    }
}

fn write_failure(path: &Path, e: &anyhow::Error) -> Failure {
    Failure::new(
        ErrorKind::Io,
        format!("cannot write state {}: {e:#}", path.display()),
    )
}

/// Replaces the state file at `path` (atomic; a new one is given to the
/// invoking user under `sudo`).
pub(super) fn write(path: &Path, st: &State, scope: Scope) -> Result<()> {
    let existed = path.exists();
    fsutil::atomic_write(path, &encode(st)?).map_err(|e| write_failure(path, &e))?;
    finish_write(path, existed, scope);
    Ok(())
}
