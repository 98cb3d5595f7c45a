//! `zoi-mirror db sync`: mirror the package database.

use std::time::Duration;

use anyhow::Result;

use crate::cli::DbSyncArgs;
use crate::error::Exit;
use crate::mirror::db::{self, Endpoints};
use crate::output::{self, Format};

pub fn sync(args: &DbSyncArgs, format: Format) -> Result<Exit> {
    let report = db::sync_to_target(
        &args.spec.path,
        &Endpoints {
            upstream: args.upstream.clone(),
            target: args.target.clone(),
            work: args.work.clone(),
            upstream_repo_yaml: args.upstream_repo_yaml.clone(),
            dry_run: args.dry_run,
        },
        Duration::from_secs(60),
        args.publish_extension,
    )?;

    for w in &report.warnings {
        output::warn(w);
    }
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => output::human::db::print(&report),
    }
    Ok(Exit::Ok)
}
