//! Human reports: what a command prints on stdout without `--format json`.
//! One file per report; commands call them and never each other (`apply
//! --verify` prints the [`check`] report too). Warnings inside a report go
//! to stderr as `warning:` lines, naming what they are about.

pub mod apply;
pub mod bin;
pub mod build;
pub mod check;
pub mod db;
pub mod demo;
pub mod freshness;
pub mod index;
pub mod init;
pub mod publish;
pub mod revert;
pub mod status;
pub mod sync;

/// A value from outside — a server's text inside a problem's message, a
/// URL or a name from a repo.yaml or an index, a key in a bucket — as one
/// line of a report shows it: every control character escaped as
/// `\u{…}` ([`escape_controls`](crate::output::escape_controls), and a
/// line break too, which would forge a line of the report), so what a
/// server sends can never drive the terminal. The report's own colours are
/// added around these values, not through them. JSON needs none of this:
/// serde escapes controls in its strings.
pub fn shown(text: &str) -> String {
    let escaped = crate::output::escape_controls(text);
    if escaped.contains('\n') {
        escaped.replace('\n', "\\u{a}")
    } else {
        escaped
    }
}

/// A YAML value on one line, for human output.
pub fn compact(v: Option<&serde_yaml::Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => serde_json::to_string(v).unwrap_or_else(|_| "?".into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shown_escapes_every_control_and_keeps_the_rest() {
        assert_eq!(
            super::shown("\x1b[31mred\x1b]0;t\x07 a\nb\tc é"),
            "\\u{1b}[31mred\\u{1b}]0;t\\u{7} a\\u{a}b\tc é"
        );
        assert_eq!(super::shown("plain"), "plain");
    }
}
