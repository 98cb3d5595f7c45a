//! One HTTP request, done the way a careful client would: bounded
//! concurrency (global and per host), retries as [`super::retry`] says
//! (exponential backoff with jitter on 5xx, 408, 425 and 429 — honouring
//! `Retry-After` —, resets and timeouts), and every failure classified into a kind with
//! its own message and hint ([`super::classify`], [`super::reply`]).
//!
//! Connection reuse comes from sharing one `reqwest::Client` (keep-alive
//! pools, HTTP/2 over TLS when the server offers it via ALPN).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::classify::{classify, classify_body};
use super::client::Http;
use super::problem::{Kind, Problem};
use super::reply::Reply;
use super::retry::{Failed, Retry, retry_after_of, retryable_status};

/// How to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Head,
    /// `GET` with `Range: bytes=0-0`.
    FirstByte,
    /// `GET`, keeping at most this many body bytes.
    Get(usize),
}

/// The outcome of a request, after retries.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<Reply, Problem>,
    pub latency: Duration,
    pub attempts: u32,
}

pub struct Prober {
    pub http: Http,
    global: Arc<Semaphore>,
    /// One gate per `(host, port)`. A list, not a map: a check talks to a
    /// handful of hosts (registry, keys, the binary host, cache mirrors),
    /// and a scan of a few entries costs less per request than hashing a
    /// `host:port` string built for the lookup.
    per_host: Mutex<Vec<(String, u16, Arc<Semaphore>)>>,
    per_host_limit: usize,
    retries: u32,
}

impl Prober {
    pub fn new(http: Http, concurrency: usize, per_host: usize, retries: u32) -> Self {
        Prober {
            http,
            global: Arc::new(Semaphore::new(concurrency.max(1))),
            per_host: Mutex::new(Vec::new()),
            per_host_limit: per_host.max(1),
            retries,
        }
    }

    fn host_gate(&self, url: &url::Url) -> Arc<Semaphore> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(0);
        let mut gates = self.per_host.lock().expect("per-host gates");
        if let Some((_, _, gate)) = gates.iter().find(|(h, p, _)| *p == port && h == host) {
            return gate.clone();
        }
        let gate = Arc::new(Semaphore::new(self.per_host_limit));
        gates.push((host.to_string(), port, gate.clone()));
        gate
    }

    async fn once(&self, url: &url::Url, method: Method) -> Result<Reply, Failed> {
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
            .map_err(|e| Failed::from(classify(&e)))?;
        let headers = resp.headers();
        // Borrowed: only the two kept as text are copied out.
        let header =
            |name: reqwest::header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let mut reply = Reply {
            status: resp.status().as_u16(),
            content_type: header(reqwest::header::CONTENT_TYPE).map(str::to_string),
            content_length: header(reqwest::header::CONTENT_LENGTH).and_then(|v| v.parse().ok()),
            range_total: header(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.rsplit('/').next().and_then(|t| t.trim().parse().ok())),
            accept_ranges: header(reqwest::header::ACCEPT_RANGES)
                .is_some_and(|v| v.contains("bytes")),
            location: header(reqwest::header::LOCATION).map(str::to_string),
            body: Vec::new(),
        };
        let status = reply.status;
        if retryable_status(status) {
            let reason = resp.status().canonical_reason().unwrap_or_default();
            return Err(Failed {
                problem: Problem::new(Kind::HttpError, format!("HTTP {status} {reason}"))
                    .with_status(status),
                retry_after: retry_after_of(headers),
            });
        }
        if let Method::Get(max) = method {
            let mut resp = resp;
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| Failed::from(classify_body(&e)))?
            {
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
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| Failed::from(classify_body(&e)))?
            {
                reply.body.extend_from_slice(&chunk[..chunk.len().min(16)]);
                if reply.body.len() >= 16 {
                    break;
                }
            }
        }
        Ok(reply)
    }

    /// Sends with retries. Statuses not worth another attempt
    /// ([`retryable_status`]) are returned as replies for the caller to
    /// judge.
    pub async fn send(&self, url: &url::Url, method: Method) -> Outcome {
        let _global = self.global.acquire().await.expect("semaphore open");
        let gate = self.host_gate(url);
        let _host = gate.acquire().await.expect("semaphore open");
        let start = Instant::now();
        let mut retry = Retry::new(self.retries);
        let result = loop {
            retry.attempt();
            match self.once(url, method).await {
                Ok(reply) => break Ok(reply),
                Err(failed) => {
                    if let Err(problem) = retry.next(failed).await {
                        break Err(problem);
                    }
                }
            }
        };
        Outcome {
            result,
            latency: start.elapsed(),
            attempts: retry.attempts(),
        }
    }
}
