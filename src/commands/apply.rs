//! `zoi-mirror apply BUNDLE`: make this machine's Zoi use the mirror.

use anyhow::Result;

use super::{confirm, interactive, lock_timeout, machine, net_options, print_warnings};
use crate::bundle::load::{self, Source};
use crate::cli::ApplyArgs;
use crate::client::{self, ApplyOptions};
use crate::error::{ErrorKind, Exit, Failure, failure_of};
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
    let mut report = client::apply(&bundle, &opts)?;
    if !args.verify || args.dry_run {
        return print(&report, format);
    }
    // Only a run that may roll back keeps its lock through the checks
    // (which can take minutes of timeouts): others need not wait for them.
    if !args.rollback_on_fail
        && let Some(u) = report.undo.as_mut()
    {
        u.lock = None;
    }

    // --verify: the registry and binary host the bundle points at answer.
    // From here on the config is applied: an error that stops the check
    // (a bundle file it needs cannot be downloaded, say) leaves it so, and
    // with --rollback-on-fail counts as a failed verification.
    let check = match verify(&bundle, &mut http) {
        Ok(check) => check,
        Err(e) => return Err(verify_could_not_run(e, args, &report, opts.zoi.as_ref())),
    };
    // Roll back this run only: what it changed, not earlier applies.
    let mut rolled_back = false;
    if !check.ok() && args.rollback_on_fail {
        match &report.undo {
            Some(u) => {
                if let Err(e) = client::undo(u, &report.extension, opts.zoi.as_ref()) {
                    // One error, with the check's results above it (JSON:
                    // the error document alone, as for any failed run).
                    if format == Format::Human {
                        output::human::apply::print(&report);
                        output::human::check::print(&check);
                    }
                    return Err(undo_failed(
                        e,
                        "verification failed: the mirror does not answer as it should",
                        &report,
                    ));
                }
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

/// The check `--verify` runs over the bundle just applied.
fn verify(
    bundle: &load::Loaded,
    http: &mut crate::net::client::Options,
) -> Result<crate::probe::report::Report> {
    let mut plan = crate::probe::plan::from_bundle(bundle)?;
    plan.registry_content = None;
    // Zoi syncs from the main remote; `mirror` remotes only with --fallback.
    plan.git
        .retain(|(role, _)| *role == crate::probe::report::RegistryRole::Main);
    crate::probe::plan::allow_headers(http, &plan);
    crate::probe::run_blocking(
        plan,
        http,
        &crate::probe::RunOptions {
            concurrency: 8,
            per_host: 8,
            retries: 2,
            progress: false,
        },
    )
}

/// The error of a `--verify` that could not run, once the config was
/// applied: with --rollback-on-fail this run is undone first. The error
/// keeps its own kind, exit code and hint (its cause), and says first what
/// happened to the config.
fn verify_could_not_run(
    e: anyhow::Error,
    args: &ApplyArgs,
    report: &client::ApplyReport,
    zoi: Option<&client::zoi_cli::Zoi>,
) -> anyhow::Error {
    let outer = "the bundle was applied, but --verify could not check the mirror";
    let what = match (&report.undo, args.rollback_on_fail) {
        (Some(u), true) => match client::undo(u, &report.extension, zoi) {
            Ok(()) => format!("{outer}; this run's changes were undone"),
            Err(undo) => return undo_failed(undo, &format!("{outer}: {e:#}"), report),
        },
        (None, true) => format!("{outer}; this run changed nothing"),
        (_, false) => format!(
            "{outer} (the config stays applied: `{}` undoes it)",
            report.revert_command
        ),
    };
    e.context(what)
}

/// `why` (what made the run roll back), and the rollback failing too: what
/// could not be put back, in the rollback's kind.
fn undo_failed(undo: anyhow::Error, why: &str, report: &client::ApplyReport) -> anyhow::Error {
    let kind = failure_of(&undo).map_or(ErrorKind::Internal, |f| f.kind);
    let backup = report
        .backup
        .as_ref()
        .map(|b| {
            format!(
                "the backup {} holds the config as it was before this run; ",
                b.display()
            )
        })
        .unwrap_or_default();
    Failure::new(
        kind,
        format!("{why}, and this run could not be fully undone: {undo:#}"),
    )
    .hint(format!(
        "{backup}`{}` undoes every apply of {} once what failed is fixed",
        report.revert_command, report.extension
    ))
    .into()
}

fn print(r: &client::ApplyReport, format: Format) -> Result<Exit> {
    match format {
        Format::Json => output::json(r)?,
        Format::Human => output::human::apply::print(r),
    }
    Ok(Exit::Ok)
}
