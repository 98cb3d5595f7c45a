//! The `sync` report: upstream's tip, the files, what is missing, and
//! whether the registry was published.

use super::shown;
use crate::mirror::sync::{Report, SyncOutcome};
use crate::output::{Style, outln, paint, stdout_color};

pub fn print(report: &Report) {
    let color = stdout_color();
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
            shown(&g.package),
            shown(&g.version),
            g.platform
                .as_deref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default(),
            g.artifact,
            g.kind,
            shown(&g.message)
        );
    }
    match (&report.registry, report.outcome) {
        (Some(r), SyncOutcome::Published) => outln!(
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
