//! `check`: every URL Zoi will fetch from the mirror, fetched the way Zoi
//! will read it, and judged.
//!
//! The pipeline (in the spirit of lychee): the plan lists registry URLs and
//! package × platform targets; targets run concurrently (bounded globally
//! and per host by the [`Prober`]), and within a target the archive and its
//! `.hash`, `.size`, `.files` (and `.sig`) are requested at once, then
//! cross-checked (the `.size` must match the archive's length; `--deep`
//! streams the archive through SHA-512). URLs are built by
//! [`crate::zoi::repo::archive_urls`], i.e. exactly as Zoi builds them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::git::{self, PkgLuas};
use super::report::{
    CheckKind, Counts, Finished, RegistryCheck, RegistryRole, Report, Row, TargetCheck, Targets,
    UrlCheck, row_url,
};
use crate::net::prober::{Method, Prober};
use crate::net::problem::{Kind, Problem};
use crate::net::reply::{Reply, status_problem};
use crate::zoi::index::PackageRef;
use crate::zoi::placeholders::Coordinates;
use crate::zoi::platform::Platform;
use crate::zoi::repo::{PkgLink, archive_urls, mirror_candidates};
use crate::zoi::sidecars::{self, FilesFault, HashFault, SizeFault};

/// What to check.
#[derive(Debug, Clone)]
pub struct Plan {
    /// (role `main`/`mirror`, URL) of the registry's git remotes.
    pub git: Vec<(RegistryRole, String)>,
    pub branch: String,
    /// The `pkg` link Zoi uses, if the registry has one.
    pub link: Option<PkgLink>,
    pub cache_mirrors: Vec<String>,
    pub packages: Vec<PackageRef>,
    pub platforms: Vec<Platform>,
    pub deep: bool,
    /// Compare the mirror's repo.yaml at HEAD with these bytes.
    pub registry_content: Option<Vec<u8>>,
    pub git_timeout: Duration,
    /// Binary host base URLs that must answer HTTP at all (any status).
    pub hosts: Vec<String>,
    /// The keys (names or fingerprints) the client verifies archives
    /// against: enforced `trusted_keys`, else the registry's `authorities`.
    /// Empty: Zoi verifies no signature, and never fetches a `.sig`.
    pub trusted: Vec<String>,
    /// The registry entry's `authorities`: the HEAD commit must be signed
    /// by one of them (`zoi sync`).
    pub authorities: Vec<String>,
    /// Where the client's keys come from.
    pub key_sources: Vec<super::trust::KeySource>,
    /// Things the report should say about how it was planned.
    pub notes: Vec<String>,
    /// The system policy enforces signatures (`signature_enforcement.enable`).
    pub enforced: bool,
}

/// Turns a failure into a warning: for what Zoi 1.29.4 tolerates (it
/// installs anyway), so that `check`'s verdict stays the client's.
fn demote(c: &mut UrlCheck, why: &str) {
    if let Some(e) = c.error.take() {
        c.ok = true;
        c.warnings
            .push(format!("{}: {} ({why})", e.kind.as_str(), e.message));
    }
}

fn looks_like_html(r: &Reply) -> bool {
    if r.content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("text/html"))
    {
        return true;
    }
    let head = &r.body[..r.body.len().min(512)];
    let starts_like_html = |text: &str| {
        let text = text.trim_start().as_bytes();
        ["<!doctype html", "<html", "<head"].iter().any(|p| {
            text.get(..p.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(p.as_bytes()))
        })
    };
    // Every metadata reply comes through here: read UTF-8 in place, and
    // copy only a head that is not (the lossy form is what is judged).
    match std::str::from_utf8(head) {
        Ok(text) => starts_like_html(text),
        Err(_) => starts_like_html(&String::from_utf8_lossy(head)),
    }
}

/// A URL to request: as the report names it, and parsed (once, for every
/// attempt and method it is asked with).
struct Target<'a> {
    text: &'a str,
    parsed: Result<url::Url, url::ParseError>,
}

impl<'a> Target<'a> {
    fn new(text: &'a str) -> Self {
        Target {
            text,
            parsed: url::Url::parse(text),
        }
    }

    /// `text`, which is often `base`'s text with a plain suffix (a target's
    /// `.hash`, `.size`, `.files`): then `base`'s parsed form with the suffix
    /// added to its path, which skips parsing the scheme and host again.
    /// It is the `Url` a full parse gives when `base` is already in parsed
    /// (canonical) form, with a path and no query or fragment, and the
    /// suffix is a dot and letters or digits: nothing a parser encodes,
    /// splits or resolves as `.`/`..`.
    fn beside(text: &'a str, base: &Target<'_>) -> Self {
        let plain = |s: &str| {
            s.strip_prefix('.').is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        };
        if let Ok(b) = &base.parsed
            && let Some(suffix) = text.strip_prefix(base.text)
            && plain(suffix)
            && b.as_str() == base.text
            && b.query().is_none()
            && b.fragment().is_none()
            && !b.cannot_be_a_base()
        {
            let mut u = b.clone();
            u.set_path(&format!("{}{suffix}", b.path()));
            debug_assert_eq!(Ok(&u), url::Url::parse(text).as_ref(), "{text}");
            return Target {
                text,
                parsed: Ok(u),
            };
        }
        Target::new(text)
    }
}

/// Sends `method` to `url`, adding attempts, latency and status to `c`;
/// `None` when no response came (the problem is recorded on `c`).
async fn request(
    prober: &Prober,
    c: &mut UrlCheck,
    url: &Target<'_>,
    method: Method,
) -> Option<Reply> {
    let Ok(u) = &url.parsed else {
        c.fail(Problem::new(
            Kind::NotFound,
            format!(
                "{} is not a valid URL",
                crate::net::redact::redact(url.text)
            ),
        ));
        return None;
    };
    let out = prober.send(u, method).await;
    c.attempts += out.attempts;
    c.latency_ms += out.latency.as_secs_f64() * 1000.0;
    match out.result {
        Ok(r) => {
            c.status = Some(r.status);
            Some(r)
        }
        Err(p) => {
            c.fail(p);
            None
        }
    }
}

/// Fetches a metadata URL and applies the checks every metadata file needs
/// (200, not HTML); returns the body for the specific validation.
async fn fetch_metadata(
    prober: &Prober,
    kind: CheckKind,
    url: Target<'_>,
    max: usize,
) -> (UrlCheck, Option<String>) {
    let mut c = UrlCheck::new(kind, url.text);
    let Some(reply) = request(prober, &mut c, &url, Method::Get(max)).await else {
        return (c, None);
    };
    if let Some(p) = status_problem(&reply) {
        c.fail(p);
        return (c, None);
    }
    if looks_like_html(&reply) {
        c.fail(Problem::new(
            Kind::HtmlInsteadOfMetadata,
            format!(
                "HTTP {} with an HTML page ({}) instead of the {kind} file",
                reply.status,
                reply.content_type.as_deref().unwrap_or("no content type")
            ),
        ));
        return (c, None);
    }
    match String::from_utf8(reply.body) {
        Ok(body) => (c, Some(body)),
        Err(_) => {
            c.fail(Problem::new(
                Kind::MalformedMetadata,
                format!("the {kind} file is not UTF-8 text"),
            ));
            (c, None)
        }
    }
}

/// The `.hash` body, judged ([`sidecars::judge_hash`]) and worded. Returns
/// the SHA-512 when there is one.
fn judge_hash(c: &mut UrlCheck, body: &str, file_name: &str) -> Option<String> {
    let v = sidecars::judge_hash(body, file_name);
    if v.sha256 {
        c.warnings
            .push("SHA-256 hash: Zoi verifies it, but `zoi package build` writes SHA-512".into());
    }
    let message = match &v.fault {
        None => return v.sha512,
        Some(HashFault::NoHash { first_word }) => format!(
            "no SHA-512 in the .hash file (Zoi would read {:?} and fail with \"Unsupported hash length\")",
            crate::output::excerpt(first_word, 40)
        ),
        Some(HashFault::Unsupported32 { token }) => {
            format!("{token} has 32 hex digits; Zoi verifies only SHA-512 and SHA-256")
        }
        Some(HashFault::NamesAnother { name }) => {
            format!("the .hash file names {name:?}, not {file_name:?}")
        }
    };
    c.fail(Problem::new(Kind::MalformedMetadata, message));
    v.sha512
}

/// The `.size` body, judged ([`sidecars::judge_size`]) and worded. Returns
/// the download size.
fn judge_size(c: &mut UrlCheck, body: &str) -> Option<u64> {
    let v = sidecars::judge_size(body);
    if let Some(fault) = v.fault {
        let what = match fault {
            SizeFault::Incomplete => {
                "needs both `down: N` and `install: N` lines (zoi sync's pre-fetch reads only those)"
            }
            SizeFault::NoSizes => "has no `down: N` / `install: N` lines",
        };
        c.fail(Problem::new(
            Kind::MalformedMetadata,
            format!(
                "the .size file {what}: {:?}",
                crate::output::excerpt(body, 60)
            ),
        ));
    }
    v.down
}

/// The `.files` body, judged ([`sidecars::judge_files`]) and worded.
fn judge_files(c: &mut UrlCheck, body: &str) {
    match sidecars::judge_files(body) {
        None => {}
        Some(FilesFault::Empty) => c.fail(Problem::new(
            Kind::MalformedMetadata,
            "the .files file is empty",
        )),
        Some(FilesFault::Escapes { path, why }) => c.fail(Problem::new(
            Kind::PathEscape,
            format!(".files lists {path:?}, which {why}"),
        )),
    }
}

/// HEAD the archive (a one-byte ranged GET where HEAD is refused), and make
/// sure byte ranges are served. Returns the archive's length.
async fn check_archive(
    prober: &Prober,
    kind: CheckKind,
    url: &Target<'_>,
) -> (UrlCheck, Option<u64>) {
    let mut c = UrlCheck::new(kind, url.text);
    let Some(head) = request(prober, &mut c, url, Method::Head).await else {
        return (c, None);
    };
    let refused = matches!(head.status, 405 | 501);
    if !refused {
        if let Some(p) = status_problem(&head) {
            // A HEAD answer has no body, and S3-compatible stores say why
            // (AccessDenied, NoSuchKey) only in one: ask once with a GET.
            let mut p = p;
            if matches!(head.status, 403 | 404)
                && let Some(r) = request(prober, &mut c, url, Method::Get(4096)).await
                && r.status == head.status
                && let Some(p2) = status_problem(&r)
            {
                p = p2;
            }
            c.fail(p);
            return (c, None);
        }
        if head.accept_ranges {
            return (c, head.content_length);
        }
    }
    // HEAD refused, or ranges not advertised: ask for one byte.
    let Some(r) = request(prober, &mut c, url, Method::FirstByte).await else {
        return (c, None);
    };
    if let Some(p) = status_problem(&r) {
        c.fail(p);
        return (c, None);
    }
    if r.status == 206 {
        (c, r.range_total.or(head.content_length))
    } else {
        c.fail(Problem::new(
            Kind::NoRange,
            format!(
                "HTTP {} to a Range request: byte ranges are not served",
                r.status
            ),
        ));
        (c, r.content_length.or(head.content_length))
    }
}

/// An archive downloaded for `--deep` or a signature check: the file (only
/// when signatures need the bytes again), its SHA-512 and length.
type Fetched = (Option<tempfile::NamedTempFile>, String, u64);

/// An archive's signature as Zoi will judge it: the embedded manifest.sig
/// first (when the archive's bytes are at hand: `--deep`, or no `.sig`
/// answered), else the detached signature — over the bytes with `--deep`,
/// else by its issuer.
fn judge_signature(
    store: &super::trust::Store,
    trusted: &[String],
    keys: &[&crate::zoi::pgp::PublicKey],
    sig: Result<Vec<u8>, Option<Problem>>,
    archive: Option<&std::path::Path>,
    deep: bool,
) -> Result<(), Problem> {
    use super::trust::sig_problem;
    use crate::zoi::pgp;
    if let Some(path) = archive
        && let Some((manifest, msig)) = super::trust::embedded_of(path)?
    {
        return pgp::verify_detached(&manifest, &msig, keys)
            .map(|_| ())
            .map_err(|e| {
                sig_problem(
                    &e,
                    store,
                    trusted,
                    "the embedded manifest.sig (Zoi fails on it, with no fallback to the .sig)",
                )
            });
    }
    let sig = match sig {
        Ok(b) => b,
        Err(fetch) => {
            let why = fetch.map_or_else(|| "no answer".to_string(), |p| p.message);
            return Err(Problem::new(
                Kind::SignatureMissing,
                format!(
                    "no signature: the .sig does not answer ({why}) and the archive embeds no manifest.sig"
                ),
            ));
        }
    };
    let result = match archive {
        Some(path) if deep => pgp::verify_detached_file(path, &sig, keys),
        _ => pgp::signed_by(&sig, keys),
    };
    result.map(|_| ()).map_err(|e| {
        let what = if pgp::looks_like_openpgp(&sig) {
            "the .sig"
        } else {
            "the .sig (not an OpenPGP signature: an error page?)"
        };
        sig_problem(&e, store, trusted, what)
    })
}

/// Checks `packages[pkg]` on `platform`. Targets name their package by its
/// place in the plan's list rather than each holding a copy.
async fn check_target(
    prober: Arc<Prober>,
    plan: Arc<Plan>,
    store: Arc<super::trust::Store>,
    packages: Arc<[PackageRef]>,
    pkg_at: u32,
    platform: Platform,
) -> (Finished, Vec<UrlCheck>) {
    let pkg = &packages[pkg_at as usize];
    let link = plan
        .link
        .as_ref()
        .expect("targets are planned only with a pkg link");
    let coords = Coordinates {
        name: &pkg.name,
        repo: &pkg.repo,
        version: &pkg.version,
        platform,
    };
    let urls = archive_urls(link, &coords);
    let file_name = urls.file_name().to_string();

    let archive_url = Target::new(&urls.archive);
    let (hash_url, size_url, files_url) = (
        urls.hash
            .as_deref()
            .map(|u| Target::beside(u, &archive_url)),
        urls.size
            .as_deref()
            .map(|u| Target::beside(u, &archive_url)),
        urls.files
            .as_deref()
            .map(|u| Target::beside(u, &archive_url)),
    );
    let archive_f = check_archive(&prober, CheckKind::Archive, &archive_url);
    let hash_f = async {
        match hash_url {
            Some(u) => Some(fetch_metadata(&prober, CheckKind::Hash, u, 64 << 10).await),
            None => None,
        }
    };
    let size_f = async {
        match size_url {
            Some(u) => Some(fetch_metadata(&prober, CheckKind::Size, u, 64 << 10).await),
            None => None,
        }
    };
    let files_f = async {
        match files_url {
            Some(u) => Some(fetch_metadata(&prober, CheckKind::Files, u, 32 << 20).await),
            None => None,
        }
    };
    let pgp_f = async {
        // Zoi fetches the `.sig` only when it verifies (trusted keys set),
        // from the URL and then each cache mirror, on any failure.
        if plan.trusted.is_empty() {
            return None;
        }
        let mut c = UrlCheck::new(CheckKind::Pgp, &urls.pgp);
        let mut body = Err(None);
        for cand in mirror_candidates(&urls.pgp, &plan.cache_mirrors) {
            body = match request(&prober, &mut c, &Target::new(&cand), Method::Get(1 << 20)).await {
                None => Err(c.error.take().map(|e| Problem::new(e.kind, e.message))),
                Some(r) => match status_problem(&r) {
                    Some(p) => Err(Some(p)),
                    None => Ok(r.body),
                },
            };
            if body.is_ok() {
                if cand != urls.pgp {
                    c.warnings.push(format!(
                        "the .sig answers only from the cache mirror {}",
                        crate::net::redact::redact(&cand)
                    ));
                }
                break;
            }
        }
        c.ok = true;
        Some((c, body))
    };
    let ((mut archive, length), hash, size, files, pgp) =
        tokio::join!(archive_f, hash_f, size_f, files_f, pgp_f);

    let mut out = Vec::new();
    let mut sha = None;
    if let Some((mut c, body)) = hash {
        if let Some(body) = body {
            sha = judge_hash(&mut c, &body, &file_name);
        }
        out.push(c);
    }
    let mut down = None;
    if let Some((mut c, body)) = size {
        if let Some(body) = body {
            down = judge_size(&mut c, &body);
            if c.ok
                && let (Some(d), Some(len)) = (down, length)
                && d != len
            {
                c.fail(Problem::new(
                    Kind::SizeMismatch,
                    format!(".size says down: {d}, but the archive is {len} bytes"),
                ));
            }
        }
        out.push(c);
    }
    if let Some((mut c, body)) = files {
        if let Some(body) = body {
            judge_files(&mut c, &body);
        }
        out.push(c);
    }
    // The archive, when it has to be looked at: for --deep, or to find an
    // embedded manifest.sig where no .sig answers.
    let trusted = (!plan.trusted.is_empty())
        .then(|| store.resolve(&plan.trusted))
        .and_then(Result::ok);
    let sig_missing = pgp.as_ref().is_some_and(|(_, b)| b.is_err());
    let need_bytes = archive.ok && (plan.deep || (trusted.is_some() && sig_missing));
    let t = Instant::now();
    // Only signature checks need the bytes on disk; a plain --deep hashes
    // the stream.
    let fetched: Option<Result<Fetched, Problem>> = if need_bytes {
        Some(super::trust::fetch_hashed(&prober, &urls.archive, trusted.is_some()).await)
    } else {
        None
    };
    if plan.deep && archive.ok {
        let mut c = UrlCheck::new(CheckKind::Deep, &urls.archive);
        match &fetched {
            None => {}
            Some(Err(p)) => c.fail(p.clone()),
            Some(Ok((_, got, len))) => {
                if let Some(want) = &sha
                    && want != got
                {
                    c.fail(Problem::new(
                        Kind::HashMismatch,
                        format!("the archive's SHA-512 is {got}, the .hash says {want}"),
                    ));
                } else if let Some(d) = down
                    && d != *len
                {
                    c.fail(Problem::new(
                        Kind::SizeMismatch,
                        format!("downloaded {len} bytes, the .size says down: {d}"),
                    ));
                }
            }
        }
        c.latency_ms = t.elapsed().as_secs_f64() * 1000.0;
        c.attempts = 1;
        out.push(c);
    }
    if let Some((mut c, body)) = pgp {
        match &trusted {
            // The missing trusted key is reported with the keys.
            None => c.warnings.push(
                "signature not verified: a trusted key is not available to the client".into(),
            ),
            Some(keys) => {
                let file = match &fetched {
                    Some(Ok((Some(f), _, _))) => Some(f.path()),
                    _ => None,
                };
                if let Err(p) = crate::runtime::blocking(|| {
                    judge_signature(&store, &plan.trusted, keys, body, file, plan.deep)
                }) {
                    c.fail(p);
                }
            }
        }
        out.push(c);
    }
    // Enforcement with no trusted key: Zoi refuses every install
    // (`validate_signature_requirements`).
    if plan.enforced && plan.trusted.is_empty() {
        let mut c = UrlCheck::new(CheckKind::Pgp, &urls.pgp);
        c.fail(Problem::new(
            Kind::SignatureMissing,
            "signature enforcement is on, but it names no trusted key: Zoi fails \"Signature enforcement is active, but no trusted PGP keys are configured\"",
        ));
        out.push(c);
    }
    // What Zoi tolerates: `.size` is advisory (a failure to read it only
    // warns; a wrong one is not checked against the download), `.files`
    // only feeds the conflict check (which falls back to the archive), and
    // a fresh download needs no `Range` (only a resumed one does).
    for c in out.iter_mut() {
        match (c.kind, c.error.as_ref().map(|e| e.kind)) {
            (CheckKind::Size, Some(_)) | (CheckKind::Deep, Some(Kind::SizeMismatch)) => {
                demote(c, "Zoi only shows the sizes, and installs anyway")
            }
            (CheckKind::Files, Some(k)) if k != Kind::PathEscape => demote(
                c,
                "Zoi uses .files only to look for conflicts, and falls back to the archive",
            ),
            _ => {}
        }
    }
    if archive
        .error
        .as_ref()
        .is_some_and(|e| e.kind == Kind::NoRange)
    {
        demote(
            &mut archive,
            "a fresh download works; an interrupted one cannot resume",
        );
    }
    if archive.ok && urls.hash.is_none() {
        archive.warnings.push(
            "the pkg link has no `hash` URL: Zoi installs without verifying the archive".into(),
        );
    }
    out.insert(0, archive);

    // cache_mirrors candidates for the archive, reported apart.
    let mut fallbacks = Vec::new();
    if !plan.cache_mirrors.is_empty() {
        for cand in mirror_candidates(&urls.archive, &plan.cache_mirrors)
            .into_iter()
            .skip(1)
        {
            let (c, _) = check_archive(&prober, CheckKind::Archive, &Target::new(&cand)).await;
            fallbacks.push(c);
        }
    }

    let ok = out.iter().all(|c| c.ok);
    // Kept as rows, without the URLs: the report builds them again from
    // the link by the same rule (`row_url`).
    let mut rows = Vec::with_capacity(out.len());
    for c in out {
        debug_assert_eq!(
            c.url,
            crate::net::redact::redact(row_url(c.kind, &urls, None)),
            "row_url names the URL check_target checked"
        );
        rows.push(Row::new(c));
    }
    (
        Finished {
            pkg: pkg_at,
            platform,
            ok,
            rows,
        },
        fallbacks,
    )
}

/// A binary host answers HTTP (any status will do: a directory URL may
/// well be 403 or 404 without listings).
async fn check_host(prober: &Prober, url: &str) -> UrlCheck {
    let mut c = UrlCheck::new(CheckKind::Host, url);
    let root = format!("{}/", url.trim_end_matches('/'));
    request(prober, &mut c, &Target::new(&root), Method::Head).await;
    c
}

async fn check_registry(
    prober: &Prober,
    plan: &Plan,
    store: &super::trust::Store,
    role: RegistryRole,
    url: &str,
    any_packages: bool,
) -> (RegistryCheck, Option<Result<PkgLuas, String>>) {
    let mut c = UrlCheck::new(CheckKind::Git, url);
    let probe = if url.starts_with("http://") || url.starts_with("https://") {
        git::probe_http(prober, url, &plan.branch).await
    } else {
        git::probe_cli(url, &plan.branch, plan.git_timeout).await
    };
    c.latency_ms = probe.latency.as_secs_f64() * 1000.0;
    c.status = probe.status;
    c.attempts = probe.attempts;
    c.warnings = probe.warnings;
    if let Err(p) = probe.result {
        c.fail(p);
    }
    let mut checks = vec![c];
    let verify = !plan.authorities.is_empty();
    let mut index: Option<Result<PkgLuas, String>> = None;
    if role == RegistryRole::Main
        && checks[0].ok
        && (plan.registry_content.is_some() || verify || any_packages)
    {
        let t = Instant::now();
        let snap = git::head_snapshot(url, plan.git_timeout).await;
        if let Ok(s) = &snap {
            index = Some(Ok(s.pkg_luas.clone()));
        }
        let elapsed = t.elapsed().as_secs_f64() * 1000.0;
        if let Some(expected) = &plan.registry_content {
            let mut rc = UrlCheck::new(CheckKind::RepoYaml, url);
            match &snap {
                Err(p) => rc.fail(p.clone()),
                Ok(s) => match &s.repo_yaml {
                    None => rc.fail(Problem::new(
                        Kind::RegistryContentDiffers,
                        "the registry has no repo.yaml at its root",
                    )),
                    Some(got) if got != expected => rc.fail(Problem::new(
                        Kind::RegistryContentDiffers,
                        "repo.yaml at the registry's HEAD differs from the bundle's",
                    )),
                    Some(_) => {}
                },
            }
            rc.latency_ms = elapsed;
            rc.attempts = 1;
            checks.push(rc);
        }
        // As `zoi sync` with authorities: the HEAD commit signed by one.
        if verify {
            let mut sc = UrlCheck::new(CheckKind::Signature, url);
            sc.latency_ms = elapsed;
            sc.attempts = 1;
            match (&snap, store.resolve_before_sync(&plan.authorities)) {
                (Err(p), _) => sc.fail(p.clone()),
                // Missing altogether: reported with the keys.
                (Ok(_), Err(id)) if store.resolve(std::slice::from_ref(&id)).is_err() => sc
                    .warnings
                    .push(format!(
                        "not verified: the authority '{id}' has no key the client can hold"
                    )),
                // Only repo.yaml carries it: a new client does not have it
                // yet when its first sync verifies the HEAD.
                (Ok(_), Err(id)) => sc.fail(Problem::new(
                    Kind::KeyUnreachable,
                    format!(
                        "a new client has no key '{id}' when its first `zoi sync` verifies the HEAD (Zoi verifies before it imports repo.yaml's keys): Zoi fails \"Trusted key '{id}' not found in Zoi's PGP keyring\"; deliver it with the extension ([[client.pgp]])"
                    ),
                )),
                (Ok(s), Ok(keys)) => {
                    if let Err(p) =
                        super::trust::judge_commit(&s.commit, &keys, store, &plan.authorities)
                    {
                        sc.fail(p);
                    }
                }
            }
            checks.push(sc);
        }
    }
    (
        RegistryCheck {
            role,
            url: crate::net::redact::redact(url),
            ok: checks.iter().all(|c| c.ok),
            checks,
        },
        index,
    )
}

/// A target against the registry at HEAD: `zoi install @tier/name`
/// resolves `<tier>/<name>/<name>.pkg.lua` in its clone (not
/// packages.json), and installs the version that file gives.
fn judge_in_registry(
    t: &mut TargetCheck,
    pkg: &PackageRef,
    pkg_luas: &Result<PkgLuas, String>,
    url: &str,
) {
    let mut c = UrlCheck::new(CheckKind::Registry, url);
    let (repo, name) = (pkg.repo.as_str(), pkg.name.as_str());
    match pkg_luas {
        Err(e) => c.warnings.push(format!("cannot look into the registry: {e}")),
        Ok(files) => match files.get(&(repo.to_string(), name.to_string())) {
            None => c.fail(Problem::new(
                Kind::NotInRegistry,
                format!(
                    "the registry has no {repo}/{name}/{name}.pkg.lua at HEAD: `zoi install @{repo}/{name}` cannot find it, whatever the binary host has"
                ),
            )),
            Some(Some(v)) if *v != pkg.version => c.fail(Problem::new(
                Kind::NotInRegistry,
                format!(
                    "the registry's {repo}/{name}/{name}.pkg.lua says version {v}, not {}: that is the version Zoi installs",
                    pkg.version
                ),
            )),
            Some(_) => {}
        },
    }
    t.judged(Row::new(c));
}

/// Runs the plan. `progress` is called once per finished target.
pub async fn run(
    prober: Arc<Prober>,
    mut plan: Plan,
    concurrency: usize,
    progress: impl Fn(),
) -> Report {
    let start = Instant::now();
    // The packages move to one shared list that targets (and the report)
    // name by place: no copy per target.
    let packages: Arc<[PackageRef]> = std::mem::take(&mut plan.packages).into();
    let any_packages = !packages.is_empty();
    let plan = Arc::new(plan);

    // The keys first: both the registry's HEAD and the archives are
    // verified against them. Nothing to do for clients that verify nothing.
    let mut needed: Vec<String> = plan.authorities.clone();
    for k in &plan.trusted {
        if !needed.contains(k) {
            needed.push(k.clone());
        }
    }
    let (store, keys) = if needed.is_empty() {
        Default::default()
    } else {
        super::trust::load(&prober, &plan.key_sources, &needed).await
    };
    let store = Arc::new(store);

    let registry_f = futures::future::join_all(
        plan.git
            .iter()
            .map(|(role, url)| check_registry(&prober, &plan, &store, *role, url, any_packages)),
    );

    // Package-major, each package on every platform; planned one at a
    // time as the stream pulls, not listed first.
    let n_platforms = plan.platforms.len();
    let n_targets = match &plan.link {
        Some(_) => packages.len() * n_platforms,
        None => 0,
    };
    let mut targets = Targets::new(packages.clone(), plan.link.clone(), n_targets);
    let mut fallbacks = Vec::new();
    let one_thread = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread;
    let targets_f = futures::stream::iter((0..n_targets).map(|i| {
        let (prober, plan, store, packages) = (
            prober.clone(),
            plan.clone(),
            store.clone(),
            packages.clone(),
        );
        let pkg_at = u32::try_from(i / n_platforms).expect("fewer than 2^32 packages");
        let platform = plan.platforms[i % n_platforms];
        let target = check_target(prober, plan, store, packages, pkg_at, platform);
        // On one thread a task per target buys nothing but a move of its
        // future into the task and a wake-up through the join handle: the
        // stream polls the target itself. Across cores (`--deep`), each
        // target is a task, so they hash in parallel.
        if one_thread {
            futures::future::Either::Left(target)
        } else {
            futures::future::Either::Right(async move {
                tokio::spawn(target).await.expect("target task")
            })
        }
    }))
    .buffer_unordered(concurrency.max(1))
    .for_each(|(t, f)| {
        targets.keep(t);
        fallbacks.extend(f);
        progress();
        std::future::ready(())
    });

    let hosts_f = futures::future::join_all(plan.hosts.iter().map(|h| check_host(&prober, h)));
    let (registry, hosts, ()) = tokio::join!(registry_f, hosts_f, targets_f);
    let (registry, indexes): (Vec<RegistryCheck>, Vec<_>) = registry.into_iter().unzip();
    if let (Some(Some(index)), Some(main)) = (indexes.first(), registry.first())
        && main.role == RegistryRole::Main
    {
        for t in &mut targets.list {
            judge_in_registry(t, &packages[t.pkg as usize], index, &main.url);
        }
        targets.registry_url = Some(main.url.clone());
    }
    // By package id (`@repo/name`, as bytes: the order of the strings the
    // report shows), version and platform. The packages are ranked in that
    // order once (equal ones alike), so the targets, a package's platforms
    // times as many, sort on integers.
    let by_id = |a: &PackageRef, b: &PackageRef| {
        package_id(a)
            .cmp(package_id(b))
            .then_with(|| a.version.cmp(&b.version))
    };
    let mut order: Vec<usize> = (0..packages.len()).collect();
    order.sort_by(|&a, &b| by_id(&packages[a], &packages[b]));
    let mut rank = vec![0u32; packages.len()];
    for k in 1..order.len() {
        let step = by_id(&packages[order[k - 1]], &packages[order[k]]).is_ne();
        rank[order[k]] = rank[order[k - 1]] + u32::from(step);
    }
    targets
        .list
        .sort_by_key(|t| (rank[t.pkg as usize], t.platform));

    let mut counts = Counts::default();
    let all = registry
        .iter()
        .flat_map(|r| r.checks.iter())
        .chain(keys.iter())
        .chain(hosts.iter())
        .map(|c| (c.ok, c.error.as_ref(), c.warnings.len()))
        .chain(
            targets
                .list
                .iter()
                .flat_map(|t| targets.rows(t))
                .map(|r| (r.ok, r.error(), r.warnings().len())),
        );
    for (ok, error, warnings) in all {
        counts.urls += 1;
        counts.warnings += warnings;
        if ok {
            counts.ok += 1;
        } else {
            counts.failed += 1;
            if let Some(e) = error {
                *counts.by_kind.entry(e.kind).or_default() += 1;
            }
        }
    }
    counts.targets = targets.len();
    counts.targets_failed = targets.list.iter().filter(|t| !t.ok).count();
    counts.fallbacks_failed = fallbacks.iter().filter(|f| !f.ok).count();

    Report {
        notes: plan.notes.clone(),
        registry,
        keys,
        hosts,
        packages: targets,
        fallbacks,
        counts,
        elapsed_ms: start.elapsed().as_secs_f64() * 1000.0,
    }
}

/// A package's id (`@repo/name`) as bytes, compared as the string is.
fn package_id(p: &PackageRef) -> impl Iterator<Item = u8> + '_ {
    b"@".iter()
        .chain(p.repo.as_bytes())
        .chain(b"/")
        .chain(p.name.as_bytes())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> UrlCheck {
        UrlCheck::new(CheckKind::Archive, "http://h/x")
    }

    #[test]
    fn hash_rules() {
        let h = "a".repeat(128);
        let mut c = check();
        assert_eq!(
            judge_hash(&mut c, &format!("{h}  f.zpa\n"), "f.zpa"),
            Some(h.clone())
        );
        assert!(c.ok);
        let mut c = check();
        judge_hash(&mut c, &format!("{h}  other.zpa\n"), "f.zpa");
        assert_eq!(c.error.unwrap().kind, Kind::MalformedMetadata);
        let mut c = check();
        judge_hash(&mut c, &"b".repeat(64), "f.zpa");
        assert!(c.ok && c.warnings.len() == 1);
        let mut c = check();
        judge_hash(&mut c, "Not Found", "f.zpa");
        assert!(c.error.unwrap().message.contains("Unsupported hash length"));
    }

    #[test]
    fn size_and_files_rules() {
        let mut c = check();
        assert_eq!(judge_size(&mut c, "down: 5\ninstall: 9\n"), Some(5));
        assert!(c.ok);
        let mut c = check();
        judge_size(&mut c, "garbage");
        assert!(!c.ok);
        let mut c = check();
        judge_size(&mut c, "12\n");
        assert!(!c.ok, "a bare integer is not enough for zoi sync");
        let mut c = check();
        judge_files(&mut c, "${pkgstore}/bin/\n${pkgstore}/bin/x");
        assert!(c.ok);
        for bad in [
            "",
            "/etc/passwd",
            "${pkgstore}/../../etc/passwd",
            "../etc/passwd",
        ] {
            let mut c = check();
            judge_files(&mut c, bad);
            assert!(!c.ok, "{bad}");
        }
    }

    #[test]
    fn html_is_detected_by_type_or_body() {
        let r = Reply {
            status: 200,
            content_type: Some("text/html; charset=utf-8".into()),
            ..Reply::default()
        };
        assert!(looks_like_html(&r));
        let r = Reply {
            status: 200,
            content_type: Some("text/plain".into()),
            body: b"\n<!DOCTYPE html><html>".to_vec(),
            ..Reply::default()
        };
        assert!(looks_like_html(&r));
        // Judged on the lossy text when the head is not UTF-8, as before.
        let r = Reply {
            status: 200,
            body: b" \n<HTML><p>\xff</p>".to_vec(),
            ..Reply::default()
        };
        assert!(looks_like_html(&r));
        let r = Reply {
            status: 200,
            body: b"\xff<html>".to_vec(),
            ..Reply::default()
        };
        assert!(!looks_like_html(&r));
        let r = Reply {
            status: 200,
            body: format!("{}  f.zpa\n", "a".repeat(128)).into_bytes(),
            ..Reply::default()
        };
        assert!(!looks_like_html(&r));
    }

    /// A sidecar's `Url` made from the archive's is the one a full parse
    /// gives, and anything the shortcut cannot vouch for is parsed whole.
    #[test]
    fn sidecar_urls_are_what_a_full_parse_gives() {
        for (archive, sidecar) in [
            ("http://127.0.0.1:8080/p/a-1.0-linux-amd64.zpa", ".hash"),
            ("https://h.example/p/%20x/a.zpa", ".size"),
            ("https://h.example/p/dir/", ".files"),
            ("https://u:pw@h.example/a.zpa", ".hash"),
            // Not canonical, a query, a fragment, a suffix that is not
            // plain: parsed whole.
            ("HTTPS://H.example/a/b/../a.zpa", ".hash"),
            ("https://h.example/a.zpa?sig=1", ".hash"),
            ("https://h.example/a.zpa#x", ".hash"),
            ("https://h.example/a.zpa", "/../x"),
            ("https://h.example/a.zpa", ".h%41sh"),
            ("https://h.example/a.zpa", "."),
            ("not a url", ".hash"),
        ] {
            let text = format!("{archive}{sidecar}");
            let base = Target::new(archive);
            let got = Target::beside(&text, &base);
            assert_eq!(got.text, text);
            assert_eq!(got.parsed, url::Url::parse(&text), "{text}");
        }
        // Not a suffix of the archive's URL at all.
        let base = Target::new("https://h.example/a.zpa");
        let got = Target::beside("https://other.example/a.zpa.hash", &base);
        assert_eq!(
            got.parsed,
            url::Url::parse("https://other.example/a.zpa.hash")
        );
    }
}
