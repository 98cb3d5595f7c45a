//! The `index` report: one line per archive that needs attention (all of
//! them with `--verbose`), orphans, layout problems, then the totals.
//! Paths are the tree's (a bucket's keys) and messages quote archives:
//! each is shown through [`shown`].

use std::time::Duration;

use indicatif::HumanBytes;

use super::shown;
use crate::mirror::index::{Report, Status};
use crate::output::{Style, hint, outln, paint, stdout_color, warn};

pub fn print(report: &Report, verbose: bool, elapsed: Duration) {
    let color = stdout_color();
    let label = |status: &str, style: Style| paint(&format!("{status:<9}"), style, color);
    for a in &report.archives {
        match a.status {
            Status::Written => outln!(
                "{} {}  ({}, install {}, {} paths)",
                label("written", Style::Green),
                shown(&a.path),
                HumanBytes(a.down.unwrap_or(0)),
                HumanBytes(a.install.unwrap_or(0)),
                a.files.unwrap_or(0)
            ),
            Status::Unchanged if verbose => {
                outln!("{} {}", label("unchanged", Style::Dim), shown(&a.path))
            }
            Status::Ok if verbose => outln!("{} {}", label("ok", Style::Green), shown(&a.path)),
            Status::Unchanged | Status::Ok => {}
            Status::Mismatch => {
                outln!("{} {}", label("mismatch", Style::Red), shown(&a.path));
                for p in &a.problems {
                    outln!("{:<9}   {}", "", shown(&p.message));
                }
            }
            Status::Error => {
                if let Some(e) = &a.error {
                    outln!(
                        "{} {}: {}: {}",
                        label("error", Style::Red),
                        shown(&a.path),
                        e.kind,
                        shown(&e.message)
                    );
                }
            }
        }
    }
    for o in &report.orphans {
        outln!(
            "{} {}  (no archive next to it)",
            label("orphan", Style::Yellow),
            shown(o)
        );
    }
    for l in &report.layout_problems {
        outln!(
            "{} {}: {}",
            label("layout", Style::Yellow),
            shown(&l.path),
            shown(&l.message)
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
    outln!(
        "{} archive{}: {}; {} read in {:.1}s",
        t.archives,
        if t.archives == 1 { "" } else { "s" },
        parts.join(", "),
        HumanBytes(t.bytes_read),
        elapsed.as_secs_f64()
    );

    if t.errors > 0 {
        hint("nothing was written for the archives that failed; fix or remove them and run again");
    }
    if report.check && t.mismatch > 0 {
        hint(format!(
            "run `zoi-mirror index {}` to rewrite the metadata",
            report.root.display()
        ));
    }
    if !report.check && (t.orphans > 0 || t.layout_problems > 0) {
        warn(
            "the tree has orphaned metadata or layout problems (listed above); `--check` fails on them",
        );
    }
}
