//! The one retry policy every download and probe follows: which failures
//! are worth another attempt ([`retryable`]), and how long to wait before
//! it — what the server asked for in `Retry-After` (seconds or an HTTP
//! date, capped at 60 s), else exponential backoff with jitter.

use std::time::{Duration, SystemTime};

use super::problem::{Kind, Problem};

/// Whether a failure may go away on its own: a slow, dropped or refused
/// connection, a body cut short, or an answer whose status says so
/// ([`retryable_status`]). Anything else (a 404, a 400, a bad certificate,
/// a name that does not resolve) fails the same way next time. An
/// `http_error` without a status (a store's own failure) is retried, as a
/// 5xx would be.
pub fn retryable(problem: &Problem) -> bool {
    match problem.kind {
        Kind::Timeout
        | Kind::Truncated
        | Kind::ConnectionReset
        | Kind::ConnectRefused
        | Kind::Connect => true,
        Kind::HttpError => problem.status.is_none_or(retryable_status),
        _ => false,
    }
}

/// The statuses worth another attempt: a 5xx (the server failed), 408 (it
/// gave up waiting for the request), 425 (it will take the request once
/// the handshake is done) and 429 (rate limited). Every other 4xx is the
/// request's fault and gets the same answer next time (RFC 9110 §15.5).
pub fn retryable_status(status: u16) -> bool {
    status >= 500 || matches!(status, 408 | 425 | 429)
}

/// One failed attempt: the problem, and the wait the server asked for.
#[derive(Debug)]
pub struct Failed {
    pub problem: Problem,
    pub retry_after: Option<Duration>,
}

impl From<Problem> for Failed {
    fn from(problem: Problem) -> Self {
        Failed {
            problem,
            retry_after: None,
        }
    }
}

/// The attempts of one request: call [`Retry::next`] after each failure.
#[derive(Debug)]
pub struct Retry {
    retries: u32,
    attempts: u32,
}

impl Retry {
    /// Up to `retries` attempts after the first.
    pub fn new(retries: u32) -> Self {
        Retry {
            retries,
            attempts: 0,
        }
    }

    /// Counts an attempt about to be made.
    pub fn attempt(&mut self) {
        self.attempts += 1;
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After a failed attempt: waits as the policy says and returns `Ok`
    /// when another attempt is due, or hands the problem back when not.
    pub async fn next(&mut self, failed: Failed) -> Result<(), Problem> {
        if self.attempts > self.retries || !retryable(&failed.problem) {
            return Err(failed.problem);
        }
        let wait = failed.retry_after.unwrap_or_else(|| backoff(self.attempts));
        tokio::time::sleep(wait).await;
        Ok(())
    }
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
pub fn retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s.min(60)));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or_default()
            .min(Duration::from_secs(60)),
    )
}

/// The `Retry-After` of a response, if it has a usable one.
pub fn retry_after_of(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after)
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
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = retry_after(&soon).expect("a date parses");
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(
            backoff(1) >= Duration::from_millis(200) && backoff(1) <= Duration::from_millis(300)
        );
        assert!(backoff(3) >= Duration::from_millis(800));
        assert!(backoff(30) <= Duration::from_millis(15_000));
    }

    #[tokio::test]
    async fn the_policy_stops_at_the_limit_and_on_lasting_failures() {
        // The server's wait is taken as given (zero here: no sleeping).
        let p = |kind| Failed {
            problem: Problem::new(kind, "x"),
            retry_after: Some(Duration::ZERO),
        };
        let mut r = Retry::new(1);
        r.attempt();
        assert!(r.next(p(Kind::HttpError)).await.is_ok());
        r.attempt();
        assert!(r.next(p(Kind::HttpError)).await.is_err());
        assert_eq!(r.attempts(), 2);
        let mut r = Retry::new(5);
        r.attempt();
        assert!(r.next(p(Kind::NotFound)).await.is_err());
        let kind = |k| retryable(&Problem::new(k, "x"));
        assert!(!kind(Kind::Tls) && !kind(Kind::Dns));
        assert!(kind(Kind::HttpError), "a store failure without a status");
    }

    #[test]
    fn only_server_errors_and_a_few_client_errors_are_retried() {
        let status = |s| retryable(&Problem::new(Kind::HttpError, "x").with_status(s));
        for s in [500, 502, 503, 504, 408, 425, 429] {
            assert!(status(s), "{s}");
        }
        for s in [400, 405, 409, 412, 416, 451, 206] {
            assert!(!status(s), "{s}");
        }
    }
}
