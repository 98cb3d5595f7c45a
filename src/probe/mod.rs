//! Talking to the network: the shared HTTP client and (for `check`) the
//! probes of registry git URLs and binary-host URLs.
//!
//! Nothing here knows Zoi's rules for *which* URLs to fetch; it asks
//! [`crate::zoi`] and only decides how to fetch them robustly.

pub mod check;
pub mod fetch;
pub mod git;
pub mod http;
pub mod plan;
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
    http: &http::Options,
    opts: &RunOptions,
) -> anyhow::Result<check::Report> {
    let http = http::Options {
        cross_host_redirects: false,
        ..http.clone()
    };
    // Checking metadata is many tiny requests: on one thread there are no
    // cross-thread wake-ups, which measured ~10 % faster and leaves the other
    // core to a server on the same machine. `--deep` hashes archives, which
    // is CPU work worth spreading over every core.
    let rt = if plan.deep {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
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
        let client = http::Http::new(&http)?;
        let prober = Arc::new(fetch::Prober::new(
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
