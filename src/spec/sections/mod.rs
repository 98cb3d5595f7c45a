//! One reader per table of `mirror.toml`, in the order `read` calls them.
//!
//! Each reads its table through the schema reader, pushes a diagnostic
//! for every problem that table alone can show (unknown keys, types,
//! values that are wrong on their own), and returns the section as
//! written (`Raw`, values still with their spans, defaults not applied).
//! Checks that need another section or upstream's repo.yaml are
//! [`super::validate`]'s; turning a `Raw` into the [`super::Spec`] type,
//! with defaults, is each `Raw::finish`.

pub(super) mod binaries;
pub(super) mod client;
pub(super) mod extension;
pub(super) mod registry;
pub(super) mod setup;
pub(super) mod storage;
pub(super) mod system;
