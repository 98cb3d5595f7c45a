//! Shared helpers for the integration tests: running our binary, temp
//! homes, the shared fixtures, and real components (Lua, nginx, git).

#![allow(dead_code)]

pub mod archives;
pub mod cmd;
pub mod company;
pub mod faults;
pub mod gitd;
pub mod gpg;
pub mod net;
pub mod nginx;
pub mod seaweed;
pub mod serve;
pub mod spec;
pub mod tree;
pub mod upstream;
pub mod zoi_types;
pub mod zoienv;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use cmd::zm_cmd;
pub use spec::Spec;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zoi-mirror"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/fixtures`, or `$ZOI_MIRROR_SHARED/fixtures`. The fixtures are
/// test data the tests cannot do without: a missing directory is a failure,
/// not a skip.
pub fn fixtures() -> PathBuf {
    let shared = std::env::var_os("ZOI_MIRROR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"));
    let dir = shared.join("fixtures");
    assert!(
        dir.is_dir(),
        "shared fixtures not found at {} (set ZOI_MIRROR_SHARED to the shared/ directory)",
        dir.display()
    );
    dir
}

pub fn example_spec() -> PathBuf {
    repo_root().join("examples/acme/mirror.toml")
}

/// A command for our binary with a scrubbed environment: its own HOME and
/// XDG dirs under `home`, no colour, nothing from the developer's machine.
pub fn cmd(home: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("NO_COLOR", "1")
        .current_dir(home);
    c
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn run(c: &mut Command) -> Run {
    Run::of(c.output().expect("spawn"))
}

/// Runs our binary with `args` in a fresh temp home.
pub fn zm(home: &Path, args: &[&str]) -> Run {
    run(cmd(home).args(args))
}

/// `c` under `strace -f -qq -y -e trace=CALLS -o LOG`: the same program,
/// arguments, directory and environment (`c`'s alone, as [`cmd`] clears
/// the rest), so a test reads the real system calls of a real run.
pub fn under_strace(c: &Command, log: &Path, calls: &str) -> Command {
    let strace = which("strace")
        .expect("strace is needed to watch system calls (scripts/test-deps.sh installs it)");
    let mut traced = Command::new(strace);
    traced
        .env_clear()
        .args(["-f", "-qq", "-y", "-o"])
        .arg(log)
        .args(["-e", &format!("trace={calls}")])
        .arg(c.get_program())
        .args(c.get_args());
    if let Some(dir) = c.get_current_dir() {
        traced.current_dir(dir);
    }
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            traced.env(k, v);
        }
    }
    traced
}

/// A flush, a rename or a started writeback, in an [`under_strace`] log of
/// `fsync,fdatasync,rename,renameat,renameat2` (and `sync_file_range`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Syscall {
    /// A flush that returned 0, of the file or folder at this path.
    Flushed(String),
    /// A `sync_file_range` (writeback started) that returned 0, of the file
    /// at this path.
    WritebackStarted(String),
    /// A rename that returned 0.
    Renamed { from: String, to: String },
}

/// The flushes, renames and started writebacks of an [`under_strace`]
/// log, in the order they took effect: a flush when it returned (threads log `<unfinished ...>`,
/// then `<... fsync resumed>`), a rename when it was made. Panics on a
/// failed call: an ordering test must see every one succeed.
pub fn strace_events(text: &str) -> Vec<Syscall> {
    let mut pending: std::collections::HashMap<&str, String> = Default::default();
    let mut events = Vec::new();
    let fd_path = |line: &str| -> String {
        let start = line.find('<').unwrap() + 1;
        let end = line[start..].find('>').unwrap() + start;
        line[start..end].to_string()
    };
    for line in text.lines() {
        let (pid, call) = line.split_once(' ').unwrap();
        let call = call.trim_start();
        if call.starts_with("<... fsync resumed>") || call.starts_with("<... fdatasync resumed>") {
            assert!(call.ends_with("= 0"), "{line}");
            events.push(Syscall::Flushed(pending.remove(pid).unwrap()));
        } else if call.starts_with("fsync(") || call.starts_with("fdatasync(") {
            if call.ends_with("<unfinished ...>") {
                pending.insert(pid, fd_path(call));
            } else {
                assert!(call.ends_with("= 0"), "{line}");
                events.push(Syscall::Flushed(fd_path(call)));
            }
        } else if call.starts_with("sync_file_range(") {
            // Never from two threads at once where this parser is used: a
            // call split by another thread's line would name no file.
            assert!(call.ends_with("= 0"), "{line}");
            events.push(Syscall::WritebackStarted(fd_path(call)));
        } else if call.starts_with("rename") {
            assert!(call.ends_with("= 0"), "{line}");
            // rename("from", "to") = 0, renameat(AT_FDCWD, "from", AT_FDCWD, "to") = 0
            let quoted: Vec<&str> = call.split('"').collect();
            events.push(Syscall::Renamed {
                from: quoted[1].to_string(),
                to: quoted[3].to_string(),
            });
        }
    }
    events
}

/// Asserts a human report shows a server's control characters only
/// escaped: no raw ESC or BEL in `stdout`, and `escaped` in it.
pub fn assert_escaped(stdout: &str, escaped: &str) {
    assert!(
        !stdout.contains(['\x1b', '\x07']),
        "a raw control reached stdout: {stdout:?}"
    );
    assert!(stdout.contains(escaped), "{stdout}");
}

/// Where `tool` is on PATH (`command -v`), if it is.
pub fn which(tool: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

/// A Lua interpreter: `$ZOI_MIRROR_LUA`, else lua5.4, lua, luau on PATH.
pub fn lua() -> PathBuf {
    if let Some(p) = std::env::var_os("ZOI_MIRROR_LUA") {
        return p.into();
    }
    if let Some(p) = ["lua5.4", "lua", "luau"].into_iter().find_map(which) {
        return p;
    }
    panic!("no Lua interpreter found: install lua5.4 (scripts/test.sh does) or set ZOI_MIRROR_LUA")
}

/// Evaluates a `.pkg.lua` with a `metadata` stub in a real Lua and returns
/// the table it passed, as JSON.
pub fn eval_pkg_lua(path: &Path) -> serde_json::Value {
    let script = repo_root().join("tests/lua/eval_pkg.lua");
    let out = Command::new(lua())
        .arg(&script)
        .arg(path)
        .output()
        .expect("run lua");
    assert!(
        out.status.success(),
        "lua failed on {}:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "lua output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Every file under `dir`, relative, sorted, with contents.
pub fn read_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// `sha512sum FILE`, by the coreutils tool (an independent implementation).
pub fn sha512_file(path: &Path) -> String {
    let out = Command::new("sha512sum")
        .arg(path)
        .output()
        .expect("sha512sum");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

pub fn sha512_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(bytes))
}

/// Whether two YAML texts mean the same.
pub fn yaml_eq(a: &str, b: &str) -> bool {
    serde_yaml::from_str::<serde_yaml::Value>(a).unwrap()
        == serde_yaml::from_str::<serde_yaml::Value>(b).unwrap()
}

/// Stops a server started with `process_group(0)` and everything it forked:
/// SIGTERM to the group (a clean shutdown), SIGKILL after 5 s.
pub fn stop_group(child: &mut std::process::Child) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let pgid = Pid::from_raw(child.id() as i32);
    let _ = killpg(pgid, Signal::SIGTERM);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = child.wait();
}
