//! zoi-mirror: a private mirror of the Zoi registry and binary archives.
//!
//! Data flows one way: [`spec`] (mirror.toml) → [`bundle`] (build) →
//! [`client`] (apply on a machine) → [`probe`] (check over the network), with
//! [`zoi`] underneath all of them as the single source of truth about how
//! the real Zoi client behaves.
//!
//! Only [`output`] writes to stdout and stderr; the print macros are denied
//! everywhere (library code returns values and warnings, commands hand them
//! to the printer).

#![deny(clippy::print_stdout, clippy::print_stderr)]

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
/// The printer: every byte to stdout/stderr, human reports, errors.
pub mod output;
/// HTTP and git probing.
pub mod probe;
/// mirror.toml: schema, loading with spans, validation, the init template.
pub mod spec;
/// Where a binary host lives: a folder, or S3-compatible object storage.
pub mod storage;
/// Zoi's formats and rules.
pub mod zoi;
