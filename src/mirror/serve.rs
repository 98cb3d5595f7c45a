//! `serve`: a small, safe static file server for a binary tree and bundles.
//!
//! Built on axum and tower-http's `ServeDir`, which already does what Zoi
//! needs of a mirror: GET and HEAD, byte ranges (206/416, Zoi resumes
//! downloads), `Content-Length`, `ETag` and `Last-Modified` with
//! conditional requests (304). On top of it we add what a file server on
//! someone's laptop must not get wrong:
//! - nothing outside DIR is ever served: `..` and its encodings are refused
//!   by `ServeDir`, and every path is canonicalised by our backend so a
//!   symlink leading out of DIR is a 404;
//! - no directory listings unless `--list`;
//! - `.hash`, `.size`, `.files` as `text/plain`, as Zoi's metadata is text;
//! - an access log on stderr; clean shutdown on Ctrl-C and SIGTERM;
//! - for people, a status page rendered from the `sync` beacon
//!   (`/_status`, and `/` when DIR has no `index.html`), and `/metrics` in
//!   the Prometheus text format, both read from the beacon at each request.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeDir;
use tower_http::services::fs::{Backend, TokioBackend, TokioFile};

use crate::mirror::status;

/// A `ServeDir` backend that refuses anything resolving outside the root.
#[derive(Clone)]
struct Contained {
    root: Arc<PathBuf>,
}

impl Contained {
    async fn check(root: Arc<PathBuf>, path: PathBuf) -> io::Result<PathBuf> {
        let real = tokio::fs::canonicalize(&path).await?;
        if real.starts_with(root.as_path()) {
            Ok(real)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                "outside the served directory",
            ))
        }
    }
}

type BoxFut<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl Backend for Contained {
    type File = TokioFile;
    type Metadata = std::fs::Metadata;
    type OpenFuture = BoxFut<TokioFile>;
    type MetadataFuture = BoxFut<std::fs::Metadata>;

    fn open(&self, path: PathBuf) -> Self::OpenFuture {
        let root = self.root.clone();
        Box::pin(async move {
            let real = Contained::check(root, path).await?;
            TokioBackend.open(real).await
        })
    }

    fn metadata(&self, path: PathBuf) -> Self::MetadataFuture {
        let root = self.root.clone();
        Box::pin(async move {
            let real = Contained::check(root, path).await?;
            TokioBackend.metadata(real).await
        })
    }
}

#[derive(Clone)]
struct Shared {
    root: Arc<PathBuf>,
    list: bool,
}

/// Options for [`serve`].
#[derive(Debug, Clone)]
pub struct Options {
    pub root: PathBuf,
    pub list: bool,
    /// Where each access log line goes (the command passes the printer's
    /// log line); `None`: no log. The library never prints.
    pub access_log: Option<fn(&str)>,
}

fn content_type_for(path: &str) -> Option<&'static str> {
    let ext = path.rsplit('.').next()?;
    Some(match ext {
        "hash" | "size" | "files" | "txt" => "text/plain; charset=utf-8",
        "sig" | "asc" => "application/pgp-signature",
        "zpa" | "zst" | "zsa" => "application/zstd",
        "lua" => "text/x-lua; charset=utf-8",
        "yaml" | "yml" => "application/yaml",
        "json" => "application/json",
        "sh" => "text/x-shellscript; charset=utf-8",
        "ps1" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// The directory a request path names, if it exists inside the root.
fn contained_dir(root: &Path, uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(uri_path)?;
    let mut p = root.to_path_buf();
    for c in Path::new(decoded.trim_start_matches('/')).components() {
        match c {
            Component::Normal(n) => p.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let real = std::fs::canonicalize(&p).ok()?;
    (real.starts_with(root) && real.is_dir()).then_some(real)
}

/// The decoded path of a request URI; `None` when it is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

fn listing(dir: &Path, uri_path: &str) -> Response {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let mut n = e.file_name().to_string_lossy().into_owned();
                    if e.path().is_dir() {
                        n.push('/');
                    }
                    n
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let ctx = minijinja::context! { path => uri_path, names => names };
    match crate::bundle::render::render_page("listing.html", ctx) {
        Ok(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}\n")).into_response(),
    }
}

/// The context of the status page, from the beacon (`None`: none yet).
fn status_context(beacon: Option<&status::Beacon>, now: status::Time) -> minijinja::Value {
    use minijinja::context;
    let Some(b) = beacon else {
        return context! {
            title => "zoi-mirror status",
            tool_version => env!("CARGO_PKG_VERSION"),
            published => (),
            rows => Vec::<minijinja::Value>::new(),
            failures => Vec::<minijinja::Value>::new(),
            last_run => context! { outcome => "no sync has run", finished => "", ago => "never", upstream_tip => "" },
        };
    };
    let gap = |g: &status::Gap| {
        context! {
            package => g.package, version => g.version,
            platform => g.platform.clone().unwrap_or_default(),
            artifact => g.artifact, kind => g.kind, message => g.message,
        }
    };
    let run = &b.last_run;
    // The failures clients face (published partial), else the latest run's.
    let failures: Vec<minijinja::Value> = match &b.published {
        Some(p) if run.outcome != status::SyncOutcome::NotPublished.as_str() => {
            p.failures.iter().map(gap).collect()
        }
        _ => run.failures.iter().map(gap).collect(),
    };
    let published = b.published.as_ref().map(|p| {
        context! {
            upstream => p.upstream, branch => p.branch, upstream_tip => p.upstream_tip,
            upstream_tip_time => p.upstream_tip_time.as_ref().map(|t| t.utc.clone()).unwrap_or_default(),
            registry => p.registry, overlay_commit => p.overlay_commit, complete => p.complete,
            finished => p.finished.utc, ago => status::ago(now.unix - p.finished.unix),
            duration => format!("{:.1}", p.duration_ms as f64 / 1000.0),
            bytes_fetched => p.bytes_fetched, failures => p.failures.iter().map(gap).collect::<Vec<_>>(),
        }
    });
    let rows: Vec<minijinja::Value> = b
        .published
        .iter()
        .flat_map(|p| p.counts.iter())
        .map(|c| {
            let state = if c.failed > 0 {
                "failed"
            } else if c.placed + c.up_to_date == 0 {
                "unavailable"
            } else {
                "complete"
            };
            context! {
                tier => c.tier, platform => c.platform, artifact => c.artifact, state => state,
                placed => c.placed, up_to_date => c.up_to_date, not_available => c.not_available,
                failed => c.failed, bytes => c.bytes,
            }
        })
        .collect();
    context! {
        title => "zoi-mirror status",
        tool_version => b.tool_version,
        published => published,
        rows => rows,
        failures => failures,
        last_run => context! {
            outcome => run.outcome, finished => run.finished.utc,
            ago => status::ago(now.unix - run.finished.unix), upstream_tip => run.upstream_tip,
        },
    }
}

/// The status page or `/metrics`, when `path` names one of them.
fn generated(root: &Path, path: &str) -> Option<Response> {
    // `/` only on a host `sync` fills (a beacon is there) and without its
    // own index.html: elsewhere `/` stays a 404, as no listings are served.
    let page = path == "/_status"
        || (path == "/"
            && !root.join("index.html").is_file()
            && root.join(status::BEACON_FILE).is_file());
    if !page && path != "/metrics" {
        return None;
    }
    let beacon = status::Beacon::read(root);
    if page {
        return Some(
            match crate::bundle::render::render_page(
                "status.html",
                status_context(beacon.as_ref(), status::Time::now()),
            ) {
                Ok(html) => (
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    html,
                )
                    .into_response(),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}\n")).into_response(),
            },
        );
    }
    Some(
        (
            [
                (
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                ),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            status::metrics(beacon.as_ref()),
        )
            .into_response(),
    )
}

async fn around(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
    log: Option<fn(&str)>,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // Dotfiles (`.git/`, `.htpasswd`, our own `.part` downloads) are never
    // served.
    let hidden = percent_decode(&path).is_none_or(|p| p.split('/').any(|seg| seg.starts_with('.')));
    let resp = if hidden {
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    } else if method != Method::GET && method != Method::HEAD {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response()
    } else if let Some(r) = generated(&shared.root, &path) {
        r
    } else if path.ends_with('/') {
        match (shared.list, contained_dir(&shared.root, &path)) {
            (true, Some(dir)) => listing(&dir, &path),
            _ => (StatusCode::NOT_FOUND, "not found\n").into_response(),
        }
    } else {
        let mut resp = next.run(req).await;
        if (resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED)
            && let Some(ct) = content_type_for(&path)
        {
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        resp
    };
    if let Some(log) = log {
        let len = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        log(&format!(
            "{} {method} {path} {} {len} {:.1}ms",
            peer.ip(),
            resp.status().as_u16(),
            start.elapsed().as_secs_f64() * 1000.0
        ));
    }
    resp
}

/// The router serving `opts.root`.
pub fn router(opts: &Options) -> io::Result<Router> {
    let root = Arc::new(std::fs::canonicalize(&opts.root)?);
    let shared = Shared {
        root: root.clone(),
        list: opts.list,
    };
    let dir = ServeDir::with_backend(root.as_path(), Contained { root: root.clone() })
        .append_index_html_on_directories(false)
        .redirect_to_trailing_slash(false);
    let log = opts.access_log;
    Ok(Router::new()
        .fallback_service(dir)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            move |s, c, r, n| around(s, c, r, n, log),
        ))
        .with_state(shared))
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: &Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router(opts)?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn termination() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_text() {
        assert_eq!(
            content_type_for("/a/b.zpa.hash"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(content_type_for("/a/b.zpa"), Some("application/zstd"));
        assert_eq!(content_type_for("/a/b"), None);
    }

    #[test]
    fn dirs_outside_the_root_are_not_listed() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        assert!(contained_dir(&root, "/sub/").is_some());
        assert!(contained_dir(&root, "/../").is_none());
        assert!(contained_dir(&root, "/%2e%2e/").is_none());
    }
}
