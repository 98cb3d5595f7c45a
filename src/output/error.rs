//! The one error path: `error:` with the outermost message, one `Caused
//! by:` per further cause of the chain (each indented on the lines after
//! it, the way cargo prints them), then `hint:`.

use serde::Serialize;

use super::Format;
use super::printer::{error_text, hint_line, json, json_started};
use super::redact::printable;
use super::style::{Style, paint, stderr_color};
use crate::error::{Diagnostic, ErrorKind, Exit, failure_of};

#[derive(Serialize)]
struct ErrorDoc<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    kind: ErrorKind,
    exit_code: u8,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    diagnostics: &'a [Diagnostic],
}

/// Reports a failed command: the error on stderr, and with `--format json`
/// also the error document on stdout, unless the run already began one
/// there (`serve` announces itself, then fails; a bug panics mid-report):
/// stdout carries one document at most. Returns the exit code it maps to.
pub fn report_error(err: &anyhow::Error, format: Format) -> Exit {
    print_error(err);
    let failure = failure_of(err);
    if format == Format::Json && !json_started() {
        let doc = ErrorDoc {
            error: ErrorBody {
                kind: failure.map_or(ErrorKind::Internal, |f| f.kind),
                exit_code: crate::error::exit_of(err).code(),
                // The JSON message stays one line (`outer: inner`): scripts
                // parse it, and it is part of the documented contract.
                message: format!("{err:#}"),
                hint: failure.and_then(|f| f.hint.as_deref()),
                diagnostics: failure.map_or(&[], |f| f.diagnostics.as_slice()),
            },
        };
        let _ = json(&doc);
    }
    crate::error::exit_of(err)
}

/// The error on stderr only, for a command that has already printed its
/// own JSON document (`apply --verify`) and exits with a code of its own.
pub fn print_error(err: &anyhow::Error) {
    error_text(&render(err, stderr_color()));
}

/// The stderr text of `err`: each located diagnostic (with its hint)
/// first, then the error, its causes and its hint.
fn render(err: &anyhow::Error, color: bool) -> String {
    let label = paint("error", Style::Red, color);
    let mut out = String::new();
    let failure = failure_of(err);
    if let Some(f) = failure {
        for d in &f.diagnostics {
            out.push_str(&format!("{label}: {}\n", printable(&d.to_string())));
            if let Some(h) = &d.hint {
                out.push_str(&hint_line(h));
            }
        }
    }
    let mut chain = err.chain();
    if let Some(top) = chain.next() {
        out.push_str(&format!("{label}: {}\n", printable(&top.to_string())));
    }
    for cause in chain {
        out.push_str("Caused by:\n");
        for line in printable(&cause.to_string()).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if let Some(h) = failure.and_then(|f| f.hint.as_deref()) {
        out.push_str(&hint_line(h));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Failure;
    use anyhow::Context as _;

    #[test]
    fn one_caused_by_per_cause_then_the_hint() {
        let err = Err::<(), _>(anyhow::Error::from(
            Failure::new(ErrorKind::SpecInvalid, "the spec is wrong").hint("fix it"),
        ))
        .context("cannot build")
        .context("while building acme")
        .unwrap_err();
        assert_eq!(
            render(&err, false),
            "error: while building acme\n\
             Caused by:\n  cannot build\n\
             Caused by:\n  the spec is wrong\n\
             hint: fix it\n"
        );
    }

    #[test]
    fn a_plain_error_is_one_line_and_a_multi_line_cause_stays_indented() {
        let err = anyhow::anyhow!("line one\nline two").context("outer");
        assert_eq!(
            render(&err, false),
            "error: outer\nCaused by:\n  line one\n  line two\n"
        );
        assert_eq!(render(&anyhow::anyhow!("alone"), false), "error: alone\n");
    }

    #[test]
    fn diagnostics_come_first_each_with_its_hint() {
        let d = Diagnostic {
            file: "m.toml".into(),
            line: 3,
            column: 5,
            message: "unknown key".into(),
            hint: Some("did you mean `name`?".into()),
        };
        let err: anyhow::Error = Failure::new(ErrorKind::SpecInvalid, "m.toml is invalid")
            .with_diagnostics(vec![d])
            .into();
        assert_eq!(
            render(&err, false),
            "error: m.toml:3:5: unknown key\nhint: did you mean `name`?\nerror: m.toml is invalid\n"
        );
    }
}
