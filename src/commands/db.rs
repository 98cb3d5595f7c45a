//! `zoi-mirror db sync`: mirror the package database.

use std::time::Duration;

use anyhow::Result;

use crate::cli::DbSyncArgs;
use crate::error::Exit;
use crate::mirror::db::{self, Endpoints};
use crate::output::{self, Format, Style, outln, paint};

pub fn sync(args: &DbSyncArgs, format: Format) -> Result<Exit> {
    let report = db::sync_to_target(
        &args.spec.path,
        &Endpoints {
            upstream: args.upstream.clone(),
            target: args.target.clone(),
            work: args.work.clone(),
            upstream_repo_yaml: args.upstream_repo_yaml.clone(),
            dry_run: args.dry_run,
        },
        Duration::from_secs(60),
        args.publish_extension,
    )?;

    for w in &report.warnings {
        output::warn(w);
    }
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => {
            let color = output::stdout_color();
            let short = |s: &str| s.chars().take(12).collect::<String>();
            outln!(
                "upstream {} {} at {}",
                report.upstream,
                report.branch,
                short(&report.upstream_tip)
            );
            outln!("repo.yaml derived from {}", report.upstream_repo_yaml);
            outln!(
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
                outln!(
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
                outln!(
                    "target   {}: {} ref(s) {verb}",
                    report.target,
                    report.updates.len()
                );
                for u in &report.updates {
                    outln!(
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
