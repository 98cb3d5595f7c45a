//! `bin sync --prune`: which archives of the synced packages are old
//! enough to go, and removing one with its metadata.
//!
//! The rule: per package and platform, versions other than the index
//! version, beyond the `keep` newest (semver order when both parse, else
//! string order). Only archives sitting exactly where the layout
//! ([`crate::zoi::layout`]) puts them are candidates, and whatever a target
//! currently lives at never is, so nothing else in the tree is touched.
//! A package and platform whose index version is not in place after the
//! run (its download failed, or upstream does not publish it) keeps all
//! its archives: an older version is then the newest the mirror has.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::binsync::{Artifact, TargetReport, TargetStatus, meta_path};
use crate::zoi::index::PackageRef;
use crate::zoi::layout::archive_path;
use crate::zoi::platform::Platform;

#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    pub path: String,
    pub version: String,
}

/// The packages (`@repo/name`) and platforms whose archives are all kept:
/// their index version is not in place after the run.
pub type Held = std::collections::HashSet<(String, Platform)>;

/// [`Held`] from what a run did: every archive target that was not
/// downloaded, already up to date or (`--dry-run`) would be downloaded.
pub fn held(reports: &[TargetReport]) -> Held {
    reports
        .iter()
        .filter(|r| r.artifact == Artifact::Archive)
        .filter(|r| {
            !matches!(
                r.status,
                TargetStatus::Downloaded | TargetStatus::UpToDate | TargetStatus::WouldDownload
            )
        })
        .filter_map(|r| Some((r.package.clone(), r.platform?)))
        .collect()
}

/// Versions of the synced packages other than the index version, beyond
/// the `keep` newest, with their metadata. Only archives sitting exactly
/// where the layout puts them are considered, so nothing else in the tree
/// is ever touched.
pub fn candidates(
    dest: &Path,
    layout: &str,
    targets: &[(PackageRef, Platform)],
    held: &Held,
    keep: usize,
) -> Vec<(PathBuf, String)> {
    let files = walkdir::WalkDir::new(dest)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.path().strip_prefix(dest).ok().map(Path::to_path_buf));
    let mut out: Vec<(PathBuf, String)> = candidates_in(files, layout, targets, held, keep)
        .into_iter()
        .map(|(p, v)| (dest.join(p), v))
        .collect();
    out.sort();
    out
}

/// [`candidates`] over a list of files relative to the destination
/// root (an object store's listing); returns relative paths.
pub fn candidates_in(
    files: impl IntoIterator<Item = PathBuf>,
    layout: &str,
    targets: &[(PackageRef, Platform)],
    held: &Held,
    keep: usize,
) -> Vec<(PathBuf, String)> {
    // Whatever a target currently lives at is never a candidate, whatever
    // its name looks like (`foo-bar-1.0` is not `foo` at version `bar-1.0`).
    let current: std::collections::HashSet<PathBuf> = targets
        .iter()
        .map(|(p, pl)| archive_path(layout, p, *pl))
        .collect();
    let mut found: std::collections::BTreeMap<(String, String, Platform), Vec<(String, PathBuf)>> =
        Default::default();
    for path in files {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".zpa") else {
            continue;
        };
        if current.contains(&path) {
            continue;
        }
        // The longest package name that prefixes the file wins.
        let mut owner: Option<(&PackageRef, Platform, String)> = None;
        for (pkg, pl) in targets {
            let Some(version) = stem
                .strip_prefix(&format!("{}-", pkg.name))
                .and_then(|s| s.strip_suffix(&format!("-{pl}")))
            else {
                continue;
            };
            if version == pkg.version {
                continue;
            }
            let other = PackageRef {
                version: version.to_string(),
                ..pkg.clone()
            };
            let longer = owner
                .as_ref()
                .is_none_or(|(o, _, _)| pkg.name.len() > o.name.len());
            if other.problem().is_none() && archive_path(layout, &other, *pl) == path && longer {
                owner = Some((pkg, *pl, version.to_string()));
            }
        }
        if let Some((pkg, pl, version)) = owner {
            found
                .entry((pkg.repo.clone(), pkg.name.clone(), pl))
                .or_default()
                .push((version, path.clone()));
        }
    }
    let mut out = Vec::new();
    for ((repo, name, pl), mut versions) in found {
        if held.contains(&(format!("@{repo}/{name}"), pl)) {
            continue;
        }
        versions.sort_by(|a, b| compare_versions(&b.0, &a.0));
        out.extend(versions.into_iter().skip(keep).map(|(v, p)| (p, v)));
    }
    out.sort();
    out
}

/// Semver order when both parse, else plain string order.
pub(crate) fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// Deletes an archive and its metadata.
pub fn remove_archive(archive: &Path) -> std::io::Result<()> {
    for ext in ["hash", "size", "files", "sig"] {
        match std::fs::remove_file(meta_path(archive, ext)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::remove_file(archive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_never_takes_another_packages_current_archive() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("core/linux/amd64");
        std::fs::create_dir_all(&dir).unwrap();
        for f in [
            "foo-2.0-linux-amd64.zpa",
            "foo-1.0-linux-amd64.zpa",
            "foo-bar-1.0-linux-amd64.zpa",
        ] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        let pl: Platform = "linux-amd64".parse().unwrap();
        let p = |name: &str, version: &str| PackageRef {
            repo: "core".into(),
            name: name.into(),
            version: version.into(),
        };
        let targets = [(p("foo", "2.0"), pl), (p("foo-bar", "1.0"), pl)];
        let got = candidates(d.path(), "{repo}/{os}/{arch}", &targets, &Held::new(), 0);
        assert_eq!(
            got,
            [(dir.join("foo-1.0-linux-amd64.zpa"), "1.0".to_string())]
        );
        // foo's index version did not make it: all its archives stay, and
        // foo-bar's are still its own.
        let held = Held::from([("@core/foo".to_string(), pl)]);
        assert!(candidates(d.path(), "{repo}/{os}/{arch}", &targets, &held, 0).is_empty());
        let held = Held::from([("@core/foo".to_string(), "macos-arm64".parse().unwrap())]);
        assert_eq!(
            candidates(d.path(), "{repo}/{os}/{arch}", &targets, &held, 0).len(),
            1
        );
    }

    #[test]
    fn version_order() {
        let mut v = vec!["1.10.0", "1.2.0", "1.9.1"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, ["1.2.0", "1.9.1", "1.10.0"]);
    }
}
