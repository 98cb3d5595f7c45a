//! Real git on loopback: bare repositories and a `git daemon` serving them,
//! started by the test that needs them.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::net::{free_port, wait_port};

/// Runs git in `cwd` with a fixed identity; panics on failure.
pub fn git(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_AUTHOR_NAME", "Upstream Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@upstream.example")
        .env("GIT_COMMITTER_NAME", "Upstream Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@upstream.example")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", cwd)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        cwd.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A `git daemon` exporting every repo under `base`, pushes allowed.
pub struct GitDaemon {
    pub port: u16,
    child: Child,
}

fn daemon_bin() -> PathBuf {
    let out = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git --exec-path");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("git-daemon")
}

impl GitDaemon {
    pub fn start(base: &Path) -> GitDaemon {
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("git")
                .args([
                    "daemon",
                    "--reuseaddr",
                    "--export-all",
                    "--enable=receive-pack",
                    "--listen=127.0.0.1",
                ])
                .arg(format!("--port={port}"))
                .arg(format!("--base-path={}", base.display()))
                .arg(base)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("git daemon");
            if wait_port(port, &mut child, Duration::from_secs(10)) {
                return GitDaemon { port, child };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("git daemon did not start")
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        // The daemon forks one process per connection: stop the whole group.
        super::stop_group(&mut self.child);
    }
}

/// An upstream registry like Zoidberg: the fixture repo.yaml and
/// packages.json, one package, a second branch and a tag. Returns the work
/// tree (to add commits) and the bare repo.
pub fn upstream_registry(dir: &Path) -> (PathBuf, PathBuf) {
    let work = dir.join("upstream-work");
    let bare = dir.join("upstream.git");
    std::fs::create_dir_all(work.join("zillowe/hello")).unwrap();
    let fixtures = super::fixtures().join("zoidberg");
    for f in ["repo.yaml", "packages.json", "advisories.json"] {
        std::fs::copy(fixtures.join(f), work.join(f)).unwrap();
    }
    std::fs::write(
        work.join("zillowe/hello/hello.pkg.lua"),
        "metadata({ name = \"hello\", repo = \"zillowe\", version = \"5.0.0\", description = \"hi\", maintainer = { name = \"z\", email = \"z@z\" }, types = { \"source\" } })\n",
    )
    .unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "initial registry"]);
    git(&work, &["branch", "dev"]);
    git(&work, &["tag", "-a", "v1", "-m", "release 1"]);
    bare_clone(&work, &bare);
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    (work, bare)
}

/// `git clone --bare WORK BARE`.
pub fn bare_clone(work: &Path, bare: &Path) {
    git(
        bare.parent().unwrap(),
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
}

/// An empty bare repository.
pub fn empty_bare(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path).unwrap();
    git(path, &["init", "-q", "--bare", "-b", "main"]);
    path.to_path_buf()
}

/// A bare registry whose index is the real Zoidberg packages.json.
pub fn bare_registry(dir: &Path) -> String {
    bare_registry_with(dir, &[])
}

/// A bare registry whose index is the real Zoidberg packages.json plus
/// `(tier, name, version)` entries: `zoi install` (and `check`) resolve
/// packages there.
pub fn bare_registry_with(dir: &Path, extra: &[(&str, &str, &str)]) -> String {
    let work = dir.join("reg-work");
    let bare = dir.join("reg.git");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("repo.yaml"), "name: t\ndescription: t\n").unwrap();
    let mut index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(super::fixtures().join("zoidberg/packages.json")).unwrap(),
    )
    .unwrap();
    for (tier, name, version) in extra {
        index["packages"][format!("@{tier}/{name}")] = serde_json::json!({"repo": tier,
            "repo_type": "official", "version": version, "epoch": 0, "revision": "1",
            "description": "t", "sub_packages": [], "main_sub_packages": [], "vuln": [],
            "dependencies": null});
    }
    std::fs::write(
        work.join("packages.json"),
        serde_json::to_vec_pretty(&index).unwrap(),
    )
    .unwrap();
    // What `zoi install` resolves: <tier>/<name>/<name>.pkg.lua.
    for (id, p) in index["packages"].as_object().unwrap() {
        let name = id.rsplit('/').next().unwrap();
        let dir = work.join(p["repo"].as_str().unwrap()).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{name}.pkg.lua")),
            format!(
                "metadata({{\n  name = \"{name}\",\n  version = \"{}\",\n}})\n",
                p["version"].as_str().unwrap()
            ),
        )
        .unwrap();
    }
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "init"]);
    bare_clone(&work, &bare);
    format!("file://{}", bare.display())
}
