//! `index`: metadata byte-identical to what the real `zoi package build`
//! wrote, hand-computed expectations for archives built here (`sha512sum`,
//! byte counts), incremental runs, `--check`, every bad input, the layout
//! lint and orphans.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::support::archives::{self, E, manifest_value, sha512sum, simple_zpa, tar, zst};
use crate::support::cmd::ZmCmd;
use crate::support::{self, zm_cmd};

const META: [&str; 3] = ["hash", "size", "files"];

fn meta_path(archive: &Path, ext: &str) -> PathBuf {
    PathBuf::from(format!("{}.{ext}", archive.display()))
}

fn read_meta(archive: &Path, ext: &str) -> String {
    fs::read_to_string(meta_path(archive, ext))
        .unwrap_or_else(|e| panic!("{}.{ext}: {e}", archive.display()))
}

fn no_meta(archive: &Path) -> bool {
    META.iter().all(|ext| !meta_path(archive, ext).exists())
}

/// Writes `bytes` at `root/rel`, creating folders.
fn put(root: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, bytes).unwrap();
    p
}

/// `index ROOT --format json`; add flags and expectations, then `.run()`.
fn index(home: &Path, root: &Path) -> ZmCmd {
    zm_cmd(home)
        .arg("index")
        .arg(root)
        .args(["--format", "json"])
}

/// The JSON entry for archive `rel`.
fn entry<'a>(doc: &'a Value, rel: &str) -> &'a Value {
    doc["archives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == rel)
        .unwrap_or_else(|| panic!("no entry for {rel} in {doc:#}"))
}

fn status(doc: &Value, rel: &str) -> String {
    entry(doc, rel)["status"].as_str().unwrap().to_string()
}

fn mtime(p: &Path) -> SystemTime {
    fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn metadata_is_byte_identical_to_what_zoi_wrote() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("pkgs");
    let built = support::fixtures().join("zoi-built");
    let name = "tinytool-1.0.0-linux-amd64.zpa";
    let archive = put(
        &root,
        &format!("zillowe/linux/amd64/1.0.0/{name}"),
        &fs::read(built.join(name)).unwrap(),
    );
    let run = index(home.path(), &root).run();
    for ext in META {
        assert_eq!(
            fs::read(meta_path(&archive, ext)).unwrap(),
            fs::read(built.join(format!("{name}.{ext}"))).unwrap(),
            ".{ext} differs from the one zoi package build 1.29.4 wrote"
        );
    }
    let doc = run.json();
    let e = entry(&doc, &format!("zillowe/linux/amd64/1.0.0/{name}"));
    assert_eq!(e["status"], "written");
    assert_eq!(e["down"], 755);
    assert_eq!(e["install"], 2783);
    assert_eq!(e["files"], 3);
    // And the tree, as is, passes --check.
    index(home.path(), &root).args(["--check"]).run();
}

/// A `.zpa` with two sub-packages, three scopes, symlinks, directories with
/// and without a trailing `/`, and paths repeated across scopes.
fn rich_zpa() -> (Vec<u8>, u64, String) {
    let bin = b"#!/bin/sh\necho rich\n".as_slice();
    let doc = b"rich docs\n".as_slice();
    let (kb, kd) = (archives::pool_key(bin), archives::pool_key(doc));
    let manifest = serde_json::to_string_pretty(&serde_json::json!({
        "version": "2",
        "pool": {kb.clone(): {"size": bin.len()}, kd.clone(): {"size": doc.len()}},
        "mappings": {
            "": {"scopes": {
                "user": {
                    "files": [{"dest": "${pkgstore}/bin/rich", "hash": kb, "mode": 493, "owner": "u", "group": "g"}],
                    "symlinks": [{"link": "${usrhome}/.local/bin/rich", "target": "${pkgstore}/bin/rich"}],
                    "dirs": [{"path": "${pkgstore}/bin"}, {"path": "${pkgstore}/share/"}]
                },
                "system": {
                    "files": [{"dest": "${pkgstore}/bin/rich", "hash": kb, "mode": 493}],
                    "symlinks": [{"link": "${usrroot}/usr/local/bin/rich", "target": "${pkgstore}/bin/rich"}],
                    "dirs": [{"path": "${pkgstore}/bin", "mode": 493}]
                },
                "project": {"files": [{"dest": "${pkgstore}/bin/rich", "hash": kb, "mode": 493}]}
            }},
            "doc": {"scopes": {"user": {
                "files": [{"dest": "${pkgstore}/share/doc/README", "hash": kd, "mode": 420}],
                "some_future_field": true
            }}}
        },
        "some_future_field": {"x": 1}
    }))
    .unwrap();
    let lua = b"metadata({ name = \"rich\" })\n".as_slice();
    let sig = b"-----BEGIN PGP SIGNATURE-----\n".as_slice();
    let raw = tar(&[
        E::Dir("./"),
        E::Dir("pool"),
        E::File(&format!("pool/{kb}"), bin),
        E::File(&format!("pool/{kd}"), doc),
        E::File("rich.pkg.lua", lua),
        E::File("manifest.json", manifest.as_bytes()),
        E::File("manifest.sig", sig),
    ]);
    let install = (bin.len() + doc.len() + lua.len() + manifest.len() + sig.len()) as u64;
    // Byte order: '$' < letters; "bin/" < "bin/rich"; "usrhome" < "usrroot".
    let files = [
        "${pkgstore}/bin/",
        "${pkgstore}/bin/rich",
        "${pkgstore}/share/",
        "${pkgstore}/share/doc/README",
        "${usrhome}/.local/bin/rich",
        "${usrroot}/usr/local/bin/rich",
    ]
    .join("\n");
    (zst(&raw), install, files)
}

/// A legacy archive: main package and sub-package `doc`, all three roots.
fn legacy_archive() -> (Vec<u8>, u64, String) {
    let raw = tar(&[
        E::Dir("data"),
        E::Dir("data/pkgstore"),
        E::Dir("data/pkgstore/bin"),
        E::File("data/pkgstore/bin/old", b"#!/bin/sh\necho old\n"),
        E::Symlink("data/pkgstore/bin/old-alias", "old"),
        E::File("data/usrroot/etc/old.conf", b"k=v\n"),
        E::Dir("data/doc/usrhome/.old"),
        E::File("data/doc/usrhome/.old/README", b"docs\n"),
        E::File("old.pkg.lua", b"metadata({})\n"),
    ]);
    let install = (19 + 4 + 5 + 13) as u64;
    let files = [
        "${pkgstore}/bin/",
        "${pkgstore}/bin/old",
        "${pkgstore}/bin/old-alias",
        "${usrhome}/.old/",
        "${usrhome}/.old/README",
        "${usrroot}/etc/old.conf",
    ]
    .join("\n");
    (zst(&raw), install, files)
}

#[test]
fn built_archives_get_hand_computed_metadata() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("pkgs");
    let (zpa, zpa_install, zpa_files) = rich_zpa();
    let (legacy, legacy_install, legacy_files) = legacy_archive();
    let zpa_rel = "core/linux/amd64/2.0.0/rich-2.0.0-linux-amd64.zpa";
    let legacy_rel = "core/linux/amd64/0.9/old-0.9-linux-amd64.pkg.tar.zst";
    let zpa_path = put(&root, zpa_rel, &zpa);
    let legacy_path = put(&root, legacy_rel, &legacy);

    let doc = index(home.path(), &root).run().json();

    for (path, rel, install, files) in [
        (&zpa_path, zpa_rel, zpa_install, &zpa_files),
        (&legacy_path, legacy_rel, legacy_install, &legacy_files),
    ] {
        let name = path.file_name().unwrap().to_str().unwrap();
        let sha = sha512sum(path);
        let down = fs::metadata(path).unwrap().len();
        assert_eq!(read_meta(path, "hash"), format!("{sha}  {name}\n"), "{rel}");
        assert_eq!(
            read_meta(path, "size"),
            format!("down: {down}\ninstall: {install}\n"),
            "{rel}"
        );
        let listed = read_meta(path, "files");
        assert_eq!(&listed, files, "{rel}");
        assert!(
            !listed.ends_with('\n'),
            "{rel}: .files must not end in a newline"
        );

        let e = entry(&doc, rel);
        assert_eq!(e["status"], "written");
        assert_eq!(e["sha512"], sha.as_str());
        assert_eq!(e["down"], down);
        assert_eq!(e["install"], install);
        assert_eq!(e["files"], 6);
        assert!(e["error"].is_null());
    }
    assert_eq!(doc["totals"]["written"], 2);
    assert_eq!(doc["totals"]["archives"], 2);
    assert_eq!(
        doc["totals"]["bytes_read"],
        (zpa.len() + legacy.len()) as u64
    );
}

#[test]
fn metadata_files_are_readable_by_the_web_server() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("pkgs");
    let a = put(&root, "a-1-linux-amd64.zpa", &simple_zpa("a", b"1").0);
    index(home.path(), &root).run();
    for ext in META {
        let mode = fs::metadata(meta_path(&a, ext))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o044,
            0o044,
            ".{ext} is {mode:o}: nginx could not read it"
        );
    }
    // No temporary files left next to them.
    let names: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

#[test]
fn second_run_rewrites_nothing_and_a_touched_archive_alone_is_redone() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("pkgs");
    let rels = [
        "core/linux/amd64/1.0/a-1.0-linux-amd64.zpa",
        "core/linux/amd64/1.0/b-1.0-linux-amd64.zpa",
        "extra/macos/arm64/3/c-3-macos-arm64.zpa",
    ];
    let paths: Vec<PathBuf> = rels
        .iter()
        .enumerate()
        .map(|(i, rel)| {
            put(
                &root,
                rel,
                &simple_zpa("x", format!("payload {i}").as_bytes()).0,
            )
        })
        .collect();
    let first = index(home.path(), &root).run().json();
    assert!(rels.iter().all(|r| status(&first, r) == "written"));
    let stamps = |paths: &[PathBuf]| -> Vec<Vec<SystemTime>> {
        paths
            .iter()
            .map(|p| META.iter().map(|e| mtime(&meta_path(p, e))).collect())
            .collect()
    };
    let before = stamps(&paths);

    let second = index(home.path(), &root).run().json();
    assert!(
        rels.iter().all(|r| status(&second, r) == "unchanged"),
        "{second:#}"
    );
    assert_eq!(second["totals"]["bytes_read"], 0);
    assert_eq!(
        stamps(&paths),
        before,
        "an unchanged archive's metadata was rewritten"
    );
    // Unchanged entries still report what the metadata says.
    let b = entry(&second, rels[1]);
    assert_eq!(b["sha512"], sha512sum(&paths[1]).as_str());
    assert_eq!(b["down"], fs::metadata(&paths[1]).unwrap().len());

    // "touch" b: a newer mtime than its metadata (set explicitly, so the
    // test does not depend on the file system's timestamp granularity).
    let later = SystemTime::now() + Duration::from_secs(5);
    filetime::set_file_mtime(&paths[1], filetime::FileTime::from_system_time(later)).unwrap();
    let third = index(home.path(), &root).run().json();
    assert_eq!(status(&third, rels[0]), "unchanged");
    assert_eq!(status(&third, rels[1]), "written");
    assert_eq!(status(&third, rels[2]), "unchanged");
    let after = stamps(&paths);
    assert_eq!(after[0], before[0]);
    assert_eq!(after[2], before[2]);
    assert!(after[1].iter().zip(&before[1]).all(|(a, b)| a > b));

    // --force rewrites everything.
    let forced = index(home.path(), &root).args(["--force"]).run().json();
    assert!(rels.iter().all(|r| status(&forced, r) == "written"));
}

#[test]
fn inconsistent_or_partial_metadata_is_redone() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("pkgs");
    let a = put(&root, "a-1-linux-amd64.zpa", &simple_zpa("a", b"a").0);
    let b = put(&root, "b-1-linux-amd64.zpa", &simple_zpa("b", b"b").0);
    put(&root, "c-1-linux-amd64.zpa", &simple_zpa("c", b"c").0);
    index(home.path(), &root).run();
    let good_size = read_meta(&a, "size");
    // a: a .size whose down disagrees with the archive (written later, so
    // newer); b: .files missing; c: untouched.
    fs::write(meta_path(&a, "size"), "down: 1\ninstall: 2\n").unwrap();
    fs::remove_file(meta_path(&b, "files")).unwrap();
    let doc = index(home.path(), &root).run().json();
    assert_eq!(status(&doc, "a-1-linux-amd64.zpa"), "written");
    assert_eq!(status(&doc, "b-1-linux-amd64.zpa"), "written");
    assert_eq!(status(&doc, "c-1-linux-amd64.zpa"), "unchanged");
    assert_eq!(read_meta(&a, "size"), good_size);
    assert!(meta_path(&b, "files").exists());
}

#[test]
fn check_passes_on_a_fresh_tree_and_lists_every_mismatch() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("pkgs");
    let rels = [
        "core/linux/amd64/1/a-1-linux-amd64.zpa",
        "core/linux/amd64/1/b-1-linux-amd64.zpa",
        "core/linux/amd64/1/c-1-linux-amd64.zpa",
    ];
    let paths: Vec<PathBuf> = rels
        .iter()
        .enumerate()
        .map(|(i, rel)| put(&root, rel, &simple_zpa("p", &[i as u8; 100]).0))
        .collect();
    index(home.path(), &root).run();

    let ok = index(home.path(), &root).args(["--check"]).run().json();
    assert!(rels.iter().all(|r| status(&ok, r) == "ok"), "{ok:#}");
    assert_eq!(ok["totals"]["ok"], 3);
    assert_eq!(ok["check"], true);

    // Edit one .size, drop one .files.
    let size = meta_path(&paths[0], "size");
    let edited = read_meta(&paths[0], "size").replace("install: ", "install: 1");
    fs::write(&size, &edited).unwrap();
    fs::remove_file(meta_path(&paths[2], "files")).unwrap();
    let size_mtime = mtime(&size);

    let doc = index(home.path(), &root)
        .arg("--check")
        .expect_status(1)
        .run()
        .json();
    assert_eq!(status(&doc, rels[0]), "mismatch");
    assert_eq!(status(&doc, rels[1]), "ok");
    assert_eq!(status(&doc, rels[2]), "mismatch");
    let p0 = entry(&doc, rels[0])["problems"].as_array().unwrap().clone();
    assert_eq!(p0.len(), 1, "{p0:?}");
    assert_eq!(p0[0]["file"], ".size");
    assert_eq!(p0[0]["kind"], "differs");
    let p2 = entry(&doc, rels[2])["problems"].as_array().unwrap().clone();
    assert_eq!(p2.len(), 1, "{p2:?}");
    assert_eq!(
        (p2[0]["file"].as_str(), p2[0]["kind"].as_str()),
        (Some(".files"), Some("missing"))
    );
    assert_eq!(doc["totals"]["mismatch"], 2);
    // --check wrote nothing.
    assert_eq!(fs::read_to_string(&size).unwrap(), edited);
    assert_eq!(mtime(&size), size_mtime);
    assert!(!meta_path(&paths[2], "files").exists());

    // The human form lists both, one line per mismatching archive.
    let human = zm_cmd(home.path())
        .args(["index", "--check"])
        .arg(&root)
        .expect_status(1)
        .expect_stdout_contains(".size differs")
        .expect_stdout_contains(".files is missing")
        .expect_stdout_lacks(rels[1])
        .run();
    let mismatch_lines: Vec<&str> = human
        .stdout
        .lines()
        .filter(|l| l.starts_with("mismatch"))
        .collect();
    assert_eq!(mismatch_lines.len(), 2, "{}", human.stdout);
}

/// Every bad input: a clear error of the right kind for that file, the run
/// goes on (a good archive next to it is indexed), exit 1, and nothing is
/// written for the bad one.
fn bad_input(kind: &str, setup: impl FnOnce(&Path) -> PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("pkgs");
    let good_rel = "core/linux/amd64/1/good-1-linux-amd64.zpa";
    let good = put(&root, good_rel, &simple_zpa("good", b"fine").0);
    let bad = setup(&root);
    let bad_rel = bad
        .strip_prefix(&root)
        .unwrap()
        .to_string_lossy()
        .into_owned();

    let doc = index(home.path(), &root).expect_status(1).run().json();
    let e = entry(&doc, &bad_rel);
    assert_eq!(e["status"], "error", "{kind}: {e:#}");
    assert_eq!(e["error"]["kind"], kind, "{e:#}");
    assert!(
        !e["error"]["message"].as_str().unwrap().is_empty(),
        "{kind}: no message"
    );
    assert_eq!(
        status(&doc, good_rel),
        "written",
        "{kind}: the run did not go on"
    );
    assert!(META.iter().all(|x| meta_path(&good, x).is_file()));
    // (For `metadata_not_file` the folder in the way is there, but no file.)
    assert!(
        META.iter().all(|x| !meta_path(&bad, x).is_file()),
        "{kind}: metadata written for a bad archive"
    );
    assert_eq!(doc["totals"]["errors"], 1);

    // The human form names the file and the kind.
    let human = zm_cmd(home.path())
        .arg("index")
        .arg(&root)
        .expect_status(1)
        .run();
    assert!(
        human
            .stdout
            .lines()
            .any(|l| l.starts_with("error") && l.contains(&bad_rel) && l.contains(kind)),
        "{kind}:\n{}",
        human.stdout
    );
    // A failed archive fails --check as well.
    index(home.path(), &root)
        .arg("--check")
        .expect_status(1)
        .run();
}

const BAD: &str = "core/linux/amd64/1/bad-1-linux-amd64.zpa";

#[test]
fn bad_truncated_zstd_stream() {
    bad_input("truncated", |root| {
        let (z, _) = simple_zpa("bad", &[9u8; 50_000]);
        put(root, BAD, &z[..z.len() - 7])
    });
}

#[test]
fn bad_corrupt_zstd_frame() {
    bad_input("corrupt_zstd", |root| {
        // Incompressible payload so the frame holds raw bytes we can flip
        // into an invalid block header.
        let payload: Vec<u8> = (0..20_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let (mut z, _) = simple_zpa("bad", &payload);
        for b in &mut z[6..24] {
            *b = 0xff;
        }
        put(root, BAD, &z)
    });
}

#[test]
fn bad_not_zstd() {
    bad_input("not_zstd", |root| {
        // A plain tar named .zpa.
        put(root, BAD, &tar(&[E::File("manifest.json", b"{}")]))
    });
}

#[test]
fn bad_path_escaping_the_root() {
    bad_input("path_escape", |root| {
        let (good, _) = simple_zpa("x", b"x");
        let mut raw = zstd::decode_all(&good[..]).unwrap();
        // Replace the end-of-archive marker with a '../' entry.
        raw.truncate(raw.len() - 1024);
        raw.truncate(raw.len() - raw.len() % 512);
        let evil = tar(&[E::RawName(b"../../etc/cron.d/evil", b"* * * * * root sh\n")]);
        raw.extend_from_slice(&evil);
        put(root, BAD, &zst(&raw))
    });
}

#[test]
fn bad_zpa_without_manifest() {
    bad_input("no_manifest", |root| {
        let raw = tar(&[
            E::File("pool/sha256-00", b"bin"),
            E::File("bad.pkg.lua", b"metadata({})"),
        ]);
        put(root, BAD, &zst(&raw))
    });
}

#[test]
fn bad_zpa_with_invalid_manifest() {
    bad_input("bad_manifest", |root| {
        let payload = b"payload";
        // Valid JSON, but `mappings` lost its required `scopes`.
        let mut m = manifest_value("bad", payload);
        m["mappings"][""] = serde_json::json!({"scope": {}});
        let raw = tar(&[
            E::File(&format!("pool/{}", archives::pool_key(payload)), payload),
            E::File("manifest.json", m.to_string().as_bytes()),
        ]);
        put(root, BAD, &zst(&raw))
    });
}

#[test]
fn bad_zpa_with_manifest_that_is_not_json() {
    bad_input("bad_manifest", |root| {
        let raw = tar(&[E::File("manifest.json", b"{\"version\": \"2\", ")]);
        put(root, BAD, &zst(&raw))
    });
}

#[test]
fn bad_zero_byte_file() {
    bad_input("empty", |root| put(root, BAD, b""));
}

/// Unreadable, portably: tests often run as root, and root reads a mode-000
/// file, so chmod alone cannot make a read fail. A symlink named like an
/// archive that leads nowhere fails the open(2) for everyone, which is what
/// a half-deleted or badly synced tree looks like. Where we are not root,
/// the mode-000 case is tested too.
#[test]
fn bad_unreadable_dangling_symlink() {
    bad_input("unreadable", |root| {
        let p = root.join(BAD);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("gone-1-linux-amd64.zpa", &p).unwrap();
        p
    });
}

#[test]
fn bad_unreadable_permissions_when_not_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!(
            "running as root, which can read mode-000 files: covered by the dangling symlink case"
        );
        return;
    }
    bad_input("unreadable", |root| {
        use std::os::unix::fs::PermissionsExt;
        let p = put(root, BAD, &simple_zpa("bad", b"secret").0);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o000)).unwrap();
        p
    });
}

#[test]
fn bad_metadata_file_that_is_a_folder() {
    // The archive is fine; its `.size` cannot be written, so none of the
    // three is (not even the two that could have been).
    bad_input("metadata_not_file", |root| {
        let p = put(root, BAD, &simple_zpa("bad", b"ok archive").0);
        fs::create_dir(meta_path(&p, "size")).unwrap();
        p
    });
}

#[test]
fn metadata_folder_blocks_all_three_files() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("pkgs");
    let p = put(&root, "x-1-linux-amd64.zpa", &simple_zpa("x", b"x").0);
    fs::create_dir(meta_path(&p, "hash")).unwrap();
    index(home.path(), &root).expect_status(1).run();
    assert!(meta_path(&p, "hash").is_dir());
    assert!(!meta_path(&p, "size").exists());
    assert!(!meta_path(&p, "files").exists());
    // --check reports it as a problem of that file.
    let doc = index(home.path(), &root)
        .arg("--check")
        .expect_status(1)
        .run()
        .json();
    let problems = entry(&doc, "x-1-linux-amd64.zpa")["problems"].clone();
    assert!(
        problems
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["file"] == ".hash" && p["kind"] == "not_a_file"),
        "{problems:#}"
    );
}

#[test]
fn symlinks_inside_root_are_indexed_under_their_own_name_and_outside_ones_refused() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("pkgs");
    let outside = home.path().join("elsewhere");
    let real = put(&root, "store/t-1-linux-amd64.zpa", &simple_zpa("t", b"t").0);
    let theirs = put(&outside, "o-1-linux-amd64.zpa", &simple_zpa("o", b"o").0);
    fs::create_dir_all(root.join("core/linux/amd64/1")).unwrap();
    let link = root.join("core/linux/amd64/1/t-1.0-linux-amd64.zpa");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let escape = root.join("o-1-linux-amd64.zpa");
    std::os::unix::fs::symlink(&theirs, &escape).unwrap();
    // A symlinked folder is not descended (its target is walked anyway, or
    // is outside).
    std::os::unix::fs::symlink(&outside, root.join("outside-dir")).unwrap();

    let doc = index(home.path(), &root).expect_status(1).run().json();
    assert_eq!(
        status(&doc, "core/linux/amd64/1/t-1.0-linux-amd64.zpa"),
        "written"
    );
    assert_eq!(
        read_meta(&link, "hash"),
        format!("{}  t-1.0-linux-amd64.zpa\n", sha512sum(&real))
    );
    assert_eq!(
        entry(&doc, "o-1-linux-amd64.zpa")["error"]["kind"],
        "outside_root"
    );
    assert!(no_meta(&escape));
    assert!(no_meta(&theirs));
    assert_eq!(doc["archives"].as_array().unwrap().len(), 3, "{doc:#}");
}

#[test]
fn parallel_and_serial_runs_agree() {
    let home = tempfile::tempdir().unwrap();
    let a = home.path().join("a");
    let b = home.path().join("b");
    for i in 0..12u8 {
        let (z, _) = simple_zpa("p", &vec![i; 1000 * usize::from(i) + 1]);
        put(&a, &format!("r/linux/amd64/{i}/p-{i}-linux-amd64.zpa"), &z);
        put(&b, &format!("r/linux/amd64/{i}/p-{i}-linux-amd64.zpa"), &z);
    }
    index(home.path(), &a).args(["--jobs", "1"]).run();
    index(home.path(), &b).args(["-j", "4"]).run();
    assert_eq!(support::read_tree(&a), support::read_tree(&b));
}

#[test]
fn layout_lint_and_orphans() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("pkgs");
    let good = "core/linux/amd64/1.0.0/t-1.0.0-linux-amd64.zpa";
    let wrong_version = "core/linux/amd64/1.0.1/t-1.0.0-linux-amd64.zpa";
    let wrong_arch = "core/linux/arm64/1.0.0/t-1.0.0-linux-amd64.zpa";
    for (i, rel) in [good, wrong_version, wrong_arch].iter().enumerate() {
        put(&root, rel, &simple_zpa("t", &[i as u8]).0);
    }
    // Orphans: metadata and a signature whose archive is gone.
    put(
        &root,
        "core/linux/amd64/0.9/t-0.9-linux-amd64.zpa.hash",
        b"x",
    );
    put(
        &root,
        "core/linux/amd64/0.9/t-0.9-linux-amd64.zpa.sig",
        b"x",
    );
    // ... and next to a live archive, named to sort before and after it
    // and its own metadata.
    let beside = [
        "core/linux/amd64/1.0.0/s-1.0.0-linux-amd64.zpa.size",
        "core/linux/amd64/1.0.0/t-1.0.0-linux-amd64.zp.hash",
        "core/linux/amd64/1.0.0/t-1.0.0-linux-amd64.zpa.zpa.files",
        "core/linux/amd64/1.0.0/u-1.0.0-linux-amd64.zpa.sig",
    ];
    for rel in beside {
        put(&root, rel, b"x");
    }
    // Not orphans: unrelated files.
    put(&root, "core/README.txt", b"hi");
    put(&root, "core/t-1.0.0.zsa.sig", b"x");

    let layout = ["--layout", "{repo}/{os}/{arch}/{version}"];
    // Writing: the archives are indexed, the findings reported, exit 0.
    let doc = index(home.path(), &root).args(layout).run().json();
    assert_eq!(doc["totals"]["written"], 3);
    let problems: Vec<(String, String)> = doc["layout_problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().into(),
                p["message"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(problems[0].0, wrong_version);
    assert!(problems[0].1.contains("{version}"), "{problems:#?}");
    assert_eq!(problems[1].0, wrong_arch);
    assert!(problems[1].1.contains("{arch}"), "{problems:#?}");
    assert_eq!(
        doc["orphans"],
        serde_json::json!([
            "core/linux/amd64/0.9/t-0.9-linux-amd64.zpa.hash",
            "core/linux/amd64/0.9/t-0.9-linux-amd64.zpa.sig",
            beside[0],
            beside[2],
            beside[3],
        ])
    );
    // Checking: the same findings fail the run.
    let mut args = vec!["--check"];
    args.extend_from_slice(&layout);
    let check = index(home.path(), &root).args(&args).expect_status(1).run();
    assert_eq!(check.json()["totals"]["mismatch"], 0);

    // Fix the tree: check passes.
    fs::remove_dir_all(root.join("core/linux/amd64/1.0.1")).unwrap();
    fs::remove_dir_all(root.join("core/linux/arm64")).unwrap();
    fs::remove_dir_all(root.join("core/linux/amd64/0.9")).unwrap();
    for rel in beside {
        fs::remove_file(root.join(rel)).unwrap();
    }
    index(home.path(), &root).args(&args).run();
}

#[test]
fn bundle_supplies_layout_and_format() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("dist");
    zm_cmd(home.path())
        .args(["build", "-c"])
        .arg(support::example_spec())
        .arg("-o")
        .arg(&out)
        .run();
    let bundle = fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let root = home.path().join("pkgs");
    put(
        &root,
        "core/linux/amd64/1/t-1-linux-amd64.zpa",
        &simple_zpa("t", b"1").0,
    );
    // The example bundle serves .zpa: a legacy archive is never requested.
    put(
        &root,
        "core/linux/amd64/1/u-1-linux-amd64.pkg.tar.zst",
        &legacy_archive().0,
    );
    put(&root, "flat/t-2-linux-amd64.zpa", &simple_zpa("t", b"2").0);
    let doc = index(home.path(), &root)
        .args(["--bundle", bundle.to_str().unwrap()])
        .run()
        .json();
    let paths: Vec<&str> = doc["layout_problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            "core/linux/amd64/1/u-1-linux-amd64.pkg.tar.zst",
            "flat/t-2-linux-amd64.zpa"
        ],
        "{doc:#}"
    );
}

/// `index --bundle` reads bundle.json as `apply` does: a format version
/// this zoi-mirror does not read, an extension name that is not one, a
/// file outside the bundle are refused by both with the same kind and exit
/// code, never taken for a layout.
#[test]
fn index_bundle_refuses_the_bundle_json_apply_refuses() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("dist");
    zm_cmd(home.path())
        .args(["build", "-c"])
        .arg(support::example_spec())
        .arg("-o")
        .arg(&out)
        .run();
    let bundle = out.join("acme-mirror-1.2.0");
    let manifest = bundle.join("bundle.json");
    let good: Value = serde_json::from_slice(&fs::read(&manifest).unwrap()).unwrap();
    let root = home.path().join("pkgs");
    fs::create_dir(&root).unwrap();
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 4] = [
        (
            "format version 99",
            |m| m["format_version"] = 99.into(),
            "bundle_format",
        ),
        (
            "bad extension name",
            |m| m["extension"]["name"] = "../evil".into(),
            "bundle_invalid",
        ),
        (
            "a file outside the bundle",
            |m| m["files"]["../x"] = m["files"]["repo.yaml"].clone(),
            "bundle_invalid",
        ),
        (
            "a version that is not semver",
            |m| m["extension"]["version"] = "1.2.0\nrepos: [evil]".into(),
            "bundle_invalid",
        ),
    ];
    for (what, edit, kind) in cases {
        let mut m = good.clone();
        edit(&mut m);
        fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
        let applied = zm_cmd(home.path())
            .arg("apply")
            .arg(&bundle)
            .args(["--no-zoi", "--dry-run", "--format", "json"])
            .expect_status(2)
            .label(format!("apply: {what}"))
            .run();
        assert_eq!(applied.json()["error"]["kind"], kind, "apply: {what}");
        // The bundle folder, and bundle.json itself, as --bundle takes both.
        for given in [&bundle, &manifest] {
            let indexed = index(home.path(), &root)
                .arg("--bundle")
                .arg(given)
                .expect_status(2)
                .label(format!("index --bundle {}: {what}", given.display()))
                .run();
            assert_eq!(
                indexed.json()["error"],
                applied.json()["error"],
                "index --bundle {}: {what}",
                given.display()
            );
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("nope");
    zm_cmd(home.path())
        .arg("index")
        .arg(&missing)
        .expect_status(2)
        .expect_stderr_contains("no folder at")
        .run();
    let run = index(home.path(), &missing).expect_status(2).run();
    assert_eq!(run.json()["error"]["kind"], "root_missing");

    let root = home.path().join("pkgs");
    fs::create_dir(&root).unwrap();
    let r = root.to_str().unwrap();
    for bad in [
        &["--layout", "a/../b"][..],
        &["--check", "--force"],
        &["--jobs", "0"],
    ] {
        zm_cmd(home.path())
            .args(["index", r])
            .args(bad)
            .expect_status(2)
            .run();
    }
    zm_cmd(home.path())
        .args(["index", r, "--bundle", home.path().to_str().unwrap()])
        .expect_status(2)
        .expect_stderr_contains("bundle.json")
        .run();

    // An empty tree is fine.
    let doc = index(home.path(), &root).run().json();
    assert_eq!(doc["totals"]["archives"], 0);
}

/// A `.zpa` whose manifest maps a file to `dest`.
fn zpa_with_dest(dest: &str) -> Vec<u8> {
    let payload = b"evil";
    let mut m = crate::support::archives::manifest_value("bad", payload);
    m["mappings"][""]["scopes"]["user"]["files"][0]["dest"] = dest.into();
    let manifest = serde_json::to_string(&m).unwrap();
    let pool = format!("pool/{}", crate::support::archives::pool_key(payload));
    zst(&tar(&[
        E::Dir("pool"),
        E::File(&pool, payload),
        E::File("bad.pkg.lua", b"metadata({ name = \"bad\" })\n"),
        E::File("manifest.json", manifest.as_bytes()),
    ]))
}

#[test]
fn bad_manifest_dest_absolute() {
    bad_input("path_escape", |root| {
        put(root, BAD, &zpa_with_dest("/etc/passwd"))
    });
}

#[test]
fn bad_manifest_dest_escaping_the_store() {
    bad_input("path_escape", |root| {
        put(
            root,
            BAD,
            &zpa_with_dest("${pkgstore}/../../../etc/cron.d/x"),
        )
    });
}

/// The seen list (`$XDG_CACHE_HOME/zoi-mirror/index/*.seen`) of a run in
/// `home`: its path (the only file there) and bytes.
fn seen_list(home: &Path) -> (PathBuf, Vec<u8>) {
    let dir = home.join(".cache/zoi-mirror/index");
    let files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no seen list in {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "seen", "{files:?}");
    let bytes = fs::read(&files[0]).unwrap();
    (files[0].clone(), bytes)
}

/// Where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `list` with the raw SHA-512 `sha512` (hex) replaced by zeros, and its
/// checksum (the xxh3 of everything after the 32-byte header, at 24..32)
/// made to match again: a list only we could have written, that lies.
fn doctored(list: &[u8], sha512: &str) -> Vec<u8> {
    let raw = hex::decode(sha512).unwrap();
    let at = find(list, &raw).expect("the archive's SHA-512 is in the list");
    let mut out = list.to_vec();
    out[at..at + 64].fill(0);
    let sum = xxhash_rust::xxh3::xxh3_64(&out[32..]);
    out[24..32].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Two archives indexed, then indexed again two seconds later (entries
/// are recorded only for files whose ctime is two seconds old: a later
/// edit in the same clock tick could keep the ctime we saw), so the list
/// holds both.
fn listed_tree(home: &Path) -> (PathBuf, [(&'static str, PathBuf); 2]) {
    let root = home.join("pkgs");
    let a_rel = "core/a-1-linux-amd64.zpa";
    let b_rel = "core/b-1-linux-amd64.zpa";
    let a = put(&root, a_rel, &simple_zpa("a", b"payload 1").0);
    let b = put(&root, b_rel, &simple_zpa("b", b"payload 2").0);
    index(home, &root).run();
    // Right after the writes, found fresh by reading, but too young to list
    // (git's racy rule).
    let young = index(home, &root).run().json();
    assert_eq!(status(&young, a_rel), "unchanged");
    let listed = home.join(".cache/zoi-mirror/index");
    assert!(
        !listed.exists(),
        "{:?}",
        fs::read_dir(&listed).unwrap().collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_millis(2100));
    let second = index(home, &root).run().json();
    assert_eq!(status(&second, a_rel), "unchanged");
    let (_, list) = seen_list(home);
    for rel in [a_rel, b_rel] {
        assert!(find(&list, rel.as_bytes()).is_some(), "{rel} not listed");
    }
    (root, [(a_rel, a), (b_rel, b)])
}

#[test]
fn seen_list_skips_reading_but_an_edit_in_place_or_a_replaced_archive_is_still_caught() {
    let home = tempfile::tempdir().unwrap();
    let (root, [(a_rel, a), (b_rel, b)]) = listed_tree(home.path());
    let (path, list) = seen_list(home.path());

    // Proof the bodies are not read while every stat matches: a doctored
    // entry is believed. (Only we write the list; this is the skip.)
    fs::write(&path, doctored(&list, &sha512sum(&a))).unwrap();
    let third = index(home.path(), &root).run().json();
    assert_eq!(entry(&third, a_rel)["sha512"], "0".repeat(128).as_str());
    fs::write(&path, &list).unwrap();

    // a: its `.size` edited in place to a wrong byte count of the same
    // width, mtime set back to what it was: only the ctime tells, and it
    // must.
    let size = meta_path(&a, "size");
    let good = read_meta(&a, "size");
    let old_mtime = mtime(&size);
    let down = fs::metadata(&a).unwrap().len();
    let wrong = if down % 10 == 9 { down - 1 } else { down + 1 };
    let edited = good.replacen(&format!("down: {down}"), &format!("down: {wrong}"), 1);
    assert!(edited != good && edited.len() == good.len());
    fs::write(&size, edited).unwrap();
    filetime::set_file_mtime(&size, filetime::FileTime::from_system_time(old_mtime)).unwrap();
    // b: replaced by another archive of the same size, mtime set back.
    let (other, _) = simple_zpa("b", b"payload 3");
    assert_eq!(other.len() as u64, fs::metadata(&b).unwrap().len());
    let b_mtime = mtime(&b);
    let tmp = root.join("core/b.tmp");
    fs::write(&tmp, &other).unwrap();
    fs::rename(&tmp, &b).unwrap();
    filetime::set_file_mtime(&b, filetime::FileTime::from_system_time(b_mtime)).unwrap();

    let fourth = index(home.path(), &root).run().json();
    assert_eq!(status(&fourth, a_rel), "written", "{fourth:#}");
    assert_eq!(read_meta(&a, "size"), good);
    assert_eq!(status(&fourth, b_rel), "written", "{fourth:#}");
    assert_eq!(entry(&fourth, b_rel)["sha512"], sha512sum(&b).as_str());
    assert!(read_meta(&b, "hash").starts_with(&sha512sum(&b)));
}

/// A list that cannot be used (damaged, of another version or format,
/// unreadable) is ignored: the metadata is read again, the run succeeds,
/// and a list that can be written is written anew.
#[test]
fn a_damaged_old_or_unreadable_seen_list_is_ignored() {
    let home = tempfile::tempdir().unwrap();
    let (root, [(a_rel, a), _]) = listed_tree(home.path());
    let (path, list) = seen_list(home.path());
    let real = sha512sum(&a);
    // Each is the lying list of the test above, spoilt: believed, it
    // would show zeros for `a`.
    let lying = doctored(&list, &real);
    let mut flipped = lying.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let mut other_version = lying.clone();
    other_version[16] = 1;
    let cases = [
        ("a flipped bit", flipped),
        ("cut short", lying[..lying.len() - 1].to_vec()),
        ("another version", other_version),
        ("not a list", b"{\"version\": 2}".to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in cases {
        fs::write(&path, &bytes).unwrap();
        let doc = index(home.path(), &root).run().json();
        assert_eq!(status(&doc, a_rel), "unchanged", "{what}: {doc:#}");
        assert_eq!(entry(&doc, a_rel)["sha512"], real.as_str(), "{what}");
        assert_eq!(seen_list(home.path()).1, list, "{what}: not rewritten");
    }

    // The JSON list of earlier releases (version 1, `<digest>.json`), with
    // the current stats and a lie: never read, and removed once the new
    // list is written.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let stat = |p: &Path| {
            let m = fs::metadata(p).unwrap();
            serde_json::json!([
                m.ino(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec()
            ])
        };
        let old = path.with_extension("json");
        let entry_v1 = serde_json::json!({
            "stats": [stat(&a), stat(&meta_path(&a, "files")), stat(&meta_path(&a, "size")), stat(&meta_path(&a, "hash"))],
            "known": {"sha512": "0".repeat(128), "down": 1, "install": 1, "files": 1},
        });
        let v1 = serde_json::json!({"version": 1, "archives": {a_rel: entry_v1}});
        fs::write(&old, serde_json::to_vec(&v1).unwrap()).unwrap();
        fs::remove_file(&path).unwrap();
        let doc = index(home.path(), &root).run().json();
        assert_eq!(entry(&doc, a_rel)["sha512"], real.as_str());
        assert!(!old.exists(), "the old list is left behind");
        assert_eq!(seen_list(home.path()).1, list);
    }

    // Unreadable and unwritable: a folder where the list goes.
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    let doc = index(home.path(), &root).run().json();
    assert_eq!(status(&doc, a_rel), "unchanged", "{doc:#}");
    assert_eq!(entry(&doc, a_rel)["sha512"], real.as_str());
    assert!(path.is_dir());
}

#[test]
fn no_cache_neither_reads_nor_writes_the_seen_list() {
    let home = tempfile::tempdir().unwrap();
    let (root, [(a_rel, a), _]) = listed_tree(home.path());
    let (path, list) = seen_list(home.path());
    let real = sha512sum(&a);
    let lying = doctored(&list, &real);
    fs::write(&path, &lying).unwrap();
    // Not read: the lie is not believed.
    let doc = index(home.path(), &root).arg("--no-cache").run().json();
    assert_eq!(status(&doc, a_rel), "unchanged", "{doc:#}");
    assert_eq!(entry(&doc, a_rel)["sha512"], real.as_str());
    assert_eq!(fs::read(&path).unwrap(), lying);
    // Not written: without the flag this run would record both archives
    // (their ctimes are old enough now).
    fs::remove_file(&path).unwrap();
    index(home.path(), &root).arg("--no-cache").run();
    assert!(!path.exists());
    index(home.path(), &root).run();
    assert_eq!(seen_list(home.path()).1, list);
}
