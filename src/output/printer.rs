//! The printer: the only code that writes to stdout and stderr.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

use super::redact::{self, printable};
use super::style::{Style, paint, stderr_color};
use crate::net::redact::redact_secrets;

/// What the global flags asked for, set once by `main`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// `--quiet`: no logs, progress or warnings on stderr.
    pub quiet: bool,
    /// `--no-progress` or `ZOI_MIRROR_NO_PROGRESS`: never draw a bar.
    pub no_progress: bool,
}

impl Settings {
    /// The flags, with `ZOI_MIRROR_NO_PROGRESS` (any non-empty value) read
    /// here rather than by clap, whose boolean parser would refuse `yes`.
    pub fn from_flags(quiet: bool, no_progress: bool) -> Settings {
        let env = std::env::var_os("ZOI_MIRROR_NO_PROGRESS").is_some_and(|v| !v.is_empty());
        Settings {
            quiet,
            no_progress: no_progress || env,
        }
    }
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Sets the run's output settings; the first call wins (tests and library
/// users that never call it get the defaults).
pub fn init(settings: Settings) {
    let _ = SETTINGS.set(settings);
}

fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or_default()
}

pub(crate) fn quiet() -> bool {
    settings().quiet
}

pub(crate) fn no_progress() -> bool {
    settings().no_progress
}

/// Set once stdout's reader went away (`| head -1`): everything after is
/// dropped, and the command runs on to the exit code it would have had.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// Any other stdout write error (a full disk behind `> file`): reported by
/// [`finish`] as "could not run", since the data did not arrive.
static STDOUT_ERROR: Mutex<Option<io::Error>> = Mutex::new(None);

fn note_stdout_error(e: io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    } else if let Ok(mut slot) = STDOUT_ERROR.lock()
        && slot.is_none()
    {
        *slot = Some(e);
    }
}

/// Writes `bytes` to stdout and flushes (a `serve` URL or a `demo` step is
/// read by another process while we run on).
fn write_stdout(bytes: &[u8]) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        note_stdout_error(e);
    }
}

/// Data on stdout, as is but for redacted secrets (`out!`/`outln!` are the
/// shorthands). Human data may carry the printer's own ANSI colour, so
/// controls are not escaped here: values from outside are escaped where
/// they are formatted ([`super::human::shown`]).
pub fn stdout_text(text: &str) {
    write_stdout(redact_secrets(text).as_bytes());
}

/// One line of data on stdout.
pub fn stdout_line(text: &str) {
    let mut t = redact_secrets(text);
    t.push('\n');
    write_stdout(t.as_bytes());
}

/// Writes to stderr; a closed or failing stderr has nowhere to report to,
/// so its errors are dropped.
fn write_stderr(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// A log line on stderr (never on stdout); silent with `--quiet`.
pub fn info(msg: impl AsRef<str>) {
    if quiet() {
        return;
    }
    write_stderr(&format!("{}\n", printable(msg.as_ref())));
}

/// `warning: …` on stderr; silent with `--quiet`.
pub fn warn(msg: impl AsRef<str>) {
    if quiet() {
        return;
    }
    let label = paint("warning", Style::Yellow, stderr_color());
    write_stderr(&format!("{label}: {}\n", printable(msg.as_ref())));
}

/// `hint: …` on stderr, advice after a report; silent with `--quiet`. (An
/// error's hint is part of the error and printed by `report_error`.)
pub fn hint(msg: impl AsRef<str>) {
    if quiet() {
        return;
    }
    write_stderr(&hint_line(msg.as_ref()));
}

pub(super) fn hint_line(msg: &str) -> String {
    let label = paint("hint", Style::Cyan, stderr_color());
    format!("{label}: {}\n", printable(msg))
}

/// Error lines on stderr, already shaped by `report_error`: never
/// silenced.
pub(super) fn error_text(text: &str) {
    write_stderr(text);
}

/// Text for a person on stderr that is not a log: a diff shown before a
/// question, the question itself. Never silenced (it is only shown to a
/// person at a terminal who is about to answer).
pub fn prompt(text: &str) {
    write_stderr(&redact_secrets(text));
}

/// Whether a JSON document has been (or is being) written to stdout.
static JSON_STARTED: AtomicBool = AtomicBool::new(false);

/// Whether [`json`] has begun a document on stdout: a run prints one at
/// most, so an error after it goes to stderr only.
pub(super) fn json_started() -> bool {
    JSON_STARTED.load(Ordering::Relaxed)
}

/// Prints one JSON document on stdout (pretty, with a final newline).
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    JSON_STARTED.store(true, Ordering::Relaxed);
    // Streamed in 64 KiB chunks rather than rendered whole first: a check
    // of 400,000 URLs is a document of hundreds of MB, which would
    // otherwise sit in memory next to the report it was made from.
    let mut out = io::BufWriter::with_capacity(1 << 16, Stdout);
    // Secrets are redacted in the stream itself, for the same reason.
    if let Some(mut r) = redact::redacting(&mut out) {
        serde_json::to_writer_pretty(&mut r, value)?;
        r.write_all(b"\n")?;
        r.finish()?;
    } else {
        serde_json::to_writer_pretty(&mut out, value)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// stdout as an [`io::Write`] that follows the printer's rules: a closed
/// pipe or a failed write is noted (for [`finish`]) and the rest dropped,
/// never an error for the serialiser to abort on.
struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_stdout(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The end of a run: flushes stdout and turns a lost write (other than a
/// closed pipe, which keeps `exit`) into "could not run".
pub fn finish(exit: crate::error::Exit) -> crate::error::Exit {
    if !STDOUT_CLOSED.load(Ordering::Relaxed)
        && let Err(e) = io::stdout().lock().flush()
    {
        note_stdout_error(e);
    }
    let lost = STDOUT_ERROR.lock().ok().and_then(|mut e| e.take());
    match lost {
        Some(e) => {
            let label = paint("error", Style::Red, stderr_color());
            write_stderr(&format!("{label}: cannot write to stdout: {e}\n"));
            crate::error::Exit::CouldNotRun
        }
        None => exit,
    }
}
