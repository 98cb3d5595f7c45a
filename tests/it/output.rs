//! The printer's rules, held against the real binary: a closed pipe keeps
//! the exit code and never panics, `--quiet` keeps data and errors,
//! `--no-progress`/`ZOI_MIRROR_NO_PROGRESS` are accepted everywhere, and
//! the exact stderr of `build`, `apply` and `check` errors (the `error:` /
//! `Caused by:` / `hint:` shape).

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::archives::simple_zpa;
use crate::support::nginx::Nginx;
use crate::support::{self, Run, tree, zm};

const PL: &str = "linux-amd64";

/// How the test treats stdout's read end.
#[derive(Clone, Copy)]
enum Reader {
    /// `| true`: closed before the command writes anything.
    ClosesAtOnce,
    /// `| head -1`: one line read, then closed.
    ReadsOneLine,
}

/// Runs `c` with stdout on a pipe the reader closes; returns the exit
/// code, what was read and stderr.
fn run_into_closed_pipe(c: &mut Command, reader: Reader) -> (i32, String, String) {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().unwrap();
    let mut read = String::new();
    match reader {
        Reader::ClosesAtOnce => drop(stdout),
        Reader::ReadsOneLine => {
            let mut r = BufReader::new(stdout);
            r.read_line(&mut read).unwrap();
            drop(r);
        }
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), read, stderr)
}

/// The same run with stdout to a file: the exit code a closed pipe must
/// keep.
fn run_to_file(c: &mut Command, home: &Path) -> (i32, u64) {
    let path = home.join("stdout.out");
    let file = fs::File::create(&path).unwrap();
    let status = c
        .stdout(file)
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    (
        status.code().unwrap_or(-1),
        fs::metadata(&path).unwrap().len(),
    )
}

/// A binary host with `n` good packages and one without its `.hash`, and a
/// repo.yaml pointing at it: `check` over it exits 1 and prints a line per
/// package.
fn served_tree(home: &Path, n: usize) -> (Nginx, String, Vec<String>) {
    let www = home.join("www");
    let pkgs = www.join("pkgs");
    let mut names: Vec<String> = (0..n).map(|i| format!("good{i:03}")).collect();
    for name in &names {
        tree::place(&pkgs, "core", name, "1.0.0", "1.0.0", PL, 512);
    }
    tree::place(&pkgs, "core", "nohash", "1.0.0", "1.0.0", PL, 512);
    fs::remove_file(pkgs.join("core/linux/amd64/1.0.0/nohash-1.0.0-linux-amd64.zpa.hash")).unwrap();
    names.push("nohash".into());
    let srv = Nginx::start(&www);
    let base = srv.url("pkgs");
    let base = base.trim_end_matches('/');
    let repo_yaml = home.join("repo.yaml");
    fs::write(
        &repo_yaml,
        format!(
            "name: t\ndescription: t\npkg:\n- type: main\n  url: {base}/{{repo}}/{{os}}/{{arch}}/{{version}}/{{name}}-{{version}}-{{platform}}.zpa\n  hash: {base}/{{repo}}/{{os}}/{{arch}}/{{version}}/{{name}}-{{version}}-{{platform}}.zpa.hash\n"
        ),
    )
    .unwrap();
    (srv, repo_yaml.display().to_string(), names)
}

fn check_cmd(home: &Path, repo_yaml: &str, names: &[String], json: bool) -> Command {
    let mut c = support::cmd(home);
    c.args(["check", "--repo-yaml", repo_yaml, "--platform", PL]);
    for n in names {
        c.args(["--package", &format!("@core/{n}@1.0.0")]);
    }
    if json {
        c.args(["--format", "json"]);
    }
    c
}

#[track_caller]
fn assert_quiet_end(what: &str, (code, _, stderr): &(i32, String, String), expected: i32) {
    assert_eq!(*code, expected, "{what}: exit code\nstderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "{what}: {stderr}");
    assert!(!stderr.contains("error:"), "{what}: {stderr}");
}

#[test]
fn check_into_a_closed_pipe_exits_with_its_normal_code() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (_srv, repo_yaml, names) = served_tree(h, 250);

    let (code, bytes) = run_to_file(&mut check_cmd(h, &repo_yaml, &names, true), h);
    assert_eq!(code, 1, "the missing .hash fails the check");
    // Larger than any pipe buffer: the writer is still writing when the
    // reader goes away, so the write really meets a closed pipe.
    assert!(
        bytes > 128 * 1024,
        "JSON report of {bytes} bytes is too small"
    );

    // `check --format json | head -1`: the JSON is written at the end.
    let r = run_into_closed_pipe(
        &mut check_cmd(h, &repo_yaml, &names, true),
        Reader::ReadsOneLine,
    );
    assert_eq!(r.1, "{\n");
    assert_quiet_end("check --format json | head -1", &r, code);

    // `check … | true` (human report), and with everything passing.
    let r = run_into_closed_pipe(
        &mut check_cmd(h, &repo_yaml, &names, false),
        Reader::ClosesAtOnce,
    );
    assert_quiet_end("check | true", &r, 1);
    let good = &names[..names.len() - 1];
    let r = run_into_closed_pipe(
        &mut check_cmd(h, &repo_yaml, good, false),
        Reader::ClosesAtOnce,
    );
    assert_quiet_end("check (all good) | true", &r, 0);
}

/// A binary-host folder of `n` small archives.
fn archive_tree(home: &Path, n: usize) -> std::path::PathBuf {
    let pkgs = home.join("pkgs");
    let dir = pkgs.join("core/linux/amd64/1.0.0");
    fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let name = format!("tool{i:03}");
        let (bytes, _) = simple_zpa(&name, name.as_bytes());
        fs::write(dir.join(format!("{name}-1.0.0-linux-amd64.zpa")), bytes).unwrap();
    }
    pkgs
}

#[test]
fn index_into_a_closed_pipe_exits_with_its_normal_code() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    archive_tree(h, 12);
    let index = |extra: &[&str]| {
        let mut c = support::cmd(h);
        c.args(["index", "pkgs"]).args(extra);
        c
    };
    // Before indexing, --check fails (exit 1) on the missing metadata.
    let r = run_into_closed_pipe(&mut index(&["--check"]), Reader::ClosesAtOnce);
    assert_quiet_end("index --check | true", &r, 1);
    let r = run_into_closed_pipe(&mut index(&["--verbose"]), Reader::ClosesAtOnce);
    assert_quiet_end("index --verbose | true", &r, 0);
    // Something was indexed although nobody read the report.
    assert!(
        h.join("pkgs/core/linux/amd64/1.0.0/tool000-1.0.0-linux-amd64.zpa.hash")
            .is_file()
    );
    let r = run_into_closed_pipe(
        &mut index(&["--check", "--format", "json"]),
        Reader::ReadsOneLine,
    );
    assert_eq!(r.1, "{\n");
    assert_quiet_end("index --check --format json | head -1", &r, 0);
    let r = run_into_closed_pipe(&mut index(&["--check", "--verbose"]), Reader::ReadsOneLine);
    assert!(r.1.starts_with("ok "), "{}", r.1);
    assert_quiet_end("index --check --verbose | head -1", &r, 0);
}

#[test]
fn quiet_keeps_data_and_errors_and_drops_logs() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let spec = support::example_spec();
    let spec = spec.to_str().unwrap();

    let loud = zm(h, &["build", "-c", spec, "-o", "dist"]).ok();
    assert!(
        loud.stderr.contains("mirror repo.yaml derived from"),
        "{}",
        loud.stderr
    );
    for quiet in [
        vec!["-q", "build", "-c", spec, "-o", "dist"],
        vec!["build", "--quiet", "-c", spec, "-o", "dist"],
    ] {
        let r = zm(h, &quiet).ok();
        assert_eq!(r.stderr, "", "{quiet:?}");
        assert_eq!(r.stdout, loud.stdout, "{quiet:?}: the data stays");
    }
    let r = zm(
        h,
        &[
            "-q",
            "apply",
            "dist/acme-mirror-1.2.0",
            "--no-zoi",
            "--dry-run",
        ],
    )
    .ok();
    assert_eq!(r.stderr, "");
    assert!(r.stdout.starts_with("--- "), "the diff stays: {}", r.stdout);
    let r = zm(h, &["-q", "index", "pkgs-missing", "--format", "json"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: no folder at pkgs-missing\nhint: give the folder that holds the archives (the binary host's document root)\n"
    );
    assert_eq!(r.json()["error"]["kind"], "root_missing");

    // serve --quiet (once its own flag, now the global one): no access
    // log, but the URL on stdout stays.
    fs::create_dir_all(h.join("www")).unwrap();
    fs::write(h.join("www/a.txt"), "a").unwrap();
    for (flags, logs) in [(&[][..], true), (&["--quiet"][..], false)] {
        let stderr = serve_one_request(h, flags);
        assert_eq!(
            stderr.contains("GET /a.txt 200"),
            logs,
            "{flags:?}: {stderr}"
        );
    }
}

/// Starts `serve www`, fetches `/a.txt`, stops it with SIGTERM; returns
/// its stderr.
fn serve_one_request(home: &Path, flags: &[&str]) -> String {
    let mut args = vec!["serve", "www", "--port", "0"];
    args.extend_from_slice(flags);
    let out = support::serve::one_request(
        home,
        &args,
        "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn no_progress_is_accepted_by_every_command_and_the_env_var_hides_the_bar() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    for cmd in [
        &["init"][..],
        &["build"],
        &["apply"],
        &["status"],
        &["revert"],
        &["check"],
        &["index"],
        &["sync"],
        &["db", "sync"],
        &["bin", "sync"],
        &["serve"],
        &["publish"],
        &["demo"],
    ] {
        for flag in ["--no-progress", "--quiet", "-q"] {
            let mut args = cmd.to_vec();
            args.extend([flag, "--help"]);
            let r = zm(h, &args);
            assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        }
    }
    // The per-command spellings of old still work (before the subcommand
    // too), and so does the variable with any non-empty value.
    archive_tree(h, 2);
    zm(h, &["index", "pkgs", "--no-progress"]).ok();
    zm(h, &["--no-progress", "index", "pkgs", "--check"]).ok();
    support::run(
        support::cmd(h)
            .args(["index", "pkgs", "--check"])
            .env("ZOI_MIRROR_NO_PROGRESS", "yes"),
    )
    .ok();

    // On a terminal the bar is drawn; --no-progress, the variable and
    // --quiet each hide it. `script` gives the run a pseudo-terminal.
    if which("script").is_none() {
        panic!("`script` (util-linux) is needed to give a run a terminal");
    }
    let big = h.join("big");
    let dir = big.join("core/linux/amd64/1.0.0");
    fs::create_dir_all(&dir).unwrap();
    for i in 0..2 {
        let name = format!("big{i}");
        let payload = tree::archive_bytes(&name, 16 << 20);
        let (bytes, _) = simple_zpa(&name, &payload);
        fs::write(dir.join(format!("{name}-1.0.0-linux-amd64.zpa")), bytes).unwrap();
    }
    let on_tty = |flags: &str, env: &str| -> String {
        let line = format!(
            "{env} {} index {} --force {flags}",
            support::bin().display(),
            big.display()
        );
        let r = support::run(
            Command::new("script")
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", h)
                .env("TERM", "xterm")
                .args(["-qec", &line, "/dev/null"])
                .stdin(Stdio::null())
                .current_dir(h),
        );
        assert_eq!(r.code, 0, "{line}: {}", r.stdout);
        r.stdout
    };
    // The bar's `[elapsed]` field: nothing else prints it.
    let shown = |out: &str| out.contains("[00:0");
    let drawn = on_tty("", "");
    assert!(shown(&drawn), "no progress bar on a terminal:\n{drawn}");
    for (flags, env) in [
        ("--no-progress", ""),
        ("", "ZOI_MIRROR_NO_PROGRESS=1"),
        ("-q", ""),
    ] {
        let out = on_tty(flags, env);
        assert!(!shown(&out), "{flags} {env}: a bar was drawn:\n{out}");
        assert!(out.contains("2 archives"), "{flags} {env}: {out}");
    }
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Stable stderr: temp home, repo root and loopback ports replaced.
fn stable_stderr(home: &Path, r: &Run) -> String {
    let text = r
        .stderr
        .replace(&home.display().to_string(), "[HOME]")
        .replace(&support::repo_root().display().to_string(), "[REPO]");
    let text = regex::Regex::new(r"127\.0\.0\.1:\d+")
        .unwrap()
        .replace_all(&text, "127.0.0.1:[PORT]")
        .into_owned();
    format!("exit: {}\n{text}", r.code)
}

#[test]
fn the_human_stderr_of_build_apply_and_check_errors() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let spec = support::example_spec();
    let spec = spec.to_str().unwrap();
    let bundle = "dist/acme-mirror-1.2.0";

    let r = zm(h, &["build", "-c", spec, "-o", "dist"]);
    insta::assert_snapshot!("stderr_build", stable_stderr(h, &r));
    fs::write(
        h.join("bad.toml"),
        "[extension]\nname = \"x\"\nversion = \"one\"\nbogus = 1\n",
    )
    .unwrap();
    let r = zm(h, &["build", "-c", "bad.toml", "-o", "dist"]);
    insta::assert_snapshot!("stderr_build_spec_error", stable_stderr(h, &r));
    let r = zm(h, &["build", "-c", "missing.toml", "-o", "dist"]);
    insta::assert_snapshot!("stderr_build_missing_spec", stable_stderr(h, &r));

    let r = zm(h, &["apply", bundle, "--no-zoi"]);
    insta::assert_snapshot!("stderr_apply", stable_stderr(h, &r));
    let r = zm(h, &["apply", bundle, "--no-zoi", "--dry-run"]);
    insta::assert_snapshot!("stderr_apply_again_dry_run", stable_stderr(h, &r));
    // A bundle.json whose recorded hash no longer matches its file.
    let manifest = h.join(bundle).join("bundle.json");
    let text = fs::read_to_string(&manifest).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let files = doc["files"].as_object().unwrap();
    let sha = files["config.user.yaml"]["sha512"].as_str().unwrap();
    fs::write(&manifest, text.replace(sha, &"0".repeat(128))).unwrap();
    let r = zm(h, &["apply", bundle, "--no-zoi"]);
    insta::assert_snapshot!("stderr_apply_tampered", stable_stderr(h, &r));
    fs::write(&manifest, "{").unwrap();
    let r = zm(h, &["apply", bundle, "--no-zoi"]);
    insta::assert_snapshot!("stderr_apply_broken_bundle_json", stable_stderr(h, &r));

    // check's errors: bad input (exit 2), a --ca-cert that is not there
    // among them (found before anything is fetched).
    fs::write(h.join("r.yaml"), "pkg: []\n").unwrap();
    fs::write(h.join("ok.yaml"), "name: a\ndescription: b\n").unwrap();
    let mut all = String::new();
    for args in [
        vec!["check", "--repo-yaml", "missing.yaml"],
        vec!["check", "--repo-yaml", "r.yaml"],
        vec!["check", "--repo-yaml", "ok.yaml", "--package", "core/x"],
        vec!["check", "--repo-yaml", "ok.yaml", "--header", "X"],
        vec!["check", "--bundle", "nowhere"],
        vec![
            "check",
            "--repo-yaml",
            "ok.yaml",
            "--ca-cert",
            "missing.pem",
        ],
    ] {
        let r = zm(h, &args);
        all.push_str(&format!(
            "== {}\n{}\n",
            args.join(" "),
            stable_stderr(h, &r)
        ));
    }
    insta::assert_snapshot!("stderr_check_errors", all);
}
