//! `init` and `build`: snapshots, determinism, `--check`, the generated Lua
//! evaluated by a real interpreter, the YAML read back as Zoi reads it, and
//! malformed specs.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::cmd::ZmCmd;
use crate::support::{self, Spec, zm, zm_cmd, zoi_types};

/// `build -c SPEC -o OUT`; add flags and expectations, then `.run()`.
fn build(home: &Path, spec: &Path, out: &Path) -> ZmCmd {
    zm_cmd(home)
        .args(["build", "-c"])
        .arg(spec)
        .arg("-o")
        .arg(out)
}

fn snapshot_bundle(label: &str, spec: &Path, bundle_dir: &str) {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("dist");
    build(home.path(), spec, &out).run();
    let files = support::read_tree(&out.join(bundle_dir));
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    insta::assert_snapshot!(format!("{label}__files"), names.join("\n"));
    for (name, bytes) in files {
        insta::assert_snapshot!(
            format!("{label}__{name}"),
            String::from_utf8(bytes).unwrap()
        );
    }
}

#[test]
fn snapshot_of_every_file_for_the_shipped_example() {
    snapshot_bundle("acme", &support::example_spec(), "acme-mirror-1.2.0");
}

#[test]
fn snapshot_of_every_file_for_a_legacy_layout_spec() {
    let spec = support::repo_root().join("tests/fixtures/specs/legacy.toml");
    snapshot_bundle("legacy", &spec, "oldcorp-mirror-0.9.1");
}

#[test]
fn two_builds_are_byte_identical_and_check_passes_then_fails_with_a_diff() {
    let home = tempfile::tempdir().unwrap();
    let a = home.path().join("a");
    let b = home.path().join("b");
    build(home.path(), &support::example_spec(), &a).run();
    build(home.path(), &support::example_spec(), &b).run();
    let ta = support::read_tree(&a.join("acme-mirror-1.2.0"));
    let tb = support::read_tree(&b.join("acme-mirror-1.2.0"));
    assert!(ta.len() >= 5);
    assert_eq!(ta, tb, "two builds of the same spec differ");

    // --check on the fresh bundle: exit 0, nothing written.
    build(home.path(), &support::example_spec(), &a)
        .arg("--check")
        .expect_stdout("")
        .run();

    // Edit one file: --check fails with a unified diff naming it.
    let repo_yaml = a.join("acme-mirror-1.2.0/repo.yaml");
    let text = fs::read_to_string(&repo_yaml).unwrap();
    fs::write(&repo_yaml, text.replace("active: false", "active: true")).unwrap();
    let before = fs::read(&repo_yaml).unwrap();
    build(home.path(), &support::example_spec(), &a)
        .arg("--check")
        .expect_status(1)
        .expect_stdout_contains("--- a/repo.yaml\n+++ b/repo.yaml\n")
        .expect_stdout_contains("\n-  active: true\n+  active: false\n")
        .run();
    assert_eq!(
        fs::read(&repo_yaml).unwrap(),
        before,
        "--check must not write"
    );

    // JSON flavour names the changed file; an extra file is reported too.
    fs::write(a.join("acme-mirror-1.2.0/stray.txt"), "x").unwrap();
    let doc = build(home.path(), &support::example_spec(), &a)
        .args(["--check", "--format", "json"])
        .expect_status(1)
        .run()
        .json();
    assert_eq!(doc["up_to_date"], false);
    let status: Vec<(String, String)> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] != "same")
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            ("repo.yaml".into(), "changed".into()),
            ("stray.txt".into(), "unexpected".into())
        ]
    );

    // A rebuild replaces the directory: the stray file is gone, check passes.
    build(home.path(), &support::example_spec(), &a).run();
    assert!(!a.join("acme-mirror-1.2.0/stray.txt").exists());
    build(home.path(), &support::example_spec(), &a)
        .arg("--check")
        .run();
}

#[test]
fn check_without_a_bundle_is_a_no() {
    let home = tempfile::tempdir().unwrap();
    build(
        home.path(),
        &support::example_spec(),
        &home.path().join("none"),
    )
    .arg("--check")
    .expect_status(1)
    .expect_stderr_contains("no bundle at")
    .run();
}

#[test]
fn bundle_json_hashes_every_other_file() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("dist");
    build(home.path(), &support::example_spec(), &out).run();
    let dir = out.join("acme-mirror-1.2.0");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("bundle.json")).unwrap()).unwrap();
    let files = manifest["files"].as_object().unwrap();
    let on_disk: Vec<String> = support::read_tree(&dir)
        .into_iter()
        .map(|(n, _)| n)
        // bundle.json pins everything but itself and the setup scripts
        // (which pin bundle.json).
        .filter(|n| !["bundle.json", "setup.sh", "setup.ps1"].contains(&n.as_str()))
        .collect();
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), on_disk);
    for (name, entry) in files {
        let path = dir.join(name);
        let out = std::process::Command::new("sha512sum")
            .arg(&path)
            .output()
            .unwrap();
        let expected = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            entry["sha512"],
            expected.split_whitespace().next().unwrap(),
            "{name}"
        );
        assert_eq!(entry["size"], fs::metadata(&path).unwrap().len(), "{name}");
    }
    assert_eq!(manifest["format_version"], 1);
    assert_eq!(
        manifest["extension"],
        json!({"name": "acme-mirror", "version": "1.2.0"})
    );
}

// ---------------------------------------------------------------- Lua

/// The Lua table the generated extension hands to `metadata()`, as Zoi
/// will see it, equals what the spec says.
#[test]
fn generated_lua_evaluates_to_the_spec_in_a_real_interpreter() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("dist");
    build(home.path(), &support::example_spec(), &out).run();
    let got = support::eval_pkg_lua(&out.join("acme-mirror-1.2.0/acme-mirror.pkg.lua"));
    assert_eq!(
        got,
        json!({
            "name": "acme-mirror",
            "repo": "acme",
            "version": "1.2.0",
            "description": "Points Zoi at ACME Corp's internal package mirror",
            "maintainer": {"name": "ACME IT Platform Team", "email": "zoi-admins@acme.example"},
            "license": "LicenseRef-ACME-Internal",
            "type": "extension",
            "types": ["source"],
            "extension": {
                "type": "zoi",
                "changes": [
                    {"type": "pgp", "name": "acme-registry", "key": "https://bin.acme.example/keys/acme-registry.asc"},
                    {"type": "registry-repo", "add": "https://git.acme.example/zoi/zoidberg.git"}
                ]
            }
        })
    );
}

#[test]
fn legacy_spec_orders_failure_prone_changes_last() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("dist");
    let spec = support::repo_root().join("tests/fixtures/specs/legacy.toml");
    let r = build(home.path(), &spec, &out).run();
    // repo-add is emitted only because the spec asks, and with a warning
    assert!(
        r.stderr
            .contains("warning: client.repo_add emits Zoi `repo-add`"),
        "{}",
        r.stderr
    );
    let got = support::eval_pkg_lua(&out.join("oldcorp-mirror-0.9.1/oldcorp-mirror.pkg.lua"));
    assert_eq!(
        got["extension"]["changes"],
        json!([
            {"type": "registry-repo", "add": "git@git.oldcorp.example:zoi/zoidberg.git"},
            {"type": "registry-add", "add": "https://git.oldcorp.example/zoi/tools-registry.git"},
            {"type": "repo-git", "add": "https://git.oldcorp.example/zoi/scripts.git"},
            {"type": "repo-add", "add": "test"}
        ])
    );
}

/// Writes the example spec with the free-text fields replaced.
fn spec_with_strings(dir: &Path, description: &str, maintainer: &str, license: &str) -> PathBuf {
    let mut doc: toml_edit::DocumentMut = fs::read_to_string(support::example_spec())
        .unwrap()
        .parse()
        .unwrap();
    doc["extension"]["description"] = toml_edit::value(description);
    doc["extension"]["license"] = toml_edit::value(license);
    doc["extension"]["maintainer"]["name"] = toml_edit::value(maintainer);
    doc["registry"]["description"] = toml_edit::value(description);
    let path = dir.join("mirror.toml");
    fs::write(&path, doc.to_string()).unwrap();
    path
}

/// Whether a spec string must be refused: every value is one line of
/// printable text (a control character or line break could forge a key in
/// a generated file or drive a terminal).
fn refused(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
}

/// The strings either come out of the real Lua interpreter and the YAML
/// parser exactly as they went in, or the build refuses them with a
/// `file:line:col` diagnostic and writes nothing.
fn assert_strings_survive(description: &str, maintainer: &str, license: &str) {
    let home = tempfile::tempdir().unwrap();
    let spec = spec_with_strings(home.path(), description, maintainer, license);
    let out = home.path().join("dist");
    let r = build(home.path(), &spec, &out).any_status().run();
    if [description, maintainer, license]
        .iter()
        .any(|s| refused(s))
    {
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("mirror.toml:"), "{}", r.stderr);
        assert!(!out.exists(), "files written for a refused spec");
        return;
    }
    r.ok();
    let dir = out.join("acme-mirror-1.2.0");
    let got = support::eval_pkg_lua(&dir.join("acme-mirror.pkg.lua"));
    assert_eq!(got["description"], description);
    assert_eq!(got["maintainer"]["name"], maintainer);
    assert_eq!(got["license"], license);
    let repo: zoi_types::RepoConfig =
        serde_yaml::from_slice(&fs::read(dir.join("repo.yaml")).unwrap()).unwrap();
    assert_eq!(repo.description, description);
}

#[test]
fn hostile_strings_reach_lua_and_yaml_unchanged() {
    let nasty = "quote \" backslash \\ newline \n cr \r tab \t long ]] and ]=] and [[ [==[ \
                 nul \0 bell \x07 esc \x1b del \x7f digits after escape \x011 \
                 é 中文 🦀 \u{2028} -- not a comment";
    assert_strings_survive(
        nasty,
        "O'Brien \"the\" \\admin\\ ]]",
        "MIT OR Apache-2.0 ]=] \n",
    );
    assert_strings_survive("end\")\nos.exit(1)\n--", "]] .. os.exit(1) .. [[", "\\");
    // The same strings without the characters a single line cannot hold.
    let printable: String = nasty.chars().filter(|c| !refused(&c.to_string())).collect();
    assert_strings_survive(
        &printable,
        "O'Brien \"the\" \\admin\\ ]]",
        "MIT OR Apache-2.0 ]=]",
    );
    assert_strings_survive("end\") os.exit(1) --", "]] .. os.exit(1) .. [[", "\\");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, .. Default::default() })]

    /// Any string, including every control character and non-ASCII, comes
    /// out of the real Lua interpreter exactly as it went into the spec.
    #[test]
    fn any_string_round_trips_through_the_generated_lua(
        description in "\\PC*[\\x00-\\x1f\\x7f\"\\\\\\]\\[=]{0,6}\\PC*",
        maintainer in ".{0,40}",
    ) {
        let description = format!("d{description}");
        let maintainer = format!("m{maintainer}");
        assert_strings_survive(&description, &maintainer, "MIT");
    }
}

// ---------------------------------------------------------------- YAML

/// The YAML files deserialise into copies of Zoi's own structs and say
/// what the spec says; the fixture repo.yaml is used as upstream.
#[test]
fn generated_yaml_reads_back_as_zoi_config_and_repo_config() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("dist");
    let upstream = support::fixtures().join("zoidberg/repo.yaml");
    build(home.path(), &support::example_spec(), &out)
        .arg("--upstream-repo-yaml")
        .arg(&upstream)
        .run();
    let dir = out.join("acme-mirror-1.2.0");

    let repo: zoi_types::RepoConfig =
        serde_yaml::from_slice(&fs::read(dir.join("repo.yaml")).unwrap()).unwrap();
    let up: zoi_types::RepoConfig = serde_yaml::from_slice(&fs::read(&upstream).unwrap()).unwrap();
    assert_eq!(repo.name, "zoidberg");
    assert_eq!(
        repo.advisory_prefix, up.advisory_prefix,
        "prefix kept from upstream"
    );
    let git: Vec<(&str, &str)> = repo
        .git
        .iter()
        .map(|g| (g.link_type.as_str(), g.url.as_str()))
        .collect();
    assert_eq!(
        git,
        [
            ("main", "https://git.acme.example/zoi/zoidberg.git"),
            ("mirror", "https://git-dr.acme.example/zoi/zoidberg.git")
        ]
    );
    // Only our binary host: upstream's archive and source links moved there.
    let types: Vec<&str> = repo.pkg.iter().map(|l| l.link_type.as_str()).collect();
    assert_eq!(types, ["main", "source-main"]);
    let main = &repo.pkg[0];
    let archive = "https://bin.acme.example/pkgs/{repo}/{os}/{arch}/{version}/{name}-{version}-{platform}.zpa";
    assert_eq!(main.url, archive);
    for (got, ext) in [
        (&main.hash, "hash"),
        (&main.size, "size"),
        (&main.files, "files"),
        (&main.pgp, "sig"),
    ] {
        assert_eq!(got.as_deref(), Some(format!("{archive}.{ext}").as_str()));
    }
    // A .zsa serves every platform: its folder has no platform segments.
    let source = &repo.pkg[1];
    let zsa = "https://bin.acme.example/pkgs/{repo}/{version}/{name}-{version}.zsa";
    assert_eq!(source.url, zsa);
    assert_eq!(source.hash.as_deref(), Some(format!("{zsa}.hash").as_str()));
    // Upstream keys kept (served from the company's host), ours added.
    let keys: Vec<(&str, &str)> = repo
        .pgp
        .iter()
        .map(|k| (k.name.as_str(), k.key.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            (
                "zillowe-main",
                "https://bin.acme.example/pkgs/keys/zillowe-main.asc"
            ),
            (
                "acme-registry",
                "https://bin.acme.example/keys/acme-registry.asc"
            )
        ]
    );
    // Every upstream tier kept, in order, plus ours; active = the spec's tiers.
    let tiers: Vec<(&str, bool)> = repo
        .repos
        .iter()
        .map(|r| (r.name.as_str(), r.active))
        .collect();
    let mut expected: Vec<(&str, bool)> = up
        .repos
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                ["core", "main", "extra"].contains(&r.name.as_str()),
            )
        })
        .collect();
    expected.push(("acme", true));
    assert_eq!(tiers, expected);
    // The handle is written explicitly.
    let raw: serde_yaml::Value =
        serde_yaml::from_slice(&fs::read(dir.join("repo.yaml")).unwrap()).unwrap();
    assert_eq!(raw["handle"], "zoidberg");

    for (file, system) in [("config.user.yaml", false), ("config.system.yaml", true)] {
        let bytes = fs::read(dir.join(file)).unwrap();
        let c: zoi_types::Config = serde_yaml::from_slice(&bytes).unwrap();
        let _legacy: zoi_types::LegacyConfig = serde_yaml::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{file} lacks a boolean Zoi <= 1.25 requires: {e}"));
        assert_eq!(c.repos, ["core", "main", "extra", "acme"], "{file}");
        assert_eq!(
            c.default_registry,
            Some(zoi_types::Registry {
                handle: "zoidberg".into(),
                url: "https://git.acme.example/zoi/zoidberg.git".into(),
                name: None,
                description: None,
                advisory_prefix: None,
                // ours for the overlay HEAD, upstream's for its archives
                authorities: Some(vec!["acme-registry".into(), "zillowe-main".into()]),
            }),
            "{file}"
        );
        assert_eq!(c.cache_mirrors, ["https://bin-dr.acme.example/flat"]);
        assert_eq!(c.pkg_dirs, ["/srv/zoi-archives"]);
        assert!(!c.offline_mode);
        assert!(c.rollback_enabled);
        assert_eq!(c.policy.default_registry_unoverridable, system, "{file}");
        assert_eq!(c.policy.repos_unoverridable, system, "{file}");
        assert_eq!(
            c.policy.denied_licenses,
            system.then(|| vec!["AGPL-3.0-only".to_string()]),
            "{file}: policy lists only in the system layer"
        );
    }
}

#[test]
fn built_in_upstream_description_matches_the_real_zoidberg_repo_yaml() {
    let text = fs::read_to_string(support::fixtures().join("zoidberg/repo.yaml")).unwrap();
    let real = zoi_mirror::zoi::repo::RepoYaml::parse(&text).unwrap();
    assert_eq!(zoi_mirror::zoi::upstream::zoidberg(), real);
}

// ---------------------------------------------------------------- init

#[test]
fn init_writes_a_valid_commented_spec_and_refuses_to_overwrite() {
    let home = tempfile::tempdir().unwrap();
    zm_cmd(home.path())
        .args(["init", "--name", "globex-mirror"])
        .expect_stdout_contains("wrote mirror.toml")
        .run();
    let path = home.path().join("mirror.toml");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("name = \"globex-mirror\""));
    assert!(
        text.lines().filter(|l| l.starts_with('#')).count() > 40,
        "fully commented"
    );

    // It builds as is.
    build(home.path(), &path, &home.path().join("dist")).run();
    assert!(
        home.path()
            .join("dist/globex-mirror-1.0.0/globex-mirror.pkg.lua")
            .exists()
    );

    // A second init refuses (exit 2) and leaves the file alone.
    fs::write(&path, "# mine\n").unwrap();
    zm_cmd(home.path())
        .arg("init")
        .expect_status(2)
        .expect_stderr_contains("mirror.toml already exists")
        .expect_stderr_contains("hint: pass --force")
        .run();
    assert_eq!(fs::read_to_string(&path).unwrap(), "# mine\n");

    zm_cmd(home.path()).args(["init", "--force"]).run();
    assert!(fs::read_to_string(&path).unwrap().contains("[extension]"));
}

#[test]
fn init_rejects_invalid_values_before_writing() {
    let home = tempfile::tempdir().unwrap();
    zm_cmd(home.path())
        .args(["init", "--name", "Not Valid"])
        .expect_status(2)
        .expect_stderr_contains("is not a valid Zoi package name")
        .run();
    assert!(!home.path().join("mirror.toml").exists());
}

// ---------------------------------------------------------------- bad specs

/// The malformed specs below are this text with one change.
const BASE: &str = support::spec::MINIMAL;

/// Expected diagnostics as (line, column, message fragment).
type Expected = Vec<(usize, usize, &'static str)>;

/// (label, spec text, expected diagnostics)
fn malformed() -> Vec<(&'static str, String, Expected)> {
    let r = |from: &str, to: &str| {
        assert!(BASE.contains(from), "{from}");
        BASE.replacen(from, to, 1)
    };
    let add = |extra: &str| format!("{BASE}{extra}");
    vec![
        (
            "toml syntax",
            r("version = \"1.0.0\"", "version = \"1.0.0"),
            vec![(3, 17, "TOML syntax error")],
        ),
        (
            "unknown key with suggestion",
            r("description = \"d\"", "descripton = \"d\""),
            vec![
                (1, 1, "missing required key `extension.description`"),
                (4, 1, "unknown key `extension.descripton`"),
            ],
        ),
        (
            "unknown section",
            add("[clients]\ntiers = []\n"),
            vec![(13, 2, "unknown key `clients`")],
        ),
        (
            "invalid registry URL",
            r(
                "url = \"https://git.acme.example/z.git\"",
                "url = \"not-a-url\"",
            ),
            vec![(9, 7, "`registry.url`: 'not-a-url' is not a git URL")],
        ),
        (
            "non-http binary URL",
            r(
                "url = \"https://bin.acme.example/pkgs\"",
                "url = \"ftp://bin.acme.example/pkgs\"",
            ),
            vec![(12, 7, "uses the `ftp` scheme")],
        ),
        (
            "credentials in a binary URL",
            r(
                "url = \"https://bin.acme.example/pkgs\"",
                "url = \"https://u:pw@bin.acme.example/pkgs\"",
            ),
            vec![(12, 7, "embeds credentials")],
        ),
        (
            "unknown placeholder",
            r(
                "url = \"https://bin.acme.example/pkgs\"",
                "url = \"https://bin.acme.example/pkgs\"\nlayout = \"{repo}/{tier}/{version}\"",
            ),
            vec![(13, 18, "unknown placeholder `{tier}`")],
        ),
        (
            "non-semver version",
            r("\"1.0.0\"", "\"1.0\""),
            vec![(3, 11, "is not a semantic version")],
        ),
        (
            "invalid package name",
            r("\"acme-mirror\"", "\"Acme Mirror\""),
            vec![(2, 8, "is not a valid Zoi package name")],
        ),
        (
            "tier neither upstream nor declared",
            r("tier = \"core\"", "tier = \"acmee\""),
            vec![(
                5,
                8,
                "`extension.tier` 'acmee' is neither one of upstream's tiers nor declared",
            )],
        ),
        (
            "empty required value",
            r("description = \"d\"", "description = \"  \""),
            vec![(4, 15, "`extension.description` is empty")],
        ),
        (
            "missing table",
            BASE.replace("[registry]\nurl = \"https://git.acme.example/z.git\"\n", ""),
            vec![(1, 1, "missing required table [registry]")],
        ),
        (
            "wrong type",
            add("signatures = \"yes\"\n"),
            vec![(
                13,
                14,
                "`binaries.signatures` must be true or false, found string",
            )],
        ),
        (
            "unknown platform",
            add("platforms = [\"linux-x86_64\"]\n"),
            vec![(13, 14, "'linux-x86_64' is not a Zoi platform")],
        ),
        (
            "unknown archive format",
            add("format = \"tar.gz\"\n"),
            vec![(13, 10, "unknown archive format 'tar.gz'")],
        ),
        (
            "client tier unknown",
            add("\n[client]\ntiers = [\"core\", \"extras\"]\n"),
            vec![(
                15,
                18,
                "`client.tiers`: tier 'extras' is neither one of upstream's tiers nor declared",
            )],
        ),
        (
            "tilde pkg dir",
            add("\n[client]\npkg_dirs = [\"~/archives\"]\n"),
            vec![(15, 13, "starts with `~`")],
        ),
        (
            "non-http cache mirror",
            add("\n[client]\ncache_mirrors = [\"file:///srv/m\"]\n"),
            vec![(15, 18, "`client.cache_mirrors`")],
        ),
        (
            "unknown lock",
            add("\n[system]\nlock = [\"default_registyr\"]\n"),
            vec![(15, 9, "'default_registyr' is not a setting Zoi can lock")],
        ),
        (
            "pgp key with neither url nor fingerprint",
            add("\n[[client.pgp]]\nname = \"k\"\n"),
            vec![(14, 1, "needs `url` or `fingerprint`")],
        ),
        (
            "authority that names no key",
            r(
                "url = \"https://git.acme.example/z.git\"",
                "url = \"https://git.acme.example/z.git\"\nauthorities = [\"corp-key\"]",
            ),
            vec![(
                10,
                16,
                "authority 'corp-key' is neither a key fingerprint nor the name of a key",
            )],
        ),
        (
            "bad maintainer email",
            r("e@x.example", "nobody"),
            vec![(6, 36, "is not an email address")],
        ),
    ]
}

#[test]
fn malformed_specs_report_every_problem_with_file_line_column_and_exit_2() {
    let cases = malformed();
    assert!(cases.len() >= 15);
    for (label, text, expected) in cases {
        let home = tempfile::tempdir().unwrap();
        let spec = home.path().join("mirror.toml");
        fs::write(&spec, &text).unwrap();
        let out = home.path().join("dist");
        let r = build(home.path(), &spec, &out)
            .args(["--format", "json"])
            .expect_status(2)
            .run();
        assert!(!out.exists(), "{label}: no output directory may be created");
        let doc = r.json();
        assert_eq!(doc["error"]["kind"], "spec_invalid", "{label}");
        let diags = doc["error"]["diagnostics"].as_array().unwrap();
        let got: Vec<(usize, usize, String)> = diags
            .iter()
            .map(|d| {
                (
                    d["line"].as_u64().unwrap() as usize,
                    d["column"].as_u64().unwrap() as usize,
                    d["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got.len(), expected.len(), "{label}: {got:#?}");
        for ((line, col, frag), (gl, gc, gm)) in expected.iter().zip(&got) {
            assert!(gm.contains(frag), "{label}: message {gm:?} lacks {frag:?}");
            assert_eq!((*line, *col), (*gl, *gc), "{label}: position of {gm:?}");
            // The human form on stderr names file:line:col.
            let loc = format!("{}:{gl}:{gc}: {gm}", spec.display());
            assert!(
                r.stderr.contains(&loc),
                "{label}: stderr lacks {loc:?}\n{}",
                r.stderr
            );
        }
        for d in diags {
            assert_eq!(d["file"], spec.to_str().unwrap(), "{label}");
        }
    }
}

#[test]
fn all_problems_are_reported_at_once_with_hints() {
    let home = tempfile::tempdir().unwrap();
    let spec = home.path().join("mirror.toml");
    let text = BASE
        .replace("\"1.0.0\"", "\"one\"")
        .replace("tier = \"core\"", "tier = \"cor\"")
        .replace(
            "url = \"https://bin.acme.example/pkgs\"",
            "url = \"https://bin.acme.example/pkgs\"\nlayout = \"{repo}/{plat}\"",
        );
    fs::write(&spec, text).unwrap();
    build(home.path(), &spec, &home.path().join("dist"))
        .expect_status(2)
        .expect_stderr_contains("has 3 problems")
        .expect_stderr_contains("hint: did you mean 'core'?")
        .expect_stderr_contains(
            "Zoi knows exactly seven: {name}, {version}, {repo}, {id}, {os}, {arch}, {platform}",
        )
        .run();
}

#[test]
fn a_missing_spec_file_is_bad_input() {
    let home = tempfile::tempdir().unwrap();
    zm_cmd(home.path())
        .args(["build", "-c", "nope.toml"])
        .expect_status(2)
        .expect_stderr_contains("spec file nope.toml not found")
        .expect_stderr_contains("hint: create one with `zoi-mirror init`")
        .run();
}

/// `-c DIR` is bad input as `--index DIR` is (it was exit 3, "cannot read
/// …: Is a directory"), for every command that reads a spec, and the hint
/// names the spec inside when there is one.
#[test]
fn a_spec_path_that_is_a_directory_is_bad_input() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    fs::create_dir_all(h.join("conf")).unwrap();
    for args in [
        &["build", "-c", "conf", "-o", "out"][..],
        &["db", "sync", "-c", "conf", "--dry-run"][..],
        &["bin", "sync", "-c", "conf", "--dest", "out"][..],
        &["sync", "-c", "conf", "--dest", "out"][..],
    ] {
        let mut a = args.to_vec();
        a.extend_from_slice(&["--format", "json"]);
        let r = zm(h, &a);
        assert_eq!(r.code, 2, "{args:?}: {}\n{}", r.stdout, r.stderr);
        let doc = r.json();
        assert_eq!(doc["error"]["kind"], "spec_missing", "{args:?}: {doc}");
        assert_eq!(
            doc["error"]["message"], "spec file conf is a directory, not a file",
            "{args:?}"
        );
        assert_eq!(
            doc["error"]["hint"], "pass the file itself (e.g. conf/mirror.toml), not its folder",
            "{args:?}"
        );
    }
    fs::write(h.join("conf/mirror.toml"), "").unwrap();
    zm_cmd(h)
        .args(["build", "-c", "conf", "-o", "out"])
        .expect_status(2)
        .expect_stderr_contains("hint: pass the file itself: conf/mirror.toml")
        .run();
}

#[test]
fn unknown_flags_are_usage_errors() {
    let home = tempfile::tempdir().unwrap();
    zm_cmd(home.path())
        .args(["build", "--frobnicate"])
        .expect_status(2)
        .run();
    zm_cmd(home.path())
        .args(["build", "--help"])
        .expect_stdout_contains("Exit codes:")
        .run();
}

// ---------------------------------------------------- upstream derivation

#[test]
fn the_mirror_repo_yaml_is_a_function_of_upstreams_own() {
    let home = tempfile::tempdir().unwrap();
    let up = home.path().join("upstream.yaml");
    // An upstream with everything: mirrors, a delta link, snapshot links,
    // a fingerprint key, and keys this tool does not know.
    fs::write(
        &up,
        r#"name: Zoidberg
description: Official Zoi packages repository
handle: zoidberg
advisory_prefix: ZSA
future_setting: {kept: true, list: [1, 2]}
git:
  - {type: main, url: "https://gitlab.com/zillowe/zoidberg.git"}
  - {type: mirror, url: "https://github.com/zillowe/zoidberg.git"}
pkg:
  - type: main
    url: "https://gitlab.com/api/v4/projects/7/packages/generic/{id}/{version}/{name}-{version}-{platform}.zpa"
    hash: "https://gitlab.com/api/v4/projects/7/packages/generic/{id}/{version}/{name}-{version}-{platform}.zpa.hash"
  - type: source-main
    url: "https://gitlab.com/api/v4/projects/7/packages/generic/{id}/{version}/{name}-{version}.zsa"
    pgp: "https://gitlab.com/api/v4/projects/7/packages/generic/{id}/{version}/{name}-{version}.zsa.sig"
delta:
  - type: main
    url: "https://gitlab.com/api/v4/projects/7/packages/generic/{id}/{version}/{name}-{version}-{platform}.zpa.zdelta"
    hash: "https://gitlab.com/api/v4/projects/7/packages/generic/{id}/{version}/{name}-{version}-{platform}.zpa.zdelta.hash"
db: "https://gitlab.com/zillowe/zoidberg/-/raw/main/packages.db"
pgp:
  - {name: zillowe-main, key: "https://zillowe.pages.dev/keys/zillowe-main.asc"}
  - {name: release, key: "0123456789ABCDEF0123456789ABCDEF01234567"}
repos:
  - {name: core, type: official, active: true}
  - {name: main, type: official, active: true}
  - {name: weekly, type: community, active: true}
"#,
    )
    .unwrap();
    let spec = Spec::minimal()
        .inline(
            "extension.maintainer",
            &[("name", "IT"), ("email", "it@acme.example")],
        )
        .list("client.tiers", ["core", "main"])
        .write(home.path());
    let out = home.path().join("dist");
    // build says which upstream repo.yaml it used
    build(home.path(), &spec, &out)
        .arg("--upstream-repo-yaml")
        .arg(&up)
        .expect_stderr_contains(format!("file {}", up.display()))
        .expect_stderr_contains("snapshot links")
        .run();
    let text = fs::read_to_string(out.join("acme-mirror-1.0.0/repo.yaml")).unwrap();
    let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        v["future_setting"],
        serde_yaml::from_str::<serde_yaml::Value>("{kept: true, list: [1, 2]}").unwrap(),
        "unknown keys preserved"
    );
    assert!(v.get("db").is_none(), "upstream's snapshot is not mirrored");
    let bin = "https://bin.acme.example/pkgs/{repo}/{os}/{arch}/{version}";
    assert_eq!(
        v["delta"],
        serde_yaml::from_str::<serde_yaml::Value>(&format!(
            "[{{type: main, url: '{bin}/{{name}}-{{version}}-{{platform}}.zpa.zdelta', hash: '{bin}/{{name}}-{{version}}-{{platform}}.zpa.zdelta.hash'}}]"
        ))
        .unwrap(),
        "the delta link on our host, with the sidecars upstream has"
    );
    assert_eq!(
        v["pkg"][1],
        serde_yaml::from_str::<serde_yaml::Value>(
            "{type: source-main, url: 'https://bin.acme.example/pkgs/{repo}/{version}/{name}-{version}.zsa', pgp: 'https://bin.acme.example/pkgs/{repo}/{version}/{name}-{version}.zsa.sig'}"
        )
        .unwrap()
    );
    assert_eq!(
        v["pgp"][1]["key"],
        "https://bin.acme.example/pkgs/keys/release.asc"
    );
    assert_eq!(v["repos"][2]["name"], "weekly", "upstream's tier kept");
    assert_eq!(v["repos"][2]["active"], false, "client.tiers decides");
    for u in ["gitlab.com", "github.com", "zillowe.pages.dev"] {
        assert!(!text.contains(u), "{u} left in:\n{text}");
    }
}

/// A bundle replaces the previous one only once every one of its files,
/// and the folders holding them, are on disk: a power cut must leave the
/// old bundle or the whole new one, never a new name over empty files.
/// Watched with strace, the real system calls of a real build over an
/// existing bundle: every file of the new bundle is flushed before the
/// rename that publishes it (and before the old one is moved aside), and
/// the folder holding both names after.
#[test]
fn a_new_bundle_is_flushed_before_the_rename_that_publishes_it() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("dist");
    // A tool, so the bundle has a folder of its own (tools/<platform>/).
    let tool_bin = home.path().join("zoi-mirror-tool");
    fs::write(&tool_bin, b"#!/bin/sh\necho tool\n").unwrap();
    let tool = format!("linux-amd64={}", tool_bin.display());
    let args = |c: &mut std::process::Command| {
        c.args(["build", "-c"])
            .arg(support::example_spec())
            .arg("-o")
            .arg(&out)
            .args(["--tool", &tool]);
    };
    let mut first = support::cmd(home.path());
    args(&mut first);
    assert_eq!(support::run(&mut first).code, 0);
    let log = home.path().join("strace.log");
    let mut c = support::cmd(home.path());
    args(&mut c);
    let r = support::run(&mut support::under_strace(
        &c,
        &log,
        "fsync,fdatasync,rename,renameat,renameat2",
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);

    let text = fs::read_to_string(&log).unwrap();
    let events = support::strace_events(&text);
    let target = out.join("acme-mirror-1.2.0");
    let target_s = target.to_string_lossy().into_owned();
    // rename(<staging>, <target>): the one that publishes the new bundle.
    let (published, staging) = events
        .iter()
        .enumerate()
        .find_map(|(i, e)| match e {
            support::Syscall::Renamed { from, to } if *to == target_s => Some((i, from.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the bundle is never renamed into place:\n{text}"));
    let moved_aside = events
        .iter()
        .position(|e| matches!(e, support::Syscall::Renamed { from, .. } if *from == target_s))
        .unwrap_or_else(|| panic!("the old bundle is never moved aside:\n{text}"));
    let flushed = |path: &str| -> Option<usize> {
        events
            .iter()
            .position(|e| matches!(e, support::Syscall::Flushed(p) if p == path))
    };
    let files = support::read_tree(&target);
    assert!(
        files.iter().any(|(rel, _)| rel.starts_with("tools/")),
        "{files:?}"
    );
    let mut must: Vec<String> = files
        .iter()
        .map(|(rel, _)| format!("{staging}/{rel}"))
        .collect();
    must.push(staging.clone());
    must.push(format!("{staging}/tools"));
    must.push(format!("{staging}/tools/linux-amd64"));
    for path in &must {
        let at = flushed(path)
            .unwrap_or_else(|| panic!("{path} is never flushed before it is published:\n{text}"));
        assert!(
            at < moved_aside && at < published,
            "{path} is flushed only after the bundle is renamed:\n{text}"
        );
    }
    let parent = out.to_string_lossy().into_owned();
    assert!(
        events
            .iter()
            .skip(published)
            .any(|e| matches!(e, support::Syscall::Flushed(p) if *p == parent)),
        "the bundle's new name is never flushed:\n{text}"
    );
}

/// A local build makes no request: the network options (flags or
/// environment) are read only for `--publish`, so a stale `--ca-cert` or a
/// malformed `ZOI_MIRROR_HEADER` does not fail it.
#[test]
fn a_local_build_reads_no_network_options_a_publish_does() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    Spec::minimal().write(h);
    let missing = h.join("gone.pem");
    let r = zm_cmd(h)
        .args(["build", "-c", "mirror.toml", "-o", "dist", "--ca-cert"])
        .arg(&missing)
        .env("ZOI_MIRROR_HEADER", "no colon here")
        .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = zm_cmd(h)
        .args(["build", "-c", "mirror.toml", "-o", "dist2", "--ca-cert"])
        .arg(&missing)
        .args(["--publish", "dist3", "--format", "json"])
        .expect_status(2)
        .run();
    assert_eq!(r.json()["error"]["kind"], "usage", "{}", r.stdout);
    assert!(
        !h.join("dist2").exists(),
        "checked before anything is written"
    );
}
