//! Zoi's config file on disk: reading it (and refusing one Zoi would not
//! use), editing it in place, backing it up and replacing it.
//!
//! The rules, each there so nothing of the user's is lost:
//! - the existing file must parse as a Zoi config layer before anything is
//!   written: a YAML syntax error, invalid UTF-8, a wrong type anywhere, a
//!   non-mapping, a dangling symlink, a FIFO or a directory is bad input
//!   (exit 2) named with file, line and column, never "fixed";
//! - only the managed keys change, by splicing serialiser output into the
//!   user's text (comments and unknown keys survive); when the file's style
//!   does not allow that, it is re-serialised and a note says so;
//! - a new file is a complete layer every supported Zoi accepts, taking the
//!   system layer's values for the settings a user layer would now decide;
//! - a backup `<file>.zoi-mirror-<UTC stamp>[-n].bak` is taken next to it,
//!   owned like the original;
//! - the file is replaced atomically (temp file, fsync, rename), a
//!   read-only file is refused (even as root), and files and folders made
//!   under `sudo` for a user-scope run are given to the invoking user.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_yaml::{Mapping, Value};

use super::target::Scope;
use super::yamledit;
use crate::error::{Diagnostic, ErrorKind, Failure, fail, io_failure};
use crate::fsutil;
use crate::zoi::config::Config;

/// A config file as found on disk.
#[derive(Debug, Clone)]
pub struct Current {
    pub text: Option<String>,
    pub mapping: Mapping,
}

impl Current {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.mapping.get(Value::String(key.to_string()))
    }
}

/// Reads `path` and insists it is a config layer Zoi would use: a YAML
/// syntax error or a wrong type anywhere is bad input (exit 2), named with
/// file, line and column, and nothing is written.
pub fn read_current(path: &Path) -> Result<Current> {
    // What is there is looked at before it is opened: opening a FIFO would
    // block forever, and a dangling symlink is not "no file yet".
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Current {
                text: None,
                mapping: Mapping::new(),
            });
        }
        Err(e) => return fail(io_failure("read", path, &e)),
        Ok(m) if m.file_type().is_symlink() && !path.exists() => {
            let to = std::fs::read_link(path).unwrap_or_default();
            return fail(
                Failure::new(
                    ErrorKind::ConfigInvalid,
                    format!(
                        "{} is a symlink to {}, which does not exist",
                        path.display(),
                        to.display()
                    ),
                )
                .hint("restore the file it points to (a dotfile manager's checkout?) or remove the link; nothing was changed"),
            );
        }
        Ok(_) => {}
    }
    if let Ok(m) = std::fs::metadata(path)
        && !m.is_file()
    {
        let what = file_type_name(&m);
        return fail(
            Failure::new(
                ErrorKind::ConfigInvalid,
                format!("{} is {what}, not a regular file", path.display()),
            )
            .hint("a Zoi config.yaml must be a regular file: move that out of the way and run again; nothing was changed"),
        );
    }
    let bytes = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => return fail(io_failure("read", path, &e)),
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let valid = String::from_utf8_lossy(&e.as_bytes()[..offset]).into_owned();
            let (line, column) = crate::error::line_col(&valid, offset);
            return fail(
                Failure::new(
                    ErrorKind::ConfigInvalid,
                    format!("{} is not UTF-8 text, so Zoi cannot read it", path.display()),
                )
                .hint("save the file as UTF-8 (or restore a backup next to it) and run again. Nothing was changed")
                .with_diagnostics(vec![Diagnostic {
                    file: path.to_path_buf(),
                    line,
                    column,
                    message: "invalid UTF-8 here".into(),
                    hint: None,
                }]),
            );
        }
    };
    let invalid = |e: serde_yaml::Error, what: &str| -> anyhow::Error {
        let loc = e.location();
        Failure::new(ErrorKind::ConfigInvalid, format!("{} is not a valid Zoi config layer", path.display()))
            .hint(format!(
                "{what}; fix the file (or restore a backup next to it) and run again. Nothing was changed"
            ))
            .with_diagnostics(vec![Diagnostic {
                file: path.to_path_buf(),
                line: loc.as_ref().map_or(1, |l| l.line()),
                column: loc.as_ref().map_or(1, |l| l.column()),
                message: e.to_string(),
                hint: None,
            }])
            .into()
    };
    let value: Value = serde_yaml::from_str(&text).map_err(|e| {
        invalid(
            e,
            "Zoi cannot read a file with a YAML syntax error and ignores it at start-up",
        )
    })?;
    let mapping = match value {
        Value::Mapping(m) => m,
        Value::Null => Mapping::new(),
        _ => {
            return fail(
                Failure::new(
                    ErrorKind::ConfigInvalid,
                    format!("{} is not a YAML mapping, so Zoi ignores it", path.display()),
                )
                .hint("a Zoi config.yaml is a mapping of settings (`key: value` lines). Nothing was changed"),
            );
        }
    };
    if let Err(e) = serde_yaml::from_value::<Config>(Value::Mapping(mapping.clone())) {
        // serde_yaml has no location for value errors; re-parse to get one.
        let located = serde_yaml::from_str::<Config>(&text).err().unwrap_or(e);
        return Err(invalid(
            located,
            "Zoi silently replaces a layer with a wrong type by its defaults, losing every setting in it",
        ));
    }
    Ok(Current {
        text: Some(text),
        mapping,
    })
}

/// "a FIFO", "a directory", … for a message about a file that is not one.
fn file_type_name(m: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    if m.is_dir() {
        "a directory"
    } else {
        "something other than a file"
    }
}

/// `YYYYMMDDTHHMMSSZ` (UTC) for backup names.
fn utc_stamp() -> String {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// Copies `path` to `<path>.zoi-mirror-<stamp>.bak` next to it.
pub fn backup(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .map_or("config.yaml".into(), |n| n.to_string_lossy());
    let stamp = utc_stamp();
    let mut candidate = path.with_file_name(format!("{name}.zoi-mirror-{stamp}.bak"));
    let mut n = 1;
    while candidate.exists() {
        candidate = path.with_file_name(format!("{name}.zoi-mirror-{stamp}-{n}.bak"));
        n += 1;
    }
    std::fs::copy(path, &candidate).map_err(|e| io_failure("back up", path, &e))?;
    // The backup belongs to whoever owns the file (a copy made under sudo
    // would be root's, and unreadable for a 0600 original).
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::chown(&candidate, Some(meta.uid()), Some(meta.gid()));
    }
    Ok(candidate)
}

/// A new config file: a complete layer every supported Zoi accepts (the
/// four booleans Zoi ≤ 1.25 required included), before managed keys are
/// spliced in.
///
/// A key present in a layer decides over the layers below it, so the
/// settings a user file would now "decide" take the system layer's values
/// where it has them: creating the file changes nothing Zoi already did.
///
/// The header comment names the bundle: `name` and `version` are the
/// checked values of `bundle.json` (a Zoi package name, a semantic
/// version), which cannot hold a line break or anything YAML would read.
pub(super) fn new_file_text(name: &str, version: &semver::Version, system: &Mapping) -> String {
    const DECIDING: [&str; 10] = [
        "telemetry_enabled",
        "audit_log_enabled",
        "rollback_enabled",
        "protect_db",
        "offline_mode",
        "max_resolution_depth",
        "jobs",
        "system_generations_limit",
        "max_delta_steps",
        "kernel_retention",
    ];
    let mut layer =
        match serde_yaml::to_value(Config::default()).expect("default config serialises") {
            Value::Mapping(m) => m,
            _ => Mapping::new(),
        };
    for key in DECIDING {
        let k = Value::String(key.into());
        if let Some(v) = system.get(&k) {
            layer.insert(k, v.clone());
        }
    }
    let header = format!("# Zoi config, created by zoi-mirror apply ({name} {version}).");
    debug_assert!(
        !header.contains(['\n', '\r']) && crate::zoi::names::package_name_problem(name).is_none(),
        "an unchecked name reached the header: {header:?}"
    );
    format!(
        "{header}\n{}",
        serde_yaml::to_string(&layer).expect("config serialises")
    )
}

/// Top-level keys to set (`Some`) or remove (`None`).
pub(super) type Edits = Vec<(String, Option<Value>)>;

/// The text after setting `edits`, keeping comments when the style allows,
/// else a full re-serialisation (and a note saying so).
pub(super) fn splice(
    text: &str,
    mapping: &Mapping,
    edits: &[(String, Option<Value>)],
    notes: &mut Vec<String>,
) -> Result<String> {
    match yamledit::set_keys(text, edits) {
        Ok(t) => Ok(t),
        Err(yamledit::Unsupported(why)) => {
            notes.push(format!(
                "comments could not be kept ({why}); the file was rewritten"
            ));
            let mut m = mapping.clone();
            for (k, v) in edits {
                match v {
                    Some(v) => {
                        m.insert(Value::String(k.clone()), v.clone());
                    }
                    None => {
                        m.remove(Value::String(k.clone()));
                    }
                }
            }
            Ok(serde_yaml::to_string(&m)?)
        }
    }
}

pub fn unified_diff(path: &Path, old: &str, new: &str, existed: bool) -> String {
    let p = path.display().to_string();
    crate::output::diff::unified(old, new, if existed { &p } else { "/dev/null" }, &p)
}

/// Gives a file we created under `sudo` for a user-scope run to the
/// invoking user, so their own Zoi can rewrite it later.
pub(super) fn give_to_invoking_user(path: &Path, scope: Scope) {
    #[cfg(unix)]
    if scope == Scope::User
        && nix::unistd::geteuid().is_root()
        && let Some(user) = crate::zoi::paths::invoking_user()
    {
        let _ = std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()));
    }
    #[cfg(not(unix))]
    let _ = (path, scope);
}

/// Creates `path`'s missing parent directories, each given to the invoking
/// user under `sudo` (a root-owned `~/.config` breaks other programs).
pub(super) fn create_dirs(path: &Path, scope: Scope) -> Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| io_failure("create", dir, &e))?;
    for d in missing {
        give_to_invoking_user(&d, scope);
    }
    Ok(())
}

/// Refuses to touch a config file someone made read-only (even as root,
/// where the write itself would succeed): that is a decision to respect.
pub(super) fn ensure_writable(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    #[cfg(unix)]
    let denied = nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_err();
    #[cfg(not(unix))]
    let denied = false;
    if meta.permissions().readonly() || denied {
        return fail(
            Failure::new(
                ErrorKind::ReadOnly,
                format!("{} is read-only", path.display()),
            )
            .hint(
                "make it writable (chmod u+w) if zoi-mirror should change it; nothing was changed",
            ),
        );
    }
    Ok(())
}

/// Replaces `path` with `text` (atomic) and maps failures to exit 3.
pub(super) fn write_config(path: &Path, text: &str, scope: Scope) -> Result<()> {
    let existed = path.exists();
    create_dirs(path, scope)?;
    if let Err(e) = fsutil::atomic_write(path, text.as_bytes()) {
        return Err(write_failure(path, &e));
    }
    if !existed {
        give_to_invoking_user(path, scope);
    }
    Ok(())
}

/// A failed write of `path` as exit 3, naming the file.
fn write_failure(path: &Path, e: &anyhow::Error) -> anyhow::Error {
    let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>());
    match io {
        Some(io) => io_failure("write", path, io),
        None => Failure::new(
            ErrorKind::Io,
            format!("cannot write {}: {e:#}", path.display()),
        ),
    }
    .into()
}

/// [`write_config`] in two halves, so the caller can flush the new text
/// together with other files ([`fsutil::sync_together`]): the text staged
/// next to the config, not yet visible.
pub(super) struct StagedConfig {
    staged: fsutil::Staged,
    path: PathBuf,
    existed: bool,
    scope: Scope,
}

pub(super) fn stage_config(path: &Path, text: &str, scope: Scope) -> Result<StagedConfig> {
    let existed = path.exists();
    create_dirs(path, scope)?;
    let staged =
        fsutil::stage_replacement(path, text.as_bytes()).map_err(|e| write_failure(path, &e))?;
    Ok(StagedConfig {
        staged,
        path: path.to_path_buf(),
        existed,
        scope,
    })
}

impl StagedConfig {
    pub(super) fn file(&self) -> &std::fs::File {
        self.staged.file()
    }

    /// Replaces the config, once [`StagedConfig::file`] was flushed, and
    /// flushes the rename.
    pub(super) fn finish(self) -> Result<()> {
        let dir = self.staged.dir().to_path_buf();
        self.staged
            .rename_flushed()
            .map_err(|e| write_failure(&self.path, &e))?;
        fsutil::sync_dir(&dir);
        if !self.existed {
            give_to_invoking_user(&self.path, self.scope);
        }
        Ok(())
    }
}
