//! `bundle.json`: what a bundle contains and how to verify it.
//!
//! It is the one file a client trusts first (its own SHA-512 can be pinned
//! with `apply --sha512`); every other file is trusted only after its SHA-512
//! matches the value recorded here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

use crate::zoi::platform::Platform;

/// The bundle format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The first zoi-mirror that reads [`FORMAT_VERSION`] (setup scripts use an
/// installed zoi-mirror only when it is at least this new).
pub const MIN_READER_VERSION: &str = "0.1.0";
pub const FILE_NAME: &str = "bundle.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub extension: ExtensionId,
    pub generator: Generator,
    /// The config keys `apply` manages, per scope.
    pub manages: Manages,
    /// The extension's changes, as in the `.pkg.lua` (so `apply` can tell
    /// which would collide with a user's config before handing it to Zoi).
    pub extension_changes: Vec<crate::zoi::extension::Change>,
    pub registry: RegistryInfo,
    pub binaries: BinariesInfo,
    /// `zoi-mirror` executables published with the bundle, by platform
    /// (paths relative to the bundle).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<Platform, String>,
    /// SHA-512 and size of every other file, by path relative to the bundle.
    /// The setup scripts are not listed: they pin this file's own SHA-512.
    pub files: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionId {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generator {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manages {
    pub user: Vec<String>,
    pub system: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryInfo {
    pub url: String,
    pub branch: String,
    pub handle: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinariesInfo {
    pub url: String,
    pub layout: String,
    pub format: String,
    pub platforms: Vec<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub sha512: String,
    pub size: u64,
}

impl FileEntry {
    pub fn of(bytes: &[u8]) -> Self {
        FileEntry {
            sha512: sha512_hex(bytes),
            size: bytes.len() as u64,
        }
    }
}

pub fn sha512_hex(bytes: &[u8]) -> String {
    hex::encode(Sha512::digest(bytes))
}
