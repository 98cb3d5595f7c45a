//! Publishing a folder (a bundle as `build` wrote it, keys, setup scripts)
//! to where clients read it: S3-compatible object storage
//! (`s3://bucket/prefix`, the same bucket that serves the archives) or a
//! folder (a web server's document root). `zoi-mirror publish` and
//! `build --publish` both call [`publish_dir`].
//!
//! Rules: the store is checked first (bucket there, credentials work,
//! anonymous read unless `require_public` is off), so a bad destination
//! writes nothing; a file whose bytes are already there is left alone
//! (`unchanged`); `bundle.json` goes last, since it pins every other file
//! by SHA-512 and a client that reads it must find what it names. A folder
//! destination gets each file atomically (temp file + rename) and keeps
//! whatever else it holds.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use crate::error::{ErrorKind, Failure, fail, io_failure};
use crate::net::client;
use crate::storage::{Dest, Expect, S3Settings, Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct PublishedFile {
    pub path: String,
    pub status: FileStatus,
}

string_enum! {
    /// What a publish did with one file.
    pub enum FileStatus {
        /// The destination did not hold these bytes: they were written.
        Written = "written",
        /// The destination already held the same bytes.
        Unchanged = "unchanged",
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Totals {
    pub written: usize,
    pub unchanged: usize,
}

/// What a publish did (the `publish` command's JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub to: String,
    /// Where clients read it.
    pub public_url: String,
    pub files: Vec<PublishedFile>,
    pub totals: Totals,
}

/// Every file under `dir`, relative and `/`-separated, `bundle.json` last.
fn files_of(dir: &Path) -> Result<Vec<String>> {
    if !dir.is_dir() {
        return fail(Failure::new(
            ErrorKind::RootMissing,
            format!("no folder at {}", dir.display()),
        ));
    }
    let mut rels = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.map_err(|e| {
            let io = std::io::Error::other(e.to_string());
            io_failure("read", dir, &io)
        })?;
        if e.file_type().is_file()
            && let Ok(r) = e.path().strip_prefix(dir)
        {
            rels.push(r.to_string_lossy().replace('\\', "/"));
        }
    }
    // bundle.json pins every other file: it goes last.
    rels.sort_by_key(|r| (r == crate::bundle::manifest::FILE_NAME, r.clone()));
    Ok(rels)
}

/// Publishes every file of `dir` to `to`.
pub fn publish_dir(
    dir: &Path,
    to: &Dest,
    settings: &S3Settings,
    http: &client::Options,
    require_public: bool,
) -> Result<Published> {
    let rels = files_of(dir)?;
    match to {
        Dest::Local(root) => to_folder(dir, root, rels),
        Dest::S3(url) => {
            let store = Arc::new(Store::open(url, settings).map_err(StoreError::into_failure)?);
            to_store(dir, &store, rels, http, require_public)
        }
    }
}

fn to_folder(dir: &Path, root: &Path, rels: Vec<String>) -> Result<Published> {
    let mut files = Vec::new();
    for rel in rels {
        let from = dir.join(&rel);
        let bytes = std::fs::read(&from).map_err(|e| io_failure("read", &from, &e))?;
        let dest = root.join(&rel);
        let same = std::fs::read(&dest).is_ok_and(|old| old == bytes);
        if !same {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_failure("create", parent, &e))?;
            }
            crate::fsutil::atomic_write(&dest, &bytes).map_err(|e| {
                Failure::new(
                    ErrorKind::Io,
                    format!("cannot write {}: {e:#}", dest.display()),
                )
                .hint("check that the folder is writable")
            })?;
        }
        files.push(PublishedFile {
            path: rel,
            status: if same {
                FileStatus::Unchanged
            } else {
                FileStatus::Written
            },
        });
    }
    Ok(report(
        root.display().to_string(),
        root.display().to_string(),
        files,
    ))
}

fn to_store(
    dir: &Path,
    store: &Arc<Store>,
    rels: Vec<String>,
    http: &client::Options,
    require_public: bool,
) -> Result<Published> {
    let rt = crate::runtime::new(crate::runtime::Threads::PerCore)?;
    let files = rt.block_on(async {
        let client = client::Http::new(http)?;
        store
            .preflight(&client, require_public)
            .await
            .map_err(StoreError::into_failure)?;
        let mut out = Vec::new();
        for rel in rels {
            let path = dir.join(&rel);
            let bytes = std::fs::read(&path).map_err(|e| io_failure("read", &path, &e))?;
            let same = store
                .get_small(&rel)
                .await
                .map_err(StoreError::into_failure)?
                .is_some_and(|(old, _)| old == bytes);
            if !same {
                store
                    .put(&rel, bytes, &Expect::Any, &[])
                    .await
                    .map_err(StoreError::into_failure)?;
            }
            out.push(PublishedFile {
                path: rel,
                status: if same {
                    FileStatus::Unchanged
                } else {
                    FileStatus::Written
                },
            });
        }
        anyhow::Ok(out)
    })?;
    Ok(report(store.url.to_string(), store.public_url(""), files))
}

fn report(to: String, public_url: String, files: Vec<PublishedFile>) -> Published {
    let mut totals = Totals::default();
    for f in &files {
        match f.status {
            FileStatus::Written => totals.written += 1,
            FileStatus::Unchanged => totals.unchanged += 1,
        }
    }
    Published {
        to,
        public_url,
        files,
        totals,
    }
}
