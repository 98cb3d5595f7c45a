//! The HTTP client every network-facing command shares.
//!
//! One place decides TLS roots (the OS store plus `--ca-cert` files for
//! corporate CAs), proxies (reqwest reads `HTTPS_PROXY`/`HTTP_PROXY`/
//! `ALL_PROXY`/`NO_PROXY`, the same variables Zoi honours), timeouts, the
//! User-Agent, the auth header (sent only to the hosts a command was
//! pointed at) and the redirect policy. Name lookups go through
//! a resolver of our own, so that a failed one is known by its type
//! ([`super::classify::DnsError`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::classify::{DnsError, RedirectLoop, describe_reqwest};

/// Options shared by `apply` (bundle downloads), `check` and `bin sync`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Extra PEM CA certificates trusted in addition to the system store.
    pub ca_certs: Vec<PathBuf>,
    /// Extra request headers (e.g. `Authorization`). Values are secrets.
    pub headers: Vec<(String, String)>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Follow redirects to other hosts (downloads) or stop there so the
    /// redirect can be reported (`check`).
    pub cross_host_redirects: bool,
    /// `host:port`s the `headers` are sent to: the hosts a command was
    /// pointed at. A token for the company's mirror must not travel to an
    /// upstream registry, a cache mirror elsewhere or a redirect target.
    pub header_hosts: Vec<String>,
}

impl Options {
    /// Allows the headers for the host of `url` (a URL template is fine: only
    /// its scheme and authority matter).
    pub fn allow_headers_for(&mut self, url: &str) {
        if let Some(key) = url::Url::parse(url).ok().as_ref().and_then(host_key)
            && !self.header_hosts.contains(&key)
        {
            self.header_hosts.push(key);
        }
    }
}

/// `host:port` of a URL (the port as used, defaults included).
pub fn host_key(u: &url::Url) -> Option<String> {
    Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?))
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ca_certs: Vec::new(),
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            // Zoi allows 60 s per request; a mirror slower than that fails
            // for Zoi too.
            timeout: Duration::from_secs(60),
            cross_host_redirects: true,
            header_hosts: Vec::new(),
        }
    }
}

pub const USER_AGENT: &str = concat!("zoi-mirror/", env!("CARGO_PKG_VERSION"));

/// A client with the command's options: TLS roots, timeouts, headers for
/// the allowed hosts, and redirects followed within a host by reqwest and
/// across hosts by [`Http::send`] (without the headers), when allowed.
#[derive(Clone)]
pub struct Http {
    pub client: reqwest::Client,
    headers: reqwest::header::HeaderMap,
    header_hosts: Vec<String>,
    follow_other_hosts: bool,
}

impl Http {
    pub fn new(opts: &Options) -> Result<Http> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &opts.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("invalid header name {name:?}"))?;
            let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                anyhow::anyhow!("invalid value for header {name} (value not shown)")
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let mut b = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.timeout)
            .redirect(redirect_policy())
            .dns_resolver(Arc::new(Resolver));
        for path in &opts.ca_certs {
            // Commands check these files up front (`net_options`); a caller
            // that did not still gets the same words.
            let certs = read_ca_certs(path)
                .map_err(|p| anyhow::anyhow!("CA certificate {}: {p}", path.display()))?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        Ok(Http {
            client: b.build()?,
            headers,
            header_hosts: opts.header_hosts.clone(),
            follow_other_hosts: opts.cross_host_redirects,
        })
    }

    fn headers_for(&self, url: &url::Url) -> reqwest::header::HeaderMap {
        if self.headers.is_empty() {
            return reqwest::header::HeaderMap::new();
        }
        match host_key(url) {
            Some(k) if self.header_hosts.contains(&k) => self.headers.clone(),
            _ => reqwest::header::HeaderMap::new(),
        }
    }

    /// Sends one request (with `extra` headers and an optional timeout
    /// overriding the client's), following redirects to other hosts when
    /// the options allow it — each hop carrying only the headers allowed for
    /// its own host.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &url::Url,
        extra: &[(reqwest::header::HeaderName, String)],
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        // The URL of a redirect being followed; until then `url` itself
        // (reqwest takes its URL by value: one copy per request, no more).
        let mut hop: Option<url::Url> = None;
        let mut hops = 0;
        loop {
            let at = hop.as_ref().unwrap_or(url);
            let mut req = self.client.request(method.clone(), at.clone());
            if !self.headers.is_empty() {
                req = req.headers(self.headers_for(at));
            }
            for (k, v) in extra {
                req = req.header(k.clone(), v.as_str());
            }
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            let resp = req.send().await?;
            let next = (self.follow_other_hosts && resp.status().is_redirection() && hops < 10)
                .then(|| resp.headers().get(reqwest::header::LOCATION))
                .flatten()
                .and_then(|l| l.to_str().ok())
                .and_then(|l| at.join(l).ok());
            match next {
                Some(n) => {
                    hop = Some(n);
                    hops += 1;
                }
                None => return Ok(resp),
            }
        }
    }
}

/// Why a CA certificate file (`--ca-cert`) cannot be used.
#[derive(Debug)]
pub enum CaCertProblem {
    NotFound,
    /// A folder where a file is wanted.
    Directory,
    /// There, but not readable (no permission, an I/O error).
    Unreadable(std::io::Error),
    /// No `-----BEGIN CERTIFICATE-----` block (a DER file, a key, a note).
    NoPem,
    /// A `CERTIFICATE` block that does not hold a valid certificate.
    NotACertificate(String),
}

impl std::fmt::Display for CaCertProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaCertProblem::NotFound => f.write_str("not found"),
            CaCertProblem::Directory => f.write_str("is a directory, not a file"),
            CaCertProblem::Unreadable(e) => write!(f, "cannot be read: {e}"),
            CaCertProblem::NoPem => f.write_str("holds no PEM certificate"),
            CaCertProblem::NotACertificate(e) => {
                write!(f, "holds a PEM block that is not a valid certificate ({e})")
            }
        }
    }
}

/// The certificates of a PEM file, each parsed: reqwest's own reader
/// skips what is not PEM, so a file holding none would be trusted as
/// "nothing" and every TLS handshake fail later, far from the cause.
pub fn read_ca_certs(path: &Path) -> Result<Vec<reqwest::Certificate>, CaCertProblem> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CaCertProblem::NotFound,
        _ if path.is_dir() => CaCertProblem::Directory,
        _ => CaCertProblem::Unreadable(e),
    })?;
    let bad = |e: &dyn std::fmt::Display| CaCertProblem::NotACertificate(e.to_string());
    let mut certs = Vec::new();
    for der in CertificateDer::pem_slice_iter(&pem) {
        let der = der.map_err(|e| bad(&e))?;
        // The same parse rustls makes when the client is built.
        rustls::RootCertStore::empty()
            .add(der.clone())
            .map_err(|e| bad(&e))?;
        certs.push(reqwest::Certificate::from_der(&der).map_err(|e| bad(&e))?);
    }
    if certs.is_empty() {
        return Err(CaCertProblem::NoPem);
    }
    Ok(certs)
}

/// GETs a small file (a bundle member) and returns its bytes; any status
/// other than 2xx is an error.
pub async fn fetch(http: &Http, url: &url::Url) -> Result<Vec<u8>> {
    let resp = http
        .send(reqwest::Method::GET, url, &[], None)
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe_reqwest(&e)))?;
    let status = resp.status();
    if !status.is_success() {
        anyhow::bail!("HTTP {status}");
    }
    Ok(resp.bytes().await?.to_vec())
}

/// `fetch` for code that is not async.
pub fn fetch_blocking(opts: &Options, url: &url::Url) -> Result<Vec<u8>> {
    crate::runtime::block_on(crate::runtime::Threads::One, async {
        let http = Http::new(opts)?;
        fetch(&http, url).await
    })?
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
            attempt.error(RedirectLoop)
        } else if first_host.is_some_and(|h| h != here) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// The system resolver (`getaddrinfo`, as reqwest's default), with its
/// failures typed as [`DnsError`].
struct Resolver;

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(|e| Box::new(DnsError(e)) as Box<dyn std::error::Error + Send + Sync>)?;
            let addrs: Vec<SocketAddr> = addrs.collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
