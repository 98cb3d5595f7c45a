//! `zoi-mirror sync`: fetch, mirror, verify, then publish.

use std::time::Duration;

use anyhow::Result;

use super::net_options;
use crate::cli::SyncArgs;
use crate::error::Exit;
use crate::mirror::db::Endpoints;
use crate::mirror::sync;
use crate::output::{self, Format};

pub fn run(args: &SyncArgs, format: Format) -> Result<Exit> {
    let http = net_options(&args.net)?;
    let opts = sync::Options {
        spec_path: args.spec.path.clone(),
        endpoints: Endpoints {
            upstream: args.upstream.clone(),
            target: args.target.clone(),
            work: args.work.clone(),
            upstream_repo_yaml: args.upstream_repo_yaml.clone(),
            dry_run: false,
        },
        dest: args.dest.clone(),
        allow_partial: args.allow_partial,
        publish_extension: args.publish_extension,
        concurrency: args.concurrency,
        retries: args.retries,
        allow_unsigned: args.allow_unsigned,
        sign: args.sign.clone(),
        lock_timeout: Duration::from_secs(args.lock_timeout),
        http,
    };
    let report = sync::run(&opts, &|line| output::info(line))?;
    if let Some(r) = &report.registry {
        for w in &r.warnings {
            output::warn(w);
        }
    }
    let exit = if report.published { Exit::Ok } else { Exit::No };
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => output::human::sync::print(&report),
    }
    Ok(exit)
}
