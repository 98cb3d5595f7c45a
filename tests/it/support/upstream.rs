//! A faithful upstream registry: what `db sync` and `bin sync` mirror from.
//!
//! [`Upstream::start`] gives each test its own copy of:
//!
//! - **the registry**: the real Zoidberg history (`fixtures/zoidberg/
//!   zoidberg.git.bundle`, 233 commits up to 5ea5a0a, branch `main`) as a
//!   bare repo `zoidberg.git` whose HEAD names `main`, served by `git daemon`
//!   ([`Upstream::git_url`]), plus a work clone ([`Upstream::work`], origin =
//!   the bare repo) for committing. On top of upstream's history come two
//!   commits, both signed with the upstream key (Zoi, with `authorities`,
//!   verifies the HEAD commit's signature at `zoi sync`):
//!   1. *"PKGS: add @main/sigtool, @extra/embedtool"*: their `.pkg.lua` under
//!      `<tier>/<name>/<name>.pkg.lua` and entries in `packages.json`
//!      (upstream's bytes kept, the entries inserted as text);
//!   2. *"repo.yaml: serve from loopback"*: upstream's `repo.yaml` with `git`
//!      = one `main` link to the git daemon (the GitHub/Codeberg mirrors are
//!      dropped), the `pkg` links (`main` and `source-main`, with their
//!      `hash`/`pgp`/`size`/`files` templates exactly as Zoidberg writes
//!      them) moved from `https://gitlab.com/api/v4/projects/71125308` to
//!      [`Upstream::http_base`]`/api/v4/projects/1`, a `delta` list (see
//!      [`delta_link`]) and `pgp: [{name: upstream-main, key:
//!      <http_base>/keys/upstream-main.asc}]`. Name, description, handle,
//!      advisory prefix and the tiers are upstream's.
//! - **the binary host**: nginx serving [`Upstream::root`] in Zoidberg's
//!   GitLab generic-package layout,
//!   `<http_base>/api/v4/projects/1/packages/generic/{id}/{version}/…`
//!   (`{id}` = `<repo>.<name>`), and the upstream public key at
//!   `<http_base>/keys/upstream-main.asc`.
//! - **the key**: a GnuPG home ([`Upstream::gnupghome`]) holding the
//!   throw-away upstream secret key ([`Upstream::key_fpr`], named
//!   [`KEY_NAME`] in `repo.yaml`).
//!
//! The archives are made by the **real** `zoi package …` (1.29.4, run as the
//! unprivileged test user), once per test process ([`built`]), then copied
//! into each upstream. See [`PACKAGES`]; for platform `P` (the host's):
//!
//! | served under `…/generic/` | made by |
//! |---|---|
//! | `main.sigtool/1.0.0/sigtool-1.0.0-P.zpa{,.hash,.size,.files,.sig}` | `zoi package build --sign FPR --sign-mode file` (an older version: not in the index) |
//! | `main.sigtool/1.1.0/sigtool-1.1.0-P.zpa{,.hash,.size,.files,.sig}` | `zoi package build --sign FPR --sign-mode file` |
//! | `main.sigtool/1.1.0/sigtool-1.1.0-P.zpa.zdelta{,.hash,.size,.sig}` | `zoi package delta OLD.zpa NEW.zpa --sign FPR` (1.0.0 → 1.1.0; `zoi update` from a cached 1.0.0 uses it) |
//! | `main.sigtool/1.1.0/sigtool-1.1.0.zsa{,.sig}` | `zoi package bundle` (`.sig`: see below) |
//! | `extra.embedtool/2.0.0/embedtool-2.0.0-P.zpa{,.hash,.size,.files}` | `zoi package build --sign FPR --sign-mode embed` (`manifest.sig` inside, no `.sig`) |
//!
//! The `.zsa.sig` is made with the gpg command Zoi itself runs (`gpg --batch
//! --no-tty --yes --detach-sign --local-user FPR --output X.sig X`) because
//! Zoi 1.29.4's `zoi package bundle --sign FPR --sign-mode file` signs the
//! `.zsa` before the zstd stream is finished, so its `.sig` never verifies
//! (kept in [`Built::raw`]`/zsa-zoi-signed/`).
//!
//! Nothing else is served: the other Zoidberg packages' archives answer 404
//! (as a mirror of part of upstream would), the `.zsa` has no
//! `.hash/.size/.files` (Zoi writes none), and `zoi package delta` writes a
//! SHA-256 `.zdelta.hash` (`<hex>\n`) and a bare-integer `.zdelta.size`.
//! The installed programs print `<name> <version> works`
//! ([`Package::output`]).
//!
//! Tests may change their upstream freely: edit files under `root` (tamper
//! an archive), commit in `work` ([`Upstream::commit_and_push`], signed),
//! [`Upstream::edit_repo_yaml`], [`Upstream::add_tier`],
//! [`Upstream::add_key`], [`Upstream::publish`] (move the index to another
//! built version), or take the binary host away ([`Upstream::stop_http`]).
//!
//! A real client of it (see tests/it/upstream.rs): `default_registry:
//! {handle: zoidberg, url: <git_url>, authorities: [upstream-main]}`,
//! `repos: [main, extra]`. With `authorities`, Zoi 1.29.4 checks the cloned
//! HEAD's signature *before* it imports `repo.yaml`'s `pgp` keys, so a first
//! `zoi sync` needs the key already in `pgps/` (`zoi pgp add --url
//! <key_url> --name upstream-main`, or an extension's `pgp` change);
//! otherwise: "Trusted key 'upstream-main' not found in Zoi's PGP keyring".
//!
//! Everything listens on 127.0.0.1 and is stopped (and its files removed)
//! when the `Upstream` is dropped.
//!
//! ```ignore
//! let up = Upstream::start();
//! let sigtool = up.package("sigtool");
//! let zpa = up.archive_path(sigtool, &host_platform());
//! assert!(up.repo_yaml().contains(&up.key_url()));
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use super::gitd::GitDaemon;
use super::gpg;
use super::nginx::Nginx;
use super::zoienv::{Sandbox, give};

/// The name of the upstream key in `repo.yaml` `pgp` (and so in a client's
/// `pgps/` and `authorities`).
pub const KEY_NAME: &str = "upstream-main";
/// The registry repo's name under the git daemon.
pub const REPO: &str = "zoidberg.git";
/// The branch the bundle carries and HEAD names.
pub const BRANCH: &str = "main";
/// The registry's handle (what clients write in `default_registry.handle`).
pub const HANDLE: &str = "zoidberg";
/// The binary host's path prefix: Zoidberg's GitLab generic packages.
pub const PROJECT: &str = "api/v4/projects/1/packages/generic";
/// Zoidberg's real binary-host prefix, as in its `repo.yaml`.
const ZOIDBERG_PKG_BASE: &str = "https://gitlab.com/api/v4/projects/71125308/packages/generic";

/// How an archive is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// `--sign-mode file`: a detached `<archive>.sig` next to the archive.
    Detached,
    /// `--sign-mode embed`: `manifest.sig` inside the `.zpa`, no `.sig`.
    Embedded,
}

/// One archive the real zoi built for the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Package {
    /// The tier folder (and the package's metadata `repo`).
    pub tier: &'static str,
    pub name: &'static str,
    pub version: &'static str,
    pub signing: Signing,
    /// Whether the registry (`packages.json` and the `.pkg.lua`) is at this
    /// version; older versions are served but not indexed.
    pub indexed: bool,
}

/// Every archive served, oldest version of a package first.
pub const PACKAGES: [Package; 3] = [
    Package {
        tier: "main",
        name: "sigtool",
        version: "1.0.0",
        signing: Signing::Detached,
        indexed: false,
    },
    Package {
        tier: "main",
        name: "sigtool",
        version: "1.1.0",
        signing: Signing::Detached,
        indexed: true,
    },
    Package {
        tier: "extra",
        name: "embedtool",
        version: "2.0.0",
        signing: Signing::Embedded,
        indexed: true,
    },
];

/// The package whose `.zsa` is served (`sigtool` 1.1.0).
pub const SOURCE_BUNDLE: Package = PACKAGES[1];
/// The delta served: (from, to) = `sigtool` 1.0.0 → 1.1.0.
pub const DELTA: (Package, Package) = (PACKAGES[0], PACKAGES[1]);

impl Package {
    /// `{id}` in Zoi's URL templates: `<repo>.<name>`.
    pub fn id(&self) -> String {
        format!("{}.{}", self.tier, self.name)
    }

    /// `@<tier>/<name>`, what `zoi install` takes.
    pub fn query(&self) -> String {
        format!("@{}/{}", self.tier, self.name)
    }

    /// `<name>-<version>-<platform>.zpa`.
    pub fn file_name(&self, platform: &str) -> String {
        format!("{}-{}-{platform}.zpa", self.name, self.version)
    }

    /// `<name>-<version>.zsa`.
    pub fn zsa_name(&self) -> String {
        format!("{}-{}.zsa", self.name, self.version)
    }

    /// The folder under the binary host's root: `PROJECT/{id}/{version}`.
    pub fn rel_dir(&self) -> String {
        format!("{PROJECT}/{}/{}", self.id(), self.version)
    }

    /// What the installed program prints.
    pub fn output(&self) -> String {
        format!("{} {} works", self.name, self.version)
    }

    /// The `.pkg.lua` it was built from (and, when indexed, the registry's).
    pub fn pkg_lua(&self) -> String {
        format!(
            r##"metadata({{
  name = "{name}",
  repo = "{tier}",
  version = "{version}",
  description = "A test tool built by the real zoi ({signing:?} signature)",
  maintainer = {{ name = "Upstream Dev", email = "dev@upstream.example" }},
  license = "MIT",
  bins = {{ "{name}" }},
  types = {{ "source" }},
  platforms = {{ "{platform}" }},
}})
function prepare()
  cmd("printf \"#!/bin/sh\\necho {output}\\n\" > {name}.sh && chmod +x {name}.sh")
end
function package()
  zcp("{name}.sh", "${{pkgstore}}/bin/{name}")
end
"##,
            name = self.name,
            tier = self.tier,
            version = self.version,
            signing = self.signing,
            platform = host_platform(),
            output = self.output(),
        )
    }

    /// Its `packages.json` (v2) entry, as Zoidberg writes them.
    pub fn index_entry(&self) -> serde_json::Value {
        serde_json::json!({
            "repo": self.tier,
            "repo_type": "official",
            "version": self.version,
            "epoch": 0,
            "revision": "1",
            "description": format!("A test tool built by the real zoi ({:?} signature)", self.signing),
            "scope": "user",
            "sub_packages": [],
            "main_sub_packages": [],
            "vuln": [],
            "dependencies": null
        })
    }
}

/// The host's platform in Zoi's spelling (`linux-amd64`, `linux-arm64`).
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => panic!("unsupported arch {a}"),
    };
    format!("linux-{arch}")
}

/// The `delta` list entry for a binary host at `http_base`: Zoi expands
/// `{version}` to the version upgraded *to*, and `zoi package delta` writes
/// `<new archive>.zdelta` (+ `.hash`, `.size`, `.sig`) next to the new
/// archive.
pub fn delta_link(http_base: &str) -> serde_yaml::Value {
    let base = format!(
        "{http_base}/{PROJECT}/{{id}}/{{version}}/{{name}}-{{version}}-{{platform}}.zpa.zdelta"
    );
    serde_yaml::from_str(&format!(
        "type: main\nurl: {base}\nhash: {base}.hash\nsize: {base}.size\npgp: {base}.sig\n"
    ))
    .unwrap()
}

/// The artifacts made once per test process.
pub struct Built {
    /// `zoi-mirror-upstream-<pid>` in the temp dir (removed by the next
    /// process once this one is gone).
    pub dir: PathBuf,
    /// A GnuPG home with the upstream secret key (owned by the test process).
    pub gnupghome: PathBuf,
    pub key_fpr: String,
    /// The armoured public key.
    pub key_asc: Vec<u8>,
    /// What `zoi package build/bundle/delta` wrote, untouched:
    /// `raw/<name>-<version>/…`, `raw/zsa/…` (with the gpg-made `.sig`) and
    /// `raw/zsa-zoi-signed/…` (Zoi's own, unverifiable `.sig`).
    pub raw: PathBuf,
    /// The binary host's tree, keys included (copied per upstream).
    pub served: PathBuf,
    /// A clone of the bundle with the package commit (cloned per upstream).
    pub registry: PathBuf,
    /// How long the one-time build took.
    pub seconds: f64,
}

/// Builds everything once per test process (needs the real zoi).
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(build_once)
}

/// Removes the build dirs of test processes that are gone.
fn remove_stale_builds() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("zoi-mirror-upstream-")
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        if !alive {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from)
        .into_iter()
        .filter_map(Result::ok)
    {
        let dst = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            fs::create_dir_all(&dst).unwrap();
        } else if e.file_type().is_file() {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// Git with a fixed identity, signing commits with `fpr` from `gnupghome`.
fn git_signed(cwd: &Path, gnupghome: &Path, fpr: &str, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", &format!("user.signingkey={fpr}")])
        .args(["-c", "commit.gpgsign=true", "-c", "gpg.program=gpg"])
        .args(args)
        .current_dir(cwd)
        .env("GIT_AUTHOR_NAME", "Upstream Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@upstream.example")
        .env("GIT_COMMITTER_NAME", "Upstream Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@upstream.example")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", cwd)
        .env("GNUPGHOME", gnupghome)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        cwd.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether the `.zpa` at `path` holds an entry named `name`.
pub fn zpa_has_entry(path: &Path, name: &str) -> bool {
    let f = fs::File::open(path).unwrap();
    let mut ar = tar::Archive::new(zstd::stream::read::Decoder::new(f).unwrap());
    ar.entries().unwrap().filter_map(Result::ok).any(|e| {
        e.path()
            .map(|p| p.to_string_lossy() == name)
            .unwrap_or(false)
    })
}

fn build_once() -> Built {
    let t0 = Instant::now();
    remove_stale_builds();
    let dir = std::env::temp_dir().join(format!("zoi-mirror-upstream-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let platform = host_platform();

    let gnupghome = gpg::new_home(&dir.join("gnupg"));
    let key_fpr = gpg::add_key(&gnupghome, "Upstream Main <upstream-main@upstream.example>");
    let key_asc = gpg::export(&gnupghome, &key_fpr);

    // --- the archives, by the real zoi as the unprivileged user
    let sb = Sandbox::new();
    let ugpg = sb.path().join("gnupg");
    gpg::copy_home(&gnupghome, &ugpg);
    give(&ugpg);
    let src = sb.path().join("src");
    let out = sb.path().join("out");
    for p in PACKAGES {
        let d = src.join(format!("{}-{}", p.name, p.version));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("{}.pkg.lua", p.name)), p.pkg_lua()).unwrap();
        fs::create_dir_all(out.join(format!("{}-{}", p.name, p.version))).unwrap();
    }
    fs::create_dir_all(out.join("zsa")).unwrap();
    give(&src);
    give(&out);
    let lua = |p: &Package| {
        src.join(format!("{}-{}/{}.pkg.lua", p.name, p.version, p.name))
            .display()
            .to_string()
    };
    let outdir = |p: &Package| out.join(format!("{}-{}", p.name, p.version));
    let g = format!("GNUPGHOME={}", ugpg.display());
    let zoi = |what: &str, line: String| {
        let r = sb.sh(&format!("{g} {line}"));
        assert_eq!(
            r.code, 0,
            "{what} failed\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
    };
    for p in &PACKAGES {
        let mode = match p.signing {
            Signing::Detached => "file",
            Signing::Embedded => "embed",
        };
        zoi(
            "zoi package build",
            format!(
                "zoi package build {} -o {} --sign {key_fpr} --sign-mode {mode}",
                lua(p),
                outdir(p).display()
            ),
        );
    }
    // `zoi package build` runs prepare() in the package's folder (it leaves
    // `<name>.sh` and `.zoi-prepared` there) and `bundle` takes every file
    // of that folder: bundle from a clean copy of the `.pkg.lua`.
    let clean = src.join("zsa");
    fs::create_dir_all(&clean).unwrap();
    let clean_lua = clean.join(format!("{}.pkg.lua", SOURCE_BUNDLE.name));
    fs::write(&clean_lua, SOURCE_BUNDLE.pkg_lua()).unwrap();
    fs::create_dir_all(out.join("zsa-zoi-signed")).unwrap();
    give(&src);
    give(&out);
    // Zoi 1.29.4's `bundle --sign-mode file` signs the `.zsa` before its
    // zstd frame is finished: that `.sig` never verifies (kept in
    // `raw/zsa-zoi-signed/` as evidence). The served `.sig` is made by the
    // very gpg command Zoi runs, on the finished file.
    zoi(
        "zoi package bundle --sign",
        format!(
            "zoi package bundle {} -o {} --sign {key_fpr} --sign-mode file",
            clean_lua.display(),
            out.join("zsa-zoi-signed").display()
        ),
    );
    zoi(
        "zoi package bundle",
        format!(
            "zoi package bundle {} -o {}",
            clean_lua.display(),
            out.join("zsa").display()
        ),
    );
    let zsa_out = out.join("zsa").join(SOURCE_BUNDLE.zsa_name());
    zoi(
        "gpg --detach-sign",
        format!(
            "gpg --batch --no-tty --yes --detach-sign --local-user {key_fpr} --output {}.sig {}",
            zsa_out.display(),
            zsa_out.display()
        ),
    );
    let (from, to) = DELTA;
    zoi(
        "zoi package delta",
        format!(
            "zoi package delta {} {} --sign {key_fpr}",
            outdir(&from).join(from.file_name(&platform)).display(),
            outdir(&to).join(to.file_name(&platform)).display()
        ),
    );
    sb.sh(&format!("{g} gpgconf --kill all"));
    let raw = dir.join("raw");
    copy_tree(&out, &raw);

    // --- check what zoi wrote is what this fixture promises
    for p in &PACKAGES {
        let d = raw.join(format!("{}-{}", p.name, p.version));
        let file = p.file_name(&platform);
        for ext in ["", ".hash", ".size", ".files"] {
            assert!(
                d.join(format!("{file}{ext}")).is_file(),
                "zoi package build wrote no {file}{ext}"
            );
        }
        let has_sig = d.join(format!("{file}.sig")).is_file();
        let embedded = zpa_has_entry(&d.join(&file), "manifest.sig");
        assert_eq!(
            (has_sig, embedded),
            (
                p.signing == Signing::Detached,
                p.signing == Signing::Embedded
            ),
            "{file}: (.sig, manifest.sig)"
        );
    }
    let zsa = raw.join("zsa").join(SOURCE_BUNDLE.zsa_name());
    assert!(
        zsa.is_file()
            && raw
                .join("zsa")
                .join(format!("{}.sig", SOURCE_BUNDLE.zsa_name()))
                .is_file()
    );
    let zdelta = outdir(&to).join(format!("{}.zdelta", to.file_name(&platform)));
    let zdelta = raw.join(zdelta.strip_prefix(&out).unwrap());
    for ext in ["", ".hash", ".size", ".sig"] {
        let p = PathBuf::from(format!("{}{ext}", zdelta.display()));
        assert!(p.is_file(), "zoi package delta wrote no {}", p.display());
    }

    // --- the binary host's tree
    let served = dir.join("served");
    for p in &PACKAGES {
        let d = served.join(p.rel_dir());
        fs::create_dir_all(&d).unwrap();
        copy_tree(&raw.join(format!("{}-{}", p.name, p.version)), &d);
    }
    copy_tree(&raw.join("zsa"), &served.join(SOURCE_BUNDLE.rel_dir()));
    fs::create_dir_all(served.join("keys")).unwrap();
    fs::write(served.join(format!("keys/{KEY_NAME}.asc")), &key_asc).unwrap();

    // --- the registry: upstream's history plus the packages
    let registry = dir.join("registry");
    let bundle = super::fixtures().join("zoidberg/zoidberg.git.bundle");
    let out = Command::new("git")
        .args(["clone", "-q", "-b", BRANCH])
        .arg(&bundle)
        .arg(&registry)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git clone {}: {}",
        bundle.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut entries = String::new();
    for p in PACKAGES.iter().filter(|p| p.indexed) {
        let d = registry.join(p.tier).join(p.name);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("{}.pkg.lua", p.name)), p.pkg_lua()).unwrap();
        entries.push_str(&index_entry_text(p));
    }
    let idx = registry.join("packages.json");
    let mut text = fs::read_to_string(&idx).unwrap();
    insert_index_entries(&mut text, &entries);
    let v: serde_json::Value = serde_json::from_str(&text).expect("packages.json stays JSON");
    for p in PACKAGES.iter().filter(|p| p.indexed) {
        assert_eq!(v["packages"][p.query()]["version"], p.version);
    }
    fs::write(&idx, text).unwrap();
    git_signed(&registry, &gnupghome, &key_fpr, &["add", "-A"]);
    let names: Vec<String> = PACKAGES
        .iter()
        .filter(|p| p.indexed)
        .map(|p| p.query())
        .collect();
    git_signed(
        &registry,
        &gnupghome,
        &key_fpr,
        &[
            "commit",
            "-q",
            "-m",
            &format!("PKGS: add {}", names.join(", ")),
        ],
    );
    gpg::kill_agent(&gnupghome);
    drop(sb);

    let seconds = t0.elapsed().as_secs_f64();
    eprintln!("upstream: built once in {seconds:.1}s ({})", dir.display());
    Built {
        dir,
        gnupghome,
        key_fpr,
        key_asc,
        raw,
        served,
        registry,
        seconds,
    }
}

/// A package's `packages.json` entry as this fixture writes it into
/// upstream's file: `\n    "@tier/name": {…},` (upstream's indentation).
fn index_entry_text(p: &Package) -> String {
    let entry = serde_json::to_string_pretty(&p.index_entry())
        .unwrap()
        .replace('\n', "\n    ");
    format!("\n    \"{}\": {entry},", p.query())
}

/// Inserts entries at the top of `packages`, keeping upstream's bytes.
fn insert_index_entries(text: &mut String, entries: &str) {
    let anchor = "\"packages\": {";
    let at = text.find(anchor).expect("packages.json has \"packages\"") + anchor.len();
    text.insert_str(at, entries);
}

/// Upstream's `repo.yaml` pointed at this machine (see the module doc).
pub fn render_repo_yaml(upstream: &str, git_url: &str, http_base: &str) -> String {
    let mut doc: serde_yaml::Mapping = serde_yaml::from_str(upstream).unwrap();
    let ours = format!("{http_base}/{PROJECT}");
    let mut out = serde_yaml::Mapping::new();
    for (k, v) in doc.iter_mut() {
        let key = k.as_str().unwrap_or_default().to_string();
        match key.as_str() {
            "git" => {
                let links: serde_yaml::Value =
                    serde_yaml::from_str(&format!("- type: main\n  url: {git_url}\n")).unwrap();
                out.insert(k.clone(), links);
            }
            "pkg" => {
                let text = serde_yaml::to_string(v)
                    .unwrap()
                    .replace(ZOIDBERG_PKG_BASE, &ours);
                out.insert(k.clone(), serde_yaml::from_str(&text).unwrap());
                out.insert(
                    "delta".into(),
                    serde_yaml::Value::Sequence(vec![delta_link(http_base)]),
                );
            }
            "pgp" => {
                let keys: serde_yaml::Value = serde_yaml::from_str(&format!(
                    "- name: {KEY_NAME}\n  key: {http_base}/keys/{KEY_NAME}.asc\n"
                ))
                .unwrap();
                out.insert(k.clone(), keys);
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    let text = serde_yaml::to_string(&out).unwrap();
    assert!(
        !text.contains("gitlab.com") && !text.contains("github.com"),
        "nothing of repo.yaml may point off this machine:\n{text}"
    );
    text
}

/// One running upstream (see the module doc). Dropping it stops its servers
/// and gpg-agent and removes its files.
pub struct Upstream {
    // servers first: fields drop in order, before the files go
    nginx: Option<Nginx>,
    gitd: GitDaemon,
    http_port: u16,
    last_log: String,
    /// The nginx root: the binary host's tree (`PROJECT/…`, `keys/…`).
    pub root: PathBuf,
    /// The work clone (origin = [`Upstream::bare`], branch `main`).
    pub work: PathBuf,
    /// The bare repo the git daemon serves.
    pub bare: PathBuf,
    /// A GnuPG home with the upstream secret key (and any [`Upstream::add_key`]).
    pub gnupghome: PathBuf,
    pub key_name: String,
    /// The upstream key's fingerprint (40 upper-case hex).
    pub key_fpr: String,
    /// The commit upstream's own history ends at (5ea5a0a…).
    pub zoidberg_head: String,
    pub dir: tempfile::TempDir,
}

impl Upstream {
    /// A fresh upstream of its own (the archives are built on first use in
    /// the process; later starts only copy).
    pub fn start() -> Upstream {
        Upstream::start_with_http("")
    }

    /// The same, with `extra` nginx directives in the binary host's
    /// `server` block (e.g. a `limit_rate` or a `return 500` location).
    pub fn start_with_http(extra: &str) -> Upstream {
        let b = built();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        copy_tree(&b.served, &root);
        let gnupghome = dir.path().join("gnupg");
        gpg::copy_home(&b.gnupghome, &gnupghome);
        let nginx = Nginx::start_with(&root, extra);

        let git_base = dir.path().join("git");
        fs::create_dir_all(&git_base).unwrap();
        let bare = git_base.join(REPO);
        let fpr = &b.key_fpr;
        git_signed(
            dir.path(),
            &gnupghome,
            fpr,
            &[
                "clone",
                "-q",
                "--bare",
                b.registry.to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
        git_signed(&bare, &gnupghome, fpr, &["remote", "remove", "origin"]);
        git_signed(
            &bare,
            &gnupghome,
            fpr,
            &["symbolic-ref", "HEAD", &format!("refs/heads/{BRANCH}")],
        );
        let gitd = GitDaemon::start(&git_base);
        let work = dir.path().join("work");
        git_signed(
            dir.path(),
            &gnupghome,
            fpr,
            &[
                "clone",
                "-q",
                bare.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        );
        let zoidberg_head = git_signed(&work, &gnupghome, fpr, &["rev-parse", "HEAD~1"]);

        let up = Upstream {
            http_port: nginx.port,
            nginx: Some(nginx),
            gitd,
            last_log: String::new(),
            root,
            work,
            bare,
            gnupghome,
            key_name: KEY_NAME.to_string(),
            key_fpr: fpr.clone(),
            zoidberg_head,
            dir,
        };
        let text = fs::read_to_string(up.work.join("repo.yaml")).unwrap();
        let text = render_repo_yaml(&text, &up.git_url(), &up.http_base());
        fs::write(up.work.join("repo.yaml"), text).unwrap();
        up.commit_and_push("repo.yaml: serve from loopback");
        up
    }

    /// `git://127.0.0.1:PORT/zoidberg.git`.
    pub fn git_url(&self) -> String {
        self.gitd.url(REPO)
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn http_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Where `repo.yaml` `pgp` says upstream's key is.
    pub fn key_url(&self) -> String {
        format!("{}/keys/{}.asc", self.http_base(), self.key_name)
    }

    /// The armoured upstream public key (as served).
    pub fn key_asc(&self) -> Vec<u8> {
        built().key_asc.clone()
    }

    /// Every archive served (see [`PACKAGES`]).
    pub fn packages(&self) -> &'static [Package] {
        &PACKAGES
    }

    /// The indexed version of package `name`.
    pub fn package(&self, name: &str) -> &'static Package {
        PACKAGES
            .iter()
            .find(|p| p.name == name && p.indexed)
            .unwrap_or_else(|| panic!("no indexed package {name}"))
    }

    /// The served `.zpa` of `pkg` for `platform` (only the host platform is
    /// built; another platform's path does not exist).
    pub fn archive_path(&self, pkg: &Package, platform: &str) -> PathBuf {
        self.root.join(pkg.rel_dir()).join(pkg.file_name(platform))
    }

    /// The URL Zoi builds for that archive from `repo.yaml`'s `main` link.
    pub fn archive_url(&self, pkg: &Package, platform: &str) -> String {
        format!(
            "{}/{}/{}",
            self.http_base(),
            pkg.rel_dir(),
            pkg.file_name(platform)
        )
    }

    /// The served `.zsa` ([`SOURCE_BUNDLE`]).
    pub fn zsa_path(&self) -> PathBuf {
        self.root
            .join(SOURCE_BUNDLE.rel_dir())
            .join(SOURCE_BUNDLE.zsa_name())
    }

    /// The served `.zdelta` ([`DELTA`], for the host platform).
    pub fn zdelta_path(&self) -> PathBuf {
        let to = DELTA.1;
        self.root
            .join(to.rel_dir())
            .join(format!("{}.zdelta", to.file_name(&host_platform())))
    }

    /// The URL of a file under [`Upstream::root`].
    pub fn url_of(&self, path: &Path) -> String {
        format!(
            "{}/{}",
            self.http_base(),
            path.strip_prefix(&self.root).unwrap().display()
        )
    }

    /// `repo.yaml` as last pushed.
    pub fn repo_yaml(&self) -> String {
        fs::read_to_string(self.repo_yaml_path()).unwrap()
    }

    /// The work clone's `repo.yaml` (e.g. for a spec's `upstream_repo_yaml`).
    pub fn repo_yaml_path(&self) -> PathBuf {
        self.work.join("repo.yaml")
    }

    /// The bare repo's `main` commit.
    pub fn head(&self) -> String {
        self.git(&self.bare, &["rev-parse", BRANCH])
    }

    /// Git in `cwd` with upstream's identity and signing key.
    pub fn git(&self, cwd: &Path, args: &[&str]) -> String {
        git_signed(cwd, &self.gnupghome, &self.key_fpr, args)
    }

    /// Commits everything in the work clone (signed with the upstream key)
    /// and pushes `main`; returns the new commit.
    pub fn commit_and_push(&self, msg: &str) -> String {
        self.commit_and_push_signed_by(msg, &self.key_fpr)
    }

    /// The same, signed with another key of [`Upstream::gnupghome`].
    pub fn commit_and_push_signed_by(&self, msg: &str, fpr: &str) -> String {
        let g = |args: &[&str]| git_signed(&self.work, &self.gnupghome, fpr, args);
        g(&["add", "-A"]);
        g(&["commit", "-q", "--allow-empty", "-m", msg]);
        g(&["push", "-q", "origin", BRANCH]);
        g(&["rev-parse", "HEAD"])
    }

    /// Edits `repo.yaml` as YAML, then commits and pushes.
    pub fn edit_repo_yaml(&self, msg: &str, f: impl FnOnce(&mut serde_yaml::Mapping)) -> String {
        let mut doc: serde_yaml::Mapping = serde_yaml::from_str(&self.repo_yaml()).unwrap();
        f(&mut doc);
        fs::write(self.repo_yaml_path(), serde_yaml::to_string(&doc).unwrap()).unwrap();
        self.commit_and_push(msg)
    }

    /// Adds a tier to `repo.yaml` `repos` (commit + push).
    pub fn add_tier(&self, name: &str, kind: &str, active: bool) -> String {
        let entry: serde_yaml::Value =
            serde_yaml::from_str(&format!("name: {name}\ntype: {kind}\nactive: {active}\n"))
                .unwrap();
        self.edit_repo_yaml(&format!("repo.yaml: add tier {name}"), |doc| {
            doc.get_mut("repos")
                .and_then(|r| r.as_sequence_mut())
                .expect("repos")
                .push(entry);
        })
    }

    /// Makes a new throw-away key in [`Upstream::gnupghome`], serves it at
    /// `keys/<name>.asc` and lists it in `repo.yaml` `pgp` (commit + push,
    /// signed with the upstream key). Returns its fingerprint.
    pub fn add_key(&self, name: &str) -> String {
        let fpr = gpg::add_key(
            &self.gnupghome,
            &format!("{name} <{name}@upstream.example>"),
        );
        let asc = gpg::export(&self.gnupghome, &fpr);
        self.publish_key(name, &asc);
        fpr
    }

    /// Serves an armoured key at `keys/<name>.asc` and lists it in
    /// `repo.yaml` `pgp` (commit + push). Returns its URL.
    pub fn publish_key(&self, name: &str, armored: &[u8]) -> String {
        fs::create_dir_all(self.root.join("keys")).unwrap();
        fs::write(self.root.join(format!("keys/{name}.asc")), armored).unwrap();
        let url = format!("{}/keys/{name}.asc", self.http_base());
        let entry: serde_yaml::Value =
            serde_yaml::from_str(&format!("name: {name}\nkey: {url}\n")).unwrap();
        self.edit_repo_yaml(&format!("repo.yaml: add key {name}"), |doc| {
            doc.entry("pgp".into())
                .or_insert_with(|| serde_yaml::Value::Sequence(vec![]))
                .as_sequence_mut()
                .expect("pgp is a list")
                .push(entry);
        });
        url
    }

    /// Makes the registry carry `pkg`'s version (its `.pkg.lua` and its
    /// `packages.json` entry), e.g. `PACKAGES[0]` to go back to `sigtool`
    /// 1.0.0 and then [`Upstream::package`] to "release" 1.1.0
    /// (commit + push).
    pub fn publish(&self, pkg: &Package) -> String {
        let d = self.work.join(pkg.tier).join(pkg.name);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("{}.pkg.lua", pkg.name)), pkg.pkg_lua()).unwrap();
        let idx = self.work.join("packages.json");
        let mut text = fs::read_to_string(&idx).unwrap();
        let entry = |p: &Package| index_entry_text(p);
        let old = PACKAGES
            .iter()
            .filter(|p| p.tier == pkg.tier && p.name == pkg.name)
            .map(entry)
            .find(|e| text.contains(e.as_str()));
        match old {
            Some(old) => text = text.replacen(&old, &entry(pkg), 1),
            None => insert_index_entries(&mut text, &entry(pkg)),
        }
        fs::write(&idx, text).unwrap();
        self.commit_and_push(&format!("PKGS({}): {} {}", pkg.tier, pkg.name, pkg.version))
    }

    /// Stops nginx (by its process group): the binary host is gone, the
    /// port refuses connections. The git daemon keeps running.
    pub fn stop_http(&mut self) {
        if let Some(n) = self.nginx.take() {
            self.last_log = n.access_log();
        }
    }

    /// Whether nginx is still running.
    pub fn http_running(&self) -> bool {
        self.nginx.is_some()
    }

    /// nginx's access log so far, one request a line (kept after
    /// [`Upstream::stop_http`]).
    pub fn access_log(&self) -> Vec<String> {
        let text = match &self.nginx {
            Some(n) => n.access_log(),
            None => self.last_log.clone(),
        };
        text.lines().map(str::to_string).collect()
    }

    /// The access log lines whose request path contains `needle`.
    pub fn requests_for(&self, needle: &str) -> Vec<String> {
        self.access_log()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        gpg::kill_agent(&self.gnupghome);
    }
}
