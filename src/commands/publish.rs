//! `zoi-mirror publish DIR --to s3://BUCKET/PREFIX`: a bundle (or any
//! folder: keys, setup scripts) into the binary host's object storage
//! ([`crate::mirror::publish`], which `build --publish` calls too).

use anyhow::Result;

use super::net_options;
use crate::bundle::publish::publish_dir;
use crate::cli::PublishArgs;
use crate::error::{ErrorKind, Exit, Failure, fail};
use crate::output::{self, Format};
use crate::storage::{Dest, S3Settings};

pub fn run(args: &PublishArgs, format: Format) -> Result<Exit> {
    let to = Dest::parse(&args.to).map_err(|m| Failure::new(ErrorKind::BadDestination, m))?;
    if let Dest::Local(_) = to {
        return fail(
            Failure::new(ErrorKind::Usage, "--to must be s3://BUCKET/PREFIX")
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
        Format::Human => output::human::publish::print(&report),
    }
    Ok(Exit::Ok)
}
