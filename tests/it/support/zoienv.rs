//! Running the real `zoi` client in a sandbox: its own HOME and XDG
//! directories in a temp dir, as an unprivileged user when the tests run as
//! root (as root, Zoi 1.29 syncs into the system store but resolves from the
//! user one).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::Run;

pub const USER: &str = "zoi-mirror-test";

/// The proxy variables [`Sandbox::sh`] sets: a dead loopback port for
/// everything but loopback itself.
pub const PROXY_ENV: [(&str, &str); 8] = [
    ("HTTP_PROXY", "http://127.0.0.1:9"),
    ("HTTPS_PROXY", "http://127.0.0.1:9"),
    ("ALL_PROXY", "http://127.0.0.1:9"),
    ("http_proxy", "http://127.0.0.1:9"),
    ("https_proxy", "http://127.0.0.1:9"),
    ("all_proxy", "http://127.0.0.1:9"),
    ("NO_PROXY", "127.0.0.1,localhost"),
    ("no_proxy", "127.0.0.1,localhost"),
];

/// The pinned Zoi version (one place: scripts/zoi-version).
pub fn pinned_version() -> String {
    std::fs::read_to_string(super::repo_root().join("scripts/zoi-version"))
        .unwrap()
        .trim()
        .to_string()
}

/// The real zoi: `$ZOI_MIRROR_ZOI`, else where scripts/install-zoi.sh
/// caches it.
pub fn zoi_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ZOI_MIRROR_ZOI") {
        return p.into();
    }
    let cache = std::env::var_os("ZOI_MIRROR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/zoi-mirror")
        });
    let p = cache.join(format!("zoi-{}/bin/zoi", pinned_version()));
    assert!(
        p.exists(),
        "the real zoi {} is not installed at {}: run scripts/install-zoi.sh (scripts/test.sh does)",
        pinned_version(),
        p.display()
    );
    p
}

fn as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Copies of `zoi` and `zoi-mirror` the unprivileged user can execute,
/// shared by the tests of this process (and refreshed when they change).
pub fn bins() -> &'static Path {
    static BINS: OnceLock<PathBuf> = OnceLock::new();
    BINS.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("zoi-mirror-e2e-bins-{}", nix::unistd::geteuid()));
        std::fs::create_dir_all(&dir).unwrap();
        chmod(&dir, 0o755);
        for (src, name) in [(zoi_path(), "zoi"), (super::bin(), "zoi-mirror")] {
            let dst = dir.join(name);
            let same = std::fs::metadata(&dst)
                .ok()
                .zip(std::fs::metadata(&src).ok())
                .is_some_and(|(a, b)| a.len() == b.len() && a.modified().ok() >= b.modified().ok());
            if !same {
                let tmp = dir.join(format!(".{name}.{}", std::process::id()));
                std::fs::copy(&src, &tmp).unwrap();
                chmod(&tmp, 0o755);
                std::fs::rename(&tmp, &dst).unwrap();
            }
        }
        let out = Command::new(dir.join("zoi"))
            .arg("--version")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("Number: {}", pinned_version())),
            "expected zoi {}, got:\n{text}",
            pinned_version()
        );
        eprintln!(
            "e2e: real zoi {} ({})",
            pinned_version(),
            zoi_path().display()
        );
        dir
    })
}

/// Makes `path` (recursively) readable by the unprivileged user.
pub fn share(path: &Path) {
    for e in walkdir::WalkDir::new(path)
        .into_iter()
        .filter_map(Result::ok)
    {
        let mode = e.metadata().unwrap().permissions().mode();
        let add = if e.file_type().is_dir() { 0o755 } else { 0o644 };
        chmod(e.path(), mode | add);
    }
}

/// Gives `path` (recursively) to the unprivileged user.
pub fn give(path: &Path) {
    if !as_root() {
        return;
    }
    let user = nix::unistd::User::from_name(USER)
        .unwrap()
        .unwrap_or_else(|| panic!("user {USER} missing: run scripts/test-deps.sh as root"));
    for e in walkdir::WalkDir::new(path)
        .into_iter()
        .filter_map(Result::ok)
    {
        std::os::unix::fs::chown(e.path(), Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .unwrap();
    }
}

/// A temp dir the unprivileged user can use, with a HOME inside.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        bins();
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o777);
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        give(&home);
        Sandbox { dir, home }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new, empty HOME (another "user" on the same sandbox).
    pub fn fresh_home(&mut self, name: &str) {
        self.home = self.dir.path().join(name);
        std::fs::create_dir_all(&self.home).unwrap();
        give(&self.home);
    }

    pub fn config(&self) -> PathBuf {
        self.home.join(".config/zoi/config.yaml")
    }

    pub fn data(&self) -> PathBuf {
        self.home.join(".local/share/zoi")
    }

    /// Writes a file in HOME as the user would have.
    pub fn write_home(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.home.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        give(&self.home);
        p
    }

    /// Runs `sh -c line` as the user, with only PATH (the two binaries
    /// first), HOME, the XDG dirs and the dead proxies ([`PROXY_ENV`]) set.
    pub fn sh(&self, line: &str) -> Run {
        let home = self.home.display().to_string();
        let env = [
            format!("PATH={}:/usr/bin:/bin", bins().display()),
            format!("HOME={home}"),
            format!("XDG_CONFIG_HOME={home}/.config"),
            format!("XDG_DATA_HOME={home}/.local/share"),
            format!("XDG_CACHE_HOME={home}/.cache"),
            format!("XDG_STATE_HOME={home}/.local/state"),
            "NO_COLOR=1".to_string(),
            "LANG=C.UTF-8".to_string(),
        ];
        // Nothing may leave the machine: every proxy variable points at a
        // dead loopback port, and only loopback bypasses it.
        let proxies = PROXY_ENV.iter().map(|(k, v)| format!("{k}={v}"));
        let env: Vec<String> = env.into_iter().chain(proxies).collect();
        let mut c = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", USER, "--", "env", "-i"]);
            c
        } else {
            let mut c = Command::new("env");
            c.arg("-i");
            c
        };
        c.args(&env)
            .args(["sh", "-c", line])
            .current_dir(self.dir.path());
        let r = Run::of(c.output().expect("run as the test user"));
        eprintln!("$ {line}\n[exit {}]\n{}{}", r.code, r.stdout, r.stderr);
        r
    }
}
