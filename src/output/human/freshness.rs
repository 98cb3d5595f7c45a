//! The `check --freshness` report: fresh or not, and each problem. Both
//! quote the beacon, which a server sent: shown through [`shown`].

use super::shown;
use crate::mirror::freshness::Report;
use crate::output::{Style, outln, paint, stdout_color};

pub fn print(report: &Report) {
    let color = stdout_color();
    outln!(
        "{} {}",
        if report.fresh {
            paint("ok  ", Style::Green, color)
        } else {
            paint("FAIL", Style::Red, color)
        },
        shown(&report.summary)
    );
    for p in &report.problems {
        outln!("  {}: {}", p.kind, shown(&p.message));
    }
}
