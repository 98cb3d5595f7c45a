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
    /// Write (or check) `.hash`, `.size` and `.files` for every archive under
    /// a binary host's folder.
    ///
    /// Finds every `*.zpa` and legacy `*.pkg.tar.zst` under ROOT (symlinks are
    /// followed only to files inside ROOT) and writes the three metadata files
    /// next to each, byte for byte as `zoi package build` writes them: `.hash`
    /// (SHA-512 and file name), `.size` (`down:` archive bytes, `install:`
    /// unpacked bytes) and `.files` (the installed paths). Archives whose
    /// metadata is newer than the archive and consistent with it are skipped
    /// unless --force. Each archive is read once, streaming; writes are
    /// atomic. A bad archive is reported and skipped (nothing is written for
    /// it); the run goes on.
    ///
    /// With --format json, stdout is one document: `root`, `check`,
    /// `archives` (per archive: `path` relative to ROOT, `status`
    /// written|unchanged|ok|mismatch|error, `sha512`, `down`, `install`,
    /// `files` = number of paths in .files, `problems` = [{`file`, `kind`
    /// missing|differs|not_a_file|unreadable, `message`}] in --check mode,
    /// `error` = {`kind`, `message`} or null), `orphans` (metadata files
    /// without their archive), `layout_problems` ([{`path`, `message`}]) and
    /// `totals` (`archives`, `written`, `unchanged`, `ok`, `mismatch`,
    /// `errors`, `orphans`, `layout_problems`, `bytes_read`).
    ///
    /// Error kinds: empty, unreadable, not_zstd, truncated, corrupt_zstd,
    /// corrupt_tar, path_escape, no_manifest, bad_manifest, outside_root,
    /// not_a_file, metadata_not_file, changed_during_read, write_failed.
    ///
    /// Exit 1 when any archive failed; with --check also on any mismatch,
    /// missing metadata, orphan or layout problem. Exit 3 when metadata could
    /// not be written.
    Index(IndexArgs),
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

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct IndexArgs {
    /// The archive tree: the binary host's document root, or a folder in it.
    #[arg(value_name = "ROOT")]
    pub root: PathBuf,
    /// Recompute everything and compare with the files on disk; write
    /// nothing.
    #[arg(long, conflicts_with = "force")]
    pub check: bool,
    /// Re-read and rewrite every archive, even those whose metadata is fresh.
    #[arg(long)]
    pub force: bool,
    /// Archives read in parallel [default: one per core].
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<std::num::NonZeroUsize>,
    /// Lint every archive's path against this layout under ROOT, e.g. the
    /// seed guide's `{repo}/{os}/{arch}/{version}`; the file name must be
    /// `{name}-{version}-{platform}.<ext>` and agree with the folders.
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "bundle")]
    pub layout: Option<String>,
    /// Lint against the layout and archive format recorded in this bundle's
    /// bundle.json (`binaries.layout`, `binaries.format`).
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Do not draw a progress bar (never drawn when stderr is not a
    /// terminal, or with --format json).
    #[arg(long)]
    pub no_progress: bool,
    /// Also list the archives that are fine.
    #[arg(short, long)]
    pub verbose: bool,
}
