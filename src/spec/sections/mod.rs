//! One reader per table of `mirror.toml`, in the order `read` calls them.
//!
//! Each reads its table through the schema reader and pushes a diagnostic
//! for every problem that table alone can show (unknown keys, types,
//! values that are wrong on their own). A section that later checks need
//! with spans, or whose defaults come from upstream, is returned as
//! written (`Raw`, defaults not applied) and made into its [`super::Spec`]
//! type by `Raw::finish` once no diagnostic was recorded; the others
//! (`[system]`, `[setup]`, `[binaries.storage]`) return their type
//! directly. Checks that need another section or upstream's repo.yaml are
//! [`super::validate`]'s.

pub(super) mod binaries;
pub(super) mod client;
pub(super) mod extension;
pub(super) mod registry;
pub(super) mod setup;
pub(super) mod storage;
pub(super) mod system;
