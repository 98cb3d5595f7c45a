//! zoi-mirror: a private mirror of the Zoi registry and binary archives.
//!
//! Data flows one way. Each top-level module sits in a layer and imports
//! only from its own layer and the layers below it (lowest first):
//!
//! | layer | modules | holds |
//! | --- | --- | --- |
//! | 0 | [`zoi`] | Zoi's formats and rules, the single source of truth about how the real client behaves |
//! | 1 | [`error`], [`fsutil`], [`runtime`] | failures and exit codes, atomic file writes, the one async-runtime helper |
//! | 2 | [`net`] | the HTTP client, prober, failure kinds, classification, retry and redaction (the secret registry included) |
//! | 3 | [`storage`] | where a binary host lives: a folder or S3 |
//! | 4 | [`output`] | the printer: every byte to stdout/stderr, styles, progress, diffs, the error shape |
//! | 5 | [`spec`] | mirror.toml |
//! | 6 | [`bundle`] | rendering and loading bundles |
//! | 7 | [`client`] | editing Zoi's config on a machine |
//! | 8 | [`probe`] | `check`'s probes and reports |
//! | 9 | [`mirror`] | server-side work: index, db sync, bin sync, serve |
//! | 10 | [`cli`] | clap definitions (clap is used nowhere below) |
//! | 11 | [`commands`] | one file per command: parse args, call the library, print |
//!
//! No file imports a file that (through any chain) imports it back, and
//! nothing below `commands` imports `commands` or `cli`. `tests/it/layers.rs`
//! reads every file's `crate::`/`super::` paths and fails on a circle, an
//! upward import or clap below `cli.rs`; keep its table in step with this
//! one. A new command goes in `commands/` (its args in `cli.rs`, its logic
//! in the library); a new Zoi rule goes in `zoi/`; a new way of fetching
//! or classifying in `net/`.
//!
//! `output::human` (the human reports) is the exception to its folder: it
//! renders the library's report types, so it sits above [`mirror`] (layer
//! 9½) and only [`commands`] call it.
//!
//! Only [`output`] writes to stdout and stderr; the print macros are denied
//! everywhere (library code returns values and warnings, commands hand them
//! to the printer).
//!
//! States and kinds that reach the JSON output are enums, never strings:
//! [`error::ErrorKind`] for every failure (README.md's table of error kinds
//! is tested against it), and `string_enum!` (below) for the rest, so each
//! value is spelled once and a documented list (`--help`, README) can be
//! tested against `ALL`.

#![deny(clippy::print_stdout, clippy::print_stderr)]

/// Declares an enum of states or kinds that is part of the JSON contract:
/// each variant with the string it serialises as (today's strings, so the
/// JSON does not change), `ALL` (so tests can hold a documented list of
/// values equal to the variants) and `as_str` (for human output). Defined
/// here, before every module, so all of them can use it.
macro_rules! string_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $( $(#[doc = $doc:literal])* $variant:ident = $s:literal, )*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl $name {
            /// Every value, in declaration order.
            #[allow(dead_code)]
            pub const ALL: &[$name] = &[$($name::$variant),*];

            /// The string it serialises as.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

/// For tests that hold a list of values documented in a `--help` text or
/// README.md (`status: a|b|c`) equal to an enum's variants: the `|`-separated
/// words after the first `label` that follows `after` in `text`, with `///`
/// comment markers and line breaks taken out.
#[cfg(test)]
pub(crate) fn documented_values(text: &str, after: &str, label: &str) -> Vec<String> {
    let joined: String = text
        .lines()
        .map(|l| l.trim().trim_start_matches("///").trim())
        .collect::<Vec<_>>()
        .join(" ");
    let from = joined
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} is not documented"));
    let at = joined[from..]
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} is not documented after {after:?}"));
    let rest = &joined[from + at + label.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c == '|' || c == ' '))
        .unwrap_or(rest.len());
    // `a|b|c, next` ends at the comma; `a|b| c` (a wrapped line) goes on.
    rest[..end]
        .split('|')
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Asserts that the values [`documented_values`] finds are `names`, in
/// their order (an enum's `ALL`, spelt by `as_str`).
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_documents<'a>(
    text: &str,
    after: &str,
    label: &str,
    names: impl IntoIterator<Item = &'a str>,
) {
    let names: Vec<&str> = names.into_iter().collect();
    assert_eq!(
        documented_values(text, after, label),
        names,
        "{label:?} after {after:?}"
    );
}

/// Rendering bundles: templates, quoting, bundle.json.
pub mod bundle;
/// clap definitions for every command.
pub mod cli;
/// Editing Zoi's config on a machine: apply, status, revert.
pub mod client;
/// One module per command: arguments in, the printer out.
pub mod commands;
/// Exit codes and user-facing failures.
pub mod error;
/// Shared file-system helpers: atomic writes, directory replacement.
pub mod fsutil;
/// Server-side work: archive metadata for a binary host.
pub mod mirror;
/// The HTTP client, prober, failure kinds, classification, retry and
/// redaction, shared by everything that talks to the network.
pub mod net;
/// The printer: every byte to stdout/stderr, human reports, errors.
pub mod output;
/// HTTP and git probing.
pub mod probe;
/// The one async-runtime helper.
pub mod runtime;
/// mirror.toml: schema, loading with spans, validation, the init template.
pub mod spec;
/// Where a binary host lives: a folder, or S3-compatible object storage.
pub mod storage;
/// Zoi's formats and rules.
pub mod zoi;
