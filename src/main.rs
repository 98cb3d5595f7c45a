use std::process::ExitCode;

use clap::Parser;
use zoi_mirror::{cli::Cli, commands, output};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.format;
    let exit = match commands::run(cli) {
        Ok(exit) => exit,
        Err(err) => output::report_error(&err, format),
    };
    ExitCode::from(exit.code())
}
