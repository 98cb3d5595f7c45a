//! A command builder for our binary, in the style of cargo's test support
//! (`p.cargo("build").with_status(101).with_stderr_contains(…).run()`):
//!
//! ```ignore
//! let r = zm_cmd(home)
//!     .args(["build", "-c", "nope.toml"])
//!     .expect_status(2)
//!     .expect_stderr_contains("nope.toml")
//!     .run();
//! ```
//!
//! `run` asserts every expectation and returns the [`Run`] for more. The
//! exit status must be 0 unless `expect_status` says otherwise; a failed
//! expectation prints the command line, its stdout and its stderr.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::Run;

pub struct ZmCmd {
    cmd: Command,
    shown: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    status: Option<i32>,
    stdout_contains: Vec<String>,
    stderr_contains: Vec<String>,
    stdout_lacks: Vec<String>,
    stderr_lacks: Vec<String>,
    stdout_is: Option<String>,
    label: Option<String>,
}

/// Our binary in the scrubbed environment of [`super::cmd`].
pub fn zm_cmd(home: &Path) -> ZmCmd {
    ZmCmd {
        cmd: super::cmd(home),
        shown: Vec::new(),
        stdin: None,
        status: Some(0),
        stdout_contains: Vec::new(),
        stderr_contains: Vec::new(),
        stdout_lacks: Vec::new(),
        stderr_lacks: Vec::new(),
        stdout_is: None,
        label: None,
    }
}

impl ZmCmd {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.shown.push(arg.as_ref().to_owned());
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.cmd.env_remove(key);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Bytes on standard input (otherwise it is empty).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn expect_status(mut self, code: i32) -> Self {
        self.status = Some(code);
        self
    }

    /// Any exit status: the caller looks at it.
    pub fn any_status(mut self) -> Self {
        self.status = None;
        self
    }

    pub fn expect_stdout_contains(mut self, s: impl Into<String>) -> Self {
        self.stdout_contains.push(s.into());
        self
    }

    pub fn expect_stderr_contains(mut self, s: impl Into<String>) -> Self {
        self.stderr_contains.push(s.into());
        self
    }

    pub fn expect_stdout_lacks(mut self, s: impl Into<String>) -> Self {
        self.stdout_lacks.push(s.into());
        self
    }

    pub fn expect_stderr_lacks(mut self, s: impl Into<String>) -> Self {
        self.stderr_lacks.push(s.into());
        self
    }

    /// Stdout exactly (`""`: nothing on stdout).
    pub fn expect_stdout(mut self, s: impl Into<String>) -> Self {
        self.stdout_is = Some(s.into());
        self
    }

    /// Names the case in a failure message (for loops over cases).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    #[track_caller]
    pub fn run(mut self) -> Run {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn zoi-mirror");
        if let Some(bytes) = self.stdin.take() {
            let mut w = child.stdin.take().unwrap();
            // A command that does not read its input is not the test's
            // failure: a closed pipe here is ignored.
            std::thread::spawn(move || {
                let _ = w.write_all(&bytes);
            });
        }
        let r = Run::of(child.wait_with_output().expect("wait for zoi-mirror"));
        let label = self.label.map(|l| format!("[{l}] ")).unwrap_or_default();
        let line = self
            .shown
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let fail = |what: String| -> ! {
            panic!(
                "{label}zoi-mirror {line}: {what}\n--- stdout:\n{}\n--- stderr:\n{}",
                r.stdout, r.stderr
            )
        };
        if let Some(code) = self.status
            && r.code != code
        {
            fail(format!("exit {} (expected {code})", r.code));
        }
        for s in &self.stdout_contains {
            if !r.stdout.contains(s.as_str()) {
                fail(format!("stdout lacks {s:?}"));
            }
        }
        for s in &self.stderr_contains {
            if !r.stderr.contains(s.as_str()) {
                fail(format!("stderr lacks {s:?}"));
            }
        }
        for s in &self.stdout_lacks {
            if r.stdout.contains(s.as_str()) {
                fail(format!("stdout has {s:?}"));
            }
        }
        for s in &self.stderr_lacks {
            if r.stderr.contains(s.as_str()) {
                fail(format!("stderr has {s:?}"));
            }
        }
        if let Some(want) = &self.stdout_is
            && &r.stdout != want
        {
            fail(format!("stdout is not {want:?}"));
        }
        r
    }
}

#[test]
#[should_panic(expected = "exit 2 (expected 0)")]
fn run_fails_on_an_unexpected_status() {
    let home = tempfile::tempdir().unwrap();
    zm_cmd(home.path()).arg("--frobnicate").run();
}

#[test]
#[should_panic(expected = "stderr lacks \"no such thing\"")]
fn run_fails_on_missing_stderr_text() {
    let home = tempfile::tempdir().unwrap();
    zm_cmd(home.path())
        .arg("--frobnicate")
        .expect_status(2)
        .expect_stderr_contains("--frobnicate")
        .expect_stderr_contains("no such thing")
        .run();
}

#[test]
fn stdin_reaches_the_command() {
    // zoi-mirror reads stdin only to confirm on a terminal; `cat` run by
    // the same builder shows the bytes arrive.
    let home = tempfile::tempdir().unwrap();
    let mut c = ZmCmd {
        cmd: Command::new("sh"),
        shown: vec!["(sh)".into()],
        ..zm_cmd(home.path())
    };
    c.cmd.args(["-c", "cat"]);
    c.stdin("piped\n").expect_stdout("piped\n").run();
}
