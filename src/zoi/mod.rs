//! Zoi's own formats and rules, and nothing else.
//!
//! Everything this tool knows about how the real Zoi client (1.29.4, the
//! crates.io `zoi-rs` release) reads config layers, `repo.yaml`, extension
//! changes, URL templates, archive metadata and archives lives here, so that
//! when Zoi changes there is exactly one place to follow it. Other modules
//! ask this one; they never re-derive a Zoi rule themselves.

pub mod archive;
pub mod config;
pub mod extension;
pub mod index;
pub mod layout;
pub mod metadata;
pub mod names;
pub mod paths;
pub mod pgp;
pub mod placeholders;
pub mod platform;
pub mod repo;
pub mod sidecars;
pub mod upstream;
