//! `zoi-mirror demo`: the whole product, end to end, on the shipped example
//! spec, with nothing but loopback and a temp directory (`mirror::demo`).

use anyhow::Result;

use crate::cli::DemoArgs;
use crate::error::Exit;
use crate::mirror::demo;
use crate::output::{self, Format};

pub fn run(args: &DemoArgs, format: Format) -> Result<Exit> {
    let human = format == Format::Human;
    if human {
        output::human::demo::print_header();
    }
    let report = demo::run(
        args.dir.as_deref(),
        &mut |step| {
            if human {
                output::human::demo::print_step(step);
            }
        },
        &|w| output::warn(w),
    )?;
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => output::human::demo::print_footer(&report),
    }
    Ok(if report.ok { Exit::Ok } else { Exit::No })
}
