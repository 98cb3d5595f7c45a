//! Editing Zoi's config on a user's machine: `apply`, `status`, `revert`.
//!
//! This is the part of the product that runs on other people's laptops, so
//! it is built around not losing anything:
//! - the existing file must parse as a Zoi config layer before anything is
//!   written (a file Zoi would silently discard is refused, not "fixed");
//! - only the keys the bundle manages change, by splicing serialiser output
//!   into the user's text (comments and unknown keys survive);
//! - a timestamped backup is taken, the state needed for revert is written
//!   first, and the config is replaced atomically (temp file, fsync,
//!   rename), so a crash at any point leaves the old file or the new one;
//!   the backup and the state are on disk before the config is replaced,
//!   so a power cut cannot lose them either (`apply`'s `execute` says which
//!   flush guards what);
//! - one lock per state directory serialises concurrent runs.
//!
//! One idea per file: `target` (which file: scope, layout, paths),
//! `config_file` (reading, splicing, backing up and replacing it), `lock`,
//! `state` (what revert needs), `apply` (plan edits → plan Zoi → execute),
//! `revert`, `status` (what Zoi actually uses), with `merge` and
//! `yamledit` for values and text, and `zoi_cli` for the real `zoi`.

mod apply;
mod config_file;
mod lock;
pub mod merge;
mod revert;
pub mod state;
pub mod status;
mod target;
pub mod yamledit;
pub mod zoi_cli;

pub use apply::{
    ApplyOptions, ApplyReport, KeyReport, PreviousExtension, Undo, ZoiAction, ZoiReport, apply,
    extension_changes, undo,
};
pub use config_file::{Current, backup, read_current, unified_diff};
pub use lock::{Lock, lock};
pub use revert::{RevertAction, RevertKey, RevertOptions, RevertReport, ZoiRemoval, revert};
pub use target::{Scope, Target, resolve_target};

/// Test hook: `ZOI_MIRROR_FAILPOINT=<name>` aborts the process at that
/// point, the way a power cut or `kill -9` would, so tests can prove every
/// intermediate state is safe; `ZOI_MIRROR_FAILPOINT=panic:<name>` panics
/// there instead, the way a bug would.
pub fn failpoint(name: &str) {
    let Ok(v) = std::env::var("ZOI_MIRROR_FAILPOINT") else {
        return;
    };
    if v == name {
        std::process::abort();
    }
    if v.strip_prefix("panic:") == Some(name) {
        panic!("failpoint {name}");
    }
}
