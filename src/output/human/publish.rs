//! The `publish` report: each file written, then one line of totals and
//! the URL clients read the folder at.

use crate::bundle::publish::Report;
use crate::output::outln;

pub fn print(report: &Report) {
    for f in &report.files {
        if f.status == "written" {
            outln!("written   {}", f.path);
        }
    }
    outln!(
        "{} files to {} ({} written, {} unchanged); clients read it at {}",
        report.files.len(),
        report.to,
        report.totals.written,
        report.totals.unchanged,
        report.public_url
    );
}
