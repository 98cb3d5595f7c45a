//! One module per command: arguments in, library calls, the result handed
//! to [`crate::output`] (the only code that prints). The library underneath
//! returns values, warnings and errors. A command never calls another
//! command's functions; what two share lives here or in the library.

pub mod apply;
pub mod bin;
pub mod build;
pub mod check;
pub mod completions;
pub mod db;
pub mod demo;
pub mod freshness;
pub mod index;
pub mod init;
pub mod man;
pub mod publish;
pub mod revert;
pub mod serve;
pub mod status;
pub mod sync;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::error::Exit;

/// Runs the command `cli` names. A panic on the way (a bug) is caught
/// here and returned as an `internal` failure, so the run still ends with a
/// documented exit code (3) and, with `--format json`, an error document.
pub fn run(cli: Cli) -> Result<Exit> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(&cli)))
        .unwrap_or_else(|payload| Err(crate::error::panicked(payload.as_ref()).into()))
}

fn dispatch(cli: &Cli) -> Result<Exit> {
    let format = cli.format;
    match &cli.command {
        Command::Init(args) => init::run(args, format),
        Command::Build(args) => build::run(args, format),
        Command::Apply(args) => apply::run(args, format),
        Command::Status(args) => status::run(args, format),
        Command::Revert(args) => revert::run(args, format),
        // `check --freshness` is its own module, not a detour through check.
        Command::Check(args) if args.freshness => freshness::run(args, format),
        Command::Check(args) => check::run(args, format),
        Command::Index(args) => index::run(args, format),
        Command::Sync(args) => sync::run(args, format),
        Command::Db(crate::cli::DbCommand::Sync(args)) => db::sync(args, format),
        Command::Bin(crate::cli::BinCommand::Sync(args)) => bin::sync(args, format),
        Command::Serve(args) => serve::run(args, format),
        Command::Publish(args) => publish::run(args, format),
        Command::Demo(args) => demo::run(args, format),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}

use std::io::IsTerminal;
use std::time::Duration;

use crate::cli::{MachineArgs, NetArgs};
use crate::client::zoi_cli::{self, Zoi};
use crate::error::{ErrorKind, Failure, fail};
use crate::net::client;
use crate::net::redact::redact;
use crate::output::Format;
use crate::zoi::paths::Env;

/// HTTP options from the shared flags.
pub fn net_options(net: &NetArgs) -> Result<client::Options> {
    let mut headers = Vec::new();
    for h in &net.headers {
        let Some((name, value)) = h.split_once(':') else {
            return fail(
                Failure::new(
                    ErrorKind::Usage,
                    "a --header must look like `Name: value` (value not shown)",
                )
                .hint("e.g. --header 'Authorization: Bearer …'"),
            );
        };
        let (name, value) = (name.trim(), value.trim());
        // No HTTP request can carry a header without a name (RFC 9110: a
        // name is one or more token characters).
        if name.is_empty() {
            return fail(
                Failure::new(
                    ErrorKind::Usage,
                    "a --header has no name before its `:` (value not shown)",
                )
                .hint("give the header's name, e.g. --header 'Authorization: Bearer …'"),
            );
        }
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return fail(
                Failure::new(
                    ErrorKind::Usage,
                    format!(
                        "--header name {:?} is not a valid HTTP header name (value not shown)",
                        name
                    ),
                )
                .hint("a header name is one word of letters, digits and `-`, e.g. --header 'Authorization: Bearer …'"),
            );
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            return fail(
                Failure::new(
                    ErrorKind::Usage,
                    format!("the value of --header {name} is not a valid HTTP header value (value not shown)"),
                )
                .hint("a header value cannot contain control characters or line breaks; check how it was pasted"),
            );
        }
        // A value is a secret from here on: never printed, whatever echoes
        // it. Registered once the header is known to be sent: a refused one
        // is never sent, and its value (which may be an everyday word) must
        // not blank out words of the refusal ("value not shown").
        crate::net::redact::register_secret(value);
        headers.push((name.to_string(), value.to_string()));
    }
    check_ca_certs(&net.ca_certs)?;
    Ok(client::Options {
        ca_certs: net.ca_certs.clone(),
        headers,
        connect_timeout: Duration::from_secs(net.connect_timeout),
        timeout: Duration::from_secs(net.timeout),
        cross_host_redirects: true,
        // Each command allows the hosts it is pointed at.
        header_hosts: Vec::new(),
    })
}

/// Every `--ca-cert` file read and parsed before the command does
/// anything: a bad one is bad input (exit 2; one that is there but cannot
/// be read is `io`, exit 3, as for every input), not a failure half-way
/// (after `apply` wrote, when `--verify` builds its client).
fn check_ca_certs(paths: &[std::path::PathBuf]) -> Result<()> {
    for path in paths {
        let Err(problem) = client::read_ca_certs(path) else {
            continue;
        };
        let kind = match problem {
            client::CaCertProblem::Unreadable(_) => ErrorKind::Io,
            _ => ErrorKind::Usage,
        };
        let hint = match problem {
            client::CaCertProblem::NotFound
            | client::CaCertProblem::Directory
            | client::CaCertProblem::Unreadable(_) => {
                "give --ca-cert the path of a PEM file with your corporate CA's certificate (-----BEGIN CERTIFICATE-----)"
            }
            client::CaCertProblem::NoPem | client::CaCertProblem::NotACertificate(_) => {
                "--ca-cert wants PEM text (-----BEGIN CERTIFICATE-----); convert a DER certificate with `openssl x509 -inform der -in FILE -out FILE.pem`"
            }
        };
        return fail(
            Failure::new(kind, format!("--ca-cert {}: {problem}", path.display())).hint(hint),
        );
    }
    Ok(())
}

/// The environment and the zoi executable to use.
pub fn machine(m: &MachineArgs) -> Result<(Env, Option<Zoi>)> {
    let env = Env::from_process(m.root.clone());
    let zoi = if m.no_zoi {
        None
    } else {
        match zoi_cli::find(m.zoi.as_deref()) {
            Some(path) => {
                let mut z = Zoi::open(path, m.root.clone()).map_err(|e| {
                    Failure::new(ErrorKind::Zoi, format!("{e:#}"))
                        .hint("pass --zoi PATH, or --no-zoi")
                })?;
                z.as_invoking_user = m.scope == crate::client::Scope::User;
                Some(z)
            }
            None if m.zoi.is_some() => unreachable!("an explicit --zoi is always returned"),
            None => None,
        }
    };
    Ok((env, zoi))
}

pub fn lock_timeout(m: &MachineArgs) -> Duration {
    Duration::from_secs(m.lock_timeout)
}

/// Whether to show the change and ask before making it: only a person at a
/// terminal, never `--yes`, `--dry-run`, JSON or a script (`curl | sh`).
pub fn interactive(dry_run: bool, yes: bool, format: Format) -> bool {
    !dry_run
        && !yes
        && format == Format::Human
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
}

/// Asks on the terminal; anything but yes aborts with nothing changed.
pub fn confirm(question: &str) -> Result<()> {
    crate::output::prompt(&format!("{question} [y/N] "));
    let mut answer = String::new();
    let yes = std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim(), "y" | "Y" | "yes" | "Yes");
    if yes {
        Ok(())
    } else {
        fail(Failure::new(
            ErrorKind::Aborted,
            "aborted by the user; nothing was changed",
        ))
    }
}

/// The warnings a library call returned, as `warning:` lines on stderr.
pub fn print_warnings(warnings: &[String]) {
    for w in warnings {
        crate::output::warn(w);
    }
}

/// Reads a local file (a path or a `file://` URL) or downloads an http(s)
/// URL; any other URL scheme is a usage error ([`crate::net::source`]).
/// `file_name` is what the file is usually called (`packages.json`), for
/// the hint when a directory is given ([`crate::fsutil::read_input`]).
pub fn read_file_or_url(
    what: &str,
    file_name: &str,
    source: &str,
    http: &client::Options,
) -> Result<Vec<u8>> {
    match crate::net::source::parse(what, source)? {
        crate::net::source::Input::Url(url) => client::fetch_blocking(http, &url).map_err(|e| {
            Failure::new(
                ErrorKind::Download,
                format!("cannot download {what} {}: {e:#}", redact(source)),
            )
            .into()
        }),
        crate::net::source::Input::Path(path) => crate::fsutil::read_input(
            what,
            &path,
            file_name,
            ErrorKind::Usage,
            &format!("give the path of a {file_name}, or an http(s) URL"),
        ),
    }
}

/// The S3 settings: each flag over the spec's `[binaries.storage]`.
pub fn storage_settings(
    flags: &crate::cli::StorageArgs,
    spec: &crate::storage::S3Settings,
) -> crate::storage::S3Settings {
    crate::storage::S3Settings {
        endpoint: flags.s3_endpoint.clone().or_else(|| spec.endpoint.clone()),
        region: flags.s3_region.clone().or_else(|| spec.region.clone()),
        path_style: flags.s3_path_style.or(spec.path_style),
        allow_http: if flags.s3_allow_http {
            Some(true)
        } else {
            spec.allow_http
        },
        public_url: spec.public_url.clone(),
    }
}

/// A store failure as the documented error: bad input (exit 2) for a
/// missing bucket, missing credentials or a bucket clients cannot read;
/// could not run (exit 3) for a refused or unreachable store.
pub fn store_failure(e: crate::storage::StoreError) -> anyhow::Error {
    e.into_failure().into()
}

pub fn open_store(
    url: &crate::storage::S3Url,
    settings: &crate::storage::S3Settings,
) -> Result<crate::storage::Store> {
    crate::storage::Store::open(url, settings).map_err(store_failure)
}
