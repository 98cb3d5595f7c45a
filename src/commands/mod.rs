//! One module per command. These are the only modules that print; the
//! library underneath returns values and errors.

pub mod build;
pub mod index;
pub mod init;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::error::Exit;

pub fn run(cli: Cli) -> Result<Exit> {
    let format = cli.format;
    match &cli.command {
        Command::Init(args) => init::run(args, format),
        Command::Build(args) => build::run(args, format),
        Command::Index(args) => index::run(args, format),
    }
}
