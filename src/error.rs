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
//! the four it is wraps it in a [`Failure`]. Anything left unclassified is
//! treated as "could not run", the conservative answer for a script.

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

/// A failure the user should see, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    /// Short machine-readable kind for JSON output (`spec_invalid`, `io`, …).
    pub kind: &'static str,
    pub message: String,
    pub hint: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Failure {
    pub fn new(exit: Exit, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            exit,
            kind,
            message: message.into(),
            hint: None,
            diagnostics: Vec::new(),
        }
    }

    pub fn bad_input(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(Exit::BadInput, kind, message)
    }

    pub fn no(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(Exit::No, kind, message)
    }

    pub fn could_not_run(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(Exit::CouldNotRun, kind, message)
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
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>().map(|f| f.exit))
        .unwrap_or(Exit::CouldNotRun)
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
    let mut f = Failure::could_not_run("io", format!("cannot {action} {}: {err}", path.display()));
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
    fn unclassified_errors_are_could_not_run() {
        let e = anyhow::anyhow!("boom");
        assert_eq!(exit_of(&e), Exit::CouldNotRun);
        let e: anyhow::Error = Failure::bad_input("x", "bad").into();
        assert_eq!(exit_of(&e.context("while loading")), Exit::BadInput);
    }
}
