//! Self-tests of the upstream fixture (support/upstream.rs): the real Zoi
//! client, run as the unprivileged user, syncs from it, verifies and
//! installs its archives, and downloads its source bundle; and the fixture's
//! artifacts, history and servers are what its documentation promises.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::gpg;
use crate::support::upstream::{
    DELTA, HANDLE, KEY_NAME, PACKAGES, PROJECT, SOURCE_BUNDLE, Signing, Upstream, built,
    host_platform,
};
use crate::support::zoienv::Sandbox;
use crate::support::{self, sha512_file};

/// A user config in Zoi's own shape: upstream as the default registry
/// (handle written explicitly), the fixture's tiers, `authorities`.
fn client_config(up: &Upstream, authorities: &[&str]) -> String {
    use zoi_mirror::zoi::config::{Config, Registry};
    let c = Config {
        repos: vec!["main".into(), "extra".into()],
        default_registry: Some(Registry {
            handle: HANDLE.into(),
            url: up.git_url(),
            authorities: Some(authorities.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }),
        ..Default::default()
    };
    serde_yaml::to_string(&c).unwrap()
}

/// `zoi pgp add` of upstream's key from its URL. Needed before the first
/// `zoi sync` with `authorities`: Zoi verifies the cloned HEAD before it
/// imports `repo.yaml`'s `pgp` keys, so without it the sync fails
/// ("Trusted key 'upstream-main' not found in Zoi's PGP keyring").
fn trust_upstream_key(sb: &Sandbox, up: &Upstream) {
    let r = sb.sh(&format!(
        "zoi pgp add --url {} --name {KEY_NAME}",
        up.key_url()
    ));
    assert_eq!(r.code, 0, "zoi pgp add");
}

/// The sum of the sizes of the regular files in a `.zpa`.
fn install_size(zpa: &Path) -> u64 {
    let f = fs::File::open(zpa).unwrap();
    let mut ar = tar::Archive::new(zstd::stream::read::Decoder::new(f).unwrap());
    ar.entries()
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| e.header().entry_type().is_file())
        .map(|e| e.header().size().unwrap())
        .sum()
}

fn output(r: &support::Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

/// GET `url` with curl (never through a proxy): (status, body).
fn get(url: &str) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl");
    let mut body = out.stdout;
    let nl = body.iter().rposition(|&b| b == b'\n').unwrap();
    let code = String::from_utf8_lossy(&body[nl + 1..])
        .parse()
        .unwrap_or(0);
    body.truncate(nl);
    (code, body)
}

fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(fs::read(path).unwrap()))
}

#[test]
fn upstream_the_real_client_syncs_verifies_installs_and_downloads() {
    let up = Upstream::start();
    let sb = Sandbox::new();
    sb.write_home(
        ".config/zoi/config.yaml",
        client_config(&up, &[KEY_NAME]).as_bytes(),
    );

    trust_upstream_key(&sb, &up);
    let r = sb.sh("zoi sync");
    assert_eq!(r.code, 0, "zoi sync from the upstream (signed HEAD)");
    assert_eq!(
        fs::read(sb.data().join(format!("pgps/{KEY_NAME}.asc"))).unwrap(),
        up.key_asc(),
        "Zoi imported upstream's key from repo.yaml `pgp`"
    );
    assert_eq!(
        fs::read_to_string(sb.data().join(format!("pkgs/db/{HANDLE}/repo.yaml"))).unwrap(),
        up.repo_yaml()
    );
    assert_eq!(
        up.requests_for(&format!("/keys/{KEY_NAME}.asc")).len(),
        2,
        "fetched by zoi pgp add, then by zoi sync from repo.yaml `pgp`"
    );

    let platform = host_platform();
    for name in ["sigtool", "embedtool"] {
        let p = up.package(name);
        let r = sb.sh(&format!("zoi install -y {}", p.query()));
        assert_eq!(r.code, 0, "zoi install {} ({:?})", p.query(), p.signing);
        let r = sb.sh(&format!("$HOME/.local/bin/{name}"));
        assert_eq!(r.stdout.trim(), p.output());
        let file = p.file_name(&platform);
        let got: Vec<String> = up
            .requests_for(&file)
            .into_iter()
            .filter(|l| l.contains("\" 200 "))
            .collect();
        assert!(
            got.iter().any(|l| l.contains(&format!("{file} HTTP"))),
            "the archive came from the upstream host: {got:#?}"
        );
        let sig_fetched = got.iter().any(|l| l.contains(&format!("{file}.sig HTTP")));
        assert_eq!(
            sig_fetched,
            p.signing == Signing::Detached,
            "the detached .sig is fetched only for the file-signed archive: {got:#?}"
        );
    }

    // the source bundle, through repo.yaml's `source-main` link
    let r = sb.sh(&format!(
        "zoi download --source {} -o {}/dl",
        SOURCE_BUNDLE.query(),
        sb.path().display()
    ));
    assert_eq!(r.code, 0, "zoi download --source");
    assert_eq!(
        fs::read(sb.path().join("dl").join(SOURCE_BUNDLE.zsa_name())).unwrap(),
        fs::read(up.zsa_path()).unwrap()
    );
    assert!(
        !up.requests_for(&format!("{} HTTP", SOURCE_BUNDLE.zsa_name()))
            .is_empty()
    );
}

#[test]
fn upstream_archives_signed_by_another_key_are_refused() {
    let up = Upstream::start();
    let other = up.add_key("upstream-other");
    assert_ne!(other, up.key_fpr);
    let sb = Sandbox::new();
    sb.write_home(
        ".config/zoi/config.yaml",
        client_config(&up, &[KEY_NAME]).as_bytes(),
    );
    trust_upstream_key(&sb, &up);
    assert_eq!(sb.sh("zoi sync").code, 0);
    assert!(
        sb.data().join("pgps/upstream-other.asc").exists(),
        "the second key came with repo.yaml `pgp`"
    );

    // trust only the key that signed nothing
    sb.write_home(
        ".config/zoi/config.yaml",
        client_config(&up, &["upstream-other"]).as_bytes(),
    );
    for name in ["sigtool", "embedtool"] {
        let p = up.package(name);
        let r = sb.sh(&format!("zoi install -y {}", p.query()));
        assert_ne!(r.code, 0, "{} must not install", p.query());
        assert!(
            output(&r).contains("No valid signature"),
            "{:?}: {}",
            p.signing,
            output(&r)
        );
        assert!(!sb.home.join(format!(".local/bin/{name}")).exists());
    }
}

#[test]
fn upstream_artifacts_history_and_links_are_as_documented() {
    let up = Upstream::start();
    let b = built();
    eprintln!("one-time build: {:.1}s", b.seconds);
    let platform = host_platform();

    // history: upstream's 233 commits, then ours, signed, on `main` = HEAD
    let count = up.git(&up.bare, &["rev-list", "--count", "main"]);
    assert_eq!(count, "235");
    assert!(up.zoidberg_head.starts_with("5ea5a0a"));
    assert_eq!(
        up.git(&up.bare, &["symbolic-ref", "HEAD"]),
        "refs/heads/main"
    );
    let v = Command::new("git")
        .args(["verify-commit", "--raw", "main"])
        .current_dir(&up.bare)
        .env("GNUPGHOME", &up.gnupghome)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&v.stderr).contains(&format!("VALIDSIG {}", up.key_fpr)),
        "HEAD is signed by the upstream key: {}",
        String::from_utf8_lossy(&v.stderr)
    );
    let ls = Command::new("git")
        .args(["ls-remote", &up.git_url()])
        .output()
        .unwrap();
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(ls.contains(&format!("{}\tHEAD", up.head())), "{ls}");

    // the registry content
    let repo: serde_yaml::Value = serde_yaml::from_str(&up.repo_yaml()).unwrap();
    assert_eq!(repo["name"], "Zoidberg");
    assert_eq!(repo["git"][0]["url"].as_str(), Some(up.git_url().as_str()));
    let pkg_base = format!("{}/{PROJECT}/{{id}}/{{version}}/", up.http_base());
    for (i, kind, file) in [
        (0, "main", "{name}-{version}-{platform}.zpa"),
        (1, "source-main", "{name}-{version}.zsa"),
    ] {
        let link = &repo["pkg"][i];
        assert_eq!(link["type"], kind);
        assert_eq!(link["url"].as_str().unwrap(), format!("{pkg_base}{file}"));
        for k in ["hash", "pgp", "size", "files"] {
            let ext = if k == "pgp" { "sig" } else { k };
            assert_eq!(link[k].as_str().unwrap(), format!("{pkg_base}{file}.{ext}"));
        }
    }
    assert_eq!(
        repo["delta"][0]["url"].as_str().unwrap(),
        format!("{pkg_base}{{name}}-{{version}}-{{platform}}.zpa.zdelta")
    );
    assert_eq!(repo["pgp"][0]["name"], KEY_NAME);
    assert_eq!(repo["pgp"][0]["key"].as_str(), Some(up.key_url().as_str()));
    let tiers: Vec<&str> = repo["repos"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tiers,
        [
            "core",
            "main",
            "extra",
            "community",
            "archive",
            "test",
            "zillowe",
            "parlex"
        ]
    );
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(up.work.join("packages.json")).unwrap()).unwrap();
    assert!(
        index["packages"]["@extra/bacon"].is_object(),
        "upstream's own"
    );
    for p in PACKAGES.iter().filter(|p| p.indexed) {
        assert_eq!(index["packages"][p.query()]["version"], p.version);
        let lua = up
            .work
            .join(format!("{}/{}/{}.pkg.lua", p.tier, p.name, p.name));
        assert_eq!(fs::read_to_string(lua).unwrap(), p.pkg_lua());
    }

    // the archives and what zoi wrote next to them, as served
    let (code, key) = get(&up.key_url());
    assert_eq!((code, key), (200, up.key_asc()));
    for p in &PACKAGES {
        let zpa = up.archive_path(p, &platform);
        let file = p.file_name(&platform);
        let (code, body) = get(&up.archive_url(p, &platform));
        assert_eq!(code, 200);
        assert_eq!(body, fs::read(&zpa).unwrap());
        assert_eq!(
            fs::read_to_string(format!("{}.hash", zpa.display())).unwrap(),
            format!("{}  {file}\n", sha512_file(&zpa))
        );
        let size = fs::read_to_string(format!("{}.size", zpa.display())).unwrap();
        assert_eq!(
            size,
            format!("down: {}\ninstall: {}\n", body.len(), install_size(&zpa)),
            "install counts every regular file, an embedded manifest.sig too"
        );
        let files = fs::read_to_string(format!("{}.files", zpa.display())).unwrap();
        assert!(files.contains(&format!("${{pkgstore}}/bin/{}", p.name)));
        let sig = Path::new(&format!("{}.sig", zpa.display())).to_path_buf();
        match p.signing {
            Signing::Detached => assert!(gpg::verifies(&up.gnupghome, &sig, &zpa)),
            Signing::Embedded => {
                assert!(!sig.exists());
                assert!(crate::support::upstream::zpa_has_entry(
                    &zpa,
                    "manifest.sig"
                ));
                assert_eq!(get(&up.url_of(&sig)).0, 404);
            }
        }
        assert_eq!(
            fs::read(&zpa).unwrap(),
            fs::read(b.raw.join(format!("{}-{}", p.name, p.version)).join(&file)).unwrap(),
            "served bytes are zoi's"
        );
    }
    let zsa = up.zsa_path();
    assert!(gpg::verifies(
        &up.gnupghome,
        Path::new(&format!("{}.sig", zsa.display())),
        &zsa
    ));
    assert_eq!(get(&up.url_of(&zsa)).0, 200);
    let zoi_signed = b.raw.join("zsa-zoi-signed").join(SOURCE_BUNDLE.zsa_name());
    assert!(
        !gpg::verifies(
            &up.gnupghome,
            Path::new(&format!("{}.sig", zoi_signed.display())),
            &zoi_signed
        ),
        "Zoi 1.29.4 `bundle --sign-mode file` signs the unfinished .zsa"
    );
    let zdelta = up.zdelta_path();
    assert!(zdelta.starts_with(up.root.join(DELTA.1.rel_dir())));
    assert_eq!(
        fs::read_to_string(format!("{}.hash", zdelta.display())).unwrap(),
        format!("{}\n", sha256_file(&zdelta)),
        "zoi package delta writes a bare SHA-256"
    );
    assert_eq!(
        fs::read_to_string(format!("{}.size", zdelta.display())).unwrap(),
        format!("{}\n", fs::metadata(&zdelta).unwrap().len())
    );
    assert!(gpg::verifies(
        &up.gnupghome,
        Path::new(&format!("{}.sig", zdelta.display())),
        &zdelta
    ));
    assert_eq!(get(&up.url_of(&zdelta)).0, 200);
}

#[test]
fn upstream_each_start_is_its_own_and_can_be_changed() {
    let mut a = Upstream::start();
    let b = Upstream::start();
    assert_ne!(a.http_base(), b.http_base());
    assert_ne!(a.git_url(), b.git_url());
    assert!(b.repo_yaml().contains(&b.http_base()));

    let before = b.head();
    let head = a.add_tier("corp", "official", false);
    assert_eq!(a.head(), head);
    assert!(a.repo_yaml().contains("name: corp"));
    assert_eq!(b.head(), before, "the other upstream is untouched");
    assert!(!b.repo_yaml().contains("corp"));

    // a client sees the new commit over the git daemon
    let clone = a.dir.path().join("check");
    let out = Command::new("git")
        .args(["clone", "-q", &a.git_url()])
        .arg(&clone)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        fs::read_to_string(clone.join("repo.yaml"))
            .unwrap()
            .contains("name: corp")
    );

    // tampering one upstream's archive leaves the other's alone
    let p = a.package("sigtool");
    let platform = host_platform();
    fs::write(a.archive_path(p, &platform), b"tampered").unwrap();
    assert_eq!(get(&a.archive_url(p, &platform)).1, b"tampered");
    assert_ne!(get(&b.archive_url(p, &platform)).1, b"tampered");

    // the binary host goes away; its log stays readable
    assert!(!a.requests_for(&p.file_name(&platform)).is_empty());
    a.stop_http();
    assert!(!a.http_running());
    let port = a
        .http_base()
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!a.requests_for(&p.file_name(&platform)).is_empty());
    assert_eq!(get(&b.key_url()).0, 200, "the other still serves");
}

#[test]
fn upstream_the_real_client_upgrades_through_the_delta() {
    let up = Upstream::start();
    let (old, new) = DELTA;
    up.publish(&old);
    let sb = Sandbox::new();
    sb.write_home(
        ".config/zoi/config.yaml",
        client_config(&up, &[KEY_NAME]).as_bytes(),
    );
    trust_upstream_key(&sb, &up);
    assert_eq!(sb.sh("zoi sync").code, 0);
    assert_eq!(sb.sh(&format!("zoi install -y {}", old.query())).code, 0);
    assert_eq!(
        sb.sh("$HOME/.local/bin/sigtool").stdout.trim(),
        old.output()
    );

    up.publish(&new);
    assert_eq!(sb.sh("zoi sync").code, 0);
    let r = sb.sh(&format!("zoi update -y {}", new.query()));
    assert_eq!(r.code, 0, "zoi update");
    assert_eq!(
        sb.sh("$HOME/.local/bin/sigtool").stdout.trim(),
        new.output()
    );
    let platform = host_platform();
    let delta = up.requests_for(&format!("{}.zdelta HTTP", new.file_name(&platform)));
    assert!(
        delta.iter().any(|l| l.contains("\" 200 ")),
        "the upgrade came through the .zdelta: {:#?}",
        up.access_log()
    );
    assert!(
        up.requests_for(&format!("{} HTTP", new.file_name(&platform)))
            .is_empty(),
        "not through the full archive: {:#?}",
        up.access_log()
    );
}

/// Zoi 1.29.4 keeps an archive it rebuilt from a `.zdelta` in its archive
/// cache; the next install of that version hash-checks the rebuilt bytes,
/// which are not the publisher's: "Hash verification failed". A trap of
/// the client (docs/compatibility.md), pinned here so a fixed Zoi shows.
#[test]
fn upstream_a_delta_rebuilt_archive_in_zois_cache_fails_the_next_install() {
    let up = Upstream::start();
    let (old, new) = DELTA;
    up.publish(&old);
    let sb = Sandbox::new();
    sb.write_home(
        ".config/zoi/config.yaml",
        client_config(&up, &[KEY_NAME]).as_bytes(),
    );
    trust_upstream_key(&sb, &up);
    assert_eq!(sb.sh("zoi sync").code, 0);
    assert_eq!(sb.sh(&format!("zoi install -y {}", old.query())).code, 0);
    assert_eq!(sb.sh(&format!("zoi uninstall -y {}", old.query())).code, 0);

    up.publish(&new);
    assert_eq!(sb.sh("zoi sync").code, 0);
    let r = sb.sh(&format!("zoi install -y {}", new.query()));
    assert_eq!(r.code, 0, "1.1.0 through the delta from the cached 1.0.0");
    let full = format!("{} HTTP", new.file_name(&host_platform()));
    assert!(
        up.requests_for(&full).is_empty(),
        "the full 1.1.0 archive was never fetched: the delta was used"
    );
    assert_eq!(sb.sh(&format!("zoi uninstall -y {}", new.query())).code, 0);
    let r = sb.sh(&format!("zoi install -y {}", new.query()));
    assert_ne!(r.code, 0);
    assert!(
        output(&r).contains("Hash verification failed"),
        "{}",
        output(&r)
    );
}
