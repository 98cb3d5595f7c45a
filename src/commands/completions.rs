//! `zoi-mirror completions SHELL`: the shell's completion script, generated
//! by clap_complete from the same clap definitions as `--help`, so it can
//! never name a flag the binary lacks.

use std::io::Write;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::Exit;

pub fn run(args: &CompletionsArgs) -> Result<Exit> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "zoi-mirror", &mut script);
    // A reader that stops early (`| head`) is not an error.
    match std::io::stdout().lock().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(Exit::Ok),
    }
}
