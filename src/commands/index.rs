//! `zoi-mirror index ROOT`: `.hash`/`.size`/`.files` for every archive of a
//! binary host, or `--check` that they are all current.
//!
//! The work is [`crate::mirror::index`]'s; this module turns arguments into
//! its options, draws the progress bar and prints. The JSON document is the
//! library's [`Report`] as is; its fields are documented in the command's
//! `--help` (`cli.rs`), which is where a script author looks.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::bundle::manifest::{self, Manifest};
use crate::cli::IndexArgs;
use crate::error::{Exit, Failure, fail, io_failure};
use crate::mirror::index::{self, Event, Lint, Options, Report, Status};
use crate::output::{self, Format, Style, paint};
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
    };

    let started = Instant::now();
    let plan = index::plan(&args.root, &opts)?;
    let bar = progress_bar(
        plan.bytes_to_read(),
        format == Format::Json || args.no_progress || !output::progress_allowed(),
    );
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
        Format::Human => print_human(&report, args.verbose, started.elapsed()),
    }
    Ok(exit_code(&report))
}

/// `index s3://BUCKET/PREFIX`.
fn run_s3(args: &IndexArgs, format: Format) -> Result<Exit> {
    let url = match crate::storage::Dest::parse(&args.root)
        .map_err(|m| Failure::bad_input("bad_destination", m))?
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
    };
    let started = Instant::now();
    let hidden = format == Format::Json || args.no_progress || !output::progress_allowed();
    let bar = if hidden {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {binary_bytes} {binary_bytes_per_sec}")
        {
            b.set_style(style);
        }
        b
    };
    let rt = crate::runtime::new(crate::runtime::Threads::PerCore)?;
    let report = rt
        .block_on(crate::mirror::index_s3::run(store, &opts, &|n| bar.inc(n)))
        .map_err(super::store_failure)?;
    bar.finish_and_clear();
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => print_human(&report, args.verbose, started.elapsed()),
    }
    Ok(exit_code(&report))
}

fn check_root(root: &Path) -> Result<()> {
    match fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => fail(
            Failure::bad_input(
                "root_not_a_folder",
                format!("{} is not a folder", root.display()),
            )
            .hint("give the folder that holds the archives (the binary host's document root)"),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(
            Failure::bad_input("root_missing", format!("no folder at {}", root.display()))
                .hint("give the folder that holds the archives (the binary host's document root)"),
        ),
        Err(e) => Err(io_failure("read", root, &e).into()),
    }
}

fn lint_settings(args: &IndexArgs) -> Result<Option<Lint>> {
    if let Some(template) = &args.layout {
        let layout = Layout::parse(template).map_err(|msg| {
            Failure::bad_input("bad_layout", msg)
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
    let file: PathBuf = if dir.is_file() {
        dir.clone()
    } else {
        dir.join(manifest::FILE_NAME)
    };
    let bytes = match fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(
                Failure::bad_input(
                    "bundle_missing",
                    format!("no {} at {}", manifest::FILE_NAME, file.display()),
                )
                .hint("give the bundle folder `zoi-mirror build` wrote (dist/<name>-<version>)"),
            );
        }
        Err(e) => return Err(io_failure("read", &file, &e).into()),
    };
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::bad_input(
            "bundle_invalid",
            format!("{} is not a bundle manifest: {e}", file.display()),
        )
        .hint("rebuild the bundle with `zoi-mirror build`")
    })?;
    let layout_text = if m.binaries.layout.trim().is_empty() {
        crate::spec::DEFAULT_LAYOUT
    } else {
        m.binaries.layout.as_str()
    };
    let layout = Layout::parse(layout_text).map_err(|msg| {
        Failure::bad_input(
            "bundle_invalid",
            format!("{}: binaries.layout: {msg}", file.display()),
        )
    })?;
    let format =
        ArchiveKind::of_file_name(&format!("x.{}", m.binaries.format)).ok_or_else(|| {
            Failure::bad_input(
                "bundle_invalid",
                format!(
                    "{}: unknown binaries.format `{}` (expected zpa or pkg.tar.zst)",
                    file.display(),
                    m.binaries.format
                ),
            )
        })?;
    Ok(Some(Lint {
        layout,
        format: Some(format),
    }))
}

fn progress_bar(total: u64, hidden: bool) -> ProgressBar {
    if hidden || total == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
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

fn print_human(report: &Report, verbose: bool, elapsed: Duration) {
    let color = output::stdout_color();
    let label = |status: &str, style: Style| paint(&format!("{status:<9}"), style, color);
    for a in &report.archives {
        match a.status {
            Status::Written => println!(
                "{} {}  ({}, install {}, {} paths)",
                label("written", Style::Green),
                a.path,
                HumanBytes(a.down.unwrap_or(0)),
                HumanBytes(a.install.unwrap_or(0)),
                a.files.unwrap_or(0)
            ),
            Status::Unchanged if verbose => {
                println!("{} {}", label("unchanged", Style::Dim), a.path)
            }
            Status::Ok if verbose => println!("{} {}", label("ok", Style::Green), a.path),
            Status::Unchanged | Status::Ok => {}
            Status::Mismatch => {
                println!("{} {}", label("mismatch", Style::Red), a.path);
                for p in &a.problems {
                    println!("{:<9}   {}", "", p.message);
                }
            }
            Status::Error => {
                if let Some(e) = &a.error {
                    println!(
                        "{} {}: {}: {}",
                        label("error", Style::Red),
                        a.path,
                        e.kind,
                        e.message
                    );
                }
            }
        }
    }
    for o in &report.orphans {
        println!(
            "{} {o}  (no archive next to it)",
            label("orphan", Style::Yellow)
        );
    }
    for l in &report.layout_problems {
        println!(
            "{} {}: {}",
            label("layout", Style::Yellow),
            l.path,
            l.message
        );
    }

    let t = &report.totals;
    let mut parts = if report.check {
        vec![format!("{} ok", t.ok), format!("{} mismatched", t.mismatch)]
    } else {
        vec![
            format!("{} written", t.written),
            format!("{} unchanged", t.unchanged),
        ]
    };
    parts.push(format!("{} failed", t.errors));
    if t.orphans > 0 {
        parts.push(format!("{} orphaned metadata files", t.orphans));
    }
    if t.layout_problems > 0 {
        parts.push(format!("{} layout problems", t.layout_problems));
    }
    println!(
        "{} archive{}: {}; {} read in {:.1}s",
        t.archives,
        if t.archives == 1 { "" } else { "s" },
        parts.join(", "),
        HumanBytes(t.bytes_read),
        elapsed.as_secs_f64()
    );

    if t.errors > 0 {
        output::hint(
            "nothing was written for the archives that failed; fix or remove them and run again",
        );
    }
    if report.check && t.mismatch > 0 {
        output::hint(format!(
            "run `zoi-mirror index {}` to rewrite the metadata",
            report.root.display()
        ));
    }
    if !report.check && (t.orphans > 0 || t.layout_problems > 0) {
        output::warn(
            "the tree has orphaned metadata or layout problems (listed above); `--check` fails on them",
        );
    }
}
