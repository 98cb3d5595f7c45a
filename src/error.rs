//! Exit codes and user-facing failures.
//!
//! Every command shares one contract so that fleet scripts can act on the exit
//! code without parsing text (the same split uv and cargo-dist use):
//!
//! | code | meaning                                                        |
//! |------|----------------------------------------------------------------|
//! | 0    | done / all good                                                |
//! | 1    | the answer is no: drift, unreachable, mismatch                 |
//! | 2    | bad input or usage: a malformed spec, config, bundle or flag   |
//! | 3    | could not run: I/O, permissions, a lock held by another run    |
//!
//! Code deep in the library returns `anyhow::Error`; whoever knows *which* of
//! the four it is wraps it in a [`Failure`] of one [`ErrorKind`], which
//! carries its exit code. Anything left unclassified is treated as "could not
//! run" (kind `internal`), the conservative answer for a script. A new kind
//! is a new line in `error_kinds!` and a new row in README.md's table of
//! error kinds (a test holds the two equal).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The four documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    Ok = 0,
    No = 1,
    BadInput = 2,
    CouldNotRun = 3,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// One problem located in a file: `file:line:col: message` plus a hint.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// Locates byte `offset` of `src` as a 1-based line and column (in chars).
    pub fn at(
        file: &Path,
        src: &str,
        offset: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        let (line, column) = line_col(src, offset);
        Self {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// 1-based line and column of a byte offset (clamped to the text).
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Declares [`ErrorKind`] from one list: each variant with its JSON name
/// and the exit code it maps to, so the name, the code and the list that
/// `README.md`'s table is tested against cannot drift apart.
macro_rules! error_kinds {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal => $exit:ident, )*) => {
        /// What went wrong, as scripts see it: the `kind` of the JSON error
        /// document (`{"error": {"kind": …}}`), always with one exit code.
        ///
        /// Serialised as its snake_case name ([`ErrorKind::as_str`]); the
        /// names are part of the documented contract (README.md's table of
        /// error kinds, which a test holds equal to this list).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &[ErrorKind] = &[$(ErrorKind::$variant),*];

            /// The name in the JSON error document.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $name,)*
                }
            }

            /// The exit code a failure of this kind ends the run with.
            pub fn exit(self) -> Exit {
                match self {
                    $(ErrorKind::$variant => Exit::$exit,)*
                }
            }
        }
    };
}

error_kinds! {
    // --- usage and the spec ---
    /// A flag or argument is malformed or contradicts another (`--shard
    /// 5/4`, a `--header` without a colon or a name, a `--platform` the spec
    /// does not serve, a malformed `--sha512`).
    Usage = "usage" => BadInput,
    /// The spec file (`-c mirror.toml`) does not exist, or is a directory.
    SpecMissing = "spec_missing" => BadInput,
    /// The spec has problems; each is in `diagnostics` as file:line:col.
    SpecInvalid = "spec_invalid" => BadInput,
    /// `init` would overwrite a file without `--force`.
    Exists = "exists" => BadInput,
    /// `build`: a `zoi-mirror` binary for the setup scripts (`--tool`,
    /// `[setup.tools]`) cannot be read.
    ToolMissing = "tool_missing" => BadInput,
    /// `build`: a generated file does not read back as intended (a bug in
    /// zoi-mirror; nothing was written).
    RenderMismatch = "render_mismatch" => CouldNotRun,
    // --- bundles ---
    /// No bundle at the given path (`apply`, `check --bundle`, `index
    /// --bundle`). `build --check` ends with 1 instead: the answer to "is
    /// the bundle up to date?" is no.
    BundleMissing = "bundle_missing" => BadInput,
    /// A bundle or its `bundle.json` is malformed, lists files it cannot
    /// have, or asks for what this zoi-mirror cannot apply.
    BundleInvalid = "bundle_invalid" => BadInput,
    /// `bundle.json` has a format version this zoi-mirror does not read.
    BundleFormat = "bundle_format" => BadInput,
    /// A bundle file's SHA-512 is not the pinned (`--sha512`) or listed one.
    HashMismatch = "hash_mismatch" => No,
    /// A bundle, or an input given by URL, cannot be downloaded.
    Download = "download" => No,
    // --- a machine's Zoi config ---
    /// A Zoi config file on the machine is not one Zoi can read (YAML
    /// syntax, not a mapping, not UTF-8, not a regular file).
    ConfigInvalid = "config_invalid" => BadInput,
    /// The state `apply` recorded for `revert` cannot be read.
    StateInvalid = "state_invalid" => BadInput,
    /// `apply`: the bundle was applied to another target (root or layout).
    AppliedElsewhere = "applied_elsewhere" => BadInput,
    /// `apply`: another bundle already manages one of the keys.
    ManagedByOther = "managed_by_other" => BadInput,
    /// Another zoi-mirror run holds the lock.
    LockHeld = "lock_held" => CouldNotRun,
    /// A file to change is read-only.
    ReadOnly = "read_only" => CouldNotRun,
    /// Reading or writing a file failed (permissions, a full disk, …).
    Io = "io" => CouldNotRun,
    /// The `zoi` executable cannot be used (`--zoi PATH`, `--no-zoi`).
    Zoi = "zoi" => BadInput,
    /// `apply`: Zoi could not add (or replace) the extension; the config,
    /// the state and the version Zoi held were put back, and the hint says
    /// what could not be.
    ZoiFailed = "zoi_failed" => CouldNotRun,
    /// The user declined the confirmation; nothing was changed.
    Aborted = "aborted" => No,
    /// `apply --verify`: the mirror does not answer as it should.
    VerifyFailed = "verify_failed" => No,
    // --- check ---
    /// A registry's `repo.yaml` is not a Zoi repo.yaml.
    RepoYamlInvalid = "repo_yaml_invalid" => BadInput,
    /// `check`: the machine has no synced registry and none is configured.
    NotSynced = "not_synced" => BadInput,
    /// A package index (`--index`, upstream's index) cannot be parsed, or
    /// names a package in a way Zoi does not (a key other than
    /// `@<repo>/<name>`, a name, tier or version that cannot be a path).
    IndexInvalid = "index_invalid" => BadInput,
    // --- db sync, bin sync, index, publish, serve ---
    /// `bin sync`: the spec's archives are `pkg.tar.zst`, which upstream
    /// does not publish.
    Format = "format" => BadInput,
    /// `bin sync`: upstream's repo.yaml links no pre-built archives.
    NoPkgLink = "no_pkg_link" => BadInput,
    /// A `--dest`/`--to` is neither a folder nor a valid `s3://` URL.
    BadDestination = "bad_destination" => BadInput,
    /// Upstream (or the db sync cache) lacks a file the run needs.
    NoUpstreamData = "no_upstream_data" => BadInput,
    /// `db sync`: upstream has no repo.yaml.
    NoUpstreamRepoYaml = "no_upstream_repo_yaml" => BadInput,
    /// `db sync`: upstream has no such branch.
    BranchMissing = "branch_missing" => BadInput,
    /// `db sync`: authorities without a signing key would leave the overlay
    /// commit unsigned.
    UnsignedOverlay = "unsigned_overlay" => BadInput,
    /// git cannot be run, or is older than db sync needs.
    Git = "git" => CouldNotRun,
    /// `db sync`: a registry to fetch from or push to cannot be reached.
    Unreachable = "unreachable" => CouldNotRun,
    /// `db sync`: the overlay commit cannot be signed.
    Signing = "signing" => CouldNotRun,
    /// `index`/`publish`: no folder at the given root.
    RootMissing = "root_missing" => BadInput,
    /// `index`: the root is not a folder.
    RootNotAFolder = "root_not_a_folder" => BadInput,
    /// `index --layout`: the layout pattern is malformed.
    BadLayout = "bad_layout" => BadInput,
    /// `serve`: cannot listen on the address.
    Bind = "bind" => CouldNotRun,
    /// `freshness`: the beacon is not a zoi-mirror-status.json.
    BeaconInvalid = "beacon_invalid" => BadInput,
    // --- S3-compatible storage ---
    /// The bucket does not exist.
    StorageBucketMissing = "storage_bucket_missing" => BadInput,
    /// No credentials for the store were found.
    StorageNoCredentials = "storage_no_credentials" => BadInput,
    /// Zoi clients (anonymous) cannot read the bucket.
    StorageNotPublic = "storage_not_public" => BadInput,
    /// The store refused the credentials.
    StorageDenied = "storage_denied" => CouldNotRun,
    /// The store cannot be reached.
    StorageUnreachable = "storage_unreachable" => CouldNotRun,
    /// Another writer changed an object first.
    StorageConflict = "storage_conflict" => CouldNotRun,
    /// Any other store failure.
    StorageError = "storage_error" => CouldNotRun,
    // --- everything else ---
    /// An error no layer classified (an unexpected OS or library failure,
    /// or a bug in zoi-mirror: a panic, in a `bin sync` worker or anywhere
    /// else, ends the run with this kind, not Rust's exit code 101); "could
    /// not run" is the conservative answer for a script.
    Internal = "internal" => CouldNotRun,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A failure the user should see, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// The kind's own exit code, except where [`Failure::with_exit`] says
    /// otherwise (only `build --check`'s missing bundle does).
    pub exit: Exit,
    /// What went wrong, for JSON output.
    pub kind: ErrorKind,
    pub message: String,
    pub hint: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Failure {
    /// A failure of `kind`, ending the run with the kind's exit code.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            exit: kind.exit(),
            kind,
            message: message.into(),
            hint: None,
            diagnostics: Vec::new(),
        }
    }

    /// Overrides the kind's exit code, for the one kind whose code depends
    /// on the question asked: a missing bundle is bad input to `apply`, but
    /// the answer "no" to `build --check`.
    pub fn with_exit(mut self, exit: Exit) -> Self {
        self.exit = exit;
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_diagnostics(mut self, diagnostics: Vec<Diagnostic>) -> Self {
        self.diagnostics = diagnostics;
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Shorthand for `Err(Failure::…)` in functions returning `anyhow::Result`.
pub fn fail<T>(failure: Failure) -> anyhow::Result<T> {
    Err(failure.into())
}

/// The exit code an arbitrary error maps to.
pub fn exit_of(err: &anyhow::Error) -> Exit {
    failure_of(err).map_or(Exit::CouldNotRun, |f| f.exit)
}

/// The [`Failure`] that classifies `err`: the outermost one in its chain
/// (context added around it does not change what it is).
pub fn failure_of(err: &anyhow::Error) -> Option<&Failure> {
    err.chain().find_map(|e| e.downcast_ref::<Failure>())
}

/// What a panic says: its message (`panic!`'s text), or "no message".
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}

/// The failure a panic that reached the top of a run becomes: a bug,
/// reported as one (`internal`, exit 3, the JSON error document) rather
/// than Rust's exit code 101, which no script expects. Where it happened is
/// on stderr above it, in Rust's own panic text.
pub fn panicked(payload: &(dyn std::any::Any + Send)) -> Failure {
    Failure::new(
        ErrorKind::Internal,
        format!("zoi-mirror hit a bug: {}", panic_message(payload)),
    )
    .hint("please report it with the command that ran; RUST_BACKTRACE=1 shows where it happened")
}

/// Wraps an I/O error on `path` as "could not run", naming the file.
pub fn io_failure(action: &str, path: &Path, err: &std::io::Error) -> Failure {
    let hint = match err.kind() {
        std::io::ErrorKind::PermissionDenied => Some(
            "check the file's permissions, or run with the rights needed to write there"
                .to_string(),
        ),
        std::io::ErrorKind::NotFound => Some("check that the path exists".to_string()),
        _ => None,
    };
    let mut f = Failure::new(
        ErrorKind::Io,
        format!("cannot {action} {}: {err}", path.display()),
    );
    f.hint = hint;
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_chars() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // 'é' is two bytes but one column
        assert_eq!(line_col(src, 9), (2, 3));
        assert_eq!(line_col(src, 999), (3, 1));
    }

    #[test]
    fn kinds_serialise_as_their_names_and_take_their_exit() {
        let mut seen = std::collections::BTreeSet::new();
        for &k in ErrorKind::ALL {
            assert!(seen.insert(k.as_str()), "{} named twice", k.as_str());
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
            assert_eq!(Failure::new(k, "m").exit, k.exit());
        }
    }

    /// README.md's table of error kinds is the documented contract: it must
    /// list exactly the kinds there are, each with its exit code.
    #[test]
    fn readme_lists_every_error_kind_with_its_exit_code() {
        let readme = include_str!("../README.md");
        let rows: std::collections::BTreeMap<String, u8> = readme
            .lines()
            .skip_while(|l| !l.starts_with("| kind | exit code |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let kind = cells[1].trim_matches('`').to_string();
                // "2 (1 from `build --check`)": the first number is the kind's own.
                let exit = cells[2]
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("README row {l:?} has no exit code"));
                (kind, exit)
            })
            .collect();
        let kinds: std::collections::BTreeMap<String, u8> = ErrorKind::ALL
            .iter()
            .map(|k| (k.as_str().to_string(), k.exit().code()))
            .collect();
        assert_eq!(
            rows, kinds,
            "README.md's table of error kinds and ErrorKind differ"
        );
    }

    #[test]
    fn unclassified_errors_are_could_not_run() {
        let e = anyhow::anyhow!("boom");
        assert_eq!(exit_of(&e), Exit::CouldNotRun);
        let e: anyhow::Error = Failure::new(ErrorKind::Usage, "bad").into();
        assert_eq!(exit_of(&e.context("while loading")), Exit::BadInput);
    }
}
