//! The `demo` report, printed as it runs: a header, one line per step
//! (`ok`/`!!`, its name, what it did), then where everything is.

use crate::mirror::demo::{DemoReport, Step};
use crate::output::{Style, outln, paint, stdout_color};

pub fn print_header() {
    outln!("zoi-mirror demo: the shipped example (ACME Corp) end to end, on loopback only\n");
}

pub fn print_step(s: &Step) {
    let mark = if s.ok {
        paint("ok", Style::Green, stdout_color())
    } else {
        paint("!!", Style::Red, stdout_color())
    };
    outln!("{mark} {:<9} {}", s.step, s.detail);
}

pub fn print_footer(report: &DemoReport) {
    outln!(
        "\nEverything is in {} (spec: mirror.toml, bundle and archives: site/, the throw-away home: home/).",
        report.dir.display()
    );
    outln!(
        "Nothing outside it was touched. The config the bundle wrote: {}",
        report.config_path.display()
    );
}
