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

/// Secret values (request header values) that must never be printed, set
/// once by the command that received them.
static SECRETS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Registers a value to redact from everything printed (stdout, stderr,
/// JSON). Values shorter than 4 bytes are not registered: replacing them
/// would mangle ordinary text and they protect nothing.
pub fn register_secret(value: &str) {
    let v = value.trim();
    if v.len() < 4 {
        return;
    }
    if let Ok(mut s) = SECRETS.write() {
        let mut parts = vec![v.to_string()];
        // `Bearer <token>`: the token alone is as secret as the whole value.
        if let Some((_, token)) = v.split_once(char::is_whitespace)
            && token.trim().len() >= 4
        {
            parts.push(token.trim().to_string());
        }
        for p in parts {
            if !s.contains(&p) {
                s.push(p);
            }
        }
        // Longest first, so a value containing another is replaced whole.
        s.sort_by_key(|x| std::cmp::Reverse(x.len()));
    }
}

/// `text` with every registered secret replaced by `***`.
pub fn redact_secrets(text: &str) -> String {
    let Ok(secrets) = SECRETS.read() else {
        return text.to_string();
    };
    let mut out = text.to_string();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// The first `max` characters of what a server sent, for a message: secrets
/// are redacted *before* it is cut, so no part of one survives the cut.
pub fn excerpt(text: &str, max: usize) -> String {
    redact_secrets(text).chars().take(max).collect()
}

/// `text` made safe for a terminal: control characters (C0 but newline and
/// tab, DEL, C1) and the Unicode line/paragraph separators are shown as
/// `\u{…}` escapes, so a value from a spec, a config or a server can never
/// drive the terminal (`ESC[2J`) or forge a line of output.
pub fn escape_controls(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}') {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// What every printed line goes through: secrets redacted, controls escaped.
pub fn printable(text: &str) -> String {
    escape_controls(&redact_secrets(text))
}

/// A log line on stderr (never on stdout).
pub fn info(msg: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr(), "{}", printable(msg.as_ref()));
}

/// `warning: …` on stderr.
pub fn warn(msg: impl AsRef<str>) {
    let label = paint("warning", Style::Yellow, stderr_color());
    let _ = writeln!(std::io::stderr(), "{label}: {}", printable(msg.as_ref()));
}

/// `hint: …` on stderr.
pub fn hint(msg: impl AsRef<str>) {
    let label = paint("hint", Style::Cyan, stderr_color());
    let _ = writeln!(std::io::stderr(), "  {label}: {}", printable(msg.as_ref()));
}

/// Every string in a JSON value with the registered secrets redacted.
fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            let r = redact_secrets(s);
            if r != *s {
                *s = r;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(redact_json),
        _ => {}
    }
}

/// Prints one JSON document on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    // Buffered: a report can be megabytes, and stdout is line-buffered.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let has_secrets = SECRETS.read().is_ok_and(|s| !s.is_empty());
    if has_secrets {
        let mut v = serde_json::to_value(value)?;
        redact_json(&mut v);
        serde_json::to_writer_pretty(&mut out, &v)?;
    } else {
        serde_json::to_writer_pretty(&mut out, value)?;
    }
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
                let _ = writeln!(stderr, "{label}: {}", printable(&d.to_string()));
                if let Some(h) = &d.hint {
                    let h = printable(h);
                    let _ = writeln!(stderr, "  {}: {h}", paint("hint", Style::Cyan, color));
                }
            }
            // The outer context (if any) adds where it happened.
            let _ = writeln!(stderr, "{label}: {}", printable(&render_chain(err)));
            if let Some(h) = &f.hint {
                let h = printable(h);
                let _ = writeln!(stderr, "  {}: {h}", paint("hint", Style::Cyan, color));
            }
        }
        None => {
            let _ = writeln!(stderr, "{label}: {}", printable(&render_chain(err)));
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
