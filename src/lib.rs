//! zoi-mirror: a private mirror of the Zoi registry and binary archives.
//!
//! Data flows one way. Each top-level module sits in a layer and imports
//! only from its own layer and the layers below it (lowest first):
//!
//! | layer | modules | holds |
//! | --- | --- | --- |
//! | 0 | [`zoi`] | Zoi's formats and rules, the single source of truth about how the real client behaves |
//! | 1 | [`error`], [`fsutil`], [`runtime`] | failures and exit codes, atomic file writes, the one async-runtime helper |
//! | 2 | [`output`] | printers |
//! | 3 | [`net`] | the HTTP client, prober, failure kinds, classification, retry and redaction |
//! | 4 | [`storage`] | where a binary host lives: a folder or S3 |
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

/// Rendering bundles: templates, quoting, bundle.json.
pub mod bundle;
/// clap definitions for every command.
pub mod cli;
/// Editing Zoi's config on a machine: apply, status, revert.
pub mod client;
/// One module per command: arguments in, library calls, output out.
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
