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
//! - one lock per state directory serialises concurrent runs.

pub mod merge;
pub mod state;
pub mod status;
pub mod yamledit;
pub mod zoi_cli;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use serde_yaml::{Mapping, Value};

use crate::bundle::load::Loaded;
use crate::error::{Diagnostic, Failure, fail, io_failure};
use crate::fsutil;
use crate::zoi::config::{Config, LEGACY_REQUIRED_BOOLS};
use crate::zoi::extension::Change;
use crate::zoi::paths::{Env, LayoutKind};
use state::{KeyState, State};

/// Which config layer a command acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    User,
    System,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::System => "system",
        }
    }

    /// The bundle file carrying this scope's layer.
    pub fn bundle_layer(self) -> &'static str {
        match self {
            Scope::User => crate::bundle::CONFIG_USER,
            Scope::System => crate::bundle::CONFIG_SYSTEM,
        }
    }
}

/// The file a command acts on, and how it was chosen.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub scope: Scope,
    pub layout: LayoutKind,
    pub layout_reason: String,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    /// Zoi's user data dir (user scope).
    pub zoi_data_dir: Option<PathBuf>,
}

/// Decides between the XDG and the legacy layout: `--layout`, else the
/// installed Zoi's version, else which file exists (XDG when neither).
pub fn resolve_target(
    env: &Env,
    scope: Scope,
    layout: Option<LayoutKind>,
    zoi_version: Option<&semver::Version>,
) -> Result<Target> {
    let (layout, reason) = match (layout, zoi_version) {
        (Some(l), _) => (l, "--layout".to_string()),
        (None, Some(v)) => (LayoutKind::for_version(v), format!("installed zoi {v}")),
        (None, None) => {
            let xdg = env.user_config(LayoutKind::Xdg)?;
            let legacy = env.user_config(LayoutKind::Legacy)?;
            if !xdg.exists() && legacy.exists() {
                (
                    LayoutKind::Legacy,
                    format!("only {} exists", legacy.display()),
                )
            } else {
                (LayoutKind::Xdg, "default (no zoi found)".to_string())
            }
        }
    };
    let (config_path, zoi_data_dir) = match scope {
        Scope::User => (env.user_config(layout)?, Some(env.user_data(layout)?)),
        Scope::System => (env.system_config(), None),
    };
    Ok(Target {
        scope,
        layout,
        layout_reason: reason,
        config_path,
        state_dir: env.state_dir(scope == Scope::System)?,
        zoi_data_dir,
    })
}

fn layout_name(l: LayoutKind) -> &'static str {
    match l {
        LayoutKind::Xdg => "xdg",
        LayoutKind::Legacy => "legacy",
    }
}

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
                Failure::bad_input(
                    "config_invalid",
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
            Failure::bad_input(
                "config_invalid",
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
                Failure::bad_input(
                    "config_invalid",
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
        Failure::bad_input("config_invalid", format!("{} is not a valid Zoi config layer", path.display()))
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
                Failure::bad_input(
                    "config_invalid",
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

/// `YYYYMMDDTHHMMSSZ` (UTC) for backup names, without pulling in a date
/// crate for one timestamp.
fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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

/// Test hook: `ZOI_MIRROR_FAILPOINT=<name>` aborts the process at that
/// point, the way a power cut or `kill -9` would, so tests can prove every
/// intermediate state is safe.
pub fn failpoint(name: &str) {
    if std::env::var("ZOI_MIRROR_FAILPOINT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}

/// An exclusive lock held for the life of the value.
pub struct Lock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the lock in `state_dir`, waiting at most `timeout`.
pub fn lock(state_dir: &Path, timeout: Duration) -> Result<Lock> {
    std::fs::create_dir_all(state_dir).map_err(|e| io_failure("create", state_dir, &e))?;
    let path = state_dir.join("zoi-mirror.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_failure("open", &path, &e))?;
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return fail(
                    Failure::could_not_run(
                        "lock_held",
                        format!("another zoi-mirror run holds the lock {}", path.display()),
                    )
                    .hint("wait for it to finish, or raise --lock-timeout"),
                );
            }
            Err(std::fs::TryLockError::Error(e)) => return fail(io_failure("lock", &path, &e)),
        }
    }
}

/// A new config file: a complete layer every supported Zoi accepts (the
/// four booleans Zoi ≤ 1.25 required included), before managed keys are
/// spliced in.
///
/// A key present in a layer decides over the layers below it, so the
/// settings a user file would now "decide" take the system layer's values
/// where it has them: creating the file changes nothing Zoi already did.
fn new_file_text(name: &str, version: &str, system: &Mapping) -> String {
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
    format!(
        "# Zoi config, created by zoi-mirror apply ({name} {version}).\n{}",
        serde_yaml::to_string(&layer).expect("config serialises")
    )
}

/// Top-level keys to set (`Some`) or remove (`None`).
type Edits = Vec<(String, Option<Value>)>;

/// The text after setting `edits`, keeping comments when the style allows,
/// else a full re-serialisation (and a note saying so).
fn splice(
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
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .header(if existed { &p } else { "/dev/null" }, &p)
        .to_string()
}

/// Gives a file we created under `sudo` for a user-scope run to the
/// invoking user, so their own Zoi can rewrite it later.
fn give_to_invoking_user(path: &Path, scope: Scope) {
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
fn create_dirs(path: &Path, scope: Scope) -> Result<()> {
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
fn ensure_writable(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    #[cfg(unix)]
    let denied = nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_err();
    #[cfg(not(unix))]
    let denied = false;
    if meta.permissions().readonly() || denied {
        return fail(
            Failure::could_not_run("read_only", format!("{} is read-only", path.display())).hint(
                "make it writable (chmod u+w) if zoi-mirror should change it; nothing was changed",
            ),
        );
    }
    Ok(())
}

/// Replaces `path` with `text` (atomic) and maps failures to exit 3.
fn write_config(path: &Path, text: &str, scope: Scope) -> Result<()> {
    let existed = path.exists();
    create_dirs(path, scope)?;
    if let Err(e) = fsutil::atomic_write(path, text.as_bytes()) {
        let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>());
        let f = match io {
            Some(io) => io_failure("write", path, io),
            None => Failure::could_not_run("io", format!("cannot write {}: {e:#}", path.display())),
        };
        return fail(f);
    }
    if !existed {
        give_to_invoking_user(path, scope);
    }
    Ok(())
}

// ------------------------------------------------------------------ apply

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
    /// `added`, `already_registered`, `replaced` (another version was
    /// registered), `skipped` or `not_used`.
    pub action: String,
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

fn bundle_layer(bundle: &Loaded, scope: Scope) -> Result<Config> {
    let bytes = bundle.verified(scope.bundle_layer())?;
    serde_yaml::from_slice(&bytes).map_err(|e| {
        Failure::bad_input(
            "bundle_invalid",
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

fn managed(bundle: &Loaded, scope: Scope) -> Result<Vec<String>> {
    let keys = match scope {
        Scope::User => &bundle.manifest.manages.user,
        Scope::System => &bundle.manifest.manages.system,
    };
    for k in keys {
        if !merge::MANAGEABLE.contains(&k.as_str()) {
            return fail(
                Failure::bad_input(
                    "bundle_invalid",
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
                Failure::bad_input(
                    "bundle_invalid",
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
            Failure::bad_input(
                "applied_elsewhere",
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
    let Ok(entries) = std::fs::read_dir(&target.state_dir) else {
        return Ok(());
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
        let Ok(Some(st)) = state::read(&e.path()) else {
            continue;
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
        Failure::bad_input(
            "managed_by_other",
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
            Failure::bad_input("state_invalid", format!("{e:#}"))
                .hint("remove the state file to start over")
        })?;
        check_applied_here(&name, previous.as_ref(), &target)?;
        check_other_extensions(&name, scope, &keys, &target)?;
        Ok((current, previous))
    };
    preflight()?;
    let _lock = if opts.dry_run {
        None
    } else {
        let l = lock(&target.state_dir, opts.lock_timeout)?;
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
    let mut notes = Vec::new();

    // before: the recorded original when we applied earlier (even if that
    // run crashed before replacing the file), else what is there now.
    let mut key_states = BTreeMap::new();
    let mut edits = Vec::new();
    let mut key_reports = Vec::new();
    for key in &keys {
        let now = current.get(key).cloned();
        let prev = previous.as_ref().and_then(|s| s.keys.get(key));
        let before = match prev {
            Some(ks) => ks.before.clone(),
            None => now.clone(),
        };
        // Entries an earlier version of the bundle added and this one no
        // longer lists (a retired mirror) go; the user's own entries stay.
        let base = match prev {
            Some(ks) => merge::without_retired(key, now.as_ref(), ks, &layer),
            None => now.clone(),
        };
        let applied = merge::applied_value(key, base.as_ref(), &layer);
        key_reports.push(KeyReport {
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
        key_states.insert(
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
    if target.layout == LayoutKind::Legacy {
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
    let base_text = current.text.clone().unwrap_or_else(|| {
        // A system layer Zoi would discard counts as empty.
        let system = match scope {
            Scope::User => read_current(&opts.env.system_config())
                .map(|c| c.mapping)
                .unwrap_or_default(),
            Scope::System => Mapping::new(),
        };
        new_file_text(&name, &version, &system)
    });
    let base_mapping = if existed {
        current.mapping.clone()
    } else {
        match serde_yaml::from_str::<Value>(&base_text)? {
            Value::Mapping(m) => m,
            _ => Mapping::new(),
        }
    };
    let new_text = splice(&base_text, &base_mapping, &edits, &mut notes)?;
    let config_changes = !existed || new_text != old_text;

    // Zoi: is the extension already registered, and would any change collide?
    let mut zoi_report = ZoiReport {
        found: opts.zoi.is_some(),
        path: opts.zoi.as_ref().map(|z| z.path.clone()),
        version: opts
            .zoi
            .as_ref()
            .and_then(|z| z.version.as_ref().map(ToString::to_string)),
        action: "not_used".into(),
        reason: None,
    };
    // (the version Zoi has registered, if another; entries to hide from Zoi)
    let mut zoi_plan: Option<(Option<zoi_cli::Registered>, Edits)> = None;
    match (&opts.zoi, scope, &target.zoi_data_dir) {
        (None, _, _) => {
            zoi_report.reason =
                Some("zoi not found (or --no-zoi): the config was written directly".into());
        }
        (Some(_), Scope::System, _) => {
            zoi_report.reason = Some(
                "Zoi extensions change only the user config; the system layer is written directly"
                    .into(),
            );
        }
        (Some(_), Scope::User, Some(data)) => {
            let registered = zoi_cli::registered(data, &name);
            let same = registered.as_ref().is_some_and(|r| r.version == version);
            if same {
                zoi_report.action = "already_registered".into();
            } else {
                let user_cfg: Config =
                    serde_yaml::from_value(Value::Mapping(current.mapping.clone()))
                        .unwrap_or_default();
                let changes: Vec<Change> = extension_changes(bundle)?;
                // A version we registered earlier owns its keys, clones and
                // registries: removing it first frees them.
                let ours =
                    registered.is_some() && previous.as_ref().is_some_and(|p| p.zoi_registered);
                let blocking: Vec<String> = changes
                    .iter()
                    .filter(|c| !c.collision_is_hideable() && !ours)
                    .filter_map(|c| c.collision(&user_cfg, data))
                    .collect();
                if !blocking.is_empty() {
                    zoi_report.action = "skipped".into();
                    zoi_report.reason = Some(format!(
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
                    for c in &changes {
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
                    zoi_report.action = if registered.is_some() {
                        "replaced"
                    } else {
                        "added"
                    }
                    .into();
                    zoi_plan = Some((registered, strip));
                }
            }
        }
        (Some(_), Scope::User, None) => {}
    }

    let new_state = State {
        format: state::STATE_FORMAT,
        extension: name.clone(),
        version: version.clone(),
        scope: scope.as_str().into(),
        config_path: target.config_path.clone(),
        layout: target.layout,
        bundle_sha512: bundle.manifest_sha512.clone(),
        zoi_registered: match zoi_report.action.as_str() {
            "added" | "replaced" | "already_registered" => true,
            _ => previous.as_ref().is_some_and(|p| p.zoi_registered),
        },
        keys: key_states,
    };
    let state_changes = previous.as_ref() != Some(&new_state);
    let already_applied = !config_changes && !state_changes && zoi_plan.is_none();

    let mut report = ApplyReport {
        extension: name.clone(),
        version: version.clone(),
        scope,
        target: target.clone(),
        dry_run: opts.dry_run,
        already_applied,
        changed: config_changes,
        keys: key_reports,
        zoi: zoi_report,
        backup: None,
        state_file: state_path.clone(),
        diff: None,
        notes,
        revert_command,
        undo: None,
    };
    if opts.dry_run {
        report.diff = Some(unified_diff(
            &target.config_path,
            &old_text,
            &new_text,
            existed,
        ));
        return Ok(report);
    }
    if already_applied {
        return Ok(report);
    }

    // Zoi re-serialises the whole file when it adds an extension, so the
    // file is touched (and backed up) whenever Zoi runs, too.
    let touches = config_changes || zoi_plan.is_some();
    if existed && touches {
        report.backup = Some(backup(&target.config_path)?);
    }
    failpoint("after-backup");
    let previous_state_bytes = std::fs::read(&state_path).ok();
    report.undo = Some(Undo {
        config_path: target.config_path.clone(),
        config_before: current.text.clone(),
        state_path: state_path.clone(),
        state_before: previous_state_bytes.clone(),
        zoi_added: zoi_report_added(&report.zoi),
        scope,
    });

    // The state goes first: it records the original values, so a crash at
    // any later point (even after Zoi rewrote the file) loses nothing. Until
    // the file is replaced it also names what an earlier apply wrote there
    // (`replacing`), so it describes the disk whenever a run is killed.
    let mut staged_state = new_state.clone();
    if let Some(prev) = &previous {
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
    create_dirs(&state_path, scope)?;
    write_state(&state_path, &staged_state, scope)?;
    failpoint("after-state");

    if let (Some(zoi), Some((registered, strip))) = (&opts.zoi, &zoi_plan) {
        let restore = |why: String| -> anyhow::Error {
            // Put the config and state back as they were before this run.
            let _ = if existed {
                write_config(&target.config_path, &old_text, scope)
            } else {
                std::fs::remove_file(&target.config_path).map_err(Into::into)
            };
            let _ = match &previous_state_bytes {
                Some(b) => fsutil::atomic_write(&state_path, b),
                None => std::fs::remove_file(&state_path).map_err(Into::into),
            };
            Failure::could_not_run("zoi_failed", why)
                .hint("Zoi could not add the extension (see its output above); the config was restored unchanged")
                .into()
        };
        if registered.is_some() {
            zoi.extension_remove(&name)
                .map_err(|e| restore(format!("{e:#}")))?;
        }
        if !strip.is_empty() {
            let stripped = splice(&old_text, &current.mapping, strip, &mut Vec::new())?;
            write_config(&target.config_path, &stripped, scope)?;
        }
        zoi.extension_add(&ext_file)
            .map_err(|e| restore(format!("{e:#}")))?;
        failpoint("after-zoi");
    }

    if touches {
        write_config(&target.config_path, &new_text, scope)?;
    }
    failpoint("after-config");
    if staged_state != new_state {
        write_state(&state_path, &new_state, scope)?;
    }
    failpoint("after-final-state");
    Ok(report)
}

fn zoi_report_added(z: &ZoiReport) -> bool {
    matches!(z.action.as_str(), "added" | "replaced")
}

fn write_state(path: &Path, st: &State, scope: Scope) -> Result<()> {
    let existed = path.exists();
    fsutil::atomic_write(path, &state::encode(st)?).map_err(|e| {
        Failure::could_not_run(
            "io",
            format!("cannot write state {}: {e:#}", path.display()),
        )
    })?;
    if !existed {
        give_to_invoking_user(path, scope);
    }
    Ok(())
}

/// What one apply run changed, to put back (`apply --rollback-on-fail`):
/// the config text and state file from just before the run, and whether
/// the run registered the extension with Zoi.
#[derive(Debug, Clone)]
pub struct Undo {
    pub config_path: PathBuf,
    pub config_before: Option<String>,
    pub state_path: PathBuf,
    pub state_before: Option<Vec<u8>>,
    pub zoi_added: bool,
    pub scope: Scope,
}

/// Undoes exactly one apply run (not the whole history `revert` undoes).
pub fn undo(u: &Undo, name: &str, zoi: Option<&zoi_cli::Zoi>) -> Result<()> {
    if u.zoi_added
        && let Some(zoi) = zoi
    {
        zoi.extension_remove(name)?;
    }
    match &u.config_before {
        Some(text) => write_config(&u.config_path, text, u.scope)?,
        None => {
            let _ = std::fs::remove_file(&u.config_path);
        }
    }
    match &u.state_before {
        Some(b) => fsutil::atomic_write(&u.state_path, b)?,
        None => {
            let _ = std::fs::remove_file(&u.state_path);
        }
    }
    Ok(())
}

fn merge_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| serde_yaml::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// The extension's changes, from `bundle.json`.
pub fn extension_changes(bundle: &Loaded) -> Result<Vec<Change>> {
    Ok(bundle.manifest.extension_changes.clone())
}

// ------------------------------------------------------------------ revert

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
    /// `restored`, `kept` (changed by the user after apply) or `unchanged`.
    pub action: String,
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
    /// `removed`, `not_registered`, `not_found` or `failed`.
    pub zoi: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    pub notes: Vec<String>,
}

pub fn revert(opts: &RevertOptions) -> Result<RevertReport> {
    let state_dir = opts.env.state_dir(opts.scope == Scope::System)?;
    let state_path = state::path(&state_dir, &opts.name, opts.scope.as_str());
    let mut report = RevertReport {
        extension: opts.name.clone(),
        scope: opts.scope,
        reverted: false,
        config_path: None,
        keys: Vec::new(),
        zoi: "not_registered".into(),
        backup: None,
        diff: None,
        notes: Vec::new(),
    };
    let _lock = if opts.dry_run || !state_dir.exists() {
        None
    } else {
        let l = lock(&state_dir, opts.lock_timeout)?;
        fsutil::remove_stale_temps(&state_path);
        Some(l)
    };
    let Some(st) = state::read(&state_path)
        .map_err(|e| Failure::bad_input("state_invalid", format!("{e:#}")))?
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
                action: "unchanged".into(),
                now: now.clone(),
                after: v,
            },
            merge::Restore::Set(v) => {
                edits.push((key.clone(), v.clone()));
                RevertKey {
                    key: key.clone(),
                    action: "restored".into(),
                    now: now.clone(),
                    after: v,
                }
            }
            merge::Restore::Kept => RevertKey {
                key: key.clone(),
                action: "kept".into(),
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
                Ok(_) => report.zoi = "removed".into(),
                Err(e) => {
                    report.zoi = "failed".into();
                    report
                        .notes
                        .push(format!("zoi extension remove failed: {e:#}"));
                }
            },
            None => {
                report.zoi = "not_found".into();
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
    if report.zoi == "failed" {
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
