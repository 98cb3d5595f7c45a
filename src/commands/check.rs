//! `zoi-mirror check`: is the mirror reachable and well-formed, the way Zoi
//! will read it?

use anyhow::Result;

use super::{net_options, print_warnings, read_file_or_url};
use crate::bundle::load::{self, Source};
use crate::cli::{CheckArgs, CheckScopeArgs};
use crate::error::{ErrorKind, Exit, Failure, fail};
use crate::output::{self, Format};
use crate::probe::{self, plan};
use crate::zoi::paths::{Env, LayoutKind};
use crate::zoi::platform::Platform;

pub fn run(args: &CheckArgs, format: Format) -> Result<Exit> {
    let mut http = net_options(&args.net)?;
    // A URL scheme nothing here reads is refused before anything runs.
    for (what, src) in [
        ("bundle", &args.bundle),
        ("repo.yaml", &args.repo_yaml),
        ("packages.json", &args.scope.index),
    ] {
        if let Some(src) = src {
            crate::net::source::parse(what, src)?;
        }
    }
    for src in [&args.bundle, &args.repo_yaml, &args.scope.index]
        .into_iter()
        .flatten()
    {
        http.allow_headers_for(src);
    }
    let mut p = if let Some(b) = &args.bundle {
        let bundle = load::open(Source::parse(b)?, args.sha512.as_deref(), &http)?;
        print_warnings(&bundle.warnings);
        let mut p = plan::from_bundle(&bundle)?;
        if !args.registry_content {
            p.registry_content = None;
        }
        p
    } else if let Some(r) = &args.repo_yaml {
        let bytes = read_file_or_url("repo.yaml", "repo.yaml", r, &http)?;
        let mut p = plan::from_repo_yaml(&bytes, r, args.branch.clone())?;
        p.platforms = Platform::host().into_iter().collect();
        p
    } else {
        let env = Env::from_process(args.root.clone());
        let layout = args.layout.unwrap_or_else(|| {
            crate::client::zoi_cli::find(None)
                .and_then(|z| crate::client::zoi_cli::Zoi::open(z, None).ok())
                .and_then(|z| z.version)
                .map_or(LayoutKind::Xdg, |v| LayoutKind::for_version(&v))
        });
        let mut p = plan::from_client(&env, layout)?;
        p.platforms = Platform::host().into_iter().collect();
        p
    };
    if let Some(b) = &args.branch {
        p.branch = b.clone();
    }
    if args.no_registry {
        p.git.clear();
    }
    fill_scope(&mut p, &args.scope, &http)?;
    if p.link.is_none() && !p.packages.is_empty() {
        output::warn(
            "the registry's repo.yaml has no `main` or `mirror` pkg link: Zoi builds every package from source, nothing to check on a binary host",
        );
    }
    if p.packages.is_empty() {
        output::info("no packages given (--package, --index): checking the registry only");
    }

    plan::allow_headers(&mut http, &p);
    let report = probe::run_blocking(
        p,
        &http,
        &probe::RunOptions {
            concurrency: args.scope.concurrency,
            per_host: args.scope.per_host,
            retries: args.scope.retries,
            progress: output::progress::enabled(format),
        },
    )?;
    let exit = if report.ok() { Exit::Ok } else { Exit::No };
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => output::human::check::print(&report),
    }
    Ok(exit)
}

/// Packages, platforms and --deep into a plan.
pub fn fill_scope(
    p: &mut probe::check::Plan,
    scope: &CheckScopeArgs,
    http: &crate::net::client::Options,
) -> Result<()> {
    let index = match &scope.index {
        Some(src) => Some(read_file_or_url(
            "packages.json",
            "packages.json",
            src,
            http,
        )?),
        None => None,
    };
    p.packages = plan::packages(
        &scope.packages,
        index.as_deref().zip(scope.index.as_deref()),
    )?;
    p.platforms = plan::platforms(&scope.platforms, std::mem::take(&mut p.platforms));
    if p.platforms.is_empty() && !p.packages.is_empty() {
        return fail(Failure::new(
            ErrorKind::Usage,
            "no platform to check: pass --platform",
        ));
    }
    p.deep = scope.deep;
    Ok(())
}
