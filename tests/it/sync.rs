//! `zoi-mirror sync` (issue 16): fetch, mirror the fetched index, verify,
//! then publish — over the faithful upstream (support/upstream.rs), with
//! the real zoi 1.29.4 as an ordinary user syncing in the middle of a run;
//! the beacon, `check --freshness`, and `serve`'s status page in a real
//! headless chromium and `/metrics` through a Prometheus text parser.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::Run;
use crate::support::company::{Company, sync_args, target};
use crate::support::serve::Serve;
use crate::support::upstream::{PACKAGES, Upstream, host_platform};
use crate::support::zoienv::{Sandbox, share};

/// What the sync tests add to the company of tests/it/trust.rs: the
/// `sync` command over its site, and the beacon it writes.
trait SyncSide {
    fn dest(&self) -> PathBuf;
    fn sync_args(&self, spec: &Path, extra: &[&str]) -> Vec<String>;
    fn sync(&self, spec: &Path, extra: &[&str]) -> Run;
    fn build_bundle(&self, spec: &Path) -> PathBuf;
    fn beacon_path(&self) -> PathBuf;
    fn beacon(&self) -> serde_json::Value;
    fn freshness(&self, extra: &[&str]) -> Run;
}

impl SyncSide for Company {
    fn dest(&self) -> PathBuf {
        self.site.join("pkgs")
    }

    fn sync_args(&self, spec: &Path, extra: &[&str]) -> Vec<String> {
        sync_args(&["sync"], spec, &self.work, Some(&self.dest()), extra)
    }

    fn sync(&self, spec: &Path, extra: &[&str]) -> Run {
        let args = self.sync_args(spec, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = self.zm(&args);
        share(&self.site);
        r
    }

    fn build_bundle(&self, spec: &Path) -> PathBuf {
        let (r, dir) = self.build(spec);
        assert_eq!(r.code, 0, "build: {}", r.stderr);
        dir
    }

    fn beacon_path(&self) -> PathBuf {
        self.dest().join("zoi-mirror-status.json")
    }

    fn beacon(&self) -> serde_json::Value {
        serde_json::from_slice(&fs::read(self.beacon_path()).unwrap()).unwrap()
    }

    fn freshness(&self, extra: &[&str]) -> Run {
        let beacon = self.beacon_path();
        let mut args = vec!["check", "--freshness", "--beacon", beacon.to_str().unwrap()];
        if !extra.contains(&"--format") {
            args.extend(["--format", "json"]);
        }
        args.extend_from_slice(extra);
        self.zm(&args)
    }
}

/// One client moment: `zoi sync`, `zoi install` of sigtool, run it,
/// uninstall. Returns what the installed program printed, or the failure.
///
/// The same client all along: its registry clone fast-forwards from one
/// overlay to the next (each overlay descends from the previous one). Its
/// archive cache is dropped each round: Zoi 1.29.4 keeps an archive it
/// rebuilt from a `.zdelta` in that cache, and the next install of the same
/// version hash-checks the rebuilt bytes, which differ from the
/// publisher's ("Hash verification failed") — Zoi's own trap, not the
/// mirror's.
fn client_round(sb: &Sandbox) -> Result<String, String> {
    sb.sh("rm -rf \"$XDG_CACHE_HOME\"/zoi");
    let r = sb.sh("zoi sync");
    if r.code != 0 {
        return Err(format!("zoi sync: {}{}", r.stdout, r.stderr));
    }
    let r = sb.sh("zoi install -y @main/sigtool");
    if r.code != 0 {
        return Err(format!("zoi install: {}{}", r.stdout, r.stderr));
    }
    let out = sb.sh("$HOME/.local/bin/sigtool").stdout.trim().to_string();
    let _ = sb.sh("zoi uninstall -y @main/sigtool");
    Ok(out)
}

#[test]
fn sync_a_client_during_a_slow_sync_sees_old_or_new_never_a_missing_archive() {
    // Upstream's binary host sends the 1.1.0 files at 64 bytes/s.
    let up = Upstream::start_with_http(
        r"location ~ /1\.1\.0/[^/]+\.(zpa|zsa|zdelta)$ { limit_rate 64; }",
    );
    let old = &PACKAGES[0];
    let new = up.package("sigtool");
    up.publish(old);
    let co = Company::new();
    let spec = co.spec(&up, "");

    let r = co.sync(&spec, &[]);
    assert_eq!(r.code, 0, "first sync: {}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    assert_eq!(doc["outcome"], "published");
    assert_eq!(target(&doc, "sigtool", "archive")["version"], old.version);
    let first_tip = up.head();
    assert_eq!(doc["upstream_tip"], first_tip.as_str());
    assert!(
        doc["verified"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["status"] == "ok")
            && !doc["verified"].as_array().unwrap().is_empty(),
        "what was placed passes the index --check rules: {}",
        doc["verified"]
    );
    let b = co.beacon();
    assert_eq!(b["format"], "zoi-mirror-status");
    assert_eq!(b["format_version"], 1);
    assert_eq!(b["published"]["upstream_tip"], first_tip.as_str());
    assert_eq!(
        b["published"]["overlay_commit"],
        co.registry_head().as_str()
    );

    let bundle = co.build_bundle(&spec);
    let sb = &co.sb;
    assert_eq!(
        sb.sh(&format!("zoi-mirror apply {}", bundle.display()))
            .code,
        0
    );
    assert_eq!(client_round(sb).unwrap(), old.output());

    // Upstream releases 1.1.0; the next sync is slow. Clients keep syncing
    // and installing all along.
    up.publish(new);
    let args = co.sync_args(&spec, &[]);
    let mut child = co
        .zm_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut during = Vec::new();
    while child.try_wait().unwrap().is_none() {
        let head_before = co.registry_head();
        let got = client_round(sb);
        let running = child.try_wait().unwrap().is_none();
        during.push((head_before, got, running));
    }
    let out = child.wait_with_output().unwrap();
    share(&co.site);
    let r = Run::of(out);
    assert_eq!(r.code, 0, "slow sync: {}\n{}", r.stdout, r.stderr);
    let after = client_round(sb);
    for (i, (_, got, _)) in during.iter().enumerate() {
        let got = got
            .as_ref()
            .unwrap_or_else(|e| panic!("client round {i} failed: {e}"));
        assert!(
            *got == old.output() || *got == new.output(),
            "round {i}: {got}"
        );
    }
    assert!(
        during
            .iter()
            .any(|(_, got, running)| *running && got.as_deref() == Ok(old.output().as_str())),
        "at least one client round ran while the sync was copying, and got the old index with its archive: {during:?}"
    );
    assert_eq!(
        after.unwrap(),
        new.output(),
        "after the sync: the new version"
    );
    let doc = r.json();
    assert_eq!(doc["outcome"], "published");
    assert_eq!(doc["previous_tip"], first_tip.as_str());
    assert_eq!(target(&doc, "sigtool", "archive")["status"], "downloaded");

    // Freshness: fresh now, behind once upstream moves two commits, stale
    // when the beacon is older than --max-age.
    let r = co.freshness(&[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let f = r.json();
    assert_eq!(f["fresh"], true);
    assert_eq!(f["behind_commits"], 0);
    assert_eq!(f["registry_head"], f["overlay_commit"]);
    up.commit_and_push("upstream moves on (1)");
    up.commit_and_push("upstream moves on (2)");
    let r = co.freshness(&["--format", "human"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("behind by 2 commits"), "{}", r.stdout);
    let r = co.freshness(&[]);
    assert_eq!(r.json()["behind_commits"], 2);
    assert_eq!(
        r.json()["behind_archives"],
        0,
        "empty commits bump no version"
    );

    assert_eq!(co.sync(&spec, &[]).code, 0);
    assert_eq!(co.freshness(&["--max-age", "1h"]).code, 0);
    let mut b = co.beacon();
    let hours_ago = b["published"]["finished"]["unix"].as_i64().unwrap() - 3 * 3600;
    b["published"]["finished"]["unix"] = hours_ago.into();
    fs::write(co.beacon_path(), serde_json::to_vec(&b).unwrap()).unwrap();
    let r = co.freshness(&["--max-age", "1h", "--format", "human"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("stale"), "{}", r.stdout);
    assert!(r.stdout.contains("last synced 3 h ago"), "{}", r.stdout);
}

/// `chromium --headless --dump-dom URL`: the page as a browser built it.
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .stdin(Stdio::null())
        .output()
        .expect("chromium (scripts/test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sync_a_failed_archive_publishes_nothing_and_allow_partial_publishes_the_gap() {
    // Upstream's host answers 500 for the 1.1.0 archive (its sidecars are fine).
    let up = Upstream::start_with_http(r"location ~ /sigtool-1\.1\.0-[^/]+\.zpa$ { return 500; }");
    up.publish(&PACKAGES[0]);
    let co = Company::new();
    let spec = co.spec(&up, "");
    let r = co.sync(&spec, &["--retries", "1"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let good_tip = up.head();
    let good_head = co.registry_head();

    up.publish(up.package("sigtool"));
    let r = co.sync(&spec, &["--retries", "1"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    assert_eq!(doc["outcome"], "not_published");
    assert!(doc["registry"].is_null());
    let gap = doc["missing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["package"] == "@main/sigtool" && g["artifact"] == "archive")
        .unwrap_or_else(|| panic!("{}", doc["missing"]));
    assert_eq!(gap["version"], "1.1.0");
    assert_eq!(gap["kind"], "http_error", "{gap}");
    assert_eq!(co.registry_head(), good_head, "the registry did not move");
    let b = co.beacon();
    assert_eq!(
        b["published"]["upstream_tip"],
        good_tip.as_str(),
        "the beacon still describes what clients get"
    );
    assert_eq!(b["published"]["overlay_commit"], good_head.as_str());
    assert_eq!(b["last_run"]["outcome"], "not_published");
    assert_eq!(b["last_run"]["upstream_tip"], up.head().as_str());
    let r = co.freshness(&[]);
    assert_eq!(r.code, 1, "behind: the new tip is not published");
    assert_eq!(r.json()["behind_commits"], 1);
    assert_eq!(
        r.json()["behind_archives"],
        1,
        "sigtool 1.1.0 for one platform"
    );

    // Human output says what is missing.
    let args: Vec<String> = co
        .sync_args(&spec, &["--retries", "1"])
        .into_iter()
        .map(|a| if a == "json" { "human".to_string() } else { a })
        .collect();
    let r = co.zm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("MISSING @main/sigtool 1.1.0"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("nothing published"), "{}", r.stdout);

    // --allow-partial publishes, and the beacon lists the gap.
    let r = co.sync(&spec, &["--retries", "1", "--allow-partial"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["outcome"], "published_partial");
    assert_ne!(co.registry_head(), good_head);
    let b = co.beacon();
    assert_eq!(b["published"]["complete"], false);
    assert_eq!(
        b["published"]["overlay_commit"],
        co.registry_head().as_str()
    );
    let failures = b["published"]["failures"].as_array().unwrap();
    assert!(
        failures
            .iter()
            .any(|g| g["package"] == "@main/sigtool" && g["version"] == "1.1.0"),
        "{failures:?}"
    );
    let r = co.freshness(&[]);
    assert_eq!(r.code, 1);
    assert!(
        r.json()["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "partial")
    );

    // The status page, as a browser renders it, and /metrics.
    let platform = host_platform();
    let counts = b["published"]["counts"].as_array().unwrap();
    let row = |tier: &str, artifact: &str| {
        counts
            .iter()
            .find(|c| {
                c["tier"] == tier
                    && c["artifact"] == artifact
                    && (c["platform"] == platform.as_str() || artifact == "source")
            })
            .unwrap_or_else(|| panic!("no {tier} {artifact} row in {counts:?}"))
            .clone()
    };
    let main = row("main", "archive");
    assert_eq!(main["failed"], 1);
    let extra = row("extra", "archive");
    assert_eq!(extra["up_to_date"], 1);
    let serve = Serve::start(co.sb.path(), &co.dest(), &["--quiet"]);
    let dom = dump_dom(&format!("{}_status", serve.url));
    for c in [&main, &extra] {
        let tr_start = format!(
            "data-tier=\"{}\" data-platform=\"{}\" data-artifact=\"{}\"",
            c["tier"].as_str().unwrap(),
            c["platform"].as_str().unwrap(),
            c["artifact"].as_str().unwrap()
        );
        let at = dom
            .find(&tr_start)
            .unwrap_or_else(|| panic!("no row {tr_start} in {dom}"));
        let tr = &dom[at..at + dom[at..].find("</tr>").unwrap()];
        for k in ["placed", "up_to_date", "not_available", "failed"] {
            let cell = format!("class=\"n {k}\">{}</td>", c[k]);
            assert!(tr.contains(&cell), "{k}: {cell} not in {tr}");
        }
    }
    assert!(
        dom.contains("class=\"failed\" data-tier=\"main\""),
        "coloured by state: {dom}"
    );
    assert!(dom.contains(&up.head()), "the upstream tip is shown");
    assert!(dom.contains("Incomplete"), "{dom}");
    assert!(dom.contains("sigtool"), "recent failures are listed");
    // `/` shows the same page (no index.html there).
    assert!(dump_dom(&serve.url).contains("id=\"completeness\""));

    let body = curl_get(&format!("{}metrics", serve.url));
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let value = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => panic!("{name} is not a gauge"),
            })
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{body}"))
    };
    let pl = platform.as_str();
    assert_eq!(
        value(
            "zoi_mirror_archives",
            &[
                ("tier", "main"),
                ("platform", pl),
                ("artifact", "archive"),
                ("state", "failed")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            "zoi_mirror_archives",
            &[
                ("tier", "extra"),
                ("platform", pl),
                ("artifact", "archive"),
                ("state", "up_to_date")
            ]
        ),
        1.0
    );
    assert_eq!(value("zoi_mirror_complete", &[]), 0.0);
    assert_eq!(
        value("zoi_mirror_last_sync_timestamp_seconds", &[]),
        b["published"]["finished"]["unix"].as_f64().unwrap()
    );
    assert!(
        value(
            "zoi_mirror_bytes",
            &[("tier", "extra"), ("platform", pl), ("artifact", "archive")]
        ) > 0.0
    );
}

/// A GET with curl (a client independent of ours).
fn curl_get(url: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-fsS", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
