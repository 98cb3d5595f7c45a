//! Issue 14: the defects adversarial testing found, one test each, and the
//! crash-safety and exit-code contracts they belong to.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cmd::ZmCmd;
use crate::support::faults::{Fault, FaultServer};
use crate::support::{self, Run, Spec, zm, zm_cmd};

const V12: &str = "dist/acme-mirror-1.2.0";
const V13: &str = "dist/acme-mirror-1.3.0";

fn example() -> String {
    fs::read_to_string(support::example_spec()).unwrap()
}

/// A temp home with the example bundle (1.2.0) and, when asked, 1.3.0: a
/// different cache mirror and pkg_dir.
fn home_with(v13: bool) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    fs::write(home.path().join("m.toml"), example()).unwrap();
    build(home.path(), "m.toml", "dist").run();
    if v13 {
        Spec::example()
            .set("extension.version", "1.3.0")
            .list("client.cache_mirrors", ["https://bin-eu.acme.example/flat"])
            .list("client.pkg_dirs", ["/srv/zoi-archives-v13"])
            .write_to(&home.path().join("v13.toml"));
        build(home.path(), "v13.toml", "dist").run();
    }
    home
}

fn user_cfg(home: &Path) -> PathBuf {
    home.join(".config/zoi/config.yaml")
}

fn state_dir(home: &Path) -> PathBuf {
    home.join(".local/state/zoi-mirror")
}

/// `apply BUNDLE --no-zoi`; add flags and expectations, then `.run()`.
fn apply(home: &Path, bundle: &str) -> ZmCmd {
    zm_cmd(home).args(["apply", bundle, "--no-zoi"])
}

/// `revert EXTENSION --no-zoi`.
fn revert(home: &Path, extension: &str) -> ZmCmd {
    zm_cmd(home).args(["revert", extension, "--no-zoi"])
}

/// `build -c SPEC -o OUT` (both relative to the home).
fn build(home: &Path, spec: &str, out: &str) -> ZmCmd {
    zm_cmd(home).args(["build", "-c", spec, "-o", out])
}

fn write_cfg(home: &Path, text: &str) -> PathBuf {
    let cfg = user_cfg(home);
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, text).unwrap();
    cfg
}

const USER: &str = "\
# my settings
repos:
  - core
  - extra     # the extra tier, mine
cache_mirrors: [https://mine.example/flat]   # my own mirror
pkg_dirs:
    - /mnt/usb   # the stash
jobs: 4
";

/// The state file's text with the home directory made neutral, to compare
/// runs in different homes.
fn state_text(home: &Path) -> String {
    fs::read_to_string(state_dir(home).join("acme-mirror.user.json"))
        .unwrap()
        .replace(home.to_str().unwrap(), "HOME")
}

/// Files next to the config and in the state dir, without backups.
fn leftovers(home: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for d in [
        user_cfg(home).parent().unwrap().to_path_buf(),
        state_dir(home),
    ] {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if !n.ends_with(".bak") {
                out.push(n);
            }
        }
    }
    out.sort();
    out
}

// ------------------------------------------------------------ 1: crashes

#[test]
fn an_upgrade_killed_at_any_point_finishes_exactly_like_an_uninterrupted_one() {
    // The reference: 1.2.0 then 1.3.0, nothing interrupted.
    let clean = home_with(true);
    let cfg = write_cfg(clean.path(), USER);
    apply(clean.path(), V12).run();
    apply(clean.path(), V13).run();
    let want_cfg = fs::read_to_string(&cfg).unwrap();
    let want_state = state_text(clean.path());
    assert!(!want_cfg.contains("bin-dr"), "{want_cfg}");
    assert!(!want_cfg.contains("/srv/zoi-archives\n"), "{want_cfg}");

    for point in [
        "after-lock",
        "after-backup",
        "after-state",
        "after-config",
        "after-final-state",
    ] {
        let home = home_with(true);
        let cfg = write_cfg(home.path(), USER);
        apply(home.path(), V12).run();
        let r = apply(home.path(), V13)
            .env("ZOI_MIRROR_FAILPOINT", point)
            .any_status()
            .run();
        if point != "after-final-state" {
            assert_ne!(r.code, 0, "{point}: the failpoint must fire");
        }
        // The state describes what is on disk: revert now would be exact.
        apply(home.path(), V13).run();
        assert_eq!(
            fs::read_to_string(&cfg).unwrap(),
            want_cfg,
            "{point}: the re-run differs from an uninterrupted upgrade"
        );
        assert_eq!(state_text(home.path()), want_state, "{point}: state");
        zm_cmd(home.path())
            .args(["status", V13, "--no-zoi"])
            .label(format!("{point}: status"))
            .run();
        revert(home.path(), "acme-mirror").run();
        assert_eq!(fs::read_to_string(&cfg).unwrap(), USER, "{point}: revert");
    }
}

#[test]
fn a_revert_after_an_upgrade_killed_midway_gives_back_the_original() {
    for point in ["after-state", "after-config"] {
        let home = home_with(true);
        let cfg = write_cfg(home.path(), USER);
        apply(home.path(), V12).run();
        let r = apply(home.path(), V13)
            .env("ZOI_MIRROR_FAILPOINT", point)
            .any_status()
            .run();
        assert_ne!(r.code, 0);
        revert(home.path(), "acme-mirror").run();
        assert_eq!(fs::read_to_string(&cfg).unwrap(), USER, "{point}");
    }
}

#[test]
fn a_revert_killed_at_any_point_finishes_exactly_like_an_uninterrupted_one() {
    for point in ["after-lock", "revert-after-backup", "revert-after-config"] {
        let home = home_with(false);
        let cfg = write_cfg(home.path(), USER);
        apply(home.path(), V12).run();
        let r = revert(home.path(), "acme-mirror")
            .env("ZOI_MIRROR_FAILPOINT", point)
            .any_status()
            .run();
        if point != "after-lock" {
            assert_ne!(r.code, 0, "{point}: the failpoint must fire");
        }
        revert(home.path(), "acme-mirror").run();
        assert_eq!(fs::read_to_string(&cfg).unwrap(), USER, "{point}");
        assert!(
            !state_dir(home.path())
                .join("acme-mirror.user.json")
                .exists(),
            "{point}: state left"
        );
        assert_eq!(leftovers(home.path()), ["config.yaml", "zoi-mirror.lock"]);
    }
}

/// A bug that panics mid-run still ends the run the documented way: exit 3
/// (kind `internal`, not Rust's 101), an error with a hint, the JSON error
/// document with `--format json`; and the lock it held is let go.
#[test]
fn a_panic_is_an_internal_error_with_exit_3_and_an_error_document() {
    let home = home_with(false);
    let cfg = write_cfg(home.path(), USER);
    apply(home.path(), V12)
        .env("ZOI_MIRROR_FAILPOINT", "panic:after-lock")
        .expect_status(3)
        .expect_stderr_contains("error: zoi-mirror hit a bug: failpoint after-lock")
        .expect_stderr_contains("hint: please report it")
        .run();
    let r = apply(home.path(), V12)
        .args(["--format", "json"])
        .env("ZOI_MIRROR_FAILPOINT", "panic:after-lock")
        .expect_status(3)
        .run();
    let doc = r.json();
    assert_eq!(doc["error"]["kind"], "internal", "{doc}");
    assert_eq!(doc["error"]["exit_code"], 3, "{doc}");
    assert_eq!(
        fs::read_to_string(&cfg).unwrap(),
        USER,
        "nothing applied yet"
    );
    // And the run after it is not held up: its lock went with the process.
    apply(home.path(), V12).run();
    assert!(fs::read_to_string(&cfg).unwrap().contains("acme"));
}

// --------------------------------------------- 2, 14: spec strings, escapes

#[test]
fn control_characters_in_spec_strings_are_rejected_at_their_position() {
    for (bad, what) in [
        ("Zoidberg\\rhandle: evil", "carriage return"),
        ("\\r db: https://evil.example/db #", "carriage return"),
        ("Zoi\\u0085berg", "NEL"),
        ("Zoi\\u2028berg", "U+2028"),
        ("Zoi\\u2029berg", "U+2029"),
        ("Zoi\\u0000berg", "NUL"),
        ("Zoi\\u001b[2Jberg", "ESC"),
        ("Zoi\\nberg", "line break"),
    ] {
        let home = tempfile::tempdir().unwrap();
        let spec = example().replace("name = \"zoidberg\"", &format!("name = \"{bad}\""));
        let line = spec
            .lines()
            .position(|l| l.starts_with("name = \"Zoi") || l.starts_with("name = \"\\r"))
            .unwrap()
            + 1;
        fs::write(home.path().join("m.toml"), spec).unwrap();
        let r = build(home.path(), "m.toml", "dist")
            .expect_status(2)
            .label(bad.to_string())
            .run();
        assert!(
            r.stderr.contains(&format!("m.toml:{line}:")) && r.stderr.contains(what),
            "{bad}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains('\u{1b}'), "raw ESC printed");
        assert!(!home.path().join("dist").exists(), "{bad}: files written");
    }
}

#[test]
fn repo_yaml_carries_no_raw_spec_text_outside_the_serialiser() {
    let home = tempfile::tempdir().unwrap();
    Spec::example()
        .set("registry.name", "Zoidberg # handle: evil")
        .write_to(&home.path().join("m.toml"));
    build(home.path(), "m.toml", "dist").run();
    let text = fs::read_to_string(home.path().join("dist/acme-mirror-1.2.0/repo.yaml")).unwrap();
    let comments: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert!(
        comments.iter().all(|l| !l.contains("Zoidberg")),
        "{comments:?}"
    );
    let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(v["name"], "Zoidberg # handle: evil");
    assert_eq!(v["handle"], "zoidberg");
}

#[test]
fn spec_errors_never_print_raw_terminal_escapes() {
    let home = tempfile::tempdir().unwrap();
    // An unknown key and an unknown format, both carrying ESC[2J.
    let spec = example()
        .replace("[binaries]", "[binaries]\n\"\\u001b[2Jx\" = 1")
        .replace(
            "tier = \"acme\"",
            "tier = \"acme\"\n\"\\u001b]0;owned\\u0007\" = 2",
        );
    fs::write(home.path().join("m.toml"), spec).unwrap();
    let r = build(home.path(), "m.toml", "dist").expect_status(2).run();
    assert!(r.stderr.contains("unknown key"), "{}", r.stderr);
    assert!(
        !r.stderr.contains('\u{1b}') && !r.stderr.contains('\u{7}'),
        "{:?}",
        r.stderr
    );
    assert!(r.stderr.contains("\\u{1b}[2Jx"), "{}", r.stderr);
}

// -------------------------------------------------------- 4, 9, 10: network

/// A bundle whose binary host is `bin` and whose cache mirror is `mirror`.
fn bundle_for(home: &Path, bin: &str, mirror: &str) -> String {
    Spec::example()
        .set("binaries.url", bin)
        .list("client.cache_mirrors", [mirror])
        .write_to(&home.join("n.toml"));
    build(home, "n.toml", "net").run();
    home.join("net/acme-mirror-1.2.0").display().to_string()
}

#[test]
fn the_auth_header_never_reaches_a_cache_mirror_on_another_host() {
    let token = "Bearer only-for-the-bin-host-7731";
    let bin = FaultServer::start(vec![("/", Fault::Ok(b"x".to_vec(), vec![]))]);
    let mirror = FaultServer::start(vec![("/", Fault::Ok(b"x".to_vec(), vec![]))]);
    let home = tempfile::tempdir().unwrap();
    let dir = bundle_for(
        home.path(),
        &bin.url("http", "/pkgs"),
        &mirror.url("http", "/flat"),
    );
    let header = format!("Authorization: {token}");
    let r = zm(
        home.path(),
        &[
            "check",
            "--bundle",
            &dir,
            "--no-registry",
            "--package",
            "@core/hello@1.0.0",
            "--platform",
            "linux-amd64",
            "--retries",
            "0",
            "--header",
            &header,
            "--format",
            "json",
        ],
    );
    assert_ne!(r.code, 3, "{}", r.stderr);
    let to_mirror = mirror.seen_headers.lock().unwrap().join("\n");
    assert!(!to_mirror.is_empty(), "the cache mirror was not checked");
    assert!(
        !to_mirror.contains("only-for"),
        "sent to the mirror:\n{to_mirror}"
    );
    assert!(
        bin.seen_headers.lock().unwrap().join("\n").contains(token),
        "the binary host must get it"
    );
}

/// The upstream of `echo` 1.0.0 for linux-amd64: its archive and `.size`
/// served as they are, its `.hash` (the right line) through `hash_fault`.
fn echo_upstream(hash_fault: impl FnOnce(Vec<u8>) -> Fault) -> FaultServer {
    let body = b"archive".to_vec();
    let hash = format!(
        "{}  echo-1.0.0-linux-amd64.zpa\n",
        support::sha512_hex(&body)
    );
    FaultServer::start(vec![
        (
            "/echo/echo-1.0.0-linux-amd64.zpa.hash",
            hash_fault(hash.into_bytes()),
        ),
        (
            "/echo/echo-1.0.0-linux-amd64.zpa.size",
            Fault::Ok(b"down: 7\ninstall: 7\n".to_vec(), vec![]),
        ),
        (
            "/echo/echo-1.0.0-linux-amd64.zpa",
            Fault::Ok(body, vec![("Accept-Ranges".into(), "bytes".into())]),
        ),
    ])
}

/// A repo.yaml whose link has `.hash` and `.size` templates on `base`.
fn repo_yaml_with_size(dir: &Path, base: &str) -> String {
    let p = dir.join("repo.yaml");
    let a = format!("{base}/{{name}}/{{name}}-{{version}}-{{platform}}.zpa");
    fs::write(
        &p,
        format!("name: f\ndescription: f\npkg:\n- type: main\n  url: {a}\n  hash: {a}.hash\n  size: {a}.size\n"),
    )
    .unwrap();
    p.display().to_string()
}

/// `check` of one package against a repo.yaml, no retries.
fn check_pkg(home: &Path, ry: &str) -> ZmCmd {
    zm_cmd(home).args([
        "check",
        "--repo-yaml",
        ry,
        "--package",
        "@core/echo@1.0.0",
        "--platform",
        "linux-amd64",
        "--retries",
        "0",
    ])
}

#[test]
fn a_server_echoing_the_secret_never_gets_it_printed() {
    let secret = "Bearer echo-me-9f8e7d6c5b4a-0123456789-abcdefghij-klmnopqrstuvwxyz";
    let body = b"archive".to_vec();
    let hash = format!(
        "{}  echo-1.0.0-linux-amd64.zpa\n",
        support::sha512_hex(&body)
    );
    let srv = FaultServer::start(vec![
        ("/echo/echo-1.0.0-linux-amd64.zpa.size", Fault::EchoAuth),
        ("/echo/echo-1.0.0-linux-amd64.zpa.hash", Fault::EchoAuth),
        ("/echo/echo-1.0.0-linux-amd64.zpa.sig", Fault::EchoAuth),
        (
            "/echo/echo-1.0.0-linux-amd64.zpa",
            Fault::Ok(body, vec![("Accept-Ranges".into(), "bytes".into())]),
        ),
    ]);
    let _ = hash;
    let home = tempfile::tempdir().unwrap();
    let ry = repo_yaml_with_size(home.path(), &srv.url("http", ""));
    let header = format!("Authorization: {secret}");
    let token = secret.split_once(' ').unwrap().1;
    for format in ["human", "json"] {
        let r = check_pkg(home.path(), &ry)
            .args(["--header", &header, "--format", format])
            .expect_status(1)
            .label(format)
            .run();
        assert!(
            srv.seen_headers.lock().unwrap().join("\n").contains(secret),
            "the header was sent"
        );
        for out in [&r.stdout, &r.stderr] {
            assert!(!out.contains(&token[..20]), "{format}: leaked:\n{out}");
        }
        // Shown redacted: in the report, or (human) in a `warning:` line,
        // which is on stderr.
        assert!(
            r.stdout.contains("***") || (format == "human" && r.stderr.contains("***")),
            "{format}: {}\n{}",
            r.stdout,
            r.stderr
        );
    }
}

/// Redacting a secret must not change the document's shape: the JSON is
/// redacted as it streams out, in the serialiser's key order, exactly as
/// an unredacted run prints it.
#[test]
fn a_registered_secret_leaves_the_json_in_its_usual_order() {
    let srv = echo_upstream(|hash| Fault::Ok(hash, vec![]));
    let home = tempfile::tempdir().unwrap();
    let ry = repo_yaml_with_size(home.path(), &srv.url("http", ""));
    let keys = |extra: &[&str]| {
        let r = check_pkg(home.path(), &ry)
            .args(["--format", "json"])
            .args(extra)
            .run();
        let keys: Vec<String> = regex::Regex::new(r#""([a-z_]+)":"#)
            .unwrap()
            .captures_iter(&r.stdout)
            .map(|c| c[1].to_string())
            .collect();
        assert!(keys.len() > 10, "{}", r.stdout);
        keys
    };
    assert_eq!(
        keys(&["--header", "Authorization: Bearer order-token-5150"]),
        keys(&[])
    );
}

#[test]
fn a_truncated_body_is_its_own_kind_with_a_fitting_hint() {
    let srv = echo_upstream(Fault::Truncate);
    let home = tempfile::tempdir().unwrap();
    let ry = repo_yaml_with_size(home.path(), &srv.url("http", ""));
    let doc = check_pkg(home.path(), &ry)
        .args(["--format", "json"])
        .expect_status(1)
        .run()
        .json();
    let hash = doc["packages"][0]["urls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["kind"] == "hash")
        .unwrap()
        .clone();
    assert_eq!(hash["error"]["kind"], "truncated", "{hash:#}");
    let hint = hash["error"]["hint"].as_str().unwrap();
    assert!(
        !hint.contains("firewall") && hint.contains("fewer bytes"),
        "{hint}"
    );
}

// ------------------------------------------------- 5, 6, 13, 16: the file

#[test]
fn a_fifo_or_directory_config_is_refused_at_once_and_nothing_is_written() {
    for kind in ["fifo", "dir"] {
        let home = home_with(false);
        let cfg = user_cfg(home.path());
        fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        match kind {
            "fifo" => assert!(Command::new("mkfifo").arg(&cfg).status().unwrap().success()),
            _ => fs::create_dir(&cfg).unwrap(),
        }
        let r = apply(home.path(), V12)
            .expect_status(2)
            .label(kind.to_string())
            .run();
        assert!(
            r.stderr.contains(cfg.to_str().unwrap())
                && r.stderr
                    .contains(if kind == "fifo" { "FIFO" } else { "directory" }),
            "{}",
            r.stderr
        );
        assert!(
            !state_dir(home.path()).exists(),
            "{kind}: state dir created"
        );
    }
}

#[test]
fn a_dangling_config_symlink_is_named_and_nothing_is_written() {
    let home = home_with(false);
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    let target = home.path().join("dotfiles/zoi.yaml");
    std::os::unix::fs::symlink(&target, &cfg).unwrap();
    let r = apply(home.path(), V12).expect_status(2).run();
    assert!(
        r.stderr.contains(&format!(
            "config.yaml is a symlink to {}, which does not exist",
            target.display()
        )),
        "{}",
        r.stderr
    );
    assert!(!state_dir(home.path()).exists(), "state written");
    assert!(!target.exists());
}

#[test]
fn rejected_applies_create_no_state_dir_or_lock() {
    for bad in ["repos: [unclosed\n", "repos: 5\n", "- a list\n"] {
        let home = home_with(false);
        write_cfg(home.path(), bad);
        let r = apply(home.path(), V12)
            .expect_status(2)
            .label(bad.to_string())
            .run();
        assert!(r.stderr.contains("Nothing was changed"), "{}", r.stderr);
        assert!(!state_dir(home.path()).exists(), "{bad}: state dir created");
    }
}

#[test]
fn temp_files_of_killed_runs_are_cleaned_by_the_next_run() {
    let home = home_with(false);
    let cfg = write_cfg(home.path(), USER);
    let dir = cfg.parent().unwrap().to_path_buf();
    fs::create_dir_all(state_dir(home.path())).unwrap();
    let stale = [
        dir.join(".config.yaml.AbC123.tmp"),
        state_dir(home.path()).join(".acme-mirror.user.json.XyZ789.tmp"),
    ];
    for s in &stale {
        fs::write(s, "half a file").unwrap();
    }
    let not_ours = dir.join(".config.yaml.someone-else.tmp");
    fs::write(&not_ours, "x").unwrap();
    apply(home.path(), V12).run();
    for s in &stale {
        assert!(!s.exists(), "{} left", s.display());
    }
    assert!(not_ours.exists(), "a file that is not ours was removed");
    // and revert cleans what a killed revert left
    fs::write(&stale[0], "x").unwrap();
    revert(home.path(), "acme-mirror").run();
    assert!(!stale[0].exists());
}

// ------------------------------------------------------ 7: comments kept

#[test]
fn comments_and_indentation_of_the_users_list_entries_survive_apply_and_revert() {
    let home = home_with(false);
    let original = "\
repos:
  - main    # the main tier
  - extra   # mine too
pkg_dirs: [/mnt/usb]   # the stash
default_registry:   # where packages come from
  handle: ''
  url: https://old.example/z.git   # the old one
";
    let cfg = write_cfg(home.path(), original);
    apply(home.path(), V12).run();
    let after = fs::read_to_string(&cfg).unwrap();
    assert!(
        after.contains("  - main    # the main tier\n  - extra   # mine too\n"),
        "{after}"
    );
    assert!(after.contains("  - core\n"), "{after}");
    revert(home.path(), "acme-mirror").run();
    assert_eq!(fs::read_to_string(&cfg).unwrap(), original);
}

// ------------------------------------------------- 8: two extensions

#[test]
fn a_second_extension_on_the_same_keys_is_refused_naming_the_first() {
    let home = home_with(false);
    Spec::example()
        .set("extension.name", "beta-mirror")
        .write_to(&home.path().join("b.toml"));
    build(home.path(), "b.toml", "dist").run();
    let cfg = write_cfg(home.path(), USER);
    apply(home.path(), V12).run();
    let applied = fs::read_to_string(&cfg).unwrap();
    apply(home.path(), "dist/beta-mirror-1.2.0")
        .expect_status(2)
        .expect_stderr_contains("acme-mirror already manages")
        .expect_stderr_contains("revert acme-mirror")
        .run();
    assert_eq!(fs::read_to_string(&cfg).unwrap(), applied);
    assert!(
        !state_dir(home.path())
            .join("beta-mirror.user.json")
            .exists()
    );
    revert(home.path(), "acme-mirror").run();
    // ... and once A is gone, B applies and reverts cleanly.
    apply(home.path(), "dist/beta-mirror-1.2.0").run();
    revert(home.path(), "beta-mirror").run();
    assert_eq!(fs::read_to_string(&cfg).unwrap(), USER);
}

/// The guard against two bundles on one key reads every other state in the
/// directory: one it cannot read or parse could name any key, so the apply
/// is refused, naming the file, rather than skipping it.
#[test]
fn another_extensions_state_that_cannot_be_read_is_refused_naming_it() {
    let home = home_with(false);
    let cfg = write_cfg(home.path(), USER);
    let dir = state_dir(home.path());
    fs::create_dir_all(&dir).unwrap();
    let other = dir.join("beta-mirror.user.json");
    let check = |what: &str| {
        let r = apply(home.path(), V12)
            .args(["--format", "json"])
            .expect_status(2)
            .label(what.to_string())
            .run();
        let e = &r.json()["error"];
        assert_eq!(e["kind"], "state_invalid", "{what}: {e}");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.contains("beta-mirror") && msg.contains(other.to_str().unwrap()),
            "{what}: {msg}"
        );
        let hint = e["hint"].as_str().unwrap();
        assert!(
            hint.contains("zoi-mirror revert beta-mirror")
                && hint.contains(other.to_str().unwrap()),
            "{what}: {hint}"
        );
        assert_eq!(fs::read_to_string(&cfg).unwrap(), USER, "{what}");
        assert!(!dir.join("acme-mirror.user.json").exists(), "{what}");
    };
    fs::write(&other, "{ \"format\": 1, half a state").unwrap();
    check("not JSON");
    // A directory where the file should be: reading fails, even for root.
    fs::remove_file(&other).unwrap();
    fs::create_dir(&other).unwrap();
    check("unreadable");
    // Once it is out of the way, the apply goes ahead.
    fs::remove_dir(&other).unwrap();
    apply(home.path(), V12).run();
}

/// `extension.version` reaches the header comment of a new config file,
/// the state and the terminal: one that is not a semantic version (as
/// `build` always writes) is refused before anything is written, so a line
/// break cannot add keys to the user's config.
#[test]
fn a_bundle_json_version_that_is_not_semver_never_reaches_a_config() {
    for version in [
        "1.2.0\nrepos: [evil]",
        "1.2.0: x",
        "1.2.0\r\noffline_mode: true",
    ] {
        let home = home_with(false);
        let p = home.path().join(V12).join("bundle.json");
        let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        m["extension"]["version"] = version.into();
        fs::write(&p, serde_json::to_vec(&m).unwrap()).unwrap();
        let label = format!("{version:?}");
        let refused = || {
            let r = apply(home.path(), V12)
                .args(["--format", "json"])
                .expect_status(2)
                .label(label.clone())
                .run();
            let e = r.json()["error"].clone();
            assert_eq!(e["kind"], "bundle_invalid", "{label}: {e}");
            let msg = e["message"].as_str().unwrap();
            assert!(
                msg.contains("bundle.json") && msg.contains("extension.version"),
                "{label}: {msg}"
            );
            assert!(
                e["hint"].as_str().unwrap().contains("semantic version"),
                "{label}: {e}"
            );
        };
        // No config yet: none is created (its header would name the version).
        refused();
        assert!(!user_cfg(home.path()).exists(), "{label}");
        assert!(!state_dir(home.path()).exists(), "{label}");
        // A config already there stays byte-identical.
        let cfg = write_cfg(home.path(), USER);
        refused();
        assert_eq!(fs::read_to_string(&cfg).unwrap(), USER, "{label}");
        assert!(!state_dir(home.path()).exists(), "{label}");
    }
}

// ----------------------------------------------------- 11: exit codes

#[test]
fn malformed_input_is_exit_2_not_1_or_3() {
    let home = home_with(false);
    apply(home.path(), V12)
        .args(["--sha512", "zz"])
        .expect_status(2)
        .run();
    // non-UTF-8 spec
    fs::write(
        home.path().join("bad.toml"),
        b"[extension]\nname = \"a\xff\"\n",
    )
    .unwrap();
    build(home.path(), "bad.toml", "x")
        .expect_status(2)
        .expect_stderr_contains("bad.toml:2:")
        .run();
    // non-UTF-8 config
    write_cfg(home.path(), "repos: [core]\n# caf\u{e9}\n");
    fs::write(user_cfg(home.path()), b"repos: [core]\n# caf\xe9\n").unwrap();
    apply(home.path(), V12).expect_status(2).run();
    assert!(!state_dir(home.path()).exists());
    // headers
    let ry = home.path().join("ry.yaml");
    fs::write(&ry, "name: f\ndescription: f\n").unwrap();
    for h in ["Bad Name: x", "X-Token: a\u{1}b", "X-Token: a\rb"] {
        zm_cmd(home.path())
            .args(["check", "--repo-yaml", ry.to_str().unwrap(), "--header", h])
            .expect_status(2)
            .expect_stderr_lacks("a\u{1}b")
            .label(format!("{h:?}"))
            .run();
    }
    // A header with no name is refused as such, and a refused header's
    // value (here an everyday word) does not blank out the wording: it
    // read "(*** not shown)" when the value was "value".
    for (h, says) in [
        (
            ": value",
            "a --header has no name before its `:` (value not shown)",
        ),
        (
            ":value",
            "a --header has no name before its `:` (value not shown)",
        ),
        (
            "  : Bearer value",
            "a --header has no name before its `:` (value not shown)",
        ),
        (
            "Bad Name: value",
            "--header name \"Bad Name\" is not a valid HTTP header name (value not shown)",
        ),
        (
            "X-Token: value\u{1}",
            "the value of --header X-Token is not a valid HTTP header value (value not shown)",
        ),
    ] {
        let r = zm_cmd(home.path())
            .args(["check", "--repo-yaml", ry.to_str().unwrap(), "--header", h])
            .args(["--format", "json"])
            .expect_status(2)
            .label(format!("{h:?}"))
            .run();
        let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(doc["error"]["kind"], "usage", "{h:?}: {doc}");
        assert_eq!(doc["error"]["message"], says, "{h:?}");
    }
}

// ----------------------------------------------- 12: bundle.json errors

#[test]
fn every_bundle_json_error_names_the_bundle_and_has_a_hint() {
    type Edit = fn(&mut serde_json::Value, &Path);
    let cases: Vec<(&str, Edit)> = vec![
        ("no format_version", |m, _| {
            m.as_object_mut().unwrap().remove("format_version");
        }),
        ("../ file", |m, _| {
            m["files"]["../x"] = m["files"]["repo.yaml"].clone();
        }),
        ("absolute file", |m, _| {
            m["files"]["/etc/x"] = m["files"]["repo.yaml"].clone();
        }),
        ("bad extension name", |m, _| {
            m["extension"]["name"] = "../evil".into();
        }),
        ("listed file missing", |_, dir| {
            fs::remove_file(dir.join("config.user.yaml")).unwrap();
        }),
        ("unknown policy key", |m, _| {
            m["manages"]["user"]
                .as_array_mut()
                .unwrap()
                .push("telemetry_enabled".into());
        }),
        ("user-scope policy", |m, _| {
            m["manages"]["user"]
                .as_array_mut()
                .unwrap()
                .push("policy".into());
        }),
        ("malformed", |m, _| {
            m["files"] = 5.into();
        }),
    ];
    for (what, edit) in cases {
        let home = home_with(false);
        let dir = home.path().join(V12);
        let p = dir.join("bundle.json");
        let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        edit(&mut m, &dir);
        fs::write(&p, serde_json::to_vec(&m).unwrap()).unwrap();
        let r = apply(home.path(), V12)
            .args(["--format", "json"])
            .expect_status(2)
            .label(what.to_string())
            .run();
        let e = &r.json()["error"];
        assert!(
            e["message"].as_str().unwrap().contains(V12),
            "{what}: the bundle is not named: {e}"
        );
        assert!(e["hint"].is_string(), "{what}: no hint: {e}");
        assert!(
            !state_dir(home.path()).exists(),
            "{what}: state dir created"
        );
    }
    // An HTML page where bundle.json should be.
    let srv = FaultServer::start(vec![(
        "/b/bundle.json",
        Fault::Ok(b"<!doctype html><html>Sign in</html>".to_vec(), vec![]),
    )]);
    let home = tempfile::tempdir().unwrap();
    let url = srv.url("http", "/b/");
    let r = zm_cmd(home.path())
        .args(["apply", &url, "--no-zoi", "--format", "json"])
        .expect_status(2)
        .run();
    let e = &r.json()["error"];
    assert!(e["message"].as_str().unwrap().contains(&url), "{e}");
    assert!(e["hint"].as_str().unwrap().contains("HTML"), "{e}");
}

// ----------------------------------------------------- 15: setup comments

#[test]
fn the_copy_paste_lines_quote_the_setup_url_for_their_shell() {
    let home = tempfile::tempdir().unwrap();
    let spec = example().replace(
        "url = \"https://bin.acme.example/zoi-mirror\"",
        "url = \"https://bin.acme.example/zoi-mirror;x=$(id)&y='z'\"",
    );
    fs::write(home.path().join("m.toml"), spec).unwrap();
    let r = build(home.path(), "m.toml", "dist").any_status().run();
    if r.code != 0 {
        // A spec that rejects such a URL is fine too; the template is
        // checked with the plain example below.
        assert_eq!(r.code, 2, "{}", r.stderr);
        zm_cmd(home.path())
            .args(["build", "-c"])
            .arg(support::example_spec())
            .args(["-o", "dist"])
            .run();
    }
    let dir = home.path().join(V12);
    let sh = fs::read_to_string(dir.join("setup.sh")).unwrap();
    let line = sh.lines().find(|l| l.contains("curl -fsSL")).unwrap();
    assert!(line.contains("curl -fsSL 'https://"), "{line}");
    let ps = fs::read_to_string(dir.join("setup.ps1")).unwrap();
    let line = ps.lines().find(|l| l.contains("irm ")).unwrap();
    assert!(line.contains("irm 'https://"), "{line}");
}

// ------------------------------------------ README's exit-code table, row by row

#[test]
fn every_documented_error_kind_maps_to_its_exit_code() {
    let home = home_with(false);
    let h = home.path();
    let cfg = write_cfg(h, USER);
    let port = crate::support::net::free_port();
    let mut rows: Vec<(&str, i32, Run)> = Vec::new();

    // 0: done / all good
    rows.push(("done", 0, apply(h, V12).any_status().run()));
    // 1: drift, unreachable, mismatch, verification failed
    fs::write(
        &cfg,
        fs::read_to_string(&cfg).unwrap().replace("  - acme\n", ""),
    )
    .unwrap();
    rows.push(("drift", 1, zm(h, &["status", V12, "--no-zoi"])));
    let ry = h.join("down.yaml");
    fs::write(
        &ry,
        format!("name: f\ndescription: f\npkg:\n- type: main\n  url: http://127.0.0.1:{port}/{{name}}-{{version}}-{{platform}}.zpa\n"),
    )
    .unwrap();
    rows.push((
        "unreachable",
        1,
        zm(
            h,
            &[
                "check",
                "--repo-yaml",
                ry.to_str().unwrap(),
                "--package",
                "@core/x@1.0.0",
                "--platform",
                "linux-amd64",
                "--retries",
                "0",
            ],
        ),
    ));
    rows.push((
        "mismatch",
        1,
        apply(h, V12)
            .args(["--sha512", &"0".repeat(128)])
            .any_status()
            .run(),
    ));
    fs::write(h.join(V12).join("repo.yaml"), "tampered\n").unwrap();
    rows.push((
        "verification failed",
        1,
        zm(h, &["build", "-c", "m.toml", "-o", "dist", "--check"]),
    ));
    build(h, "m.toml", "dist").run();

    // 2: malformed spec, config, bundle or flag
    fs::write(h.join("broken.toml"), "[extension\n").unwrap();
    rows.push((
        "malformed spec",
        2,
        zm(h, &["build", "-c", "broken.toml", "-o", "x"]),
    ));
    let other = tempfile::tempdir().unwrap();
    fs::create_dir_all(h.join("notabundle")).unwrap();
    rows.push((
        "malformed bundle",
        2,
        apply(h, "notabundle").any_status().run(),
    ));
    rows.push((
        "malformed flag",
        2,
        apply(h, V12).args(["--no-such-flag"]).any_status().run(),
    ));
    fs::copy(h.join("m.toml"), other.path().join("m.toml")).unwrap();
    build(other.path(), "m.toml", "dist").run();
    write_cfg(other.path(), "repos: [unclosed\n");
    rows.push((
        "malformed config",
        2,
        apply(other.path(), V12).any_status().run(),
    ));

    // 3: I/O, permissions, a lock held by another run, a server that cannot
    // be reached to push/fetch
    let io = tempfile::tempdir().unwrap();
    fs::copy(h.join("m.toml"), io.path().join("m.toml")).unwrap();
    build(io.path(), "m.toml", "dist").run();
    fs::write(
        io.path().join(".config"),
        "a file where a directory belongs",
    )
    .unwrap();
    rows.push(("I/O", 3, apply(io.path(), V12).any_status().run()));
    let ro = tempfile::tempdir().unwrap();
    fs::copy(h.join("m.toml"), ro.path().join("m.toml")).unwrap();
    build(ro.path(), "m.toml", "dist").run();
    let ro_cfg = write_cfg(ro.path(), USER);
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&ro_cfg, fs::Permissions::from_mode(0o444)).unwrap();
    }
    rows.push(("permissions", 3, apply(ro.path(), V12).any_status().run()));
    let lock = fs::File::open(state_dir(h).join("zoi-mirror.lock")).unwrap();
    lock.try_lock().unwrap();
    rows.push((
        "lock held",
        3,
        apply(h, V12)
            .args(["--lock-timeout", "0"])
            .any_status()
            .run(),
    ));
    drop(lock);
    Spec::example()
        .set("registry.upstream", "file:///nonexistent/upstream.git")
        .write_to(&h.join("db.toml"));
    rows.push((
        "server unreachable for push/fetch",
        3,
        zm(
            h,
            &[
                "db",
                "sync",
                "-c",
                "db.toml",
                "--work",
                h.join("w").to_str().unwrap(),
            ],
        ),
    ));

    let wrong: Vec<String> = rows
        .iter()
        .filter(|(_, want, r)| r.code != *want)
        .map(|(what, want, r)| format!("{what}: exit {} (want {want})\n{}", r.code, r.stderr))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    // Every row of the README's table is walked.
    let readme = fs::read_to_string(support::repo_root().join("README.md")).unwrap();
    for (code, words) in [
        (
            "| 1 |",
            &["drift", "unreachable", "mismatch", "verification failed"][..],
        ),
        ("| 2 |", &["spec", "config", "bundle", "flag"][..]),
        (
            "| 3 |",
            &["I/O", "permissions", "a lock held", "push/fetch"][..],
        ),
    ] {
        let line = readme.lines().find(|l| l.starts_with(code)).unwrap();
        for w in words {
            assert!(
                line.contains(w),
                "README row {code} no longer says {w:?}: {line}"
            );
        }
    }
}
