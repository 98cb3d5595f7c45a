//! Command-line definitions. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done / all good
  1  the answer is no (drift, unreachable, mismatch)
  2  bad input or usage (malformed spec, config, bundle, flag)
  3  could not run (I/O, permissions, lock held)

Output: data on stdout (one JSON document with --format json), logs and
progress on stderr. NO_COLOR is honoured.";

/// Run a private mirror of the Zoi registry and binary archives, and point
/// every Zoi client at it.
#[derive(Debug, Parser)]
#[command(name = "zoi-mirror", version, after_help = EXIT_CODES_HELP, propagate_version = true)]
pub struct Cli {
    /// Output format: human text, or one JSON document on stdout.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a fully commented mirror.toml to start from.
    Init(InitArgs),
    /// Build the distributable bundle from mirror.toml (or check it is current).
    Build(BuildArgs),
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct InitArgs {
    /// Where to write the spec.
    #[arg(default_value = "mirror.toml")]
    pub path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
    /// The extension's package name (lowercase).
    #[arg(long)]
    pub name: Option<String>,
    /// The internal git URL clients sync the registry from.
    #[arg(long, value_name = "URL")]
    pub registry_url: Option<String>,
    /// The base URL of the binary host.
    #[arg(long, value_name = "URL")]
    pub bin_url: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct BuildArgs {
    /// The mirror spec.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "SPEC",
        default_value = "mirror.toml"
    )]
    pub spec: PathBuf,
    /// Output directory; the bundle goes to DIR/<name>-<version>/.
    #[arg(short = 'o', long = "out", value_name = "DIR", default_value = "dist")]
    pub out: PathBuf,
    /// Upstream's repo.yaml to build the mirror's from (overrides
    /// `registry.upstream_repo_yaml`).
    #[arg(long, value_name = "FILE")]
    pub upstream_repo_yaml: Option<PathBuf>,
    /// Re-render in memory and compare with the bundle on disk: exit 1 with a
    /// unified diff when they differ. Writes nothing.
    #[arg(long)]
    pub check: bool,
}
