//! `zoi-mirror apply BUNDLE`: make this machine's Zoi use the mirror.

use anyhow::Result;

use super::{confirm, interactive, lock_timeout, machine, net_options, print_warnings};
use crate::bundle::load::{self, Source};
use crate::cli::ApplyArgs;
use crate::client::{self, ApplyOptions};
use crate::error::{ErrorKind, Exit, Failure};
use crate::output::{self, Format};

pub fn run(args: &ApplyArgs, format: Format) -> Result<Exit> {
    let mut http = net_options(&args.net)?;
    http.allow_headers_for(&args.bundle);
    let bundle = load::open(Source::parse(&args.bundle)?, args.sha512.as_deref(), &http)?;
    print_warnings(&bundle.warnings);
    let (env, zoi) = machine(&args.machine)?;
    let mut opts = ApplyOptions {
        scope: args.machine.scope,
        env,
        layout: args.machine.layout,
        zoi,
        dry_run: true,
        lock_timeout: lock_timeout(&args.machine),
    };

    // Interactive runs see what will change first.
    if interactive(args.dry_run, args.yes, format) {
        let plan = client::apply(&bundle, &opts)?;
        if plan.already_applied {
            return print(&plan, format);
        }
        if let Some(d) = &plan.diff {
            output::prompt(d);
        }
        confirm(&format!(
            "Apply {} {} to {}?",
            plan.extension,
            plan.version,
            plan.target.config_path.display()
        ))?;
    }
    opts.dry_run = args.dry_run;
    let report = client::apply(&bundle, &opts)?;
    if !args.verify || args.dry_run {
        return print(&report, format);
    }

    // --verify: the registry and binary host the bundle points at answer.
    let mut plan = crate::probe::plan::from_bundle(&bundle)?;
    plan.registry_content = None;
    // Zoi syncs from the main remote; `mirror` remotes only with --fallback.
    plan.git.retain(|(role, _)| role == "main");
    crate::probe::plan::allow_headers(&mut http, &plan);
    let check = crate::probe::run_blocking(
        plan,
        &http,
        &crate::probe::RunOptions {
            concurrency: 8,
            per_host: 8,
            retries: 2,
            progress: false,
        },
    )?;
    // Roll back this run only: what it changed, not earlier applies.
    let mut rolled_back = false;
    if !check.ok() && args.rollback_on_fail {
        match &report.undo {
            Some(u) => {
                let (_, zoi) = machine(&args.machine)?;
                client::undo(u, &report.extension, zoi.as_ref())?;
                rolled_back = true;
            }
            None => output::info("nothing to roll back: this run changed nothing"),
        }
    }
    if format == Format::Json {
        output::json(&serde_json::json!({
            "apply": report,
            "verify": check,
            "rolled_back": rolled_back,
        }))?;
    } else {
        output::human::apply::print(&report);
        output::human::check::print(&check);
    }
    if check.ok() {
        return Ok(Exit::Ok);
    }
    let msg = if rolled_back {
        "verification failed: the mirror does not answer as it should; this run's changes were undone"
    } else {
        "verification failed: the mirror does not answer as it should (the config stays applied)"
    };
    // The JSON document above already says so; stderr gets the sentence,
    // through the one error path.
    output::print_error(
        &Failure::new(ErrorKind::VerifyFailed, msg)
            .hint("see the failures above; `zoi-mirror check --bundle …` repeats the check")
            .into(),
    );
    Ok(Exit::No)
}

fn print(r: &client::ApplyReport, format: Format) -> Result<Exit> {
    match format {
        Format::Json => output::json(r)?,
        Format::Human => output::human::apply::print(r),
    }
    Ok(Exit::Ok)
}
