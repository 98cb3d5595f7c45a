//! End to end with the real `zoi` executable (the crates.io `zoi-rs`
//! release pinned in scripts/zoi-version), run as an unprivileged user with
//! its own HOME and XDG dirs. Servers: our `serve` for the binary host and
//! keys, `git daemon` for the registry, both on loopback.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::gitd::{GitDaemon, empty_bare, git, upstream_registry};
use crate::support::gpg::throwaway_gpg_key;
use crate::support::serve::Serve;
use crate::support::zoienv::{Sandbox, give, share};
use crate::support::{self, Spec, zm, zoi_types};

/// Everything a flow needs: a site served over HTTP, a registry served by
/// git daemon, a throw-away signing key published on the site.
struct World {
    sb: Sandbox,
    site: PathBuf,
    serve: Serve,
    gitd: GitDaemon,
    served_git: PathBuf,
    up_work: PathBuf,
    gnupg: PathBuf,
    fpr: String,
}

impl World {
    fn new() -> World {
        let sb = Sandbox::new();
        let root = sb.path().to_path_buf();
        let site = root.join("site");
        fs::create_dir_all(site.join("pkgs")).unwrap();
        fs::create_dir_all(site.join("keys")).unwrap();
        let gnupg = root.join("gnupg");
        let fpr = throwaway_gpg_key(&gnupg);
        let key = std::process::Command::new("gpg")
            .args(["--batch", "--armor", "--export", &fpr])
            .env("GNUPGHOME", &gnupg)
            .output()
            .unwrap();
        fs::write(site.join("keys/mirror-signing.asc"), key.stdout).unwrap();
        let served_git = root.join("git");
        fs::create_dir_all(&served_git).unwrap();
        let (up_work, _) = upstream_registry(&served_git);
        let gitd = GitDaemon::start(&served_git);
        let serve = Serve::start(&root, &site, &["--quiet"]);
        share(&site);
        World {
            sb,
            site,
            serve,
            gitd,
            served_git,
            up_work,
            gnupg,
            fpr,
        }
    }

    fn base(&self) -> String {
        self.serve.url.trim_end_matches('/').to_string()
    }

    /// A spec for this world; `extra` goes into [registry], `client` is the
    /// whole [client] table body.
    fn spec(&self, name: &str, target_repo: &str, registry_extra: &str, client: &str) -> PathBuf {
        Spec::minimal()
            .set("extension.name", name)
            .set("extension.description", "lab mirror")
            .inline(
                "extension.maintainer",
                &[("name", "Lab IT"), ("email", "it@lab.example")],
            )
            .set("registry.url", self.gitd.url(target_repo))
            .set("registry.upstream", self.gitd.url("upstream.git"))
            .set(
                "registry.upstream_repo_yaml",
                support::fixtures()
                    .join("zoidberg/repo.yaml")
                    .display()
                    .to_string(),
            )
            .merge_under("registry", registry_extra)
            .set("binaries.url", format!("{}/pkgs", self.base()))
            .list("binaries.platforms", [host_platform().as_str()])
            .merge_under("client", client)
            .write_to(&self.sb.path().join(format!("{name}.toml")))
    }

    fn key_client(&self) -> String {
        format!(
            "tiers = [\"core\", \"main\", \"zillowe\"]\n[[client.pgp]]\nname = \"mirror-signing\"\nurl = \"{}/keys/mirror-signing.asc\"\n",
            self.base()
        )
    }

    /// Builds a spec's bundle onto the site; returns its directory.
    fn build(&self, spec: &Path) -> PathBuf {
        zm(
            self.sb.path(),
            &[
                "build",
                "-c",
                spec.to_str().unwrap(),
                "-o",
                self.site.to_str().unwrap(),
            ],
        )
        .ok();
        share(&self.site);
        let name = spec.file_stem().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(spec).unwrap();
        let version = text
            .lines()
            .find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"'))
            .unwrap_or("1.0.0")
            .to_string();
        self.site.join(format!("{name}-{version}"))
    }

    /// `db sync` of a spec into its target (signed with the world's key
    /// when the spec names one).
    fn db_sync(&self, spec: &Path, target_repo: &str) {
        empty_bare(&self.served_git.join(target_repo));
        let work = self.sb.path().join(format!("work-{target_repo}"));
        let r = support::run(
            support::cmd(self.sb.path())
                .args([
                    "db",
                    "sync",
                    "-c",
                    spec.to_str().unwrap(),
                    "--work",
                    work.to_str().unwrap(),
                ])
                .env("GNUPGHOME", &self.gnupg),
        );
        assert_eq!(r.code, 0, "db sync: {}", r.stderr);
    }
}

fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => panic!("unsupported arch {a}"),
    };
    format!("linux-{arch}")
}

/// A config file in the exact shape Zoi writes (our serializer mirrors
/// Zoi's `Config`), so Zoi's own rewrite of it is byte-identical.
fn zoi_shaped_config(repos: &[&str], registry_url: &str) -> String {
    let c = zoi_mirror::zoi::config::Config {
        repos: repos.iter().map(|s| s.to_string()).collect(),
        default_registry: Some(zoi_mirror::zoi::config::Registry {
            url: registry_url.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    serde_yaml::to_string(&c).unwrap()
}

#[test]
fn flow1_extension_round_trip_with_zoi_alone() {
    let w = World::new();
    let spec = w.spec(
        "lab-ext",
        "mirror.git",
        "",
        &format!("repo_add = [\"zillowe\"]\n{}", w.key_client()),
    );
    let bundle = w.build(&spec);
    let before = zoi_shaped_config(&["core", "main"], "https://git.example.invalid/old.git");
    w.sb.write_home(".config/zoi/config.yaml", before.as_bytes());

    let r = w.sb.sh(&format!(
        "zoi extension add -y {}/lab-ext.pkg.lua",
        bundle.display()
    ));
    assert_eq!(r.code, 0, "zoi extension add failed");
    let c: zoi_types::Config = serde_yaml::from_slice(&fs::read(w.sb.config()).unwrap()).unwrap();
    assert_eq!(c.default_registry.unwrap().url, w.gitd.url("mirror.git"));
    assert_eq!(
        c.repos,
        ["core", "main", "zillowe"],
        "the tier the spec lists"
    );
    assert!(
        w.sb.data().join("pgps/mirror-signing.asc").exists(),
        "key imported from our host"
    );

    let r = w.sb.sh("zoi extension remove -y lab-ext");
    assert_eq!(r.code, 0, "zoi extension remove failed");
    assert_eq!(
        fs::read_to_string(w.sb.config()).unwrap(),
        before,
        "config restored exactly"
    );
    assert!(!w.sb.data().join("pgps/mirror-signing.asc").exists());
}

const COMMENTED: &str = "# Bob's Zoi config — keep these notes\nrepos:\n- core\n- main\n# a stash of archives\npkg_dirs:\n- /mnt/usb\njobs: 4\n";

#[test]
fn flow2_apply_with_zoi_present_then_status_and_revert() {
    let w = World::new();
    let client = format!(
        "cache_mirrors = [\"{}/flat\"]\n{}",
        w.base(),
        w.key_client()
    );
    let spec = w.spec(
        "lab-apply",
        "mirror.git",
        &format!(
            "authorities = [\"mirror-signing\"]\nsigning_key = \"{}\"",
            w.fpr
        ),
        &client,
    );
    let bundle = w.build(&spec);
    w.sb.write_home(".config/zoi/config.yaml", COMMENTED.as_bytes());

    let r = w.sb.sh(&format!(
        "zoi-mirror apply {} --format json",
        bundle.display()
    ));
    assert_eq!(r.code, 0);
    let doc = r.json();
    assert_eq!(doc["zoi"]["action"], "added", "{doc}");
    let text = fs::read_to_string(w.sb.config()).unwrap();
    let c: zoi_types::Config = serde_yaml::from_str(&text).unwrap();
    let reg = c.default_registry.unwrap();
    assert_eq!(
        reg.handle, "zoidberg",
        "Zoi's registry-repo drops the handle; apply restores it"
    );
    assert_eq!(reg.url, w.gitd.url("mirror.git"));
    assert_eq!(
        reg.authorities,
        Some(vec![
            "mirror-signing".to_string(),
            "zillowe-main".to_string()
        ]),
        "ours, and upstream's (built into Zoi) for the archives"
    );
    assert_eq!(c.cache_mirrors, [format!("{}/flat", w.base())]);
    assert_eq!(c.pkg_dirs, ["/mnt/usb"]);
    assert!(
        text.starts_with("# Bob's Zoi config"),
        "comments survive Zoi's rewrite:\n{text}"
    );
    assert!(text.contains("# a stash of archives"));
    let store = w.sb.data().join("pkgs/store");
    assert!(
        fs::read_dir(&store)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with("-lab-apply")),
        "Zoi knows the extension"
    );

    let r = w.sb.sh(&format!(
        "zoi-mirror apply {} --format json",
        bundle.display()
    ));
    assert_eq!(r.json()["already_applied"], true);
    assert_eq!(
        fs::read_to_string(w.sb.config()).unwrap(),
        text,
        "second apply changes no byte"
    );

    let r = w.sb.sh(&format!(
        "zoi-mirror status {} --format json",
        bundle.display()
    ));
    assert_eq!(r.code, 0, "status in sync");
    assert_eq!(r.json()["layout"], "xdg");

    let r = w.sb.sh("zoi-mirror revert lab-apply --format json");
    assert_eq!(r.code, 0);
    assert_eq!(r.json()["zoi"], "removed");
    let after = fs::read_to_string(w.sb.config()).unwrap();
    assert!(
        support::yaml_eq(&after, COMMENTED),
        "config as before:\n{after}"
    );
    assert!(after.starts_with("# Bob's Zoi config"));
    assert!(
        !fs::read_dir(&store)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with("-lab-apply")),
        "the extension is gone from Zoi's store"
    );
    assert!(!w.sb.data().join("pgps/mirror-signing.asc").exists());
}

/// An upgrade replaces the version Zoi holds: zoi-mirror removes it, then
/// adds the new one. When the real Zoi refuses the new one (its key URL
/// answers 404), the old version is registered again from Zoi's own copy
/// and the config and state are byte-identical to before; when the old one
/// cannot be registered again either (its key is gone too), the state says
/// Zoi no longer holds it, and revert still gives the user's config back.
#[test]
fn flow2_a_failed_upgrade_registers_the_old_version_again() {
    let w = World::new();
    let spec = w.spec("lab-up", "mirror.git", "", &w.key_client());
    let v1 = w.build(&spec);
    w.sb.write_home(".config/zoi/config.yaml", COMMENTED.as_bytes());
    let r =
        w.sb.sh(&format!("zoi-mirror apply {} --format json", v1.display()));
    assert_eq!(r.code, 0);
    assert_eq!(r.json()["zoi"]["action"], "added");
    let applied = fs::read(w.sb.config()).unwrap();
    let state_path = w.sb.home.join(".local/state/zoi-mirror/lab-up.user.json");
    let state = fs::read(&state_path).unwrap();
    let registered = |version: &str| {
        zoi_mirror::client::zoi_cli::registered(&w.sb.data(), "lab-up")
            .is_some_and(|r| r.version == version)
    };
    assert!(registered("1.0.0"));

    // 2.0.0 takes its key from a URL that answers 404: Zoi refuses it.
    let broken = format!(
        "tiers = [\"core\", \"main\", \"zillowe\"]\n[[client.pgp]]\nname = \"mirror-signing\"\nurl = \"{}/keys/gone.asc\"\n",
        w.base()
    );
    let spec2 = w.spec("lab-up", "mirror.git", "", &broken);
    let text = fs::read_to_string(&spec2).unwrap();
    fs::write(
        &spec2,
        text.replace("version = \"1.0.0\"", "version = \"2.0.0\""),
    )
    .unwrap();
    let v2 = w.build(&spec2);
    assert!(v2.ends_with("lab-up-2.0.0"));
    let upgrade = || {
        let r =
            w.sb.sh(&format!("zoi-mirror apply {} --format json", v2.display()));
        assert_eq!(r.code, 3);
        let e = r.json()["error"].clone();
        assert_eq!(e["kind"], "zoi_failed", "{e}");
        e["hint"].as_str().unwrap().to_string()
    };
    let hint = upgrade();
    assert_eq!(
        hint,
        "Zoi could not add the extension (see its output above); Zoi holds lab-up 1.0.0 again, the config was restored unchanged, zoi-mirror's state was restored"
    );
    assert!(
        registered("1.0.0"),
        "the old version is back in Zoi's store"
    );
    assert_eq!(fs::read(w.sb.config()).unwrap(), applied);
    assert_eq!(fs::read(&state_path).unwrap(), state);
    assert!(w.sb.data().join("pgps/mirror-signing.asc").exists());

    // Now the old version's key is gone as well: it cannot be registered
    // again, and the state must not say Zoi holds it.
    fs::remove_file(w.site.join("keys/mirror-signing.asc")).unwrap();
    let hint = upgrade();
    assert!(
        hint.contains(
            "NOT put back: Zoi no longer holds lab-up 1.0.0 and could not register it again"
        ),
        "{hint}"
    );
    assert!(hint.contains("the config was restored unchanged"), "{hint}");
    assert!(!registered("1.0.0") && !registered("2.0.0"));
    assert_eq!(fs::read(w.sb.config()).unwrap(), applied);
    let st: serde_json::Value = serde_json::from_slice(&fs::read(&state_path).unwrap()).unwrap();
    assert_eq!(st["zoi_registered"], false, "{st}");
    assert_eq!(st["version"], "1.0.0");

    let r = w.sb.sh("zoi-mirror revert lab-up --format json");
    assert_eq!(r.code, 0);
    assert_eq!(r.json()["zoi"], "not_registered");
    let after = fs::read_to_string(w.sb.config()).unwrap();
    assert!(
        support::yaml_eq(&after, COMMENTED),
        "config as before:\n{after}"
    );
}

#[test]
fn flow3_zoi_syncs_from_our_mirror_and_enforces_authorities() {
    let w = World::new();
    // signed overlay, clients with authorities: accepted
    let signed = w.spec(
        "lab-signed",
        "signed.git",
        &format!(
            "authorities = [\"mirror-signing\"]\nsigning_key = \"{}\"",
            w.fpr
        ),
        &w.key_client(),
    );
    w.db_sync(&signed, "signed.git");
    let bundle = w.build(&signed);
    let r = w.sb.sh(&format!("zoi-mirror apply {}", bundle.display()));
    assert_eq!(r.code, 0);
    let r = w.sb.sh("zoi sync");
    assert_eq!(r.code, 0, "zoi sync of the signed mirror");
    let synced = w.sb.data().join("pkgs/db/zoidberg/repo.yaml");
    assert_eq!(
        fs::read(&synced).unwrap(),
        fs::read(bundle.join("repo.yaml")).unwrap(),
        "Zoi's clone carries our repo.yaml"
    );

    // unsigned overlay: accepted without authorities...
    let unsigned = w.spec(
        "lab-plain",
        "unsigned.git",
        "",
        "tiers = [\"core\", \"main\", \"zillowe\"]",
    );
    w.db_sync(&unsigned, "unsigned.git");
    let plain = w.build(&unsigned);
    let mut sb2 = Sandbox::new();
    sb2.fresh_home("home-plain");
    let r = sb2.sh(&format!("zoi-mirror apply {}", plain.display()));
    assert_eq!(r.code, 0);
    assert_eq!(
        sb2.sh("zoi sync").code,
        0,
        "no authorities: an unsigned overlay is fine"
    );
    assert!(sb2.data().join("pkgs/db/zoidberg/repo.yaml").exists());

    // ...and rejected by clients that keep authorities
    let strict = w.spec(
        "lab-strict",
        "unsigned.git",
        "authorities = [\"mirror-signing\"]",
        &w.key_client(),
    );
    let strict_bundle = w.build(&strict);
    let mut sb3 = Sandbox::new();
    sb3.fresh_home("home-strict");
    assert_eq!(
        sb3.sh(&format!("zoi-mirror apply {}", strict_bundle.display()))
            .code,
        0
    );
    let r = sb3.sh("zoi sync");
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("not signed"),
        "Zoi must refuse the unsigned HEAD"
    );
    assert!(
        !sb3.data().join("pkgs/db/zoidberg/repo.yaml").exists(),
        "rolled back"
    );
}

/// Builds tinytool with the real `zoi package build`, publishes it in the
/// registry (upstream → db sync) and on the binary host (our `index`).
fn tinytool(w: &World) -> (PathBuf, PathBuf) {
    let pkg = w.sb.path().join("tinytool.pkg.lua");
    fs::copy(support::fixtures().join("zoi-built/tinytool.pkg.lua"), &pkg).unwrap();
    let out = w.sb.path().join("built");
    fs::create_dir_all(&out).unwrap();
    give(&out);
    share(&pkg);
    let r = w.sb.sh(&format!(
        "zoi package build {} -o {}",
        pkg.display(),
        out.display()
    ));
    assert_eq!(r.code, 0, "zoi package build");
    let file = format!("tinytool-1.0.0-{}.zpa", host_platform());

    // the registry gets the package definition and an index entry
    fs::create_dir_all(w.up_work.join("zillowe/tinytool")).unwrap();
    fs::copy(&pkg, w.up_work.join("zillowe/tinytool/tinytool.pkg.lua")).unwrap();
    let idx = w.up_work.join("packages.json");
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&idx).unwrap()).unwrap();
    v["packages"]["@zillowe/tinytool"] = serde_json::json!({"repo": "zillowe", "repo_type": "official",
        "version": "1.0.0", "epoch": 0, "revision": "1", "description": "A tiny test tool", "scope": "user",
        "sub_packages": [], "main_sub_packages": [], "vuln": [], "dependencies": null});
    fs::write(&idx, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    git(&w.up_work, &["add", "."]);
    git(&w.up_work, &["commit", "-q", "-m", "tinytool"]);
    git(&w.up_work, &["push", "-q", "origin", "main"]);

    // the binary host gets the archive only; our `index` writes the metadata
    let (os, arch) = host_platform()
        .split_once('-')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    let dir = w
        .site
        .join("pkgs/zillowe")
        .join(os)
        .join(arch)
        .join("1.0.0");
    fs::create_dir_all(&dir).unwrap();
    fs::copy(out.join(&file), dir.join(&file)).unwrap();
    zm(
        w.sb.path(),
        &["index", w.site.join("pkgs").to_str().unwrap()],
    )
    .ok();
    for ext in ["hash", "size", "files"] {
        assert_eq!(
            fs::read(dir.join(format!("{file}.{ext}"))).unwrap(),
            fs::read(out.join(format!("{file}.{ext}"))).unwrap(),
            "our .{ext} is byte-identical to the one `zoi package build` wrote"
        );
    }
    share(&w.site);
    (dir.join(&file), out.join(&file))
}

#[test]
fn flow4_and_5_install_from_our_binary_host_then_air_gapped() {
    let w = World::new();
    let (hosted, built) = tinytool(&w);
    let spec = w.spec(
        "lab-bin",
        "mirror.git",
        "",
        "tiers = [\"core\", \"main\", \"zillowe\"]",
    );
    w.db_sync(&spec, "mirror.git");
    let bundle = w.build(&spec);

    let r = w.sb.sh(&format!("zoi-mirror apply {}", bundle.display()));
    assert_eq!(r.code, 0);
    assert_eq!(w.sb.sh("zoi sync").code, 0);
    let r = w.sb.sh("zoi install -y @zillowe/tinytool");
    assert_eq!(r.code, 0, "zoi install from our binary host");
    let r = w.sb.sh("$HOME/.local/bin/tinytool");
    assert_eq!(r.stdout.trim(), "tinytool works");

    // check --client reads this machine's merged config and synced registry
    let r =
        w.sb.sh("zoi-mirror check --client --package @zillowe/tinytool@1.0.0 --format json");
    assert_eq!(r.code, 0, "check --client");
    let doc = r.json();
    assert_eq!(doc["registry"][0]["url"], w.gitd.url("mirror.git").as_str());
    assert_eq!(doc["counts"]["targets"], 1);
    assert_eq!(doc["counts"]["failed"], 0);

    // flow 5: the network is gone; the archive arrives on a USB stick and
    // apply writes pkg_dirs + offline mode
    let usb = w.sb.path().join("usb");
    fs::create_dir_all(&usb).unwrap();
    fs::copy(&built, usb.join(built.file_name().unwrap())).unwrap();
    share(&usb);
    let offline = w.spec(
        "lab-bin",
        "mirror.git",
        "",
        &format!(
            "tiers = [\"core\", \"main\", \"zillowe\"]\npkg_dirs = [\"{}\"]\noffline = true",
            usb.display()
        ),
    );
    // The offline bundle is the next version of the same extension (a second
    // extension on the same keys would be refused).
    fs::write(
        &offline,
        fs::read_to_string(&offline)
            .unwrap()
            .replace("version = \"1.0.0\"", "version = \"1.1.0\""),
    )
    .unwrap();
    let offline_bundle = w.build(&offline);
    let mut air = Sandbox::new();
    air.fresh_home("home-air");
    assert_eq!(
        air.sh(&format!("zoi-mirror apply {}", bundle.display()))
            .code,
        0
    );
    assert_eq!(air.sh("zoi sync").code, 0, "synced once while online");
    drop(w.serve);
    assert_eq!(
        air.sh(&format!(
            "zoi-mirror apply {} --no-zoi",
            offline_bundle.display()
        ))
        .code,
        0
    );
    let c: zoi_types::Config = serde_yaml::from_slice(&fs::read(air.config()).unwrap()).unwrap();
    assert!(c.offline_mode && c.pkg_dirs.contains(&usb.display().to_string()));
    let r = air.sh("zoi install -y @zillowe/tinytool");
    assert_eq!(r.code, 0, "air-gapped install through pkg_dirs");
    assert_eq!(
        air.sh("$HOME/.local/bin/tinytool").stdout.trim(),
        "tinytool works"
    );
    let _ = hosted;
}

#[test]
fn flow4_a_corrupted_archive_fails_zoi_and_check_deep_alike() {
    let w = World::new();
    let (hosted, _) = tinytool(&w);
    let spec = w.spec(
        "lab-bad",
        "mirror.git",
        "",
        "tiers = [\"core\", \"main\", \"zillowe\"]",
    );
    w.db_sync(&spec, "mirror.git");
    let bundle = w.build(&spec);
    let mut bytes = fs::read(&hosted).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x5a;
    fs::write(&hosted, bytes).unwrap();

    assert_eq!(
        w.sb.sh(&format!("zoi-mirror apply {}", bundle.display()))
            .code,
        0
    );
    assert_eq!(w.sb.sh("zoi sync").code, 0);
    let r = w.sb.sh("zoi install -y @zillowe/tinytool");
    assert_ne!(
        r.code, 0,
        "Zoi must refuse an archive that does not match its .hash"
    );
    assert!(!w.sb.home.join(".local/bin/tinytool").exists());

    let r = zm(
        w.sb.path(),
        &[
            "check",
            "--bundle",
            bundle.to_str().unwrap(),
            "--package",
            "@zillowe/tinytool@1.0.0",
            "--deep",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 1);
    let doc = r.json();
    let deep = doc["packages"][0]["urls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["kind"] == "deep")
        .unwrap()
        .clone();
    assert_eq!(deep["error"]["kind"], "hash_mismatch", "{deep}");
    assert!(
        deep["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("tinytool-1.0.0-{}.zpa", host_platform()))
    );
}

#[test]
fn flow2_what_the_user_already_had_is_never_handed_to_zoi() {
    let w = World::new();
    let spec = w.spec("lab-keys", "mirror.git", "", &w.key_client());
    let bundle = w.build(&spec);
    // the user already trusts a key under the same name
    w.sb.write_home(
        ".local/share/zoi/pgps/mirror-signing.asc",
        b"the user's own key\n",
    );
    let r = w.sb.sh(&format!(
        "zoi-mirror apply {} --format json",
        bundle.display()
    ));
    assert_eq!(r.code, 0);
    let doc = r.json();
    assert_eq!(doc["zoi"]["action"], "skipped", "{doc}");
    assert!(
        doc["zoi"]["reason"]
            .as_str()
            .unwrap()
            .contains("a key named 'mirror-signing'")
    );
    let c: zoi_types::Config = serde_yaml::from_slice(&fs::read(w.sb.config()).unwrap()).unwrap();
    assert_eq!(
        c.default_registry.unwrap().url,
        w.gitd.url("mirror.git"),
        "the config is applied all the same"
    );
    assert_eq!(w.sb.sh("zoi-mirror revert lab-keys").code, 0);
    assert_eq!(
        fs::read(w.sb.data().join("pgps/mirror-signing.asc")).unwrap(),
        b"the user's own key\n",
        "Zoi's remove would have deleted it"
    );
}

#[test]
fn zoi_sync_fails_on_a_master_head_registry_exactly_when_check_says_head_missing() {
    let w = World::new();
    // one registry, signed overlay; clients with and without authorities
    let strict = w.spec(
        "lab-strict",
        "master-head.git",
        &format!(
            "authorities = [\"mirror-signing\"]\nsigning_key = \"{}\"",
            w.fpr
        ),
        &w.key_client(),
    );
    let plain = w.spec(
        "lab-plain",
        "master-head.git",
        "",
        "tiers = [\"core\", \"main\", \"zillowe\"]",
    );
    // what `git init --bare` makes with git's default branch name: HEAD →
    // master, while db sync pushes main
    let target = w.served_git.join("master-head.git");
    git(
        &w.served_git,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "master",
            target.to_str().unwrap(),
        ],
    );
    let r = support::run(
        support::cmd(w.sb.path())
            .args(["db", "sync", "-c", strict.to_str().unwrap(), "--work"])
            .arg(w.sb.path().join("work-master-head"))
            .args(["--format", "json"])
            .env("GNUPGHOME", &w.gnupg),
    );
    let doc = r.json();
    assert_eq!((r.code, &doc["pushed"]), (0, &serde_json::json!(true)));
    assert_eq!(doc["warnings"].as_array().unwrap().len(), 1, "{doc}");
    let strict_bundle = w.build(&strict);
    let plain_bundle = w.build(&plain);
    let check = || {
        zm(
            w.sb.path(),
            &[
                "check",
                "--bundle",
                strict_bundle.to_str().unwrap(),
                "--no-progress",
                "--format",
                "json",
            ],
        )
    };
    let synced = |sb: &Sandbox| sb.data().join("pkgs/db/zoidberg/repo.yaml");
    let apply = |sb: &Sandbox, bundle: &Path| {
        let r = sb.sh(&format!("zoi-mirror apply {}", bundle.display()));
        assert_eq!(r.code, 0);
    };

    // check: head_missing, exit 1
    let r = check();
    assert_eq!(r.code, 1, "{}", r.stdout);
    let doc = r.json();
    assert_eq!(
        doc["registry"][0]["checks"][0]["error"]["kind"], "head_missing",
        "{doc}"
    );
    // the real client: with authorities, `zoi sync` fails at once
    let mut strict_sb = Sandbox::new();
    strict_sb.fresh_home("home-strict");
    apply(&strict_sb, &strict_bundle);
    let r = strict_sb.sh("zoi sync");
    assert_ne!(r.code, 0);
    assert!(
        format!("{}{}", r.stdout, r.stderr)
            .contains("Failed to get repository HEAD: reference 'refs/heads/master' not found"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(!synced(&strict_sb).exists());
    // without authorities the first sync "completes" (exit 0) with an empty
    // clone (no repo.yaml, no packages), and every later sync fails
    let mut plain_sb = Sandbox::new();
    plain_sb.fresh_home("home-plain");
    apply(&plain_sb, &plain_bundle);
    let r = plain_sb.sh("zoi sync");
    assert!(!synced(&plain_sb).exists(), "exit {}", r.code);
    let r = plain_sb.sh("zoi sync");
    assert_ne!(r.code, 0);
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("refs/heads/master"),
        "{}{}",
        r.stdout,
        r.stderr
    );

    // fixed as the hint says: check passes and Zoi syncs
    git(&target, &["symbolic-ref", "HEAD", "refs/heads/main"]);
    let r = check();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(strict_sb.sh("zoi sync").code, 0, "zoi sync after the fix");
    assert_eq!(
        fs::read(synced(&strict_sb)).unwrap(),
        fs::read(strict_bundle.join("repo.yaml")).unwrap()
    );
    // ...while the empty clone of the plain client stays broken until it
    // is removed
    assert_ne!(plain_sb.sh("zoi sync").code, 0, "the empty clone stays");
    let r = plain_sb.sh("rm -rf ~/.local/share/zoi/pkgs/db/zoidberg && zoi sync");
    assert_eq!(r.code, 0);
    assert_eq!(
        fs::read(synced(&plain_sb)).unwrap(),
        fs::read(strict_bundle.join("repo.yaml")).unwrap()
    );
}
