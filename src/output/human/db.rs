//! The `db sync` report: upstream's tip, where repo.yaml came from, the
//! overlay commit, and the refs moved on the target (or that it is up to
//! date).

use crate::mirror::db::SyncReport;
use crate::output::{Style, outln, paint, stdout_color};

pub fn print(report: &SyncReport) {
    let color = stdout_color();
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
        return;
    }
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
