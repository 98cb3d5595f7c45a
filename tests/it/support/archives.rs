//! Real Zoi archives built in memory: a tar (tar crate) compressed with
//! zstd (zstd crate), holding a `manifest.json` in Zoi 1.29.4's v2 pooled
//! shape, or the legacy `data/` layout.

use std::path::Path;

use serde_json::{Value, json};

/// One tar entry.
pub enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    /// A regular file whose header name is written raw, bypassing the tar
    /// crate's refusal of `..` (a malicious archive).
    RawName(&'a [u8], &'a [u8]),
}

pub fn tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::File(path, data) => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, path, *data).unwrap();
            }
            E::Dir(path) => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
            E::Symlink(path, target) => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                b.append_link(&mut h, path, target).unwrap();
            }
            E::RawName(name, data) => {
                let mut h = tar::Header::new_ustar();
                h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn zst(raw: &[u8]) -> Vec<u8> {
    zstd::encode_all(raw, 3).unwrap()
}

/// `sha256-<hex>` of `data`, Zoi's pool key.
pub fn pool_key(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256-{}", hex::encode(Sha256::digest(data)))
}

/// A v2 `manifest.json` mapping one binary `bin/<name>` into the user and
/// system scopes of the main package, with its `bin` directory.
pub fn manifest_for(name: &str, payload: &[u8]) -> String {
    let key = pool_key(payload);
    let file = json!({"dest": format!("${{pkgstore}}/bin/{name}"), "hash": key, "mode": 493});
    let dirs = json!([{"path": "${pkgstore}/bin", "mode": 493}]);
    let scope = json!({"files": [file], "dirs": dirs});
    serde_json::to_string_pretty(&json!({
        "version": "2",
        "pool": {key.clone(): {"size": payload.len()}},
        "mappings": {"": {"scopes": {"user": scope, "system": scope}}}
    }))
    .unwrap()
}

/// A small valid `.zpa` for package `name`; `payload` makes it unique.
/// Returns the archive and its install size.
pub fn simple_zpa(name: &str, payload: &[u8]) -> (Vec<u8>, u64) {
    let manifest = manifest_for(name, payload);
    let lua = format!("metadata({{ name = \"{name}\" }})\n");
    let pool = format!("pool/{}", pool_key(payload));
    let raw = tar(&[
        E::Dir("pool"),
        E::File(&pool, payload),
        E::File(&format!("{name}.pkg.lua"), lua.as_bytes()),
        E::File("manifest.json", manifest.as_bytes()),
    ]);
    let install = (payload.len() + lua.len() + manifest.len()) as u64;
    (zst(&raw), install)
}

/// The manifest JSON as a value, for tests that want to break it.
pub fn manifest_value(name: &str, payload: &[u8]) -> Value {
    serde_json::from_str(&manifest_for(name, payload)).unwrap()
}

/// `sha512sum FILE`'s digest: the expectation comes from coreutils, not
/// from the code under test.
pub fn sha512sum(path: &Path) -> String {
    let out = std::process::Command::new("sha512sum")
        .arg(path)
        .output()
        .expect("run sha512sum");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..128].to_string()
}
