//! `zoi-mirror init`: write a commented spec to start from.

use std::fs::OpenOptions;
use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::cli::InitArgs;
use crate::error::{ErrorKind, Exit, Failure, fail, io_failure};
use crate::output::{self, Format, outln};
use crate::spec::template::{InitValues, render};

#[derive(Serialize)]
struct InitReport<'a> {
    path: &'a std::path::Path,
    overwritten: bool,
}

pub fn run(args: &InitArgs, format: Format) -> Result<Exit> {
    let text = render(&InitValues {
        name: args.name.clone(),
        registry_url: args.registry_url.clone(),
        binaries_url: args.bin_url.clone(),
    });
    // What the user passed must itself make a valid spec; check before writing.
    crate::spec::load_str(&args.path, &text, &Default::default())?;

    let existed = args.path.exists();
    if existed && !args.force {
        return fail(
            Failure::new(
                ErrorKind::Exists,
                format!("{} already exists", args.path.display()),
            )
            .hint("pass --force to overwrite it, or give another path"),
        );
    }
    if existed {
        crate::fsutil::atomic_write(&args.path, text.as_bytes())?;
    } else {
        // create_new: never clobber a file that appeared since the check.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&args.path)
            .map_err(|e| io_failure("create", &args.path, &e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| io_failure("write", &args.path, &e))?;
    }

    let report = InitReport {
        path: &args.path,
        overwritten: existed,
    };
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => {
            outln!("wrote {}", args.path.display());
            output::info(format!(
                "next: edit it, then `zoi-mirror build -c {} -o dist`",
                args.path.display()
            ));
        }
    }
    Ok(Exit::Ok)
}
