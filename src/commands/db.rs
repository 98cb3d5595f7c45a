//! `zoi-mirror db sync`: mirror the package database.

use std::time::Duration;

use anyhow::Result;

use crate::bundle;
use crate::cli::DbSyncArgs;
use crate::error::{Exit, Failure, fail};
use crate::mirror::db::{self, SyncOptions};
use crate::output::{self, Format, Style, paint};
use crate::spec::{self, UpstreamInput, UpstreamOrigin};

fn check_signing(spec: &spec::Spec, args: &DbSyncArgs) -> Result<()> {
    if !spec.registry.authorities.is_empty() && spec.registry.signing_key.is_none() {
        return fail(
            Failure::bad_input(
                "unsigned_overlay",
                format!(
                    "{} lists registry.authorities but no registry.signing_key: the overlay commit that carries the corporate repo.yaml would be unsigned",
                    args.spec.path.display()
                ),
            )
            .hint("clients with authorities require the registry HEAD to be signed by one of them and roll back `zoi sync` otherwise; set registry.signing_key to a key among the authorities"),
        );
    }
    Ok(())
}

pub fn sync(args: &DbSyncArgs, format: Format) -> Result<Exit> {
    // Read against what is known before the fetch (the file given, else
    // the last fetched upstream in the cache): enough to know where to
    // fetch from. The spec is read again against the fetched repo.yaml.
    let mut spec = db::load_spec(
        &args.spec.path,
        args.upstream_repo_yaml.as_deref(),
        args.work.as_deref(),
    )?;
    let explicit = matches!(spec.upstream_origin, UpstreamOrigin::File(_));
    check_signing(&spec, args)?;
    let upstream = args
        .upstream
        .clone()
        .unwrap_or_else(|| spec.registry.upstream.clone());
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| db::default_work_dir(&upstream));
    let mut opts = SyncOptions {
        target: args
            .target
            .clone()
            .unwrap_or_else(|| spec.registry.url.clone()),
        branch: spec.registry.branch.clone(),
        work: work.clone(),
        repo_yaml: Vec::new(),
        extension: None,
        signing_key: spec.registry.signing_key.clone(),
        dry_run: args.dry_run,
        upstream,
    };

    // One sync per work dir at a time.
    let lock_dir = work
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        );
    let _lock = crate::client::lock(&lock_dir, Duration::from_secs(60))?;
    let fetched = db::fetch(&opts)?;

    // The overlay's repo.yaml derives from upstream's own, at the very
    // commit mirrored (unless a file was given explicitly).
    if !explicit {
        let Some(bytes) = fetched.upstream_file(&opts, "repo.yaml") else {
            return fail(
                Failure::bad_input(
                    "no_upstream_repo_yaml",
                    format!(
                        "upstream {} has no repo.yaml at {} ({})",
                        crate::probe::http::redact(&opts.upstream),
                        spec.registry.branch,
                        fetched.tip
                    ),
                )
                .hint("is it a Zoi registry? pass a copy of its repo.yaml with --upstream-repo-yaml FILE"),
            );
        };
        spec = spec::load(
            &args.spec.path,
            &UpstreamInput::Bytes {
                origin: format!(
                    "upstream commit {}",
                    &fetched.tip[..fetched.tip.len().min(12)]
                ),
                bytes,
            },
        )?;
        check_signing(&spec, args)?;
    }
    let rendered = bundle::render(&spec)?;
    opts.repo_yaml = rendered.files[bundle::REPO_YAML].clone();
    opts.extension = args.publish_extension.then(|| {
        let name = &spec.extension.name;
        (
            format!("{}/{name}/{name}.pkg.lua", spec.extension.tier),
            rendered.files[&bundle::Bundle::extension_file(&spec)].clone(),
        )
    });
    let mut report = db::publish(&opts, fetched)?;
    report.upstream_repo_yaml = spec.upstream_origin.to_string();

    for w in &report.warnings {
        output::warn(w);
    }
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => {
            let color = output::stdout_color();
            let short = |s: &str| s.chars().take(12).collect::<String>();
            println!(
                "upstream {} {} at {}",
                report.upstream,
                report.branch,
                short(&report.upstream_tip)
            );
            println!("repo.yaml derived from {}", report.upstream_repo_yaml);
            println!(
                "overlay  {} ({}{})",
                short(&report.overlay_commit),
                if report.overlay_reused {
                    "unchanged"
                } else {
                    "new"
                },
                if report.signed { ", signed" } else { "" }
            );
            if report.updates.is_empty() {
                println!(
                    "{} {} is up to date",
                    paint("ok", Style::Green, color),
                    report.target
                );
            } else {
                let verb = if report.dry_run {
                    "would move"
                } else {
                    "moved"
                };
                println!(
                    "target   {}: {} ref(s) {verb}",
                    report.target,
                    report.updates.len()
                );
                for u in &report.updates {
                    println!(
                        "  {:<6} {} {}",
                        u.action,
                        u.name,
                        u.new.as_deref().map(short).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(Exit::Ok)
}
