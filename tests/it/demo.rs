//! `demo`: exits 0 on a clean machine and leaves nothing outside its temp dir.

use std::path::Path;

use crate::support::{cmd, run};

fn files_under(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().display().to_string())
        .collect()
}

fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                out.push(c);
            }
        }
    }
    out
}

/// The demo with `TMPDIR` in `sub` of a fresh temp dir.
fn demo(path_env: &str, sub: &str) {
    let home = tempfile::tempdir().unwrap();
    let top = tempfile::tempdir().unwrap();
    let tmp = top.path().join(sub);
    std::fs::create_dir_all(&tmp).unwrap();
    let r = run(cmd(home.path())
        .args(["demo", "--format", "json"])
        .env("TMPDIR", &tmp)
        .env("PATH", path_env));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    assert_eq!(doc["ok"], true, "{doc}");
    let dir = doc["dir"].as_str().unwrap().to_string();
    assert!(Path::new(&dir).starts_with(&tmp), "{dir} is not in TMPDIR");
    for step in [
        "serve", "archives", "build", "registry", "apply", "check", "status", "stop",
    ] {
        let s = doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == step)
            .unwrap();
        assert_eq!(s["ok"], true, "{step}: {s}");
    }
    // the real home is untouched; the throw-away one is inside the demo dir
    assert!(
        files_under(home.path()).is_empty(),
        "{:?}",
        files_under(home.path())
    );
    assert!(
        Path::new(&dir)
            .join("home/.config/zoi/config.yaml")
            .exists()
    );
    assert!(
        processes_mentioning(&dir).is_empty(),
        "{:?}",
        processes_mentioning(&dir)
    );
}

#[test]
fn demo_runs_end_to_end_and_stays_in_its_temp_dir() {
    demo(&std::env::var("PATH").unwrap(), "");
}

#[test]
fn demo_runs_in_a_temp_dir_whose_path_has_a_space() {
    // The registry's file:// URL is percent-encoded, as a URL must be.
    demo(&std::env::var("PATH").unwrap(), "my temp");
}

#[test]
fn demo_runs_without_any_other_program() {
    // no git, no curl, nothing: the registry step is skipped, all else runs
    demo("/nonexistent", "");
}
