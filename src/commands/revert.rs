//! `zoi-mirror revert NAME`: undo exactly what apply did.

use anyhow::Result;

use super::{compact, confirm, interactive, lock_timeout, machine};
use crate::cli::RevertArgs;
use crate::client::{self, RevertOptions};
use crate::error::Exit;
use crate::output::{self, Format, Style, paint};

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
            eprint!("{d}");
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
    let color = output::stdout_color();
    if r.diff.is_some() {
        print!("{}", r.diff.as_deref().unwrap_or_default());
        output::info("dry run: nothing changed");
    } else if !r.reverted {
        println!("nothing to revert for {}", r.extension);
    } else {
        println!(
            "{} {} in {}",
            paint("Reverted", Style::Green, color),
            r.extension,
            r.config_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        for k in &r.keys {
            match k.action.as_str() {
                "restored" => println!("  {:<17} restored to {}", k.key, compact(k.after.as_ref())),
                "kept" => println!(
                    "  {:<17} kept {} (you changed it after apply)",
                    k.key,
                    compact(k.now.as_ref())
                ),
                _ => {}
            }
        }
        if let Some(b) = &r.backup {
            println!("  backup: {}", b.display());
        }
        if r.zoi == client::ZoiRemoval::Removed {
            output::info("zoi: extension removed (`zoi extension remove`)");
        }
    }
    for n in &r.notes {
        output::warn(n);
    }
    Ok(exit)
}
