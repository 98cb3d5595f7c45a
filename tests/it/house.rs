//! The house rules, held by tests: every command's JSON over the shipped
//! example stays byte-identical across refactors (snapshots taken before
//! the output layer was rebuilt), and a closed pipe is not a panic.

use std::path::Path;

use crate::support::archives::simple_zpa;
use crate::support::{self, Run, zm};

/// Replaces what differs between runs (temp dirs, loopback ports,
/// timings) so a snapshot holds only what the command decided.
fn stable(home: &Path, r: &Run) -> String {
    let home = home.display().to_string();
    let root = support::repo_root().display().to_string();
    let mut text = r.stdout.replace(&home, "[HOME]").replace(&root, "[REPO]");
    for (re, with) in [
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"\d{8}T\d{6}Z", "[STAMP]"),
        (r"/tmp/zoi-mirror-demo\.[A-Za-z0-9]+", "[DEMO]"),
        (r#""(\w*_ms|\w*seconds)": [\d.]+"#, r#""$1": [N]"#),
    ] {
        text = regex::Regex::new(re)
            .unwrap()
            .replace_all(&text, with)
            .into_owned();
    }
    format!("exit: {}\n{text}", r.code)
}

#[test]
fn the_json_of_every_command_over_the_shipped_example_is_unchanged() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let spec = support::example_spec();
    let spec = spec.to_str().unwrap();
    let bundle = "dist/acme-mirror-1.2.0";
    let steps: Vec<(&str, Vec<&str>)> = vec![
        ("init", vec!["init"]),
        ("init_again", vec!["init"]),
        ("build", vec!["build", "-c", spec, "-o", "dist"]),
        (
            "build_check",
            vec!["build", "-c", spec, "-o", "dist", "--check"],
        ),
        (
            "apply_dry_run",
            vec!["apply", bundle, "--no-zoi", "--dry-run"],
        ),
        ("apply", vec!["apply", bundle, "--no-zoi"]),
        ("apply_again", vec!["apply", bundle, "--no-zoi"]),
        ("status", vec!["status", bundle, "--no-zoi"]),
        ("revert", vec!["revert", "acme-mirror"]),
        ("status_after_revert", vec!["status", bundle, "--no-zoi"]),
        (
            "build_bad_spec",
            vec!["build", "-c", "missing.toml", "-o", "dist"],
        ),
        ("apply_bad_bundle", vec!["apply", "nowhere", "--no-zoi"]),
    ];
    let mut all = String::new();
    // Runs one step with --format json and appends its exit code and JSON.
    let mut record = |label: &str, mut args: Vec<&str>| {
        args.extend(["--format", "json"]);
        let r = zm(h, &args);
        let line = args
            .join(" ")
            .replace(spec, "[REPO]/examples/acme/mirror.toml");
        all.push_str(&format!("== {label}: {line}\n{}\n", stable(h, &r)));
    };
    for (label, args) in steps {
        record(label, args);
    }
    // index and index --check over a small tree in the example's layout
    let pkgs = h.join("pkgs");
    let dir = pkgs.join("core/linux/amd64/1.0.0");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["hello", "tool"] {
        let (bytes, _) = simple_zpa(name, name.as_bytes());
        std::fs::write(dir.join(format!("{name}-1.0.0-linux-amd64.zpa")), bytes).unwrap();
    }
    // one archive that is not an archive: its error kind is part of the JSON
    std::fs::write(dir.join("junk-1.0.0-linux-amd64.zpa"), b"not zstd").unwrap();
    for (label, args) in [
        ("index_check_missing", vec!["index", "pkgs", "--check"]),
        ("index", vec!["index", "pkgs"]),
        ("index_again", vec!["index", "pkgs"]),
        ("index_check", vec!["index", "pkgs", "--check"]),
    ] {
        record(label, args);
    }
    insta::assert_snapshot!("json_over_the_shipped_example", all);
}

#[test]
fn the_demo_json_is_unchanged() {
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let r = support::run(
        support::cmd(home.path())
            .args(["demo", "--format", "json"])
            .env("TMPDIR", tmp.path()),
    );
    let text = stable(home.path(), &r).replace(&tmp.path().display().to_string(), "[TMPDIR]");
    let text = regex::Regex::new(r"\[TMPDIR\]/zoi-mirror-demo\.[A-Za-z0-9]+")
        .unwrap()
        .replace_all(&text, "[DEMO]")
        .into_owned();
    insta::assert_snapshot!("demo_json", text);
}
