//! `serve`: ranges, HEAD, conditional GET, containment, big files.
//!
//! Requests are written by hand on a TCP socket so that paths reach the
//! server exactly as an attacker would send them (an HTTP client library
//! would normalise `..` away before sending).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use crate::support::serve::Serve;
use crate::support::zm_cmd;

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn port(s: &Serve) -> u16 {
    s.url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Sends one raw request and reads the response (body up to Content-Length).
fn raw(s: &Serve, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    // The URL's own host: the server may listen on [::1].
    let authority = s.url.trim_start_matches("http://").trim_end_matches('/');
    let mut sock = TcpStream::connect(authority).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    sock.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    sock.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Resp {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    }
}

fn tree(root: &Path) {
    let d = root.join("www/core/linux/amd64/1.0.0");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("a-1.0.0-linux-amd64.zpa"),
        (0..=255u8).cycle().take(10_000).collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(
        d.join("a-1.0.0-linux-amd64.zpa.hash"),
        "abc  a-1.0.0-linux-amd64.zpa\n",
    )
    .unwrap();
    std::fs::write(root.join("secret.txt"), "top secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("secret.txt"), root.join("www/leak.txt")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("www/core"), root.join("www/inside")).unwrap();
}

const ZPA: &str = "/core/linux/amd64/1.0.0/a-1.0.0-linux-amd64.zpa";

#[test]
fn ranges_head_and_conditional_requests() {
    let home = tempfile::tempdir().unwrap();
    tree(home.path());
    let s = Serve::start(home.path(), &home.path().join("www"), &[]);
    let full: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();

    let r = raw(&s, "GET", ZPA, &[("Range", "bytes=0-0")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, [0]);
    assert_eq!(r.header("content-range"), Some("bytes 0-0/10000"));

    let r = raw(&s, "GET", ZPA, &[("Range", "bytes=-100")]);
    assert_eq!(r.status, 206, "suffix range");
    assert_eq!(r.body, full[9900..]);

    let r = raw(&s, "GET", ZPA, &[("Range", "bytes=5000-")]);
    assert_eq!((r.status, r.body.len()), (206, 5000));

    let r = raw(&s, "GET", ZPA, &[("Range", "bytes=20000-30000")]);
    assert_eq!(r.status, 416, "out of range");

    let r = raw(&s, "HEAD", ZPA, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10000"));
    assert!(r.body.is_empty());
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let etag = r.header("etag").expect("etag").to_string();
    let modified = r
        .header("last-modified")
        .expect("last-modified")
        .to_string();

    assert_eq!(raw(&s, "GET", ZPA, &[("If-None-Match", &etag)]).status, 304);
    assert_eq!(
        raw(&s, "GET", ZPA, &[("If-Modified-Since", &modified)]).status,
        304
    );
    assert_eq!(
        raw(&s, "GET", ZPA, &[("If-None-Match", "\"other\"")]).status,
        200
    );

    let r = raw(&s, "GET", &format!("{ZPA}.hash"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.body, b"abc  a-1.0.0-linux-amd64.zpa\n");

    assert_eq!(raw(&s, "POST", ZPA, &[]).status, 405);
}

#[test]
fn nothing_outside_the_directory_is_served_and_no_listings() {
    let home = tempfile::tempdir().unwrap();
    tree(home.path());
    let s = Serve::start(home.path(), &home.path().join("www"), &[]);
    for path in [
        "/../secret.txt",
        "/core/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/core/%2e%2e/%2e%2e/secret.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/leak.txt",
        "/core/",
        "/",
    ] {
        let r = raw(&s, "GET", path, &[]);
        assert!(
            matches!(r.status, 400 | 403 | 404),
            "{path}: HTTP {}",
            r.status
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains("top secret"),
            "{path}"
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains("root:"),
            "{path}"
        );
    }
    // a symlink that stays inside the directory is fine
    let r = raw(
        &s,
        "GET",
        "/inside/linux/amd64/1.0.0/a-1.0.0-linux-amd64.zpa.hash",
        &[],
    );
    assert_eq!(r.status, 200);

    // --list allows listings, still only inside
    let s = Serve::start(home.path(), &home.path().join("www"), &["--list"]);
    let r = raw(&s, "GET", "/core/", &[]);
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("<a href=\"linux/\">"));
    assert_eq!(raw(&s, "GET", "/%2e%2e/", &[]).status, 404);
}

#[test]
fn a_listing_links_every_name_to_itself_and_escapes_it() {
    let home = tempfile::tempdir().unwrap();
    let www = home.path().join("www");
    std::fs::create_dir_all(www.join("sub dir")).unwrap();
    for name in ["a#1.zpa", "b?2.zpa", "c%3.zpa", "<d>&\"e\".zpa"] {
        std::fs::write(www.join(name), b"x").unwrap();
    }
    let s = Serve::start(home.path(), &www, &["--list"]);
    let r = raw(&s, "GET", "/", &[]);
    assert_eq!(r.status, 200);
    let body = String::from_utf8_lossy(&r.body);
    for (href, text) in [
        ("a%231.zpa", "a#1.zpa"),
        ("b%3F2.zpa", "b?2.zpa"),
        ("c%253.zpa", "c%3.zpa"),
        ("%3Cd%3E%26%22e%22.zpa", "&lt;d&gt;&amp;&quot;e&quot;.zpa"),
        ("sub%20dir/", "sub dir&#x2f;"),
    ] {
        assert!(
            body.contains(&format!("<li><a href=\"{href}\">{text}</a></li>")),
            "{href}: {body}"
        );
    }
    // and each link fetches what it names
    assert_eq!(raw(&s, "GET", "/a%231.zpa", &[]).status, 200);
    assert_eq!(raw(&s, "GET", "/c%253.zpa", &[]).status, 200);
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_2_gb_file_is_streamed_with_bounded_memory() {
    let home = tempfile::tempdir().unwrap();
    let www = home.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let size: u64 = 2 << 30;
    // sparse: no disk space used, every byte still read and sent
    std::fs::File::create(www.join("big.zpa"))
        .unwrap()
        .set_len(size)
        .unwrap();
    let s = Serve::start(home.path(), &www, &["--quiet"]);
    let mut sock = TcpStream::connect(("127.0.0.1", port(&s))).unwrap();
    sock.write_all(b"GET /big.zpa HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = sock.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert!(total > size, "headers plus {size} bytes, got {total}");
    let hwm = vm_hwm_kib(s.child.id());
    assert!(
        hwm < 64 * 1024,
        "serve peaked at {} MiB for a 2 GiB file",
        hwm / 1024
    );
}

#[test]
fn index_on_start_writes_metadata_before_serving() {
    let home = tempfile::tempdir().unwrap();
    let www = home.path().join("www");
    let dir = www.join("core/linux/amd64/1.0.0");
    std::fs::create_dir_all(&dir).unwrap();
    let (zpa, _) = crate::support::archives::simple_zpa("hello", b"payload");
    std::fs::write(dir.join("hello-1.0.0-linux-amd64.zpa"), &zpa).unwrap();
    let s = Serve::start(home.path(), &www, &["--index-on-start", "--quiet"]);
    let r = raw(
        &s,
        "GET",
        "/core/linux/amd64/1.0.0/hello-1.0.0-linux-amd64.zpa.hash",
        &[],
    );
    assert_eq!(r.status, 200);
    let expected = format!(
        "{}  hello-1.0.0-linux-amd64.zpa\n",
        crate::support::sha512_hex(&zpa)
    );
    assert_eq!(String::from_utf8(r.body).unwrap(), expected);
}

#[test]
fn access_log_on_stderr_and_a_clean_stop_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    tree(home.path());
    let www = home.path().join("www");
    let out = crate::support::serve::one_request(
        home.path(),
        &["serve", www.to_str().unwrap(), "--port", "0"],
        &format!("HEAD {ZPA} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(out.status.code(), Some(0), "a clean exit on SIGTERM");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!("127.0.0.1 HEAD {ZPA} 200 10000")),
        "{log}"
    );
    assert!(log.trim_end().ends_with("stopped"), "{log}");
}

#[test]
fn dotfiles_are_never_served() {
    let home = tempfile::tempdir().unwrap();
    tree(home.path());
    std::fs::create_dir_all(home.path().join("www/.git")).unwrap();
    std::fs::write(
        home.path().join("www/.git/config"),
        "[remote] url = https://token@host/x",
    )
    .unwrap();
    std::fs::write(home.path().join("www/core/.a.zpa.part"), "partial").unwrap();
    let s = Serve::start(home.path(), &home.path().join("www"), &["--list"]);
    for path in [
        "/.git/config",
        "/core/.a.zpa.part",
        "/%2egit/config",
        "/.git/",
    ] {
        assert_eq!(raw(&s, "GET", path, &[]).status, 404, "{path}");
    }
}

#[test]
fn bind_takes_a_port_too() {
    let home = tempfile::tempdir().unwrap();
    let www = home.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("hello.txt"), "hi\n").unwrap();
    let www = www.to_str().unwrap();
    for (bind, extra, url) in [
        ("127.0.0.1:0", &[][..], "http://127.0.0.1:"),
        ("localhost:0", &[], "http://127.0.0.1:"),
        ("[::1]:0", &[], "http://[::1]:"),
        // both, agreeing: fine
        ("127.0.0.1:0", &["--port", "0"], "http://127.0.0.1:"),
        // no port in --bind: --port's
        ("127.0.0.1", &["--port", "0"], "http://127.0.0.1:"),
    ] {
        let mut args = vec!["serve", www, "--bind", bind];
        args.extend_from_slice(extra);
        let s = Serve::start_args(home.path(), &args);
        assert!(s.url.starts_with(url), "{args:?}: {}", s.url);
        // port 0 means a free one, not the default 8080
        assert!(![0, 8080].contains(&port(&s)), "{args:?}: {}", s.url);
        let r = raw(&s, "GET", "/hello.txt", &[]);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"hi\n"[..]),
            "{args:?}"
        );
    }
}

#[test]
fn a_bad_bind_is_a_usage_error_naming_the_value() {
    let home = tempfile::tempdir().unwrap();
    let www = home.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let www = www.to_str().unwrap();
    for (bind, says) in [
        ("127.0.0.1:notaport", "port `notaport`"),
        ("127.0.0.1:70000", "port `70000`"),
        ("example.com:8080", "`example.com` is not an IP address"),
        ("[::1", "`[::1` lacks the closing `]`"),
        ("fe80::1%lo:80", "in brackets"),
        ("[127.0.0.1]:80", "`127.0.0.1` is not an IPv6 address"),
    ] {
        zm_cmd(home.path())
            .args(["serve", www, "--bind", bind])
            .expect_status(2)
            .expect_stderr_contains(format!("'{bind}'"))
            .expect_stderr_contains(says)
            .expect_stdout("")
            .run();
    }
    // --port and a different port in --bind: which one was meant?
    zm_cmd(home.path())
        .args(["serve", www, "--bind", "127.0.0.1:9", "--port", "0"])
        .expect_status(2)
        .expect_stderr_contains("--bind names port 9 but --port says 0")
        .expect_stdout("")
        .run();
}

/// stdout carries one JSON document at most: a run that fails after
/// `serve` announced itself (here a bug, a panic made by a failpoint) says
/// so on stderr, with its exit code, and adds no second document.
#[test]
fn a_failure_after_serve_announced_itself_adds_no_second_document() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    let r = zm_cmd(home.path())
        .args(["serve"])
        .arg(&root)
        .args(["--port", "0", "--format", "json"])
        .env("ZOI_MIRROR_FAILPOINT", "panic:serving")
        .expect_status(3)
        .expect_stderr_contains("error: zoi-mirror hit a bug: failpoint serving")
        .run();
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&r.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("stdout is not JSON documents ({e}): {}", r.stdout));
    assert_eq!(docs.len(), 1, "{}", r.stdout);
    assert!(
        docs[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
}
