//! Where archives sit on a binary host: the layout template
//! (`binaries.layout`, default [`DEFAULT`]) expanded as Zoi expands a URL
//! template, and matched back against the folders an archive is found in.
//!
//! The rules, the same both ways: the placeholders are Zoi's seven
//! ([`super::placeholders::KNOWN`]); `{repo}` (a tier path such as
//! `community/tools`) may span several folders, every other placeholder is
//! part of one folder name, and anything else (unknown `{words}` included)
//! stays literal. Empty, `.` and `..` folders are dropped when expanding
//! and refused in a template. The file name is always
//! `{name}-{version}-{platform}.<ext>` (what Zoi appends to a folder URL
//! and looks for in `pkg_dirs`). `bin sync` places files with
//! [`archive_path`] and [`folder`]; `index --layout` lints with [`Layout`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use regex::Regex;

use super::archive::{self, ArchiveKind};
use super::index::PackageRef;
use super::placeholders::{self, Coordinates};
use super::platform::Platform;

/// The layout of the seed guide, and the spec's default.
pub const DEFAULT: &str = "{repo}/{os}/{arch}/{version}";

/// A layout template expanded into a relative folder (no empty, `.` or
/// `..` folders).
pub fn folder(layout: &str, c: &Coordinates<'_>) -> PathBuf {
    let mut p = PathBuf::new();
    for seg in c
        .expand(layout)
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
    {
        p.push(seg);
    }
    p
}

/// Where an archive of `pkg` on `platform` lives under the host's root.
pub fn archive_path(layout: &str, pkg: &PackageRef, platform: Platform) -> PathBuf {
    let c = Coordinates {
        name: &pkg.name,
        repo: &pkg.repo,
        version: &pkg.version,
        platform,
    };
    folder(layout, &c).join(c.archive_file_name("zpa"))
}

/// Which package an archive on the host is, among every package a registry
/// index names.
///
/// A file name `{name}-{version}-{platform}.zpa` alone is ambiguous, since
/// names and versions may both contain `-`: `foo-bar-1.0-linux-amd64.zpa`
/// is `foo-bar` at `1.0`, or `foo` at `bar-1.0`. So a file is read as the
/// package that puts it exactly there ([`archive_path`]), the index
/// version of any package first (a package's current archive is always
/// its own), else the longest package name: a name is never a version of
/// a shorter one while the index knows the longer one. A path two
/// packages of different tiers would share (a layout without `{repo}` or
/// `{id}`) belongs to neither.
pub struct Owners<'a> {
    layout: &'a str,
    by_name: std::collections::HashMap<&'a str, Vec<&'a PackageRef>>,
}

/// What an archive file is: a version (maybe the index one) of a package.
#[derive(Debug, PartialEq, Eq)]
pub struct Owned<'a> {
    /// The package as the index names it, at its index version.
    pub package: &'a PackageRef,
    /// The version this file is of.
    pub version: String,
    pub platform: Platform,
}

impl<'a> Owners<'a> {
    /// `known`: every package of the index, not only the ones a run
    /// selected, so that a file is never taken for a version of another.
    pub fn new(layout: &'a str, known: impl IntoIterator<Item = &'a PackageRef>) -> Self {
        let mut by_name: std::collections::HashMap<&str, Vec<&PackageRef>> = Default::default();
        for p in known {
            let same = by_name.entry(p.name.as_str()).or_default();
            if !same.contains(&p) {
                same.push(p);
            }
        }
        Owners { layout, by_name }
    }

    /// The package `rel` (a path relative to the host's root) is an
    /// archive of, if one of the known packages puts a `.zpa` exactly there.
    pub fn owner(&self, rel: &std::path::Path) -> Option<Owned<'a>> {
        let file = rel.file_name()?.to_str()?;
        let (name_version, platform) = split_platform(file.strip_suffix(".zpa")?)?;
        // Every split of `name-version` a known package fits, longest
        // name first.
        let mut fits: Vec<(&'a PackageRef, &str)> = Vec::new();
        for (i, _) in name_version
            .match_indices('-')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            let (name, version) = (&name_version[..i], &name_version[i + 1..]);
            for pkg in self.by_name.get(name).into_iter().flatten() {
                let at = PackageRef {
                    version: version.to_string(),
                    ..(*pkg).clone()
                };
                if at.problem().is_none() && archive_path(self.layout, &at, platform) == rel {
                    fits.push((pkg, version));
                }
            }
        }
        let owned = |(package, version): (&'a PackageRef, &str)| Owned {
            package,
            version: version.to_string(),
            platform,
        };
        if let Some(current) = fits.iter().find(|(p, v)| p.version == *v) {
            return Some(owned(*current));
        }
        let (first, _) = *fits.first()?;
        let longest: Vec<_> = fits
            .iter()
            .filter(|(p, _)| p.name.len() == first.name.len())
            .collect();
        (longest.len() == 1).then(|| owned(*longest[0]))
    }
}

/// A binary-host layout template (`binaries.layout`), as a matcher for the
/// folders an archive sits in.
///
/// The placeholders are Zoi's seven. `{repo}` (a tier path such as
/// `community/tools`) may span several folders; every other placeholder is
/// part of a single folder name. Anything else, unknown `{words}` included,
/// must appear literally, because that is how Zoi expands it. The file name
/// itself is always `{name}-{version}-{platform}.<ext>` (what Zoi appends to
/// a folder URL and looks for in `pkg_dirs`).
#[derive(Debug)]
pub struct Layout {
    template: String,
    regex: Regex,
    /// The placeholder behind capture group `s<i>`.
    slots: Vec<&'static str>,
}

impl Layout {
    pub fn parse(template: &str) -> Result<Layout, String> {
        let trimmed = template.trim_matches('/');
        if !trimmed.is_empty() {
            for seg in trimmed.split('/') {
                if seg.is_empty() || seg == "." || seg == ".." {
                    return Err(format!(
                        "layout `{template}` has an empty, `.` or `..` folder; give a template such as `{}`",
                        DEFAULT
                    ));
                }
            }
        }
        let mut re = String::from("^");
        let mut slots = Vec::new();
        let mut rest = trimmed;
        while let Some(open) = rest.find('{') {
            re.push_str(&regex::escape(&rest[..open]));
            let after = &rest[open + 1..];
            let known = after.find('}').and_then(|close| {
                placeholders::KNOWN
                    .iter()
                    .find(|k| **k == &after[..close])
                    .map(|k| (*k, close))
            });
            match known {
                Some((word, close)) => {
                    let pattern = if word == "repo" {
                        "[^/]+(?:/[^/]+)*"
                    } else {
                        "[^/]+"
                    };
                    re.push_str(&format!("(?P<s{}>{pattern})", slots.len()));
                    slots.push(word);
                    rest = &after[close + 1..];
                }
                None => {
                    re.push_str(r"\{");
                    rest = after;
                }
            }
        }
        re.push_str(&regex::escape(rest));
        re.push('$');
        let regex = Regex::new(&re).map_err(|e| format!("layout `{template}`: {e}"))?;
        Ok(Layout {
            template: trimmed.to_string(),
            regex,
            slots,
        })
    }

    pub fn template(&self) -> &str {
        &self.template
    }

    /// What is wrong with an archive at `rel` (relative to ROOT), if
    /// anything: one message per disagreement.
    pub fn check(&self, rel: &str, kind: ArchiveKind) -> Vec<String> {
        let (dir, file) = rel.rsplit_once('/').unwrap_or(("", rel));
        let mut problems = Vec::new();
        if let Some(p) = archive::file_name_problem(file) {
            problems.push(p);
        }
        let expected_shape = if self.template.is_empty() {
            format!("{{name}}-{{version}}-{{platform}}.{}", kind.extension())
        } else {
            format!(
                "{}/{{name}}-{{version}}-{{platform}}.{}",
                self.template,
                kind.extension()
            )
        };

        let mut values: BTreeMap<&'static str, &str> = BTreeMap::new();
        match self.regex.captures(dir) {
            None => problems.push(format!(
                "the folder `{}` does not match the layout `{expected_shape}`",
                if dir.is_empty() { "." } else { dir }
            )),
            Some(caps) => {
                for (i, word) in self.slots.iter().enumerate() {
                    let Some(v) = caps.name(&format!("s{i}")).map(|m| m.as_str()) else {
                        continue;
                    };
                    match values.get(word) {
                        Some(prev) if *prev != v => problems.push(format!(
                            "`{{{word}}}` is `{prev}` in one folder and `{v}` in another"
                        )),
                        _ => {
                            values.insert(word, v);
                        }
                    }
                }
            }
        }

        let stem = file
            .strip_suffix(kind.extension())
            .and_then(|s| s.strip_suffix('.'))
            .unwrap_or(file);
        let Some((name_version, platform)) = split_platform(stem) else {
            problems.push(format!(
                "the file name `{file}` does not end in `-<os>-<arch>.{}` with a Zoi platform (e.g. linux-amd64)",
                kind.extension()
            ));
            return problems;
        };
        let (name, version) = match split_name_version(name_version, &values) {
            Ok(nv) => nv,
            Err(msg) => {
                problems.push(format!("{msg} (file `{file}`)"));
                return problems;
            }
        };

        let mut expect = |word: &str, want: &str| {
            if let Some(v) = values.get(word)
                && *v != want
            {
                problems.push(format!(
                    "the `{{{word}}}` folder is `{v}` but the file name `{file}` says `{want}`"
                ));
            }
        };
        expect("name", name);
        expect("version", version);
        expect("os", platform.os.as_str());
        expect("arch", platform.arch.as_str());
        expect("platform", &platform.to_string());
        if let Some(id) = values.get("id") {
            let ok = match values.get("repo") {
                Some(repo) => {
                    *id == Coordinates {
                        name,
                        repo,
                        version,
                        platform,
                    }
                    .id()
                }
                None => *id == name || id.ends_with(&format!(".{name}")),
            };
            if !ok {
                problems.push(format!(
                    "the `{{id}}` folder `{id}` does not name package `{name}` of this repo"
                ));
            }
        }
        problems
    }
}

/// `name-version-os-arch` → (`name-version`, platform).
fn split_platform(stem: &str) -> Option<(&str, Platform)> {
    let (rest, arch) = stem.rsplit_once('-')?;
    let (name_version, os) = rest.rsplit_once('-')?;
    let platform = format!("{os}-{arch}").parse().ok()?;
    (!name_version.is_empty()).then_some((name_version, platform))
}

/// Splits `name-version`, using the folders' `{version}` or `{name}` when
/// the layout has them; otherwise at the first `-` before a digit (package
/// names may contain `-`, versions may too, and versions start with one).
fn split_name_version<'a>(
    nv: &'a str,
    values: &BTreeMap<&'static str, &str>,
) -> Result<(&'a str, &'a str), String> {
    if let Some(v) = values.get("version") {
        if let Some(name) = nv
            .strip_suffix(v)
            .and_then(|n| n.strip_suffix('-'))
            .filter(|n| !n.is_empty())
        {
            return Ok((name, &nv[name.len() + 1..]));
        }
        return Err(format!(
            "the `{{version}}` folder is `{v}` but the file name has another version"
        ));
    }
    if let Some(n) = values.get("name") {
        if let Some(version) = nv
            .strip_prefix(n)
            .and_then(|r| r.strip_prefix('-'))
            .filter(|r| !r.is_empty())
        {
            return Ok((&nv[..n.len()], version));
        }
        return Err(format!(
            "the `{{name}}` folder is `{n}` but the file name names another package"
        ));
    }
    nv.match_indices('-')
        .find(|(i, _)| nv[i + 1..].starts_with(|c: char| c.is_ascii_digit()))
        .map(|(i, _)| (&nv[..i], &nv[i + 1..]))
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| "cannot tell the package name from the version in the file name".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn lint(template: &str, rel: &str) -> Vec<String> {
        let kind = ArchiveKind::of_file_name(rel).unwrap();
        Layout::parse(template).unwrap().check(rel, kind)
    }

    const SEED: &str = "{repo}/{os}/{arch}/{version}";

    #[test]
    fn default_layout_accepts_good_paths() {
        for rel in [
            "core/linux/amd64/1.0.0/tinytool-1.0.0-linux-amd64.zpa",
            "community/tools/macos/arm64/2.1-rc.1/my-tool-2.1-rc.1-macos-arm64.zpa",
            "main/windows/386/0.1/x-0.1-windows-386.pkg.tar.zst",
        ] {
            assert_eq!(lint(SEED, rel), Vec::<String>::new(), "{rel}");
        }
    }

    #[test]
    fn folders_and_file_name_must_agree() {
        let p = lint(SEED, "core/linux/amd64/1.0.1/t-1.0.0-linux-amd64.zpa");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("`{version}` folder is `1.0.1`"), "{p:?}");
        let p = lint(SEED, "core/linux/arm64/1.0.0/t-1.0.0-linux-amd64.zpa");
        assert_eq!(
            p,
            vec![
                "the `{arch}` folder is `arm64` but the file name `t-1.0.0-linux-amd64.zpa` says `amd64`"
            ]
        );
        let p = lint(SEED, "core/macos/amd64/1.0.0/t-1.0.0-linux-amd64.zpa");
        assert!(p[0].contains("`{os}` folder is `macos`"), "{p:?}");
    }

    #[test]
    fn paths_that_do_not_fit() {
        // Too shallow: repo, os, arch and version need at least four folders.
        let p = lint(SEED, "linux/amd64/1.0.0/t-1.0.0-linux-amd64.zpa");
        assert!(p[0].contains("does not match the layout"), "{p:?}");
        let p = lint(SEED, "t-1.0.0-linux-amd64.zpa");
        assert!(p[0].contains("folder `.`"), "{p:?}");
        // Not a Zoi platform in the name.
        let p = lint(SEED, "core/linux/amd64/1.0.0/t-1.0.0-linux-x86_64.zpa");
        assert!(p.iter().any(|m| m.contains("does not end in")), "{p:?}");
        // A character Zoi refuses in archive names.
        let p = lint(SEED, "core/linux/amd64/1.0.0+1/t-1.0.0+1-linux-amd64.zpa");
        assert!(p.iter().any(|m| m.contains("'+'")), "{p:?}");
    }

    #[test]
    fn other_templates() {
        let t = "pkgs/{platform}/{name}";
        assert!(lint(t, "pkgs/linux-amd64/t/t-1.0-linux-amd64.zpa").is_empty());
        let p = lint(t, "pkgs/linux-arm64/t/t-1.0-linux-amd64.zpa");
        assert!(
            p[0].contains("`{platform}` folder is `linux-arm64`"),
            "{p:?}"
        );
        let p = lint(t, "pkgs/linux-amd64/u/t-1.0-linux-amd64.zpa");
        assert!(p[0].contains("`{name}` folder is `u`"), "{p:?}");
        // Literal text around placeholders, and {id}.
        let t = "v{version}/{id}";
        assert!(lint(t, "v1.0/core.t/t-1.0-linux-amd64.zpa").is_empty());
        let t = "{repo}/{id}";
        assert!(lint(t, "a/b/a.b.t/t-1.0-linux-amd64.zpa").is_empty());
        let p = lint(t, "a/b/a.t/t-1.0-linux-amd64.zpa");
        assert!(p[0].contains("`{id}` folder"), "{p:?}");
        // An unknown placeholder is a literal folder name, as in Zoi's URLs.
        assert!(lint("{tier}", "{tier}/t-1-linux-amd64.zpa").is_empty());
        assert!(!lint("{tier}", "core/t-1-linux-amd64.zpa").is_empty());
        // No folders at all.
        assert!(lint("", "t-1-linux-amd64.zpa").is_empty());
        // The same placeholder twice must agree.
        let p = lint("{version}/{version}", "1/2/t-1-linux-amd64.zpa");
        assert!(p.iter().any(|m| m.contains("in one folder")), "{p:?}");
    }

    #[test]
    fn name_version_split_without_folders() {
        let none = BTreeMap::new();
        assert_eq!(
            split_name_version("my-tool-2.0-rc1", &none).unwrap(),
            ("my-tool", "2.0-rc1")
        );
        assert!(split_name_version("tool", &none).is_err());
        assert!(split_name_version("-1.0", &none).is_err());
    }

    #[test]
    fn bad_templates() {
        assert!(Layout::parse("a/../b").is_err());
        assert!(Layout::parse("a//b").is_err());
        assert_eq!(Layout::parse("/{repo}/").unwrap().template(), "{repo}");
    }

    #[test]
    fn owners_read_a_file_as_the_package_the_index_knows() {
        let p = |repo: &str, name: &str, version: &str| PackageRef {
            repo: repo.into(),
            name: name.into(),
            version: version.into(),
        };
        let known = [
            p("core", "foo", "2.0"),
            p("core", "foo-bar", "1.0-rc.1"),
            p("extra", "foo-bar", "3.0"),
        ];
        let pl: Platform = "linux-amd64".parse().unwrap();
        let flat = Owners::new("{repo}/{os}/{arch}", &known);
        let of = |o: &Owners, rel: &str| {
            o.owner(Path::new(rel))
                .map(|o| (o.package.display(), o.version, o.platform))
        };
        // The longer name wins, whatever its version looks like.
        assert_eq!(
            of(&flat, "core/linux/amd64/foo-bar-0.9-2-linux-amd64.zpa"),
            Some(("@core/foo-bar@1.0-rc.1".into(), "0.9-2".into(), pl))
        );
        assert_eq!(
            of(&flat, "core/linux/amd64/foo-1.0-linux-amd64.zpa"),
            Some(("@core/foo@2.0".into(), "1.0".into(), pl))
        );
        // Only a package that puts the file exactly there: @extra/foo-bar
        // lives in extra/, and nothing knows a `baz`.
        assert_eq!(
            of(&flat, "extra/linux/amd64/foo-bar-2.0-linux-amd64.zpa"),
            Some(("@extra/foo-bar@3.0".into(), "2.0".into(), pl))
        );
        assert_eq!(of(&flat, "extra/linux/amd64/foo-1.0-linux-amd64.zpa"), None);
        assert_eq!(of(&flat, "core/linux/amd64/baz-1.0-linux-amd64.zpa"), None);
        assert_eq!(of(&flat, "core/linux/amd64/foo-1.0-linux-amd64.zsa"), None);
        // A package's index version is its own even if a longer name fits:
        // `foo-bar` at `1.0-rc.1` is @core/foo-bar's current archive, not
        // @core/foo-bar-1.0's `rc.1`.
        let mut more = known.to_vec();
        more.push(p("core", "foo-bar-1.0", "9"));
        assert_eq!(
            of(
                &Owners::new("{repo}/{os}/{arch}", &more),
                "core/linux/amd64/foo-bar-1.0-rc.1-linux-amd64.zpa"
            ),
            Some(("@core/foo-bar@1.0-rc.1".into(), "1.0-rc.1".into(), pl))
        );
        // Without {repo}, both foo-bars put their files in one folder: a
        // file there is neither's to claim.
        let shared = Owners::new("{os}/{arch}", &known);
        assert_eq!(of(&shared, "linux/amd64/foo-bar-0.9-linux-amd64.zpa"), None);
        assert_eq!(
            of(&shared, "linux/amd64/foo-bar-3.0-linux-amd64.zpa"),
            Some(("@extra/foo-bar@3.0".into(), "3.0".into(), pl))
        );
    }

    #[test]
    fn local_paths_follow_the_layout() {
        let pkg = PackageRef {
            repo: "zillowe".into(),
            name: "hello".into(),
            version: "5.0.0".into(),
        };
        let p = archive_path(
            "{repo}/{os}/{arch}/{version}",
            &pkg,
            "linux-arm64".parse().unwrap(),
        );
        assert_eq!(
            p,
            Path::new("zillowe/linux/arm64/5.0.0/hello-5.0.0-linux-arm64.zpa")
        );
    }
}
