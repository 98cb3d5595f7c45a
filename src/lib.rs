//! zoi-mirror: a private mirror of the Zoi registry and binary archives.
//!
//! Data flows one way: [`spec`] (mirror.toml) → [`bundle`] (build) →
//! [`client`] (apply on a machine) → [`probe`] (check over the network), with
//! [`zoi`] underneath all of them as the single source of truth about how
//! the real Zoi client behaves.

/// Rendering bundles: templates, quoting, bundle.json.
pub mod bundle;
/// clap definitions for every command.
pub mod cli;
/// Editing Zoi's config on a machine: apply, status, revert.
pub mod client;
/// One module per command; the only code that prints.
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
/// Human and JSON printers.
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
