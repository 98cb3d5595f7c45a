//! The binary host on S3-compatible object storage (issue 17), against a
//! real store: SeaweedFS (`weed mini`, support/seaweed.rs) on loopback,
//! never a mock. Upstream is real nginx — the faithful upstream
//! (support/upstream.rs: the real Zoidberg history, archives the real zoi
//! built and signed) where signatures and the real client matter, a small
//! tree of archives where only bytes do — and the fault server for the
//! cut and truncated downloads a real server will not produce on cue.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::archives::simple_zpa;
use crate::support::company::{sync_args, target};
use crate::support::faults::{Fault, FaultServer};
use crate::support::gitd::{GitDaemon, empty_bare};
use crate::support::gpg;
use crate::support::net::free_port;
use crate::support::nginx::Nginx;
use crate::support::seaweed::{ACCESS_KEY, SECRET_KEY, Seaweed};
use crate::support::upstream::{KEY_NAME, Package, Upstream, host_platform};
use crate::support::zoienv::Sandbox;
use crate::support::{self, Run, Spec};

fn zm_s3(home: &Path, sw: &Seaweed, args: &[&str]) -> Run {
    support::run(support::cmd(home).envs(sw.env()).args(args))
}

#[track_caller]
fn assert_no_secret(r: &Run) {
    for s in [SECRET_KEY, "wrong-secret-value-1234"] {
        assert!(
            !r.stdout.contains(s) && !r.stderr.contains(s),
            "a credential was printed:\n{}\n{}",
            r.stdout,
            r.stderr
        );
    }
}

// ---------------------------------------------------------------- the
// faithful upstream, a company registry, SeaweedFS as the binary host

struct Company {
    sb: Sandbox,
    sw: Seaweed,
    gitd: GitDaemon,
    gnupg: PathBuf,
    fpr: String,
    work: PathBuf,
}

impl Company {
    fn new() -> Company {
        let sb = Sandbox::new();
        let root = sb.path().to_path_buf();
        let gnupg = gpg::new_home(&root.join("company-gnupg"));
        let fpr = gpg::add_key(&gnupg, "ACME Registry <registry@acme.example>");
        let git_root = root.join("git");
        fs::create_dir_all(&git_root).unwrap();
        empty_bare(&git_root.join("mirror.git"));
        let gitd = GitDaemon::start(&git_root);
        Company {
            work: root.join("db-work"),
            sw: Seaweed::start(),
            sb,
            gitd,
            gnupg,
            fpr,
        }
    }

    /// Where clients read the bucket (anonymously).
    fn base(&self) -> String {
        format!("{}/zoi", self.sw.endpoint())
    }

    /// The company's spec (as in trust.rs) with the bucket as the binary
    /// host: clients read keys from the bucket's `pkgs/keys/`.
    fn spec(&self, up: &Upstream) -> PathBuf {
        self.spec_with(up, |s| s)
    }

    /// [`Company::spec`], then `more` on the builder.
    fn spec_with(&self, up: &Upstream, more: impl FnOnce(Spec) -> Spec) -> PathBuf {
        let base = self.base();
        let spec = support::spec::company(
            &self.gitd.url("mirror.git"),
            &up.git_url(),
            &self.fpr,
            &base,
        )
        .set("binaries.storage.url", "s3://zoi/pkgs")
        .remove("client.pgp")
        .push(
            "client.pgp",
            &[
                ("name", "acme-registry"),
                ("url", &format!("{base}/pkgs/keys/acme-registry.asc")),
            ],
        );
        more(spec).write(self.sb.path())
    }

    fn zm<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        support::run(
            support::cmd(self.sb.path())
                .envs(self.sw.env())
                .env("GNUPGHOME", &self.gnupg)
                .args(args),
        )
    }

    fn db_sync(&self, spec: &Path) -> Run {
        self.zm(&sync_args(&["db", "sync"], spec, &self.work, None, &[]))
    }

    /// `bin sync` with no --dest: `[binaries.storage] url` names the bucket.
    fn bin_sync(&self, spec: &Path, extra: &[&str]) -> Run {
        let r = self.zm(&sync_args(&["bin", "sync"], spec, &self.work, None, extra));
        assert_no_secret(&r);
        r
    }

    /// The object key of an archive (the spec's default layout).
    fn archive_key(&self, p: &Package) -> String {
        let (os, arch) = host_platform()
            .split_once('-')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap();
        format!(
            "pkgs/{}/{os}/{arch}/{}/{}",
            p.tier,
            p.version,
            p.file_name(&host_platform())
        )
    }
}

#[test]
fn s3_bin_sync_streams_into_seaweedfs_and_the_real_zoi_installs_from_it() {
    let mut up = Upstream::start();
    let co = Company::new();
    let spec = co.spec(&up);
    let r = co.db_sync(&spec);
    assert_eq!(r.code, 0, "db sync: {}", r.stderr);

    // 1. keys, archives, source bundle, delta: streamed into the bucket,
    // every signature verified on the way
    let r = co.bin_sync(&spec, &[]);
    assert_eq!(r.code, 0, "bin sync: {}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    assert_eq!(doc["keys"][0]["name"], KEY_NAME);
    assert_eq!(doc["keys"][0]["status"], "placed");
    assert_eq!(
        co.sw.get("zoi", &format!("pkgs/keys/{KEY_NAME}.asc")),
        Some(up.key_asc())
    );
    let sigtool = up.package("sigtool");
    let embedtool = up.package("embedtool");
    assert_eq!(target(&doc, "sigtool", "archive")["signature"], "detached");
    assert_eq!(
        target(&doc, "embedtool", "archive")["signature"],
        "embedded"
    );
    assert_eq!(target(&doc, "sigtool", "source")["status"], "downloaded");
    assert_eq!(target(&doc, "sigtool", "delta")["status"], "downloaded");
    assert_eq!(target(&doc, "sigtool", "delta")["signature"], "detached");
    for p in [sigtool, embedtool] {
        let key = co.archive_key(p);
        let upstream_file = up.archive_path(p, &host_platform());
        assert_eq!(
            co.sw.get("zoi", &key).unwrap(),
            fs::read(&upstream_file).unwrap(),
            "{key}"
        );
        for ext in ["hash", "size", "files"] {
            assert_eq!(
                co.sw.get("zoi", &format!("{key}.{ext}")).unwrap(),
                fs::read(format!("{}.{ext}", upstream_file.display())).unwrap(),
                "{key}.{ext} byte for byte as upstream's"
            );
        }
    }
    // nothing staged on local disk: no archive anywhere in the sandbox but
    // upstream's own
    let local_archives: Vec<_> = walk(co.sb.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "zpa" || e == "part"))
        .collect();
    assert!(local_archives.is_empty(), "{local_archives:?}");

    // 2. the result indexes clean
    let r = co.zm(&["index", "--check", "s3://zoi/pkgs", "--format", "json"]);
    assert_eq!(r.code, 0, "index --check: {}\n{}", r.stdout, r.stderr);
    let idx = r.json();
    assert!(idx["totals"]["ok"].as_u64().unwrap() >= 2, "{idx}");
    assert_eq!(idx["totals"]["mismatch"], 0);
    assert_eq!(idx["totals"]["orphans"], 0);

    // 3. a second sync uploads nothing: every object keeps its ETag
    let before = co.sw.list("zoi");
    let r = co.bin_sync(&spec, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let doc2 = r.json();
    assert_eq!(doc2["totals"]["downloaded"], 0, "{doc2}");
    assert!(doc2["totals"]["up_to_date"].as_u64().unwrap() >= 4);
    assert_eq!(co.sw.list("zoi"), before, "nothing rewritten");

    // 4. anonymous GET with Range, as Zoi resumes
    let key = co.archive_key(sigtool);
    let whole = co.sw.get("zoi", &key).unwrap();
    let (code, part) = co.sw.get_range("zoi", &key, "10-99");
    assert_eq!(code, 206);
    assert_eq!(part, whole[10..100]);

    // 5. publish the bundle and the company key to the same bucket
    let out = co.sb.path().join("dist");
    let r = co.zm(&[
        "build",
        "-c",
        spec.to_str().unwrap(),
        "--work",
        co.work.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "build: {}", r.stderr);
    let bundle = out.join("acme-mirror-1.0.0");
    publish_company_key(&co);
    let r = co.zm(&[
        "publish",
        bundle.to_str().unwrap(),
        "--to",
        "s3://zoi/bundle/acme-mirror-1.0.0",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "publish bundle: {}\n{}", r.stdout, r.stderr);
    assert_no_secret(&r);
    let pubdoc = r.json();
    let files = pubdoc["files"].as_array().unwrap();
    assert_eq!(
        files.last().unwrap()["path"],
        "bundle.json",
        "bundle.json last"
    );
    assert_eq!(
        co.sw
            .get("zoi", "bundle/acme-mirror-1.0.0/repo.yaml")
            .unwrap(),
        fs::read(bundle.join("repo.yaml")).unwrap()
    );
    let mirrored = fs::read_to_string(bundle.join("repo.yaml")).unwrap();
    assert!(
        mirrored.contains(&format!("{}/pkgs", co.base())),
        "pkg links on the S3 endpoint:\n{mirrored}"
    );

    // 6. upstream's binary host goes away; the real zoi installs from the
    // bucket, anonymously, with the bundle applied from the bucket too
    up.stop_http();
    let sb = &co.sb;
    let r = sb.sh(&format!(
        "zoi-mirror apply {}/bundle/acme-mirror-1.0.0",
        co.base()
    ));
    assert_eq!(r.code, 0, "apply from the bucket");
    assert_eq!(sb.sh("zoi sync").code, 0, "zoi sync");
    for p in [sigtool, embedtool] {
        let r = sb.sh(&format!("zoi install -y {}", p.query()));
        assert_eq!(r.code, 0, "zoi install {} ({:?})", p.query(), p.signing);
        assert_eq!(
            sb.sh(&format!("$HOME/.local/bin/{}", p.name)).stdout.trim(),
            p.output()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    walkdir_all(dir)
        .into_iter()
        .filter(|p| !p.starts_with(dir.join("upstream")))
        .collect()
}

fn walkdir_all(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn s3_a_tampered_archive_fails_its_streamed_signature_check_and_leaves_no_object() {
    let up = Upstream::start();
    let co = Company::new();
    let spec = co.spec(&up);
    assert_eq!(co.db_sync(&spec).code, 0);
    // another valid archive in sigtool's place, .hash and .size fixed to
    // match: only the signature tells
    let p = up.package("sigtool");
    let zpa = up.archive_path(p, &host_platform());
    let bytes = fs::read(up.archive_path(&crate::support::upstream::PACKAGES[0], &host_platform()))
        .unwrap();
    fs::write(&zpa, &bytes).unwrap();
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
        format!("down: {}\n{install}\n", bytes.len()),
    )
    .unwrap();
    let r = co.bin_sync(&spec, &["--package", "sigtool"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    let t = target(&doc, "sigtool", "archive");
    assert_eq!(t["status"], "failed");
    assert_eq!(t["error"]["kind"], "signature", "{t}");
    let key = co.archive_key(p);
    let left: Vec<String> = co
        .sw
        .keys("zoi")
        .into_iter()
        .filter(|k| {
            *k == key
                || ["hash", "size", "files", "sig"]
                    .iter()
                    .any(|e| **k == format!("{key}.{e}"))
        })
        .collect();
    assert!(left.is_empty(), "no object, no sidecar: {left:?}");
}

// ---------------------------------------------------------------- a small
// upstream of plain archives on nginx

const PLATFORM: &str = "linux-amd64";

struct Small {
    home: tempfile::TempDir,
    _srv: Nginx,
    spec: PathBuf,
    generic: PathBuf,
}

fn index_json(dir: &Path, pkgs: &[(&str, &str)]) -> PathBuf {
    let mut m = serde_json::Map::new();
    for (name, version) in pkgs {
        m.insert(
            format!("@core/{name}"),
            serde_json::json!({"repo": "core", "repo_type": "official", "version": version, "epoch": 0, "revision": "1",
                "description": "t", "sub_packages": [], "main_sub_packages": [], "vuln": [], "dependencies": null}),
        );
    }
    let p = dir.join(format!("packages-{}.json", pkgs.len()));
    fs::write(
        &p,
        serde_json::to_vec(&serde_json::json!({"version": "2", "packages": m})).unwrap(),
    )
    .unwrap();
    p
}

/// An unsigned upstream serving `{id}/{version}/NAME-VERSION-PLATFORM.zpa`
/// under `base` (with `.hash`/`.size`/`.files` as `index` writes them).
fn spec_for(dir: &Path, upstream_base: &str, bin_url: &str) -> PathBuf {
    let yaml = dir.join("upstream-repo.yaml");
    fs::write(
        &yaml,
        format!(
            "name: Up\ndescription: d\nrepos:\n- name: core\n  type: official\n  active: true\npkg:\n- type: main\n  url: \"{upstream_base}/{{id}}/{{version}}\"\n"
        ),
    )
    .unwrap();
    Spec::minimal()
        .inline(
            "extension.maintainer",
            &[("name", "IT"), ("email", "it@acme.example")],
        )
        .set("registry.upstream_repo_yaml", yaml.display().to_string())
        .set("binaries.url", bin_url)
        .list("binaries.platforms", [PLATFORM])
        .write(dir)
}

fn small_upstream(sw: &Seaweed, pkgs: &[(&str, &str)]) -> Small {
    let home = tempfile::tempdir().unwrap();
    let www = home.path().join("www");
    let generic = www.join("generic");
    for (name, version) in pkgs {
        let dir = generic.join(format!("core.{name}")).join(version);
        fs::create_dir_all(&dir).unwrap();
        let (bytes, _) = simple_zpa(name, format!("{name}{version}").as_bytes());
        fs::write(dir.join(format!("{name}-{version}-{PLATFORM}.zpa")), bytes).unwrap();
    }
    support::zm(home.path(), &["index", generic.to_str().unwrap()]).ok();
    let srv = Nginx::start(&www);
    let spec = spec_for(
        home.path(),
        srv.url("generic").trim_end_matches('/'),
        &format!("{}/zoi/pkgs", sw.endpoint()),
    );
    Small {
        home,
        _srv: srv,
        spec,
        generic,
    }
}

fn sync_to(
    home: &Path,
    sw: &Seaweed,
    spec: &Path,
    index: &Path,
    dest: &str,
    extra: &[&str],
) -> Run {
    let mut args = vec![
        "bin",
        "sync",
        "-c",
        spec.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "--dest",
        dest,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let r = zm_s3(home, sw, &args);
    assert_no_secret(&r);
    r
}

fn key_of(name: &str, version: &str) -> String {
    format!("pkgs/core/linux/amd64/{version}/{name}-{version}-{PLATFORM}.zpa")
}

/// Incompressible bytes (xorshift), so the archive stays large.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn s3_a_cut_download_resumes_a_truncated_or_mismatching_one_leaves_no_object() {
    let sw = Seaweed::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // 12 MiB archives: bigger than one upload part, so these are multipart
    // uploads that must be completed or aborted.
    let mut routes: Vec<(String, Fault)> = Vec::new();
    let mut bodies = Vec::new();
    for (i, name) in ["cutonce", "truncated", "mismatch", "refused"]
        .iter()
        .enumerate()
    {
        let (bytes, _) = simple_zpa(name, &noise(12 << 20, 7 + i as u64));
        let file = format!("{name}-1.0.0-{PLATFORM}.zpa");
        let base = format!("/generic/core.{name}/1.0.0/{file}");
        let hashed = if *name == "mismatch" {
            support::sha512_hex(b"something else")
        } else {
            support::sha512_hex(&bytes)
        };
        routes.push((
            format!("{base}.hash"),
            Fault::Ok(format!("{hashed}  {file}\n").into_bytes(), vec![]),
        ));
        routes.push((
            format!("{base}.size"),
            Fault::Ok(
                format!("down: {}\ninstall: 1\n", bytes.len()).into_bytes(),
                vec![],
            ),
        ));
        routes.push((format!("{base}.sig"), Fault::Ok(b"sig".to_vec(), vec![])));
        routes.push((
            format!("{base}.files"),
            Fault::Ok(format!("${{pkgstore}}/bin/{name}").into_bytes(), vec![]),
        ));
        let f = match *name {
            "cutonce" => Fault::CutOnceThenRange(bytes.clone()),
            "truncated" => Fault::Truncate(bytes.clone()),
            // The same answer every time: asked once, not retried.
            "refused" => Fault::Status("400 Bad Request", b"no".to_vec()),
            _ => Fault::Ok(bytes.clone(), vec![]),
        };
        routes.push((base, f));
        bodies.push((name.to_string(), bytes));
    }
    let srv = FaultServer::start(
        routes
            .iter()
            .map(|(p, f)| (p.as_str(), f.clone()))
            .collect(),
    );
    let spec = spec_for(
        h,
        &srv.url("http", "/generic"),
        &format!("{}/zoi/pkgs", sw.endpoint()),
    );
    let index = index_json(
        h,
        &[
            ("cutonce", "1.0.0"),
            ("truncated", "1.0.0"),
            ("mismatch", "1.0.0"),
            ("refused", "1.0.0"),
        ],
    );
    let r = sync_to(h, &sw, &spec, &index, "s3://zoi/pkgs", &["--retries", "2"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    let t = target(&doc, "cutonce", "archive");
    assert_eq!(t["status"], "downloaded", "{t}");
    assert_eq!(t["resumed"], true, "{t}");
    assert_eq!(
        sw.get("zoi", &key_of("cutonce", "1.0.0")).unwrap(),
        bodies[0].1,
        "resumed into the same upload, complete"
    );
    let t = target(&doc, "truncated", "archive");
    assert_eq!(t["status"], "failed", "{t}");
    let t = target(&doc, "mismatch", "archive");
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error"]["kind"], "hash_mismatch", "{t}");
    let t = target(&doc, "refused", "archive");
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error"]["kind"], "http_error", "{t}");
    assert_eq!(
        srv.hits(&format!(
            "/generic/core.refused/1.0.0/refused-1.0.0-{PLATFORM}.zpa"
        )),
        1,
        "a 400 is asked once"
    );
    let keys = sw.keys("zoi");
    for name in ["truncated", "mismatch", "refused"] {
        let left: Vec<&String> = keys.iter().filter(|k| k.contains(name)).collect();
        assert!(left.is_empty(), "{name}: nothing visible: {left:?}");
    }
    assert!(keys.contains(&format!("{}.hash", key_of("cutonce", "1.0.0"))));
}

#[test]
fn s3_two_concurrent_syncs_of_overlapping_sets_end_consistent() {
    let sw = Seaweed::start();
    let names: Vec<(String, String)> = (1..=6)
        .map(|i| (format!("pkg{i}"), "1.0.0".to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = names
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let u = small_upstream(&sw, &refs);
    let h = u.home.path();
    let index = index_json(h, &refs);
    let spawn = |pkgs: &[&str]| {
        let mut args = vec![
            "bin".to_string(),
            "sync".into(),
            "-c".into(),
            u.spec.display().to_string(),
            "--index".into(),
            index.display().to_string(),
            "--dest".into(),
            "s3://zoi/pkgs".into(),
            "--format".into(),
            "json".into(),
        ];
        for p in pkgs {
            args.push("--package".into());
            args.push((*p).into());
        }
        support::cmd(h)
            .envs(sw.env())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(&["pkg1", "pkg2", "pkg3", "pkg4"]);
    let b = spawn(&["pkg3", "pkg4", "pkg5", "pkg6"]);
    let ra = Run::of(a.wait_with_output().unwrap());
    let rb = Run::of(b.wait_with_output().unwrap());
    assert_eq!(ra.code, 0, "{}\n{}", ra.stdout, ra.stderr);
    assert_eq!(rb.code, 0, "{}\n{}", rb.stdout, rb.stderr);
    for r in [&ra, &rb] {
        for t in r.json()["targets"].as_array().unwrap() {
            assert!(
                t["status"] == "downloaded" || t["status"] == "up_to_date",
                "{t}"
            );
        }
    }
    // every archive is upstream's, with its metadata, and indexes clean
    for (name, version) in &refs {
        let key = key_of(name, version);
        let upstream_file = u
            .generic
            .join(format!("core.{name}"))
            .join(version)
            .join(format!("{name}-{version}-{PLATFORM}.zpa"));
        assert_eq!(
            sw.get("zoi", &key).unwrap(),
            fs::read(&upstream_file).unwrap()
        );
        assert_eq!(
            sw.get("zoi", &format!("{key}.hash")).unwrap(),
            fs::read(format!("{}.hash", upstream_file.display())).unwrap()
        );
    }
    let r = zm_s3(
        h,
        &sw,
        &["index", "--check", "s3://zoi/pkgs", "--format", "json"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["totals"]["ok"], 6);
}

#[test]
fn s3_shards_fill_one_bucket_together_and_prune_removes_old_versions() {
    let sw = Seaweed::start();
    let pkgs = [
        ("alpha", "1.0.0"),
        ("bravo", "2.0.0"),
        ("charlie", "3.0.0"),
        ("delta", "4.0.0"),
        ("echo", "5.0.0"),
    ];
    let u = small_upstream(&sw, &pkgs);
    let h = u.home.path();
    let index = index_json(h, &pkgs);
    let mut mine: Vec<Vec<String>> = Vec::new();
    for shard in ["1/2", "2/2"] {
        let r = sync_to(
            h,
            &sw,
            &u.spec,
            &index,
            "s3://zoi/pkgs",
            &["--shard", shard],
        );
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        mine.push(
            r.json()["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["package"].as_str().unwrap().to_string())
                .collect(),
        );
    }
    assert!(mine.iter().all(|m| !m.is_empty()), "{mine:?}");
    assert!(
        mine[0].iter().all(|p| !mine[1].contains(p)),
        "disjoint: {mine:?}"
    );
    assert_eq!(mine[0].len() + mine[1].len(), pkgs.len());
    for (name, version) in pkgs {
        assert!(sw.get("zoi", &key_of(name, version)).is_some());
    }

    // an older version left in the bucket is pruned, with its metadata
    let old = key_of("alpha", "0.9.0");
    sw.put("zoi", &old, b"old");
    sw.put("zoi", &format!("{old}.hash"), b"x");
    let r = sync_to(h, &sw, &u.spec, &index, "s3://zoi/pkgs", &["--prune"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    assert_eq!(doc["totals"]["downloaded"], 0);
    assert_eq!(doc["pruned"][0]["path"], old.trim_start_matches("pkgs/"));
    let keys = sw.keys("zoi");
    assert!(!keys.iter().any(|k| k.starts_with(&old)), "{keys:?}");
    assert!(keys.contains(&key_of("alpha", "1.0.0")));
}

/// Upstream re-publishes an archive (new bytes, a new `.hash`) without the
/// `.sig` it had: the bucket's old `.sig` goes, before the new `.hash` is
/// written, rather than stay beside bytes it does not sign.
#[test]
fn s3_a_redownloaded_archive_keeps_no_sidecar_upstream_no_longer_has() {
    let sw = Seaweed::start();
    let pkgs = [("alpha", "1.0.0")];
    let u = small_upstream(&sw, &pkgs);
    let h = u.home.path();
    let index = index_json(h, &pkgs);
    let remote = u
        .generic
        .join(format!("core.alpha/1.0.0/alpha-1.0.0-{PLATFORM}.zpa"));
    let remote_sig = format!("{}.sig", remote.display());
    fs::write(&remote_sig, b"-----BEGIN PGP SIGNATURE-----\nold\n").unwrap();
    let r = sync_to(h, &sw, &u.spec, &index, "s3://zoi/pkgs", &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let key = key_of("alpha", "1.0.0");
    assert!(sw.get("zoi", &format!("{key}.sig")).is_some());

    let (bytes, _) = simple_zpa("alpha", b"rebuilt, unsigned");
    fs::write(&remote, &bytes).unwrap();
    fs::remove_file(&remote_sig).unwrap();
    support::zm(h, &["index", "--force", u.generic.to_str().unwrap()]).ok();
    let r = sync_to(h, &sw, &u.spec, &index, "s3://zoi/pkgs", &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["totals"]["downloaded"], 1);
    assert_eq!(sw.get("zoi", &key).unwrap(), bytes);
    let keys = sw.keys("zoi");
    assert!(
        !keys.contains(&format!("{key}.sig")),
        "the old .sig was left beside the new bytes: {keys:?}"
    );
    assert_eq!(
        sw.get("zoi", &format!("{key}.hash")).unwrap(),
        fs::read(format!("{}.hash", remote.display())).unwrap()
    );
}

/// `--prune` on the bucket's listing, with a flat layout where `foo` and
/// `foo-bar` share a folder: a run selecting `foo` alone removes foo's old
/// version and none of foo-bar's (which the name alone would read as foo
/// at `bar-…`).
#[test]
fn s3_prune_over_some_packages_leaves_another_packages_archives_alone() {
    let sw = Seaweed::start();
    let pkgs = [("foo", "2.0.0"), ("foo-bar", "1.0.0")];
    let u = small_upstream(&sw, &pkgs);
    let h = u.home.path();
    Spec::parse(&fs::read_to_string(&u.spec).unwrap())
        .set("binaries.layout", "{repo}/{os}/{arch}")
        .write_to(&u.spec);
    let index = index_json(h, &pkgs);
    let key = |name: &str, v: &str| format!("pkgs/core/linux/amd64/{name}-{v}-{PLATFORM}.zpa");
    let r = sync_to(h, &sw, &u.spec, &index, "s3://zoi/pkgs", &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(sw.get("zoi", &key("foo-bar", "1.0.0")).is_some());
    for (name, v) in [("foo", "1.0.0"), ("foo-bar", "0.9.0")] {
        sw.put("zoi", &key(name, v), b"old");
        sw.put("zoi", &format!("{}.hash", key(name, v)), b"x");
    }

    let r = sync_to(
        h,
        &sw,
        &u.spec,
        &index,
        "s3://zoi/pkgs",
        &["--package", "foo", "--prune"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    let pruned: Vec<&str> = doc["pruned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(pruned, ["core/linux/amd64/foo-1.0.0-linux-amd64.zpa"]);
    let keys = sw.keys("zoi");
    assert!(!keys.contains(&key("foo", "1.0.0")), "{keys:?}");
    for (name, v) in [("foo", "2.0.0"), ("foo-bar", "1.0.0"), ("foo-bar", "0.9.0")] {
        assert!(keys.contains(&key(name, v)), "{name} {v} kept: {keys:?}");
        assert!(
            keys.contains(&format!("{}.hash", key(name, v))),
            "{name} {v}'s .hash kept: {keys:?}"
        );
    }
}

/// Upstream for the upload paths: `bigone` (12 MiB: a multipart upload)
/// and `small` (4 KiB: one PUT), of noise seeded with `seed`, indexed and
/// served by nginx; the spec points the binary host at the bucket.
#[allow(clippy::type_complexity)]
fn big_and_small(
    h: &Path,
    sw: &Seaweed,
    seed: u64,
) -> ([(&'static str, usize); 2], PathBuf, Nginx, PathBuf, PathBuf) {
    let generic = h.join("www/generic");
    let pkgs = [("bigone", 12usize << 20), ("small", 4 << 10)];
    for (i, (name, len)) in pkgs.iter().enumerate() {
        let dir = generic.join(format!("core.{name}")).join("1.0.0");
        fs::create_dir_all(&dir).unwrap();
        let (bytes, _) = simple_zpa(name, &noise(*len, seed + i as u64));
        fs::write(dir.join(format!("{name}-1.0.0-{PLATFORM}.zpa")), bytes).unwrap();
    }
    support::zm(h, &["index", generic.to_str().unwrap()]).ok();
    let srv = Nginx::start(&h.join("www"));
    let spec = spec_for(
        h,
        srv.url("generic").trim_end_matches('/'),
        &format!("{}/zoi/pkgs", sw.endpoint()),
    );
    let index = index_json(h, &[("bigone", "1.0.0"), ("small", "1.0.0")]);
    (pkgs, generic, srv, spec, index)
}

/// Over loopback (every other test here) the payload's SHA-256 is left out
/// of the signature; over plain http to another host it is signed. That
/// path, forced with `AWS_UNSIGNED_PAYLOAD=false`, writes the same objects:
/// a one-PUT archive and a multipart one, each part signed.
#[test]
fn s3_a_signed_payload_uploads_single_and_multipart_archives_alike() {
    let sw = Seaweed::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (pkgs, generic, _srv, spec, index) = big_and_small(h, &sw, 70);
    let r = support::run(
        support::cmd(h)
            .envs(sw.env())
            .env("AWS_UNSIGNED_PAYLOAD", "false")
            .args(["bin", "sync", "-c", spec.to_str().unwrap()])
            .args(["--index", index.to_str().unwrap()])
            .args(["--dest", "s3://zoi/pkgs", "--format", "json"]),
    );
    assert_no_secret(&r);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["totals"]["downloaded"], 2, "{}", r.stdout);
    for (name, _) in pkgs {
        let key = key_of(name, "1.0.0");
        let upstream = fs::read(
            generic
                .join(format!("core.{name}/1.0.0"))
                .join(format!("{name}-1.0.0-{PLATFORM}.zpa")),
        )
        .unwrap();
        assert_eq!(sw.get("zoi", &key).unwrap(), upstream, "{name}");
    }
    let r = zm_s3(h, &sw, &["index", "--check", "s3://zoi/pkgs"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

#[test]
fn s3_index_writes_metadata_next_to_archives_in_the_bucket_and_skips_fresh_ones() {
    let sw = Seaweed::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (bytes, _) = simple_zpa("tool", b"payload of tool");
    let key = "pkgs/core/linux/amd64/1.0.0/tool-1.0.0-linux-amd64.zpa";
    sw.put("zoi", key, &bytes);
    // the same archive on disk, indexed by the folder backend, is the
    // reference
    let dir = h.join("tree");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("tool-1.0.0-linux-amd64.zpa"), &bytes).unwrap();
    support::zm(h, &["index", dir.to_str().unwrap()]).ok();

    let r = zm_s3(h, &sw, &["index", "s3://zoi/pkgs", "--format", "json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["totals"]["written"], 1);
    for ext in ["hash", "size", "files"] {
        assert_eq!(
            sw.get("zoi", &format!("{key}.{ext}")).unwrap(),
            fs::read(dir.join(format!("tool-1.0.0-linux-amd64.zpa.{ext}"))).unwrap(),
            ".{ext} as the folder index writes it"
        );
    }
    let r = zm_s3(h, &sw, &["index", "s3://zoi/pkgs", "--format", "json"]);
    assert_eq!(r.json()["totals"]["unchanged"], 1, "{}", r.stdout);
    assert_eq!(r.json()["totals"]["bytes_read"], 0);
    let r = zm_s3(h, &sw, &["index", "--check", "s3://zoi/pkgs"]);
    assert_eq!(r.code, 0, "{}", r.stdout);

    // replaced archive: no longer fresh (its ETag changed), and --check
    // says so
    let (other, _) = simple_zpa("tool", b"another payload");
    sw.put("zoi", key, &other);
    let r = zm_s3(
        h,
        &sw,
        &["index", "--check", "s3://zoi/pkgs", "--format", "json"],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.json()["totals"]["mismatch"], 1);
    let r = zm_s3(h, &sw, &["index", "s3://zoi/pkgs", "--format", "json"]);
    assert_eq!(r.json()["totals"]["written"], 1, "{}", r.stdout);
    // an orphan is reported
    sw.put("zoi", "pkgs/gone-1.0.0-linux-amd64.zpa.hash", b"x");
    let r = zm_s3(
        h,
        &sw,
        &["index", "--check", "s3://zoi/pkgs", "--format", "json"],
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["orphans"][0], "gone-1.0.0-linux-amd64.zpa.hash");
}

#[test]
fn s3_bad_inputs_are_clear_errors_and_nothing_is_written() {
    let sw = Seaweed::start();
    let u = small_upstream(&sw, &[("alpha", "1.0.0")]);
    let h = u.home.path();
    let index = index_json(h, &[("alpha", "1.0.0")]);
    let human = || {
        let mut c = support::cmd(h);
        c.envs(sw.env()).args([
            "bin",
            "sync",
            "-c",
            u.spec.to_str().unwrap(),
            "--index",
            index.to_str().unwrap(),
        ]);
        c
    };
    let base = || {
        let mut c = human();
        c.args(["--format", "json"]);
        c
    };
    let expect = |mut c: Command, kind: &str, code: i32| {
        let r = support::run(&mut c);
        assert_no_secret(&r);
        assert_eq!(r.code, code, "{kind}: {}\n{}", r.stdout, r.stderr);
        let doc = r.json();
        assert_eq!(doc["error"]["kind"], kind, "{doc}");
        assert_eq!(doc["error"]["exit_code"], code);
        assert!(!doc["error"]["hint"].as_str().unwrap_or_default().is_empty());
        doc
    };

    // wrong credentials
    let mut c = base();
    c.args(["--dest", "s3://zoi/pkgs"])
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-1234");
    expect(c, "storage_denied", 3);
    // missing bucket
    let mut c = base();
    c.args(["--dest", "s3://no-such-bucket/pkgs"]);
    expect(c, "storage_bucket_missing", 2);
    // endpoint down
    let mut c = base();
    c.args(["--dest", "s3://zoi/pkgs"]).env(
        "AWS_ENDPOINT_URL",
        format!("http://127.0.0.1:{}", free_port()),
    );
    expect(c, "storage_unreachable", 3);
    // a bucket Zoi clients cannot read
    let mut c = base();
    c.args(["--dest", "s3://private/pkgs"]);
    let doc = expect(c, "storage_not_public", 2);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"),
        "{doc}"
    );
    // no credentials at all
    let mut c = base();
    c.args(["--dest", "s3://zoi/pkgs"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    expect(c, "storage_no_credentials", 2);
    // the human output names the kind too, and never the secret
    let mut c = human();
    c.args(["--dest", "s3://zoi/pkgs"])
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-1234");
    let r = support::run(&mut c);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("store refused"), "{}", r.stderr);
    assert_no_secret(&r);

    assert!(
        sw.keys("zoi").is_empty(),
        "nothing half-written: {:?}",
        sw.keys("zoi")
    );
    assert!(sw.keys("private").is_empty());

    // index and publish say the same
    let r = support::run(
        support::cmd(h)
            .envs(sw.env())
            .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-1234")
            .args(["index", "s3://zoi/pkgs", "--format", "json"]),
    );
    assert_no_secret(&r);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert_eq!(r.json()["error"]["kind"], "storage_denied");
    let r = zm_s3(
        h,
        &sw,
        &[
            "publish",
            h.to_str().unwrap(),
            "--to",
            "s3://private/b",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_eq!(r.json()["error"]["kind"], "storage_not_public");
    assert!(sw.keys("private").is_empty());
}

#[test]
fn s3_check_hints_name_the_s3_failure_shapes() {
    let sw = Seaweed::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // a repo.yaml whose pkg links point at a private bucket and at a
    // missing key of the public one
    for (bucket, expect) in [("private", "public-read"), ("zoi", "NoSuchKey")] {
        let yaml = h.join(format!("repo-{bucket}.yaml"));
        fs::write(
            &yaml,
            format!(
                "name: acme\ndescription: d\npkg:\n- type: main\n  url: \"{}/{bucket}/pkgs/{{repo}}/{{os}}/{{arch}}/{{version}}\"\n",
                sw.endpoint()
            ),
        )
        .unwrap();
        let r = support::zm(
            h,
            &[
                "check",
                "--repo-yaml",
                yaml.to_str().unwrap(),
                "--package",
                "@core/tool@1.0.0",
                "--platform",
                "linux-amd64",
                "--format",
                "json",
            ],
        );
        assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains(expect),
            "{bucket}: the hint names {expect}:\n{}",
            r.stdout
        );
    }
    let _ = ACCESS_KEY;
}

#[test]
fn s3_credentials_and_endpoint_come_from_an_aws_profile_too() {
    let sw = Seaweed::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    fs::create_dir_all(h.join(".aws")).unwrap();
    fs::write(
        h.join(".aws/credentials"),
        format!("[default]\naws_access_key_id = nope\n\n[ci]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"),
    )
    .unwrap();
    fs::write(
        h.join(".aws/config"),
        format!(
            "[profile ci]\nregion = us-east-1\nendpoint_url = {}\n",
            sw.endpoint()
        ),
    )
    .unwrap();
    let (bytes, _) = simple_zpa("tool", b"from a profile");
    sw.put("zoi", "p/tool-1.0.0-linux-amd64.zpa", &bytes);
    let r = support::run(
        support::cmd(h)
            .env("AWS_PROFILE", "ci")
            .env("AWS_ALLOW_HTTP", "true")
            .args(["index", "s3://zoi/p", "--format", "json"]),
    );
    assert_no_secret(&r);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["totals"]["written"], 1);
    assert!(sw.get("zoi", "p/tool-1.0.0-linux-amd64.zpa.hash").is_some());
}

#[test]
fn s3_a_storage_table_that_names_no_bucket_is_a_spec_error() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let spec = spec_for(
        h,
        "http://127.0.0.1:9/generic",
        "http://127.0.0.1:9/zoi/pkgs",
    );
    let mut text = fs::read_to_string(&spec).unwrap();
    text.push_str("[binaries.storage]\nurl = \"/srv/pkgs\"\nendpoint = \"ftp://x\"\nbogus = 1\n");
    fs::write(&spec, text).unwrap();
    let index = index_json(h, &[("alpha", "1.0.0")]);
    let r = support::zm(
        h,
        &[
            "bin",
            "sync",
            "-c",
            spec.to_str().unwrap(),
            "--index",
            index.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    let doc = r.json();
    assert_eq!(doc["error"]["kind"], "spec_invalid");
    let msgs: Vec<String> = doc["error"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        msgs.iter().any(|m| m.contains("s3://BUCKET/PREFIX")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("storage endpoint")),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("bogus")), "{msgs:?}");
}

// ------------------------------------------------------- build --publish

#[test]
fn s3_build_publish_puts_the_bundle_in_the_bucket_and_apply_reads_it_from_there() {
    let sw = Seaweed::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let spec = support::example_spec();
    let build = |extra: &[&str]| {
        let mut args = vec![
            "build",
            "-c",
            spec.to_str().unwrap(),
            "-o",
            "dist",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let r = zm_s3(h, &sw, &args);
        assert_no_secret(&r);
        r
    };
    let prefix = "s3://zoi/bundle/acme-mirror-1.2.0";
    let bundle = h.join("dist/acme-mirror-1.2.0");

    // --check writes nothing, so it cannot publish: a usage error
    let r = build(&["--check", "--publish", prefix]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["error"]["kind"], "usage");
    assert!(sw.keys("zoi").is_empty());

    // wrong credentials / endpoint down: publish's kinds and exit codes,
    // the local bundle still written (and the message says so), nothing in
    // the bucket
    for (var, value, kind) in [
        (
            "AWS_SECRET_ACCESS_KEY",
            "wrong-secret-value-1234".to_string(),
            "storage_denied",
        ),
        (
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", free_port()),
            "storage_unreachable",
        ),
    ] {
        let _ = fs::remove_dir_all(h.join("dist"));
        let r = support::run(
            support::cmd(h)
                .envs(sw.env())
                .env(var, &value)
                .args(["build", "-c", spec.to_str().unwrap(), "-o", "dist"])
                .args(["--publish", prefix, "--format", "json"]),
        );
        assert_no_secret(&r);
        assert_eq!(r.code, 3, "{kind}: {}\n{}", r.stdout, r.stderr);
        let err = &r.json()["error"];
        assert_eq!(err["kind"], kind, "{err}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("the bundle was written to dist/acme-mirror-1.2.0"),
            "{err}"
        );
        assert!(!err["hint"].as_str().unwrap_or_default().is_empty());
        assert!(
            bundle.join("bundle.json").is_file(),
            "{kind}: bundle on disk"
        );
        assert!(sw.keys("zoi").is_empty(), "{kind}: {:?}", sw.keys("zoi"));
    }

    // the real thing: every file in the bucket, bundle.json last, byte for
    // byte as on disk, readable anonymously
    let r = build(&["--publish", prefix]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    let published = &doc["published"];
    assert_eq!(published["to"], prefix);
    let files = published["files"].as_array().unwrap();
    assert_eq!(files.last().unwrap()["path"], "bundle.json", "{published}");
    assert_eq!(published["totals"]["written"], files.len());
    for name in [
        "bundle.json",
        "setup.sh",
        "acme-mirror.pkg.lua",
        "repo.yaml",
    ] {
        assert_eq!(
            sw.get("zoi", &format!("bundle/acme-mirror-1.2.0/{name}")),
            Some(fs::read(bundle.join(name)).unwrap()),
            "{name}: anonymous GET gives the built bytes"
        );
    }
    // a second build publishes nothing new
    let r = build(&["--publish", prefix]);
    assert_eq!(r.code, 0);
    assert_eq!(r.json()["published"]["totals"]["written"], 0);

    // apply reads the bundle from the bucket, pinned by bundle.json's hash
    let url = sw.url("zoi", "bundle/acme-mirror-1.2.0/");
    let pin = support::sha512_file(&bundle.join("bundle.json"));
    let r = support::run(support::cmd(h).args([
        "apply", &url, "--sha512", &pin, "--no-zoi", "--format", "json",
    ]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["changed"], true);
    let c: support::zoi_types::Config =
        serde_yaml::from_slice(&fs::read(h.join(".config/zoi/config.yaml")).unwrap()).unwrap();
    assert_eq!(
        c.default_registry.unwrap().url,
        "https://git.acme.example/zoi/zoidberg.git"
    );

    // a folder works the same way (a web root: other files stay)
    let root = h.join("www");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("index.html"), "hi").unwrap();
    let r = build(&["--publish", root.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        fs::read(root.join("bundle.json")).unwrap(),
        fs::read(bundle.join("bundle.json")).unwrap()
    );
    assert!(root.join("setup.sh").is_file() && root.join("index.html").is_file());
}

/// `build --publish` takes the network flags `publish` takes: the
/// public-read check of a bucket served over HTTPS by a private CA (real
/// nginx with a test CA's certificate) fails without `--ca-cert` and passes
/// with it, as for `zoi-mirror publish`.
#[test]
fn s3_build_publish_honours_ca_cert_for_the_public_read_check() {
    let sw = Seaweed::start();
    let ca = crate::support::faults::test_ca();
    let www = tempfile::tempdir().unwrap();
    let public = Nginx::start_tls(www.path(), &ca);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let spec = Spec::example()
        .set("binaries.storage.public_url", public.url("zoi"))
        .write(h);
    let ca_file = h.join("corp-ca.pem");
    fs::write(&ca_file, &ca.ca_pem).unwrap();
    let prefix = "s3://zoi/bundle/acme-mirror-1.2.0";
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "-c", spec.to_str().unwrap(), "-o", "dist"];
        args.extend_from_slice(&["--publish", prefix, "--format", "json"]);
        args.extend_from_slice(extra);
        zm_s3(h, &sw, &args)
    };
    // Without the CA the TLS handshake fails: nothing in the bucket, the
    // bundle itself written.
    let r = build(&[]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let err = &r.json()["error"];
    assert_eq!(err["kind"], "storage_unreachable", "{err}");
    assert!(sw.keys("zoi").is_empty(), "{:?}", sw.keys("zoi"));
    assert!(h.join("dist/acme-mirror-1.2.0/bundle.json").is_file());
    let r = build(&["--ca-cert", ca_file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let published = &r.json()["published"];
    assert_eq!(
        published["public_url"],
        public.url("zoi/bundle/acme-mirror-1.2.0")
    );
    assert!(
        sw.keys("zoi")
            .contains(&"bundle/acme-mirror-1.2.0/bundle.json".to_string()),
        "{:?}",
        sw.keys("zoi")
    );
    assert!(
        public
            .access_log()
            .contains("GET /zoi/bundle/acme-mirror-1.2.0/.zoi-mirror-public-read-probe"),
        "the check went to the public URL over TLS:\n{}",
        public.access_log()
    );
}

// ------------------------------------------------------ re-signing into S3

#[test]
fn s3_resigning_streams_through_gpg_and_a_client_trusting_only_the_company_key_installs() {
    let mut up = Upstream::start();
    let co = Company::new();
    let spec = co.spec_with(&up, |s| {
        s.list("binaries.trust", ["acme-registry"])
            .set("binaries.sign_key", co.fpr.as_str())
    });
    let r = co.db_sync(&spec);
    assert_eq!(r.code, 0, "db sync: {}", r.stderr);

    let r = co.bin_sync(&spec, &[]);
    assert_eq!(r.code, 0, "bin sync: {}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    let sigtool = up.package("sigtool");
    let t = target(&doc, "sigtool", "archive");
    assert_eq!(t["signature"], "detached", "upstream's verified first");
    let metadata: Vec<(String, String)> = t["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m[0].as_str().unwrap().into(), m[1].as_str().unwrap().into()))
        .collect();
    let sig_at = metadata
        .iter()
        .position(|m| *m == ("sig".into(), "resigned".into()));
    let hash_at = metadata.iter().position(|m| m.0 == "hash");
    assert!(
        sig_at.is_some() && sig_at < hash_at && hash_at == Some(metadata.len() - 1),
        "the company .sig goes up before .hash, .hash last: {t}"
    );
    // the .sig in the bucket is the company key's signature of the archive
    // in the bucket
    let key = co.archive_key(sigtool);
    let dl = co.sb.path().join("downloaded");
    fs::create_dir_all(&dl).unwrap();
    let (zpa, sig) = (dl.join("a.zpa"), dl.join("a.zpa.sig"));
    fs::write(&zpa, co.sw.get("zoi", &key).unwrap()).unwrap();
    fs::write(&sig, co.sw.get("zoi", &format!("{key}.sig")).unwrap()).unwrap();
    assert_eq!(
        fs::read(&zpa).unwrap(),
        fs::read(up.archive_path(sigtool, &host_platform())).unwrap()
    );
    assert!(gpg::verifies(&co.gnupg, &sig, &zpa), "company signature");
    fs::remove_dir_all(&dl).unwrap();
    // an archive with an embedded manifest.sig is not re-signed, as for a
    // folder
    let e = target(&doc, "embedtool", "archive");
    assert_eq!(e["signature"], "embedded");
    assert!(
        e["warnings"][0]
            .as_str()
            .unwrap_or_default()
            .contains("embedded manifest.sig"),
        "{e}"
    );
    // nothing staged on local disk
    let local: Vec<_> = walk(co.sb.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "zpa" || e == "part"))
        .collect();
    assert!(local.is_empty(), "{local:?}");
    // a second run uploads nothing
    let before = co.sw.list("zoi");
    let r = co.bin_sync(&spec, &[]);
    assert_eq!(r.code, 0);
    assert_eq!(r.json()["totals"]["downloaded"], 0);
    assert_eq!(co.sw.list("zoi"), before);

    // the company key and the bundle in the same bucket (build --publish)
    publish_company_key(&co);
    let out = co.sb.path().join("dist");
    let r = co.zm(&[
        "build",
        "-c",
        spec.to_str().unwrap(),
        "--work",
        co.work.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--publish",
        "s3://zoi/bundle/acme-mirror-1.0.0",
    ]);
    assert_eq!(r.code, 0, "build --publish: {}\n{}", r.stdout, r.stderr);
    assert_no_secret(&r);

    // upstream's host gone; the real zoi, trusting only the company key,
    // installs the re-signed archive from the bucket; the embedded-signed
    // one fails in Zoi exactly as warned
    up.stop_http();
    let sb = &co.sb;
    let r = sb.sh(&format!(
        "zoi-mirror apply {}/bundle/acme-mirror-1.0.0",
        co.base()
    ));
    assert_eq!(r.code, 0, "apply from the bucket");
    assert_eq!(sb.sh("zoi sync").code, 0, "zoi sync");
    let r = sb.sh(&format!("zoi install -y {}", sigtool.query()));
    assert_eq!(r.code, 0, "re-signed archive installs");
    assert_eq!(
        sb.sh(&format!("$HOME/.local/bin/{}", sigtool.name))
            .stdout
            .trim(),
        sigtool.output()
    );
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

#[test]
fn s3_resigning_with_a_key_gpg_does_not_have_fails_and_leaves_no_object() {
    let up = Upstream::start();
    let co = Company::new();
    let spec = co.spec(&up);
    assert_eq!(co.db_sync(&spec).code, 0);
    let r = co.bin_sync(
        &spec,
        &[
            "--package",
            "sigtool",
            "--sign",
            "0000000000000000DEADBEEF00000000DEADBEEF",
        ],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let doc = r.json();
    let t = target(&doc, "sigtool", "archive");
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error"]["kind"], "signature", "{t}");
    assert!(
        t["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpg could not sign"),
        "{t}"
    );
    let left: Vec<String> = co
        .sw
        .keys("zoi")
        .into_iter()
        .filter(|k| k.contains("sigtool"))
        .collect();
    assert!(left.is_empty(), "nothing visible: {left:?}");
}

// ------------------------------------------------- conditional completion

/// A run that verified an archive and is about to make it visible loses to
/// a writer that placed the object meanwhile: the store refuses the
/// conditional write (`If-None-Match: *` on the single PUT of a small
/// archive and on the `CompleteMultipartUpload` of a large one), the run
/// reports it, and the other writer's object stays. The run is held just
/// before its write by the test hook (storage's `hold_for_test`), so the
/// race is decided here, not by timing.
#[test]
fn s3_a_verified_upload_never_overwrites_an_object_another_writer_placed_meanwhile() {
    let sw = Seaweed::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (pkgs, _generic, _srv, spec, index) = big_and_small(h, &sw, 40);
    let hold = h.join("hold");
    let ready = |name: &str| {
        hold.join(format!(
            "{}.ready",
            key_of(name, "1.0.0")
                .trim_start_matches("pkgs/")
                .replace('/', "_")
        ))
    };
    // Round 1: the objects are absent when the run looks (`If-None-Match:
    // *`); round 2: they are there, without our .hash, so the run replaces
    // the ETag it saw (`If-Match`), and they change once more meanwhile.
    for round in ["theirs", "theirs again"] {
        let _ = fs::remove_dir_all(&hold);
        fs::create_dir_all(&hold).unwrap();
        let child = support::cmd(h)
            .envs(sw.env())
            .env("ZOI_MIRROR_TEST_HOLD_FINISH", &hold)
            .args(["bin", "sync", "-c", spec.to_str().unwrap()])
            .args([
                "--index",
                index.to_str().unwrap(),
                "--dest",
                "s3://zoi/pkgs",
            ])
            .args(["--format", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !(ready("bigone").exists() && ready("small").exists()) {
            assert!(
                start.elapsed().as_secs() < 120,
                "the run never got to its writes"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // both verified, neither written yet: another writer places both
        // objects now
        for (name, _) in pkgs {
            let key = key_of(name, "1.0.0");
            assert_ne!(
                sw.get("zoi", &key),
                Some(format!("{round} {name}").into_bytes())
            );
            sw.put("zoi", &key, format!("{round} {name}").as_bytes());
        }
        fs::write(hold.join("go"), b"").unwrap();
        let r = Run::of(child.wait_with_output().unwrap());
        assert_no_secret(&r);
        assert_eq!(r.code, 0, "{round}: {}\n{}", r.stdout, r.stderr);
        let doc = r.json();
        for (name, _) in pkgs {
            let t = target(&doc, name, "archive");
            assert_eq!(t["status"], "up_to_date", "{round} {name}: {t}");
            assert!(
                t["warnings"][0]
                    .as_str()
                    .unwrap_or_default()
                    .contains("another run wrote this object meanwhile"),
                "{round} {name}: {t}"
            );
            assert_eq!(
                sw.get("zoi", &key_of(name, "1.0.0")).unwrap(),
                format!("{round} {name}").into_bytes(),
                "{round} {name}: the other writer's object stands"
            );
            assert!(
                sw.get("zoi", &format!("{}.hash", key_of(name, "1.0.0")))
                    .is_none(),
                "{round} {name}: no .hash of ours next to their object"
            );
        }
    }
    // without a rival, the next run replaces their objects with upstream's
    // (If-Match on the ETag it saw) and indexes clean
    let r = sync_to(h, &sw, &spec, &index, "s3://zoi/pkgs", &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["totals"]["downloaded"], 2);
    let r = zm_s3(
        h,
        &sw,
        &["index", "--check", "s3://zoi/pkgs", "--format", "json"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

/// Puts the company key at `keys/acme-registry.asc` in the bucket, with
/// `publish`, where the generated extension says clients fetch it.
fn publish_company_key(co: &Company) {
    let keys = co.sb.path().join("company-keys");
    fs::create_dir_all(keys.join("keys")).unwrap();
    fs::write(
        keys.join("keys/acme-registry.asc"),
        gpg::export(&co.gnupg, &co.fpr),
    )
    .unwrap();
    let r = co.zm(&["publish", keys.to_str().unwrap(), "--to", "s3://zoi/pkgs"]);
    assert_eq!(r.code, 0, "publish keys: {}\n{}", r.stdout, r.stderr);
}
