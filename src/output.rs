//! Human and JSON output, following one rule for every command: data on
//! stdout, logs and progress on stderr.
//!
//! With `--format json` stdout carries exactly one JSON document (also for
//! failures, as `{"error": …}`), so a fleet script can always parse it. Colour
//! is used only on a terminal and never when `NO_COLOR` is set
//! (<https://no-color.org>).

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use serde::Serialize;

use crate::error::{Exit, Failure};

/// The `--format` every command accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Human,
    Json,
}

fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether stderr may carry ANSI colour.
pub fn stderr_color() -> bool {
    static C: OnceLock<bool> = OnceLock::new();
    *C.get_or_init(|| !no_color_env() && std::io::stderr().is_terminal())
}

/// Whether stdout may carry ANSI colour.
pub fn stdout_color() -> bool {
    static C: OnceLock<bool> = OnceLock::new();
    *C.get_or_init(|| !no_color_env() && std::io::stdout().is_terminal())
}

/// Whether progress bars may be drawn (a terminal on stderr).
pub fn progress_allowed() -> bool {
    std::io::stderr().is_terminal()
}

#[derive(Clone, Copy)]
pub enum Style {
    Bold,
    Red,
    Green,
    Yellow,
    Cyan,
    Dim,
}

/// Wraps `text` in an ANSI style when `enabled`.
pub fn paint(text: &str, style: Style, enabled: bool) -> String {
    if !enabled {
        return text.to_string();
    }
    let code = match style {
        Style::Bold => "1",
        Style::Red => "1;31",
        Style::Green => "32",
        Style::Yellow => "1;33",
        Style::Cyan => "36",
        Style::Dim => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A log line on stderr (never on stdout).
pub fn info(msg: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr(), "{}", msg.as_ref());
}

/// `warning: …` on stderr.
pub fn warn(msg: impl AsRef<str>) {
    let label = paint("warning", Style::Yellow, stderr_color());
    let _ = writeln!(std::io::stderr(), "{label}: {}", msg.as_ref());
}

/// `hint: …` on stderr.
pub fn hint(msg: impl AsRef<str>) {
    let label = paint("hint", Style::Cyan, stderr_color());
    let _ = writeln!(std::io::stderr(), "  {label}: {}", msg.as_ref());
}

/// Prints one JSON document on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    // Buffered: a report can be megabytes, and stdout is line-buffered.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

#[derive(Serialize)]
struct ErrorDoc<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    kind: &'a str,
    exit_code: u8,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    diagnostics: &'a [crate::error::Diagnostic],
}

/// Reports a failed command: `error:`/`hint:` lines on stderr, and with
/// `--format json` also the error document on stdout.
pub fn report_error(err: &anyhow::Error, format: Format) -> Exit {
    let exit = crate::error::exit_of(err);
    let failure = err.chain().find_map(|e| e.downcast_ref::<Failure>());
    let color = stderr_color();
    let label = paint("error", Style::Red, color);
    let mut stderr = std::io::stderr().lock();

    match failure {
        Some(f) => {
            for d in &f.diagnostics {
                let _ = writeln!(stderr, "{label}: {d}");
                if let Some(h) = &d.hint {
                    let _ = writeln!(stderr, "  {}: {h}", paint("hint", Style::Cyan, color));
                }
            }
            // The outer context (if any) adds where it happened.
            let _ = writeln!(stderr, "{label}: {}", render_chain(err));
            if let Some(h) = &f.hint {
                let _ = writeln!(stderr, "  {}: {h}", paint("hint", Style::Cyan, color));
            }
        }
        None => {
            let _ = writeln!(stderr, "{label}: {}", render_chain(err));
        }
    }
    drop(stderr);

    if format == Format::Json {
        let doc = ErrorDoc {
            error: ErrorBody {
                kind: failure.map_or("internal", |f| f.kind),
                exit_code: exit.code(),
                message: render_chain(err),
                hint: failure.and_then(|f| f.hint.as_deref()),
                diagnostics: failure.map_or(&[], |f| f.diagnostics.as_slice()),
            },
        };
        let _ = json(&doc);
    }
    exit
}

/// `outer: inner: innermost`, the way anyhow's alternate Display does.
fn render_chain(err: &anyhow::Error) -> String {
    format!("{err:#}")
}
