//! `zoi-mirror build`: spec → bundle directory, or `--check` for drift.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::bundle::{self, manifest::FileEntry};
use crate::cli::BuildArgs;
use crate::error::{Exit, Failure, fail};
use crate::fsutil;
use crate::output::{self, Format, Style, out, outln, paint};

#[derive(Serialize)]
struct BuildReport {
    bundle_dir: PathBuf,
    name: String,
    version: String,
    files: Vec<FileReport>,
    warnings: Vec<String>,
    /// Where upstream's repo.yaml came from.
    upstream_repo_yaml: String,
    /// What `--publish` wrote (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<crate::mirror::publish::Published>,
}

#[derive(Serialize)]
struct FileReport {
    path: String,
    sha512: String,
    size: u64,
}

#[derive(Serialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Drift {
    Same,
    Changed,
    Missing,
    Unexpected,
}

#[derive(Serialize)]
struct CheckedFile {
    path: String,
    status: Drift,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
}

#[derive(Serialize)]
struct CheckReport {
    bundle_dir: PathBuf,
    up_to_date: bool,
    files: Vec<CheckedFile>,
}

pub fn run(args: &BuildArgs, format: Format) -> Result<Exit> {
    if args.check && args.publish.is_some() {
        return fail(
            Failure::bad_input(
                "usage",
                "--check writes nothing, so there is nothing to --publish",
            )
            .hint("run `zoi-mirror build --publish …` without --check"),
        );
    }
    let publish_to = match &args.publish {
        Some(p) => Some(
            crate::storage::Dest::parse(p).map_err(|m| Failure::bad_input("bad_destination", m))?,
        ),
        None => None,
    };
    let mut spec = crate::mirror::db::load_spec(
        &args.spec.path,
        args.upstream_repo_yaml.as_deref(),
        args.work.as_deref(),
    )?;
    for t in &args.tools {
        let Some((platform, path)) = t.split_once('=') else {
            return fail(Failure::bad_input(
                "usage",
                format!("--tool {t:?}: expected PLATFORM=PATH"),
            ));
        };
        let platform: crate::zoi::platform::Platform = platform
            .parse()
            .map_err(|e| Failure::bad_input("usage", format!("--tool {t:?}: {e}")))?;
        let Some(setup) = spec.setup.as_mut() else {
            return fail(
                Failure::bad_input(
                    "usage",
                    "--tool needs a [setup] table in the spec (the URL the bundle is published at)",
                )
                .hint("add [setup] with url = \"https://…\" to the spec"),
            );
        };
        if !std::path::Path::new(path).is_file() {
            return fail(Failure::bad_input(
                "usage",
                format!("--tool {t:?}: {path} is not a file"),
            ));
        }
        setup.tools.insert(platform, std::path::PathBuf::from(path));
    }
    let bundle = bundle::render(&spec)?;
    output::info(format!(
        "mirror repo.yaml derived from upstream's: {}",
        spec.upstream_origin
    ));
    for w in &bundle.warnings {
        output::warn(w);
    }
    let dir = args.out.join(&bundle.dir_name);
    if args.check {
        return check(&bundle, &dir, format);
    }

    let files: Vec<(PathBuf, Vec<u8>)> = bundle
        .files
        .iter()
        .map(|(p, b)| (PathBuf::from(p), b.clone()))
        .collect();
    if let Err(e) = fsutil::replace_dir_with(&dir, &files) {
        return fail(
            Failure::could_not_run(
                "io",
                format!("cannot write the bundle to {}: {e:#}", dir.display()),
            )
            .hint("check that the output directory is writable, or choose another with -o"),
        );
    }

    // The bundle is on disk whatever happens next: a failed publish says so.
    let published = match &publish_to {
        None => None,
        Some(to) => {
            let settings = super::storage_settings(&args.storage, &spec.binaries.storage.s3);
            match crate::mirror::publish::publish_dir(
                &dir,
                to,
                &settings,
                &crate::net::client::Options::default(),
                !args.storage.private_bucket,
            ) {
                Ok(p) => Some(p),
                Err(e) => return Err(written_but_not_published(e, &dir)),
            }
        }
    };
    let report = BuildReport {
        bundle_dir: dir.clone(),
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
    };
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => {
            let color = output::stdout_color();
            outln!(
                "{} {} {} → {}",
                paint("Built", Style::Green, color),
                report.name,
                report.version,
                dir.display()
            );
            for f in &report.files {
                outln!(
                    "  {:<28} {:>8} B  sha512:{}…",
                    f.path,
                    f.size,
                    &f.sha512[..16]
                );
            }
            if let Some(p) = &report.published {
                outln!(
                    "Published {} files to {} ({} written, {} unchanged); clients read it at {}",
                    p.files.len(),
                    p.to,
                    p.totals.written,
                    p.totals.unchanged,
                    p.public_url
                );
            }
        }
    }
    Ok(Exit::Ok)
}

/// A publish failure keeps its kind, exit code and hint; its message says
/// that the bundle itself was written.
fn written_but_not_published(e: anyhow::Error, dir: &Path) -> anyhow::Error {
    match e.downcast::<Failure>() {
        Ok(mut f) => {
            f.message = format!(
                "the bundle was written to {}, but publishing it failed: {}",
                dir.display(),
                f.message
            );
            f.into()
        }
        Err(e) => e.context(format!(
            "the bundle was written to {}, but publishing it failed",
            dir.display()
        )),
    }
}

fn diff(path: &str, old: &str, new: &str, old_exists: bool) -> String {
    let a = if old_exists {
        format!("a/{path}")
    } else {
        "/dev/null".to_string()
    };
    output::diff::unified(old, new, &a, &format!("b/{path}"))
}

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

fn check(bundle: &bundle::Bundle, dir: &Path, format: Format) -> Result<Exit> {
    if !dir.is_dir() {
        return fail(
            Failure::no("bundle_missing", format!("no bundle at {}", dir.display()))
                .hint("run `zoi-mirror build` without --check to create it"),
        );
    }
    let mut files = Vec::new();
    for (path, bytes) in &bundle.files {
        let new = String::from_utf8_lossy(bytes);
        let on_disk = fs::read(dir.join(path));
        let (status, diff) = match on_disk {
            Ok(old) if old == *bytes => (Drift::Same, None),
            Ok(old) => (
                Drift::Changed,
                Some(diff(path, &String::from_utf8_lossy(&old), &new, true)),
            ),
            Err(_) => (Drift::Missing, Some(diff(path, "", &new, false))),
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
    let up_to_date = files.iter().all(|f| f.status == Drift::Same);
    let report = CheckReport {
        bundle_dir: dir.to_path_buf(),
        up_to_date,
        files,
    };
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => {
            for f in &report.files {
                if let Some(d) = &f.diff {
                    out!("{d}");
                }
                if f.status == Drift::Unexpected {
                    outln!("unexpected file in bundle: {}", f.path);
                }
            }
            if up_to_date {
                output::info(format!("{} is up to date with the spec", dir.display()));
            } else {
                output::info(format!(
                    "{} differs from what the spec renders; run `zoi-mirror build` to update it",
                    dir.display()
                ));
            }
        }
    }
    Ok(if up_to_date { Exit::Ok } else { Exit::No })
}
