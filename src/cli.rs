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
    /// Make this machine's Zoi use the mirror described by a bundle.
    Apply(ApplyArgs),
    /// Say whether this machine's Zoi still uses the mirror, and why not.
    Status(StatusArgs),
    /// Undo what `apply` did for an extension.
    Revert(RevertArgs),
}

/// Options for commands that fetch over HTTP.
#[derive(Debug, Args, Clone)]
pub struct NetArgs {
    /// Extra CA certificate (PEM) to trust besides the system store; repeatable.
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_certs: Vec<PathBuf>,
    /// Extra request header `Name: value` (e.g. an Authorization token);
    /// repeatable. Never printed. Also read from ZOI_MIRROR_HEADER.
    #[arg(
        long = "header",
        value_name = "NAME: VALUE",
        env = "ZOI_MIRROR_HEADER",
        hide_env_values = true
    )]
    pub headers: Vec<String>,
    /// Seconds allowed to connect.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout: u64,
    /// Seconds allowed per request (Zoi allows 60).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
}

/// Where on the machine: scope, --root, layout, and which zoi.
#[derive(Debug, Args, Clone)]
pub struct MachineArgs {
    /// Which config layer: the user's, or the machine-wide system file (the
    /// only place policy locks count).
    #[arg(long, value_enum, default_value_t = crate::client::Scope::User)]
    pub scope: crate::client::Scope,
    /// Prefix every absolute path with DIR, as Zoi's own --root does (image
    /// builds, tests).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Force the config layout instead of detecting it: `xdg` (Zoi >= 1.26,
    /// ~/.config/zoi) or `legacy` (Zoi <= 1.25, ~/.zoi/pkgs).
    #[arg(long, value_enum)]
    pub layout: Option<crate::zoi::paths::LayoutKind>,
    /// The zoi executable (default: `zoi` on PATH).
    #[arg(long, value_name = "PATH", conflicts_with = "no_zoi")]
    pub zoi: Option<PathBuf>,
    /// Do not run zoi even if it is installed.
    #[arg(long)]
    pub no_zoi: bool,
    /// Seconds to wait for another zoi-mirror run to finish.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub lock_timeout: u64,
}

/// JSON (`--format json`): `{extension, version, scope, target: {scope,
/// layout, layout_reason, config_path, state_dir, zoi_data_dir}, dry_run,
/// already_applied, changed, keys: [{key, before, after, changed}], zoi:
/// {found, path, version, action, reason}, backup, state_file, diff, notes,
/// revert_command}`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct ApplyArgs {
    /// The bundle: the directory `build` wrote, or its http(s) URL.
    pub bundle: String,
    /// Require bundle.json to have this SHA-512 (hex).
    #[arg(long, value_name = "HEX")]
    pub sha512: Option<String>,
    #[command(flatten)]
    pub machine: MachineArgs,
    /// Print the unified diff of what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (never asked without a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

/// JSON: `{extension, version, scope, layout, layout_reason, in_sync,
/// layers: [{layer, path, exists, problem}], settings: [{key, expected,
/// system, user, project, effective, decided_by, ok, why}], traps: [{kind,
/// severity, message, hint}]}`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct StatusArgs {
    /// The bundle: the directory `build` wrote, or its http(s) URL.
    pub bundle: String,
    /// Require bundle.json to have this SHA-512 (hex).
    #[arg(long, value_name = "HEX")]
    pub sha512: Option<String>,
    #[command(flatten)]
    pub machine: MachineArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

/// JSON: `{extension, scope, reverted, config_path, keys: [{key, action:
/// restored|kept|unchanged, now, after}], zoi: removed|not_registered|
/// not_found|failed, backup, diff, notes}`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct RevertArgs {
    /// The extension name (as in the bundle).
    pub name: String,
    #[command(flatten)]
    pub machine: MachineArgs,
    /// Print the unified diff of what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (never asked without a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
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
