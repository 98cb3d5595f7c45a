//! `zoi-mirror check`: is the mirror reachable and well-formed, the way Zoi
//! will read it?

use anyhow::Result;

use super::{net_options, read_file_or_url};
use crate::bundle::load::{self, Source};
use crate::cli::{CheckArgs, CheckScopeArgs};
use crate::error::{Exit, Failure, fail};
use crate::output::{self, Format, Style, paint};
use crate::probe::{self, plan, report::Report};
use crate::zoi::paths::{Env, LayoutKind};
use crate::zoi::platform::Platform;

pub fn run(args: &CheckArgs, format: Format) -> Result<Exit> {
    if args.freshness {
        return super::freshness::run(args, format);
    }
    let mut http = net_options(&args.net)?;
    for src in [&args.bundle, &args.repo_yaml, &args.scope.index]
        .into_iter()
        .flatten()
    {
        http.allow_headers_for(src);
    }
    let mut p = if let Some(b) = &args.bundle {
        let bundle = load::open(Source::parse(b), args.sha512.as_deref(), &http)?;
        let mut p = plan::from_bundle(&bundle)?;
        if !args.registry_content {
            p.registry_content = None;
        }
        p
    } else if let Some(r) = &args.repo_yaml {
        let bytes = read_file_or_url("repo.yaml", r, &http)?;
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
            progress: format == Format::Human
                && !args.scope.no_progress
                && output::progress_allowed(),
        },
    )?;
    let exit = if report.ok() { Exit::Ok } else { Exit::No };
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => print_human(&report),
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
        Some(src) => Some(read_file_or_url("packages.json", src, http)?),
        None => None,
    };
    p.packages = plan::packages(
        &scope.packages,
        index.as_deref().zip(scope.index.as_deref()),
    )?;
    p.platforms = plan::platforms(&scope.platforms, std::mem::take(&mut p.platforms));
    if p.platforms.is_empty() && !p.packages.is_empty() {
        return fail(Failure::bad_input(
            "usage",
            "no platform to check: pass --platform",
        ));
    }
    p.deep = scope.deep;
    Ok(())
}

pub fn print_human(r: &Report) {
    let color = output::stdout_color();
    let ok = paint("ok  ", Style::Green, color);
    let bad = paint("FAIL", Style::Red, color);
    for n in &r.notes {
        output::info(format!("note: {n}"));
    }
    for reg in &r.registry {
        for c in &reg.checks {
            if c.ok {
                println!(
                    "{ok} registry {} ({}{})",
                    c.url,
                    reg.role,
                    match c.kind {
                        "repo_yaml" => ", repo.yaml",
                        "signature" => ", HEAD signed by an authority",
                        _ => "",
                    }
                );
            } else if let Some(e) = &c.error {
                println!(
                    "{bad} registry {} ({}): {}: {}",
                    c.url,
                    reg.role,
                    e.kind.as_str(),
                    e.message
                );
            }
            for w in &c.warnings {
                println!("     warning: {w}");
            }
        }
    }
    for k in &r.keys {
        match &k.error {
            None => println!("{ok} key {}", k.url),
            Some(e) => println!("{bad} key {}: {}: {}", k.url, e.kind.as_str(), e.message),
        }
        for w in &k.warnings {
            println!("     warning: {w}");
        }
    }
    for t in &r.packages {
        let label = format!("{}@{} {}", t.package, t.version, t.platform);
        if t.ok {
            println!("{ok} {label}");
        } else {
            let failed: Vec<String> = t
                .urls
                .iter()
                .filter_map(|c| {
                    c.error.as_ref().map(|e| {
                        format!("{}: {} ({}) {}", c.kind, e.kind.as_str(), e.message, c.url)
                    })
                })
                .collect();
            println!("{bad} {label}");
            for f in failed {
                println!("       {f}");
            }
        }
        for c in &t.urls {
            for w in &c.warnings {
                println!("     warning: {}: {w}", c.kind);
            }
        }
    }
    for h in &r.hosts {
        match &h.error {
            None => println!(
                "{ok} binary host {} (HTTP {})",
                h.url,
                h.status.unwrap_or_default()
            ),
            Some(e) => println!(
                "{bad} binary host {}: {}: {}",
                h.url,
                e.kind.as_str(),
                e.message
            ),
        }
    }
    let failed_fallbacks: Vec<_> = r.fallbacks.iter().filter(|f| !f.ok).collect();
    if !r.fallbacks.is_empty() {
        println!(
            "cache mirrors: {} of {} fallback archive URLs answer",
            r.fallbacks.len() - failed_fallbacks.len(),
            r.fallbacks.len()
        );
        for f in failed_fallbacks.iter().take(20) {
            if let Some(e) = &f.error {
                println!(
                    "     fallback {}: {}: {}",
                    f.url,
                    e.kind.as_str(),
                    e.message
                );
            }
        }
    }
    let c = &r.counts;
    println!(
        "checked {} URLs ({} package/platforms) in {:.1} s: {} ok, {} failed, {} warnings",
        c.urls,
        c.targets,
        r.elapsed_ms / 1000.0,
        c.ok,
        c.failed,
        c.warnings
    );
    if !c.by_kind.is_empty() {
        println!("  {:<26} {:>6}  what to do", "failure", "count");
        for (kind, n) in &c.by_kind {
            println!("  {:<26} {n:>6}  {}", kind.as_str(), kind.hint());
        }
    }
}
