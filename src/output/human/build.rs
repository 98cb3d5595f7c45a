//! The `build` report: the bundle written, one line per file; with
//! `--check`, the diffs, the files that should not be there, and whether
//! the bundle is up to date (a log line on stderr).

use crate::bundle::report::{BuildReport, CheckReport, Drift};
use crate::output::{self, Style, out, outln, paint, stdout_color};

pub fn print(report: &BuildReport) {
    outln!(
        "{} {} {} → {}",
        paint("Built", Style::Green, stdout_color()),
        report.name,
        report.version,
        report.bundle_dir.display()
    );
    for f in &report.files {
        outln!(
            "  {:<28} {:>8} B  sha512:{}…",
            f.path,
            f.size,
            &f.sha512[..16]
        );
    }
    if let Some(p) = &report.published {
        outln!(
            "Published {} files to {} ({} written, {} unchanged); clients read it at {}",
            p.files.len(),
            p.to,
            p.totals.written,
            p.totals.unchanged,
            p.public_url
        );
    }
}

pub fn print_check(report: &CheckReport) {
    for f in &report.files {
        if let Some(d) = &f.diff {
            out!("{d}");
        }
        if f.status == Drift::Unexpected {
            outln!("unexpected file in bundle: {}", f.path);
        }
    }
    let dir = report.bundle_dir.display();
    if report.up_to_date {
        output::info(format!("{dir} is up to date with the spec"));
    } else {
        output::info(format!(
            "{dir} differs from what the spec renders; run `zoi-mirror build` to update it"
        ));
    }
}
