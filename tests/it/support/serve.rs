//! Our own `zoi-mirror serve`, started as a child process.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Output, Stdio};

pub struct Serve {
    pub url: String,
    pub child: Child,
}

impl Serve {
    /// `serve DIR --port 0 EXTRA…` on 127.0.0.1.
    pub fn start(home: &Path, dir: &Path, extra: &[&str]) -> Serve {
        let mut args = vec!["serve", dir.to_str().unwrap(), "--port", "0"];
        args.extend_from_slice(extra);
        let s = Serve::start_args(home, &args);
        assert!(
            s.url.starts_with("http://127.0.0.1:"),
            "serve printed {:?}",
            s.url
        );
        s
    }

    /// `zoi-mirror ARGS…` (a `serve`), once it printed the URL it listens on.
    pub fn start_args(home: &Path, args: &[&str]) -> Serve {
        let (child, url) = spawn(home, args, Stdio::null());
        Serve { url, child }
    }
}

/// Spawns `zoi-mirror ARGS…` with stdout piped; returns it once it printed
/// the URL it listens on, and the URL.
fn spawn(home: &Path, args: &[&str], stderr: Stdio) -> (Child, String) {
    let mut child = super::cmd(home)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("http://"), "serve printed {line:?}");
    (child, line.trim().to_string())
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `zoi-mirror ARGS…` (a `serve` on port 0), sent one raw HTTP `request`
/// (its reply read to the end), then stopped with SIGTERM: what it wrote,
/// for its access log and its clean stop.
pub fn one_request(home: &Path, args: &[&str], request: &str) -> Output {
    let (child, url) = spawn(home, args, Stdio::piped());
    assert!(url.starts_with("http://127.0.0.1:"), "{args:?}: {url:?}");
    let port: u16 = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.write_all(request.as_bytes()).unwrap();
    let mut sink = Vec::new();
    sock.read_to_end(&mut sink).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait_with_output().unwrap()
}
