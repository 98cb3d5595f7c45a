//! `bin sync`: upstream served by real nginx in the `{id}` layout of the
//! real Zoidberg repo.yaml, archives built by the tests; the resume case
//! against the fault server.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::archives::simple_zpa;
use crate::support::faults::{EVIL_S3_BODY, Fault, FaultServer};
use crate::support::nginx::Nginx;
use crate::support::{self, Run, Spec, zm};

const GITLAB: &str = "https://gitlab.com/api/v4/projects/71125308/packages/generic";

/// The fixture repo.yaml with its pkg links moved to `base`, as an
/// unsigned registry: no keys (signatures and source bundles have their
/// own tests over the faithful upstream), only the archive link.
fn upstream_repo_yaml(dir: &Path, base: &str) -> PathBuf {
    let text = fs::read_to_string(support::fixtures().join("zoidberg/repo.yaml")).unwrap();
    assert!(text.contains(GITLAB));
    let mut v: serde_yaml::Value = serde_yaml::from_str(&text.replace(GITLAB, base)).unwrap();
    let m = v.as_mapping_mut().unwrap();
    m.remove("pgp");
    let pkg = m.get_mut("pkg").unwrap().as_sequence_mut().unwrap();
    pkg.retain(|l| l["type"] == "main");
    let p = dir.join("upstream-repo.yaml");
    fs::write(&p, serde_yaml::to_string(&v).unwrap()).unwrap();
    p
}

fn index(dir: &Path, pkgs: &[(&str, &str, &str)]) -> PathBuf {
    let mut m = serde_json::Map::new();
    for (repo, name, version) in pkgs {
        m.insert(
            format!("@{repo}/{name}"),
            serde_json::json!({"repo": repo, "repo_type": "official", "version": version, "epoch": 0, "revision": "1",
                "description": "t", "sub_packages": [], "main_sub_packages": [], "vuln": [], "dependencies": null}),
        );
    }
    let p = dir.join("packages.json");
    fs::write(
        &p,
        serde_json::to_vec(&serde_json::json!({"version": "2", "packages": m})).unwrap(),
    )
    .unwrap();
    p
}

fn spec(dir: &Path, upstream_yaml: &Path) -> PathBuf {
    Spec::minimal()
        .inline(
            "extension.maintainer",
            &[("name", "IT"), ("email", "it@acme.example")],
        )
        .set(
            "registry.upstream_repo_yaml",
            upstream_yaml.display().to_string(),
        )
        .list("binaries.platforms", ["linux-amd64", "macos-arm64"])
        .write(dir)
}

/// Places a real .zpa at `{id}/{version}/` under `root` and indexes it
/// with our own `index` (upstream metadata as `zoi package build` writes
/// it), plus a `.sig`.
fn upstream_archive(root: &Path, repo: &str, name: &str, version: &str, platform: &str) -> PathBuf {
    let dir = root.join(format!("{repo}.{name}")).join(version);
    fs::create_dir_all(&dir).unwrap();
    let (bytes, _) = simple_zpa(name, format!("{name}{version}{platform}").as_bytes());
    let p = dir.join(format!("{name}-{version}-{platform}.zpa"));
    fs::write(&p, bytes).unwrap();
    fs::write(
        format!("{}.sig", p.display()),
        format!("-----BEGIN PGP SIGNATURE-----\n{name}\n"),
    )
    .unwrap();
    p
}

fn bin_sync(home: &Path, spec: &Path, index: &Path, dest: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "bin",
        "sync",
        "-c",
        spec.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "--dest",
        dest.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    zm(home, &args)
}

/// The report's target for `package` on `platform`.
fn target_of<'a>(doc: &'a Value, package: &str, platform: &str) -> &'a Value {
    doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["package"] == package && t["platform"] == platform)
        .unwrap_or_else(|| panic!("{package} {platform} missing"))
}

fn status_of(doc: &Value, package: &str, platform: &str) -> String {
    target_of(doc, package, platform)["status"]
        .as_str()
        .unwrap()
        .to_string()
}

struct Upstream {
    home: tempfile::TempDir,
    srv: Nginx,
    spec: PathBuf,
    index: PathBuf,
    generic: PathBuf,
}

fn upstream() -> Upstream {
    let home = tempfile::tempdir().unwrap();
    let www = home.path().join("www");
    let generic = www.join("generic");
    for (repo, name, version) in [
        ("zillowe", "hello", "5.0.0"),
        ("extra", "bacon", "3.24.0"),
        ("zillowe", "zls", "1.1.1"),
    ] {
        for pl in ["linux-amd64", "macos-arm64"] {
            if name == "bacon" && pl == "macos-arm64" {
                continue; // not built upstream for that platform
            }
            upstream_archive(&generic, repo, name, version, pl);
        }
    }
    zm(home.path(), &["index", generic.to_str().unwrap()]).ok();
    let srv = Nginx::start(&www);
    let yaml = upstream_repo_yaml(home.path(), &srv.url("generic"));
    let spec = spec(home.path(), &yaml);
    let index = index(
        home.path(),
        &[
            ("zillowe", "hello", "5.0.0"),
            ("extra", "bacon", "3.24.0"),
            ("zillowe", "zls", "1.1.1"),
        ],
    );
    Upstream {
        home,
        srv,
        spec,
        index,
        generic,
    }
}

#[test]
fn first_sync_places_everything_second_downloads_nothing() {
    let u = upstream();
    let h = u.home.path();
    let dest = h.join("dest");

    let r = bin_sync(h, &u.spec, &u.index, &dest, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    assert_eq!(doc["totals"]["downloaded"], 5);
    assert_eq!(doc["totals"]["not_available"], 1);
    assert_eq!(
        status_of(&doc, "@extra/bacon", "macos-arm64"),
        "not_available"
    );

    // Seed layout, metadata byte for byte as upstream's.
    for (repo, name, version, pl) in [
        ("zillowe", "hello", "5.0.0", "linux-amd64"),
        ("zillowe", "zls", "1.1.1", "macos-arm64"),
        ("extra", "bacon", "3.24.0", "linux-amd64"),
    ] {
        let (os, arch) = pl.split_once('-').unwrap();
        let file = format!("{name}-{version}-{pl}.zpa");
        let local = dest
            .join(repo)
            .join(os)
            .join(arch)
            .join(version)
            .join(&file);
        let remote = u
            .generic
            .join(format!("{repo}.{name}"))
            .join(version)
            .join(&file);
        assert_eq!(
            fs::read(&local).unwrap(),
            fs::read(&remote).unwrap(),
            "{file}"
        );
        for ext in ["hash", "size", "files", "sig"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(format!("{}.{ext}", local.display()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o004,
                0o004,
                "{file}.{ext} must be readable by the web server: {mode:o}"
            );
            assert_eq!(
                fs::read(format!("{}.{ext}", local.display())).unwrap(),
                fs::read(format!("{}.{ext}", remote.display())).unwrap(),
                "{file}.{ext}"
            );
        }
    }
    // no temp files left, and the tree is consistent for `index --check`
    let leftovers: Vec<_> = walk(&dest)
        .into_iter()
        .filter(|p| p.contains(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let layout_check = zm(
        h,
        &[
            "index",
            "--check",
            "--layout",
            "{repo}/{os}/{arch}/{version}",
            dest.to_str().unwrap(),
        ],
    );
    assert_eq!(
        layout_check.code, 0,
        "{}\n{}",
        layout_check.stdout, layout_check.stderr
    );

    // Second run: nothing new, no archive downloaded.
    let log_before = u.srv.access_log().lines().count();
    let mtimes: Vec<_> = walk(&dest)
        .iter()
        .map(|p| fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    let doc = bin_sync(h, &u.spec, &u.index, &dest, &[]).ok().json();
    assert_eq!(doc["totals"]["up_to_date"], 5);
    assert_eq!(doc["totals"]["downloaded"], 0);
    assert_eq!(doc["totals"]["bytes"], 0);
    let log = u.srv.access_log();
    let new: Vec<&str> = log.lines().skip(log_before).collect();
    assert!(
        new.iter().all(|l| !l.contains(".zpa ")),
        "archives fetched again:\n{}",
        new.join("\n")
    );
    assert!(
        new.iter().all(|l| l.contains(".zpa.hash ")),
        "only the .hash is needed to compare:\n{}",
        new.join("\n")
    );
    let mtimes2: Vec<_> = walk(&dest)
        .iter()
        .map(|p| fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    assert_eq!(mtimes, mtimes2);

    // --dry-run on an empty destination says what and how many bytes.
    let doc = bin_sync(
        h,
        &u.spec,
        &u.index,
        &h.join("dest2"),
        &["--dry-run", "--package", "hello"],
    )
    .ok()
    .json();
    assert_eq!(doc["totals"]["would_download"], 2);
    assert!(doc["targets"][0]["bytes"].as_u64().unwrap() > 0);
    assert!(!h.join("dest2").exists());
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().display().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn an_archive_not_matching_upstreams_hash_is_not_placed() {
    let u = upstream();
    let h = u.home.path();
    // corrupt upstream's zls archive after its metadata was written
    let bad = u
        .generic
        .join("zillowe.zls/1.1.1/zls-1.1.1-linux-amd64.zpa");
    let mut bytes = fs::read(&bad).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&bad, bytes).unwrap();
    let dest = h.join("dest");
    let r = bin_sync(h, &u.spec, &u.index, &dest, &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let doc = r.json();
    assert_eq!(status_of(&doc, "@zillowe/zls", "linux-amd64"), "failed");
    let t = target_of(&doc, "@zillowe/zls", "linux-amd64");
    assert_eq!(t["error"]["kind"], "hash_mismatch");
    let dir = dest.join("zillowe/linux/amd64/1.1.1");
    assert!(!dir.join("zls-1.1.1-linux-amd64.zpa").exists());
    assert!(!dir.join("zls-1.1.1-linux-amd64.zpa.hash").exists());
    assert!(
        walk(&dest)
            .iter()
            .all(|p| !p.contains("zls-1.1.1-linux-amd64")),
        "{:?}",
        walk(&dest)
    );
    // the others were placed anyway
    assert_eq!(
        status_of(&doc, "@zillowe/hello", "linux-amd64"),
        "downloaded"
    );
}

#[test]
fn prune_keeps_the_index_version_and_n_previous_ones() {
    let u = upstream();
    let h = u.home.path();
    let dest = h.join("dest");
    // older hello versions already on the host, and a stranger
    let old_dir = |v: &str| dest.join("zillowe/linux/amd64").join(v);
    for v in ["4.0.0", "4.5.0", "4.10.0"] {
        fs::create_dir_all(old_dir(v)).unwrap();
        let f = old_dir(v).join(format!("hello-{v}-linux-amd64.zpa"));
        fs::write(&f, b"old").unwrap();
        fs::write(format!("{}.hash", f.display()), b"x").unwrap();
    }
    fs::write(dest.join("zillowe/linux/amd64/README"), b"keep me").unwrap();
    // zls's index version is gone from upstream for linux-amd64: the two
    // older ones the host has are then all it has, and both stay.
    for v in ["0.9.0", "1.0.0"] {
        fs::create_dir_all(old_dir(v)).unwrap();
        fs::write(old_dir(v).join(format!("zls-{v}-linux-amd64.zpa")), b"old").unwrap();
    }
    for f in fs::read_dir(u.generic.join("zillowe.zls/1.1.1")).unwrap() {
        let f = f.unwrap().path();
        if f.to_string_lossy().contains("linux-amd64") {
            fs::remove_file(f).unwrap();
        }
    }
    let r = bin_sync(h, &u.spec, &u.index, &dest, &["--prune", "--keep", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.json();
    assert_eq!(
        status_of(&doc, "@zillowe/zls", "linux-amd64"),
        "not_available"
    );
    for v in ["0.9.0", "1.0.0"] {
        assert!(
            old_dir(v).join(format!("zls-{v}-linux-amd64.zpa")).exists(),
            "zls {v} kept"
        );
    }
    let pruned: Vec<&str> = doc["pruned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["version"].as_str().unwrap())
        .collect();
    assert_eq!(pruned, ["4.0.0", "4.5.0"]);
    assert!(
        old_dir("4.10.0")
            .join("hello-4.10.0-linux-amd64.zpa")
            .exists(),
        "newest previous kept"
    );
    assert!(
        !old_dir("4.5.0")
            .join("hello-4.5.0-linux-amd64.zpa")
            .exists()
    );
    assert!(
        !old_dir("4.5.0")
            .join("hello-4.5.0-linux-amd64.zpa.hash")
            .exists()
    );
    assert!(
        dest.join("zillowe/linux/amd64/5.0.0/hello-5.0.0-linux-amd64.zpa")
            .exists()
    );
    assert!(dest.join("zillowe/linux/amd64/README").exists());
}

/// Upstream re-publishes an archive (new bytes, so a new `.hash`) without
/// the `.sig` it had: the mirror's copy of the old `.sig` must not stay
/// beside the new bytes, where a client that trusts keys would read it as
/// a bad signature (and `check` reports `signature_bad`).
#[test]
fn a_redownloaded_archive_keeps_no_sidecar_upstream_no_longer_has() {
    let u = upstream();
    let h = u.home.path();
    let dest = h.join("dest");
    let r = bin_sync(h, &u.spec, &u.index, &dest, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let local = dest.join("zillowe/linux/amd64/5.0.0/hello-5.0.0-linux-amd64.zpa");
    let sig = PathBuf::from(format!("{}.sig", local.display()));
    assert!(sig.exists(), "upstream's .sig placed the first time");

    let remote = u
        .generic
        .join("zillowe.hello/5.0.0/hello-5.0.0-linux-amd64.zpa");
    let (bytes, _) = simple_zpa("hello", b"rebuilt, unsigned");
    fs::write(&remote, &bytes).unwrap();
    fs::remove_file(format!("{}.sig", remote.display())).unwrap();
    zm(h, &["index", "--force", u.generic.to_str().unwrap()]).ok();

    let r = bin_sync(h, &u.spec, &u.index, &dest, &["--package", "hello"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    assert_eq!(
        status_of(&doc, "@zillowe/hello", "linux-amd64"),
        "downloaded"
    );
    assert_eq!(fs::read(&local).unwrap(), bytes);
    assert!(!sig.exists(), "the old .sig was left beside the new bytes");
    for ext in ["hash", "size", "files"] {
        assert_eq!(
            fs::read(format!("{}.{ext}", local.display())).unwrap(),
            fs::read(format!("{}.{ext}", remote.display())).unwrap(),
            ".{ext} is upstream's new one"
        );
    }
    // the other platform, not re-published, keeps its .sig
    assert!(
        dest.join("zillowe/macos/arm64/5.0.0/hello-5.0.0-macos-arm64.zpa.sig")
            .exists()
    );
}

/// A flat layout (`{repo}/{os}/{arch}`, no version folder) puts `foo` and
/// `foo-bar` side by side, and `foo-bar-1.0.0-linux-amd64.zpa` reads as
/// `foo` at `bar-1.0.0` by its name alone. `bin sync --package foo --prune`
/// must remove foo's old version and nothing of foo-bar's, which the index
/// knows although this run did not select it.
#[test]
fn prune_over_some_packages_leaves_another_packages_archives_alone() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let generic = h.join("www/generic");
    for (name, version) in [("foo", "2.0.0"), ("foo-bar", "1.0.0")] {
        upstream_archive(&generic, "zillowe", name, version, "linux-amd64");
    }
    zm(h, &["index", generic.to_str().unwrap()]).ok();
    let srv = Nginx::start(&h.join("www"));
    let yaml = upstream_repo_yaml(h, &srv.url("generic"));
    let spec = Spec::minimal()
        .inline(
            "extension.maintainer",
            &[("name", "IT"), ("email", "it@acme.example")],
        )
        .set("registry.upstream_repo_yaml", yaml.display().to_string())
        .set("binaries.layout", "{repo}/{os}/{arch}")
        .list("binaries.platforms", ["linux-amd64"])
        .write(h);
    let index = index(
        h,
        &[("zillowe", "foo", "2.0.0"), ("zillowe", "foo-bar", "1.0.0")],
    );
    let dest = h.join("dest");
    let r = bin_sync(h, &spec, &index, &dest, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let flat = dest.join("zillowe/linux/amd64");
    let file = |name: &str, v: &str| flat.join(format!("{name}-{v}-linux-amd64.zpa"));
    assert!(file("foo-bar", "1.0.0").exists(), "{:?}", walk(&dest));
    // Older versions on the host: foo's goes, foo-bar's is not foo's.
    for (name, v) in [("foo", "1.0.0"), ("foo-bar", "0.9.0")] {
        fs::write(file(name, v), b"old").unwrap();
        fs::write(format!("{}.hash", file(name, v).display()), b"x").unwrap();
    }

    let r = bin_sync(h, &spec, &index, &dest, &["--package", "foo", "--prune"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    let pruned: Vec<&str> = doc["pruned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        pruned,
        ["zillowe/linux/amd64/foo-1.0.0-linux-amd64.zpa"],
        "{}",
        r.stdout
    );
    assert!(!file("foo", "1.0.0").exists());
    for (name, v) in [("foo", "2.0.0"), ("foo-bar", "1.0.0"), ("foo-bar", "0.9.0")] {
        assert!(file(name, v).exists(), "{name} {v} kept: {:?}", walk(&dest));
        assert!(
            fs::metadata(format!("{}.hash", file(name, v).display())).is_ok(),
            "{name} {v}'s .hash kept"
        );
    }
}

/// Upstream serving hello 5.0.0 for linux-amd64: its sidecars as they
/// should be, the archive itself as `archive` says. Returns the server and
/// the archive's path on it.
fn serve_hello(bytes: &[u8], archive: Fault) -> (FaultServer, String) {
    let file = "hello-5.0.0-linux-amd64.zpa";
    let hash = format!("{}  {file}\n", support::sha512_hex(bytes));
    let size = format!("down: {}\ninstall: 1\n", bytes.len());
    let base = format!("/generic/zillowe.hello/5.0.0/{file}");
    let srv = FaultServer::start(vec![
        (
            &format!("{base}.hash"),
            Fault::Ok(hash.into_bytes(), vec![]),
        ),
        (
            &format!("{base}.size"),
            Fault::Ok(size.into_bytes(), vec![]),
        ),
        (
            &format!("{base}.files"),
            Fault::Ok(b"${pkgstore}/bin/hello".to_vec(), vec![]),
        ),
        (&format!("{base}.sig"), Fault::Ok(b"sig".to_vec(), vec![])),
        (&base, archive),
    ]);
    (srv, base)
}

#[test]
fn a_download_cut_off_halfway_resumes_with_range() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (bytes, _) = simple_zpa("hello", &[7u8; 200_000]);
    let file = "hello-5.0.0-linux-amd64.zpa";
    let (srv, base) = serve_hello(&bytes, Fault::CutOnceThenRange(bytes.clone()));
    let yaml = upstream_repo_yaml(h, &srv.url("http", "/generic"));
    let spec = spec(h, &yaml);
    let index = index(h, &[("zillowe", "hello", "5.0.0")]);
    let dest = h.join("dest");
    let r = bin_sync(h, &spec, &index, &dest, &["--platform", "linux-amd64"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let t = &r.json()["targets"][0];
    assert_eq!(t["status"], "downloaded");
    assert_eq!(t["resumed"], true, "{t}");
    assert_eq!(
        fs::read(dest.join("zillowe/linux/amd64/5.0.0").join(file)).unwrap(),
        bytes
    );
    assert!(srv.hits(&base) >= 2);
    let seen = srv.seen_headers.lock().unwrap().join("\n").to_lowercase();
    assert!(
        seen.contains(&format!("range: bytes={}-", bytes.len() / 2)),
        "{seen}"
    );
}

/// The archive download follows the one retry policy: a 429's
/// `Retry-After` is waited out (the old downloader retried after 200 ms,
/// whatever the server asked).
#[test]
fn a_rate_limited_download_waits_as_retry_after_says() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (bytes, _) = simple_zpa("hello", &[7u8; 1000]);
    let (srv, base) = serve_hello(&bytes, Fault::RateLimitThenOk(1, 2, bytes.clone()));
    let yaml = upstream_repo_yaml(h, &srv.url("http", "/generic"));
    let spec = spec(h, &yaml);
    let index = index(h, &[("zillowe", "hello", "5.0.0")]);
    let dest = h.join("dest");
    let started = std::time::Instant::now();
    let r = bin_sync(h, &spec, &index, &dest, &["--platform", "linux-amd64"]);
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["targets"][0]["status"], "downloaded");
    assert_eq!(srv.hits(&base), 2);
    assert!(
        took >= std::time::Duration::from_secs(2),
        "retried after {took:?}, before the 2 s Retry-After"
    );
}

/// A client error other than 408, 425 and 429 is the same on every
/// attempt: the archive is asked for once and the target fails as
/// `http_error`; a 5xx is asked for again, as many times as --retries says.
#[test]
fn a_client_error_is_not_retried_and_a_server_error_is() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (bytes, _) = simple_zpa("hello", &[7u8; 1000]);
    let index = index(h, &[("zillowe", "hello", "5.0.0")]);
    for (status, asked) in [
        ("400 Bad Request", 1),
        ("405 Method Not Allowed", 1),
        ("416 Range Not Satisfiable", 1),
        ("451 Unavailable For Legal Reasons", 1),
        ("503 Service Unavailable", 3),
    ] {
        let (srv, base) = serve_hello(&bytes, Fault::Status(status, b"no".to_vec()));
        let yaml = upstream_repo_yaml(h, &srv.url("http", "/generic"));
        let spec = spec(h, &yaml);
        let dest = h.join("dest");
        let r = bin_sync(
            h,
            &spec,
            &index,
            &dest,
            &["--platform", "linux-amd64", "--retries", "2"],
        );
        assert_eq!(r.code, 1, "{status}: {}\n{}", r.stdout, r.stderr);
        let t = &r.json()["targets"][0];
        assert_eq!(t["status"], "failed", "{status}: {t}");
        assert_eq!(t["error"]["kind"], "http_error", "{status}: {t}");
        let code = &status[..3];
        assert_eq!(
            t["error"]["message"].as_str().unwrap(),
            format!("HTTP {code}"),
            "{t}"
        );
        assert_eq!(srv.hits(&base), asked, "{status}: asked {asked} time(s)");
        // The hint fits a refusal as well as a failure.
        let hint = t["error"]["hint"].as_str().unwrap();
        assert!(
            hint.contains("any other 4xx refuses") && hint.contains("a 5xx"),
            "{t}"
        );
    }
}

/// A server's error text reaches bin sync's human report with its
/// terminal controls escaped; the JSON keeps it as it came.
#[test]
fn control_characters_from_upstream_are_escaped_in_the_human_report() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (bytes, _) = simple_zpa("hello", &[7u8; 1000]);
    let base = "/generic/zillowe.hello/5.0.0/hello-5.0.0-linux-amd64.zpa";
    let srv = FaultServer::start(vec![
        (
            &format!("{base}.hash"),
            Fault::Status("403 Forbidden", EVIL_S3_BODY.to_vec()),
        ),
        (base, Fault::Ok(bytes, vec![])),
    ]);
    let yaml = upstream_repo_yaml(h, &srv.url("http", "/generic"));
    let spec = spec(h, &yaml);
    let index = index(h, &[("zillowe", "hello", "5.0.0")]);
    let mut args = vec![
        "bin",
        "sync",
        "-c",
        spec.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "--dest",
        "dest",
        "--platform",
        "linux-amd64",
    ];
    let r = zm(h, &args);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("FAIL"), "{}", r.stdout);
    support::assert_escaped(&r.stdout, r"S3 \u{1b}[31mEvil\u{1b}]0;pwned\u{7}");
    args.extend(["--format", "json"]);
    let doc = zm(h, &args).json();
    let t = target_of(&doc, "@zillowe/hello", "linux-amd64");
    assert!(
        t["error"]["message"]
            .as_str()
            .unwrap()
            .contains("S3 \x1b[31mEvil\x1b]0;pwned\x07"),
        "{t}"
    );
}

#[test]
fn bad_bin_sync_input() {
    let u = upstream();
    let h = u.home.path();
    let r = bin_sync(
        h,
        &u.spec,
        &u.index,
        &h.join("d"),
        &["--platform", "windows-amd64"],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not one the spec serves"), "{}", r.stderr);
    // no index, and no db sync cache
    let r = zm(
        h,
        &[
            "bin",
            "sync",
            "-c",
            u.spec.to_str().unwrap(),
            "--dest",
            "d",
            "--work",
            "nowhere",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("run `zoi-mirror db sync` first"),
        "{}",
        r.stderr
    );
    // An index that is not one: named, with a hint.
    let bad = h.join("notjson.json");
    fs::write(&bad, "{nope").unwrap();
    let r = bin_sync(h, &u.spec, &bad, &h.join("d"), &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("{}: not a packages.json", bad.display()))
            && r.stderr.contains("hint: give a registry's packages.json"),
        "{}",
        r.stderr
    );
    // An index by a URL whose scheme nothing reads: a usage error naming
    // the URL and the scheme (it was read as a path: "No such file").
    let r = bin_sync(
        h,
        &u.spec,
        Path::new("ftp://mirror.example/packages.json"),
        &h.join("d"),
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    let doc = r.json();
    assert_eq!(doc["error"]["kind"], "usage", "{doc}");
    assert_eq!(
        doc["error"]["message"],
        "packages.json ftp://mirror.example/packages.json: URL scheme `ftp` is not supported (only http, https and file)"
    );
    // A directory for the index: bad input (2), said as it is; `-c DIR` is
    // the same mistake, same answer (it was exit 3).
    let r = bin_sync(h, &u.spec, h, &h.join("d"), &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let doc = r.json();
    assert_eq!(doc["error"]["kind"], "usage", "{doc}");
    assert_eq!(
        doc["error"]["message"],
        format!("packages.json {} is a directory, not a file", h.display())
    );
    assert_eq!(
        doc["error"]["hint"],
        format!("pass the file itself: {}", u.index.display())
    );
    let r = bin_sync(h, h, &u.index, &h.join("d"), &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.json()["error"]["kind"], "spec_missing");
    // A destination that cannot be written: exit 3 before anything is
    // fetched (not a "connect" failure per target), and the file is kept.
    let file = h.join("a-file");
    fs::write(&file, "mine").unwrap();
    let r = bin_sync(h, &u.spec, &u.index, &file, &[]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "cannot write into the destination {}",
            file.display()
        )) && r
            .stderr
            .contains("hint: give --dest a folder this user can write"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("connect"), "{}", r.stdout);
    assert_eq!(fs::read_to_string(&file).unwrap(), "mine");
    // A file where one archive's folder goes: that target fails as `io`
    // (this machine, not the network), and the others are placed.
    let dest = h.join("d2");
    fs::create_dir_all(dest.join("zillowe/linux/amd64")).unwrap();
    fs::write(dest.join("zillowe/linux/amd64/5.0.0"), "in the way").unwrap();
    let r = bin_sync(h, &u.spec, &u.index, &dest, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = r.json();
    let hello = target_of(&doc, "@zillowe/hello", "linux-amd64");
    assert_eq!(hello["status"], "failed", "{hello}");
    assert_eq!(hello["error"]["kind"], "io", "{hello}");
    assert!(
        hello["error"]["hint"]
            .as_str()
            .unwrap()
            .starts_with("writing on this machine failed"),
        "{hello}"
    );
    assert_eq!(status_of(&doc, "@zillowe/zls", "linux-amd64"), "downloaded");
}

#[test]
fn the_auth_header_goes_to_upstream_and_not_to_a_redirect_target() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // GitLab's header: reqwest itself would forward it across a redirect
    let token = "upstream-t0ken";
    let (bytes, _) = simple_zpa("hello", b"x");
    let file = "hello-5.0.0-linux-amd64.zpa";
    let hash = format!("{}  {file}\n", support::sha512_hex(&bytes));
    // the object store the upstream registry redirects archive downloads to
    let store = FaultServer::start(vec![(
        &format!("/blobs/{file}"),
        Fault::Ok(bytes.clone(), vec![]),
    )]);
    let base = format!("/generic/zillowe.hello/5.0.0/{file}");
    let upstream = FaultServer::start(vec![
        (
            &format!("{base}.hash"),
            Fault::Ok(hash.into_bytes(), vec![]),
        ),
        (
            &base,
            Fault::Redirect(store.url("http", &format!("/blobs/{file}"))),
        ),
    ]);
    let yaml = upstream_repo_yaml(h, &upstream.url("http", "/generic"));
    let spec = spec(h, &yaml);
    let index = index(h, &[("zillowe", "hello", "5.0.0")]);
    let header = format!("PRIVATE-TOKEN: {token}");
    let r = bin_sync(
        h,
        &spec,
        &index,
        &h.join("dest"),
        &["--platform", "linux-amd64", "--header", &header],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["targets"][0]["status"], "downloaded");
    assert!(
        upstream
            .seen_headers
            .lock()
            .unwrap()
            .join("\n")
            .contains(token),
        "upstream got the header"
    );
    let at_store = store.seen_headers.lock().unwrap().join("\n");
    assert!(
        at_store.contains(&format!("GET /blobs/{file}")),
        "the redirect was followed"
    );
    assert!(
        !at_store.contains("upstream-t0ken"),
        "the token must not follow a redirect to another host:\n{at_store}"
    );
}

/// A big archive is written to disk as it arrives, not all at the flush
/// that ends its download: watched with strace, `sync_file_range` starts
/// the writing of each 8 MiB of the `.part` file, in order and from its
/// start, before that flush.
#[test]
fn a_big_download_is_written_out_as_it_arrives() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let www = h.join("www");
    let generic = www.join("generic");
    let dir = generic.join("zillowe.hello/5.0.0");
    fs::create_dir_all(&dir).unwrap();
    // 24 MiB that zstd cannot shrink (xorshift), so the archive is as big.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let payload: Vec<u8> = (0..(24 << 20) / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    let (bytes, _) = simple_zpa("hello", &payload);
    fs::write(dir.join("hello-5.0.0-linux-amd64.zpa"), &bytes).unwrap();
    assert_eq!(zm(h, &["index", generic.to_str().unwrap()]).code, 0);
    let srv = Nginx::start(&www);
    let yaml = upstream_repo_yaml(h, &srv.url("generic"));
    let spec = Spec::minimal()
        .inline(
            "extension.maintainer",
            &[("name", "IT"), ("email", "it@acme.example")],
        )
        .set("registry.upstream_repo_yaml", yaml.display().to_string())
        .list("binaries.platforms", ["linux-amd64"])
        .write(h);
    let index = index(h, &[("zillowe", "hello", "5.0.0")]);
    let dest = h.join("dest");
    let log = h.join("strace.log");
    let mut c = support::cmd(h);
    c.args(["bin", "sync", "-c"])
        .arg(&spec)
        .arg("--index")
        .arg(&index)
        .arg("--dest")
        .arg(&dest);
    let r = support::run(&mut support::under_strace(
        &c,
        &log,
        "sync_file_range,fsync,fdatasync",
    ));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);

    let text = fs::read_to_string(&log).unwrap();
    let part = ".hello-5.0.0-linux-amd64.zpa.part>";
    let mut started = Vec::new();
    let mut flushed_after = None;
    for line in text.lines().filter(|l| l.contains(part)) {
        if let Some(args) = line.split("sync_file_range(").nth(1) {
            // sync_file_range(5</…/.x.zpa.part>, 0, 8388608, SYNC_FILE_RANGE_WRITE) = 0,
            // or `… SYNC_FILE_RANGE_WRITE <unfinished ...>` while another
            // thread's call is logged (its `resumed` line names no file).
            let fields: Vec<&str> = args.split(", ").collect();
            assert!(
                fields[3] == "SYNC_FILE_RANGE_WRITE) = 0"
                    || fields[3] == "SYNC_FILE_RANGE_WRITE <unfinished ...>",
                "{line}"
            );
            let (at, len): (u64, u64) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
            assert!(
                flushed_after.is_none(),
                "written out after the flush:\n{text}"
            );
            started.push((at, len));
        } else if line.contains("fsync(") || line.contains("fdatasync(") {
            flushed_after.get_or_insert(started.len());
        }
    }
    assert!(
        flushed_after.is_some(),
        "the .part is never flushed:\n{text}"
    );
    // 8 MiB at a time (and a chunk more at most), not all at once at the end.
    let mut next = 0;
    for &(at, len) in &started {
        assert_eq!(at, next, "in order, from the start: {started:?}");
        assert!(
            (8 << 20..9 << 20).contains(&len),
            "8 MiB at a time: {started:?}"
        );
        next = at + len;
    }
    assert!(
        next + (8 << 20) > bytes.len() as u64,
        "all but the last 8 MiB of {} bytes written out before the flush: {started:?}",
        bytes.len()
    );
    assert_eq!(
        fs::read(dest.join("zillowe/linux/amd64/5.0.0/hello-5.0.0-linux-amd64.zpa")).unwrap(),
        bytes
    );
}
