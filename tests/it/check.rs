//! `check` against real nginx (a generated tree with broken entries, the
//! full fixture index) and against the in-process fault server.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::faults::{EVIL_S3_BODY, Fault, FaultServer, test_ca};
use crate::support::gitd::{self, GitDaemon, bare_registry, bare_registry_with};
use crate::support::net::free_port;
use crate::support::nginx::Nginx;
use crate::support::{self, Run, Spec, tree, zm};

fn spec(dir: &Path, registry: &str, bin_url: &str, platforms: &[&str]) -> std::path::PathBuf {
    Spec::minimal()
        .set("extension.name", "lab-mirror")
        .set("extension.description", "lab")
        .inline(
            "extension.maintainer",
            &[("name", "Lab"), ("email", "lab@example.com")],
        )
        .set("registry.url", registry)
        .set("binaries.url", bin_url)
        .list("binaries.platforms", platforms.iter().copied())
        .write(dir)
}

fn build_bundle(home: &Path, spec: &Path) -> String {
    zm(home, &["build", "-c", spec.to_str().unwrap(), "-o", "dist"]).ok();
    "dist/lab-mirror-1.0.0".to_string()
}

fn target<'a>(doc: &'a Value, package: &str, platform: &str) -> &'a Value {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["package"] == package && t["platform"] == platform)
        .unwrap_or_else(|| panic!("no {package} {platform} in report"))
}

fn failures(t: &Value) -> Vec<(String, String)> {
    t["urls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["ok"] == false)
        .map(|u| {
            (
                u["kind"].as_str().unwrap().to_string(),
                u["error"]["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn broken_entries_on_a_real_nginx_are_each_reported_with_their_kind() {
    let home = tempfile::tempdir().unwrap();
    let www = home.path().join("www");
    let pkgs = www.join("pkgs");
    let pl = "linux-amd64";
    for name in ["good", "nohash", "badsize", "evilfiles", "sso", "wronghash"] {
        tree::place(&pkgs, "core", name, "1.0.0", "1.0.0", pl, 4096);
    }
    tree::place(&pkgs, "core", "misplaced", "1.0.0", "0.9.0", pl, 4096);
    let dir = pkgs.join("core/linux/amd64/1.0.0");
    fs::remove_file(dir.join("nohash-1.0.0-linux-amd64.zpa.hash")).unwrap();
    fs::write(
        dir.join("badsize-1.0.0-linux-amd64.zpa.size"),
        "about four kilobytes\n",
    )
    .unwrap();
    fs::write(
        dir.join("evilfiles-1.0.0-linux-amd64.zpa.files"),
        "${pkgstore}/bin/x\n../etc/passwd",
    )
    .unwrap();
    fs::write(
        dir.join("sso-1.0.0-linux-amd64.zpa.hash"),
        "<!DOCTYPE html>\n<html><body>Please sign in</body></html>\n",
    )
    .unwrap();
    // a well-formed .hash that does not match the archive
    let other = "0".repeat(128);
    fs::write(
        dir.join("wronghash-1.0.0-linux-amd64.zpa.hash"),
        format!("{other}  wronghash-1.0.0-linux-amd64.zpa\n"),
    )
    .unwrap();

    let srv = Nginx::start(&www);
    let names = [
        "good",
        "nohash",
        "badsize",
        "evilfiles",
        "sso",
        "wronghash",
        "misplaced",
    ];
    let indexed: Vec<(&str, &str, &str)> = names.iter().map(|n| ("core", *n, "1.0.0")).collect();
    let registry = bare_registry_with(home.path(), &indexed);
    let spec = spec(home.path(), &registry, &srv.url("pkgs"), &[pl]);
    let bundle = build_bundle(home.path(), &spec);
    let mut args = vec!["check", "--bundle", &bundle, "--format", "json"];
    for p in [
        "good",
        "nohash",
        "badsize",
        "evilfiles",
        "sso",
        "wronghash",
        "misplaced",
    ] {
        args.push("--package");
        args.push(Box::leak(format!("@core/{p}@1.0.0").into_boxed_str()));
    }
    let r = zm(home.path(), &args);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = r.json();
    assert_eq!(doc["registry"][0]["ok"], true, "{}", doc["registry"]);
    assert_eq!(doc["hosts"][0]["ok"], true);
    let f = |p: &str| failures(target(&doc, &format!("@core/{p}"), pl));
    assert_eq!(f("good"), []);
    assert_eq!(f("nohash"), [("hash".into(), "not_found".into())]);
    // Zoi only shows the sizes, and installs anyway: a warning
    assert_eq!(f("badsize"), []);
    let badsize = target(&doc, "@core/badsize", pl);
    assert!(
        badsize["urls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["kind"] == "size"
                && u["warnings"][0]
                    .as_str()
                    .unwrap()
                    .starts_with("malformed_metadata")),
        "{badsize}"
    );
    assert_eq!(f("evilfiles"), [("files".into(), "path_escape".into())]);
    assert_eq!(
        f("sso"),
        [("hash".into(), "html_instead_of_metadata".into())]
    );
    assert_eq!(f("wronghash"), [], "a wrong hash is found only with --deep");
    let misplaced = f("misplaced");
    assert!(
        misplaced.contains(&("archive".into(), "not_found".into())),
        "{misplaced:?}"
    );
    let hint = target(&doc, "@core/misplaced", pl)["urls"][0]["error"]["hint"]
        .as_str()
        .unwrap();
    assert!(hint.contains("layout"), "{hint}");
    assert_eq!(doc["counts"]["targets"], 7);
    assert_eq!(doc["counts"]["targets_failed"], 4, "badsize only warns");
    // the whole document, held byte for byte across refactors
    let text = regex::Regex::new(r"127\.0\.0\.1:\d+")
        .unwrap()
        .replace_all(&r.stdout, "127.0.0.1:[PORT]")
        .replace(&home.path().display().to_string(), "[HOME]");
    let text = regex::Regex::new(r#""(\w*_ms|\w*seconds)": [\d.]+"#)
        .unwrap()
        .replace_all(&text, r#""$1": [N]"#)
        .into_owned();
    insta::assert_snapshot!("check_json_broken_entries", text);

    // --deep streams every archive through SHA-512
    args.push("--deep");
    let doc = zm(home.path(), &args).json();
    assert_eq!(
        f2(&doc, "wronghash"),
        [("deep".into(), "hash_mismatch".into())]
    );
    assert_eq!(f2(&doc, "good"), []);

    // human output: one line per package/platform and a table of counts
    let r = zm(
        home.path(),
        &[
            "check",
            "--bundle",
            &bundle,
            "--package",
            "@core/nohash@1.0.0",
            "--package",
            "@core/good@1.0.0",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("ok   @core/good@1.0.0 linux-amd64"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("FAIL @core/nohash@1.0.0 linux-amd64"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("hash: not_found (HTTP 404 Not Found)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("not_found                       1"),
        "{}",
        r.stdout
    );
}

fn f2(doc: &Value, p: &str) -> Vec<(String, String)> {
    failures(target(doc, &format!("@core/{p}"), "linux-amd64"))
}

#[test]
fn the_full_fixture_index_on_two_platforms_passes() {
    let home = tempfile::tempdir().unwrap();
    let www = home.path().join("www");
    let index = support::fixtures().join("zoidberg/packages.json");
    let pkgs: Value = serde_json::from_slice(&fs::read(&index).unwrap()).unwrap();
    let platforms = ["linux-amd64", "macos-arm64"];
    let mut n = 0;
    for (id, p) in pkgs["packages"].as_object().unwrap() {
        let name = id.rsplit('/').next().unwrap();
        for pl in platforms {
            tree::place(
                &www.join("pkgs"),
                p["repo"].as_str().unwrap(),
                name,
                p["version"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
                pl,
                1000 + n,
            );
            n += 1;
        }
    }
    let srv = Nginx::start(&www);
    let registry = bare_registry(home.path());
    let spec = spec(home.path(), &registry, &srv.url("pkgs"), &platforms);
    let bundle = build_bundle(home.path(), &spec);
    let r = zm(
        home.path(),
        &[
            "check",
            "--bundle",
            &bundle,
            "--index",
            index.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    let doc = r.json();
    assert_eq!(doc["counts"]["targets"], 18);
    assert_eq!(doc["counts"]["failed"], 0);
    // registry + host + 18 × (archive, hash, size, files, in the index)
    assert_eq!(doc["counts"]["urls"], 2 + 18 * 5);
    // Zoi's URL construction: {repo} from the index entry, {platform} split
    let t = target(&doc, "@extra/bacon", "macos-arm64");
    assert_eq!(
        t["urls"][0]["url"],
        srv.url("pkgs/extra/macos/arm64/3.24.0/bacon-3.24.0-macos-arm64.zpa")
            .as_str()
    );
}

#[test]
fn registry_problems_are_reported() {
    let home = tempfile::tempdir().unwrap();
    let registry = bare_registry(home.path());
    let spec = spec(
        home.path(),
        &registry,
        "http://127.0.0.1:9/pkgs",
        &["linux-amd64"],
    );
    let bundle = build_bundle(home.path(), &spec);
    // the bundle's branch is main: ok; a missing branch (a warning: Zoi
    // clones HEAD); a path that is no repo
    let r = zm(
        home.path(),
        &["check", "--bundle", &bundle, "--format", "json"],
    );
    let doc = r.json();
    assert_eq!(doc["registry"][0]["ok"], true);
    assert_eq!(
        doc["registry"][0]["checks"][0].get("warnings"),
        None,
        "{doc}"
    );
    assert_eq!(
        doc["hosts"][0]["error"]["kind"], "connect_refused",
        "{}",
        doc["hosts"]
    );
    assert_eq!(r.code, 1);
    let doc = zm(
        home.path(),
        &[
            "check", "--bundle", &bundle, "--branch", "nope", "--format", "json",
        ],
    )
    .json();
    let git = &doc["registry"][0]["checks"][0];
    assert_eq!(git["ok"], true, "{git}");
    assert!(
        git["warnings"][0]
            .as_str()
            .unwrap()
            .contains("not the spec's branch nope"),
        "{git}"
    );
    let repo_yaml = home.path().join("r.yaml");
    fs::write(
        &repo_yaml,
        format!(
            "name: x\ndescription: y\ngit:\n- type: main\n  url: file://{}/nothing.git\n",
            home.path().display()
        ),
    )
    .unwrap();
    let doc = zm(
        home.path(),
        &[
            "check",
            "--repo-yaml",
            repo_yaml.to_str().unwrap(),
            "--format",
            "json",
        ],
    )
    .json();
    assert_eq!(
        doc["registry"][0]["checks"][0]["error"]["kind"], "not_a_git_repo",
        "{doc}"
    );
    // --registry-content: the test registry's repo.yaml is not the bundle's
    let doc = zm(
        home.path(),
        &[
            "check",
            "--bundle",
            &bundle,
            "--registry-content",
            "--no-progress",
            "--format",
            "json",
        ],
    )
    .json();
    assert_eq!(
        doc["registry"][0]["checks"][1]["error"]["kind"], "registry_content_differs",
        "{doc}"
    );
}

// ----------------------------------------------------------- fault server

const PL: &str = "linux-amd64";

/// A repo.yaml whose only link points at `base`, with a `.hash` template.
fn faulty_repo_yaml(dir: &Path, base: &str) -> String {
    let p = dir.join("repo.yaml");
    fs::write(
        &p,
        format!(
            "name: f\ndescription: f\npkg:\n- type: main\n  url: {base}/{{name}}/{{name}}-{{version}}-{{platform}}.zpa\n  hash: {base}/{{name}}/{{name}}-{{version}}-{{platform}}.zpa.hash\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

fn archive_routes(name: &str) -> (String, Vec<u8>, String) {
    let file = format!("{name}-1.0.0-{PL}.zpa");
    let bytes = tree::archive_bytes(name, 2048);
    let hash = format!("{}  {file}\n", support::sha512_hex(&bytes));
    (format!("/{name}/{file}"), bytes, hash)
}

fn ok_archive(bytes: Vec<u8>) -> Fault {
    Fault::Ok(bytes, vec![("Accept-Ranges".into(), "bytes".into())])
}

fn check_pkg(home: &Path, repo_yaml: &str, name: &str, extra: &[&str]) -> Run {
    let pkg = format!("@core/{name}@1.0.0");
    let mut args = vec![
        "check",
        "--repo-yaml",
        repo_yaml,
        "--package",
        &pkg,
        "--platform",
        PL,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    zm(home, &args)
}

fn hash_check(r: &Run) -> Value {
    r.json()["packages"][0]["urls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["kind"] == "hash")
        .unwrap()
        .clone()
}

#[test]
fn transient_failures_are_retried_and_persistent_ones_classified() {
    let (flaky, fbytes, fhash) = archive_routes("flaky");
    let (limited, lbytes, lhash) = archive_routes("limited");
    let (reset, rbytes, _) = archive_routes("reset");
    let (stall, sbytes, _) = archive_routes("stall");
    let (looping, obytes, _) = archive_routes("looping");
    let srv = FaultServer::start(vec![
        (
            &format!("{flaky}.hash"),
            Fault::FailThenOk(1, fhash.into_bytes()),
        ),
        (&flaky, ok_archive(fbytes)),
        (
            &format!("{limited}.hash"),
            Fault::RateLimitThenOk(1, 1, lhash.into_bytes()),
        ),
        (&limited, ok_archive(lbytes)),
        (&format!("{reset}.hash"), Fault::Reset),
        (&reset, ok_archive(rbytes)),
        (&format!("{stall}.hash"), Fault::Stall),
        (&stall, ok_archive(sbytes)),
        (
            &format!("{looping}.hash"),
            Fault::Redirect("/loop/b".into()),
        ),
        ("/loop/b", Fault::Redirect(format!("{looping}.hash"))),
        (&looping, ok_archive(obytes)),
    ]);
    let home = tempfile::tempdir().unwrap();
    let ry = faulty_repo_yaml(home.path(), &srv.url("http", ""));

    // 500 then 200: retried, passes
    let r = check_pkg(home.path(), &ry, "flaky", &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(hash_check(&r)["attempts"], 2);

    // 429 with Retry-After: 1 — waited for, then passes
    let t = std::time::Instant::now();
    let r = check_pkg(home.path(), &ry, "limited", &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(950),
        "Retry-After honoured"
    );
    assert_eq!(hash_check(&r)["attempts"], 2);

    // connection reset, every time: retried, then reported
    let r = check_pkg(home.path(), &ry, "reset", &["--retries", "1"]);
    assert_eq!(r.code, 1);
    let h = hash_check(&r);
    assert_eq!(h["error"]["kind"], "connection_reset", "{h}");
    assert_eq!(h["attempts"], 2);
    assert!(srv.hits(&format!("{reset}.hash")) >= 2);

    // a stalled body hits the total timeout
    let r = check_pkg(
        home.path(),
        &ry,
        "stall",
        &["--retries", "0", "--timeout", "2"],
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        hash_check(&r)["error"]["kind"],
        "timeout",
        "{}",
        hash_check(&r)
    );

    // a redirect loop
    let r = check_pkg(home.path(), &ry, "looping", &["--retries", "0"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        hash_check(&r)["error"]["kind"],
        "redirect_loop",
        "{}",
        hash_check(&r)
    );
}

/// The one retry policy in check: a 408 (the server gave up waiting) may
/// pass next time and is asked again; a 400 or 405 is asked once.
#[test]
fn check_retries_a_408_but_not_other_client_errors() {
    let cases = [
        ("timeout408", "408 Request Timeout", 2),
        ("bad400", "400 Bad Request", 1),
        ("method405", "405 Method Not Allowed", 1),
    ];
    let mut routes = Vec::new();
    for (name, status, _) in cases {
        let (path, bytes, _) = archive_routes(name);
        routes.push((
            format!("{path}.hash"),
            Fault::Status(status, b"no".to_vec()),
        ));
        routes.push((path, ok_archive(bytes)));
    }
    let srv = FaultServer::start(
        routes
            .iter()
            .map(|(p, f)| (p.as_str(), f.clone()))
            .collect(),
    );
    let home = tempfile::tempdir().unwrap();
    let ry = faulty_repo_yaml(home.path(), &srv.url("http", ""));
    for (name, _, asked) in cases {
        let r = check_pkg(home.path(), &ry, name, &["--retries", "1"]);
        assert_eq!(r.code, 1, "{name}: {}", r.stdout);
        let h = hash_check(&r);
        assert_eq!(h["error"]["kind"], "http_error", "{name}: {h}");
        assert_eq!(h["attempts"], asked, "{name}: {h}");
        assert_eq!(
            srv.hits(&format!("{}.hash", archive_routes(name).0)),
            asked,
            "{name}"
        );
    }
}

#[test]
fn a_private_ca_fails_without_ca_cert_and_passes_with_it() {
    let ca = test_ca();
    let (path, bytes, hash) = archive_routes("tls");
    let srv = FaultServer::start_tls(
        vec![
            (
                &format!("{path}.hash"),
                Fault::Ok(hash.into_bytes(), vec![]),
            ),
            (&path, ok_archive(bytes)),
        ],
        ca.server.clone(),
    );
    let home = tempfile::tempdir().unwrap();
    let ry = faulty_repo_yaml(home.path(), &srv.url("https", ""));
    let r = check_pkg(home.path(), &ry, "tls", &["--retries", "0"]);
    assert_eq!(r.code, 1);
    let a = &r.json()["packages"][0]["urls"][0];
    assert_eq!(a["error"]["kind"], "tls", "{a}");
    assert!(a["error"]["hint"].as_str().unwrap().contains("--ca-cert"));

    let ca_file = home.path().join("ca.pem");
    fs::write(&ca_file, &ca.ca_pem).unwrap();
    let r = check_pkg(
        home.path(),
        &ry,
        "tls",
        &["--ca-cert", ca_file.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
}

/// What a server sends never drives the terminal: the human report shows
/// its control characters escaped; the JSON keeps the text as it came
/// (serde escapes it in the document).
#[test]
fn control_characters_from_a_server_are_escaped_in_the_human_report() {
    let (path, bytes, _) = archive_routes("evil");
    let srv = FaultServer::start(vec![
        (
            &format!("{path}.hash"),
            Fault::Status("403 Forbidden", EVIL_S3_BODY.to_vec()),
        ),
        (&path, ok_archive(bytes)),
    ]);
    let home = tempfile::tempdir().unwrap();
    let ry = faulty_repo_yaml(home.path(), &srv.url("http", ""));
    let r = zm(
        home.path(),
        &[
            "check",
            "--repo-yaml",
            &ry,
            "--package",
            "@core/evil@1.0.0",
            "--platform",
            PL,
            "--retries",
            "0",
        ],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("FAIL"), "{}", r.stdout);
    support::assert_escaped(&r.stdout, r"S3 \u{1b}[31mEvil\u{1b}]0;pwned\u{7}");
    let r = check_pkg(home.path(), &ry, "evil", &["--retries", "0"]);
    let h = hash_check(&r);
    assert_eq!(h["error"]["kind"], "forbidden", "{h}");
    assert!(
        h["error"]["message"]
            .as_str()
            .unwrap()
            .contains("S3 \x1b[31mEvil\x1b]0;pwned\x07"),
        "{h}"
    );
}

/// A `--ca-cert` that cannot be used is bad input, found before anything
/// is fetched: exit 2 `usage`, naming the file and what is wrong with it.
#[test]
fn an_unusable_ca_cert_is_a_usage_error_naming_the_file() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Nothing listens here: a CA file that passed would fail as connect_refused.
    let ry = faulty_repo_yaml(h, &format!("http://127.0.0.1:{}", free_port()));
    fs::write(h.join("notes.txt"), "our CA is on the wiki\n").unwrap();
    fs::write(
        h.join("garbled.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    fs::create_dir_all(h.join("certs")).unwrap();
    for (file, says) in [
        ("missing.pem", "not found"),
        ("notes.txt", "holds no PEM certificate"),
        ("garbled.pem", "is not a valid certificate"),
        ("certs", "is a directory, not a file"),
    ] {
        let path = h.join(file);
        let r = check_pkg(h, &ry, "x", &["--ca-cert", path.to_str().unwrap()]);
        assert_eq!(r.code, 2, "{file}: {}\n{}", r.stdout, r.stderr);
        let err = &r.json()["error"];
        assert_eq!(err["kind"], "usage", "{file}: {err}");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("--ca-cert {}", path.display())) && message.contains(says),
            "{file}: {message}"
        );
        assert!(
            err["hint"].as_str().unwrap_or_default().contains("PEM"),
            "{file}: {err}"
        );
    }
}

#[test]
fn credentials_are_used_but_never_shown() {
    let token = "Bearer s3cret-t0ken-value";
    let (path, bytes, hash) = archive_routes("private");
    let srv = FaultServer::start(vec![
        (
            &format!("{path}.hash"),
            Fault::Auth(token.into(), hash.into_bytes()),
        ),
        (&path, Fault::Auth(token.into(), bytes)),
    ]);
    let home = tempfile::tempdir().unwrap();
    let ry = faulty_repo_yaml(home.path(), &srv.url("http", ""));
    // a repo.yaml whose URLs carry user info, which must be redacted too
    let with_userinfo = tempfile::tempdir().unwrap();
    let base = srv
        .url("http", "")
        .replace("http://", "http://alice:hunter2@");
    let ry_userinfo = faulty_repo_yaml(with_userinfo.path(), &base);

    let r = check_pkg(home.path(), &ry, "private", &["--retries", "0"]);
    assert_eq!(r.code, 1);
    let doc = r.json();
    assert_eq!(
        doc["packages"][0]["urls"][0]["error"]["kind"], "unauthorized",
        "{doc}"
    );
    assert!(
        doc["packages"][0]["urls"][0]["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--header")
    );

    let header = format!("Authorization: {token}");
    let r = check_pkg(home.path(), &ry, "private", &["--header", &header]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    // and from the environment
    let r = crate::support::run(
        crate::support::cmd(home.path())
            .args([
                "check",
                "--repo-yaml",
                &ry,
                "--package",
                "@core/private@1.0.0",
                "--platform",
                PL,
            ])
            .env("ZOI_MIRROR_HEADER", &header),
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    let seen = srv.seen_headers.lock().unwrap().join("\n");
    assert!(seen.contains(token), "the header was sent");

    let r = check_pkg(home.path(), &ry_userinfo, "private", &["--retries", "0"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("http://***@127.0.0.1:"), "{}", r.stdout);
    for r in [
        r,
        check_pkg(home.path(), &ry_userinfo, "private", &["--header", &header]),
        check_pkg(home.path(), &ry, "private", &["--retries", "0"]),
        check_pkg(home.path(), &ry, "private", &["--header", &header]),
        zm(
            home.path(),
            &[
                "check",
                "--repo-yaml",
                &ry,
                "--package",
                "@core/private@1.0.0",
                "--platform",
                PL,
                "--header",
                &header,
            ],
        ),
        zm(
            home.path(),
            &[
                "check",
                "--repo-yaml",
                &ry_userinfo,
                "--package",
                "@core/private@1.0.0",
                "--platform",
                PL,
            ],
        ),
    ] {
        for out in [&r.stdout, &r.stderr] {
            assert!(!out.contains("s3cret"), "token leaked:\n{out}");
            assert!(!out.contains("hunter2"), "password leaked:\n{out}");
            assert!(!out.contains("alice"), "user leaked:\n{out}");
        }
    }
}

#[test]
fn bad_check_input_is_exit_2() {
    let home = tempfile::tempdir().unwrap();
    assert_eq!(zm(home.path(), &["check"]).code, 2);
    let r = zm(home.path(), &["check", "--repo-yaml", "missing.yaml"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("repo.yaml missing.yaml not found"),
        "{}",
        r.stderr
    );
    fs::write(home.path().join("r.yaml"), "pkg: []\n").unwrap();
    let r = zm(home.path(), &["check", "--repo-yaml", "r.yaml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is not a Zoi repo.yaml"), "{}", r.stderr);
    fs::write(home.path().join("r.yaml"), "name: a\ndescription: b\n").unwrap();
    let r = zm(
        home.path(),
        &["check", "--repo-yaml", "r.yaml", "--package", "core/x"],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("expected @tier/name@version"),
        "{}",
        r.stderr
    );
    let r = zm(home.path(), &["check", "--client"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("run `zoi sync`"), "{}", r.stderr);
}

/// An input named by a URL whose scheme nothing reads is a usage error
/// naming the URL and the scheme (it was read as a local path, and failed
/// as "No such file"); a `file://` URL is its path; a directory where a
/// file goes is bad input, said as it is, like `-c DIR`.
#[test]
fn inputs_with_another_url_scheme_or_a_directory_for_a_file_are_usage_errors() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    fs::write(h.join("r.yaml"), "name: a\ndescription: b\n").unwrap();
    let json = |args: &[&str]| {
        let mut a = vec!["check"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--platform", "linux-amd64", "--format", "json"]);
        let r = zm(h, &a);
        assert_eq!(r.code, 2, "{args:?}: {}\n{}", r.stdout, r.stderr);
        let doc = r.json();
        assert_eq!(doc["error"]["kind"], "usage", "{args:?}: {doc}");
        (
            doc["error"]["message"].as_str().unwrap().to_string(),
            doc["error"]["hint"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    for args in [
        &[
            "--repo-yaml",
            "r.yaml",
            "--index",
            "ftp://mirror.example/packages.json",
        ][..],
        &["--repo-yaml", "ftp://mirror.example/packages.json"][..],
        &["--bundle", "ftp://mirror.example/packages.json"][..],
    ] {
        let (m, hint) = json(args);
        assert!(
            m.contains("ftp://mirror.example/packages.json")
                && m.contains("URL scheme `ftp` is not supported"),
            "{args:?}: {m}"
        );
        assert!(
            hint.starts_with("give an http(s) URL or a file path"),
            "{hint}"
        );
    }
    // a file:// URL is the file; a path with a ':' is a path
    let (m, _) = json(&[
        "--repo-yaml",
        "r.yaml",
        "--index",
        "file:///nowhere/packages.json",
    ]);
    assert_eq!(m, "packages.json /nowhere/packages.json not found");
    let (m, _) = json(&["--repo-yaml", "r.yaml", "--index", "backup:1/packages.json"]);
    assert_eq!(m, "packages.json backup:1/packages.json not found");
    let rel = format!("file://{}", h.join("r.yaml").display());
    let r = zm(h, &["check", "--repo-yaml", &rel, "--no-registry"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // a directory where the file goes
    fs::create_dir(h.join("idx")).unwrap();
    let (m, hint) = json(&["--repo-yaml", "r.yaml", "--index", "idx"]);
    assert_eq!(m, "packages.json idx is a directory, not a file");
    assert_eq!(
        hint,
        "pass the file itself (e.g. idx/packages.json), not its folder"
    );
    let (m, _) = json(&["--repo-yaml", "idx"]);
    assert_eq!(m, "repo.yaml idx is a directory, not a file");
}

/// An index key Zoi would not write (`@<repo>/<name>` for its entry's
/// repo) refuses the index, naming the key: it was read as `@core/x` (and
/// `@core/passwd`) before.
#[test]
fn an_index_key_that_is_not_repo_slash_name_is_refused_naming_it() {
    let home = tempfile::tempdir().unwrap();
    fs::write(home.path().join("r.yaml"), "name: a\ndescription: b\n").unwrap();
    for key in ["@core/../x", "@core//etc/passwd"] {
        let idx = home.path().join("packages.json");
        fs::write(
            &idx,
            serde_json::json!({"version": "2", "packages": {key: {"repo": "core", "version": "1.0.0"}}})
                .to_string(),
        )
        .unwrap();
        let r = zm(
            home.path(),
            &[
                "check",
                "--repo-yaml",
                "r.yaml",
                "--index",
                "packages.json",
                "--platform",
                "linux-amd64",
                "--format",
                "json",
            ],
        );
        assert_eq!(r.code, 2, "{key}: {}\n{}", r.stdout, r.stderr);
        let doc = r.json();
        assert_eq!(doc["error"]["kind"], "index_invalid", "{doc}");
        let msg = doc["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("package key {key:?} is not @core/<name>")),
            "{msg}"
        );
    }
}

#[test]
fn apply_verify_passes_or_rolls_back() {
    let home = tempfile::tempdir().unwrap();
    let www = home.path().join("www");
    fs::create_dir_all(www.join("pkgs")).unwrap();
    let srv = Nginx::start(&www);
    let registry = bare_registry(home.path());
    let cfg = home.path().join(".config/zoi/config.yaml");
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(&cfg, "# mine\nrepos: [core]\n").unwrap();
    let apply_verified = |bundle: &str, extra: &[&str]| {
        let mut args = vec![
            "apply",
            bundle,
            "--no-zoi",
            "--verify",
            "--rollback-on-fail",
        ];
        args.extend_from_slice(extra);
        zm(home.path(), &args)
    };

    // a reachable mirror: applied and verified
    let s = spec(home.path(), &registry, &srv.url("pkgs"), &["linux-amd64"]);
    let bundle = build_bundle(home.path(), &s);
    let r = apply_verified(&bundle, &["--format", "json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    assert_eq!(doc["verify"]["counts"]["failed"], 0);
    assert_eq!(doc["rolled_back"], false);
    zm(home.path(), &["revert", "lab-mirror", "--no-zoi"]).ok();
    let before = fs::read_to_string(&cfg).unwrap();

    // a registry that does not exist: verification fails, the config is restored
    let s = spec(
        home.path(),
        &format!("file://{}/missing.git", home.path().display()),
        &srv.url("pkgs"),
        &["linux-amd64"],
    );
    let bundle = build_bundle(home.path(), &s);
    let r = apply_verified(&bundle, &[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("verification failed"), "{}", r.stderr);
    assert!(
        r.stderr.contains("this run's changes were undone"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("FAIL registry"), "{}", r.stdout);
    // Through the one error path: `error:` then `hint:`, ending stderr.
    assert!(
        r.stderr.ends_with(
            "error: verification failed: the mirror does not answer as it should; this run's changes were undone\n\
             hint: see the failures above; `zoi-mirror check --bundle …` repeats the check\n"
        ),
        "{}",
        r.stderr
    );
    assert!(crate::support::yaml_eq(
        &fs::read_to_string(&cfg).unwrap(),
        &before
    ));

    // without --rollback-on-fail the config stays applied
    let r = zm(home.path(), &["apply", &bundle, "--no-zoi", "--verify"]);
    assert_eq!(r.code, 1);
    assert!(fs::read_to_string(&cfg).unwrap().contains("missing.git"));

    // and a re-run (setup.sh again) that changes nothing rolls nothing back,
    // even while the mirror is down
    let applied = fs::read_to_string(&cfg).unwrap();
    let r = apply_verified(&bundle, &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("nothing to roll back"), "{}", r.stderr);
    assert_eq!(fs::read_to_string(&cfg).unwrap(), applied);
}

/// `apply --verify --rollback-on-fail` is one run from its lock's view:
/// while it checks the mirror, another apply waits (here, with
/// --lock-timeout 0, fails lock_held) instead of changing the config in
/// between, where the rollback would then overwrite its changes. A plain
/// `--verify`, which rolls nothing back, lets the lock go before its checks.
#[test]
fn a_verifying_apply_keeps_its_lock_until_its_rollback_is_done() {
    let home = tempfile::tempdir().unwrap();
    let registry = bare_registry(home.path());
    // A binary host that takes connections and never answers: every check
    // waits for --timeout, and the verification fails.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bin_url = format!("http://{}/pkgs", hole.local_addr().unwrap());
    let cfg = home.path().join(".config/zoi/config.yaml");
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    let original = "# mine\nrepos: [core]\n";
    let s = spec(home.path(), &registry, &bin_url, &["linux-amd64"]);
    let bundle = build_bundle(home.path(), &s);

    // Starts `apply --verify [extra]`, waits until it has applied (its
    // checks have begun), then runs a second apply that does not wait for
    // the lock; returns the first's (exit code, stderr) and the second run.
    let race = |extra: &[&str]| -> (Option<i32>, String, Run) {
        fs::write(&cfg, original).unwrap();
        let mut first = support::cmd(home.path())
            .args(["apply", &bundle, "--no-zoi", "--verify", "--timeout", "1"])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while fs::read_to_string(&cfg).unwrap() == original {
            if let Some(status) = first.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(&mut first.stderr.take().unwrap(), &mut stderr)
                    .unwrap();
                panic!("the verifying apply ended ({status}) before applying: {stderr}");
            }
            if start.elapsed() > std::time::Duration::from_secs(20) {
                let _ = first.kill();
                let _ = first.wait();
                panic!("never applied");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let second = zm(
            home.path(),
            &[
                "apply",
                &bundle,
                "--no-zoi",
                "--lock-timeout",
                "0",
                "--format",
                "json",
            ],
        );
        let out = first.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr, second)
    };

    let (code, stderr, second) = race(&["--rollback-on-fail"]);
    assert_eq!(second.code, 3, "{}\n{}", second.stdout, second.stderr);
    assert_eq!(
        second.json()["error"]["kind"],
        "lock_held",
        "{}",
        second.stdout
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("this run's changes were undone"),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(&cfg).unwrap(), original);

    // Without --rollback-on-fail: the second run finds the config applied.
    let (code, stderr, second) = race(&[]);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert_eq!(second.json()["already_applied"], true, "{}", second.stdout);
    assert_eq!(code, Some(1), "{stderr}");
    assert_ne!(fs::read_to_string(&cfg).unwrap(), original);
    drop(hole);
}

fn pkt(s: &str) -> String {
    format!("{:04x}{s}", s.len() + 4)
}

/// A real upload-pack advertisement of a real repository, as a smart-HTTP
/// server sends it.
fn advertisement(repo: &Path) -> Vec<u8> {
    let out = Command::new("git")
        .args(["upload-pack", "--advertise-refs"])
        .arg(repo)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut body = format!("{}0000", pkt("# service=git-upload-pack\n")).into_bytes();
    body.extend_from_slice(&out.stdout);
    body
}

#[test]
fn smart_http_registries_and_servers_refusing_head() {
    let home = tempfile::tempdir().unwrap();
    let registry = bare_registry(home.path());
    let bare = Path::new(registry.trim_start_matches("file://"));
    let adv = advertisement(bare);
    let ct = vec![(
        "Content-Type".to_string(),
        "application/x-git-upload-pack-advertisement".to_string(),
    )];
    let (path, bytes, hash) = archive_routes("nohead");
    let srv = FaultServer::start(vec![
        ("/zoi/zoidberg.git/info/refs", Fault::Ok(adv, ct)),
        (
            "/sso/zoidberg.git/info/refs",
            Fault::Ok(
                b"<!DOCTYPE html><html>Sign in</html>".to_vec(),
                vec![("Content-Type".into(), "text/html".into())],
            ),
        ),
        (
            &format!("{path}.hash"),
            Fault::Ok(hash.into_bytes(), vec![]),
        ),
        (&path, Fault::NoHead(bytes)),
    ]);
    let yaml = home.path().join("r.yaml");
    let base = srv.url("http", "");
    fs::write(
        &yaml,
        format!(
            "name: r\ndescription: r\ngit:\n- type: main\n  url: {base}/zoi/zoidberg.git\n- type: mirror\n  url: {base}/sso/zoidberg.git\npkg:\n- type: main\n  url: {base}/{{name}}/{{name}}-{{version}}-{{platform}}.zpa\n  hash: {base}/{{name}}/{{name}}-{{version}}-{{platform}}.zpa.hash\n"
        ),
    )
    .unwrap();
    let ry = yaml.to_str().unwrap();
    let r = zm(
        home.path(),
        &[
            "check",
            "--repo-yaml",
            ry,
            "--branch",
            "main",
            "--package",
            "@core/nohead@1.0.0",
            "--platform",
            PL,
            "--retries",
            "0",
            "--format",
            "json",
        ],
    );
    let doc = r.json();
    // smart HTTP: a git repository with the branch
    assert_eq!(doc["registry"][0]["ok"], true, "{}", doc["registry"]);
    assert_eq!(doc["registry"][0]["checks"][0]["status"], 200);
    // a login page where a repository should be
    assert_eq!(
        doc["registry"][1]["checks"][0]["error"]["kind"], "not_a_git_repo",
        "{}",
        doc["registry"]
    );
    // HEAD refused: the one-byte ranged GET stands in, and Range works
    let archive = &doc["packages"][0]["urls"][0];
    assert_eq!(archive["ok"], true, "{archive}");
    assert_eq!(archive["status"], 206);
    assert_eq!(srv.hits(&path), 2, "HEAD, then GET Range: bytes=0-0");

    let r = zm(
        home.path(),
        &[
            "check",
            "--repo-yaml",
            ry,
            "--branch",
            "nope",
            "--no-progress",
            "--format",
            "json",
        ],
    );
    let git = &r.json()["registry"][0]["checks"][0];
    assert_eq!(git["ok"], true, "HEAD decides, not the branch: {git}");
    assert!(
        git["warnings"][0]
            .as_str()
            .unwrap()
            .contains("names main, not the spec's branch nope"),
        "{git}"
    );
}

/// A bare repository like `git init --bare` makes (HEAD → master) into
/// which only `main` was pushed; returns its path (not `reg.git`, which
/// holds the commit).
fn master_head_registry(dir: &Path, name: &str) -> std::path::PathBuf {
    let registry = bare_registry(dir);
    let src = Path::new(registry.trim_start_matches("file://"));
    let bare = dir.join(name);
    gitd::git(
        dir,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "master",
            bare.to_str().unwrap(),
        ],
    );
    gitd::git(src, &["push", "-q", bare.to_str().unwrap(), "main"]);
    bare
}

fn git_check(doc: &Value) -> &Value {
    &doc["registry"][0]["checks"][0]
}

#[test]
fn a_registry_head_naming_no_branch_fails_over_git_daemon_and_smart_http() {
    let home = tempfile::tempdir().unwrap();
    let served = home.path().join("served");
    fs::create_dir_all(&served).unwrap();
    let bare = master_head_registry(&served, "zoidberg.git");
    let daemon = GitDaemon::start(&served);
    let url = daemon.url("zoidberg.git");
    let spec = spec(
        home.path(),
        &url,
        "http://127.0.0.1:9/pkgs",
        &["linux-amd64"],
    );
    let bundle = build_bundle(home.path(), &spec);
    let check = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--bundle",
            &bundle,
            "--no-progress",
            "--format",
            "json",
        ];
        args.extend(extra);
        zm(home.path(), &args)
    };

    // HEAD → master, only main pushed: what `zoi sync` cannot clone
    let r = check(&["--registry-content"]);
    assert_eq!(r.code, 1);
    let doc = r.json();
    let git = git_check(&doc);
    assert_eq!(git["ok"], false, "{git}");
    assert_eq!(git["error"]["kind"], "head_missing", "{git}");
    let msg = git["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&url), "{msg}");
    assert!(
        msg.contains("git symbolic-ref HEAD refs/heads/main"),
        "{msg}"
    );
    assert!(
        git["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("symbolic-ref"),
        "{git}"
    );
    assert_eq!(doc["counts"]["by_kind"]["head_missing"], 1, "{doc}");
    let human = zm(
        home.path(),
        &["check", "--bundle", &bundle, "--no-progress"],
    );
    assert_eq!(human.code, 1);
    assert!(
        human
            .stdout
            .contains(&format!("FAIL registry {url} (main): head_missing")),
        "{}",
        human.stdout
    );

    // a plain local path: Zoi symlinks the directory instead of cloning it,
    // so HEAD only warns
    let local = home.path().join("local.yaml");
    fs::write(
        &local,
        format!(
            "name: r\ndescription: r\ngit:\n- type: main\n  url: {}\n",
            bare.display()
        ),
    )
    .unwrap();
    let r = zm(
        home.path(),
        &[
            "check",
            "--repo-yaml",
            local.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let doc = r.json();
    assert_eq!(r.code, 0, "{doc}");
    assert!(
        git_check(&doc)["warnings"][0]
            .as_str()
            .unwrap()
            .contains("reads it in place"),
        "{doc}"
    );

    // fixed the way the hint says: ok, repo.yaml read at HEAD
    let adv_unborn = advertisement(&bare);
    gitd::git(&bare, &["symbolic-ref", "HEAD", "refs/heads/main"]);
    let r = check(&["--registry-content"]);
    let doc = r.json();
    assert_eq!(git_check(&doc)["ok"], true, "{doc}");
    assert_eq!(git_check(&doc).get("warnings"), None, "{doc}");
    assert_eq!(
        doc["registry"][0]["checks"][1]["error"]["kind"], "registry_content_differs",
        "the test registry's repo.yaml, read at HEAD, is not the bundle's: {doc}"
    );

    // the same repository over smart HTTP, before (no HEAD in the
    // advertisement) and after the fix (symref=HEAD:refs/heads/main)
    let ct = vec![(
        "Content-Type".to_string(),
        "application/x-git-upload-pack-advertisement".to_string(),
    )];
    let srv = FaultServer::start(vec![
        (
            "/unborn/reg.git/info/refs",
            Fault::Ok(adv_unborn, ct.clone()),
        ),
        (
            "/fixed/reg.git/info/refs",
            Fault::Ok(advertisement(&bare), ct),
        ),
    ]);
    let by_http = |which: &str, extra: &[&str]| {
        let url = format!("{}/{which}/reg.git", srv.url("http", ""));
        let yaml = home.path().join(format!("{which}.yaml"));
        fs::write(
            &yaml,
            format!("name: r\ndescription: r\ngit:\n- type: main\n  url: {url}\n"),
        )
        .unwrap();
        let mut args = vec![
            "check",
            "--repo-yaml",
            yaml.to_str().unwrap(),
            "--no-progress",
            "--format",
            "json",
        ];
        args.extend(extra);
        (url, zm(home.path(), &args))
    };
    let (http_url, r) = by_http("unborn", &["--branch", "main"]);
    assert_eq!(r.code, 1);
    let doc = r.json();
    assert_eq!(git_check(&doc)["error"]["kind"], "head_missing", "{doc}");
    let msg = git_check(&doc)["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&http_url), "{msg}");
    let (_, r) = by_http("fixed", &["--branch", "main"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let doc = r.json();
    assert_eq!(git_check(&doc)["ok"], true, "{doc}");
    assert_eq!(git_check(&doc).get("warnings"), None, "{doc}");

    // HEAD → main, but the spec's branch is dev: a warning, exit 0 for the
    // registry (the binary host is down, so look at the registry only)
    gitd::git(&bare, &["branch", "dev", "main"]);
    let dev_spec = home.path().join("dev.toml");
    Spec::parse(&fs::read_to_string(&spec).unwrap())
        .set("registry.branch", "dev")
        .write_to(&dev_spec);
    zm(
        home.path(),
        &["build", "-c", dev_spec.to_str().unwrap(), "-o", "dist-dev"],
    )
    .ok();
    let r = zm(
        home.path(),
        &[
            "check",
            "--bundle",
            "dist-dev/lab-mirror-1.0.0",
            "--no-progress",
            "--format",
            "json",
        ],
    );
    let doc = r.json();
    let git = git_check(&doc);
    assert_eq!(git["ok"], true, "{git}");
    let w = git["warnings"][0].as_str().unwrap();
    assert!(w.contains("names main, not the spec's branch dev"), "{w}");
    assert!(w.contains("git symbolic-ref HEAD refs/heads/dev"), "{w}");
    assert_eq!(doc["counts"]["by_kind"].get("head_missing"), None);
}
