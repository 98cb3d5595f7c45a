//! One HTTP request, done the way a careful client would: bounded
//! concurrency (global and per host), retries with exponential backoff and
//! jitter on 5xx, 429 (honouring `Retry-After`), resets and timeouts, and
//! every failure classified into a kind with its own message and hint.
//!
//! Connection reuse comes from sharing one `reqwest::Client` (keep-alive
//! pools, HTTP/2 over TLS when the server offers it via ALPN).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use super::http;

/// What went wrong with a URL, as one of a fixed set of kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Dns,
    ConnectRefused,
    Connect,
    Tls,
    Timeout,
    ConnectionReset,
    /// The body ended before its announced length.
    Truncated,
    RedirectLoop,
    RedirectOtherHost,
    Unauthorized,
    Forbidden,
    NotFound,
    HttpError,
    HtmlInsteadOfMetadata,
    MalformedMetadata,
    /// `.files` (or the archive's manifest) places a file outside Zoi's roots.
    PathEscape,
    SizeMismatch,
    HashMismatch,
    NoRange,
    NotAGitRepo,
    HeadMissing,
    RegistryContentDiffers,
    /// `bin sync`: upstream's signature does not verify (or is missing
    /// where upstream declares keys): the archive is not placed.
    Signature,
    /// A `.sig` (or embedded `manifest.sig`) made by none of the keys the
    /// client trusts.
    SignatureUntrusted,
    /// Made by a trusted key, but not over these bytes.
    SignatureBad,
    /// No signature where the client requires one.
    SignatureMissing,
    /// A key URL that does not answer with a key.
    KeyUnreachable,
    /// A key URL answering with something that is not an OpenPGP public key.
    KeyNotPgp,
    /// The registry's HEAD commit is not signed by one of the authorities.
    RegistryUnsigned,
    /// A package `check` was asked about has no `.pkg.lua` in the registry
    /// at HEAD (or another version there): `zoi install` resolves from it.
    NotInRegistry,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Dns => "dns",
            Kind::ConnectRefused => "connect_refused",
            Kind::Connect => "connect",
            Kind::Tls => "tls",
            Kind::Timeout => "timeout",
            Kind::ConnectionReset => "connection_reset",
            Kind::Truncated => "truncated",
            Kind::RedirectLoop => "redirect_loop",
            Kind::RedirectOtherHost => "redirect_other_host",
            Kind::Unauthorized => "unauthorized",
            Kind::Forbidden => "forbidden",
            Kind::NotFound => "not_found",
            Kind::HttpError => "http_error",
            Kind::HtmlInsteadOfMetadata => "html_instead_of_metadata",
            Kind::MalformedMetadata => "malformed_metadata",
            Kind::PathEscape => "path_escape",
            Kind::SizeMismatch => "size_mismatch",
            Kind::HashMismatch => "hash_mismatch",
            Kind::NoRange => "no_range",
            Kind::NotAGitRepo => "not_a_git_repo",
            Kind::HeadMissing => "head_missing",
            Kind::RegistryContentDiffers => "registry_content_differs",
            Kind::Signature => "signature",
            Kind::SignatureUntrusted => "signature_untrusted",
            Kind::SignatureBad => "signature_bad",
            Kind::SignatureMissing => "signature_missing",
            Kind::KeyUnreachable => "key_unreachable",
            Kind::KeyNotPgp => "key_not_pgp",
            Kind::RegistryUnsigned => "registry_unsigned",
            Kind::NotInRegistry => "not_in_registry",
        }
    }

    /// What to do about it.
    pub fn hint(self) -> &'static str {
        match self {
            Kind::Dns => {
                "the host name does not resolve: check it, your DNS, and HTTPS_PROXY/NO_PROXY"
            }
            Kind::ConnectRefused => {
                "nothing listens there: is the server running, and is the port right?"
            }
            Kind::Connect => "the connection failed: check the host, firewalls and proxy settings",
            Kind::Tls => {
                "the server's certificate is not trusted: pass your corporate CA with --ca-cert FILE (Zoi uses the OS store, so install the CA there for clients too)"
            }
            Kind::Timeout => "the server answered too slowly (Zoi gives up after 60 s per request)",
            Kind::ConnectionReset => {
                "the server dropped the connection: check its logs and any proxy in between"
            }
            Kind::Truncated => {
                "the server sent fewer bytes than it announced (Content-Length) and closed the connection: the file may be cut short on disk, or the server or a proxy in between dropped out mid-transfer; check the file's size on the host and the server's error log"
            }
            Kind::RedirectLoop => "the URL redirects in a loop: fix the server's rewrite rules",
            Kind::RedirectOtherHost => {
                "the URL redirects to another host: credentials are not sent there, and clients silently depend on it; serve the file from the mirror host"
            }
            Kind::Unauthorized => {
                "the server wants credentials: pass --header 'Authorization: …' (or ZOI_MIRROR_HEADER) to check; Zoi sends none, so clients fail the same way"
            }
            Kind::Forbidden => {
                "the server refuses access: check its permissions (and the credentials, if any)"
            }
            Kind::NotFound => {
                "not mirrored, or not where repo.yaml's URLs say: run `zoi-mirror bin sync`, or check the layout with `zoi-mirror index --layout`"
            }
            Kind::HttpError => "the server failed: see its error log",
            Kind::HtmlInsteadOfMetadata => {
                "an HTML page (a login or error page from a proxy or SSO) answered instead of the file; Zoi would read the page as metadata: serve the file directly"
            }
            Kind::MalformedMetadata => "regenerate the metadata with `zoi-mirror index --force`",
            Kind::PathEscape => {
                "the archive's manifest installs files outside Zoi's store; re-indexing cannot fix that: rebuild the package from a trusted source (or remove the archive), then run `zoi-mirror index`"
            }
            Kind::SizeMismatch => {
                "the archive and its .size disagree: re-run `zoi-mirror index --force` over it"
            }
            Kind::HashMismatch => {
                "the archive does not match its .hash: re-fetch the archive (`zoi-mirror bin sync`) or re-index it"
            }
            Kind::NoRange => {
                "Zoi resumes interrupted downloads with Range requests: enable byte ranges on the server"
            }
            Kind::NotAGitRepo => {
                "the URL does not serve a git repository: check it, and that the forge allows anonymous clones"
            }
            Kind::HeadMissing => {
                "Zoi clones the registry's HEAD, which names no existing branch (`git init --bare` leaves it at master): point it at the synced branch with `git symbolic-ref HEAD refs/heads/<branch>` in the bare repository, or the forge's default-branch setting; clients that synced meanwhile keep an empty clone: remove their pkgs/db/<handle> and sync again"
            }
            Kind::RegistryContentDiffers => {
                "the mirror's repo.yaml is not the bundle's: run `zoi-mirror db sync`"
            }
            Kind::Signature => {
                "upstream's signature does not verify against upstream's keys: the archive may be tampered with upstream or in transit, so it was not placed; pass --allow-unsigned only for registries that publish no keys"
            }
            Kind::SignatureUntrusted => {
                "Zoi fails \"No valid signature found from any trusted key\": trust the key that signs the archives (binaries.trust, default upstream's), or re-sign them with `bin sync --sign KEY`"
            }
            Kind::SignatureBad => {
                "the archive changed after it was signed, or the signing key is no longer valid: re-fetch it with `zoi-mirror bin sync`"
            }
            Kind::SignatureMissing => {
                "clients that trust keys require a signature for every archive: mirror upstream's .sig with `zoi-mirror bin sync`, or re-sign with `bin sync --sign KEY`"
            }
            Kind::KeyUnreachable => {
                "Zoi cannot import the key, so it cannot verify anything signed with it: publish the key where the URL says (`zoi-mirror bin sync` copies upstream's keys)"
            }
            Kind::KeyNotPgp => {
                "the URL must serve the armored public key (`gpg --armor --export KEY`), not a page or a secret key"
            }
            Kind::NotInRegistry => {
                "the mirror's registry (at HEAD) does not carry that package at that version: run `zoi-mirror db sync`, or check the package and version"
            }
            Kind::RegistryUnsigned => {
                "`zoi sync` aborts \"Registry commit is not signed\": sign the overlay with registry.signing_key (`zoi-mirror db sync`) using a key among the authorities"
            }
        }
    }
}

/// A classified failure for one URL.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub kind: Kind,
    pub message: String,
}

impl Problem {
    /// Messages often quote what a server sent: any secret it echoed
    /// (an `Authorization` value) is redacted here, where they are made.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Problem {
            kind,
            message: crate::output::redact_secrets(&message.into()),
        }
    }
}

/// How to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Head,
    /// `GET` with `Range: bytes=0-0`.
    FirstByte,
    /// `GET`, keeping at most this many body bytes.
    Get(usize),
}

/// A response we got (any status).
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    /// Total length from `Content-Range: bytes a-b/TOTAL`.
    pub range_total: Option<u64>,
    pub accept_ranges: bool,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// The outcome of a request, after retries.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<Reply, Problem>,
    pub latency: Duration,
    pub attempts: u32,
}

pub struct Prober {
    pub http: super::http::Http,
    global: Arc<Semaphore>,
    per_host: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_host_limit: usize,
    retries: u32,
}

/// Backoff before attempt `n` (1-based retry count): 200 ms × 2^(n-1), up to
/// 10 s, plus up to 50 % jitter so that many clients do not retry in step.
fn backoff(n: u32) -> Duration {
    let base = 200u64.saturating_mul(1 << (n - 1).min(6)).min(10_000);
    // Jitter from the hasher's per-process random keys: no RNG crate needed.
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(n);
    let jitter = h.finish() % (base / 2 + 1);
    Duration::from_millis(base + jitter)
}

/// `Retry-After` as seconds or an HTTP date, capped at 60 s.
fn retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s.min(60)));
    }
    let when = httpdate_parse(v)?;
    let now = std::time::SystemTime::now();
    Some(
        when.duration_since(now)
            .unwrap_or_default()
            .min(Duration::from_secs(60)),
    )
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate_parse(s: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as i64
        + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if hms.len() != 3 {
        return None;
    }
    // days from civil (Howard Hinnant)
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    Some(std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// The whole chain of an error as lowercase text, for classification.
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out.to_lowercase()
}

/// Sorts a transport error into a kind.
pub fn classify(e: &reqwest::Error) -> Problem {
    let text = chain_text(e);
    let msg = http::describe_reqwest(e);
    let kind = if e.is_timeout() || text.contains("timed out") {
        Kind::Timeout
    } else if e.is_redirect() {
        if text.contains("other host") {
            Kind::RedirectOtherHost
        } else {
            Kind::RedirectLoop
        }
    } else if text.contains("dns error")
        || text.contains("failed to lookup")
        || text.contains("name or service not known")
    {
        Kind::Dns
    } else if text.contains("certificate")
        || text.contains("unknownissuer")
        || text.contains("tls")
        || text.contains("handshake")
    {
        Kind::Tls
    } else if text.contains("connection refused") {
        Kind::ConnectRefused
    } else if text.contains("reset")
        || text.contains("connection closed")
        || text.contains("incomplete message")
        || text.contains("unexpected eof")
        || text.contains("broken pipe")
    {
        Kind::ConnectionReset
    } else {
        Kind::Connect
    };
    Problem::new(kind, msg)
}

/// Sorts an error met while reading a body: the connection ending before
/// the announced length is a truncated body, not a failure to connect.
pub fn classify_body(e: &reqwest::Error) -> Problem {
    let p = classify(e);
    if p.kind == Kind::Timeout {
        return p;
    }
    if e.is_body() || e.is_decode() || matches!(p.kind, Kind::Connect | Kind::ConnectionReset) {
        let msg = http::describe_reqwest(e).replacen("request failed", "the body was cut short", 1);
        return Problem::new(Kind::Truncated, msg);
    }
    p
}

fn retryable(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Timeout
            | Kind::Truncated
            | Kind::ConnectionReset
            | Kind::ConnectRefused
            | Kind::Connect
            | Kind::HttpError
    )
}

impl Prober {
    pub fn new(http: super::http::Http, concurrency: usize, per_host: usize, retries: u32) -> Self {
        Prober {
            http,
            global: Arc::new(Semaphore::new(concurrency.max(1))),
            per_host: Mutex::new(HashMap::new()),
            per_host_limit: per_host.max(1),
            retries,
        }
    }

    fn host_gate(&self, url: &url::Url) -> Arc<Semaphore> {
        let key = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        let mut map = self.per_host.lock().expect("per-host map");
        map.entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host_limit)))
            .clone()
    }

    async fn once(
        &self,
        url: &url::Url,
        method: Method,
    ) -> Result<Reply, (Problem, Option<Duration>)> {
        let (verb, extra) = match method {
            Method::Head => (reqwest::Method::HEAD, Vec::new()),
            Method::FirstByte => (
                reqwest::Method::GET,
                vec![(reqwest::header::RANGE, "bytes=0-0".to_string())],
            ),
            Method::Get(_) => (reqwest::Method::GET, Vec::new()),
        };
        let resp = self
            .http
            .send(verb, url, &extra, None)
            .await
            .map_err(|e| (classify(&e), None))?;
        let headers = resp.headers();
        let header = |name: reqwest::header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let mut reply = Reply {
            status: resp.status().as_u16(),
            content_type: header(reqwest::header::CONTENT_TYPE),
            content_length: header(reqwest::header::CONTENT_LENGTH).and_then(|v| v.parse().ok()),
            range_total: header(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.rsplit('/').next().and_then(|t| t.trim().parse().ok())),
            accept_ranges: header(reqwest::header::ACCEPT_RANGES)
                .is_some_and(|v| v.contains("bytes")),
            location: header(reqwest::header::LOCATION),
            body: Vec::new(),
        };
        let status = reply.status;
        if status == 429 || status >= 500 {
            let wait = header(reqwest::header::RETRY_AFTER).and_then(|v| retry_after(&v));
            let reason = resp.status().canonical_reason().unwrap_or_default();
            return Err((
                Problem::new(Kind::HttpError, format!("HTTP {status} {reason}")),
                wait,
            ));
        }
        if let Method::Get(max) = method {
            let mut resp = resp;
            while let Some(chunk) = resp.chunk().await.map_err(|e| (classify_body(&e), None))? {
                let room = max.saturating_sub(reply.body.len());
                reply
                    .body
                    .extend_from_slice(&chunk[..chunk.len().min(room)]);
                if reply.body.len() >= max {
                    break;
                }
            }
        } else if method == Method::FirstByte {
            let mut resp = resp;
            // one byte expected; never read more than a little of a 200
            while let Some(chunk) = resp.chunk().await.map_err(|e| (classify_body(&e), None))? {
                reply.body.extend_from_slice(&chunk[..chunk.len().min(16)]);
                if reply.body.len() >= 16 {
                    break;
                }
            }
        }
        Ok(reply)
    }

    /// Sends with retries. Statuses other than 5xx/429 are returned as
    /// replies for the caller to judge.
    pub async fn send(&self, url: &url::Url, method: Method) -> Outcome {
        let _global = self.global.acquire().await.expect("semaphore open");
        let gate = self.host_gate(url);
        let _host = gate.acquire().await.expect("semaphore open");
        let start = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.once(url, method).await {
                Ok(reply) => {
                    return Outcome {
                        result: Ok(reply),
                        latency: start.elapsed(),
                        attempts,
                    };
                }
                Err((problem, wait)) => {
                    if attempts > self.retries || !retryable(problem.kind) {
                        return Outcome {
                            result: Err(problem),
                            latency: start.elapsed(),
                            attempts,
                        };
                    }
                    tokio::time::sleep(wait.unwrap_or_else(|| backoff(attempts))).await;
                }
            }
        }
    }
}

/// A redirect policy that follows same-host redirects (up to 10) and stops
/// at a redirect to another host, so it can be reported.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first_host = attempt
            .previous()
            .first()
            .map(|u| (u.host_str().map(str::to_string), u.port_or_known_default()));
        let here = (
            attempt.url().host_str().map(str::to_string),
            attempt.url().port_or_known_default(),
        );
        if attempt.previous().len() >= 10 || attempt.previous().contains(attempt.url()) {
            attempt.error("redirect loop")
        } else if first_host.is_some_and(|h| h != here) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// Runs CPU- or disk-bound work (hashing, decompressing, verifying a whole
/// archive) without stalling the other downloads: on a multi-threaded
/// runtime the worker hands its other tasks over first.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("999"), Some(Duration::from_secs(60)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
        let t = httpdate_parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(
            backoff(1) >= Duration::from_millis(200) && backoff(1) <= Duration::from_millis(300)
        );
        assert!(backoff(3) >= Duration::from_millis(800));
        assert!(backoff(30) <= Duration::from_millis(15_000));
    }
}
