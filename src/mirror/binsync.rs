//! `bin sync`: copy upstream's pre-built archives, source bundles, deltas
//! and keys onto the company's binary host, in the company's layout,
//! verified.
//!
//! Upstream URLs are built exactly as Zoi builds them from upstream's
//! `repo.yaml` (first `pkg` link, `{id}` and friends, `.zpa` appended to a
//! directory URL; the first `source-main` link for `.zsa`; the first
//! `delta` link for `.zdelta`); local paths follow the spec's layout
//! ([`crate::zoi::layout`]). For each file the upstream `.hash` is fetched
//! first: when the local copy already carries that hash, nothing else
//! moves. Otherwise the file is streamed to a temp file next to its
//! destination (resumed with `Range` after an interruption, within a run
//! and across runs, retried as [`crate::net::retry`] says), hashed on the way,
//! checked against upstream's `.hash` and `.size`, its signature verified
//! as Zoi verifies it when upstream declares keys ([`crate::zoi::pgp`]:
//! the embedded `manifest.sig` first, else the detached `.sig`), and only
//! then renamed into place, followed by its metadata — byte for byte as
//! upstream wrote it, or generated as `index` does when upstream has none —
//! with the `.hash` last, so a `.hash` never names a file that is not there.
//!
//! Keys: every key upstream's repo.yaml lists is fetched, checked to be an
//! OpenPGP public key and placed under the keys folder, so clients never
//! need upstream's host to import them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use sha2::Digest;

use crate::error::{ErrorKind, Failure};
use crate::net::classify::classify;
use crate::net::prober::{Method, Prober};
use crate::net::problem::{Kind, Problem};
use crate::net::reply::status_problem;
use crate::net::retry::{Failed, Retry, retry_after_of};
use crate::runtime::blocking;
use crate::zoi::archive::{ArchiveKind, Summary, read_archive};
use crate::zoi::index::PackageRef;
use crate::zoi::layout::{archive_path, folder};
use crate::zoi::metadata;
use crate::zoi::pgp::PublicKey;
use crate::zoi::placeholders::Coordinates;
use crate::zoi::platform::Platform;
use crate::zoi::repo::{ArchiveUrls, PkgLink, archive_urls, delta_urls, source_urls};

#[derive(Debug, Clone)]
pub struct Options {
    /// Root of the local binary tree (what `binaries.url` serves).
    pub dest: PathBuf,
    /// The spec's folder template (`{repo}/{os}/{arch}/{version}`).
    pub layout: String,
    /// The folder template of source bundles (the layout without platform
    /// segments).
    pub source_layout: String,
    /// Upstream's archive link.
    pub link: PkgLink,
    /// Upstream's source bundle link, when it has one.
    pub source: Option<PkgLink>,
    /// Upstream's delta link, when it has one.
    pub delta: Option<PkgLink>,
    pub targets: Vec<(PackageRef, Platform)>,
    pub dry_run: bool,
    pub retries: u32,
    /// Verify upstream's signatures against these keys before placing
    /// anything (`None`: upstream declares no keys, or --allow-unsigned).
    pub verify: Option<Vec<PublicKey>>,
    /// GnuPG key to re-sign verified files with (a detached `.sig`).
    pub resign: Option<String>,
}

/// Which kind of file a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Artifact {
    /// `.zpa`, per platform.
    Archive,
    /// `.zsa`, one per package version.
    Source,
    /// `.zdelta`, per platform.
    Delta,
}

string_enum! {
    /// How a target's signature was verified.
    pub enum SignatureCheck {
        /// The archive's embedded `manifest.sig`.
        Embedded = "embedded",
        /// The detached `.sig`.
        Detached = "detached",
        /// Not verified: upstream declares no keys, or `--allow-unsigned`.
        Unverified = "unverified",
    }
}

string_enum! {
    /// Where a metadata file placed next to a target came from.
    pub enum MetaSource {
        /// Upstream's own file.
        Upstream = "upstream",
        /// Generated from the archive, as `index` would.
        Generated = "generated",
        /// Our signature (`--sign`).
        Resigned = "resigned",
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub package: String,
    pub version: String,
    /// `None` for source bundles (one for every platform).
    pub platform: Option<Platform>,
    pub artifact: Artifact,
    pub status: TargetStatus,
    /// Path relative to the destination root.
    pub path: String,
    pub bytes: u64,
    /// Resumed with `Range` after an interruption.
    pub resumed: bool,
    /// How the file's signature was verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureCheck>,
    /// Where each metadata file written came from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<(String, MetaSource)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::net::problem::ProblemOut>,
}

string_enum! {
    /// What bin sync did with one target (`bin sync --help` lists these).
    pub enum TargetStatus {
        /// Fetched (or resumed), verified and placed.
        Downloaded = "downloaded",
        /// Already on the host as upstream has it.
        UpToDate = "up_to_date",
        /// Upstream does not publish it.
        NotAvailable = "not_available",
        /// `--dry-run`: would be fetched.
        WouldDownload = "would_download",
        /// Could not be fetched, verified or placed; `error` says why.
        Failed = "failed",
    }
}

string_enum! {
    /// What bin sync did with one of upstream's keys.
    pub enum KeyStatus {
        /// Written to the host.
        Placed = "placed",
        /// Already on the host, byte for byte.
        UpToDate = "up_to_date",
        /// `--dry-run`: would be written.
        WouldPlace = "would_place",
        /// Could not be fetched, parsed or written; `error` says why.
        Failed = "failed",
    }
}

/// One key placed on the host.
#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    pub name: String,
    /// Where upstream publishes it.
    pub url: String,
    /// Where it lives under the destination root.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub status: KeyStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::net::problem::ProblemOut>,
}

/// Fetches upstream's keys (`(name, key)` as repo.yaml lists them: a URL or
/// a fingerprint Zoi would fetch from keys.openpgp.org), checks each is an
/// OpenPGP public key, and places it at `<dest>/<keys_dir>/<name>.asc`.
/// Returns the reports and the keys that parsed.
pub async fn sync_keys(
    prober: &Prober,
    keys: &[(String, String)],
    dest: &Path,
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
        let path = dest.join(&r.path);
        r.status = if std::fs::read(&path).is_ok_and(|old| old == body) {
            KeyStatus::UpToDate
        } else if dry_run {
            KeyStatus::WouldPlace
        } else {
            match path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .map_err(anyhow::Error::from)
                .and_then(|()| crate::fsutil::atomic_write(&path, &body))
            {
                Ok(()) => KeyStatus::Placed,
                Err(e) => {
                    r.error =
                        Some(Problem::new(Kind::Io, format!("{}: {e:#}", path.display())).into());
                    KeyStatus::Failed
                }
            }
        };
        parsed.push(key);
        reports.push(r);
    }
    (reports, parsed)
}

/// A key fetched and parsed: its report (status still to be decided), its
/// bytes and the key; or the failed report.
pub(crate) type FetchedKey = Result<(KeyReport, Vec<u8>, PublicKey), KeyReport>;

/// The fetching half of [`sync_keys`], shared with the object-storage
/// backend.
pub(crate) async fn fetch_keys(
    prober: &Prober,
    keys: &[(String, String)],
    keys_dir: &str,
) -> Vec<FetchedKey> {
    let mut out = Vec::new();
    for (name, key) in keys {
        let url = crate::zoi::pgp::key_source(key).unwrap_or_else(|_| key.clone());
        let rel_path = format!("{}/{name}.asc", keys_dir.trim_matches('/'));
        let mut r = KeyReport {
            name: name.clone(),
            url: crate::net::redact::redact(&url),
            path: rel_path.clone(),
            fingerprint: None,
            status: KeyStatus::Failed,
            error: None,
        };
        // The name becomes a file name here and in every client's key
        // store: never a path (the spec refuses such an upstream already).
        if !crate::zoi::names::archive_file_name_ok(name) || name.starts_with('.') {
            r.error = Some(
                Problem::new(
                    Kind::KeyNotPgp,
                    format!("key name {name:?} is not a plain file name; not placed"),
                )
                .into(),
            );
            out.push(Err(r));
            continue;
        }
        if let Err(e) = crate::zoi::pgp::key_source(key) {
            r.error = Some(Problem::new(Kind::KeyUnreachable, format!("key '{name}': {e}")).into());
            out.push(Err(r));
            continue;
        }
        let body = match small(prober, &url).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                r.error = Some(
                    Problem::new(
                        Kind::KeyUnreachable,
                        format!("key '{name}': {} answers 404", r.url),
                    )
                    .into(),
                );
                out.push(Err(r));
                continue;
            }
            Err(p) => {
                r.error = Some(
                    Problem::new(
                        Kind::KeyUnreachable,
                        format!("key '{name}' at {}: {}", r.url, p.message),
                    )
                    .into(),
                );
                out.push(Err(r));
                continue;
            }
        };
        let key = match crate::zoi::pgp::parse_public_key(&body) {
            Ok(k) => k,
            Err(e) => {
                r.error = Some(
                    Problem::new(Kind::KeyNotPgp, format!("key '{name}' at {}: {e}", r.url)).into(),
                );
                out.push(Err(r));
                continue;
            }
        };
        r.fingerprint = Some(key.fingerprint());
        out.push(Ok((r, body, key)));
    }
    out
}

/// Where a sidecar (`.hash`, `.size`, …) of `archive` lives.
pub(crate) fn meta_path(archive: &Path, ext: &str) -> PathBuf {
    let mut s = archive.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn part_path(archive: &Path) -> PathBuf {
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    archive.with_file_name(format!(".{name}.part"))
}

/// GETs a small metadata file: `Ok(None)` for 404 (upstream has none).
pub(crate) async fn small(prober: &Prober, url: &str) -> Result<Option<Vec<u8>>, Problem> {
    let u = url::Url::parse(url).map_err(|e| {
        Problem::new(
            Kind::NotFound,
            format!("{}: {e}", crate::net::redact::redact(url)),
        )
    })?;
    let out = prober.send(&u, Method::Get(64 << 20)).await;
    let reply = out.result?;
    if matches!(reply.status, 404 | 410) {
        return Ok(None);
    }
    if let Some(p) = status_problem(&reply) {
        return Err(p);
    }
    Ok(Some(reply.body))
}

/// Streams `url` into `part` (appending from where an earlier attempt
/// stopped, via `Range`), and returns the SHA-512 and length of the whole
/// file and whether a resume happened.
async fn download(
    http: &crate::net::client::Http,
    url: &str,
    part: &Path,
    retries: u32,
    bytes_seen: &AtomicU64,
) -> Result<(String, u64, bool), Problem> {
    let io = |e: std::io::Error| Problem::new(Kind::Io, format!("{}: {e}", part.display()));
    // Bytes already on disk from an interrupted run are hashed first.
    let mut hasher = Sha512Ctx::new();
    let mut have = 0u64;
    if let Ok(f) = std::fs::File::open(part) {
        have = hasher.update_from(f).map_err(io)?;
    }
    let mut resumed = false;
    let mut retry = Retry::new(retries);
    loop {
        retry.attempt();
        let range = (have > 0).then(|| (reqwest::header::RANGE, format!("bytes={have}-")));
        let result: Result<bool, Failed> = async {
            let u = url::Url::parse(url).map_err(|e| {
                Problem::new(
                    Kind::NotFound,
                    format!("{}: {e}", crate::net::redact::redact(url)),
                )
            })?;
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
            let append = match status {
                206 if have > 0 => {
                    resumed = true;
                    true
                }
                200 => false,
                416 if have > 0 => {
                    // Nothing left to send: the partial file is complete.
                    return Ok(true);
                }
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
            if !append {
                hasher = Sha512Ctx::new();
                have = 0;
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(append)
                .write(true)
                .truncate(!append)
                .open(part)
                .map_err(io)?;
            // SHA-512 runs on its own thread, fed through a bounded channel
            // (the chunks are reference-counted, not copied): hashing a big
            // archive no longer serialises with receiving and writing it,
            // and at most HASH_QUEUE chunks wait in memory.
            let (tx, hash_thread) = spawn_hasher(std::mem::replace(&mut hasher, Sha512Ctx::new()));
            let streamed: Result<(), Problem> = async {
                let mut stream = resp.bytes_stream();
                // Written out as it arrives, WRITEBACK_STEP at a time, not
                // all at the final flush (2 x 512 MiB here: 2.2 s, not 2.5).
                // (A resumed download's earlier bytes went out before.)
                let mut written_from = have;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| classify(&e))?;
                    file.write_all(&chunk).map_err(io)?;
                    have += chunk.len() as u64;
                    if have - written_from >= WRITEBACK_STEP {
                        crate::fsutil::start_writeback(&file, written_from, have - written_from);
                        written_from = have;
                    }
                    bytes_seen.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
                Ok(())
            }
            .await;
            drop(tx);
            // What arrived is on disk and hashed, even when the stream broke:
            // a retry continues from there.
            // A hash thread that panicked is a bug, not a failed download:
            // its panic goes on to this job's task, which `run_all` turns
            // into the run's `internal` failure.
            hasher = match blocking(|| hash_thread.join()) {
                Ok(h) => h,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            streamed?;
            file.sync_all().map_err(io)?;
            Ok(true)
        }
        .await;
        match result {
            Ok(_) => return Ok((hasher.finish_hex(), have, resumed)),
            // Keep what arrived; the next attempt asks for the rest.
            Err(failed) => retry.next(failed).await?,
        }
    }
}

/// The `.size`/`.files` summary of a downloaded archive, as `index` makes
/// it, for when upstream has none. The part file not opening is this
/// machine's failure (`io`), not the network's; an archive that cannot be
/// indexed is upstream's (`malformed_metadata`).
fn index_part(part: &Path) -> Result<Summary, Problem> {
    let f = std::fs::File::open(part)
        .map_err(|e| Problem::new(Kind::Io, format!("cannot read {}: {e}", part.display())))?;
    read_archive(f, ArchiveKind::Zpa, &mut |_| {}).map_err(|e| {
        Problem::new(
            Kind::MalformedMetadata,
            format!("cannot index the archive: {e}"),
        )
    })
}

/// How much of a download is left dirty before its writing to disk is
/// started: big enough that the disk gets long runs, small enough that a
/// big archive is not held in memory for the final flush.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Chunks in flight between a download and its hash thread.
const HASH_QUEUE: usize = 16;

/// A thread that feeds every chunk it receives to `hasher` and hands the
/// hasher back once the sender is dropped.
fn spawn_hasher(
    mut hasher: Sha512Ctx,
) -> (
    tokio::sync::mpsc::Sender<bytes::Bytes>,
    std::thread::JoinHandle<Sha512Ctx>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(HASH_QUEUE);
    let handle = std::thread::spawn(move || {
        while let Some(chunk) = rx.blocking_recv() {
            hasher.update(&chunk);
        }
        hasher
    });
    (tx, handle)
}

/// SHA-512 for downloads, to a folder and to S3, the one cost a download
/// has that curl does not: ring's assembly, 540-560 MB/s per core here (AMD
/// EPYC), level with the `sha2` crate and aws-lc-rs, below OpenSSL 3's AVX2
/// code (700-800 MB/s), which would need libssl headers or a vendored build.
pub(super) struct Sha512Ctx(ring::digest::Context);

impl Sha512Ctx {
    pub(super) fn new() -> Self {
        Sha512Ctx(ring::digest::Context::new(&ring::digest::SHA512))
    }

    pub(super) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest as Zoi's `.hash` spells it: lowercase hex.
    pub(super) fn finish_hex(self) -> String {
        hex::encode(self.0.finish())
    }

    /// Feeds everything `r` holds; returns how many bytes that was.
    /// (ring's context is no `io::Write`, so `io::copy` cannot be used.)
    fn update_from(&mut self, mut r: impl std::io::Read) -> std::io::Result<u64> {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            match r.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => {
                    self.0.update(&buf[..n]);
                    total += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn rel(dest: &Path, p: &Path) -> String {
    p.strip_prefix(dest)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// One file to mirror, with the URLs Zoi would fetch for it upstream.
#[derive(Debug, Clone)]
pub struct Job {
    pub pkg: PackageRef,
    pub platform: Option<Platform>,
    pub artifact: Artifact,
    pub urls: ArchiveUrls,
    /// Path relative to the destination root.
    pub rel: PathBuf,
}

/// Everything to mirror for the targets: each archive, then the source
/// bundle of each package (once) and the deltas, when upstream has links
/// for them.
pub fn jobs(opts: &Options) -> Vec<Job> {
    let mut out = Vec::new();
    let mut sources_seen = std::collections::BTreeSet::new();
    for (pkg, platform) in &opts.targets {
        let c = Coordinates {
            name: &pkg.name,
            repo: &pkg.repo,
            version: &pkg.version,
            platform: *platform,
        };
        out.push(Job {
            pkg: pkg.clone(),
            platform: Some(*platform),
            artifact: Artifact::Archive,
            urls: archive_urls(&opts.link, &c),
            rel: archive_path(&opts.layout, pkg, *platform),
        });
        if let Some(link) = &opts.source
            && sources_seen.insert((pkg.repo.clone(), pkg.name.clone(), pkg.version.clone()))
        {
            let urls = source_urls(link, &c);
            let file = format!("{}-{}.zsa", pkg.name, pkg.version);
            out.push(Job {
                pkg: pkg.clone(),
                platform: None,
                artifact: Artifact::Source,
                rel: folder(&opts.source_layout, &c).join(file),
                urls,
            });
        }
        if let Some(link) = &opts.delta {
            let urls = delta_urls(link, &c);
            let file = urls
                .archive
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            if crate::zoi::names::archive_file_name_ok(&file) {
                out.push(Job {
                    pkg: pkg.clone(),
                    platform: Some(*platform),
                    artifact: Artifact::Delta,
                    rel: folder(&opts.layout, &c).join(file),
                    urls,
                });
            }
        }
    }
    out
}

/// Checks the freshly downloaded `part` the way Zoi will (see [`judge`]).
/// Returns how it verified, and whether an embedded signature is present.
fn verify_signature(
    job: &Job,
    part: &Path,
    sig: Option<&[u8]>,
    keys: &[PublicKey],
    sig_url: &str,
) -> Result<(SignatureCheck, bool), Problem> {
    let embedded = (job.artifact == Artifact::Archive).then(|| {
        std::fs::File::open(part)
            .and_then(zstd::Decoder::new)
            .and_then(crate::zoi::pgp::embedded_signature)
    });
    let refs: Vec<&PublicKey> = keys.iter().collect();
    let how = judge(
        job.artifact,
        embedded,
        || sig.map(|sig| crate::zoi::pgp::verify_detached_file(part, sig, &refs)),
        keys,
        sig_url,
    )?;
    Ok((how, how == SignatureCheck::Embedded))
}

/// The signature verdict on a downloaded target, the way Zoi reaches it:
/// an archive's embedded `manifest.sig` first (a bad one is fatal, with no
/// fallback), else the detached signature, which must then exist. Both
/// backends call it: the folder with what it reads back from the file, S3
/// with what its verifier threads saw of the stream. `detached` is only
/// asked for when there is no embedded signature.
pub(crate) fn judge(
    artifact: Artifact,
    embedded: Option<std::io::Result<Option<crate::zoi::pgp::Embedded>>>,
    detached: impl FnOnce() -> Option<Result<usize, crate::zoi::pgp::SigError>>,
    keys: &[PublicKey],
    sig_url: &str,
) -> Result<SignatureCheck, Problem> {
    let refs: Vec<&PublicKey> = keys.iter().collect();
    let names = || {
        keys.iter()
            .map(PublicKey::fingerprint)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if artifact == Artifact::Archive {
        let embedded = embedded.unwrap_or(Ok(None)).map_err(|e| {
            Problem::new(
                Kind::Signature,
                format!("cannot read the archive for its embedded manifest.sig: {e}"),
            )
        })?;
        if let Some((manifest, msig)) = embedded {
            return match crate::zoi::pgp::verify_detached(&manifest, &msig, &refs) {
                Ok(_) => Ok(SignatureCheck::Embedded),
                Err(e) => Err(Problem::new(
                    Kind::Signature,
                    format!(
                        "the embedded manifest.sig does not verify against upstream's keys ({}): {e}; Zoi fails on it with no fallback, so nothing was placed",
                        names()
                    ),
                )),
            };
        }
    }
    let Some(detached) = detached() else {
        return Err(Problem::new(
            Kind::Signature,
            format!(
                "upstream declares signing keys but publishes no signature at {}; clients that verify would refuse it, so nothing was placed",
                crate::net::redact::redact(sig_url)
            ),
        ));
    };
    detached.map(|_| SignatureCheck::Detached).map_err(|e| {
        Problem::new(
            Kind::Signature,
            format!(
                "{} does not verify against upstream's keys ({}): {e}; nothing was placed",
                crate::net::redact::redact(sig_url),
                names()
            ),
        )
    })
}

/// What the received bytes must match before they are placed: upstream's
/// `.hash` (`got` is the digest of the kind it names) and `.size`'s
/// `down:`. The same words for both backends.
pub(crate) fn check_received(
    want: &Option<(bool, String)>,
    got: &str,
    len: u64,
    size_body: Option<&[u8]>,
) -> Option<Problem> {
    if let Some((_, want)) = want
        && got != want
    {
        return Some(Problem::new(
            Kind::HashMismatch,
            format!(
                "downloaded {len} bytes with SHA-512 {got}, but upstream's .hash says {want}; nothing was placed"
            ),
        ));
    }
    let sizes = size_body.and_then(|b| metadata::parse_size(&String::from_utf8_lossy(b)));
    match sizes {
        Some(s) if s.down != len => Some(Problem::new(
            Kind::SizeMismatch,
            format!(
                "downloaded {len} bytes, but upstream's .size says down: {}; nothing was placed",
                s.down
            ),
        )),
        _ => None,
    }
}

/// Every sidecar a placed file may have beside it.
const SIDECARS: [&str; 4] = ["size", "files", "sig", "hash"];

/// One step of placing a file's sidecars ([`sidecar_steps`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SidecarStep {
    /// Write `<file>.<ext>` with these bytes.
    Write(&'static str, Vec<u8>, MetaSource),
    /// Remove `<file>.<ext>` if it is there: a sidecar of the bytes this
    /// placement replaced, which upstream no longer has (and nothing here
    /// generates, as for a `.zsa`). Left beside the new bytes, an old
    /// `.sig` is a bad signature to every client that trusts keys.
    Remove(&'static str),
}

/// The sidecars placed after a file, in order, each with where it came
/// from: upstream's, else generated from the archive as `index` would, and
/// the signature (upstream's or ours); then the removal of every sidecar
/// not written; the `.hash` last (a `.hash` never names a file that is not
/// there yet, nor one whose other sidecars describe the bytes before).
/// Without a new `.hash` the old one goes first: while it is there a later
/// run takes the file for current (`stored_hash_current`), so a run killed
/// mid-way must not leave it beside new bytes (the folder path removes it
/// before the file is even renamed into place).
pub(crate) fn sidecar_steps(
    sidecars: Sidecars,
    generated: Option<&Summary>,
    sig_out: Option<(Vec<u8>, MetaSource)>,
    hash_body: Option<Vec<u8>>,
) -> Vec<SidecarStep> {
    use SidecarStep::{Remove, Write};
    let mut steps = Vec::new();
    if hash_body.is_none() {
        steps.push(Remove("hash"));
    }
    match (sidecars.size, generated) {
        (Some(b), _) => steps.push(Write("size", b, MetaSource::Upstream)),
        (None, Some(g)) => steps.push(Write(
            "size",
            g.size_body().into_bytes(),
            MetaSource::Generated,
        )),
        (None, None) => {}
    }
    match (sidecars.files, generated) {
        (Some(b), _) => steps.push(Write("files", b, MetaSource::Upstream)),
        (None, Some(g)) => steps.push(Write(
            "files",
            g.files_body().into_bytes(),
            MetaSource::Generated,
        )),
        (None, None) => {}
    }
    if let Some((b, source)) = sig_out {
        steps.push(Write("sig", b, source));
    }
    // The .hash is decided above (removed first) or below (written last).
    let written = |ext: &str| {
        steps
            .iter()
            .any(|s| matches!(s, Write(e, _, _) if *e == ext))
    };
    let stale: Vec<&'static str> = SIDECARS
        .into_iter()
        .filter(|e| *e != "hash" && !written(e))
        .collect();
    steps.extend(stale.into_iter().map(Remove));
    if let Some(b) = hash_body {
        steps.push(Write("hash", b, MetaSource::Upstream));
    }
    steps
}

/// `gpg --detach-sign` of the bytes read from `r`, fed to gpg's stdin as
/// they come (for S3, as the verified stream goes up: nothing staged on
/// disk): the binary signature `zoi package build --sign` writes. gpg
/// writes the signature only once its input ends, so stdout is read after;
/// stderr on a thread of its own, so a chatty gpg never blocks while it is
/// still being fed.
pub(crate) fn gpg_sign_reader(key: &str, mut r: impl std::io::Read) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new("gpg")
        .args([
            "--batch",
            "--yes",
            "--detach-sign",
            "--local-user",
            key,
            "--output",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run gpg: {e}"))?;
    let mut stderr = child.stderr.take().expect("piped stderr");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut stdin = child.stdin.take().expect("piped stdin");
    // A gpg that gave up early (unknown key) closes its stdin: its exit
    // status and stderr below say why.
    let fed = std::io::copy(&mut r, &mut stdin);
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| format!("gpg: {e}"))?;
    let errors = errors.join().unwrap_or_default();
    if !out.status.success() || out.stdout.is_empty() {
        return Err(errors.trim().to_string());
    }
    fed.map_err(|e| format!("feeding gpg: {e}"))?;
    Ok(out.stdout)
}

/// [`gpg_sign_reader`] of the placed-to-be `file`.
fn gpg_sign(key: &str, file: &Path) -> Result<Vec<u8>, Problem> {
    std::fs::File::open(file)
        .map_err(|e| format!("{}: {e}", file.display()))
        .and_then(|f| gpg_sign_reader(key, f))
        .map_err(|e| sign_failed(key, &e))
}

/// How a failed `--sign` is reported, by both backends.
pub(crate) fn sign_failed(key: &str, why: &str) -> Problem {
    Problem::new(
        Kind::Signature,
        format!("gpg could not sign with {key}: {why}; nothing was placed"),
    )
}

/// A target's report before anything is known: `failed` until a step says
/// otherwise.
pub(crate) fn new_report(job: &Job, path: String) -> TargetReport {
    TargetReport {
        package: format!("@{}/{}", job.pkg.repo, job.pkg.name),
        version: job.pkg.version.clone(),
        platform: job.platform,
        artifact: job.artifact,
        status: TargetStatus::Failed,
        path,
        bytes: 0,
        resumed: false,
        signature: None,
        metadata: Vec::new(),
        warnings: Vec::new(),
        error: None,
    }
}

/// Marks a report failed with `p`.
pub(crate) fn failed(mut r: TargetReport, p: Problem) -> TargetReport {
    r.status = TargetStatus::Failed;
    r.error = Some(p.into());
    r
}

/// Upstream's `.hash` of a job: its bytes and the digest to expect, as
/// `(is SHA-256, lower-case hex)` (`zoi package delta` writes a SHA-256
/// `.zdelta.hash`; archives carry SHA-512).
pub(crate) struct UpstreamHash {
    pub body: Option<Vec<u8>>,
    pub want: Option<(bool, String)>,
}

/// Why a job stops before its download.
pub(crate) enum Stop {
    NotAvailable,
    Failed(Problem),
}

impl Stop {
    /// The report of a job that stopped here.
    pub(crate) fn report(self, mut r: TargetReport) -> TargetReport {
        match self {
            Stop::NotAvailable => {
                r.status = TargetStatus::NotAvailable;
                r
            }
            Stop::Failed(p) => failed(r, p),
        }
    }
}

/// Step 1 of every backend: upstream's `.hash`, i.e. availability and the
/// expected digest. Archives always have one (Zoi's default template, and
/// Zoi cannot install an archive without it: a 404 is "not available");
/// source bundles and deltas only when upstream publishes one, whatever
/// the link template says (`zoi package bundle` writes none).
pub(crate) async fn upstream_hash(
    prober: &Prober,
    job: &Job,
    file_name: &str,
) -> Result<UpstreamHash, Stop> {
    let urls = &job.urls;
    let hash_url = match (&urls.hash, job.artifact) {
        (Some(u), _) => Some(u.clone()),
        (None, Artifact::Archive) => Some(format!("{}.hash", urls.archive)),
        (None, _) => None,
    };
    let mut out = UpstreamHash {
        body: None,
        want: None,
    };
    let Some(hash_url) = &hash_url else {
        return Ok(out);
    };
    let body = match small(prober, hash_url).await {
        Err(p) => return Err(Stop::Failed(p)),
        Ok(None) if job.artifact == Artifact::Archive => return Err(Stop::NotAvailable),
        Ok(None) => return Ok(out),
        Ok(Some(b)) => b,
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let read = metadata::parse_hash(&text, Some(file_name));
    out.want = match (read.sha512(), &read, job.artifact) {
        (Some(h), _, _) => Some((false, h)),
        (
            None,
            metadata::HashRead::Hash {
                token,
                kind: metadata::HashKind::Sha256,
            },
            Artifact::Delta,
        ) => Some((true, token.to_ascii_lowercase())),
        _ => {
            return Err(Stop::Failed(Problem::new(
                Kind::MalformedMetadata,
                format!(
                    "upstream's .hash has no SHA-512: {}",
                    crate::net::redact::redact(hash_url)
                ),
            )));
        }
    };
    out.body = Some(body);
    Ok(out)
}

/// Whether the `.hash` stored next to a placed file is upstream's (byte
/// for byte, or naming the same SHA-512). Without an upstream `.hash`, a
/// versioned file once placed is kept.
pub(crate) fn stored_hash_current(
    stored: Option<&[u8]>,
    up: &UpstreamHash,
    file_name: &str,
) -> bool {
    match &up.want {
        None => true,
        Some((_, want)) => {
            stored.is_some() && stored == up.body.as_deref()
                || stored
                    .and_then(|h| {
                        metadata::parse_hash(&String::from_utf8_lossy(h), Some(file_name)).sha512()
                    })
                    .is_some_and(|h| h == *want)
        }
    }
}

/// Upstream's `.size`, `.files` and `.sig` (byte for byte when it has
/// them). A missing `.sig` (404) is normal for unsigned registries; any
/// other failure is not ignored, as the up-to-date check would never fetch
/// it again.
pub(crate) async fn upstream_sidecars(
    prober: &Prober,
    urls: &ArchiveUrls,
) -> Result<Sidecars, Problem> {
    let get = |u: &Option<String>| {
        let u = u.clone();
        async move {
            match u {
                Some(u) => small(prober, &u).await,
                None => Ok(None),
            }
        }
    };
    Ok(Sidecars {
        size: get(&urls.size).await?,
        files: get(&urls.files).await?,
        sig: small(prober, &urls.pgp).await?,
    })
}

/// What [`upstream_sidecars`] fetched.
pub(crate) struct Sidecars {
    pub size: Option<Vec<u8>>,
    pub files: Option<Vec<u8>>,
    pub sig: Option<Vec<u8>>,
}

/// With `--dry-run`: how many bytes a file would be, from upstream's `.size`.
pub(crate) async fn would_download(
    prober: &Prober,
    urls: &ArchiveUrls,
    mut r: TargetReport,
) -> TargetReport {
    if let Some(u) = &urls.size
        && let Ok(Some(b)) = small(prober, u).await
        && let Some(s) = metadata::parse_size(&String::from_utf8_lossy(&b))
    {
        r.bytes = s.down;
    }
    r.status = TargetStatus::WouldDownload;
    r
}

async fn sync_job(
    prober: Arc<Prober>,
    opts: Arc<Options>,
    job: Job,
    bytes_seen: Arc<AtomicU64>,
) -> TargetReport {
    let archive = opts.dest.join(&job.rel);
    let urls = &job.urls;
    let file_name = urls.file_name().to_string();
    let mut report = new_report(&job, rel(&opts.dest, &archive));

    // 1. upstream's .hash
    let up = match upstream_hash(&prober, &job, &file_name).await {
        Ok(h) => h,
        Err(stop) => return stop.report(report),
    };
    let (hash_body, want) = (up.body.clone(), up.want.clone());

    // 2. already here?
    let stored = std::fs::read(meta_path(&archive, "hash")).ok();
    if archive.is_file() && stored_hash_current(stored.as_deref(), &up, &file_name) {
        report.status = TargetStatus::UpToDate;
        return report;
    }
    if opts.dry_run {
        return would_download(&prober, urls, report).await;
    }

    // 3. upstream's other metadata
    let Sidecars {
        size: size_body,
        files: files_body,
        sig: sig_body,
    } = match upstream_sidecars(&prober, urls).await {
        Ok(s) => s,
        Err(p) => return failed(report, p),
    };

    // 4. the file, streamed and hashed
    if let Some(dir) = archive.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        return failed(
            report,
            Problem::new(Kind::Io, format!("{}: {e}", dir.display())),
        );
    }
    let part = part_path(&archive);
    let (got, len, resumed) = match download(
        &prober.http,
        &urls.archive,
        &part,
        opts.retries,
        &bytes_seen,
    )
    .await
    {
        Ok(v) => v,
        Err(p) if p.kind == Kind::NotFound => {
            report.status = TargetStatus::NotAvailable;
            return report;
        }
        Err(p) => return failed(report, p),
    };
    report.bytes = len;
    report.resumed = resumed;
    let got = match &want {
        Some((true, _)) => match blocking(|| {
            std::fs::File::open(&part).and_then(|mut f| {
                let mut h = sha2::Sha256::new();
                std::io::copy(&mut f, &mut h)?;
                Ok(hex::encode(h.finalize()))
            })
        }) {
            Ok(h) => h,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                return failed(
                    report,
                    Problem::new(Kind::Io, format!("{}: {e}", part.display())),
                );
            }
        },
        _ => got,
    };
    if let Some(p) = check_received(&want, &got, len, size_body.as_deref()) {
        let _ = std::fs::remove_file(&part);
        return failed(report, p);
    }

    // 5. upstream's signature, as Zoi will verify it
    let mut embedded = false;
    match &opts.verify {
        Some(keys) => {
            match blocking(|| verify_signature(&job, &part, sig_body.as_deref(), keys, &urls.pgp)) {
                Ok((how, emb)) => {
                    report.signature = Some(how);
                    embedded = emb;
                }
                Err(p) => {
                    let _ = std::fs::remove_file(&part);
                    return failed(report, p);
                }
            }
        }
        None => report.signature = Some(SignatureCheck::Unverified),
    }

    // 6. metadata upstream lacks is generated as `index` would (archives)
    let generated =
        if job.artifact == Artifact::Archive && (size_body.is_none() || files_body.is_none()) {
            match blocking(|| index_part(&part)) {
                Ok(s) => Some(s),
                Err(p) => {
                    let _ = std::fs::remove_file(&part);
                    return failed(report, p);
                }
            }
        } else {
            None
        };

    // 7. our own signature, when asked for
    let mut sig_out = sig_body.map(|b| (b, MetaSource::Upstream));
    if let Some(key) = &opts.resign {
        if embedded {
            report.warnings.push(not_resigned_warning(&opts));
        } else {
            match blocking(|| gpg_sign(key, &part)) {
                Ok(b) => sig_out = Some((b, MetaSource::Resigned)),
                Err(p) => {
                    let _ = std::fs::remove_file(&part);
                    return failed(report, p);
                }
            }
        }
    }

    // 8. into place: the file, then its metadata (each atomic), the .hash
    // last: a .hash never names a file that is not there yet. A stale .hash
    // that upstream no longer has goes before (see `sidecar_steps`).
    if hash_body.is_none() {
        let stale = meta_path(&archive, "hash");
        if let Err(e) = std::fs::remove_file(&stale)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            let _ = std::fs::remove_file(&part);
            return failed(
                report,
                Problem::new(
                    Kind::Io,
                    format!("cannot remove the stale {}: {e}", stale.display()),
                ),
            );
        }
    }
    if let Err(e) = std::fs::rename(&part, &archive) {
        let _ = std::fs::remove_file(&part);
        return failed(
            report,
            Problem::new(Kind::Io, format!("cannot place {}: {e}", archive.display())),
        );
    }
    let sidecars = Sidecars {
        size: size_body,
        files: files_body,
        sig: None,
    };
    for step in sidecar_steps(sidecars, generated.as_ref(), sig_out, hash_body) {
        match step {
            SidecarStep::Write(ext, bytes, source) => {
                if let Err(e) = crate::fsutil::atomic_write(&meta_path(&archive, ext), &bytes) {
                    return failed(report, Problem::new(Kind::Io, format!("{e:#}")));
                }
                report.metadata.push((ext.to_string(), source));
            }
            SidecarStep::Remove(ext) => {
                let path = meta_path(&archive, ext);
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return failed(
                            report,
                            Problem::new(
                                Kind::Io,
                                format!("cannot remove the stale {}: {e}", path.display()),
                            ),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    report.status = TargetStatus::Downloaded;
    report
}

/// Runs the sync; `progress(bytes_so_far, targets_done)` is called as
/// work completes.
pub async fn run(
    prober: Arc<Prober>,
    opts: Options,
    concurrency: usize,
    progress: impl Fn(u64, u64),
) -> Result<Vec<TargetReport>, Failure> {
    run_all(opts, concurrency, progress, move |opts, job, bytes| {
        sync_job(prober.clone(), opts, job, bytes)
    })
    .await
}

/// Runs `sync_one` for every job of `opts`, `concurrency` at once, each on
/// a task of its own (so hashing and verifying spread over the cores), and
/// returns the reports sorted by package, version, artifact and platform.
/// Both backends drive their jobs with it.
///
/// A job whose task panicked (it, or a hashing or verifying thread of its
/// own) is a bug in zoi-mirror, neither the network's nor upstream's: the
/// other jobs run to their end (each file is placed whole or not at all),
/// then the run fails as `internal` (exit 3) naming the targets, rather
/// than report a target as failed for a reason it does not have.
pub(crate) async fn run_all<F, Fut>(
    opts: Options,
    concurrency: usize,
    progress: impl Fn(u64, u64),
    sync_one: F,
) -> Result<Vec<TargetReport>, Failure>
where
    F: Fn(Arc<Options>, Job, Arc<AtomicU64>) -> Fut,
    Fut: std::future::Future<Output = TargetReport> + Send + 'static,
{
    let all = jobs(&opts);
    let opts = Arc::new(opts);
    let bytes = Arc::new(AtomicU64::new(0));
    let done = AtomicU64::new(0);
    let joined: Vec<Result<TargetReport, String>> =
        futures::stream::iter(all.into_iter().map(|job| {
            let what = job_label(&job);
            let task = tokio::spawn(sync_one(opts.clone(), job, bytes.clone()));
            async move {
                task.await
                    .map_err(|e| format!("{what}: {}", join_error_text(e)))
            }
        }))
        .buffer_unordered(concurrency.max(1))
        .inspect(|_| {
            progress(
                bytes.load(Ordering::Relaxed),
                done.fetch_add(1, Ordering::Relaxed) + 1,
            )
        })
        .collect()
        .await;
    let mut reports = Vec::with_capacity(joined.len());
    let mut broken = Vec::new();
    for j in joined {
        match j {
            Ok(r) => reports.push(r),
            Err(e) => broken.push(e),
        }
    }
    if !broken.is_empty() {
        return Err(Failure::new(
            ErrorKind::Internal,
            format!(
                "bin sync stopped on a bug in zoi-mirror: the work on {} ended unexpectedly ({})",
                if broken.len() == 1 { "one target" } else { "some targets" },
                broken.join("; ")
            ),
        )
        .hint(
            "this is not a network or upstream failure: please report it with the message above; what was placed is complete (each file is placed whole), and running again continues",
        ));
    }
    reports.sort_by(|a, b| {
        (&a.package, &a.version, a.artifact, a.platform)
            .cmp(&(&b.package, &b.version, b.artifact, b.platform))
    });
    Ok(reports)
}

/// `@tier/name version platform (artifact)`, for a message about a job.
fn job_label(job: &Job) -> String {
    let platform = job
        .platform
        .map_or_else(|| "any".to_string(), |p| p.to_string());
    let artifact = match job.artifact {
        Artifact::Archive => "archive",
        Artifact::Source => "source",
        Artifact::Delta => "delta",
    };
    format!(
        "@{}/{} {} {platform} ({artifact})",
        job.pkg.repo, job.pkg.name, job.pkg.version
    )
}

/// What a task that did not return says: its panic message, or that it
/// was cancelled.
fn join_error_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return "cancelled".to_string();
    }
    format!(
        "panicked: {}",
        crate::error::panic_message(e.into_panic().as_ref())
    )
}

/// Why an archive with an embedded `manifest.sig` is not re-signed (the
/// folder and the S3 paths say it the same way).
pub(crate) fn not_resigned_warning(opts: &Options) -> String {
    format!(
        "not re-signed: the archive carries upstream's embedded manifest.sig, which Zoi checks first (a company .sig would never be read); clients must trust upstream's key ({}) for it",
        opts.verify
            .as_ref()
            .map(|k| k
                .iter()
                .map(PublicKey::fingerprint)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod state_tests {
    use super::{MetaSource, SignatureCheck, TargetStatus};

    /// `bin sync --help` documents the target statuses scripts match on.
    #[test]
    fn bin_sync_help_lists_every_target_status() {
        crate::assert_documents(
            include_str!("../cli.rs"),
            "targets: [{package, version",
            "status: ",
            TargetStatus::ALL.iter().map(|s| s.as_str()),
        );
    }

    #[test]
    fn bin_sync_help_lists_every_signature_check_and_metadata_source() {
        let help = include_str!("../cli.rs");
        crate::assert_documents(
            help,
            "targets: [{package",
            "signature: ",
            SignatureCheck::ALL.iter().map(|s| s.as_str()),
        );
        crate::assert_documents(
            help,
            "targets: [{package",
            "[[file, ",
            MetaSource::ALL.iter().map(|s| s.as_str()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn opts(pkgs: &[(&str, &str, &str)]) -> Options {
        Options {
            dest: PathBuf::from("/nowhere"),
            layout: "{repo}/{os}/{arch}/{version}".into(),
            source_layout: "{repo}/{version}".into(),
            link: PkgLink::new("main", "https://up.example/{id}/{version}"),
            source: None,
            delta: None,
            targets: pkgs
                .iter()
                .map(|(repo, name, version)| {
                    (
                        PackageRef {
                            repo: (*repo).into(),
                            name: (*name).into(),
                            version: (*version).into(),
                        },
                        "linux-amd64".parse().unwrap(),
                    )
                })
                .collect(),
            dry_run: false,
            retries: 0,
            verify: None,
            resign: None,
        }
    }

    /// Indexing the downloaded part file (for the `.size`/`.files` upstream
    /// lacks) fails on this machine when the file cannot be opened: `io`
    /// (it was `connect`, with the network hint).
    #[test]
    fn a_part_file_that_cannot_be_read_is_io_and_a_bad_archive_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let p = index_part(&dir.path().join("gone.zpa.part")).unwrap_err();
        assert_eq!(p.kind, Kind::Io, "{}", p.message);
        assert!(p.message.starts_with("cannot read "), "{}", p.message);
        let junk = dir.path().join("junk.zpa.part");
        std::fs::write(&junk, "not zstd").unwrap();
        assert_eq!(index_part(&junk).unwrap_err().kind, Kind::MalformedMetadata);
    }

    /// A job whose task panics (a hashing thread's panic is re-raised in
    /// it) is a bug, not a network failure: the other jobs finish, then the
    /// run is `internal` (exit 3) naming the target and the panic. It used
    /// to take the whole process down (`expect("sync task")`, exit 101).
    #[test]
    fn a_panicked_job_fails_the_run_as_internal_once_the_others_end() {
        let rt = crate::runtime::new(crate::runtime::Threads::PerCore).unwrap();
        let finished = Arc::new(AtomicUsize::new(0));
        let seen = finished.clone();
        let r = rt.block_on(run_all(
            opts(&[("zillowe", "hello", "5.0.0"), ("zillowe", "zls", "1.1.1")]),
            1,
            |_, _| {},
            move |_, job, _| {
                let finished = finished.clone();
                async move {
                    if job.pkg.name == "hello" {
                        panic!("hash thread: boom");
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                    new_report(&job, String::new())
                }
            },
        ));
        let f = r.unwrap_err();
        assert_eq!(f.kind, ErrorKind::Internal);
        assert_eq!(f.exit, crate::error::Exit::CouldNotRun);
        assert!(
            f.message.contains(
                "@zillowe/hello 5.0.0 linux-amd64 (archive): panicked: hash thread: boom"
            ),
            "{}",
            f.message
        );
        assert!(
            f.hint
                .unwrap()
                .starts_with("this is not a network or upstream failure")
        );
        assert_eq!(
            seen.load(Ordering::SeqCst),
            1,
            "the other job ran to its end"
        );
    }
}

#[cfg(test)]
mod sidecar_tests {
    use super::SidecarStep::{Remove, Write};
    use super::{MetaSource, Sidecars, sidecar_steps};

    fn exts(steps: &[super::SidecarStep]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Write(e, _, _) => format!("write {e}"),
                Remove(e) => format!("remove {e}"),
            })
            .collect()
    }

    /// A file placed again (its upstream `.hash` changed) keeps no sidecar
    /// of the bytes before: whatever is not written now is removed, before
    /// the `.hash` that publishes the new bytes.
    #[test]
    fn what_is_not_written_is_removed_before_the_hash() {
        // A .zsa upstream signs no more: nothing generates .size or .files.
        let steps = sidecar_steps(
            Sidecars {
                size: None,
                files: None,
                sig: None,
            },
            None,
            None,
            Some(b"h".to_vec()),
        );
        assert_eq!(
            exts(&steps),
            ["remove size", "remove files", "remove sig", "write hash"]
        );
        // Everything upstream has, and our signature.
        let steps = sidecar_steps(
            Sidecars {
                size: Some(b"down: 1\n".to_vec()),
                files: Some(b"f".to_vec()),
                sig: None,
            },
            None,
            Some((b"s".to_vec(), MetaSource::Resigned)),
            Some(b"h".to_vec()),
        );
        assert_eq!(
            exts(&steps),
            ["write size", "write files", "write sig", "write hash"]
        );
        // No .hash upstream (a source bundle without a hash link): a stale
        // one goes too, first (while it is there the file reads as current).
        let steps = sidecar_steps(
            Sidecars {
                size: None,
                files: None,
                sig: None,
            },
            None,
            Some((b"s".to_vec(), MetaSource::Upstream)),
            None,
        );
        assert_eq!(
            exts(&steps),
            ["remove hash", "write sig", "remove size", "remove files"]
        );
    }
}
