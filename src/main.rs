use std::process::ExitCode;

use clap::Parser;
use zoi_mirror::{cli::Cli, commands, output};

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init(output::Settings::from_flags(cli.quiet, cli.no_progress));
    let format = cli.format;
    let exit = match commands::run(cli) {
        Ok(exit) => exit,
        Err(err) => output::report_error(&err, format),
    };
    // The exit code the run decided, unless stdout lost data (a closed pipe
    // keeps it: `| head -1` is not a failure).
    ExitCode::from(output::finish(exit).code())
}
