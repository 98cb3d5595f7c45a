//! An in-process HTTP server for fault injection only: the misbehaviours a
//! real server cannot be told to produce on cue (500 then 200, 429 with
//! Retry-After, resets, stalls, redirect loops, auth, TLS with a private
//! CA). Everything healthy is tested against real nginx instead.
//!
//! Written on raw TCP on purpose: a reset or a stalled body must be exactly
//! that, not whatever a server framework would make of it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What to do for requests whose path starts with a prefix.
#[derive(Clone)]
pub enum Fault {
    /// `n` times 500, then 200 with the body.
    FailThenOk(usize, Vec<u8>),
    /// `n` times 429 with `Retry-After: secs`, then 200.
    RateLimitThenOk(usize, u64, Vec<u8>),
    /// Close the connection with a TCP reset after reading the request.
    Reset,
    /// Send headers promising `len` bytes, some of them, then hang.
    Stall,
    /// 302 to `to` (another path on this server).
    Redirect(String),
    /// 401 unless `Authorization` equals the value; then 200 with the body.
    Auth(String, Vec<u8>),
    /// 200 with a body and headers.
    Ok(Vec<u8>, Vec<(String, String)>),
    /// HEAD answers 405; GET honours `Range: bytes=N-M` (206).
    NoHead(Vec<u8>),
    /// The first GET sends half the body and drops the connection; later
    /// ones honour `Range: bytes=N-` (206) as a resumable server does.
    CutOnceThenRange(Vec<u8>),
    /// 200 with a body echoing the request's `Authorization` value (a
    /// misconfigured debug endpoint).
    EchoAuth,
    /// Headers promising the whole body, half of it, then the connection
    /// closes: a truncated body, every time.
    Truncate(Vec<u8>),
    /// This status (`"400 Bad Request"`) with the body, every time.
    Status(&'static str, Vec<u8>),
}

/// An S3-style error body whose `<Code>` carries terminal controls (a
/// colour, a window title, a bell): what a hostile or broken server can send.
pub const EVIL_S3_BODY: &[u8] =
    b"<Error><Code>\x1b[31mEvil\x1b]0;pwned\x07</Code><Message>x</Message></Error>";

pub struct FaultServer {
    pub addr: SocketAddr,
    pub hits: Arc<Mutex<HashMap<String, usize>>>,
    pub seen_headers: Arc<Mutex<Vec<String>>>,
    _rt: tokio::runtime::Runtime,
}

async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
        if buf.len() > 64 << 10 {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn response(status: &str, headers: &[(String, String)], body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    routes: Arc<Vec<(String, Fault)>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    seen: Arc<Mutex<Vec<String>>>,
) -> Option<S> {
    loop {
        let head = read_head(&mut s).await?;
        seen.lock().unwrap().push(head.clone());
        let mut first = head.lines().next().unwrap_or_default().split_whitespace();
        let method = first.next().unwrap_or_default().to_string();
        let path = first.next().unwrap_or_default().to_string();
        let head_only = method == "HEAD";
        let header = |name: &str| {
            head.lines()
                .find(|l| {
                    l.to_ascii_lowercase()
                        .starts_with(&format!("{}:", name.to_ascii_lowercase()))
                })
                .map(|l| l.split_once(':').unwrap().1.trim().to_string())
        };
        let Some((prefix, fault)) = routes.iter().find(|(p, _)| path.starts_with(p.as_str()))
        else {
            s.write_all(&response("404 Not Found", &[], b"not found", head_only))
                .await
                .ok()?;
            continue;
        };
        let n = {
            let mut h = hits.lock().unwrap();
            let e = h.entry(prefix.clone()).or_default();
            *e += 1;
            *e
        };
        let bytes = match fault {
            Fault::FailThenOk(k, _) if n <= *k => {
                response("500 Internal Server Error", &[], b"oops", head_only)
            }
            Fault::FailThenOk(_, body) => response("200 OK", &[], body, head_only),
            Fault::RateLimitThenOk(k, secs, _) if n <= *k => response(
                "429 Too Many Requests",
                &[("Retry-After".into(), secs.to_string())],
                b"slow down",
                head_only,
            ),
            Fault::RateLimitThenOk(_, _, body) => response("200 OK", &[], body, head_only),
            Fault::Reset => return None, // dropped with SO_LINGER 0 by the caller
            Fault::Stall => {
                let mut out = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial".to_vec();
                if head_only {
                    out.truncate(out.len() - 7);
                }
                s.write_all(&out).await.ok()?;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return None;
            }
            Fault::Redirect(to) => response(
                "302 Found",
                &[("Location".into(), to.clone())],
                b"",
                head_only,
            ),
            Fault::Auth(want, body) => {
                if header("authorization").as_deref() == Some(want.as_str()) {
                    response(
                        "200 OK",
                        &[("Accept-Ranges".into(), "bytes".into())],
                        body,
                        head_only,
                    )
                } else {
                    response(
                        "401 Unauthorized",
                        &[("WWW-Authenticate".into(), "Bearer".into())],
                        b"no",
                        head_only,
                    )
                }
            }
            Fault::Ok(body, headers) => response("200 OK", headers, body, head_only),
            Fault::Status(status, body) => response(status, &[], body, head_only),
            Fault::EchoAuth => {
                let body = format!("down: {}\n", header("authorization").unwrap_or_default());
                response("200 OK", &[], body.as_bytes(), head_only)
            }
            Fault::Truncate(body) => {
                let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                    .into_bytes();
                if !head_only {
                    out.extend_from_slice(&body[..body.len() / 2]);
                }
                s.write_all(&out).await.ok()?;
                s.flush().await.ok()?;
                if head_only {
                    continue;
                }
                return None;
            }
            Fault::NoHead(_) if head_only => response(
                "405 Method Not Allowed",
                &[("Allow".into(), "GET".into())],
                b"",
                true,
            ),
            Fault::NoHead(body) => {
                let range = header("range").and_then(|r| {
                    let (a, b) = r.strip_prefix("bytes=")?.split_once('-')?;
                    Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?))
                });
                match range {
                    Some((a, b)) if a <= b && b < body.len() => response(
                        "206 Partial Content",
                        &[(
                            "Content-Range".into(),
                            format!("bytes {a}-{b}/{}", body.len()),
                        )],
                        &body[a..=b],
                        false,
                    ),
                    _ => response("200 OK", &[], body, false),
                }
            }
            Fault::CutOnceThenRange(body) => {
                let from = header("range")
                    .and_then(|r| r.strip_prefix("bytes=").map(str::to_string))
                    .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
                if n == 1 && !head_only {
                    let mut out =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                            .into_bytes();
                    out.extend_from_slice(&body[..body.len() / 2]);
                    s.write_all(&out).await.ok()?;
                    s.flush().await.ok()?;
                    return None;
                }
                match from {
                    Some(k) if k < body.len() => response(
                        "206 Partial Content",
                        &[(
                            "Content-Range".into(),
                            format!("bytes {k}-{}/{}", body.len() - 1, body.len()),
                        )],
                        &body[k..],
                        head_only,
                    ),
                    _ => response(
                        "200 OK",
                        &[("Accept-Ranges".into(), "bytes".into())],
                        body,
                        head_only,
                    ),
                }
            }
        };
        s.write_all(&bytes).await.ok()?;
        s.flush().await.ok()?;
    }
}

impl FaultServer {
    /// Plain HTTP.
    pub fn start(routes: Vec<(&str, Fault)>) -> FaultServer {
        Self::start_inner(routes, None)
    }

    /// HTTPS with the given rustls config.
    pub fn start_tls(
        routes: Vec<(&str, Fault)>,
        tls: Arc<tokio_rustls::rustls::ServerConfig>,
    ) -> FaultServer {
        Self::start_inner(routes, Some(tls))
    }

    fn start_inner(
        routes: Vec<(&str, Fault)>,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    ) -> FaultServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let routes: Arc<Vec<(String, Fault)>> = Arc::new(
            routes
                .into_iter()
                .map(|(p, f)| (p.to_string(), f))
                .collect(),
        );
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let (h, sn) = (hits.clone(), seen.clone());
        rt.spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let (routes, hits, seen, tls) =
                    (routes.clone(), h.clone(), sn.clone(), tls.clone());
                tokio::spawn(async move {
                    let std = sock.into_std().unwrap();
                    // A reset, not a FIN, when the handler drops the socket.
                    socket2::SockRef::from(&std)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                    let sock = tokio::net::TcpStream::from_std(std).unwrap();
                    match tls {
                        None => {
                            if let Some(s) = serve(sock, routes, hits, seen).await {
                                drop(s);
                            }
                        }
                        Some(cfg) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                            if let Ok(s) = acceptor.accept(sock).await {
                                let _ = serve(s, routes, hits, seen).await;
                            }
                        }
                    }
                });
            }
        });
        FaultServer {
            addr,
            hits,
            seen_headers: seen,
            _rt: rt,
        }
    }

    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn hits(&self, prefix: &str) -> usize {
        self.hits.lock().unwrap().get(prefix).copied().unwrap_or(0)
    }
}

/// A private CA and a server certificate for 127.0.0.1 signed by it.
pub struct TestCa {
    pub ca_pem: String,
    pub server: Arc<tokio_rustls::rustls::ServerConfig>,
    /// The server certificate and its key, PEM, for a real server
    /// (`Nginx::start_tls`).
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

pub fn test_ca() -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "zoi-mirror test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let server = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    TestCa {
        ca_pem: ca.pem(),
        server: Arc::new(server),
        server_cert_pem: cert.pem(),
        server_key_pem: key.serialize_pem(),
    }
}
