//! `zoi-mirror build`: spec → bundle directory, or `--check` for drift.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::bundle::{self, report::BuildReport, report::CheckReport};
use crate::cli::BuildArgs;
use crate::error::{ErrorKind, Exit, Failure, fail};
use crate::fsutil;
use crate::output::{self, Format};

pub fn run(args: &BuildArgs, format: Format) -> Result<Exit> {
    if args.check && args.publish.is_some() {
        return fail(
            Failure::new(
                ErrorKind::Usage,
                "--check writes nothing, so there is nothing to --publish",
            )
            .hint("run `zoi-mirror build --publish …` without --check"),
        );
    }
    let publish_to = match &args.publish {
        Some(p) => Some(
            crate::storage::Dest::parse(p)
                .map_err(|m| Failure::new(ErrorKind::BadDestination, m))?,
        ),
        None => None,
    };
    // Checked before anything is written, as `publish` does; only for a
    // publish (a local build makes no request, and a stale --ca-cert or
    // ZOI_MIRROR_HEADER must not fail it).
    let http = match publish_to {
        Some(_) => super::net_options(&args.net)?,
        None => Default::default(),
    };
    let mut spec = crate::mirror::db::load_spec(
        &args.spec.path,
        args.upstream_repo_yaml.as_deref(),
        args.work.as_deref(),
    )?;
    for t in &args.tools {
        let Some((platform, path)) = t.split_once('=') else {
            return fail(Failure::new(
                ErrorKind::Usage,
                format!("--tool {t:?}: expected PLATFORM=PATH"),
            ));
        };
        let platform: crate::zoi::platform::Platform = platform
            .parse()
            .map_err(|e| Failure::new(ErrorKind::Usage, format!("--tool {t:?}: {e}")))?;
        let Some(setup) = spec.setup.as_mut() else {
            return fail(
                Failure::new(
                    ErrorKind::Usage,
                    "--tool needs a [setup] table in the spec (the URL the bundle is published at)",
                )
                .hint("add [setup] with url = \"https://…\" to the spec"),
            );
        };
        if !std::path::Path::new(path).is_file() {
            return fail(Failure::new(
                ErrorKind::Usage,
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
            Failure::new(
                ErrorKind::Io,
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
            match crate::bundle::publish::publish_dir(
                &dir,
                to,
                &settings,
                &http,
                !args.storage.private_bucket,
            ) {
                Ok(p) => Some(p),
                Err(e) => return Err(written_but_not_published(e, &dir)),
            }
        }
    };
    let report = BuildReport::of(&dir, &spec, &bundle, published);
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => output::human::build::print(&report),
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

fn check(bundle: &bundle::Bundle, dir: &Path, format: Format) -> Result<Exit> {
    if !dir.is_dir() {
        return fail(
            Failure::new(
                ErrorKind::BundleMissing,
                format!("no bundle at {}", dir.display()),
            )
            .with_exit(Exit::No)
            .hint("run `zoi-mirror build` without --check to create it"),
        );
    }
    let report = CheckReport::of(bundle, dir);
    let up_to_date = report.up_to_date;
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => output::human::build::print_check(&report),
    }
    Ok(if up_to_date { Exit::Ok } else { Exit::No })
}
