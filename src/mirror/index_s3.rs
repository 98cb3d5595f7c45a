//! `index s3://bucket/prefix`: [`super::index`] over object storage. Each
//! archive is streamed from the store through the same one-pass reader
//! ([`crate::zoi::archive::read_archive`], on a blocking thread behind a
//! bounded channel) and its `.files`, `.size` and `.hash` are written next
//! to it, `.hash` last, carrying the archive's ETag as user metadata
//! (`x-amz-meta-archive-etag`). An archive is *fresh* — skipped — when its
//! three metadata objects exist, `.size` says the object's size, `.hash`
//! names the file and records the ETag the archive has now. `--check`
//! recomputes and compares byte for byte, writing nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use super::index::{
    ArchiveResult, Failed, LayoutProblem, METADATA, Meta, Options, Problem, Report, SIDECARS,
    Status, Totals, describe_difference,
};
use super::index::{FailedKind, ProblemKind, UNREADABLE};
use crate::storage::{ARCHIVE_ETAG_META, ChannelReader, Entry, Expect, Store, StoreError};
use crate::zoi::archive::{ArchiveKind, Summary, read_archive};
use crate::zoi::metadata;

fn store_failed(e: StoreError) -> Failed {
    let kind = if matches!(
        e.kind,
        crate::error::ErrorKind::StorageDenied | crate::error::ErrorKind::StorageConflict
    ) {
        FailedKind::WriteFailed
    } else {
        UNREADABLE
    };
    Failed::new(kind, format!("{}: {}", e.kind, e.message))
}

/// Lists the store and indexes (or checks) every archive in it, `jobs` at
/// a time. `on_read` is told of archive bytes consumed.
pub async fn run(
    store: Arc<Store>,
    opts: &Options,
    on_read: &(dyn Fn(u64) + Sync),
) -> Result<Report, StoreError> {
    let listing = store.list().await?;
    let by_rel: BTreeMap<&str, &Entry> = listing.iter().map(|e| (e.rel.as_str(), e)).collect();
    let mut archives = Vec::new();
    let mut sidecars = Vec::new();
    for e in &listing {
        let name = e.rel.rsplit('/').next().unwrap_or_default();
        if let Some(kind) = ArchiveKind::of_file_name(name) {
            archives.push((e.clone(), kind, name.to_string()));
        } else if let Some((stem, ext)) = e.rel.rsplit_once('.')
            && SIDECARS.contains(&ext)
            && ArchiveKind::of_file_name(stem.rsplit('/').next().unwrap_or_default()).is_some()
        {
            sidecars.push((stem.to_string(), e.rel.clone()));
        }
    }
    let present: BTreeSet<&str> = archives.iter().map(|(e, _, _)| e.rel.as_str()).collect();
    let orphans: Vec<String> = sidecars
        .iter()
        .filter(|(a, _)| !present.contains(a.as_str()))
        .map(|(_, r)| r.clone())
        .collect();
    let mut layout_problems = Vec::new();
    if let Some(lint) = &opts.lint {
        for (e, kind, _) in &archives {
            for message in lint.layout.check(&e.rel, *kind) {
                layout_problems.push(LayoutProblem {
                    path: e.rel.clone(),
                    message,
                });
            }
            if let Some(format) = lint.format
                && format != *kind
            {
                layout_problems.push(LayoutProblem {
                    path: e.rel.clone(),
                    message: format!(
                        "the bundle's binaries.format is `{}`: clients of this mirror request `.{}` names and never this file",
                        format.extension(),
                        format.extension()
                    ),
                });
            }
        }
    }
    let has_meta = |rel: &str| {
        METADATA
            .iter()
            .all(|m| by_rel.contains_key(format!("{rel}.{}", m.extension()).as_str()))
    };
    let work: Vec<_> = archives
        .into_iter()
        .map(|(e, kind, name)| {
            let complete = has_meta(&e.rel);
            (e, kind, name, complete)
        })
        .collect();
    let bytes_read = std::sync::atomic::AtomicU64::new(0);
    let mut results: Vec<ArchiveResult> =
        futures::stream::iter(work.into_iter().map(|(entry, kind, name, complete)| {
            let store = store.clone();
            let bytes_read = &bytes_read;
            async move {
                one(&store, opts, entry, kind, &name, complete, &|n| {
                    bytes_read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    on_read(n);
                })
                .await
            }
        }))
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await;
    results.sort_by(|a, b| a.path.cmp(&b.path));
    let mut totals = Totals {
        archives: results.len(),
        orphans: orphans.len(),
        layout_problems: layout_problems.len(),
        bytes_read: bytes_read.into_inner(),
        ..Totals::default()
    };
    for a in &results {
        match a.status {
            Status::Written => totals.written += 1,
            Status::Unchanged => totals.unchanged += 1,
            Status::Ok => totals.ok += 1,
            Status::Mismatch => totals.mismatch += 1,
            Status::Error => totals.errors += 1,
        }
    }
    Ok(Report {
        root: store.url.to_string().into(),
        check: opts.check,
        archives: results,
        orphans,
        layout_problems,
        totals,
    })
}

async fn fetch_meta(
    store: &Store,
    rel: &str,
) -> Result<BTreeMap<&'static str, (String, Option<String>)>, StoreError> {
    let mut out = BTreeMap::new();
    for m in METADATA {
        if let Some((b, attrs)) = store.get_small(&format!("{rel}.{}", m.extension())).await? {
            let etag = attrs.iter().find_map(|(k, v)| match k {
                object_store::Attribute::Metadata(name) if name == ARCHIVE_ETAG_META => {
                    Some(v.as_ref().to_string())
                }
                _ => None,
            });
            out.insert(
                m.extension(),
                (String::from_utf8_lossy(&b).into_owned(), etag),
            );
        }
    }
    Ok(out)
}

/// What the stored metadata says, if it is fresh for `entry`.
fn fresh(
    entry: &Entry,
    file_name: &str,
    bodies: &BTreeMap<&'static str, (String, Option<String>)>,
) -> Option<Summary> {
    let (hash, etag) = bodies.get("hash")?;
    if etag.is_none() || etag.as_deref() != entry.e_tag.as_deref() {
        return None;
    }
    let sha512 = metadata::parse_hash(hash, Some(file_name)).sha512()?;
    if *hash != metadata::hash_body(&sha512, file_name) {
        return None;
    }
    let (size, _) = bodies.get("size")?;
    let sizes = metadata::parse_size(size)?;
    if sizes.down != entry.size || *size != metadata::size_body(sizes.down, sizes.install) {
        return None;
    }
    let (files, _) = bodies.get("files")?;
    if files.ends_with('\n') {
        return None;
    }
    Some(Summary {
        sha512,
        down: sizes.down,
        install: sizes.install,
        files: metadata::parse_files(files)
            .into_iter()
            .map(str::to_string)
            .collect(),
    })
}

async fn read(
    store: &Store,
    entry: &Entry,
    kind: ArchiveKind,
    on_read: &(dyn Fn(u64) + Sync),
) -> Result<Summary, Failed> {
    let mut stream = store.get_stream(&entry.rel).await.map_err(store_failed)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let reader = tokio::task::spawn_blocking(move || {
        let mut r = ChannelReader {
            rx,
            cur: Bytes::new(),
        };
        let s = read_archive(&mut r, kind, &mut |_| {});
        // Drain, so the sender never waits on a reader that stopped early.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
        s
    });
    let mut failure = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                on_read(c.len() as u64);
                if tx.send(c).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(store_failed(e));
                break;
            }
        }
    }
    drop(tx);
    let summary = reader
        .await
        .map_err(|e| Failed::new(UNREADABLE, format!("reader thread: {e}")))?;
    if let Some(f) = failure {
        return Err(f);
    }
    let summary = summary.map_err(Failed::from)?;
    if summary.down != entry.size {
        return Err(Failed::new(
            FailedKind::ChangedDuringRead,
            "the object changed while it was read; run again",
        ));
    }
    Ok(summary)
}

async fn one(
    store: &Store,
    opts: &Options,
    entry: Entry,
    kind: ArchiveKind,
    file_name: &str,
    complete: bool,
    on_read: &(dyn Fn(u64) + Sync),
) -> ArchiveResult {
    let rel = entry.rel.clone();
    if !opts.check && !opts.force && complete {
        match fetch_meta(store, &rel).await {
            Ok(bodies) => {
                if let Some(s) = fresh(&entry, file_name, &bodies) {
                    return ArchiveResult::with_summary(rel, Status::Unchanged, &s);
                }
            }
            Err(e) => return ArchiveResult::failed(rel, store_failed(e)),
        }
    }
    let summary = match read(store, &entry, kind, on_read).await {
        Ok(s) => s,
        Err(f) => return ArchiveResult::failed(rel, f),
    };
    if opts.check {
        let bodies = match fetch_meta(store, &rel).await {
            Ok(b) => b,
            Err(e) => return ArchiveResult::failed(rel, store_failed(e)),
        };
        let mut problems = Vec::new();
        for m in [Meta::Hash, Meta::Size, Meta::Files] {
            let file = format!(".{}", m.extension());
            let expected = m.body(&summary, file_name);
            match bodies.get(m.extension()) {
                None => problems.push(Problem {
                    file: file.clone(),
                    kind: ProblemKind::Missing,
                    message: format!("{file} is missing"),
                }),
                Some((found, _)) if *found == expected => {}
                Some((found, _)) => problems.push(Problem {
                    file: file.clone(),
                    kind: ProblemKind::Differs,
                    message: describe_difference(m, &expected, found),
                }),
            }
        }
        let status = if problems.is_empty() {
            Status::Ok
        } else {
            Status::Mismatch
        };
        let mut r = ArchiveResult::with_summary(rel, status, &summary);
        r.problems = problems;
        return r;
    }
    // Still the object that was read?
    match store.head(&rel).await {
        Ok(Some(now)) if now.e_tag == entry.e_tag && now.size == entry.size => {}
        Ok(_) => {
            return ArchiveResult::failed(
                rel,
                Failed::new(
                    FailedKind::ChangedDuringRead,
                    "the object was replaced or removed while it was read; run again",
                ),
            );
        }
        Err(e) => return ArchiveResult::failed(rel, store_failed(e)),
    }
    for m in METADATA {
        let meta = match (&entry.e_tag, m) {
            (Some(t), Meta::Hash) => vec![(ARCHIVE_ETAG_META, t.clone())],
            _ => Vec::new(),
        };
        if let Err(e) = store
            .put(
                &format!("{rel}.{}", m.extension()),
                m.body(&summary, file_name).into_bytes(),
                &Expect::Any,
                &meta,
            )
            .await
        {
            return ArchiveResult::failed(
                rel,
                Failed::new(
                    FailedKind::WriteFailed,
                    format!("{}: {}", e.kind, e.message),
                ),
            );
        }
    }
    ArchiveResult::with_summary(rel, Status::Written, &summary)
}
