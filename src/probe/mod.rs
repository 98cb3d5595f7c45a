//! `check`: the probes of registry git URLs and binary-host URLs, on the
//! shared client and prober of [`crate::net`].
//!
//! Nothing here knows Zoi's rules for *which* URLs to fetch or what their
//! files must hold; it asks [`crate::zoi`] and judges the answers.

pub mod check;
pub mod git;
pub mod plan;
pub mod report;
pub mod trust;

use std::sync::Arc;

/// Knobs for a check run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub concurrency: usize,
    pub per_host: usize,
    pub retries: u32,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// Runs `plan` on a multi-threaded runtime and returns the report.
pub fn run_blocking(
    plan: check::Plan,
    http: &crate::net::client::Options,
    opts: &RunOptions,
) -> anyhow::Result<report::Report> {
    let http = crate::net::client::Options {
        cross_host_redirects: false,
        ..http.clone()
    };
    // Checking metadata is many tiny requests: on one thread there are no
    // cross-thread wake-ups, which measured ~10 % faster and leaves the other
    // core to a server on the same machine. `--deep` hashes archives, which
    // is CPU work worth spreading over every core.
    let rt = crate::runtime::new(if plan.deep {
        crate::runtime::Threads::PerCore
    } else {
        crate::runtime::Threads::One
    })?;
    let targets = if plan.link.is_some() {
        (plan.packages.len() * plan.platforms.len()) as u64
    } else {
        0
    };
    // The one progress helper; `opts.progress` is the command's decision
    // (`output::progress::enabled`), the helper adds nothing to count.
    let bar = if opts.progress {
        crate::output::progress::bar(
            crate::output::progress::Kind::Targets,
            Some(targets),
            crate::output::Format::Human,
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = rt.block_on(async {
        let client = crate::net::client::Http::new(&http)?;
        let prober = Arc::new(crate::net::prober::Prober::new(
            client,
            opts.concurrency,
            opts.per_host,
            opts.retries,
        ));
        anyhow::Ok(check::run(prober, plan, opts.concurrency, || bar.inc(1)).await)
    })?;
    bar.finish_and_clear();
    Ok(report)
}
