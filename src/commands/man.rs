//! `zoi-mirror man [--dir DIR]`: manual pages rendered by clap_mangen from
//! the clap definitions (the `--help` text is the single source).
//!
//! Without `--dir`, one page for the whole CLI on stdout: the top-level
//! page (NAME, SYNOPSIS, DESCRIPTION, OPTIONS, SUBCOMMANDS, EXTRA, VERSION),
//! then one `ZOI-MIRROR <COMMAND>` section per command, depth first
//! (`ZOI-MIRROR DB SYNC` under `ZOI-MIRROR DB`), holding that command's
//! synopsis, description and options as subsections. With `--dir`, the
//! classic layout: `zoi-mirror.1` plus `zoi-mirror-<command>.1` per command,
//! which the SUBCOMMANDS section's `zoi-mirror-check(1)` references name.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::error::{Exit, io_failure};
use crate::output;

pub fn run(args: &ManArgs) -> Result<Exit> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Fills in each subcommand's full name (`zoi-mirror db sync`).
    cmd.build();
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).map_err(|e| io_failure("man", dir, &e))?;
        clap_mangen::generate_to(cmd, dir).map_err(|e| io_failure("man", dir, &e))?;
        return Ok(Exit::Ok);
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title("ZOI-MIRROR")
        .render(&mut page)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_section(sub, &mut page)?;
    }
    // Through the printer: a reader that stops early (`| head`) is not an
    // error, any other lost write is (see `output`).
    output::stdout_text(&String::from_utf8(page).context("clap_mangen wrote non-UTF-8 roff")?);
    Ok(Exit::Ok)
}

/// One command's part of the whole-CLI page. clap_mangen renders each
/// part under its own `.SH` heading; inside a command's section those
/// become `.SS` subsections, the one change made to its output.
fn command_section(cmd: &clap::Command, page: &mut Vec<u8>) -> Result<()> {
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_uppercase();
    writeln!(page, ".SH \"{name}\"")?;
    let man = clap_mangen::Man::new(cmd.clone());
    let mut part = Vec::new();
    man.render_synopsis_section(&mut part)?;
    man.render_description_section(&mut part)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut part)?;
    }
    let part = String::from_utf8(part).context("clap_mangen wrote non-UTF-8 roff")?;
    for line in part.lines() {
        match line.strip_prefix(".SH ") {
            Some(heading) => writeln!(page, ".SS {heading}")?,
            None => writeln!(page, "{line}")?,
        }
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_section(sub, page)?;
    }
    Ok(())
}
