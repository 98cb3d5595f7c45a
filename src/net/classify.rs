//! Sorting a transport failure into a [`Kind`] by what the error *is*, not
//! by what its text says: the source chain of a `reqwest::Error` is walked
//! and each link downcast (`std::io::Error` and its kind, the `rustls`
//! error inside one, `hyper::Error`), as lychee's `retry.rs` does. Error
//! texts change between library versions; types and `io::ErrorKind`s do
//! not.
//!
//! Two failures carry no public type in reqwest's stack, so the client
//! gives them one: a failed name lookup comes from our resolver wrapped in
//! [`DnsError`] (`net::client` installs it), and the redirect policy
//! stops a loop with [`RedirectLoop`].

use std::error::Error as StdError;
use std::fmt;
use std::io;

use super::problem::{Kind, Problem};

/// A name lookup that failed (our resolver's error type). It shows as the
/// lookup's own error and has no source, so the root cause printed is the
/// resolver's message.
#[derive(Debug)]
pub struct DnsError(pub io::Error);

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for DnsError {}

/// The redirect policy's verdict on a URL that redirects back to itself or
/// more than ten times.
#[derive(Debug)]
pub struct RedirectLoop;

impl fmt::Display for RedirectLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("redirect loop")
    }
}

impl StdError for RedirectLoop {}

/// Sorts a transport error into a kind, with [`describe_reqwest`]'s message.
pub fn classify(e: &reqwest::Error) -> Problem {
    Problem::new(transport_kind(e), describe_reqwest(e))
}

/// Sorts an error met while reading a body: the connection ending before
/// the announced length is a truncated body, not a failure to connect.
pub fn classify_body(e: &reqwest::Error) -> Problem {
    let kind = transport_kind(e);
    if kind == Kind::Timeout {
        return Problem::new(kind, describe_reqwest(e));
    }
    if e.is_body() || e.is_decode() || matches!(kind, Kind::Connect | Kind::ConnectionReset) {
        let msg = describe_reqwest(e).replacen("request failed", "the body was cut short", 1);
        return Problem::new(Kind::Truncated, msg);
    }
    Problem::new(kind, describe_reqwest(e))
}

fn transport_kind(e: &reqwest::Error) -> Kind {
    if e.is_timeout() {
        return Kind::Timeout;
    }
    if e.is_redirect() {
        return Kind::RedirectLoop;
    }
    let mut link: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(err) = link {
        if let Some(kind) = link_kind(err, e.is_connect()) {
            return kind;
        }
        link = err.source();
    }
    Kind::Connect
}

/// What one link of the chain says, if anything.
fn link_kind(err: &(dyn StdError + 'static), connecting: bool) -> Option<Kind> {
    if err.is::<DnsError>() {
        return Some(Kind::Dns);
    }
    if err.is::<rustls::Error>() {
        return Some(Kind::Tls);
    }
    if let Some(io) = err.downcast_ref::<io::Error>() {
        // `io::Error::source` skips the error it wraps: look inside.
        if let Some(inner) = io.get_ref()
            && let Some(kind) = link_kind(inner, connecting)
        {
            return Some(kind);
        }
        return match io.kind() {
            io::ErrorKind::TimedOut => Some(Kind::Timeout),
            io::ErrorKind::ConnectionRefused => Some(Kind::ConnectRefused),
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Some(Kind::ConnectionReset),
            // The peer hanging up while we connect is the TLS handshake
            // failing (a plain TCP connect cannot end early); afterwards it
            // is a dropped connection.
            io::ErrorKind::UnexpectedEof if connecting => Some(Kind::Tls),
            io::ErrorKind::UnexpectedEof => Some(Kind::ConnectionReset),
            _ => None,
        };
    }
    if let Some(h) = err.downcast_ref::<hyper::Error>() {
        if h.is_timeout() {
            return Some(Kind::Timeout);
        }
        if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
            return Some(Kind::ConnectionReset);
        }
    }
    None
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
    let mut source = StdError::source(e);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::client::{Http, Options};

    async fn kind_of(url: &str) -> Kind {
        let http = Http::new(&Options::default()).unwrap();
        let e = http
            .send(
                reqwest::Method::GET,
                &url::Url::parse(url).unwrap(),
                &[],
                None,
            )
            .await
            .expect_err("the request fails");
        classify(&e).kind
    }

    #[tokio::test]
    async fn failures_are_known_by_their_type() {
        // `.invalid` never resolves (RFC 2606): the resolver's error type.
        assert_eq!(kind_of("http://zoi-mirror.invalid/x").await, Kind::Dns);
        // A port nobody listens on: io::ErrorKind::ConnectionRefused.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert_eq!(
            kind_of(&format!("http://127.0.0.1:{port}/x")).await,
            Kind::ConnectRefused
        );
    }
}
