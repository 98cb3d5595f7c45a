//! `zoi-mirror init`: write a commented spec to start from.

use anyhow::Result;

use crate::cli::InitArgs;
use crate::error::Exit;
use crate::output::{self, Format};
use crate::spec::template::{InitValues, render};

pub fn run(args: &InitArgs, format: Format) -> Result<Exit> {
    let text = render(&InitValues {
        name: args.name.clone(),
        registry_url: args.registry_url.clone(),
        binaries_url: args.bin_url.clone(),
    });
    // What the user passed must itself make a valid spec; check before writing.
    crate::spec::load_str(&args.path, &text, &Default::default())?;
    let report = crate::spec::init::write(&args.path, &text, args.force)?;
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => output::human::init::print(&report),
    }
    Ok(Exit::Ok)
}
