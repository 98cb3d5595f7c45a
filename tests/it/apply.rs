//! `apply`, `status`, `revert` on a machine without zoi (the path with the
//! real client is in `e2e`): merging, scopes, safety, bad input, crashes,
//! concurrency.

use std::fs;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::support::cmd::ZmCmd;
use crate::support::{self, Spec, cmd, nginx::Nginx, run, zm_cmd, zoi_types};

const BUNDLE: &str = "dist/acme-mirror-1.2.0";

/// A temp home with the example bundle built into `dist/`.
fn home_with_bundle() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let spec = support::example_spec();
    zm_cmd(home.path())
        .args(["build", "-c"])
        .arg(&spec)
        .args(["-o", "dist"])
        .run();
    home
}

fn user_cfg(home: &Path) -> PathBuf {
    home.join(".config/zoi/config.yaml")
}

/// `apply BUNDLE --no-zoi`; add flags and expectations, then `.run()`.
fn apply(home: &Path) -> ZmCmd {
    zm_cmd(home).args(["apply", BUNDLE, "--no-zoi"])
}

/// `revert acme-mirror --no-zoi`.
fn revert(home: &Path) -> ZmCmd {
    zm_cmd(home).args(["revert", "acme-mirror", "--no-zoi"])
}

fn mapping(text: &str) -> serde_yaml::Mapping {
    match serde_yaml::from_str(text).unwrap() {
        Value::Mapping(m) => m,
        Value::Null => serde_yaml::Mapping::new(),
        other => panic!("not a mapping: {other:?}"),
    }
}

const MANAGED: [&str; 4] = ["repos", "default_registry", "cache_mirrors", "pkg_dirs"];

const BUSY_USER_CONFIG: &str = "\
# Alice's Zoi settings — hand-written, please keep my comments!
telemetry_enabled: false   # never
audit_log_enabled: true
repos:
- core
- extra
- core        # a duplicate that must not multiply
package_managers: [apt, flatpak]
native_package_manager: apt

# local archive stash
pkg_dirs:
  - /mnt/usb
jobs: 8
versions:
  hello: 1.0.0
policy:
  denied_packages: [evil]
rollback_enabled: false
max_delta_steps: 5
my_own_note: keep me   # unknown to Zoi, still mine
";

#[test]
fn apply_changes_only_managed_keys_keeps_comments_and_is_idempotent() {
    let home = home_with_bundle();
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, BUSY_USER_CONFIG).unwrap();

    let r = apply(home.path()).args(["--format", "json"]).run();
    let doc = r.json();
    assert_eq!(doc["already_applied"], false);
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["target"]["config_path"], cfg.to_str().unwrap());
    assert_eq!(doc["zoi"]["action"], "not_used");
    let backup = PathBuf::from(doc["backup"].as_str().unwrap());
    assert_eq!(
        fs::read_to_string(&backup).unwrap(),
        BUSY_USER_CONFIG,
        "backup holds the original"
    );

    let after = fs::read_to_string(&cfg).unwrap();
    let (old, new) = (mapping(BUSY_USER_CONFIG), mapping(&after));
    for (k, v) in &old {
        if !MANAGED.contains(&k.as_str().unwrap()) {
            assert_eq!(new.get(k), Some(v), "unmanaged key {k:?} changed");
        }
    }
    for (k, _) in &new {
        assert!(
            old.contains_key(k) || MANAGED.contains(&k.as_str().unwrap()),
            "new key {k:?}"
        );
    }
    // Every comment line of the original survives.
    for line in BUSY_USER_CONFIG.lines().filter(|l| l.contains('#')) {
        if !line.contains("duplicate") {
            assert!(after.contains(line), "lost {line:?} in\n{after}");
        }
    }
    // Lists merged without duplicates, user's entries first.
    let repos: Vec<String> = serde_yaml::from_value(new["repos"].clone()).unwrap();
    assert_eq!(repos, ["core", "extra", "main", "acme"]);
    let dirs: Vec<String> = serde_yaml::from_value(new["pkg_dirs"].clone()).unwrap();
    assert_eq!(dirs, ["/mnt/usb", "/srv/zoi-archives"]);
    let reg: zoi_types::Registry = serde_yaml::from_value(new["default_registry"].clone()).unwrap();
    assert_eq!(reg.handle, "zoidberg");
    assert_eq!(reg.url, "https://git.acme.example/zoi/zoidberg.git");
    // The company's key for the overlay, and upstream's that signs the
    // archives (Zoidberg's, built into every Zoi).
    assert_eq!(
        reg.authorities,
        Some(vec![
            "acme-registry".to_string(),
            "zillowe-main".to_string()
        ])
    );
    // Zoi can read the result.
    let _: zoi_types::Config = serde_yaml::from_str(&after).unwrap();

    // Second apply: byte-identical, "already applied", no new backup.
    let files_before = fs::read_dir(cfg.parent().unwrap()).unwrap().count();
    let r = apply(home.path()).run();
    assert!(r.stdout.contains("is already applied"), "{}", r.stdout);
    assert_eq!(fs::read_to_string(&cfg).unwrap(), after);
    assert_eq!(
        fs::read_dir(cfg.parent().unwrap()).unwrap().count(),
        files_before
    );
}

#[test]
fn revert_restores_managed_keys_but_keeps_what_the_user_changed_after_apply() {
    let home = home_with_bundle();
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, BUSY_USER_CONFIG).unwrap();
    apply(home.path()).run();

    // After apply the user points default_registry elsewhere and adds a tier.
    let text = fs::read_to_string(&cfg).unwrap();
    let text = text
        .replace(
            "url: https://git.acme.example/zoi/zoidberg.git",
            "url: https://git.other.example/z.git",
        )
        .replace("- acme\n", "- acme\n- test\n");
    fs::write(&cfg, &text).unwrap();

    let r = revert(home.path()).args(["--format", "json"]).run();
    let doc = r.json();
    let actions: Vec<(String, String)> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key"].as_str().unwrap().into(),
                k["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("cache_mirrors".into(), "restored".into()),
            ("default_registry".into(), "kept".into()),
            ("pkg_dirs".into(), "restored".into()),
            ("repos".into(), "restored".into())
        ]
    );
    let after = mapping(&fs::read_to_string(&cfg).unwrap());
    let orig = mapping(BUSY_USER_CONFIG);
    assert_eq!(after.get("pkg_dirs"), orig.get("pkg_dirs"));
    assert!(
        after.get("cache_mirrors").is_none(),
        "absent before apply, absent after revert"
    );
    // our tiers removed, the one the user added kept
    let repos: Vec<String> = serde_yaml::from_value(after["repos"].clone()).unwrap();
    assert_eq!(repos, ["core", "extra", "test"]);
    assert_eq!(
        after["default_registry"]["url"],
        "https://git.other.example/z.git"
    );
    for (k, v) in &orig {
        if !MANAGED.contains(&k.as_str().unwrap()) {
            assert_eq!(after.get(k), Some(v), "{k:?}");
        }
    }
    // A second revert is a no-op.
    revert(home.path())
        .expect_stdout_contains("nothing to revert")
        .run();
}

#[test]
fn apply_then_revert_without_edits_restores_the_file_exactly() {
    let home = home_with_bundle();
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    let original = "# mine\nrepos: [core, main]\noffline_mode: false\n";
    fs::write(&cfg, original).unwrap();
    apply(home.path()).run();
    assert_ne!(fs::read_to_string(&cfg).unwrap(), original);
    revert(home.path()).run();
    let back = fs::read_to_string(&cfg).unwrap();
    assert_eq!(mapping(&back), mapping(original));
    assert!(back.starts_with("# mine\n"));
}

#[test]
fn a_missing_config_dir_is_created_as_a_complete_layer() {
    let home = home_with_bundle();
    let cfg = user_cfg(home.path());
    assert!(!cfg.parent().unwrap().exists());
    apply(home.path()).run();
    let bytes = fs::read(&cfg).unwrap();
    let c: zoi_types::Config = serde_yaml::from_slice(&bytes).unwrap();
    let _legacy: zoi_types::LegacyConfig =
        serde_yaml::from_slice(&bytes).expect("the four booleans Zoi <= 1.25 requires");
    assert_eq!(c.repos, ["core", "main", "extra", "acme"]);
    assert_eq!(c.default_registry.unwrap().handle, "zoidberg");
    assert!(c.rollback_enabled);
    // revert of a file we created removes only what we added
    revert(home.path()).run();
    let m = mapping(&fs::read_to_string(&cfg).unwrap());
    assert!(m.get("default_registry").is_none() && m.get("repos").is_none());
}

#[test]
fn system_scope_and_root_write_the_system_file_with_policy_locks() {
    let home = home_with_bundle();
    let root = home.path().join("image");
    let r = apply(home.path())
        .args(["--scope", "system", "--root"])
        .arg(&root)
        .args(["--format", "json"])
        .run();
    let sys = root.join("etc/zoi/config.yaml");
    assert_eq!(r.json()["target"]["config_path"], sys.to_str().unwrap());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&sys).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o044,
            0o044,
            "every user's Zoi must read a new system config: {mode:o}"
        );
    }
    let c: zoi_types::Config = serde_yaml::from_slice(&fs::read(&sys).unwrap()).unwrap();
    assert!(c.policy.default_registry_unoverridable && c.policy.repos_unoverridable);
    assert_eq!(
        c.policy.denied_licenses,
        Some(vec!["AGPL-3.0-only".to_string()])
    );
    // state under the root too, nothing outside it
    assert!(
        root.join("var/lib/zoi-mirror/acme-mirror.system.json")
            .exists()
    );
    assert!(!user_cfg(home.path()).exists());

    // user scope under --root: the XDG path is prefixed as Zoi does
    let r = apply(home.path())
        .arg("--root")
        .arg(&root)
        .args(["--format", "json"])
        .run();
    let expected = format!("{}{}", root.display(), user_cfg(home.path()).display());
    assert_eq!(r.json()["target"]["config_path"], expected.as_str());
    assert!(Path::new(&expected).exists());

    // status of the system scope: in sync; revert restores
    zm_cmd(home.path())
        .args(["status", BUNDLE, "--no-zoi", "--scope", "system", "--root"])
        .arg(&root)
        .run();
    revert(home.path())
        .args(["--scope", "system", "--root"])
        .arg(&root)
        .run();
    assert!(
        mapping(&fs::read_to_string(&sys).unwrap())
            .get("policy")
            .is_none()
    );
}

#[test]
fn legacy_layout_is_used_when_forced_or_when_only_the_old_file_exists() {
    let home = home_with_bundle();
    let legacy = home.path().join(".zoi/pkgs/config.yaml");
    fs::create_dir_all(legacy.parent().unwrap()).unwrap();
    fs::write(&legacy, "repos: [core]\n").unwrap();
    let r = apply(home.path()).args(["--format", "json"]).run();
    let doc = r.json();
    assert_eq!(doc["target"]["layout"], "legacy");
    assert_eq!(doc["target"]["config_path"], legacy.to_str().unwrap());
    // the booleans old clients require were added
    let _: zoi_types::LegacyConfig = serde_yaml::from_slice(&fs::read(&legacy).unwrap()).unwrap();
    assert!(!user_cfg(home.path()).exists());

    // --layout xdg overrides the detection (after reverting the legacy
    // apply); status then warns about the old file
    revert(home.path()).run();
    apply(home.path()).args(["--layout", "xdg"]).run();
    assert!(user_cfg(home.path()).exists());
    // drift or not, the trap is reported
    let r = status(home.path())
        .args(["--layout", "xdg"])
        .any_status()
        .run();
    let traps: Vec<String> = r.json()["traps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        traps.contains(&"legacy_file_ignored".to_string()),
        "{traps:?}"
    );
}

#[test]
fn a_read_only_config_is_refused_with_exit_3_and_left_alone() {
    let home = home_with_bundle();
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, "repos: [core]\n").unwrap();
    let mut perms = fs::metadata(&cfg).unwrap().permissions();
    perms.set_readonly(true);
    fs::set_permissions(&cfg, perms).unwrap();
    apply(home.path())
        .expect_status(3)
        .expect_stderr_contains("is read-only")
        .expect_stderr_contains("hint: make it writable")
        .run();
    assert_eq!(fs::read_to_string(&cfg).unwrap(), "repos: [core]\n");
    assert_eq!(
        fs::read_dir(cfg.parent().unwrap()).unwrap().count(),
        1,
        "no backup either"
    );
}

#[test]
fn dry_run_prints_the_diff_and_changes_nothing() {
    let home = home_with_bundle();
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, "repos: [core]\n").unwrap();
    let r = apply(home.path()).args(["--dry-run"]).run();
    assert!(
        r.stdout.contains(&format!("--- {}", cfg.display())),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("+- acme\n"), "{}", r.stdout);
    assert_eq!(fs::read_to_string(&cfg).unwrap(), "repos: [core]\n");
    assert!(
        !home.path().join(".local/state/zoi-mirror").exists(),
        "no state, no lock"
    );
}

// ------------------------------------------------------------- bad input

fn tamper(home: &Path, file: &str, f: impl FnOnce(String) -> String) {
    let p = home.join(BUNDLE).join(file);
    let t = fs::read_to_string(&p).unwrap();
    fs::write(&p, f(t)).unwrap();
}

#[test]
fn malformed_inputs_fail_with_their_message_and_exit_code_and_change_nothing() {
    type Setup = Box<dyn Fn(&Path) -> Vec<String>>;
    let original = "# keep\nrepos: [core]\n";
    let srv_dir = tempfile::tempdir().unwrap();
    let srv = Nginx::start(srv_dir.path());
    let missing_url = srv.url("nothing/here/");
    let cases: Vec<(&str, Setup, i32, &str)> = vec![
        (
            "YAML syntax error",
            Box::new(|h: &Path| {
                fs::write(user_cfg(h), "repos: [core\nx: 1\n").unwrap();
                vec![]
            }),
            2,
            "is not a valid Zoi config layer",
        ),
        (
            "wrong type (Zoi would discard the layer)",
            Box::new(|h: &Path| {
                fs::write(user_cfg(h), "cache_mirrors: notalist\n").unwrap();
                vec![]
            }),
            2,
            "Zoi silently replaces a layer with a wrong type",
        ),
        (
            "wrong type nested",
            Box::new(|h: &Path| {
                fs::write(user_cfg(h), "default_registry: {url: [a]}\n").unwrap();
                vec![]
            }),
            2,
            "is not a valid Zoi config layer",
        ),
        (
            "top level is a list",
            Box::new(|h: &Path| {
                fs::write(user_cfg(h), "- core\n- main\n").unwrap();
                vec![]
            }),
            2,
            "is not a YAML mapping",
        ),
        (
            "tampered config layer in the bundle",
            Box::new(|h: &Path| {
                tamper(h, "config.user.yaml", |t| {
                    t.replace("git.acme.example", "git.evil.example")
                });
                vec![]
            }),
            1,
            "config.user.yaml of dist/acme-mirror-1.2.0 has SHA-512",
        ),
        (
            "tampered extension in the bundle",
            Box::new(|h: &Path| {
                tamper(h, "acme-mirror.pkg.lua", |t| t + "\nos.execute('id')\n");
                vec![]
            }),
            1,
            "acme-mirror.pkg.lua of dist/acme-mirror-1.2.0 has SHA-512",
        ),
        (
            "missing bundle.json",
            Box::new(|h: &Path| {
                fs::remove_file(h.join(BUNDLE).join("bundle.json")).unwrap();
                vec![]
            }),
            2,
            "has no bundle.json: not a zoi-mirror bundle",
        ),
        (
            "unknown bundle format version",
            Box::new(|h: &Path| {
                tamper(h, "bundle.json", |t| {
                    t.replace("\"format_version\": 1", "\"format_version\": 99")
                });
                vec![]
            }),
            2,
            "has bundle format version 99; this zoi-mirror reads version 1",
        ),
        (
            "bundle.json is not JSON",
            Box::new(|h: &Path| {
                tamper(h, "bundle.json", |t| t.replace('{', "<"));
                vec![]
            }),
            2,
            "is not valid JSON",
        ),
        (
            "bundle.json lists a file outside the bundle",
            Box::new(|h: &Path| {
                tamper(h, "bundle.json", |t| {
                    t.replace("\"config.user.yaml\": {", "\"../../.bashrc\": {\"sha512\": \"00\", \"size\": 1}, \"config.user.yaml\": {")
                });
                vec![]
            }),
            2,
            "lists a file outside the bundle",
        ),
        (
            "bundle.json manages an unknown key",
            Box::new(|h: &Path| {
                tamper(h, "bundle.json", |t| {
                    t.replacen("\"repos\",", "\"telemetry_enabled\",", 1)
                });
                vec![]
            }),
            2,
            "manages `telemetry_enabled`",
        ),
        (
            "--sha512 mismatch",
            Box::new(|_: &Path| vec!["--sha512".into(), "ab".repeat(64)]),
            1,
            "not the pinned",
        ),
        (
            "bundle directory does not exist",
            Box::new(|h: &Path| {
                fs::remove_dir_all(h.join(BUNDLE)).unwrap();
                vec![]
            }),
            2,
            "bundle directory dist/acme-mirror-1.2.0 not found",
        ),
        (
            "the bundle path is a file",
            Box::new(|h: &Path| {
                fs::remove_dir_all(h.join(BUNDLE)).unwrap();
                fs::write(h.join(BUNDLE), "not a bundle").unwrap();
                vec![]
            }),
            2,
            "bundle directory dist/acme-mirror-1.2.0 is not a directory",
        ),
        (
            "a bundle URL that 404s",
            Box::new(move |_: &Path| vec!["--bundle-url".into(), missing_url.clone()]),
            1,
            "HTTP 404 Not Found",
        ),
        (
            "a bad --header",
            Box::new(|_: &Path| vec!["--header".into(), "no-colon-here".into()]),
            2,
            "a --header must look like `Name: value`",
        ),
        // --verify needs the CA only after the config is written: a bad
        // one is found before that.
        (
            "a --ca-cert that does not exist",
            Box::new(|_: &Path| vec!["--verify".into(), "--ca-cert".into(), "nope.pem".into()]),
            2,
            "--ca-cert nope.pem: not found",
        ),
        (
            "a --ca-cert holding no certificate",
            Box::new(|h: &Path| {
                fs::write(h.join("ca.pem"), "not a certificate\n").unwrap();
                vec!["--verify".into(), "--ca-cert".into(), "ca.pem".into()]
            }),
            2,
            "--ca-cert ca.pem: holds no PEM certificate",
        ),
    ];
    assert!(cases.len() >= 12);
    for (label, setup, code, message) in cases {
        let home = home_with_bundle();
        let cfg = user_cfg(home.path());
        fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        fs::write(&cfg, original).unwrap();
        let mut extra = setup(home.path());
        let before = fs::read(&cfg).unwrap();
        let mut bundle = BUNDLE.to_string();
        if extra.first().is_some_and(|a| a == "--bundle-url") {
            bundle = extra.remove(1);
            extra.remove(0);
        }
        let mut args: Vec<String> = vec!["apply".into(), bundle, "--no-zoi".into()];
        args.extend(extra);
        let r = run(cmd(home.path()).args(&args));
        assert_eq!(r.code, code, "{label}: exit code\n{}", r.stderr);
        assert!(
            r.stderr.contains(message),
            "{label}: stderr lacks {message:?}:\n{}",
            r.stderr
        );
        assert!(r.stderr.contains("error: "), "{label}");
        assert_eq!(fs::read(&cfg).unwrap(), before, "{label}: config changed");
        assert_eq!(
            fs::read_dir(cfg.parent().unwrap()).unwrap().count(),
            1,
            "{label}: stray files"
        );
        assert!(
            !home
                .path()
                .join(".local/state/zoi-mirror/acme-mirror.user.json")
                .exists(),
            "{label}: state written"
        );
        // JSON errors are one document on stdout
        let mut args_json = args.clone();
        args_json.push("--format".into());
        args_json.push("json".into());
        let r = run(cmd(home.path()).args(&args_json));
        assert_eq!(r.json()["error"]["exit_code"], code, "{label}");
    }
}

#[test]
fn apply_from_an_http_url_with_a_pinned_bundle_json() {
    let home = home_with_bundle();
    let srv = Nginx::start(&home.path().join("dist"));
    let url = srv.url("acme-mirror-1.2.0/");
    let pin = crate::support::sha512_file(&home.path().join(BUNDLE).join("bundle.json"));
    let r = zm_cmd(home.path())
        .args([
            "apply", &url, "--sha512", &pin, "--no-zoi", "--format", "json",
        ])
        .run();
    assert_eq!(r.json()["changed"], true);
    let c: zoi_types::Config =
        serde_yaml::from_slice(&fs::read(user_cfg(home.path())).unwrap()).unwrap();
    assert_eq!(
        c.default_registry.unwrap().url,
        "https://git.acme.example/zoi/zoidberg.git"
    );
    // a file tampered on the server is caught before use
    tamper(home.path(), "config.user.yaml", |t| {
        t.replace("extra", "evil")
    });
    zm_cmd(home.path())
        .args(["apply", &url, "--no-zoi"])
        .expect_status(1)
        .expect_stderr_contains(format!("config.user.yaml of {url}"))
        .run();
}

/// `apply URL --verify --rollback-on-fail` has written the config when
/// --verify fetches the bundle's repo.yaml (apply itself never reads it).
/// A mirror that no longer serves it must not leave the config applied:
/// setup.sh tells the user only what zoi-mirror says it could not undo.
#[test]
fn a_bundle_file_verify_cannot_download_rolls_the_apply_back() {
    let home = home_with_bundle();
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, BUSY_USER_CONFIG).unwrap();
    fs::remove_file(home.path().join(BUNDLE).join("repo.yaml")).unwrap();
    let srv = Nginx::start(&home.path().join("dist"));
    let url = srv.url("acme-mirror-1.2.0/");
    let state = home
        .path()
        .join(".local/state/zoi-mirror/acme-mirror.user.json");

    let r = zm_cmd(home.path())
        .args(["apply", &url, "--no-zoi", "--verify", "--rollback-on-fail"])
        .args(["--format", "json"])
        .expect_status(1)
        .run();
    let e = &r.json()["error"];
    assert_eq!(e["kind"], "download", "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "the bundle was applied, but --verify could not check the mirror; this run's changes were undone: cannot download"
        ) && msg.contains("repo.yaml"),
        "{msg}"
    );
    assert!(e["hint"].is_string(), "{e}");
    // The run got as far as applying: the user layer was fetched, then the
    // 404 for repo.yaml.
    let log = srv.access_log();
    assert!(
        log.contains("GET /acme-mirror-1.2.0/config.user.yaml"),
        "{log}"
    );
    assert!(
        log.contains("GET /acme-mirror-1.2.0/repo.yaml HTTP/1.1\" 404"),
        "{log}"
    );
    assert_eq!(fs::read_to_string(&cfg).unwrap(), BUSY_USER_CONFIG);
    assert!(!state.exists(), "the state of the undone run is gone");

    // Human output: the sentence, then the download error as its cause.
    let r = zm_cmd(home.path())
        .args(["apply", &url, "--no-zoi", "--verify", "--rollback-on-fail"])
        .expect_status(1)
        .expect_stderr_contains(
            "error: the bundle was applied, but --verify could not check the mirror; this run's changes were undone\nCaused by:\n  cannot download",
        )
        .run();
    assert!(r.stderr.contains("hint: "), "{}", r.stderr);
    assert_eq!(fs::read_to_string(&cfg).unwrap(), BUSY_USER_CONFIG);

    // Without --rollback-on-fail the config stays applied, and it says so.
    zm_cmd(home.path())
        .args(["apply", &url, "--no-zoi", "--verify"])
        .expect_status(1)
        .expect_stderr_contains(
            "error: the bundle was applied, but --verify could not check the mirror (the config stays applied: `zoi-mirror revert acme-mirror` undoes it)\nCaused by:\n  cannot download",
        )
        .run();
    assert_ne!(fs::read_to_string(&cfg).unwrap(), BUSY_USER_CONFIG);
    assert!(state.exists());
}

/// A stand-in for `zoi`, for the faults the real one cannot be told to
/// produce on cue: each call is logged to `$FAKE_ZOI_DIR/calls` (and each
/// file `extension add` is given copied to `added.<call>`); `remove`
/// deletes `$FAKE_ZOI_STORE` (the record it removes); a path in
/// `$FAKE_ZOI_BREAK_ON_REMOVE`/`_ADD` is replaced by a non-empty directory
/// (so no file can be renamed over it, even by root); `add` and `remove`
/// exit with `$FAKE_ZOI_ADD_EXIT`/`$FAKE_ZOI_REMOVE_EXIT`.
fn fake_zoi(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("fake-zoi");
    fs::write(
        &p,
        r#"#!/bin/sh
if [ "$1" = "--version" ]; then echo "Number: 1.29.4"; exit 0; fi
echo "$*" >> "$FAKE_ZOI_DIR/calls"
n=$(wc -l < "$FAKE_ZOI_DIR/calls")
brk() { [ -n "$1" ] && rm -rf "$1" && mkdir -p "$1/x"; return 0; }
case "$2" in
remove) [ -n "$FAKE_ZOI_REMOVE_EXIT" ] && { echo "Error: cannot remove (fault injected)" >&2; exit "$FAKE_ZOI_REMOVE_EXIT"; }
  [ -n "$FAKE_ZOI_STORE" ] && rm -rf "$FAKE_ZOI_STORE"; brk "$FAKE_ZOI_BREAK_ON_REMOVE"; exit 0 ;;
add) cp "$4" "$FAKE_ZOI_DIR/added.$n"; brk "$FAKE_ZOI_BREAK_ON_ADD"; echo "Error: cannot add (fault injected)" >&2; exit "${FAKE_ZOI_ADD_EXIT:-0}" ;;
esac
"#,
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Version 1.0.0 of an extension in Zoi's store (`<data>/pkgs/store/
/// <id>-<name>/1.0.0/`), as Zoi keeps it: its manifest and Zoi's copy of
/// the file it was added from.
struct StoreRecord {
    dir: PathBuf,
    source: String,
}

impl StoreRecord {
    fn make(home: &Path, name: &str) -> StoreRecord {
        let dir = home.join(format!(".local/share/zoi/pkgs/store/x1-{name}"));
        fs::create_dir_all(dir.join("1.0.0")).unwrap();
        fs::write(
            dir.join("1.0.0/manifest.json"),
            format!(r#"{{"name":"{name}","version":"1.0.0","package_type":"extension"}}"#),
        )
        .unwrap();
        let source = format!("-- {name} 1.0.0, Zoi's copy\n");
        fs::write(dir.join("1.0.0/package.pkg.lua"), &source).unwrap();
        StoreRecord { dir, source }
    }
}

/// `apply --verify --rollback-on-fail` of a run that replaced the version
/// Zoi held: the rollback removes the new version and registers the old
/// one again (from Zoi's copy, which Zoi's remove deleted).
#[test]
fn a_rollback_registers_the_replaced_version_again() {
    let home = tempfile::tempdir().unwrap();
    let registry = format!("file://{}/missing.git", home.path().display());
    Spec::minimal()
        .set("extension.name", "lab-mirror")
        .set("registry.url", registry.as_str())
        .set("binaries.url", "http://127.0.0.1:9/pkgs")
        .write(home.path());
    zm_cmd(home.path())
        .args(["build", "-c", "mirror.toml", "-o", "dist"])
        .run();
    let bundle = "dist/lab-mirror-1.0.0";
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, BUSY_USER_CONFIG).unwrap();
    let record = StoreRecord::make(home.path(), "lab-mirror");
    // Zoi holds 1.0.0 of lab-mirror; make it hold another version, so that
    // this apply replaces it.
    let manifest = record.dir.join("1.0.0/manifest.json");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, text.replace("1.0.0", "0.9.0")).unwrap();
    let zoi = fake_zoi(home.path());
    let r = zm_cmd(home.path())
        .args(["apply", bundle, "--zoi"])
        .arg(&zoi)
        .args(["--verify", "--rollback-on-fail", "--format", "json"])
        .env("FAKE_ZOI_DIR", home.path())
        .env("FAKE_ZOI_STORE", &record.dir)
        .expect_status(1)
        .run();
    let doc = r.json();
    assert_eq!(doc["apply"]["zoi"]["action"], "replaced", "{doc}");
    assert_eq!(doc["rolled_back"], true, "{doc}");
    let calls = fs::read_to_string(home.path().join("calls")).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(calls[0], "extension remove -y lab-mirror");
    assert!(
        calls[1].ends_with("dist/lab-mirror-1.0.0/lab-mirror.pkg.lua"),
        "{calls:?}"
    );
    assert_eq!(calls[2], "extension remove -y lab-mirror");
    assert!(
        calls[3].ends_with("/lab-mirror.pkg.lua") && !calls[3].contains("dist/"),
        "{calls:?}"
    );
    assert_eq!(
        fs::read_to_string(home.path().join("added.4")).unwrap(),
        record.source,
        "0.9.0 registered again from Zoi's own copy"
    );
    assert_eq!(fs::read_to_string(&cfg).unwrap(), BUSY_USER_CONFIG);
}

/// The rollback of `--rollback-on-fail` can fail too (here Zoi cannot
/// remove what the run added): the error names both failures and what was
/// and was not put back.
#[test]
fn a_rollback_that_fails_names_both_errors() {
    let home = home_with_bundle();
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, BUSY_USER_CONFIG).unwrap();
    fs::remove_file(home.path().join(BUNDLE).join("repo.yaml")).unwrap();
    let srv = Nginx::start(&home.path().join("dist"));
    let url = srv.url("acme-mirror-1.2.0/");
    let zoi = fake_zoi(home.path());
    let r = zm_cmd(home.path())
        .args(["apply", &url, "--zoi"])
        .arg(&zoi)
        .args(["--verify", "--rollback-on-fail", "--format", "json"])
        .env("FAKE_ZOI_DIR", home.path())
        .env("FAKE_ZOI_REMOVE_EXIT", "1")
        .expect_status(3)
        .run();
    let e = &r.json()["error"];
    assert_eq!(e["kind"], "zoi_failed", "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "the bundle was applied, but --verify could not check the mirror: cannot download "
        ) && msg.contains("repo.yaml: HTTP 404"),
        "{msg}"
    );
    assert!(
        msg.contains(", and this run could not be fully undone: the config was restored unchanged; NOT put back: Zoi still holds acme-mirror 1.2.0 (`zoi extension remove acme-mirror` failed: ")
            && msg.contains("fault injected")
            && msg.contains("the state was kept, so `zoi-mirror revert acme-mirror` can remove it"),
        "{msg}"
    );
    let hint = e["hint"].as_str().unwrap();
    assert!(
        hint.contains("holds the config as it was before this run"),
        "{hint}"
    );
    assert_eq!(fs::read_to_string(&cfg).unwrap(), BUSY_USER_CONFIG);
    let st: serde_json::Value = serde_json::from_slice(
        &fs::read(
            home.path()
                .join(".local/state/zoi-mirror/acme-mirror.user.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(st["zoi_registered"], true, "kept, for revert to remove it");
}

/// When Zoi fails, apply puts the config and the state back; a restore
/// that fails itself is said, with the backup that holds the config.
#[test]
fn a_zoi_failure_says_what_could_not_be_put_back() {
    let home = home_with_bundle();
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, BUSY_USER_CONFIG).unwrap();
    let zoi = fake_zoi(home.path());
    let r = zm_cmd(home.path())
        .args(["apply", BUNDLE, "--zoi"])
        .arg(&zoi)
        .args(["--format", "json"])
        .env("FAKE_ZOI_DIR", home.path())
        .env("FAKE_ZOI_BREAK_ON_ADD", &cfg)
        .env("FAKE_ZOI_ADD_EXIT", "1")
        .expect_status(3)
        .run();
    let e = &r.json()["error"];
    assert_eq!(e["kind"], "zoi_failed", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("fault injected"),
        "{e}"
    );
    let hint = e["hint"].as_str().unwrap();
    assert!(
        hint.starts_with(&format!(
            "Zoi could not add the extension (see its output above); zoi-mirror's state was restored; NOT put back: the config {} could not be restored (",
            cfg.display()
        )),
        "{hint}"
    );
    assert!(!hint.contains("restored unchanged"), "{hint}");
    let bak = hint
        .split("the backup ")
        .nth(1)
        .and_then(|t| t.split(" holds it as it was").next())
        .unwrap_or_else(|| panic!("no backup named: {hint}"));
    assert_eq!(fs::read_to_string(bak).unwrap(), BUSY_USER_CONFIG);
    assert!(
        !home
            .path()
            .join(".local/state/zoi-mirror/acme-mirror.user.json")
            .exists(),
        "the state of the failed run is gone"
    );
}

/// A run replacing the version Zoi holds removes it first: when the run
/// then fails (here: the config cannot be written to hide a tier from
/// Zoi), that version is registered again from Zoi's own copy of its file,
/// and the state is put back.
#[test]
fn a_failure_after_zoi_removed_the_old_version_registers_it_again() {
    let home = tempfile::tempdir().unwrap();
    Spec::example()
        .list("client.repo_add", ["acme"])
        .write_to(&home.path().join("m.toml"));
    zm_cmd(home.path())
        .args(["build", "-c", "m.toml", "-o", "dist"])
        .run();
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, BUSY_USER_CONFIG).unwrap();
    // An earlier apply (its `acme` tier is what Zoi's repo-add would refuse)...
    apply(home.path()).run();
    let state = home
        .path()
        .join(".local/state/zoi-mirror/acme-mirror.user.json");
    let state_before = fs::read(&state).unwrap();
    // ... and version 1.0.0 in Zoi's store.
    let record = StoreRecord::make(home.path(), "acme-mirror");
    let old_source = record.source.as_str();

    let zoi = fake_zoi(home.path());
    let r = zm_cmd(home.path())
        .args(["apply", BUNDLE, "--zoi"])
        .arg(&zoi)
        .args(["--format", "json"])
        .env("FAKE_ZOI_DIR", home.path())
        .env("FAKE_ZOI_STORE", &record.dir)
        .env("FAKE_ZOI_BREAK_ON_REMOVE", &cfg)
        .expect_status(3)
        .run();
    let e = &r.json()["error"];
    assert_eq!(e["kind"], "io", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains(cfg.to_str().unwrap()),
        "{e}"
    );
    let hint = e["hint"].as_str().unwrap();
    for part in [
        "the tiers Zoi would refuse could not be hidden from it",
        "Zoi holds acme-mirror 1.0.0 again",
        "zoi-mirror's state was restored",
        "NOT put back: the config",
    ] {
        assert!(hint.contains(part), "{part:?} missing: {hint}");
    }
    let calls = fs::read_to_string(home.path().join("calls")).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], "extension remove -y acme-mirror");
    assert!(
        calls[1].starts_with("extension add -y ") && calls[1].ends_with("/acme-mirror.pkg.lua"),
        "{calls:?}"
    );
    assert_eq!(
        fs::read_to_string(home.path().join("added.2")).unwrap(),
        old_source,
        "registered again from Zoi's own copy"
    );
    assert_eq!(fs::read(&state).unwrap(), state_before, "state put back");
}

// ------------------------------------------------------------- status

/// `status BUNDLE --no-zoi --format json`.
fn status(home: &Path) -> ZmCmd {
    zm_cmd(home).args(["status", BUNDLE, "--no-zoi", "--format", "json"])
}

fn setting<'a>(doc: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    doc["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap()
}

#[test]
fn status_reports_sync_drift_deciding_layer_and_traps() {
    let home = home_with_bundle();
    // before apply: drift (Zoi's built-in registry is used)
    let r = status(home.path()).expect_status(1).run();
    let doc = r.json();
    assert_eq!(doc["in_sync"], false);
    assert_eq!(setting(&doc, "default_registry")["decided_by"], "default");
    assert_eq!(setting(&doc, "default_registry")["ok"], false);

    apply(home.path()).run();
    let r = status(home.path()).expect_status(0).run();
    assert_eq!(setting(&r.json(), "default_registry")["decided_by"], "user");

    // the user changes the handle: package ids change, drift
    let cfg = user_cfg(home.path());
    let t = fs::read_to_string(&cfg)
        .unwrap()
        .replace("handle: zoidberg", "handle: ''");
    fs::write(&cfg, t).unwrap();
    let r = status(home.path()).expect_status(1).run();
    let why = setting(&r.json(), "default_registry")["why"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("package ids"), "{why}");

    // a project layer overrides the registry: decided by project
    let t = fs::read_to_string(&cfg)
        .unwrap()
        .replace("handle: ''", "handle: zoidberg");
    fs::write(&cfg, t).unwrap();
    let proj = home.path().join(".zoi/pkgs/config.yaml");
    fs::create_dir_all(proj.parent().unwrap()).unwrap();
    fs::write(
        &proj,
        "default_registry: {handle: x, url: https://elsewhere/z.git}\n",
    )
    .unwrap();
    let doc = status(home.path()).expect_status(1).run().json();
    assert_eq!(setting(&doc, "default_registry")["decided_by"], "project");
    assert_eq!(
        setting(&doc, "default_registry")["project"]["url"],
        "https://elsewhere/z.git"
    );
    fs::remove_file(&proj).unwrap();

    // a wrong type anywhere in the user layer: Zoi discards all of it
    let good = fs::read_to_string(&cfg).unwrap();
    fs::write(&cfg, format!("{good}jobs: many\n")).unwrap();
    let r = status(home.path()).expect_status(1).run();
    let doc = r.json();
    assert!(
        doc["traps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "layer_discarded"),
        "{doc}"
    );
    assert_eq!(setting(&doc, "repos")["ok"], false);
    fs::write(&cfg, &good).unwrap();

    // broken YAML is told apart from a discarded layer
    fs::write(&cfg, format!("{good}repos: [unclosed\n")).unwrap();
    let doc = status(home.path()).expect_status(1).run().json();
    let kinds: Vec<&str> = doc["traps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"layer_syntax_error"), "{doc}");
    assert!(!kinds.contains(&"layer_discarded"), "{doc}");
    fs::write(&cfg, &good).unwrap();

    // a repos list in the system layer with a lock drops our tiers
    let root = home.path().join("r");
    fs::create_dir_all(root.join("etc/zoi")).unwrap();
    let user_under_root = PathBuf::from(format!("{}{}", root.display(), cfg.display()));
    fs::create_dir_all(user_under_root.parent().unwrap()).unwrap();
    fs::copy(&cfg, &user_under_root).unwrap();
    fs::write(
        root.join("etc/zoi/config.yaml"),
        "repos: [core]\npolicy: {repos_unoverridable: true}\n",
    )
    .unwrap();
    let r = status(home.path())
        .args(["--root", root.to_str().unwrap()])
        .expect_status(1)
        .run();
    let repos = setting(&r.json(), "repos").clone();
    assert_eq!(repos["effective"], serde_json::json!(["core"]));
    assert!(
        repos["why"]
            .as_str()
            .unwrap()
            .contains("main, extra, acme not active"),
        "{repos}"
    );
}

#[test]
fn status_warns_about_cache_mirror_order() {
    let home = tempfile::tempdir().unwrap();
    Spec::example()
        .list(
            "client.cache_mirrors",
            [
                "https://z-primary.acme.example/flat",
                "https://a-backup.acme.example/flat",
            ],
        )
        .write_to(&home.path().join("m.toml"));
    zm_cmd(home.path())
        .args(["build", "-c", "m.toml", "-o", "dist"])
        .run();
    apply(home.path()).run();
    let doc = status(home.path()).any_status().run().json();
    let trap = doc["traps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "cache_mirrors_resorted")
        .unwrap();
    assert!(
        trap["message"]
            .as_str()
            .unwrap()
            .contains("tries https://a-backup.acme.example/flat first")
    );
    assert_eq!(trap["severity"], "warning");
}

// ------------------------------------------------------------- crashes, locks

#[test]
fn a_crash_at_any_point_leaves_the_old_or_the_new_file_and_a_rerun_recovers() {
    let points = ["after-lock", "after-backup", "after-state", "after-config"];
    let original = "# mine\nrepos: [extra]\njobs: 4\n";
    let mut final_text = None;
    for point in points {
        let home = home_with_bundle();
        let cfg = user_cfg(home.path());
        fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        fs::write(&cfg, original).unwrap();
        let r = run(cmd(home.path())
            .args(["apply", BUNDLE, "--no-zoi"])
            .env("ZOI_MIRROR_FAILPOINT", point));
        assert_ne!(r.code, 0, "{point}: the failpoint must fire");
        let text = fs::read_to_string(&cfg).unwrap();
        let parsed: zoi_types::Config = serde_yaml::from_str(&text).unwrap();
        let is_old = text == original;
        assert!(
            is_old || parsed.repos.contains(&"acme".to_string()),
            "{point}: neither old nor new:\n{text}"
        );
        // Next to the config, only the backup and, killed between the two
        // first flushes, the staged new text (hidden, never read by Zoi);
        // the rerun removes it.
        let strays = |when: &str| {
            for e in fs::read_dir(cfg.parent().unwrap()).unwrap().flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                let staged = n.starts_with(".config.yaml.") && n.ends_with(".tmp");
                assert!(
                    n == "config.yaml"
                        || n.ends_with(".bak")
                        || (staged && point == "after-state" && when == "killed"),
                    "{point}, {when}: stray {n}"
                );
            }
        };
        strays("killed");
        // a rerun completes, and revert gets back the original
        apply(home.path()).run();
        strays("rerun");
        let applied = fs::read_to_string(&cfg).unwrap();
        if let Some(f) = &final_text {
            assert_eq!(&applied, f, "{point}: recovery differs from a clean apply");
        }
        final_text = Some(applied);
        revert(home.path()).run();
        assert_eq!(
            mapping(&fs::read_to_string(&cfg).unwrap()),
            mapping(original),
            "{point}"
        );
    }
}

/// What a power cut could lose is what was not flushed, so the flushes are
/// ordered (client/apply.rs `execute`): watched with strace, the real
/// system calls of a real run. Each flush must have returned before the
/// rename that relies on it, and the config's rename is flushed before the
/// run ends.
#[test]
fn every_rename_waits_for_the_flushes_a_power_cut_would_need() {
    let home = home_with_bundle();
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, "# mine\nrepos: [extra]\n").unwrap();
    let log = home.path().join("strace.log");
    let mut c = cmd(home.path());
    c.args(["apply", BUNDLE, "--no-zoi"]);
    let r = run(&mut support::under_strace(
        &c,
        &log,
        "fsync,fdatasync,rename,renameat,renameat2,sync_file_range",
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);

    // Events in the order they took effect (`support::strace_events`).
    let text = fs::read_to_string(&log).unwrap();
    let events: Vec<(&str, String)> = support::strace_events(&text)
        .into_iter()
        .map(|e| match e {
            support::Syscall::Flushed(p) => ("flushed", p),
            support::Syscall::Renamed { to, .. } => ("renamed", to),
            support::Syscall::WritebackStarted(p) => ("started", p),
        })
        .collect();
    let at = |what: &str, pred: &dyn Fn(&str) -> bool| -> Vec<usize> {
        events
            .iter()
            .enumerate()
            .filter(|(_, (k, p))| *k == what && pred(p))
            .map(|(i, _)| i)
            .collect()
    };
    let state = home
        .path()
        .join(".local/state/zoi-mirror/acme-mirror.user.json");
    let state_s = state.to_string_lossy().into_owned();
    let state_dir = state.parent().unwrap().to_string_lossy().into_owned();
    let cfg_s = cfg.to_string_lossy().into_owned();
    let cfg_dir = cfg.parent().unwrap().to_string_lossy().into_owned();
    let state_renamed = at("renamed", &|p| p == state_s)[0];
    let cfg_renamed = at("renamed", &|p| p == cfg_s)[0];
    let first = |pred: &dyn Fn(&str) -> bool, what: &str| -> usize {
        *at("flushed", pred)
            .first()
            .unwrap_or_else(|| panic!("{what} is never flushed:\n{text}"))
    };
    let state_tmp = first(
        &|p| p.contains("/.acme-mirror.user.json.") && p.ends_with(".tmp"),
        "the staged state",
    );
    let backup = first(
        &|p| p.contains("config.yaml.zoi-mirror-") && p.ends_with(".bak"),
        "the backup",
    );
    let cfg_tmp = first(
        &|p| p.contains("/.config.yaml.") && p.ends_with(".tmp"),
        "the staged config",
    );
    let state_dir_flushed = first(&|p| p == state_dir, "the state directory");
    let cfg_dir_flushes = at("flushed", &|p| p == cfg_dir);
    assert!(
        state_tmp < state_renamed,
        "the state's bytes before its name:\n{text}"
    );
    assert!(
        backup < cfg_renamed,
        "the backup's bytes before the config is replaced:\n{text}"
    );
    assert!(
        state_renamed < state_dir_flushed && state_dir_flushed < cfg_renamed,
        "the state's name before the config is replaced:\n{text}"
    );
    assert!(
        cfg_tmp < cfg_renamed,
        "the config's bytes before its name:\n{text}"
    );
    // Without Zoi they go with the first flush, leaving the second only
    // names to write.
    assert!(
        cfg_tmp < state_renamed,
        "the config's bytes wait for a flush of their own:\n{text}"
    );
    assert!(
        cfg_dir_flushes.iter().any(|i| *i < cfg_renamed),
        "the backup's name before the config is replaced:\n{text}"
    );
    assert!(
        cfg_dir_flushes.iter().any(|i| *i > cfg_renamed),
        "the config's new name before the run ends:\n{text}"
    );
    // The first wave costs about one wait, not one per file: the backup's,
    // the staged state's and the staged config's writebacks all start
    // before any of them is flushed, so one journal commit carries them
    // all (`fsutil::sync_together`).
    let started = |pred: &dyn Fn(&str) -> bool, what: &str| -> usize {
        *at("started", pred)
            .first()
            .unwrap_or_else(|| panic!("{what}'s writeback is never started:\n{text}"))
    };
    let wave = state_tmp.min(backup).min(cfg_tmp);
    for (pred, what) in [
        (
            &(|p: &str| p.contains("/.acme-mirror.user.json.") && p.ends_with(".tmp"))
                as &dyn Fn(&str) -> bool,
            "the staged state",
        ),
        (
            &|p: &str| p.contains("config.yaml.zoi-mirror-") && p.ends_with(".bak"),
            "the backup",
        ),
        (
            &|p: &str| p.contains("/.config.yaml.") && p.ends_with(".tmp"),
            "the staged config",
        ),
    ] {
        assert!(
            started(pred, what) < wave,
            "{what}'s writeback starts only after the first flush of its wave:\n{text}"
        );
    }
}

#[test]
fn real_kills_during_apply_never_leave_a_torn_file() {
    let original = "# mine\nrepos: [extra]\n";
    for delay_us in [0u64, 200, 500, 1000, 2000, 3000, 5000, 8000] {
        let home = home_with_bundle();
        let cfg = user_cfg(home.path());
        fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        fs::write(&cfg, original).unwrap();
        let mut child = cmd(home.path())
            .args(["apply", BUNDLE, "--no-zoi"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(delay_us));
        let _ = child.kill();
        let _ = child.wait();
        let text = fs::read_to_string(&cfg).unwrap();
        let parsed: zoi_types::Config = serde_yaml::from_str(&text).unwrap();
        assert!(
            text == original || parsed.repos.contains(&"acme".to_string()),
            "torn after {delay_us}us:\n{text}"
        );
    }
}

#[test]
fn two_applies_at_once_give_one_result_and_lose_no_keys() {
    for _ in 0..5 {
        let home = home_with_bundle();
        let cfg = user_cfg(home.path());
        fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        fs::write(&cfg, BUSY_USER_CONFIG).unwrap();
        let spawn = || {
            cmd(home.path())
                .args(["apply", BUNDLE, "--no-zoi"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let (ra, rb) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(ra.status.success() && rb.status.success());
        let text = fs::read_to_string(&cfg).unwrap();
        let m = mapping(&text);
        for k in mapping(BUSY_USER_CONFIG).keys() {
            assert!(m.contains_key(k), "lost {k:?}");
        }
        // exactly one of them did the work
        let outs = [
            String::from_utf8_lossy(&ra.stdout).to_string(),
            String::from_utf8_lossy(&rb.stdout).to_string(),
        ];
        assert_eq!(
            outs.iter()
                .filter(|o| o.contains("already applied"))
                .count(),
            1,
            "{outs:?}"
        );
        apply(home.path()).run();
        assert_eq!(fs::read_to_string(&cfg).unwrap(), text);
    }
}

#[test]
fn a_held_lock_makes_a_second_run_wait_then_exit_3() {
    let home = home_with_bundle();
    let state = home.path().join(".local/state/zoi-mirror");
    fs::create_dir_all(&state).unwrap();
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state.join("zoi-mirror.lock"))
        .unwrap();
    f.lock().unwrap();
    let t = std::time::Instant::now();
    apply(home.path())
        .args(["--lock-timeout", "1"])
        .expect_status(3)
        .expect_stderr_contains("another zoi-mirror run holds the lock")
        .run();
    assert!(t.elapsed() >= std::time::Duration::from_millis(900));
    assert!(!user_cfg(home.path()).exists());
    drop(f);
    apply(home.path()).run();
}

/// The unprivileged user the sudo tests act for.
fn test_user() -> nix::unistd::User {
    nix::unistd::User::from_name(support::zoienv::USER)
        .unwrap()
        .expect("the test user (scripts/test-deps.sh creates it)")
}

#[test]
fn under_sudo_the_invoking_users_home_is_used_and_files_stay_theirs() {
    let home = home_with_bundle();
    let root = home.path().join("img");
    let user = test_user();
    let r = run(cmd(home.path())
        .args([
            "apply",
            BUNDLE,
            "--no-zoi",
            "--root",
            root.to_str().unwrap(),
            "--format",
            "json",
        ])
        .env("SUDO_USER", support::zoienv::USER)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_DATA_HOME"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let expected = format!(
        "{}{}/.config/zoi/config.yaml",
        root.display(),
        user.dir.display()
    );
    assert_eq!(
        r.json()["target"]["config_path"],
        expected.as_str(),
        "home from SUDO_USER, not HOME"
    );
    if nix::unistd::geteuid().is_root() {
        use std::os::unix::fs::MetadataExt;
        for p in [
            PathBuf::from(&expected),
            PathBuf::from(format!(
                "{}{}/.local/state/zoi-mirror/acme-mirror.user.json",
                root.display(),
                user.dir.display()
            )),
        ] {
            assert_eq!(
                fs::metadata(&p).unwrap().uid(),
                user.uid.as_raw(),
                "{} must belong to the user",
                p.display()
            );
        }
    }
}

/// Under sudo the staged config is given the config's owner, the invoking
/// user: a run killed with it staged leaves a temp that is theirs, which
/// the next run under sudo (root) still recognises as its own and removes.
#[cfg(unix)]
#[test]
fn under_sudo_a_killed_runs_staged_config_is_removed_by_the_next_run() {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to act as sudo");
        return;
    }
    let home = home_with_bundle();
    let root = home.path().join("img");
    let user = test_user();
    let cfg = PathBuf::from(format!(
        "{}{}/.config/zoi/config.yaml",
        root.display(),
        user.dir.display()
    ));
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, "# mine\nrepos: [extra]\n").unwrap();
    for p in [cfg.as_path(), cfg.parent().unwrap()] {
        nix::unistd::chown(p, Some(user.uid), Some(user.gid)).unwrap();
    }
    let sudo_apply = |failpoint: Option<&str>| {
        let mut c = cmd(home.path());
        c.args([
            "apply",
            BUNDLE,
            "--no-zoi",
            "--root",
            root.to_str().unwrap(),
        ])
        .env("SUDO_USER", support::zoienv::USER)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_DATA_HOME");
        if let Some(f) = failpoint {
            c.env("ZOI_MIRROR_FAILPOINT", f);
        }
        run(&mut c)
    };
    let staged = || -> Vec<(String, u32)> {
        fs::read_dir(cfg.parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(".config.yaml.") && n.ends_with(".tmp")
            })
            .map(|e| {
                let uid = e.metadata().unwrap().uid();
                (e.file_name().to_string_lossy().into_owned(), uid)
            })
            .collect()
    };
    assert_ne!(
        sudo_apply(Some("after-state")).code,
        0,
        "the failpoint fires"
    );
    let left = staged();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].1, user.uid.as_raw(), "the temp is the user's");
    let r = sudo_apply(None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(staged(), [], "the rerun removes it");
}

/// Under sudo (user scope) Zoi runs as the invoking user, who cannot read
/// root's temp dir under a strict umask (077 here, as hardened hosts set
/// for root), where a bundle from a URL is downloaded: Zoi gets a copy of
/// the extension file that is theirs. A stand-in zoi reads the file it is
/// given, as that user.
#[cfg(unix)]
#[test]
fn under_sudo_zoi_can_read_the_extension_of_a_downloaded_bundle() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run zoi as another user");
        return;
    }
    let home = home_with_bundle();
    let user = test_user();
    // The stand-in, its log and the root dir all reachable by the user.
    let open = home.path().join("open");
    fs::create_dir_all(&open).unwrap();
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let zoi = open.join("zoi");
    fs::write(
        &zoi,
        r#"#!/bin/sh
if [ "$1" = "--version" ]; then echo "Number: 1.29.4"; exit 0; fi
for a in "$@"; do last=$a; done
case "$*" in
*"extension add"*) cat "$last" > "$ZOI_READ_LOG" || exit 1; id -u >> "$ZOI_READ_LOG" ;;
esac
exit 0
"#,
    )
    .unwrap();
    fs::set_permissions(&zoi, fs::Permissions::from_mode(0o755)).unwrap();
    let root = open.join("img");
    let srv = Nginx::start(&home.path().join("dist"));
    let url = srv.url("acme-mirror-1.2.0/");
    let log = open.join("read");
    let mut c = cmd(home.path());
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: umask is async-signal-safe and touches no memory.
        unsafe {
            c.pre_exec(|| {
                nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
                Ok(())
            });
        }
    }
    let r = run(c
        .args(["apply", &url, "--zoi", zoi.to_str().unwrap()])
        .args(["--root", root.to_str().unwrap(), "--format", "json"])
        .env("SUDO_USER", support::zoienv::USER)
        .env("ZOI_READ_LOG", &log)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_DATA_HOME"));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["zoi"]["action"], "added", "{}", r.stdout);
    let read = fs::read_to_string(&log).unwrap();
    let bundled = fs::read_to_string(home.path().join(BUNDLE).join("acme-mirror.pkg.lua")).unwrap();
    assert_eq!(
        read,
        format!("{bundled}{}\n", user.uid),
        "zoi, as the invoking user, read the whole extension file"
    );
}

#[test]
fn an_upgrade_drops_entries_the_old_bundle_added_and_keeps_the_users() {
    let home = home_with_bundle();
    let cfg = user_cfg(home.path());
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, "cache_mirrors: [https://mine.example/flat]\n").unwrap();
    apply(home.path()).run();
    // version 1.3.0 retires bin-dr in favour of another mirror
    Spec::example()
        .set("extension.version", "1.3.0")
        .list("client.cache_mirrors", ["https://bin-eu.acme.example/flat"])
        .write_to(&home.path().join("v13.toml"));
    zm_cmd(home.path())
        .args(["build", "-c", "v13.toml", "-o", "dist"])
        .run();
    zm_cmd(home.path())
        .args(["apply", "dist/acme-mirror-1.3.0", "--no-zoi"])
        .run();
    let m = mapping(&fs::read_to_string(&cfg).unwrap());
    let mirrors: Vec<String> = serde_yaml::from_value(m["cache_mirrors"].clone()).unwrap();
    assert_eq!(
        mirrors,
        [
            "https://mine.example/flat",
            "https://bin-eu.acme.example/flat"
        ]
    );
    // revert still returns to the state before the first apply
    revert(home.path()).run();
    let m = mapping(&fs::read_to_string(&cfg).unwrap());
    let mirrors: Vec<String> = serde_yaml::from_value(m["cache_mirrors"].clone()).unwrap();
    assert_eq!(mirrors, ["https://mine.example/flat"]);
}

#[test]
fn a_state_recorded_for_another_file_is_not_reused() {
    let home = home_with_bundle();
    let legacy = home.path().join(".zoi/pkgs/config.yaml");
    fs::create_dir_all(legacy.parent().unwrap()).unwrap();
    fs::write(&legacy, "repos: [core]\n").unwrap();
    apply(home.path()).args(["--layout", "legacy"]).run();
    // Zoi was upgraded: the XDG file is now the one that counts
    apply(home.path())
        .args(["--layout", "xdg"])
        .expect_status(2)
        .expect_stderr_contains("was applied to")
        .expect_stderr_contains("zoi-mirror revert acme-mirror --layout legacy")
        .run();
    assert!(!user_cfg(home.path()).exists());
    revert(home.path()).run();
    apply(home.path()).args(["--layout", "xdg"]).run();
}

#[test]
fn a_new_user_file_does_not_override_the_system_layer() {
    let home = home_with_bundle();
    let root = home.path().join("r");
    fs::create_dir_all(root.join("etc/zoi")).unwrap();
    fs::write(
        root.join("etc/zoi/config.yaml"),
        "offline_mode: true\ntelemetry_enabled: true\njobs: 2\n",
    )
    .unwrap();
    let r = apply(home.path())
        .arg("--root")
        .arg(&root)
        .args(["--format", "json"])
        .run();
    let path = PathBuf::from(r.json()["target"]["config_path"].as_str().unwrap());
    let c: zoi_types::Config = serde_yaml::from_slice(&fs::read(&path).unwrap()).unwrap();
    // a key in the user layer decides over the system layer: the new file
    // carries the system's values, so nothing Zoi did changes
    assert!(c.offline_mode && c.telemetry_enabled);
    assert_eq!(c.jobs, Some(2));
    let _: zoi_types::LegacyConfig = serde_yaml::from_slice(&fs::read(&path).unwrap()).unwrap();
}
