//! The one-command setup: `setup.sh` run for real (`curl … | sh`, no TTY,
//! a temp HOME) against `zoi-mirror serve` hosting a built bundle and this
//! test's own zoi-mirror as the published tool; `setup.ps1` quoting.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::gitd::bare_registry;
use crate::support::serve::Serve;
use crate::support::{self, Spec, zm, zoi_types};

fn host_platform() -> String {
    let os = match std::env::consts::OS {
        "linux" => "linux",
        "macos" => "macos",
        other => panic!("setup.sh is tested on linux and macos, not {other}"),
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("unsupported arch {other}"),
    };
    format!("{os}-{arch}")
}

fn spec(dir: &Path, registry: &str, setup_url: &str) -> PathBuf {
    Spec::minimal()
        .set("extension.name", "lab-mirror")
        .set("extension.version", "2.0.0")
        .set("extension.description", "lab")
        .inline(
            "extension.maintainer",
            &[("name", "Lab"), ("email", "lab@example.com")],
        )
        .set("registry.url", registry)
        .set("binaries.url", format!("{setup_url}/pkgs"))
        .list("client.tiers", ["core", "main"])
        .set("setup.url", setup_url)
        .write(dir)
}

struct Published {
    home: tempfile::TempDir,
    _serve: Serve,
    url: String,
    bundle_dir: PathBuf,
}

/// Starts `serve` on an empty site, then builds the bundle into it with the
/// URLs pointing at it and our own binary published for this platform.
fn publish() -> Published {
    let home = tempfile::tempdir().unwrap();
    let site = home.path().join("site");
    fs::create_dir_all(site.join("pkgs")).unwrap();
    let serve = Serve::start(home.path(), &site, &["--quiet"]);
    let base = serve.url.trim_end_matches('/').to_string();
    let registry = bare_registry(home.path());
    let spec = spec(home.path(), &registry, &base);
    let tool = format!("{}={}", host_platform(), support::bin().display());
    zm(
        home.path(),
        &[
            "build",
            "-c",
            spec.to_str().unwrap(),
            "-o",
            site.to_str().unwrap(),
            "--tool",
            &tool,
        ],
    )
    .ok();
    Published {
        bundle_dir: site.join("lab-mirror-2.0.0"),
        url: format!("{base}/lab-mirror-2.0.0/setup.sh"),
        home,
        _serve: serve,
    }
}

/// `curl -fsSL URL | sh` as an employee would run it: no TTY, a fresh HOME,
/// a PATH with neither zoi-mirror nor zoi.
fn run_setup(home: &Path, url: &str) -> std::process::Output {
    let user = home.join("employee");
    fs::create_dir_all(&user).unwrap();
    Command::new("sh")
        .arg("-c")
        .arg(format!("curl -fsSL '{url}' | sh"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &user)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .current_dir(&user)
        .output()
        .unwrap()
}

fn employee_config(home: &Path) -> PathBuf {
    home.join("employee/.config/zoi/config.yaml")
}

#[test]
fn setup_sh_downloads_verifies_applies_and_installs() {
    let p = publish();
    let h = p.home.path();
    let out = run_setup(h, &p.url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "setup.sh failed:\n{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let cfg: zoi_types::Config =
        serde_yaml::from_slice(&fs::read(employee_config(h)).unwrap()).unwrap();
    let reg = cfg.default_registry.unwrap();
    assert!(reg.url.starts_with("file://"), "{reg:?}");
    assert_eq!(reg.handle, "zoidberg");
    assert_eq!(cfg.repos, ["core", "main"]);
    let installed = h.join("employee/.local/bin/zoi-mirror");
    assert_eq!(
        support::sha512_file(&installed),
        support::sha512_file(&support::bin())
    );
    assert!(
        stderr.contains(&format!("installed zoi-mirror to {}", installed.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "To undo: {} revert lab-mirror",
            installed.display()
        )),
        "{stderr}"
    );
    // it said what changed
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Applied lab-mirror 2.0.0"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Running it again uses the installed zoi-mirror only when on PATH; with
    // the same PATH it downloads again and reports "already applied".
    let out = run_setup(h, &p.url);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already applied"));
}

#[test]
fn a_tampered_binary_or_bundle_changes_nothing() {
    let p = publish();
    let h = p.home.path();
    let tool = p
        .bundle_dir
        .join(format!("tools/{}/zoi-mirror", host_platform()));
    let original = fs::read(&tool).unwrap();
    let mut evil = original.clone();
    evil.extend_from_slice(b"#!/bin/sh\necho pwned\n");
    fs::write(&tool, &evil).unwrap();
    let out = run_setup(h, &p.url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("the downloaded zoi-mirror has SHA-512"),
        "{stderr}"
    );
    assert!(!employee_config(h).exists());
    assert!(!h.join("employee/.local/bin").exists());

    // restore the binary, tamper with the bundle instead
    fs::write(&tool, &original).unwrap();
    let layer = p.bundle_dir.join("config.user.yaml");
    let text = fs::read_to_string(&layer)
        .unwrap()
        .replace("- main", "- evil");
    fs::write(&layer, text).unwrap();
    let out = run_setup(h, &p.url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("config.user.yaml of http"), "{stderr}");
    assert!(!employee_config(h).exists());
    assert!(
        !h.join("employee/.local/bin/zoi-mirror").exists(),
        "nothing installed"
    );

    // and a bundle.json that is not the one pinned in the script
    fs::write(
        &layer,
        fs::read_to_string(&layer)
            .unwrap()
            .replace("- evil", "- main"),
    )
    .unwrap();
    let bj = p.bundle_dir.join("bundle.json");
    fs::write(
        &bj,
        fs::read_to_string(&bj)
            .unwrap()
            .replace("\"2.0.0\"", "\"2.0.1\""),
    )
    .unwrap();
    let out = run_setup(h, &p.url);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the pinned"));
    assert!(!employee_config(h).exists());
}

#[test]
fn generated_setup_sh_is_shellcheck_clean() {
    let p = publish();
    let out = Command::new("shellcheck")
        .arg("--shell=sh")
        .arg(p.bundle_dir.join("setup.sh"))
        .output()
        .expect("shellcheck (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Undoes PowerShell single-quote quoting (`''` → `'`, and the typographic
/// single quotes doubled likewise), failing on an unbalanced quote.
fn ps_unquote(lit: &str) -> String {
    let quote = |c: char| matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}');
    let inner: Vec<char> = lit.chars().collect();
    assert!(
        quote(inner[0]) && quote(*inner.last().unwrap()),
        "not a verbatim string: {lit}"
    );
    let body = &inner[1..inner.len() - 1];
    let mut out = String::new();
    let mut i = 0;
    while i < body.len() {
        if quote(body[i]) {
            assert!(
                i + 1 < body.len() && quote(body[i + 1]),
                "unescaped quote in {lit}"
            );
            out.push(body[i]);
            i += 2;
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn hostile_urls_are_quoted_safely_in_both_scripts() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // URL-legal characters that are dangerous in shells
    let url = "https://bin.example.com/it's/$(touch${IFS}pwned)/`id`/\u{2019};x'";
    let spec = spec(h, "https://git.example.com/z.git", url);
    // the binary host URL may not hold `${`: only setup.url is hostile here
    let text = fs::read_to_string(&spec).unwrap();
    let text = text.replacen(
        &format!("url = \"{url}/pkgs\""),
        "url = \"https://bin.example.com/pkgs\"",
        1,
    );
    fs::write(&spec, text).unwrap();
    zm(h, &["build", "-c", spec.to_str().unwrap(), "-o", "dist"]).ok();
    let dir = h.join("dist/lab-mirror-2.0.0");
    let expected = format!(
        "{}/lab-mirror-2.0.0/",
        url::Url::parse(url).unwrap().as_str().trim_end_matches('/')
    );
    let manifest_sha = support::sha512_file(&dir.join("bundle.json"));

    // sh: evaluate exactly the assignment lines
    let sh = fs::read_to_string(dir.join("setup.sh")).unwrap();
    let assignments: Vec<&str> = sh
        .lines()
        .filter(|l| l.starts_with("BUNDLE_URL=") || l.starts_with("BUNDLE_SHA512="))
        .collect();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{}\nprintf '%s\\n%s' \"$BUNDLE_URL\" \"$BUNDLE_SHA512\"",
            assignments.join("\n")
        ))
        .current_dir(h)
        .output()
        .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed, format!("{expected}\n{manifest_sha}"));
    assert!(!h.join("pwned").exists());
    let sc = Command::new("shellcheck")
        .arg(dir.join("setup.sh"))
        .output()
        .unwrap();
    assert!(
        sc.status.success(),
        "{}",
        String::from_utf8_lossy(&sc.stdout)
    );

    // PowerShell: the literal un-quotes to the value, by PowerShell's rules
    let ps = fs::read_to_string(dir.join("setup.ps1")).unwrap();
    let line = ps.lines().find(|l| l.starts_with("$BundleUrl = ")).unwrap();
    assert_eq!(
        ps_unquote(line.trim_start_matches("$BundleUrl = ")),
        expected
    );
    let line = ps
        .lines()
        .find(|l| l.starts_with("$BundleSha512 = "))
        .unwrap();
    assert_eq!(
        ps_unquote(line.trim_start_matches("$BundleSha512 = ")),
        manifest_sha
    );
    // no double-quoted (expanding) string carries a spec value
    for l in ps
        .lines()
        .filter(|l| l.contains("bin.example.com") && !l.trim_start().starts_with('#'))
    {
        assert!(
            l.starts_with("$BundleUrl = '"),
            "value outside a verbatim string: {l}"
        );
    }
}

#[test]
fn setup_ps1_snapshot() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let spec = spec(
        h,
        "https://git.example.com/z.git",
        "https://bin.example.com/zoi-mirror",
    );
    let exe = h.join("zoi-mirror.exe");
    fs::write(&exe, b"MZ fake windows binary").unwrap();
    let tool = format!("windows-amd64={}", exe.display());
    zm(
        h,
        &[
            "build",
            "-c",
            spec.to_str().unwrap(),
            "-o",
            "dist",
            "--tool",
            &tool,
        ],
    )
    .ok();
    let ps = fs::read_to_string(h.join("dist/lab-mirror-2.0.0/setup.ps1")).unwrap();
    insta::assert_snapshot!("setup_ps1", ps);
}
