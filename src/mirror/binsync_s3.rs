//! `bin sync` into S3-compatible object storage: the same jobs, checks
//! and reports as [`super::binsync`], with the bytes streamed from upstream
//! straight into a multipart upload, never staged on local disk.
//!
//! Per file: upstream's `.hash` first; when the stored `.hash` already says
//! the same (and the object is there), nothing moves. Otherwise the
//! download is hashed on the way and, at the same time, fed through bounded
//! channels to the verifiers that need the bytes (the embedded
//! `manifest.sig` reader over the zstd/tar stream, the detached-signature
//! verifier, the archive reader that generates missing metadata), each on
//! its own blocking thread; memory stays bounded by the channels and the
//! upload's parts in flight, whatever the archive's size. An interrupted
//! download resumes with `Range` within the run, feeding the same upload.
//! Only once SHA-512, size and signature all check out is the upload
//! completed — with a condition (`If-None-Match: *` when the object was
//! absent, `If-Match: <ETag>` when it was there), so two runs filling one
//! bucket never overwrite each other's work; otherwise it is aborted and no
//! object appears. Then the sidecars, `.hash` last (carrying the archive's
//! ETag as `x-amz-meta-archive-etag`, which `index` reads).
//!
//! Re-signing (`--sign KEY`): gpg is one more consumer of the stream
//! (`gpg --detach-sign` reading stdin), so the company `.sig` covers
//! exactly the bytes that were verified and uploaded; it goes up after the
//! archive and before `.hash`. As for a folder, an archive with upstream's
//! embedded `manifest.sig` is not re-signed (Zoi reads that first), with a
//! warning.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::binsync::{
    Artifact, Job, KeyReport, Options, SidecarStep, Sidecars, TargetReport, check_received, failed,
    fetch_keys, gpg_sign_reader, judge, new_report, run_all, sidecar_steps, sign_failed,
    stored_hash_current, upstream_hash, upstream_sidecars, would_download,
};
use super::binsync::{KeyStatus, MetaSource, Sha512Ctx, SignatureCheck, TargetStatus};
use crate::net::classify::classify;
use crate::net::prober::Prober;
use crate::net::problem::{Kind, Problem};
use crate::net::reply::status_problem;
use crate::net::retry::{Failed, Retry, retry_after_of};
use crate::storage::{ARCHIVE_ETAG_META, ChannelReader, Expect, Put, Store, StoreError};
use crate::zoi::archive::{ArchiveKind, Summary, read_archive};
use crate::zoi::pgp::PublicKey;

fn store_problem(e: StoreError) -> Problem {
    let kind = match e.kind {
        crate::error::ErrorKind::StorageUnreachable => Kind::Connect,
        crate::error::ErrorKind::StorageDenied => Kind::Forbidden,
        crate::error::ErrorKind::StorageBucketMissing => Kind::NotFound,
        _ => Kind::HttpError,
    };
    Problem::new(kind, format!("{}: {}", e.kind, e.message))
}

/// Places upstream's keys in the store; see [`super::binsync::sync_keys`].
pub async fn sync_keys(
    prober: &Prober,
    keys: &[(String, String)],
    store: &Store,
    keys_dir: &str,
    dry_run: bool,
) -> (Vec<KeyReport>, Vec<PublicKey>) {
    let mut reports = Vec::new();
    let mut parsed = Vec::new();
    for fetched in fetch_keys(prober, keys, keys_dir).await {
        let (mut r, body, key) = match fetched {
            Ok(v) => v,
            Err(r) => {
                reports.push(r);
                continue;
            }
        };
        let old = store.get_small(&r.path).await;
        r.status = match old {
            Ok(Some((old, _))) if old == body => KeyStatus::UpToDate,
            _ if dry_run => KeyStatus::WouldPlace,
            Err(e) => {
                r.error = Some(store_problem(e).into());
                KeyStatus::Failed
            }
            Ok(_) => match store.put(&r.path, body, &Expect::Any, &[]).await {
                Ok(_) => KeyStatus::Placed,
                Err(e) => {
                    r.error = Some(store_problem(e).into());
                    KeyStatus::Failed
                }
            },
        };
        parsed.push(key);
        reports.push(r);
    }
    (reports, parsed)
}

/// What the verifier threads found.
enum Verdict {
    Embedded(std::io::Result<Option<crate::zoi::pgp::Embedded>>),
    Detached(Result<usize, crate::zoi::pgp::SigError>),
    Generated(Result<Summary, crate::zoi::archive::ArchiveError>),
    /// Our own detached signature of the bytes (`--sign`).
    Signed(Result<Vec<u8>, String>),
}

/// Consumers of the byte stream, each on a blocking thread behind a
/// bounded channel.
struct Tee {
    txs: Vec<tokio::sync::mpsc::Sender<Bytes>>,
    handles: Vec<tokio::task::JoinHandle<Verdict>>,
}

/// Chunks buffered per consumer: with reqwest's chunks of a few KiB to a
/// few hundred, a handful of MiB at most.
const TEE_DEPTH: usize = 16;

impl Tee {
    fn new() -> Tee {
        Tee {
            txs: Vec::new(),
            handles: Vec::new(),
        }
    }

    fn add(&mut self, f: impl FnOnce(ChannelReader) -> Verdict + Send + 'static) {
        let (tx, rx) = tokio::sync::mpsc::channel(TEE_DEPTH);
        self.txs.push(tx);
        self.handles.push(tokio::task::spawn_blocking(move || {
            f(ChannelReader {
                rx,
                cur: Bytes::new(),
            })
        }));
    }

    async fn send(&mut self, chunk: &Bytes) {
        for tx in &self.txs {
            // A consumer that has seen enough (the embedded-signature
            // reader stops after the tar's end) has dropped its receiver.
            let _ = tx.send(chunk.clone()).await;
        }
    }

    /// Every consumer's verdict, once the stream has ended. A consumer
    /// that panicked is a bug, not a verdict: its panic is handed back
    /// (after the others ended) for the job to abort its upload and
    /// re-raise, so [`run_all`] fails the run as `internal` — a missing
    /// verdict must never read as "no embedded signature" or "no metadata".
    async fn finish(self) -> Result<Vec<Verdict>, Box<dyn std::any::Any + Send>> {
        drop(self.txs);
        let mut out = Vec::new();
        let mut panicked = None;
        for h in self.handles {
            match h.await {
                Ok(v) => out.push(v),
                Err(e) if e.is_panic() => panicked = panicked.or(Some(e.into_panic())),
                // Cancelled: only when the runtime shuts down.
                Err(_) => {}
            }
        }
        match panicked {
            Some(p) => Err(p),
            None => Ok(out),
        }
    }
}

/// Runs the sync into `store`; see [`super::binsync::run`].
pub async fn run(
    prober: Arc<Prober>,
    opts: Options,
    store: Arc<Store>,
    concurrency: usize,
    progress: impl Fn(u64, u64),
) -> Result<Vec<TargetReport>, crate::error::Failure> {
    run_all(opts, concurrency, progress, move |opts, job, bytes| {
        sync_job(prober.clone(), opts, store.clone(), job, bytes)
    })
    .await
}

fn key_of(rel: &std::path::Path) -> String {
    rel.to_string_lossy().replace('\\', "/")
}

async fn sync_job(
    prober: Arc<Prober>,
    opts: Arc<Options>,
    store: Arc<Store>,
    job: Job,
    bytes_seen: Arc<AtomicU64>,
) -> TargetReport {
    let key = key_of(&job.rel);
    let urls = &job.urls;
    let file_name = urls.file_name().to_string();
    let mut report = new_report(&job, key.clone());

    // 1. upstream's .hash (as the folder backend reads it)
    let up = match upstream_hash(&prober, &job, &file_name).await {
        Ok(h) => h,
        Err(stop) => return stop.report(report),
    };
    let (hash_body, want) = (up.body.clone(), up.want.clone());

    // 2. already in the store?
    let existing = match store.head(&key).await {
        Ok(e) => e,
        Err(e) => return failed(report, store_problem(e)),
    };
    if existing.is_some() {
        let stored = match store.get_small(&format!("{key}.hash")).await {
            Ok(h) => h.map(|(b, _)| b),
            Err(e) => return failed(report, store_problem(e)),
        };
        if stored_hash_current(stored.as_deref(), &up, &file_name) {
            report.status = TargetStatus::UpToDate;
            return report;
        }
    }
    if opts.dry_run {
        return would_download(&prober, urls, report).await;
    }
    let expect = match &existing {
        None => Expect::Absent,
        Some(e) => e.e_tag.clone().map_or(Expect::Any, Expect::ETag),
    };

    // 3. upstream's other metadata
    let Sidecars {
        size: size_body,
        files: files_body,
        sig: sig_body,
    } = match upstream_sidecars(&prober, urls).await {
        Ok(s) => s,
        Err(p) => return failed(report, p),
    };

    // 4. the stream: hashed, teed to the verifiers, uploaded
    let mut tee = Tee::new();
    if let Some(keys) = &opts.verify {
        if job.artifact == Artifact::Archive {
            tee.add(|r| {
                Verdict::Embedded(
                    zstd::Decoder::new(r).and_then(crate::zoi::pgp::embedded_signature),
                )
            });
        }
        if let Some(sig) = sig_body.clone() {
            let keys = keys.clone();
            tee.add(move |r| {
                let refs: Vec<&PublicKey> = keys.iter().collect();
                Verdict::Detached(crate::zoi::pgp::verify_detached_reader(r, &sig, &refs))
            });
        }
    }
    if job.artifact == Artifact::Archive && (size_body.is_none() || files_body.is_none()) {
        tee.add(|r| Verdict::Generated(read_archive(r, ArchiveKind::Zpa, &mut |_| {})));
    }
    if let Some(signer) = opts.resign.clone() {
        tee.add(move |r| Verdict::Signed(gpg_sign_reader(&signer, r)));
    }
    let mut upload = store.upload(&key);
    let need_sha256 = matches!(want, Some((true, _)));
    let streamed = stream_into(
        &prober.http,
        &urls.archive,
        need_sha256,
        opts.retries,
        &mut upload,
        &mut tee,
        &bytes_seen,
    )
    .await;
    let (sha512, sha256, len, resumed) = match streamed {
        Ok(v) => v,
        Err(p) => {
            upload.abort().await;
            if let Err(panic) = tee.finish().await {
                std::panic::resume_unwind(panic);
            }
            if p.kind == Kind::NotFound {
                report.status = TargetStatus::NotAvailable;
                return report;
            }
            return failed(report, p);
        }
    };
    let verdicts = match tee.finish().await {
        Ok(v) => v,
        Err(panic) => {
            upload.abort().await;
            std::panic::resume_unwind(panic);
        }
    };
    report.bytes = len;
    report.resumed = resumed;
    let got = match &want {
        Some((true, _)) => sha256,
        _ => sha512,
    };
    let mut problem = check_received(&want, &got, len, size_body.as_deref());

    // 5. the signature, as Zoi will verify it
    let mut embedded_seen = None;
    let mut detached_seen = None;
    let mut generated = None;
    let mut signed = None;
    for v in verdicts {
        match v {
            Verdict::Embedded(e) => embedded_seen = Some(e),
            Verdict::Detached(d) => detached_seen = Some(d),
            Verdict::Generated(g) => generated = Some(g),
            Verdict::Signed(s) => signed = Some(s),
        }
    }
    if problem.is_none()
        && let Some(keys) = &opts.verify
    {
        match judge(
            job.artifact,
            embedded_seen,
            || detached_seen,
            keys,
            &urls.pgp,
        ) {
            Ok(how) => report.signature = Some(how),
            Err(p) => problem = Some(p),
        }
    } else if opts.verify.is_none() {
        report.signature = Some(SignatureCheck::Unverified);
    }
    let generated = match generated {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            if problem.is_none() {
                problem = Some(Problem::new(
                    Kind::MalformedMetadata,
                    format!("cannot index the archive: {e}"),
                ));
            }
            None
        }
    };
    // our own signature, when asked for: the verified bytes went through
    // gpg as they went up (the same signature the folder path makes of the
    // placed file); as there, an embedded manifest.sig wins in Zoi, so a
    // company .sig would never be read.
    let mut sig_out = sig_body.map(|b| (b, MetaSource::Upstream));
    if problem.is_none()
        && let Some(signer) = &opts.resign
    {
        if report.signature == Some(SignatureCheck::Embedded) {
            report
                .warnings
                .push(super::binsync::not_resigned_warning(&opts));
        } else {
            match signed {
                Some(Ok(b)) => sig_out = Some((b, MetaSource::Resigned)),
                Some(Err(e)) => problem = Some(sign_failed(signer, &e)),
                None => problem = Some(sign_failed(signer, "gpg never ran")),
            }
        }
    }
    if let Some(p) = problem {
        upload.abort().await;
        return failed(report, p);
    }

    // 6. visible now, on condition
    let etag = match upload.finish(&expect).await {
        Ok(Put::Written(etag)) => etag,
        Ok(Put::Conflict) => {
            report.status = TargetStatus::UpToDate;
            report.warnings.push(
                "another run wrote this object meanwhile; it was left as that run placed it"
                    .to_string(),
            );
            return report;
        }
        Err(e) => return failed(report, store_problem(e)),
    };

    // 7. the sidecars, .hash last
    let sidecars = Sidecars {
        size: size_body,
        files: files_body,
        sig: None,
    };
    for step in sidecar_steps(sidecars, generated.as_ref(), sig_out, hash_body) {
        match step {
            SidecarStep::Write(ext, bytes, source) => {
                let meta = match (&etag, ext) {
                    (Some(t), "hash") => vec![(ARCHIVE_ETAG_META, t.clone())],
                    _ => Vec::new(),
                };
                if let Err(e) = store
                    .put(&format!("{key}.{ext}"), bytes, &Expect::Any, &meta)
                    .await
                {
                    return failed(report, store_problem(e));
                }
                report.metadata.push((ext.to_string(), source));
            }
            // A DELETE of a missing key succeeds: no listing needed first.
            SidecarStep::Remove(ext) => {
                if let Err(e) = store.delete(&format!("{key}.{ext}")).await {
                    return failed(report, store_problem(e));
                }
            }
        }
    }
    report.status = TargetStatus::Downloaded;
    report
}

/// Streams `url` into `upload` and `tee`, resuming with `Range` after an
/// interruption. Returns the SHA-512 and (with `need_sha256`, for deltas)
/// SHA-256 of the whole body, its length and whether a resume happened.
async fn stream_into(
    http: &crate::net::client::Http,
    url: &str,
    need_sha256: bool,
    retries: u32,
    upload: &mut crate::storage::Upload,
    tee: &mut Tee,
    bytes_seen: &AtomicU64,
) -> Result<(String, String, u64, bool), Problem> {
    let mut sha512 = Sha512Ctx::new();
    let mut sha256 = Sha256::new();
    let mut have = 0u64;
    let mut resumed = false;
    let mut retry = Retry::new(retries);
    let u = url::Url::parse(url).map_err(|e| {
        Problem::new(
            Kind::NotFound,
            format!("{}: {e}", crate::net::redact::redact(url)),
        )
    })?;
    loop {
        retry.attempt();
        let range = (have > 0).then(|| (reqwest::header::RANGE, format!("bytes={have}-")));
        let result: Result<(), Failed> = async {
            let resp = http
                .send(
                    reqwest::Method::GET,
                    &u,
                    range.as_slice(),
                    Some(Duration::from_secs(24 * 3600)),
                )
                .await
                .map_err(|e| Failed::from(classify(&e)))?;
            let status = resp.status().as_u16();
            // Bytes of this body already received earlier (a server that
            // ignores Range and sends everything again).
            let mut skip = match status {
                206 if have > 0 => {
                    resumed = true;
                    0
                }
                200 => have,
                416 if have > 0 => return Ok(()),
                _ => {
                    let r = crate::net::reply::Reply {
                        status,
                        ..Default::default()
                    };
                    return Err(Failed {
                        problem: status_problem(&r).unwrap_or_else(|| {
                            Problem::new(Kind::HttpError, format!("HTTP {status}"))
                                .with_status(status)
                        }),
                        retry_after: retry_after_of(resp.headers()),
                    });
                }
            };
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let mut chunk = chunk.map_err(|e| classify(&e))?;
                if skip > 0 {
                    let n = skip.min(chunk.len() as u64);
                    chunk = chunk.slice(n as usize..);
                    skip -= n;
                    if chunk.is_empty() {
                        continue;
                    }
                }
                sha512.update(&chunk);
                if need_sha256 {
                    sha256.update(&chunk);
                }
                have += chunk.len() as u64;
                bytes_seen.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                tee.send(&chunk).await;
                upload.write(chunk).await.map_err(store_problem)?;
            }
            if skip > 0 {
                return Err(Problem::new(
                    Kind::Truncated,
                    "upstream sent less than before on a retry".to_string(),
                )
                .into());
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                return Ok((
                    sha512.finish_hex(),
                    hex::encode(sha256.finalize()),
                    have,
                    resumed,
                ));
            }
            Err(failed) => retry.next(failed).await?,
        }
    }
}

/// Deletes an archive and its metadata from the store, `.hash` first (a
/// client never sees a `.hash` without its archive).
pub async fn remove_archive(store: &Store, rel: &str) -> Result<(), StoreError> {
    for ext in ["hash", "size", "files", "sig"] {
        store.delete(&format!("{rel}.{ext}")).await?;
    }
    store.delete(rel).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verifier that panicked gives no verdict: `finish` hands the panic
    /// back (it was dropped, and the missing verdict read as "no embedded
    /// signature" or "no generated metadata").
    #[test]
    fn a_panicked_consumer_is_handed_back_not_dropped() {
        let rt = crate::runtime::new(crate::runtime::Threads::PerCore).unwrap();
        rt.block_on(async {
            let mut tee = Tee::new();
            tee.add(|_| panic!("embedded reader: boom"));
            tee.add(|_| Verdict::Signed(Ok(Vec::new())));
            tee.send(&Bytes::from_static(b"x")).await;
            let panic = tee.finish().await.err().expect("the panic");
            assert_eq!(panic.downcast_ref::<&str>(), Some(&"embedded reader: boom"));
            let mut tee = Tee::new();
            tee.add(|_| Verdict::Signed(Ok(Vec::new())));
            assert_eq!(tee.finish().await.ok().map(|v| v.len()), Some(1));
        });
    }
}
