//! The `bin sync` report: each key and file (fetched, skipped, to fetch,
//! failed; warnings as `warning:` lines on stderr naming the file), what
//! was pruned, then one line of totals. Names, versions, paths and
//! messages come from upstream and the destination: each is shown through
//! [`shown`].

use super::shown;
use crate::mirror::bins::Report;
use crate::mirror::binsync::{self, KeyStatus, TargetStatus};
use crate::output::{self, Style, outln, paint};

pub fn print(report: &Report) {
    let color = output::stdout_color();
    for k in &report.keys {
        match (k.status, &k.error) {
            (_, Some(e)) => outln!(
                "{} key {}: {}: {}",
                paint("FAIL   ", Style::Red, color),
                shown(&k.name),
                e.kind.as_str(),
                shown(&e.message)
            ),
            (KeyStatus::Placed, _) => outln!(
                "{} key {} → {}",
                paint("placed ", Style::Green, color),
                shown(&k.name),
                shown(&k.path)
            ),
            (KeyStatus::WouldPlace, _) => {
                outln!("would place key {} → {}", shown(&k.name), shown(&k.path))
            }
            // Failed carries its error (above); an up-to-date key says nothing.
            (KeyStatus::UpToDate | KeyStatus::Failed, None) => {}
        }
    }
    for t in &report.targets {
        let what = match t.artifact {
            binsync::Artifact::Archive => String::new(),
            binsync::Artifact::Source => " (source)".to_string(),
            binsync::Artifact::Delta => " (delta)".to_string(),
        };
        let label = format!(
            "{}@{}{}{what}",
            shown(&t.package),
            shown(&t.version),
            t.platform.map(|p| format!(" {p}")).unwrap_or_default()
        );
        for w in &t.warnings {
            output::warn(format!("{label}: {w}"));
        }
        match t.status {
            TargetStatus::Downloaded => outln!(
                "{} {label} ({} bytes{})",
                paint("fetched", Style::Green, color),
                t.bytes,
                if t.resumed { ", resumed" } else { "" }
            ),
            TargetStatus::NotAvailable => outln!(
                "{} {label}: not available upstream",
                paint("skip   ", Style::Dim, color)
            ),
            TargetStatus::WouldDownload => outln!("would fetch {label} → {}", shown(&t.path)),
            TargetStatus::Failed => outln!(
                "{} {label}: {}",
                paint("FAIL   ", Style::Red, color),
                t.error
                    .as_ref()
                    .map(|e| format!("{}: {}", e.kind.as_str(), shown(&e.message)))
                    .unwrap_or_default()
            ),
            TargetStatus::UpToDate => {}
        }
    }
    for p in &report.pruned {
        outln!(
            "{} {}",
            if report.dry_run {
                "would prune"
            } else {
                "pruned"
            },
            shown(&p.path)
        );
    }
    let t = &report.totals;
    outln!(
        "{} files: {} fetched ({} MiB), {} up to date, {} not available upstream, {} failed{}",
        t.targets,
        t.downloaded,
        t.bytes >> 20,
        t.up_to_date,
        t.not_available,
        t.failed,
        if t.would_download > 0 {
            format!(", {} to fetch", t.would_download)
        } else {
            String::new()
        }
    );
}
