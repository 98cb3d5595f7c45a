//! The HTTP client every network-facing command shares.
//!
//! One place decides TLS roots (the OS store plus `--ca-cert` files for
//! corporate CAs), proxies (reqwest reads `HTTPS_PROXY`/`HTTP_PROXY`/
//! `ALL_PROXY`/`NO_PROXY`, the same variables Zoi honours), timeouts, the
//! User-Agent and the auth header — and how URLs and secrets are shown:
//! credentials never reach a log line, an error message or JSON output.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

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
        }
    }
}

pub const USER_AGENT: &str = concat!("zoi-mirror/", env!("CARGO_PKG_VERSION"));

/// Builds the async client for `opts`.
pub fn client(opts: &Options) -> Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &opts.headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .with_context(|| format!("invalid header name {name:?}"))?;
        let mut value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| anyhow::anyhow!("invalid value for header {name} (not shown)"))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let mut b = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .default_headers(headers)
        .connect_timeout(opts.connect_timeout)
        .timeout(opts.timeout)
        .redirect(if opts.cross_host_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            super::fetch::redirect_policy()
        });
    for path in &opts.ca_certs {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read CA certificate {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    Ok(b.build()?)
}

/// GETs a small file (a bundle member) and returns its bytes; any status
/// other than 2xx is an error.
pub async fn fetch(client: &reqwest::Client, url: &url::Url) -> Result<Vec<u8>> {
    let resp = client
        .get(url.clone())
        .send()
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let c = client(opts)?;
        fetch(&c, url).await
    })
}

/// A reqwest error as one line, without the URL (callers print a redacted
/// one) and with the root cause.
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(root) = last {
        msg.push_str(": ");
        msg.push_str(&root);
    }
    msg
}

/// A URL fit for output: user info replaced by `***`.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("***");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => url.to_string(),
        // Not a URL (an scp-like git remote): hide anything before '@'.
        Err(_) => match url.split_once('@') {
            Some((_, rest)) if url.contains("://") => format!("***@{rest}"),
            _ => url.to_string(),
        },
    }
}

/// Removes every URL's credentials from git's messages.
pub fn scrub(text: &str, urls: &[&str]) -> String {
    let mut out = text.to_string();
    for u in urls {
        let r = redact(u);
        if r != *u {
            out = out.replace(u, &r);
        }
    }
    // git sometimes prints URLs it rewrote itself; catch `scheme://user:pw@`.
    let re_like = out
        .split_whitespace()
        .filter(|w| w.contains("://") && w.contains('@'))
        .map(|w| {
            (
                w.to_string(),
                redact(w.trim_matches(|c| c == '\'' || c == '"')),
            )
        })
        .collect::<Vec<_>>();
    for (raw, red) in re_like {
        if !red.contains("://***@") {
            continue;
        }
        out = out.replace(raw.trim_matches(|c| c == '\'' || c == '"'), &red);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_credentials_from_git_messages() {
        let msg = "fatal: unable to access 'https://bob:s3cret@git.example/z.git/': refused";
        let out = scrub(msg, &["https://bob:s3cret@git.example/z.git"]);
        assert!(!out.contains("s3cret") && !out.contains("bob"), "{out}");
        let out = scrub("remote: https://u:p@h/x failed", &[]);
        assert!(!out.contains("u:p@"), "{out}");
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact("https://u:secret@h/x"), "https://***@h/x");
        assert_eq!(redact("https://token@h/x"), "https://***@h/x");
        assert_eq!(redact("https://h/x"), "https://h/x");
        assert_eq!(redact("git@h:z.git"), "git@h:z.git");
    }
}
