//! What `build` reports: the files it wrote ([`BuildReport`]), or with
//! `--check` how the bundle on disk differs from a fresh render
//! ([`CheckReport`]). The JSON of both is part of the contract; the human
//! rendering is `output::human::build`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Bundle;
use super::manifest::FileEntry;
use crate::spec::Spec;

#[derive(Serialize)]
pub struct BuildReport {
    pub bundle_dir: PathBuf,
    pub name: String,
    pub version: String,
    pub files: Vec<FileReport>,
    pub warnings: Vec<String>,
    /// Where upstream's repo.yaml came from.
    pub upstream_repo_yaml: String,
    /// What `--publish` wrote (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<crate::bundle::publish::Published>,
}

#[derive(Serialize)]
pub struct FileReport {
    pub path: String,
    pub sha512: String,
    pub size: u64,
}

impl BuildReport {
    /// The report of `bundle`, rendered from `spec`, written to `dir`.
    pub fn of(
        dir: &Path,
        spec: &Spec,
        bundle: &Bundle,
        published: Option<crate::bundle::publish::Published>,
    ) -> BuildReport {
        BuildReport {
            bundle_dir: dir.to_path_buf(),
            name: spec.extension.name.clone(),
            version: spec.extension.version.to_string(),
            files: bundle
                .files
                .iter()
                .map(|(path, bytes)| {
                    let e = FileEntry::of(bytes);
                    FileReport {
                        path: path.clone(),
                        sha512: e.sha512,
                        size: e.size,
                    }
                })
                .collect(),
            warnings: bundle.warnings.clone(),
            upstream_repo_yaml: spec.upstream_origin.to_string(),
            published,
        }
    }
}

#[derive(Serialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Drift {
    Same,
    Changed,
    Missing,
    Unexpected,
}

#[derive(Serialize)]
pub struct CheckedFile {
    pub path: String,
    pub status: Drift,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

#[derive(Serialize)]
pub struct CheckReport {
    pub bundle_dir: PathBuf,
    pub up_to_date: bool,
    pub files: Vec<CheckedFile>,
}

impl CheckReport {
    /// `bundle` against the folder `dir` (which must exist): each rendered
    /// file the same, changed or missing (with a unified diff against what
    /// is on disk), then every file on disk the render does not have.
    pub fn of(bundle: &Bundle, dir: &Path) -> CheckReport {
        let mut files = Vec::new();
        for (path, bytes) in &bundle.files {
            let new = String::from_utf8_lossy(bytes);
            let (status, diff) = match fs::read(dir.join(path)) {
                Ok(old) if old == *bytes => (Drift::Same, None),
                Ok(old) => (
                    Drift::Changed,
                    Some(file_diff(path, &String::from_utf8_lossy(&old), &new, true)),
                ),
                Err(_) => (Drift::Missing, Some(file_diff(path, "", &new, false))),
            };
            files.push(CheckedFile {
                path: path.clone(),
                status,
                diff,
            });
        }
        for path in files_on_disk(dir) {
            if !bundle.files.contains_key(&path) {
                files.push(CheckedFile {
                    path,
                    status: Drift::Unexpected,
                    diff: None,
                });
            }
        }
        CheckReport {
            bundle_dir: dir.to_path_buf(),
            up_to_date: files.iter().all(|f| f.status == Drift::Same),
            files,
        }
    }
}

/// A missing file diffs against `/dev/null`, as `git diff` shows it.
fn file_diff(path: &str, old: &str, new: &str, old_exists: bool) -> String {
    let a = if old_exists {
        format!("a/{path}")
    } else {
        "/dev/null".to_string()
    };
    crate::output::diff::unified(old, new, &a, &format!("b/{path}"))
}

/// Every file below `dir`, as sorted `/`-separated relative paths.
fn files_on_disk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}
