//! `packages.json` (v2), the registry index, and package references
//! (`@tier/name@version`).
//!
//! The index has no platform list (platforms live only in each `.pkg.lua`),
//! so "what a mirror must host" is every package at its index version for
//! each platform the mirror serves.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One package at one version: enough to build its archive URLs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PackageRef {
    /// The package's `repo`: its tier path (`core`, `community/tools`).
    pub repo: String,
    pub name: String,
    /// The plain version (no epoch, no revision), as `{version}` expands.
    pub version: String,
}

/// A name or version segment that is safe as a file or folder name on every
/// platform and that Zoi accepts in an archive name: `[A-Za-z0-9._-]`, not
/// `.` or `..`.
fn segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl PackageRef {
    /// Why this reference cannot name an archive (a registry index is
    /// upstream's data: a version like `1/../../x` must not become a path).
    pub fn problem(&self) -> Option<String> {
        if !segment_ok(&self.name) {
            return Some(format!(
                "package name {:?} is not [A-Za-z0-9._-]",
                self.name
            ));
        }
        if !segment_ok(&self.version) {
            return Some(format!(
                "version {:?} of {} is not [A-Za-z0-9._-]",
                self.version, self.name
            ));
        }
        if !self.repo.split('/').all(segment_ok) {
            return Some(format!(
                "tier {:?} of {} is not a path of [A-Za-z0-9._-] segments",
                self.repo, self.name
            ));
        }
        None
    }

    /// `@tier/name@version`.
    pub fn display(&self) -> String {
        format!("@{}/{}@{}", self.repo, self.name, self.version)
    }

    /// Parses `@tier/name@version` (the tier may be nested).
    pub fn parse(s: &str) -> Result<PackageRef, String> {
        let err = || {
            format!(
                "'{s}' is not a package reference: expected @tier/name@version, e.g. @core/hello@1.0.0"
            )
        };
        let rest = s.strip_prefix('@').ok_or_else(err)?;
        let (path, version) = rest.rsplit_once('@').ok_or_else(err)?;
        let (repo, name) = path.rsplit_once('/').ok_or_else(err)?;
        if repo.is_empty() || name.is_empty() || version.is_empty() {
            return Err(err());
        }
        let p = PackageRef {
            repo: repo.to_string(),
            name: name.to_string(),
            version: version.to_string(),
        };
        match p.problem() {
            Some(why) => Err(format!("'{s}': {why}")),
            None => Ok(p),
        }
    }
}

#[derive(Deserialize)]
struct IndexV2 {
    version: String,
    packages: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    repo: String,
    version: String,
}

/// Every package of a v2 index at its index version, ordered by id.
pub fn parse(bytes: &[u8]) -> Result<Vec<PackageRef>, String> {
    let idx: IndexV2 =
        serde_json::from_slice(bytes).map_err(|e| format!("not a packages.json: {e}"))?;
    if idx.version != "2" {
        return Err(format!(
            "packages.json version {:?} is not supported (expected \"2\")",
            idx.version
        ));
    }
    let mut out = Vec::with_capacity(idx.packages.len());
    for (id, e) in idx.packages {
        let Some(name) = key_name(&id, &e.repo) else {
            return Err(format!(
                "package key {id:?} is not @{repo}/<name> (its entry's repo is {repo:?}): Zoi writes every key as @<repo>/<name> and looks packages up by that exact key; zoi-mirror will not guess which package this one means",
                repo = e.repo
            ));
        };
        let p = PackageRef {
            repo: e.repo.clone(),
            name: name.to_string(),
            version: e.version,
        };
        if let Some(why) = p.problem() {
            return Err(format!("package {id:?}: {why}"));
        }
        out.push(p);
    }
    Ok(out)
}

/// The name in an index key, if the key is exactly `@<repo>/<name>` for the
/// entry's `repo` and a one-segment name: the only shape Zoi writes
/// (`zoi-package` `registry.rs` `generate_metadata`: `@{repo_path}/{name}`,
/// with `repo_path` the entry's `repo`) and the one it looks up
/// (`zoi-purl` `resolve_purl_with_db`: `@{repo}/{name}`, exact match). The
/// name's characters are [`PackageRef::problem`]'s to judge.
fn key_name<'a>(key: &'a str, repo: &str) -> Option<&'a str> {
    let name = key
        .strip_prefix('@')?
        .strip_prefix(repo)?
        .strip_prefix('/')?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        assert_eq!(
            PackageRef::parse("@community/tools/x@1.2.3").unwrap(),
            PackageRef {
                repo: "community/tools".into(),
                name: "x".into(),
                version: "1.2.3".into()
            }
        );
        for bad in ["core/x@1", "@x@1", "@core/x", "@core/@1"] {
            assert!(PackageRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_a_v2_index() {
        let j = br#"{"version":"2","packages":{"@zillowe/hello":{"repo":"zillowe","version":"5.0.0","x":1}}}"#;
        assert_eq!(
            parse(j).unwrap(),
            [PackageRef {
                repo: "zillowe".into(),
                name: "hello".into(),
                version: "5.0.0".into()
            }]
        );
        assert!(parse(br#"{"version":"1","packages":{}}"#).is_err());
        let evil = br#"{"version":"2","packages":{"@core/x":{"repo":"core","version":"1/../../../etc/x"}}}"#;
        assert!(parse(evil).unwrap_err().contains("is not [A-Za-z0-9._-]"));
        let evil = br#"{"version":"2","packages":{"@../x":{"repo":"..","version":"1"}}}"#;
        assert!(parse(evil).is_err());
        assert!(PackageRef::parse("@core/x@1/../2").is_err());
    }

    /// Zoi writes every key as `@{repo}/{name}` (`generate_metadata`) and
    /// looks packages up by that exact key (`resolve_purl_with_db`): a key
    /// that is not one names no package a client can ask for, and must not
    /// be read as another package (or a path) by dropping what precedes its
    /// last `/`.
    #[test]
    fn a_key_that_is_not_at_repo_slash_name_is_refused_naming_it() {
        let idx = |key: &str, repo: &str| {
            format!(
                r#"{{"version":"2","packages":{{"{key}":{{"repo":"{repo}","version":"1.0.0"}}}}}}"#
            )
        };
        for (key, repo) in [
            ("@core/../x", "core"),
            ("@core//etc/passwd", "core"),
            ("@core/./x", "core"),
            ("@core/tools/x", "core"),
            ("@main/x", "core"),
            ("core/x", "core"),
            ("@core/x/", "core"),
            ("@Core/x", "core"),
        ] {
            let err = parse(idx(key, repo).as_bytes()).expect_err(key);
            assert!(
                err.contains(&format!("package key {key:?}"))
                    && err.contains(&format!("@{repo}/<name>")),
                "{key}: {err}"
            );
        }
        // Nested tiers are fine when the key says the same as `repo`.
        assert_eq!(
            parse(idx("@community/tools/x", "community/tools").as_bytes()).unwrap(),
            [PackageRef {
                repo: "community/tools".into(),
                name: "x".into(),
                version: "1.0.0".into()
            }]
        );
    }
}
