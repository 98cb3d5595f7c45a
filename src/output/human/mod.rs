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

/// A YAML value on one line, for human output.
pub fn compact(v: Option<&serde_yaml::Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => serde_json::to_string(v).unwrap_or_else(|_| "?".into()),
    }
}
