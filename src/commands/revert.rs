//! `zoi-mirror revert NAME`: undo exactly what apply did.

use anyhow::Result;

use super::{confirm, interactive, lock_timeout, machine};
use crate::cli::RevertArgs;
use crate::client::{self, RevertOptions};
use crate::error::Exit;
use crate::output::{self, Format};

pub fn run(args: &RevertArgs, format: Format) -> Result<Exit> {
    let (env, zoi) = machine(&args.machine)?;
    let mut opts = RevertOptions {
        name: args.name.clone(),
        scope: args.machine.scope,
        env,
        zoi,
        dry_run: true,
        lock_timeout: lock_timeout(&args.machine),
    };
    if interactive(args.dry_run, args.yes, format) {
        let plan = client::revert(&opts)?;
        if let Some(d) = &plan.diff {
            output::prompt(d);
        }
        if plan.config_path.is_some() {
            confirm(&format!("Revert {}?", args.name))?;
        }
    }
    opts.dry_run = args.dry_run;
    let r = client::revert(&opts)?;
    // `zoi extension remove` failed: the config is restored but Zoi still
    // has the extension; that is "could not run".
    let exit = if r.zoi == client::ZoiRemoval::Failed {
        Exit::CouldNotRun
    } else {
        Exit::Ok
    };
    if format == Format::Json {
        output::json(&r)?;
        return Ok(exit);
    }
    crate::output::human::revert::print(&r);
    Ok(exit)
}
