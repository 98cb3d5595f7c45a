//! The mirror carries upstream's trust (issue 12), over the faithful
//! upstream (support/upstream.rs: the real Zoidberg history, archives the
//! real `zoi package build --sign` made, nginx in Zoidberg's `{id}` layout,
//! upstream's key served over HTTP): `db sync` derives the mirror's
//! repo.yaml from upstream's own at the mirrored commit, `bin sync` copies
//! keys, archives, source bundles and deltas and verifies every signature
//! as Zoi will, `build` gives clients the keys that verify what they
//! install. Proven with the real zoi 1.29.4, run as an ordinary user, with
//! upstream's binary host stopped once the mirror is filled.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::company::{Company, target};
use crate::support::gitd::git;
use crate::support::gpg;
use crate::support::upstream::{KEY_NAME, Package, Upstream, host_platform};
use crate::support::{self, Run};

/// `host:port` of every URL in a text.
fn hosts_in(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .filter(|w| w.contains("://"))
        .filter_map(zoi_mirror::zoi::repo::url_host)
        .collect()
}

#[test]
fn trust_the_real_client_installs_through_the_mirror_with_upstream_gone() {
    let mut up = Upstream::start();
    let co = Company::new();
    let spec = co.spec(&up, "");

    // Fill the mirror: registry (signed overlay on upstream's commit), then
    // keys, archives, source bundle, delta.
    let r = co.db_sync(&spec);
    assert_eq!(r.code, 0, "db sync: {}", r.stderr);
    let doc = r.json();
    assert!(
        doc["upstream_repo_yaml"]
            .as_str()
            .unwrap()
            .starts_with("upstream commit"),
        "derived from the mirrored commit: {doc}"
    );
    let r = co.bin_sync(&spec, &[]);
    assert_eq!(r.code, 0, "bin sync: {}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    assert_eq!(doc["keys"][0]["name"], KEY_NAME);
    assert_eq!(doc["keys"][0]["status"], "placed");
    assert_eq!(doc["keys"][0]["fingerprint"], up.key_fpr.as_str());
    assert_eq!(
        fs::read(co.site.join(format!("pkgs/keys/{KEY_NAME}.asc"))).unwrap(),
        up.key_asc()
    );
    let sigtool = up.package("sigtool");
    let embedtool = up.package("embedtool");
    assert_eq!(target(&doc, "sigtool", "archive")["signature"], "detached");
    assert_eq!(
        target(&doc, "embedtool", "archive")["signature"],
        "embedded"
    );
    assert_eq!(target(&doc, "sigtool", "source")["status"], "downloaded");
    assert_eq!(target(&doc, "sigtool", "source")["signature"], "detached");
    assert_eq!(target(&doc, "sigtool", "delta")["status"], "downloaded");
    assert_eq!(target(&doc, "sigtool", "delta")["signature"], "detached");
    assert_eq!(
        fs::read(co.archive(sigtool)).unwrap(),
        fs::read(up.archive_path(sigtool, &host_platform())).unwrap()
    );

    let (r, bundle) = co.build(&spec);
    assert_eq!(r.code, 0, "build: {}", r.stderr);
    assert!(
        r.stderr
            .contains("derived from upstream's: upstream commit"),
        "build says where upstream's repo.yaml came from: {}",
        r.stderr
    );

    // Nothing the client reads points at upstream's hosts.
    let upstream_hosts: Vec<String> = hosts_in(&format!("{} {}", up.http_base(), up.git_url()));
    for file in [
        "repo.yaml",
        "config.user.yaml",
        "config.system.yaml",
        "acme-mirror.pkg.lua",
    ] {
        let text = fs::read_to_string(bundle.join(file)).unwrap();
        for h in hosts_in(&text) {
            assert!(
                !upstream_hosts.contains(&h),
                "{file} points at upstream's host {h}:\n{text}"
            );
        }
    }
    let mirrored = co.registry_repo_yaml();
    assert_eq!(
        mirrored,
        fs::read_to_string(bundle.join("repo.yaml"))
            .unwrap()
            .trim_end(),
        "db sync and build derive the same repo.yaml"
    );
    assert!(mirrored.contains(&format!("{}/pkgs/keys/{KEY_NAME}.asc", co.base())));
    assert!(mirrored.contains("source-main"));
    assert!(mirrored.contains("delta:"), "{mirrored}");
    let user: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(bundle.join("config.user.yaml")).unwrap())
            .unwrap();
    assert_eq!(
        user["default_registry"]["authorities"],
        serde_yaml::from_str::<serde_yaml::Value>("[acme-registry, upstream-main]").unwrap(),
        "the company key (HEAD) and upstream's (archives)"
    );

    // Upstream's binary host goes away; clients use the mirror only.
    up.stop_http();
    let log_at_stop = up.access_log().len();
    let sb = &co.sb;
    let r = sb.sh(&format!("zoi-mirror apply {}", bundle.display()));
    assert_eq!(r.code, 0, "apply");
    assert_eq!(sb.sh("zoi sync").code, 0, "zoi sync of the signed overlay");
    for p in [sigtool, embedtool] {
        let r = sb.sh(&format!("zoi install -y {}", p.query()));
        assert_eq!(r.code, 0, "zoi install {} ({:?})", p.query(), p.signing);
        assert_eq!(
            sb.sh(&format!("$HOME/.local/bin/{}", p.name)).stdout.trim(),
            p.output()
        );
    }
    let r = sb.sh(&format!(
        "zoi download --source {} -o {}/dl",
        sigtool.query(),
        sb.path().display()
    ));
    assert_eq!(r.code, 0, "zoi download --source through the mirror");
    assert_eq!(
        fs::read(sb.path().join("dl").join(sigtool.zsa_name())).unwrap(),
        fs::read(up.zsa_path()).unwrap()
    );
    assert_eq!(
        up.access_log().len(),
        log_at_stop,
        "upstream never contacted"
    );
    let synced = fs::read_to_string(sb.data().join("pkgs/db/zoidberg/repo.yaml")).unwrap();
    for h in hosts_in(&synced) {
        assert!(!upstream_hosts.contains(&h), "synced repo.yaml names {h}");
    }
    // The company's host served the archives.
    let served = co.nginx.access_log();
    assert!(served.contains(&sigtool.file_name(&host_platform())));
    assert!(served.contains(&format!("keys/{KEY_NAME}.asc")));
}

#[test]
fn trust_upstream_adds_a_tier_and_a_key_and_the_next_db_sync_carries_both() {
    let up = Upstream::start();
    let co = Company::new();
    let spec = co.spec(&up, "");
    assert_eq!(co.db_sync(&spec).code, 0);
    let before = co.registry_repo_yaml();
    assert!(!before.contains("nightly"));

    up.add_tier("nightly", "community", false);
    up.add_key("upstream-second");
    let r = co.db_sync(&spec);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after: zoi_mirror::zoi::repo::RepoYaml =
        serde_yaml::from_str(&co.registry_repo_yaml()).unwrap();
    let tier = after.repos.iter().find(|t| t.name == "nightly").unwrap();
    assert_eq!(
        (tier.repo_type.as_str(), tier.active),
        ("community", false),
        "upstream's new tier, inactive as client.tiers does not list it"
    );
    let key = after
        .pgp
        .iter()
        .find(|k| k.name == "upstream-second")
        .unwrap();
    assert_eq!(
        key.key,
        format!("{}/pkgs/keys/upstream-second.asc", co.base()),
        "served from the company's host"
    );

    // build reads the same commit from the db sync cache, and says so
    let (r, bundle) = co.build(&spec);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("upstream commit"), "{}", r.stderr);
    assert!(r.stderr.contains(co.work.to_str().unwrap()), "{}", r.stderr);
    assert_eq!(
        fs::read_to_string(bundle.join("repo.yaml"))
            .unwrap()
            .trim_end(),
        co.registry_repo_yaml()
    );
    // and bin sync places the new key
    let r = co.bin_sync(&spec, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(co.site.join("pkgs/keys/upstream-second.asc").is_file());
}

/// Runs bin sync after `tamper` changed upstream; returns the report.
fn bad_upstream(tamper: impl FnOnce(&Upstream)) -> (Company, Upstream, Run) {
    let up = Upstream::start();
    let co = Company::new();
    let spec = co.spec(&up, "");
    assert_eq!(co.db_sync(&spec).code, 0);
    tamper(&up);
    let r = co.bin_sync(&spec, &["--package", "sigtool"]);
    (co, up, r)
}

fn assert_not_placed(co: &Company, p: &Package, r: &Run, kind: &str, message: &str) {
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    let t = target(&doc, p.name, "archive");
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error"]["kind"], kind, "{t}");
    let msg = t["error"]["message"].as_str().unwrap();
    assert!(msg.contains(message), "{msg}");
    assert!(!co.archive(p).exists(), "nothing placed");
    let dir = co.archive(p).parent().unwrap().to_path_buf();
    let name = p.file_name(&host_platform());
    let left: Vec<String> = fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|f| {
                    f.starts_with('.')
                        || ["", ".hash", ".size", ".files", ".sig"]
                            .iter()
                            .any(|ext| *f == format!("{name}{ext}"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "no sidecar, no temp file: {left:?}");
}

#[test]
fn trust_a_tampered_archive_with_matching_metadata_fails_its_signature() {
    let (co, up, r) = bad_upstream(|up| {
        // another valid archive (1.0.0's bytes) in 1.1.0's place
        let p = up.package("sigtool");
        let zpa = up.archive_path(p, &host_platform());
        let bytes =
            fs::read(up.archive_path(&crate::support::upstream::PACKAGES[0], &host_platform()))
                .unwrap();
        assert_ne!(bytes, fs::read(&zpa).unwrap());
        let n = bytes.len();
        fs::write(&zpa, &bytes).unwrap();
        // the attacker fixes .hash and .size too: only the signature tells
        let name = p.file_name(&host_platform());
        fs::write(
            format!("{}.hash", zpa.display()),
            format!("{}  {name}\n", support::sha512_hex(&bytes)),
        )
        .unwrap();
        let size = fs::read_to_string(format!("{}.size", zpa.display())).unwrap();
        let install = size.lines().nth(1).unwrap().to_string();
        fs::write(
            format!("{}.size", zpa.display()),
            format!("down: {n}\n{install}\n"),
        )
        .unwrap();
    });
    assert_not_placed(
        &co,
        up.package("sigtool"),
        &r,
        "signature",
        "does not verify",
    );
}

#[test]
fn trust_a_sig_made_by_another_key_is_refused() {
    let (co, up, r) = bad_upstream(|up| {
        let other = gpg::add_key(&up.gnupghome, "Mallory <m@evil.example>");
        let zpa = up.archive_path(up.package("sigtool"), &host_platform());
        let sig = PathBuf::from(format!("{}.sig", zpa.display()));
        let out = std::process::Command::new("gpg")
            .args([
                "--batch",
                "--yes",
                "--detach-sign",
                "--local-user",
                &other,
                "-o",
            ])
            .arg(&sig)
            .arg(&zpa)
            .env("GNUPGHOME", &up.gnupghome)
            .output()
            .unwrap();
        assert!(out.status.success());
    });
    assert_not_placed(
        &co,
        up.package("sigtool"),
        &r,
        "signature",
        "none of the trusted keys",
    );
}

#[test]
fn trust_a_missing_sig_where_upstream_has_keys_is_refused() {
    let (co, up, r) = bad_upstream(|up| {
        let zpa = up.archive_path(up.package("sigtool"), &host_platform());
        fs::remove_file(format!("{}.sig", zpa.display())).unwrap();
    });
    assert_not_placed(
        &co,
        up.package("sigtool"),
        &r,
        "signature",
        "publishes no signature",
    );
}

#[test]
fn trust_an_html_page_as_upstreams_key_is_refused_and_nothing_is_placed() {
    let (co, up, r) = bad_upstream(|up| {
        fs::write(
            up.root.join(format!("keys/{KEY_NAME}.asc")),
            "<!DOCTYPE html><html><title>Sign in</title></html>",
        )
        .unwrap();
    });
    let doc = r.json();
    let key = &doc["keys"][0];
    assert_eq!(key["status"], "failed");
    assert_eq!(key["error"]["kind"], "key_not_pgp");
    let msg = key["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&up.key_url()) && msg.contains("HTML"), "{msg}");
    assert!(!co.site.join(format!("pkgs/keys/{KEY_NAME}.asc")).exists());
    // without upstream's key nothing can be verified, so nothing is placed
    assert_not_placed(
        &co,
        up.package("sigtool"),
        &r,
        "signature",
        "does not verify",
    );
}

#[test]
fn trust_a_spec_trusting_only_the_company_key_over_upstream_signed_archives_is_refused() {
    let up = Upstream::start();
    let co = Company::new();
    let spec = co.spec(&up, "trust = [\"acme-registry\"]");
    assert_eq!(co.db_sync(&spec).code, 2, "db sync refuses it too");
    let out = co.sb.path().join("out");
    let r = co.zm(&[
        "build",
        "-c",
        spec.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--upstream-repo-yaml",
        up.repo_yaml_path().to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let line = fs::read_to_string(&spec)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("trust ="))
        .unwrap()
        + 1;
    assert!(
        r.stderr.contains(&format!("{}:{line}:", spec.display())),
        "file:line:col of binaries.trust: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("No valid signature found"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("add '{KEY_NAME}'")),
        "the hint names the key that would verify: {}",
        r.stderr
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn trust_resigning_with_the_company_key_for_clients_that_trust_only_it() {
    let up = Upstream::start();
    let co = Company::new();
    let spec = co.spec(
        &up,
        &format!("trust = [\"acme-registry\"]\nsign_key = \"{}\"", co.fpr),
    );
    assert_eq!(co.db_sync(&spec).code, 0);
    let r = co.bin_sync(&spec, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let doc = r.json();
    let sigtool = up.package("sigtool");
    let t = target(&doc, "sigtool", "archive");
    assert_eq!(t["signature"], "detached", "upstream's verified first");
    assert!(
        t["metadata"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m[0] == "sig" && m[1] == "resigned"),
        "{t}"
    );
    let zpa = co.archive(sigtool);
    assert!(gpg::verifies(
        &co.gnupg,
        Path::new(&format!("{}.sig", zpa.display())),
        &zpa
    ));
    let e = target(&doc, "embedtool", "archive");
    assert_eq!(e["signature"], "embedded");
    assert!(
        e["warnings"][0]
            .as_str()
            .unwrap()
            .contains("embedded manifest.sig"),
        "{e}"
    );

    // A client trusting only the company key: the re-signed archive
    // installs; the embedded-signed one fails in Zoi exactly as warned.
    let (r, bundle) = co.build(&spec);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sb = &co.sb;
    assert_eq!(
        sb.sh(&format!("zoi-mirror apply {}", bundle.display()))
            .code,
        0
    );
    assert_eq!(sb.sh("zoi sync").code, 0);
    let r = sb.sh(&format!("zoi install -y {}", sigtool.query()));
    assert_eq!(r.code, 0, "re-signed archive installs");
    let r = sb.sh(&format!(
        "zoi install -y {}",
        up.package("embedtool").query()
    ));
    assert_ne!(r.code, 0);
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("Embedded signature verification failed"),
        "as bin sync warned"
    );
}

/// Zoi only fast-forwards a registry it has cloned: each overlay must
/// descend from the one clients have, or they stay on their first sync
/// forever ("Cannot fast-forward", exit 0). Real zoi, one client, two
/// upstream releases.
#[test]
fn trust_a_client_that_synced_before_follows_the_next_db_sync() {
    let up = Upstream::start();
    let old = &crate::support::upstream::PACKAGES[0];
    let new = up.package("sigtool");
    up.publish(old);
    let co = Company::new();
    let spec = co.spec(&up, "");
    let r = co.db_sync(&spec);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = co.bin_sync(&spec, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let (r, bundle) = co.build(&spec);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sb = &co.sb;
    assert_eq!(
        sb.sh(&format!("zoi-mirror apply {}", bundle.display()))
            .code,
        0
    );
    assert_eq!(sb.sh("zoi sync").code, 0);
    let synced = sb
        .data()
        .join("pkgs/db/zoidberg/main/sigtool/sigtool.pkg.lua");
    assert!(fs::read_to_string(&synced).unwrap().contains(old.version));
    let first = co.registry_head();

    // upstream releases 1.1.0: archives first, then the registry
    up.publish(new);
    assert_eq!(
        co.zm(&[
            "db",
            "sync",
            "-c",
            spec.to_str().unwrap(),
            "--work",
            co.work.to_str().unwrap(),
            "--dry-run"
        ])
        .code,
        0
    );
    assert_eq!(co.bin_sync(&spec, &[]).code, 0);
    let r = co.db_sync(&spec);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let second = co.registry_head();
    assert_ne!(first, second);
    let parents = git(
        &co.git_root.join("mirror.git"),
        &["log", "-1", "--format=%P", &second],
    );
    assert!(
        parents.split(' ').any(|p| p == first),
        "the new overlay descends from the one clients have: {parents}"
    );

    let r = sb.sh("zoi sync");
    assert_eq!(r.code, 0);
    assert!(
        !format!("{}{}", r.stdout, r.stderr).contains("Cannot fast-forward"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(
        fs::read_to_string(&synced).unwrap().contains(new.version),
        "the client that synced before now has the new release"
    );
    let r = sb.sh(&format!("zoi install -y {}", new.query()));
    assert_eq!(r.code, 0);
    assert_eq!(
        sb.sh(&format!("$HOME/.local/bin/{}", new.name))
            .stdout
            .trim(),
        new.output()
    );
}

#[test]
fn trust_an_upstream_key_name_that_is_a_path_is_refused_and_nothing_is_written() {
    let up = Upstream::start();
    let co = Company::new();
    let spec = co.spec(&up, "");
    up.publish_key("../../escaped", &up.key_asc());
    let r = co.db_sync(&spec);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a plain file name"), "{}", r.stderr);
    assert!(
        git(&co.git_root.join("mirror.git"), &["for-each-ref"]).is_empty(),
        "nothing pushed"
    );
    let escaped = co.site.parent().unwrap().join("escaped.asc");
    assert!(!escaped.exists());
}

#[test]
fn trust_allow_unsigned_places_what_the_signature_check_would_refuse() {
    let (co, up, r) = bad_upstream(|up| {
        let zpa = up.archive_path(up.package("sigtool"), &host_platform());
        fs::remove_file(format!("{}.sig", zpa.display())).unwrap();
    });
    assert_eq!(r.code, 1, "refused without the flag");
    let spec = co.sb.path().join("mirror.toml");
    let r = co.bin_sync(&spec, &["--package", "sigtool", "--allow-unsigned"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let doc = r.json();
    let t = target(&doc, "sigtool", "archive");
    assert_eq!(t["status"], "downloaded");
    assert_eq!(t["signature"], "unverified");
    assert_eq!(
        fs::read(co.archive(up.package("sigtool"))).unwrap(),
        fs::read(up.archive_path(up.package("sigtool"), &host_platform())).unwrap()
    );
}
