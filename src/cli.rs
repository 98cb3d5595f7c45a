//! Command-line definitions. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::builder::{Resettable, StyledStr};
use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::output::Format;

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done / all good
  1  the answer is no (drift, unreachable, mismatch)
  2  bad input or usage (malformed spec, config, bundle, flag)
  3  could not run (I/O, permissions, lock held)

Inputs: a FILE|URL is an http(s) URL, a file:// URL or a path (any other
scheme:// is exit 2). A missing file, or a directory given for a file, is
exit 2; a file that is there but cannot be read is exit 3.

Output: data on stdout (one JSON document with --format json), logs,
warnings and progress on stderr. -q/--quiet keeps only data and errors;
--no-progress (or ZOI_MIRROR_NO_PROGRESS=1) never draws a bar. NO_COLOR is
honoured. A closed pipe (`| head`) ends the run quietly with its usual code.";

/// One command's arguments, which clap builds only when that command runs
/// (or when completions or the man page need them all). The derive
/// otherwise builds every command's arguments on each start to parse one
/// command's: 0.6 ms of a local `apply`'s 6, against 0.4 ms deferred.
#[derive(Debug)]
pub struct Lazy<T>(pub T);

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Lazy)
    }
    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Lazy)
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(|cmd| keep_about(cmd, T::augment_args))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(|cmd| keep_about(cmd, T::augment_args_for_update))
    }
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

/// Runs a command's deferred `augment`, keeping the about text the
/// command's variant gave it. Without deferral the derive applies the
/// variant's doc comment after the arguments' own (a struct's, or a
/// flattened one's), so the variant's wins; deferred, the arguments come
/// last and would replace it.
fn keep_about(cmd: clap::Command, augment: fn(clap::Command) -> clap::Command) -> clap::Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let reset = |text: Option<StyledStr>| text.map_or(Resettable::Reset, Resettable::Value);
    augment(cmd)
        .about(reset(about))
        .long_about(reset(long_about))
}

/// Run a private mirror of the Zoi registry and binary archives, and point
/// every Zoi client at it.
#[derive(Debug, Parser)]
#[command(name = "zoi-mirror", version, after_help = EXIT_CODES_HELP, propagate_version = true)]
pub struct Cli {
    /// Output format: human text, or one JSON document on stdout.
    #[arg(long, global = true, value_parser = format_parser(), default_value = "human")]
    pub format: Format,

    /// No logs, warnings or progress on stderr; data on stdout and errors
    /// stay.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Never draw a progress bar (also when ZOI_MIRROR_NO_PROGRESS is set to
    /// any non-empty value).
    #[arg(long, global = true)]
    pub no_progress: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a fully commented mirror.toml to start from.
    Init(Lazy<InitArgs>),
    /// Build the distributable bundle from mirror.toml (or check it is current).
    Build(Lazy<BuildArgs>),
    /// Make this machine's Zoi use the mirror described by a bundle.
    Apply(Lazy<ApplyArgs>),
    /// Say whether this machine's Zoi still uses the mirror, and why not.
    Status(Lazy<StatusArgs>),
    /// Undo what `apply` did for an extension.
    Revert(Lazy<RevertArgs>),
    /// Check that every URL Zoi will fetch from the mirror answers correctly.
    Check(Lazy<CheckArgs>),
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
    /// To skip re-reading the metadata of unchanged archives, a local ROOT's
    /// run keeps a *seen list* in the user's cache,
    /// `$XDG_CACHE_HOME/zoi-mirror/index/<digest of ROOT>.seen` (about 300
    /// bytes per archive; ~/.cache when XDG_CACHE_HOME is unset): each
    /// archive's and its metadata files' inode, size, mtime and ctime when
    /// they were last verified. It only ever saves reads (any change to a
    /// file changes its ctime); deleting it is always safe. --no-cache
    /// neither reads nor writes it; --check and --force do not use it.
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
    Index(Lazy<IndexArgs>),
    /// Fill the whole mirror in the order that is safe for clients: fetch
    /// upstream's git (nothing pushed), mirror every file the fetched index
    /// needs, verify them, and only then publish the registry.
    ///
    /// The one command a cron job or systemd timer runs (see
    /// examples/systemd/ and examples/cron). Steps: (1) fetch upstream into
    /// the work dir, as `db sync` does, pushing nothing; (2) copy keys,
    /// archives (.hash/.size/.files/.sig), source bundles and deltas for
    /// every package of the packages.json at the *fetched* tip, as `bin
    /// sync` does; (3) check what this run placed with the `index --check`
    /// rules; (4) push the overlay commit (the pointer moves last); (5)
    /// write `zoi-mirror-status.json` on the binary host (atomically, last).
    /// A client syncing at any moment sees the old index with all of its
    /// archives, or the new one with all of its archives.
    ///
    /// When a file the new index needs cannot be placed although upstream
    /// has it (a failure, not "not available upstream"), nothing is
    /// published: exit 1, the registry stays at its previous state and the
    /// beacon's `published` part keeps describing it (the run is recorded
    /// in `last_run`). --allow-partial publishes anyway (exit 0) and lists
    /// what clients will miss. Two runs over the same work dir never
    /// overlap: the second waits --lock-timeout seconds, then exits 3.
    /// Old versions are never pruned here (clients of the previous index
    /// still install them): use `bin sync --prune`.
    ///
    /// JSON: `{upstream, branch, upstream_tip, previous_tip,
    /// upstream_repo_yaml, dest, outcome: published|published_partial|
    /// not_published, published, registry: <db sync's JSON>|null, keys,
    /// targets (as bin sync), verified: [{path, status: ok|mismatch|error}],
    /// missing: [{package, version, platform, artifact: archive|source|
    /// delta|key|registry, path, kind, message}], totals (as bin sync),
    /// beacon, duration_ms}`.
    Sync(Lazy<SyncArgs>),
    /// Mirror the registry's git repository (the package database).
    #[command(subcommand)]
    Db(DbCommand),
    /// Mirror upstream's pre-built archives onto the binary host.
    #[command(subcommand)]
    Bin(BinCommand),
    /// Serve a binary tree and bundles over HTTP (small teams, air-gapped
    /// laptops, tests).
    ///
    /// GET and HEAD with byte ranges, Content-Length, ETag/Last-Modified and
    /// conditional requests; `.hash`/`.size`/`.files` as text/plain. Nothing
    /// outside DIR is served (no `..`, no symlinks leading out), and no
    /// directory listings unless --list. Binds 127.0.0.1 unless --bind says
    /// otherwise. Access log on stderr (not with --quiet); stops cleanly on
    /// Ctrl-C/SIGTERM.
    /// Prints the base URL on stdout once listening (JSON: `{url, root}`).
    Serve(Lazy<ServeArgs>),
    /// Publish a bundle folder (and anything else: keys, setup scripts) to
    /// the binary host's object storage, so one bucket serves archives,
    /// keys and setup.
    ///
    /// Every file under DIR is written to `s3://BUCKET/PREFIX/<path>` with
    /// its content type; `bundle.json` last (it pins the others). Files
    /// whose stored bytes are the same are left alone. JSON: `{to, files:
    /// [{path, status: written|unchanged}], totals: {written, unchanged}}`.
    Publish(Lazy<PublishArgs>),
    /// Run the whole product end to end on the shipped example, on loopback
    /// only: build the bundle, make and index sample archives, serve them,
    /// apply the bundle to a throw-away home, check and report.
    ///
    /// Everything happens in a temp directory (kept, and printed at the end);
    /// your own Zoi config is never touched. JSON: `{dir, url, steps: [{step,
    /// ok, detail}], ok}`.
    Demo(Lazy<DemoArgs>),
    /// Print a shell completion script on stdout (bash, zsh, fish,
    /// powershell, elvish).
    ///
    /// e.g. `zoi-mirror completions bash > ~/.local/share/bash-completion/completions/zoi-mirror`.
    /// The script is the data whatever --format says.
    Completions(Lazy<CompletionsArgs>),
    /// Print the manual page (roff) for the whole CLI on stdout, or write
    /// one page per command into --dir.
    ///
    /// e.g. `zoi-mirror man | man -l -`, or `zoi-mirror man --dir
    /// /usr/local/share/man/man1`.
    Man(Lazy<ManArgs>),
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct ManArgs {
    /// Write `zoi-mirror.1` and one `zoi-mirror-COMMAND.1` per command into
    /// DIR (created if missing) instead of printing one page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct DemoArgs {
    /// Work in DIR instead of a new temp directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct ServeArgs {
    /// The directory to serve.
    pub dir: PathBuf,
    /// Address to listen on: an IP address or `localhost`, optionally with
    /// a port (`127.0.0.1:8080`, `[::1]:8080`, `localhost:0`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1", value_parser = parse_bind)]
    pub bind: Bind,
    /// Port to listen on (0: any free port) [default: 8080, or the port in
    /// --bind].
    #[arg(long)]
    pub port: Option<u16>,
    /// Allow directory listings.
    #[arg(long)]
    pub list: bool,
    /// Run `index` over DIR before serving.
    #[arg(long)]
    pub index_on_start: bool,
}

/// `serve --bind`: where to listen, and the port if it came with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bind {
    pub ip: std::net::IpAddr,
    pub port: Option<u16>,
}

/// `serve`'s port when neither flag names one.
pub const DEFAULT_SERVE_PORT: u16 = 8080;

/// Reads `--bind`: `IP`, `IP:PORT`, `[IPv6]`, `[IPv6]:PORT`, `localhost` or
/// `localhost:PORT`. `localhost` is 127.0.0.1 (no lookup: what a server
/// binds must not depend on the resolver's order). Other names are refused
/// rather than resolved, for the same reason.
pub fn parse_bind(s: &str) -> Result<Bind, String> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Bind { ip, port: None });
    }
    // An IPv6 address has colons of its own: only in brackets can it take
    // a port.
    let (ip, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{s}` lacks the closing `]`"))?;
        let ip = v6
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("`{v6}` is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("`{after}` after `]` is not `:PORT`"))?,
            ),
        };
        (IpAddr::V6(ip), port)
    } else {
        let (host, port) = match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        };
        let ip = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else if host.contains(':') {
            return Err(
                "an IPv6 address with a port is written in brackets, e.g. [::1]:8080".into(),
            );
        } else {
            host.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| {
                format!("`{host}` is not an IP address (use e.g. 127.0.0.1, 0.0.0.0, [::1] or localhost)")
            })?
        };
        (ip, port)
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("port `{p}` is not a number from 0 to 65535"))
        })
        .transpose()?;
    Ok(Bind { ip, port })
}

impl ServeArgs {
    /// The address to listen on: `--port` over the port in `--bind`, over
    /// 8080. Both given and different is a usage error (which one was
    /// meant cannot be guessed).
    pub fn listen_addr(&self) -> Result<std::net::SocketAddr, String> {
        let port = match (self.bind.port, self.port) {
            (Some(b), Some(p)) if b != p => {
                return Err(format!(
                    "--bind names port {b} but --port says {p}; give the port once"
                ));
            }
            (b, p) => p.or(b).unwrap_or(DEFAULT_SERVE_PORT),
        };
        Ok(std::net::SocketAddr::new(self.bind.ip, port))
    }
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct SyncArgs {
    #[command(flatten)]
    pub spec: SpecArg,
    /// Root of the binary host (what binaries.url serves); the beacon
    /// `zoi-mirror-status.json` is written there.
    #[arg(long, value_name = "DIR")]
    pub dest: PathBuf,
    /// Cache dir for the mirror clone (default: as `db sync` chooses it).
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Upstream git URL (default: registry.upstream).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Internal git URL to push to (default: registry.url).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Upstream's repo.yaml to build the mirror's from, instead of the one
    /// at the fetched commit.
    #[arg(long, value_name = "FILE")]
    pub upstream_repo_yaml: Option<PathBuf>,
    /// Publish even when files the new index needs could not be placed;
    /// the report and the beacon list what clients will miss.
    #[arg(long)]
    pub allow_partial: bool,
    /// Also add the extension's .pkg.lua under its tier (as `db sync`).
    #[arg(long)]
    pub publish_extension: bool,
    /// Downloads at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = at_least_one::<usize>)]
    pub concurrency: usize,
    /// Retries after a 5xx, 408, 425 or 429, a reset or a timeout (downloads
    /// resume); never after another 4xx.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
    /// Place files without verifying upstream's signatures (also
    /// `binaries.allow_unsigned`).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Re-sign every verified file with this GnuPG key (default:
    /// `binaries.sign_key`).
    #[arg(long, value_name = "KEYID")]
    pub sign: Option<String>,
    /// Seconds to wait for another run holding the lock.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub lock_timeout: u64,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Subcommand)]
pub enum BinCommand {
    /// Copy every upstream archive the company serves (with its .hash,
    /// .size, .files and .sig) into the local binary tree, in the spec's
    /// layout, verified and incrementally.
    ///
    /// Packages: every package of upstream's packages.json at its index
    /// version (from --index, else the `db sync` cache), times the spec's
    /// platforms, narrowed by --tier/--package/--platform. Upstream URLs come
    /// from upstream's repo.yaml exactly as Zoi builds them. An archive is
    /// placed only once its SHA-512 and size match upstream's metadata; an
    /// upstream 404 is "not available upstream", not a failure.
    ///
    /// Keys: every key upstream's repo.yaml lists is fetched (a URL, or a
    /// fingerprint from keys.openpgp.org), checked to be an OpenPGP public
    /// key and placed at `<keys_dir>/<name>.asc`. Signatures: when upstream
    /// declares keys, each archive is verified as Zoi verifies it (embedded
    /// `manifest.sig` first, else the `.sig`) before it is placed. Source
    /// bundles (`.zsa`, upstream's `source-main` link) and `.zdelta` patches
    /// (its `delta` links) are mirrored the same way.
    ///
    /// Safe order with `db sync`: run `bin sync` first (it reads upstream's
    /// index from the `db sync` cache, so fetch with `db sync --dry-run`),
    /// then `db sync`, so clients never see an index naming archives the
    /// host does not have yet. `zoi-mirror sync` does all of it in that
    /// order, verifies, and refuses to publish a partial mirror.
    ///
    /// JSON: `{dest, keys: [{name, url, path, fingerprint, status, error}],
    /// targets: [{package, version, platform, artifact: archive|source|delta,
    /// status: downloaded|up_to_date|not_available|would_download|failed,
    /// path, bytes, resumed, signature: embedded|detached|unverified,
    /// metadata: [[file, upstream|generated|resigned]], warnings, error}],
    /// pruned: [{path, version}], totals: {targets, downloaded, up_to_date,
    /// not_available, failed, bytes, pruned}}`. An `error.kind` is one of
    /// `check --help`'s, `signature`, or `io`: writing on this machine
    /// failed (never retried). A worker that panics (a bug) ends the run as
    /// `internal`, exit 3, once the other targets are done.
    Sync(Lazy<BinSyncArgs>),
}

/// Where S3-compatible object storage is (for `s3://` destinations). Each
/// flag overrides `[binaries.storage]`, which overrides the AWS variables.
/// Credentials are never flags: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
/// (and AWS_SESSION_TOKEN), or AWS_PROFILE's entry in ~/.aws/credentials.
#[derive(Debug, Args, Clone, Default)]
pub struct StorageArgs {
    /// The S3 endpoint, e.g. https://s3.example.com (AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The region (AWS_REGION; default us-east-1).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`) — the default with an
    /// endpoint — or virtual-hosted (`bucket.endpoint/key`) with false.
    #[arg(long, value_name = "BOOL")]
    pub s3_path_style: Option<bool>,
    /// Allow a plain-http endpoint (AWS_ALLOW_HTTP=true).
    #[arg(long)]
    pub s3_allow_http: bool,
    /// Do not require anonymous read of the bucket (a CDN with its own
    /// credentials fronts it). Without it, a bucket Zoi clients cannot read
    /// is refused before anything is written (`storage_not_public`).
    #[arg(long)]
    pub private_bucket: bool,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct BinSyncArgs {
    #[command(flatten)]
    pub spec: SpecArg,
    /// Where the binary host's tree lives: a folder (what binaries.url
    /// serves), or S3-compatible object storage as `s3://BUCKET/PREFIX`
    /// (streamed, never staged on disk; credentials from AWS_ACCESS_KEY_ID /
    /// AWS_SECRET_ACCESS_KEY or AWS_PROFILE; endpoint, region and path style
    /// from the --s3-* flags, [binaries.storage] or the AWS_* variables).
    /// Default: [binaries.storage] url.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub dest: Option<PathBuf>,
    /// Only the packages of shard K of N (`1/4`…`4/4`), by a stable hash of
    /// `@tier/name`: N machines with the same flags fill one bucket
    /// together, each package (all its platforms) on exactly one of them.
    /// `--prune` only ever removes versions of the shard's own packages.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Upstream's packages.json (default: from the `db sync` cache): a
    /// path, a file:// URL or an http(s) URL. A key other than
    /// `@<repo>/<name>` for its entry's repo refuses it (index_invalid).
    #[arg(long, value_name = "FILE|URL")]
    pub index: Option<String>,
    /// Upstream's repo.yaml (default: registry.upstream_repo_yaml, else the
    /// `db sync` cache).
    #[arg(long, value_name = "FILE|URL")]
    pub upstream_repo_yaml: Option<String>,
    /// The `db sync` cache dir (default: as `db sync` chooses it).
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Only these tiers; repeatable.
    #[arg(long = "tier", value_name = "TIER")]
    pub tiers: Vec<String>,
    /// Only packages whose name or @tier/name matches (`*`, `?`); repeatable.
    #[arg(long = "package", value_name = "GLOB")]
    pub packages: Vec<String>,
    /// Only these of the spec's platforms; repeatable.
    #[arg(long = "platform", value_name = "OS-ARCH")]
    pub platforms: Vec<crate::zoi::platform::Platform>,
    /// Remove archives of versions no longer in the index, but not for a
    /// package and platform whose index version failed or is not
    /// published upstream. Only the selected packages' (--tier, --package,
    /// --shard): a file is read as the package of the index whose name is
    /// the longest that fits (`foo-bar-1.0` is foo-bar's, not foo's).
    #[arg(long)]
    pub prune: bool,
    /// With --prune: keep this many previous versions for rollbacks.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "prune")]
    pub keep: usize,
    /// Say what would be fetched (and how many bytes); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Downloads at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = at_least_one::<usize>)]
    pub concurrency: usize,
    /// Retries after a 5xx, 408, 425 or 429, a reset or a timeout (downloads
    /// resume); never after another 4xx.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
    /// Place archives without verifying upstream's signatures (for
    /// registries that publish no keys; also `binaries.allow_unsigned`).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Re-sign every verified archive with this GnuPG key (a detached
    /// `.sig` replacing upstream's; default: `binaries.sign_key`).
    #[arg(long, value_name = "KEYID")]
    pub sign: Option<String>,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Mirror upstream into the internal registry, with the corporate
    /// repo.yaml as one overlay commit on the synced branch.
    ///
    /// First run: `git clone --mirror` of upstream into a cache dir; later
    /// runs fetch with prune. The overlay commit is re-created on upstream's
    /// tip whenever it moves, deterministically, so an unchanged upstream
    /// pushes nothing. All upstream branches and tags are mirrored exactly
    /// (stale ones pruned on the target). Needs git 2.20 or newer;
    /// credentials come from git's own helpers.
    ///
    /// Safe order: publishing a new index before the binary host has its
    /// archives makes `zoi install` fail for the new versions until they
    /// arrive. Fetch with `--dry-run`, run `bin sync`, then `db sync` — or
    /// run `zoi-mirror sync`, which does exactly that.
    ///
    /// JSON: `{upstream, target, branch, work_dir, upstream_tip,
    /// overlay_commit, overlay_reused, signed, dry_run, updates: [{ref, old,
    /// new, action: create|update|delete}], pushed, warnings}`; `warnings`
    /// (also on stderr) says when the target's HEAD, which Zoi clones, does
    /// not name the synced branch.
    Sync(Lazy<DbSyncArgs>),
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct DbSyncArgs {
    #[command(flatten)]
    pub spec: SpecArg,
    /// Upstream git URL (default: registry.upstream).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Internal git URL to push to (default: registry.url).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Cache dir for the mirror clone (default: under the user's cache dir).
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Upstream's repo.yaml to build the mirror's from (as `build`).
    #[arg(long, value_name = "FILE")]
    pub upstream_repo_yaml: Option<PathBuf>,
    /// Also add the extension's .pkg.lua under its tier, so clients already
    /// on the mirror can `zoi extension add <name>`.
    #[arg(long)]
    pub publish_extension: bool,
    /// Show what would move on the target; push nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `-c/--config`, shared by every command that reads the mirror spec.
#[derive(Debug, Args, Clone)]
pub struct SpecArg {
    /// The mirror spec.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "SPEC",
        default_value = "mirror.toml"
    )]
    pub path: PathBuf,
}

/// Options for commands that fetch over HTTP.
#[derive(Debug, Args, Clone)]
pub struct NetArgs {
    /// Extra CA certificate (PEM) to trust besides the system store;
    /// repeatable. A file that is missing or holds no PEM certificate is
    /// refused before anything runs (exit 2).
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_certs: Vec<PathBuf>,
    /// Extra request header `Name: value` (e.g. an Authorization token);
    /// repeatable. Never printed. Also read from ZOI_MIRROR_HEADER. One
    /// without a colon, a name or with control characters is exit 2.
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
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = at_least_one::<u64>)]
    pub timeout: u64,
}

/// Which packages and platforms to check on the binary host.
#[derive(Debug, Args, Clone)]
pub struct CheckScopeArgs {
    /// A package to check, `@tier/name@version`; repeatable.
    #[arg(long = "package", value_name = "@TIER/NAME@VERSION")]
    pub packages: Vec<String>,
    /// Check every package of a packages.json (v2) at its index version: a
    /// path, a file:// URL or an http(s) URL. A key other than
    /// `@<repo>/<name>` for its entry's repo refuses it (index_invalid).
    #[arg(long, value_name = "FILE|URL")]
    pub index: Option<String>,
    /// A platform (`linux-amd64`, …); repeatable. Default: the platforms the
    /// bundle serves, else this machine's.
    #[arg(long = "platform", value_name = "OS-ARCH")]
    pub platforms: Vec<crate::zoi::platform::Platform>,
    /// Also download each archive and compare its SHA-512 and size with the
    /// metadata.
    #[arg(long)]
    pub deep: bool,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = at_least_one::<usize>)]
    pub concurrency: usize,
    /// Requests in flight at once to one host.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = at_least_one::<usize>)]
    pub per_host: usize,
    /// Retries after a 5xx, 408, 425 or 429, a reset or a timeout
    /// (exponential backoff with jitter; Retry-After honoured); never after
    /// another 4xx.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
}

/// Where on the machine: scope, --root, layout, and which zoi.
#[derive(Debug, Args, Clone)]
pub struct MachineArgs {
    /// Which config layer: the user's, or the machine-wide system file (the
    /// only place policy locks count).
    #[arg(long, value_parser = scope_parser(), default_value = "user")]
    pub scope: crate::client::Scope,
    /// Prefix every absolute path with DIR, as Zoi's own --root does (image
    /// builds, tests).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Force the config layout instead of detecting it: `xdg` (Zoi >= 1.26,
    /// ~/.config/zoi) or `legacy` (Zoi <= 1.25, ~/.zoi/pkgs).
    #[arg(long, value_parser = layout_parser())]
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
    /// After applying, check that the mirror's registry and binary host
    /// answer (exit 1 when they do not).
    #[arg(long)]
    pub verify: bool,
    /// When --verify fails, or cannot run (a bundle file it needs cannot be
    /// downloaded), undo this run's changes. The run keeps its lock until
    /// then, so no other run changes the config in between.
    #[arg(long, requires = "verify")]
    pub rollback_on_fail: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

/// Checks the registry's git URLs (reachable, a git repository, HEAD —
/// what Zoi clones — names an existing branch, and is signed by an
/// authority when clients have authorities; the package's `.pkg.lua` is
/// there), the keys clients verify with, and for each package × platform
/// the archive, `.hash`, `.size`, `.files` and `.sig` URLs exactly as Zoi
/// builds them, judged as `zoi install` will judge them (the embedded
/// `manifest.sig` first, else the `.sig`). What Zoi tolerates is a warning:
/// a wrong or missing `.size` or `.files`, an archive served without
/// `Range`. With `--client` on a machine that has not synced, the
/// registry's HEAD is checked as `zoi sync` would clone it.
///
/// JSON: `{notes, registry: [{role, url, ok, checks: [URL]}], keys: [URL],
/// packages: [{package, version, platform, ok, urls: [URL]}], fallbacks:
/// [URL], counts: {urls, ok, failed, warnings, targets, targets_failed,
/// fallbacks_failed, by_kind}, elapsed_ms}` where URL = `{kind, url, ok,
/// status, latency_ms, attempts, error: {kind, message, hint}, warnings}`.
/// Error kinds: dns, connect_refused, connect, tls, timeout,
/// connection_reset, truncated, redirect_loop, redirect_other_host,
/// unauthorized, forbidden, not_found, http_error,
/// html_instead_of_metadata, malformed_metadata, path_escape,
/// size_mismatch, hash_mismatch, no_range, not_a_git_repo, head_missing,
/// registry_content_differs, registry_unsigned, not_in_registry,
/// key_unreachable, key_not_pgp, signature_missing, signature_untrusted,
/// signature_bad.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["bundle", "repo_yaml", "client", "freshness"]))]
pub struct CheckArgs {
    /// Instead of the URLs: compare the beacon `sync` writes
    /// (`zoi-mirror-status.json` on the binary host, see --beacon) and the
    /// registry's HEAD with upstream's current tip. Exit 1 when the mirror
    /// is behind upstream ("behind by N commits / M archives"), older than
    /// --max-age, published with files missing, or when the registry's
    /// HEAD is not the overlay the beacon names (half-published). JSON:
    /// `{beacon, fresh, summary, upstream, branch, published_tip,
    /// upstream_tip, behind_commits, behind_archives, registry,
    /// registry_head, overlay_commit, last_sync: {unix, utc}, age_seconds,
    /// max_age_seconds, complete, last_run_outcome, problems: [{kind:
    /// never_published|half_published|behind|diverged|stale|partial|
    /// registry_unreachable|upstream_unreachable, message}], warnings}`.
    #[arg(long, requires = "beacon")]
    pub freshness: bool,
    /// With --freshness: the beacon, a file or an http(s) URL
    /// (`<binaries.url>/zoi-mirror-status.json`).
    #[arg(long, value_name = "FILE|URL")]
    pub beacon: Option<String>,
    /// With --freshness: fail when the last published sync is older than
    /// this (`90s`, `30m`, `6h`, `2d`).
    #[arg(long, value_name = "AGE", value_parser = crate::mirror::freshness::parse_duration)]
    pub max_age: Option<std::time::Duration>,
    /// With --freshness: upstream's git URL (default: the beacon's).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// With --freshness: the internal registry's git URL (default: the
    /// beacon's).
    #[arg(long, value_name = "URL")]
    pub registry: Option<String>,
    /// A bundle (directory or http(s) URL): its repo.yaml, platforms and cache mirrors.
    #[arg(long, value_name = "DIR|URL")]
    pub bundle: Option<String>,
    /// Require the bundle's bundle.json to have this SHA-512 (hex).
    #[arg(long, value_name = "HEX", requires = "bundle")]
    pub sha512: Option<String>,
    /// A repo.yaml (file or http(s) URL).
    #[arg(long, value_name = "FILE|URL")]
    pub repo_yaml: Option<String>,
    /// This machine's Zoi: its merged config and synced registry.
    #[arg(long)]
    pub client: bool,
    /// The branch `db sync` publishes (default: the bundle's): a warning
    /// when the registry's HEAD, which Zoi clones, names another one.
    #[arg(long)]
    pub branch: Option<String>,
    /// Skip the registry's git URLs.
    #[arg(long)]
    pub no_registry: bool,
    /// Also compare the mirror's repo.yaml at HEAD with the bundle's.
    #[arg(long, requires = "bundle")]
    pub registry_content: bool,
    #[command(flatten)]
    pub scope: CheckScopeArgs,
    /// With --client: prefix every absolute path with DIR.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// With --client: the config layout (default: from the installed zoi, else xdg).
    #[arg(long, value_parser = layout_parser())]
    pub layout: Option<crate::zoi::paths::LayoutKind>,
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
    #[command(flatten)]
    pub spec: SpecArg,
    /// Output directory; the bundle goes to DIR/<name>-<version>/.
    #[arg(short = 'o', long = "out", value_name = "DIR", default_value = "dist")]
    pub out: PathBuf,
    /// Upstream's repo.yaml to derive the mirror's from. Default:
    /// `registry.upstream_repo_yaml`, else the one at the synced branch in
    /// the `db sync` cache (see --work), else the built-in description of
    /// Zoidberg. `build` says which it used.
    #[arg(long, value_name = "FILE")]
    pub upstream_repo_yaml: Option<PathBuf>,
    /// The `db sync` cache dir to read upstream's repo.yaml from (default:
    /// as `db sync` chooses it).
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Re-render in memory and compare with the bundle on disk: exit 1 with a
    /// unified diff when they differ. Writes nothing.
    #[arg(long)]
    pub check: bool,
    /// A zoi-mirror executable to publish with the bundle for the setup
    /// scripts, `PLATFORM=PATH` (e.g. linux-amd64=target/release/zoi-mirror);
    /// repeatable, overrides [setup.tools]. Needs [setup].
    #[arg(long = "tool", value_name = "PLATFORM=PATH")]
    pub tools: Vec<String>,
    /// After a successful build, publish the bundle folder as `zoi-mirror
    /// publish` does: to `s3://BUCKET/PREFIX` (the bucket that serves the
    /// archives; settings as for `bin sync`, the spec's [binaries.storage]
    /// included) or to a folder (a web root). `bundle.json` goes last. Not
    /// with --check.
    #[arg(long, value_name = "s3://BUCKET/PREFIX|DIR")]
    pub publish: Option<PathBuf>,
    #[command(flatten)]
    pub storage: StorageArgs,
    // For --publish's check that clients can read the bucket at its public
    // URL (--ca-cert for a corporate CA, the timeouts), as `publish` takes
    // them. That GET is anonymous, as Zoi's are: no --header goes with it.
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct PublishArgs {
    /// The folder to publish (e.g. dist/<name>-<version>, as `build` wrote it).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Where: `s3://BUCKET/PREFIX`.
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub to: PathBuf,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct IndexArgs {
    /// The archive tree: the binary host's document root, or a folder in it.
    /// (or `s3://BUCKET/PREFIX`: each archive is streamed from the store and
    /// its metadata written next to it; fresh = all three there, agreeing
    /// with the object's size and the ETag recorded on its `.hash`).
    #[arg(value_name = "ROOT")]
    pub root: PathBuf,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Recompute everything and compare with the files on disk; write
    /// nothing.
    #[arg(long, conflicts_with = "force")]
    pub check: bool,
    /// Re-read and rewrite every archive, even those whose metadata is fresh.
    #[arg(long)]
    pub force: bool,
    /// Neither read nor write the seen list in the user's cache (see
    /// above): every run reads the metadata of every archive.
    #[arg(long)]
    pub no_cache: bool,
    /// Archives read in parallel [default: one per core].
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<std::num::NonZeroUsize>,
    /// Lint every archive's path against this layout under ROOT, e.g. the
    /// seed guide's `{repo}/{os}/{arch}/{version}`; the file name must be
    /// `{name}-{version}-{platform}.<ext>` and agree with the folders.
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "bundle")]
    pub layout: Option<String>,
    /// Lint against the layout and archive format recorded in this bundle's
    /// bundle.json (`binaries.layout`, `binaries.format`); the folder or
    /// the bundle.json itself, read as `apply` reads it (a format version
    /// this zoi-mirror does not read is `bundle_format`).
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Also list the archives that are fine.
    #[arg(short, long)]
    pub verbose: bool,
}

// The library's enums stay free of clap: the words are parsed here.

/// `--format human|json`.
/// A number that must be at least 1 (`--concurrency`, `--per-host`,
/// `--timeout`): 0 would wait for ever, be taken as 1, or fail every
/// request, and none of those is what was asked.
fn at_least_one<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialEq + From<u8>,
    T::Err: std::fmt::Display,
{
    match s.parse::<T>() {
        Ok(n) if n == T::from(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["human", "json"]).map(|s| match s.as_str() {
        "json" => Format::Json,
        _ => Format::Human,
    })
}

/// `--scope user|system`.
fn scope_parser() -> impl clap::builder::TypedValueParser<Value = crate::client::Scope> {
    use crate::client::Scope;
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new([Scope::User, Scope::System].map(Scope::as_str)).map(
        |s| match s.as_str() {
            "system" => Scope::System,
            _ => Scope::User,
        },
    )
}

/// `--layout xdg|legacy`.
fn layout_parser() -> impl clap::builder::TypedValueParser<Value = crate::zoi::paths::LayoutKind> {
    use crate::zoi::paths::LayoutKind;
    use clap::builder::{PossibleValue, TypedValueParser};
    clap::builder::PossibleValuesParser::new([
        PossibleValue::new("xdg").help("Zoi ≥ 1.26: XDG base directories"),
        PossibleValue::new("legacy").help("Zoi ≤ 1.25: everything under `~/.zoi`"),
    ])
    .map(|s| match s.as_str() {
        "legacy" => LayoutKind::Legacy,
        _ => LayoutKind::Xdg,
    })
}
