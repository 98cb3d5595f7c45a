//! `zoi-mirror index ROOT`: `.hash`/`.size`/`.files` for every archive of a
//! binary host, or `--check` that they are all current.
//!
//! The work is [`crate::mirror::index`]'s; this module turns arguments into
//! its options, draws the progress bar and prints. The JSON document is the
//! library's [`Report`] as is; its fields are documented in the command's
//! `--help` (`cli.rs`), which is where a script author looks.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Result;

use crate::bundle::manifest;
use crate::cli::IndexArgs;
use crate::error::{ErrorKind, Exit, Failure, fail, io_failure};
use crate::mirror::index::{self, Event, Lint, Options, Report, Status};
use crate::output::progress::{self, Kind};
use crate::output::{self, Format};
use crate::zoi::archive::ArchiveKind;
use crate::zoi::layout::Layout;

pub fn run(args: &IndexArgs, format: Format) -> Result<Exit> {
    if crate::storage::is_s3(&args.root) {
        return run_s3(args, format);
    }
    check_root(&args.root)?;
    let lint = lint_settings(args)?;
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |n| n.get(),
    );
    let opts = Options {
        jobs,
        force: args.force,
        check: args.check,
        lint,
        seen_list: !args.no_cache,
    };

    let started = Instant::now();
    let plan = index::plan(&args.root, &opts)?;
    let bar = progress::bar(Kind::Bytes, Some(plan.bytes_to_read()), format);
    let to_read = plan.archives_to_read();
    let done = AtomicUsize::new(0);
    let report = index::execute(plan, &opts, &|event| match event {
        Event::Read(n) => bar.inc(n),
        Event::Finished(r) => {
            if !matches!(r.status, Status::Unchanged) && r.error.is_none() {
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                bar.set_message(format!("{n}/{to_read} archives"));
            }
        }
    })?;
    bar.finish_and_clear();

    match format {
        Format::Json => output::json(&report)?,
        Format::Human => {
            crate::output::human::index::print(&report, args.verbose, started.elapsed())
        }
    }
    Ok(exit_code(&report))
}

/// `index s3://BUCKET/PREFIX`.
fn run_s3(args: &IndexArgs, format: Format) -> Result<Exit> {
    let url = match crate::storage::Dest::parse(&args.root)
        .map_err(|m| Failure::new(ErrorKind::BadDestination, m))?
    {
        crate::storage::Dest::S3(u) => u,
        crate::storage::Dest::Local(_) => unreachable!("checked by is_s3"),
    };
    let settings = super::storage_settings(&args.storage, &crate::storage::S3Settings::default());
    let store = std::sync::Arc::new(super::open_store(&url, &settings)?);
    let lint = lint_settings(args)?;
    let jobs = args.jobs.map_or(8, |n| n.get());
    let opts = Options {
        jobs,
        force: args.force,
        check: args.check,
        lint,
        seen_list: !args.no_cache,
    };
    let started = Instant::now();
    let bar = progress::bar(Kind::BytesUnknownTotal, None, format);
    let rt = crate::runtime::new(crate::runtime::Threads::PerCore)?;
    let report = rt
        .block_on(crate::mirror::index_s3::run(store, &opts, &|n| bar.inc(n)))
        .map_err(super::store_failure)?;
    bar.finish_and_clear();
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => {
            crate::output::human::index::print(&report, args.verbose, started.elapsed())
        }
    }
    Ok(exit_code(&report))
}

fn check_root(root: &Path) -> Result<()> {
    match fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => fail(
            Failure::new(
                ErrorKind::RootNotAFolder,
                format!("{} is not a folder", root.display()),
            )
            .hint("give the folder that holds the archives (the binary host's document root)"),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(
            Failure::new(
                ErrorKind::RootMissing,
                format!("no folder at {}", root.display()),
            )
            .hint("give the folder that holds the archives (the binary host's document root)"),
        ),
        Err(e) => Err(io_failure("read", root, &e).into()),
    }
}

fn lint_settings(args: &IndexArgs) -> Result<Option<Lint>> {
    if let Some(template) = &args.layout {
        let layout = Layout::parse(template).map_err(|msg| {
            Failure::new(ErrorKind::BadLayout, msg)
                .hint("placeholders are {repo}, {os}, {arch}, {platform}, {version}, {name}, {id}")
        })?;
        return Ok(Some(Lint {
            layout,
            format: None,
        }));
    }
    let Some(dir) = &args.bundle else {
        return Ok(None);
    };
    // Read and checked as `apply` reads it: format version, name, paths.
    let m = crate::bundle::load::manifest_at(dir)?;
    let file = if dir.is_file() {
        dir.clone()
    } else {
        dir.join(manifest::FILE_NAME)
    };
    let layout_text = if m.binaries.layout.trim().is_empty() {
        crate::spec::DEFAULT_LAYOUT
    } else {
        m.binaries.layout.as_str()
    };
    let layout = Layout::parse(layout_text).map_err(|msg| {
        Failure::new(
            ErrorKind::BundleInvalid,
            format!("{}: binaries.layout: {msg}", file.display()),
        )
        .hint("rebuild the bundle with `zoi-mirror build`, or give the layout with --layout")
    })?;
    let format =
        ArchiveKind::of_file_name(&format!("x.{}", m.binaries.format)).ok_or_else(|| {
            Failure::new(
                ErrorKind::BundleInvalid,
                format!(
                    "{}: unknown binaries.format `{}` (expected zpa or pkg.tar.zst)",
                    file.display(),
                    m.binaries.format
                ),
            )
            .hint("rebuild the bundle with `zoi-mirror build`, or give --layout instead of --bundle (the archive format is then not checked)")
        })?;
    Ok(Some(Lint {
        layout,
        format: Some(format),
    }))
}

fn exit_code(report: &Report) -> Exit {
    let t = &report.totals;
    if report
        .archives
        .iter()
        .any(|a| a.error.as_ref().is_some_and(index::Failed::is_environment))
    {
        Exit::CouldNotRun
    } else if t.errors > 0
        || (report.check && (t.mismatch > 0 || t.orphans > 0 || t.layout_problems > 0))
    {
        Exit::No
    } else {
        Exit::Ok
    }
}
