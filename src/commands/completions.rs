//! `zoi-mirror completions SHELL`: the shell's completion script, generated
//! by clap_complete from the same clap definitions as `--help`, so it can
//! never name a flag the binary lacks.

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::Exit;
use crate::output;

pub fn run(args: &CompletionsArgs) -> Result<Exit> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "zoi-mirror", &mut script);
    if args.shell == clap_complete::Shell::Bash {
        script = fix_bash_states(&script);
    }
    // Through the printer: a reader that stops early (`| head`) is not an
    // error, any other lost write is (see `output`).
    output::stdout_text(&String::from_utf8(script).context("clap_complete wrote non-UTF-8")?);
    Ok(Exit::Ok)
}

/// clap_complete's bash script spells a subcommand's state two ways when
/// the binary's name has a hyphen (clap-rs/clap#6421): the loop that reads
/// the words arrives at `zoi__mirror__subcmd__db`, while the `case` arms
/// are labelled `zoi__subcmd__mirror__subcmd__db`, so nothing past the
/// first word completes. Labelling the arms the way the loop spells them
/// fixes it; once clap does, there is nothing left to replace.
fn fix_bash_states(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script)
        .replace("zoi__subcmd__mirror", "zoi__mirror")
        .into_bytes()
}
