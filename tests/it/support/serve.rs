//! Our own `zoi-mirror serve`, started as a child process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

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
        let mut child = super::cmd(home)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("http://"), "serve printed {line:?}");
        Serve {
            url: line.trim().to_string(),
            child,
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
