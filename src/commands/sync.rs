//! `zoi-mirror sync`: fetch, mirror, verify, then publish.

use std::time::Duration;

use anyhow::Result;

use super::net_options;
use crate::cli::SyncArgs;
use crate::error::Exit;
use crate::mirror::db::Endpoints;
use crate::mirror::sync;
use crate::output::{self, Format, Style, outln, paint};

pub fn run(args: &SyncArgs, format: Format) -> Result<Exit> {
    let http = net_options(&args.net)?;
    let opts = sync::Options {
        spec_path: args.spec.path.clone(),
        endpoints: Endpoints {
            upstream: args.upstream.clone(),
            target: args.target.clone(),
            work: args.work.clone(),
            upstream_repo_yaml: args.upstream_repo_yaml.clone(),
            dry_run: false,
        },
        dest: args.dest.clone(),
        allow_partial: args.allow_partial,
        publish_extension: args.publish_extension,
        concurrency: args.concurrency,
        retries: args.retries,
        allow_unsigned: args.allow_unsigned,
        sign: args.sign.clone(),
        lock_timeout: Duration::from_secs(args.lock_timeout),
        http,
    };
    let report = sync::run(&opts, &|line| output::info(line))?;
    if let Some(r) = &report.registry {
        for w in &r.warnings {
            output::warn(w);
        }
    }
    let exit = if report.published { Exit::Ok } else { Exit::No };
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => {
            let color = output::stdout_color();
            let short = |s: &str| s.chars().take(12).collect::<String>();
            let t = &report.totals;
            outln!(
                "upstream {} {} at {}{}",
                report.upstream,
                report.branch,
                short(&report.upstream_tip),
                report
                    .previous_tip
                    .as_deref()
                    .filter(|p| *p != report.upstream_tip)
                    .map(|p| format!(" (was {})", short(p)))
                    .unwrap_or_default()
            );
            outln!(
                "files    {} fetched ({} MiB), {} up to date, {} not available upstream, {} failed; {} verified",
                t.downloaded,
                t.bytes >> 20,
                t.up_to_date,
                t.not_available,
                t.failed,
                report.verified.len()
            );
            for g in &report.missing {
                outln!(
                    "{} {} {}{} ({}): {}: {}",
                    paint("MISSING", Style::Red, color),
                    g.package,
                    g.version,
                    g.platform
                        .as_deref()
                        .map(|p| format!(" {p}"))
                        .unwrap_or_default(),
                    g.artifact,
                    g.kind,
                    g.message
                );
            }
            match (&report.registry, report.outcome) {
                (Some(r), "published") => outln!(
                    "{} published overlay {} to {}",
                    paint("ok", Style::Green, color),
                    short(&r.overlay_commit),
                    r.target
                ),
                (Some(r), _) => outln!(
                    "{} published overlay {} to {} with {} file(s) missing: clients installing them will fail",
                    paint("PARTIAL", Style::Yellow, color),
                    short(&r.overlay_commit),
                    r.target,
                    report.missing.len()
                ),
                (None, _) => outln!(
                    "{} nothing published: the registry stays at its previous state (--allow-partial publishes anyway)",
                    paint("FAIL", Style::Red, color)
                ),
            }
            outln!("beacon   {}", report.beacon.display());
        }
    }
    Ok(exit)
}
