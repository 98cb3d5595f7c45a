//! `db sync` against real git: bare repositories on disk and a `git daemon`
//! on loopback.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::gitd::{GitDaemon, empty_bare, git, upstream_registry};
use crate::support::gpg::{self, throwaway_gpg_key};
use crate::support::{self, Run, Spec, zm};

fn spec(dir: &Path, target: &str, upstream: &str, extra_registry: &str) -> PathBuf {
    let fixture = support::fixtures().join("zoidberg/repo.yaml");
    Spec::minimal()
        .set("extension.description", "ACME mirror")
        .set("extension.tier", "acme")
        .inline(
            "extension.maintainer",
            &[("name", "IT"), ("email", "it@acme.example")],
        )
        .set("registry.url", target)
        .set("registry.upstream", upstream)
        .set("registry.upstream_repo_yaml", fixture.display().to_string())
        .merge_under("registry", extra_registry)
        .push("registry.tiers", &[("name", "acme")])
        .write(dir)
}

fn sync(home: &Path, spec: &Path, extra: &[&str]) -> Run {
    support::run(&mut sync_cmd(home, spec, extra))
}

/// `db sync --format json` with the cache under `home/work`.
fn sync_cmd(home: &Path, spec: &Path, extra: &[&str]) -> Command {
    let mut c = support::cmd(home);
    c.args(["db", "sync", "-c"])
        .arg(spec)
        .arg("--work")
        .arg(home.join("work/registry.git"))
        .args(["--format", "json"])
        .args(extra);
    c
}

/// `ref -> sha` of a repository.
fn refs(repo: &Path) -> Vec<(String, String)> {
    let out = git(repo, &["for-each-ref", "--format=%(refname) %(objectname)"]);
    out.lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect()
}

fn rev_list(repo: &Path, rev: &str) -> Vec<String> {
    git(repo, &["rev-list", rev])
        .lines()
        .map(String::from)
        .collect()
}

fn built_repo_yaml(home: &Path, spec: &Path) -> Vec<u8> {
    let out = home.join("dist-check");
    zm(
        home,
        &[
            "build",
            "-c",
            spec.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    fs::read(out.join("acme-mirror-1.0.0/repo.yaml")).unwrap()
}

#[test]
fn sync_through_git_daemon_first_noop_advance_and_force_push() {
    let home = tempfile::tempdir().unwrap();
    let served = home.path().join("served");
    fs::create_dir_all(&served).unwrap();
    let (up_work, up_bare) = upstream_registry(&served);
    let target = empty_bare(&served.join("target.git"));
    let daemon = GitDaemon::start(&served);
    let spec = spec(
        home.path(),
        &daemon.url("target.git"),
        &daemon.url("upstream.git"),
        "",
    );

    // First sync: everything created, main = upstream + one overlay commit.
    let r = sync(home.path(), &spec, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.json();
    assert_eq!(doc["pushed"], true);
    assert_eq!(doc["warnings"], serde_json::json!([]), "HEAD → main: {doc}");
    let actions: Vec<(String, String)> = doc["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["ref"].as_str().unwrap().into(),
                u["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("refs/heads/dev".into(), "create".into()),
            ("refs/heads/main".into(), "create".into()),
            ("refs/tags/v1".into(), "create".into())
        ]
    );
    let up_tip = git(&up_bare, &["rev-parse", "main"]);
    let overlay = git(&target, &["rev-parse", "main"]);
    assert_eq!(doc["upstream_tip"], up_tip.as_str());
    assert_eq!(doc["overlay_commit"], overlay.as_str());
    assert_eq!(git(&target, &["rev-parse", "main^"]), up_tip);
    let mut expected = vec![overlay.clone()];
    expected.extend(rev_list(&up_bare, "main"));
    assert_eq!(
        rev_list(&target, "main"),
        expected,
        "target = upstream + one commit"
    );
    assert_eq!(
        git(&target, &["rev-parse", "dev"]),
        git(&up_bare, &["rev-parse", "dev"])
    );
    assert_eq!(
        git(&target, &["rev-parse", "refs/tags/v1"]),
        git(&up_bare, &["rev-parse", "refs/tags/v1"])
    );
    // The overlay replaces exactly repo.yaml, with the bundle's.
    let changed = git(&target, &["diff", "--name-only", "main^", "main"]);
    assert_eq!(changed, "repo.yaml");
    let repo_yaml = Command::new("git")
        .args(["-C", target.to_str().unwrap(), "show", "main:repo.yaml"])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(repo_yaml, built_repo_yaml(home.path(), &spec));
    assert_eq!(
        git(&target, &["log", "-1", "--format=%an <%ae> %cn", "main"]),
        "zoi-mirror <zoi-mirror@localhost> zoi-mirror"
    );

    // No-op re-sync: nothing pushed.
    let before = refs(&target);
    let doc = sync(home.path(), &spec, &[]).ok().json();
    assert_eq!(doc["updates"], serde_json::json!([]));
    assert_eq!(doc["pushed"], false);
    assert_eq!(refs(&target), before);

    // Deterministic: a fresh cache computes the same overlay commit.
    fs::remove_dir_all(home.path().join("work")).unwrap();
    let doc = sync(home.path(), &spec, &[]).ok().json();
    assert_eq!(doc["overlay_commit"], overlay.as_str());
    assert_eq!(doc["pushed"], false);

    // Upstream advances: the overlay is re-created on the new tip.
    fs::write(up_work.join("zillowe/hello/hello.pkg.lua"), "-- v5.0.1\n").unwrap();
    git(&up_work, &["commit", "-qam", "hello 5.0.1"]);
    git(&up_work, &["push", "-q", "origin", "main"]);
    let doc = sync(home.path(), &spec, &[]).ok().json();
    let tip2 = git(&up_bare, &["rev-parse", "main"]);
    let overlay2 = git(&target, &["rev-parse", "main"]);
    assert_eq!(doc["upstream_tip"], tip2.as_str());
    assert_ne!(overlay2, overlay);
    // First parent: upstream's new tip; second: the overlay clients have,
    // so that their `zoi sync` (which only fast-forwards) follows.
    assert_eq!(
        git(&target, &["log", "-1", "--format=%P", "main"]),
        format!("{tip2} {overlay}")
    );
    let mut expected = vec![overlay2.clone(), overlay.clone()];
    expected.extend(rev_list(&up_bare, "main"));
    let mut got = rev_list(&target, "main");
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "upstream's history plus both overlays");

    // Upstream force-pushes (history rewritten), deletes dev, adds v2.
    git(&up_work, &["reset", "-q", "--hard", "HEAD~1"]);
    fs::write(
        up_work.join("packages.json"),
        "{\"version\": \"2\", \"packages\": {}}\n",
    )
    .unwrap();
    git(&up_work, &["commit", "-qam", "rewritten"]);
    git(&up_work, &["tag", "v2"]);
    git(&up_work, &["push", "-q", "--force", "origin", "main", "v2"]);
    git(&up_bare, &["branch", "-D", "dev"]);
    let doc = sync(home.path(), &spec, &[]).ok().json();
    let tip3 = git(&up_bare, &["rev-parse", "main"]);
    assert_eq!(git(&target, &["rev-parse", "main^"]), tip3);
    let names: Vec<String> = refs(&target).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["refs/heads/main", "refs/tags/v1", "refs/tags/v2"],
        "dev pruned"
    );
    let deleted: Vec<&str> = doc["updates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["action"] == "delete")
        .map(|u| u["ref"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, ["refs/heads/dev"]);
}

#[test]
fn an_unreachable_target_is_exit_3_and_the_next_run_succeeds() {
    let home = tempfile::tempdir().unwrap();
    let (_w, up_bare) = upstream_registry(home.path());
    let target = home.path().join("target.git");
    let spec = spec(
        home.path(),
        &format!("file://{}", target.display()),
        &format!("file://{}", up_bare.display()),
        "",
    );
    let r = sync(home.path(), &spec, &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot reach the target registry"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("the next run resumes"), "{}", r.stderr);
    assert_eq!(r.json()["error"]["kind"], "unreachable");

    empty_bare(&target);
    let doc = sync(home.path(), &spec, &[]).ok().json();
    assert_eq!(doc["pushed"], true);
    assert_eq!(
        git(&target, &["rev-parse", "main^"]),
        git(&up_bare, &["rev-parse", "main"])
    );

    // an unreachable upstream is exit 3 too, and the target is left alone
    let before = refs(&target);
    let spec2 = spec_with_upstream(home.path(), &target, "file:///nonexistent/upstream.git");
    let r = zm(
        home.path(),
        &[
            "db",
            "sync",
            "-c",
            spec2.to_str().unwrap(),
            "--work",
            home.path().join("w2").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot reach the upstream registry"),
        "{}",
        r.stderr
    );
    assert_eq!(refs(&target), before);
}

fn spec_with_upstream(home: &Path, target: &Path, upstream: &str) -> PathBuf {
    let dir = home.join("spec2");
    fs::create_dir_all(&dir).unwrap();
    spec(&dir, &format!("file://{}", target.display()), upstream, "")
}

#[test]
fn credentials_in_urls_are_never_printed() {
    let home = tempfile::tempdir().unwrap();
    let (_w, up_bare) = upstream_registry(home.path());
    let spec = spec(
        home.path(),
        "https://deploy:s3cret-pw@127.0.0.1:1/zoi/zoidberg.git",
        &format!("file://{}", up_bare.display()),
        "",
    );
    // the spec refuses credentials in registry.url (they would reach every
    // client), so pass the target on the command line as a CI job would
    let clean = fs::read_to_string(&spec)
        .unwrap()
        .replace("deploy:s3cret-pw@", "");
    fs::write(&spec, clean).unwrap();
    for format in ["human", "json"] {
        let work = home.path().join("work/registry.git");
        let r = zm(
            home.path(),
            &[
                "db",
                "sync",
                "-c",
                spec.to_str().unwrap(),
                "--work",
                work.to_str().unwrap(),
                "--target",
                "https://deploy:s3cret-pw@127.0.0.1:1/zoi/zoidberg.git",
                "--format",
                format,
            ],
        );
        assert_eq!(r.code, 3, "{}", r.stderr);
        for out in [&r.stdout, &r.stderr] {
            assert!(!out.contains("s3cret"), "leaked: {out}");
        }
        assert!(
            r.stderr
                .contains("https://***@127.0.0.1:1/zoi/zoidberg.git"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn dry_run_and_publish_extension() {
    let home = tempfile::tempdir().unwrap();
    let (_w, up_bare) = upstream_registry(home.path());
    let target = empty_bare(&home.path().join("target.git"));
    let spec = spec(
        home.path(),
        &format!("file://{}", target.display()),
        &format!("file://{}", up_bare.display()),
        "",
    );
    let doc = sync(home.path(), &spec, &["--dry-run"]).ok().json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["pushed"], false);
    assert_eq!(doc["updates"].as_array().unwrap().len(), 3);
    assert!(refs(&target).is_empty(), "dry run pushed nothing");

    sync(home.path(), &spec, &["--publish-extension"]).ok();
    let files = git(&target, &["diff", "--name-only", "main^", "main"]);
    assert_eq!(files, "acme/acme-mirror/acme-mirror.pkg.lua\nrepo.yaml");
    let published = Command::new("git")
        .args([
            "-C",
            target.to_str().unwrap(),
            "show",
            "main:acme/acme-mirror/acme-mirror.pkg.lua",
        ])
        .output()
        .unwrap()
        .stdout;
    zm(
        home.path(),
        &["build", "-c", spec.to_str().unwrap(), "-o", "dist"],
    )
    .ok();
    assert_eq!(
        published,
        fs::read(
            home.path()
                .join("dist/acme-mirror-1.0.0/acme-mirror.pkg.lua")
        )
        .unwrap()
    );
}

#[test]
fn authorities_without_a_signing_key_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let spec = spec(
        home.path(),
        "file:///nowhere/t.git",
        "file:///nowhere/u.git",
        "authorities = [\"0123456789ABCDEF0123456789ABCDEF01234567\"]",
    );
    let r = sync(home.path(), &spec, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no registry.signing_key"), "{}", r.stderr);
    assert!(r.stderr.contains("roll back `zoi sync`"), "{}", r.stderr);
    assert!(!home.path().join("work").exists(), "nothing cloned");
}

/// `git verify-commit --raw main` in a bare repo: (verified, gpg's status lines).
fn verify_main(repo: &Path, gnupghome: &Path) -> (bool, String) {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["verify-commit", "--raw", "main"])
        .env("GNUPGHOME", gnupghome)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_signed_overlay_verifies_and_is_reused() {
    let home = tempfile::tempdir().unwrap();
    let gnupg = home.path().join("gnupg");
    let fpr = throwaway_gpg_key(&gnupg);
    let (_w, up_bare) = upstream_registry(home.path());
    let target = empty_bare(&home.path().join("target.git"));
    let spec = spec(
        home.path(),
        &format!("file://{}", target.display()),
        &format!("file://{}", up_bare.display()),
        &format!("authorities = [\"{fpr}\"]\nsigning_key = \"{fpr}\""),
    );
    let with_gpg = || support::run(sync_cmd(home.path(), &spec, &[]).env("GNUPGHOME", &gnupg));
    let doc = with_gpg().ok().json();
    assert_eq!(doc["signed"], true);
    let (verified, status) = verify_main(&target, &gnupg);
    assert!(verified, "{status}");
    assert!(status.contains(&fpr), "signed by the throw-away key");

    // A signature carries a timestamp, so the existing signed overlay is
    // reused instead of re-signed: nothing is pushed.
    let doc = with_gpg().ok().json();
    assert_eq!(doc["pushed"], false);
    assert_eq!(doc["overlay_reused"], true);
    // even with a cold cache
    fs::remove_dir_all(home.path().join("work")).unwrap();
    let doc = with_gpg().ok().json();
    assert_eq!(doc["pushed"], false, "{doc}");

    // a rotated key: the overlay signed by the old one is not reused
    let fpr2 = gpg::add_key(&gnupg, "Mirror Signing 2 <sign2@acme.example>");
    fs::write(
        &spec,
        fs::read_to_string(&spec).unwrap().replace(&fpr, &fpr2),
    )
    .unwrap();
    let doc = with_gpg().ok().json();
    assert_eq!(doc["pushed"], true, "{doc}");
    let (verified, status) = verify_main(&target, &gnupg);
    assert!(verified, "{status}");
    assert!(status.contains(&fpr2), "signed by the new key");
}

#[test]
fn a_target_whose_head_is_not_the_synced_branch_warns_and_check_agrees() {
    let home = tempfile::tempdir().unwrap();
    let served = home.path().join("served");
    fs::create_dir_all(&served).unwrap();
    upstream_registry(&served);
    // what `git init --bare` gives with git's default branch name
    let target = served.join("target.git");
    git(
        &served,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "master",
            target.to_str().unwrap(),
        ],
    );
    let daemon = GitDaemon::start(&served);
    let url = daemon.url("target.git");
    let spec = spec(home.path(), &url, &daemon.url("upstream.git"), "");
    let bundle = home.path().join("dist");
    zm(
        home.path(),
        &[
            "build",
            "-c",
            spec.to_str().unwrap(),
            "-o",
            bundle.to_str().unwrap(),
        ],
    )
    .ok();
    let bundle = bundle.join("acme-mirror-1.0.0");
    let check = || {
        zm(
            home.path(),
            &[
                "check",
                "--bundle",
                bundle.to_str().unwrap(),
                "--no-progress",
                "--format",
                "json",
            ],
        )
        .json()["registry"][0]["checks"][0]
            .clone()
    };

    // pushed, but HEAD still names master: a warning saying how to fix it
    let r = sync(home.path(), &spec, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.json();
    assert_eq!(doc["pushed"], true);
    let warnings = doc["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{doc}");
    let w = warnings[0].as_str().unwrap();
    for part in [
        url.as_str(),
        "names no existing branch",
        "`zoi sync` fails",
        "git symbolic-ref HEAD refs/heads/main",
        "default branch",
    ] {
        assert!(w.contains(part), "{part:?} in {w}");
    }
    assert!(r.stderr.contains(&format!("warning: {w}")), "{}", r.stderr);
    // check says the same
    let git_check = check();
    assert_eq!(git_check["error"]["kind"], "head_missing", "{git_check}");

    // a no-op run still warns, in human mode on stderr
    let r = support::run(
        support::cmd(home.path())
            .args(["db", "sync", "-c"])
            .arg(&spec)
            .arg("--work")
            .arg(home.path().join("work/registry.git")),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("is up to date"), "{}", r.stdout);
    assert!(
        r.stderr.contains("warning: the HEAD of ")
            && r.stderr.contains("git symbolic-ref HEAD refs/heads/main"),
        "{}",
        r.stderr
    );

    // HEAD → dev (an upstream branch without the overlay): still a warning
    git(&target, &["symbolic-ref", "HEAD", "refs/heads/dev"]);
    let doc = sync(home.path(), &spec, &[]).ok().json();
    assert_eq!(doc["pushed"], false);
    let w = doc["warnings"][0].as_str().unwrap();
    assert!(w.contains("names dev, not main"), "{w}");
    assert!(w.contains("without the corporate repo.yaml"), "{w}");
    let git_check = check();
    assert_eq!(git_check["ok"], true, "{git_check}");
    assert!(
        git_check["warnings"][0]
            .as_str()
            .unwrap()
            .contains("names dev, not the spec's branch main"),
        "{git_check}"
    );

    // fixed as the warning says: quiet, and check is happy with the registry
    git(&target, &["symbolic-ref", "HEAD", "refs/heads/main"]);
    let doc = sync(home.path(), &spec, &[]).ok().json();
    assert_eq!(doc["warnings"], serde_json::json!([]), "{doc}");
    let git_check = check();
    assert_eq!(git_check["ok"], true, "{git_check}");
    assert_eq!(git_check.get("warnings"), None, "{git_check}");
}
