//! The output layer: every byte zoi-mirror writes to stdout or stderr goes
//! through here (in the spirit of uv's `Printer` and cargo's `Shell`).
//! `lib.rs` denies `print!`/`eprint!` everywhere, and this module writes
//! through `std::io` handles, so there is no other way out.
//!
//! The rules, for every command:
//! - **stdout is data.** The human report ([`outln!`], [`human`]) or, with
//!   `--format json`, exactly one JSON document ([`json`]), also for a
//!   failure (`{"error": …}`), so a fleet script can always parse it.
//! - **stderr is for people**: logs ([`info`]), `warning:` ([`warn`]),
//!   advice ([`hint`]), progress bars ([`progress`]) and errors
//!   ([`report_error`]).
//! - **`--quiet` (`-q`)** silences logs, warnings, advice and progress;
//!   stdout data and errors stay.
//! - **`--no-progress`** or `ZOI_MIRROR_NO_PROGRESS` (any non-empty value)
//!   never draws a bar; nor do `--format json` or a stderr that is not a
//!   terminal.
//! - **Colour** only on a terminal, per stream, never with `NO_COLOR` set
//!   (<https://no-color.org>).
//! - **Secrets** registered with [`crate::net::redact::register_secret`]
//!   (header values; the registry is net's, whose messages are redacted
//!   where they are made) are replaced by `***` on both streams and in
//!   JSON; stderr text also has terminal controls escaped ([`printable`]).
//! - **A closed pipe is not a failure** (`check … | head -1`): once stdout's
//!   reader is gone, further data is dropped, the command runs to its end
//!   and exits with the code it would have had. Any other lost write (a
//!   full disk) makes the run exit 3 with `error: cannot write to stdout`
//!   ([`finish`]).
//! - **Errors** print `error: <message>`, then for each further cause of
//!   the chain a `Caused by:` line with the cause indented below it, then
//!   `hint: …`. Located diagnostics (`file:line:col: …`) come first, each
//!   with its own hint.
//!
//! Library code returns values, warnings (`Vec<String>`) and errors; it
//! uses this module only for [`excerpt`]/[`escape_controls`], the [`diff`]
//! helper and the [`progress`] helper, never to print. (Secrets are
//! redacted with [`crate::net::redact::redact_secrets`].)

pub mod diff;
mod error;
pub mod human;
mod printer;
pub mod progress;
mod redact;
mod style;

use serde::Serialize;

pub use error::{print_error, report_error};
pub use printer::{
    Settings, finish, hint, info, init, json, prompt, stdout_line, stdout_text, warn,
};
pub use redact::{escape_controls, excerpt, printable};
pub use style::{Style, paint, stderr_color, stdout_color};

/// The `--format` every command accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Human,
    Json,
}

/// Data on stdout without a newline, formatted like `print!`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::stdout_text(&format!($($arg)*))
    };
}

/// One line of data on stdout, formatted like `println!`.
macro_rules! outln {
    () => {
        $crate::output::stdout_line("")
    };
    ($($arg:tt)*) => {
        $crate::output::stdout_line(&format!($($arg)*))
    };
}

pub(crate) use {out, outln};
