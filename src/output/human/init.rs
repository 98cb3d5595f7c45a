//! The `init` report: the file written (stdout) and what to do next
//! (a log line on stderr).

use crate::output::{self, outln};
use crate::spec::init::InitReport;

pub fn print(report: &InitReport) {
    outln!("wrote {}", report.path.display());
    output::info(format!(
        "next: edit it, then `zoi-mirror build -c {} -o dist`",
        report.path.display()
    ));
}
