//! The `check --freshness` report: fresh or not, and each problem.

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
        report.summary
    );
    for p in &report.problems {
        outln!("  {}: {}", p.kind, p.message);
    }
}
