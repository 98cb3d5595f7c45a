//! The `publish` report: each file written, then one line of totals and
//! the URL clients read the folder at.

use crate::bundle::publish::Published;
use crate::output::outln;

pub fn print(report: &Published) {
    for f in &report.files {
        if f.status == crate::bundle::publish::FileStatus::Written {
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
