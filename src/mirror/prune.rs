//! `bin sync --prune`: which archives of the synced packages are old
//! enough to go, and removing one with its metadata.
//!
//! The rule: per package and platform, versions other than the index
//! version, beyond the `keep` newest (semver order when both parse, else
//! string order). Only archives sitting exactly where the layout
//! ([`crate::zoi::layout`]) puts them are candidates, and whatever a target
//! currently lives at never is, so nothing else in the tree is touched. A
//! file is read as a version of the package it is among every package of
//! the index ([`Owners`]), and only the selected packages' files are
//! candidates: a run over some of them never removes another's.
//! A package and platform whose index version is not in place after the
//! run (its download failed, or upstream does not publish it) keeps all
//! its archives: an older version is then the newest the mirror has.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::binsync::{Artifact, TargetReport, TargetStatus, meta_path};
use crate::zoi::index::PackageRef;
use crate::zoi::layout::{Owners, archive_path};
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
/// is ever touched. `known` is every package of the index, selected or not:
/// a file is the package [`Owners`] reads it as among all of them, and only
/// the selected ones' (`targets`) files are candidates, so a run over some
/// packages (`--package`, `--tier`, `--shard`) never takes another's
/// archive for a version of its own (`foo-bar-1.0` for `foo` at `bar-1.0`).
pub fn candidates(
    dest: &Path,
    layout: &str,
    known: &[PackageRef],
    targets: &[(PackageRef, Platform)],
    held: &Held,
    keep: usize,
) -> Vec<(PathBuf, String)> {
    let files = walkdir::WalkDir::new(dest)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.path().strip_prefix(dest).ok().map(Path::to_path_buf));
    let mut out: Vec<(PathBuf, String)> = candidates_in(files, layout, known, targets, held, keep)
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
    known: &[PackageRef],
    targets: &[(PackageRef, Platform)],
    held: &Held,
    keep: usize,
) -> Vec<(PathBuf, String)> {
    // Whatever a target currently lives at is never a candidate, whatever
    // its name looks like (`foo-bar-1.0` is not `foo` at version `bar-1.0`).
    let current: HashSet<PathBuf> = targets
        .iter()
        .map(|(p, pl)| archive_path(layout, p, *pl))
        .collect();
    let selected: HashSet<(&str, &str, Platform)> = targets
        .iter()
        .map(|(p, pl)| (p.repo.as_str(), p.name.as_str(), *pl))
        .collect();
    let owners = Owners::new(layout, known.iter().chain(targets.iter().map(|(p, _)| p)));
    let mut found: BTreeMap<(String, String, Platform), Vec<(String, PathBuf)>> =
        Default::default();
    for path in files {
        if current.contains(&path) {
            continue;
        }
        let Some(o) = owners.owner(&path) else {
            continue;
        };
        if o.version == o.package.version
            || !selected.contains(&(&o.package.repo, &o.package.name, o.platform))
        {
            continue;
        }
        found
            .entry((o.package.repo.clone(), o.package.name.clone(), o.platform))
            .or_default()
            .push((o.version, path));
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
        let known = [p("foo", "2.0"), p("foo-bar", "1.0")];
        let got = candidates(
            d.path(),
            "{repo}/{os}/{arch}",
            &known,
            &targets,
            &Held::new(),
            0,
        );
        assert_eq!(
            got,
            [(dir.join("foo-1.0-linux-amd64.zpa"), "1.0".to_string())]
        );
        // foo's index version did not make it: all its archives stay, and
        // foo-bar's are still its own.
        let held = Held::from([("@core/foo".to_string(), pl)]);
        assert!(candidates(d.path(), "{repo}/{os}/{arch}", &known, &targets, &held, 0).is_empty());
        let held = Held::from([("@core/foo".to_string(), "macos-arm64".parse().unwrap())]);
        assert_eq!(
            candidates(d.path(), "{repo}/{os}/{arch}", &known, &targets, &held, 0).len(),
            1
        );
    }

    /// `--package foo` (or a tier, or a shard) selects foo alone: foo-bar's
    /// archives, current or old, read as foo's `bar-…` by their names
    /// alone, are another package's and stay.
    #[test]
    fn a_run_over_some_packages_never_takes_anothers_archives() {
        let pl: Platform = "linux-amd64".parse().unwrap();
        let p = |name: &str, version: &str| PackageRef {
            repo: "core".into(),
            name: name.into(),
            version: version.into(),
        };
        let known = [p("foo", "2.0"), p("foo-bar", "1.0")];
        let targets = [(p("foo", "2.0"), pl)];
        let files = [
            "core/linux/amd64/foo-2.0-linux-amd64.zpa",
            "core/linux/amd64/foo-1.0-linux-amd64.zpa",
            "core/linux/amd64/foo-bar-1.0-linux-amd64.zpa",
            "core/linux/amd64/foo-bar-0.9-linux-amd64.zpa",
        ]
        .map(PathBuf::from);
        let got = candidates_in(
            files,
            "{repo}/{os}/{arch}",
            &known,
            &targets,
            &Held::new(),
            0,
        );
        assert_eq!(
            got,
            [(
                PathBuf::from("core/linux/amd64/foo-1.0-linux-amd64.zpa"),
                "1.0".to_string()
            )]
        );
    }

    #[test]
    fn version_order() {
        let mut v = vec!["1.10.0", "1.2.0", "1.9.1"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, ["1.2.0", "1.9.1", "1.10.0"]);
    }
}
