//! `zoi-mirror publish DIR --to s3://BUCKET/PREFIX`: a bundle (or any
//! folder: keys, setup scripts) into the binary host's object storage
//! ([`crate::mirror::publish`], which `build --publish` calls too).

use anyhow::Result;

use super::net_options;
use crate::cli::PublishArgs;
use crate::error::{Exit, Failure, fail};
use crate::mirror::publish::{Published, publish_dir};
use crate::output::{self, Format, outln};
use crate::storage::{Dest, S3Settings};

pub fn run(args: &PublishArgs, format: Format) -> Result<Exit> {
    let to = Dest::parse(&args.to).map_err(|m| Failure::bad_input("bad_destination", m))?;
    if let Dest::Local(_) = to {
        return fail(
            Failure::bad_input("usage", "--to must be s3://BUCKET/PREFIX")
                .hint("a folder is published by copying it"),
        );
    }
    let settings = super::storage_settings(&args.storage, &S3Settings::default());
    let http = net_options(&args.net)?;
    let report = publish_dir(
        &args.dir,
        &to,
        &settings,
        &http,
        !args.storage.private_bucket,
    )?;
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => human(&report),
    }
    Ok(Exit::Ok)
}

/// The human lines of a publish.
fn human(report: &Published) {
    for f in &report.files {
        if f.status == "written" {
            outln!("written   {}", f.path);
        }
    }
    outln!(
        "{} files to {} ({} written, {} unchanged); clients read it at {}",
        report.files.len(),
        report.to,
        report.totals.written,
        report.totals.unchanged,
        report.public_url
    );
}
