//! Our own `zoi-mirror serve`, started as a child process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

pub struct Serve {
    pub url: String,
    pub child: Child,
}

impl Serve {
    pub fn start(home: &Path, dir: &Path, extra: &[&str]) -> Serve {
        let mut child = super::cmd(home)
            .args(["serve", dir.to_str().unwrap(), "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("http://127.0.0.1:"),
            "serve printed {line:?}"
        );
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
