//! `zoi-mirror publish DIR --to s3://BUCKET/PREFIX`: a bundle (or any
//! folder: keys, setup scripts) into the binary host's object storage.

use std::sync::Arc;

use super::{net_options, open_store, storage_settings, store_failure};
use crate::bundle::publish::{File, Report, upload_order};
use crate::cli::PublishArgs;
use crate::error::{ErrorKind, Exit, Failure, fail, io_failure};
use crate::output::{self, Format};
use crate::storage::{Dest, Expect, S3Settings};
use anyhow::Result;

pub fn run(args: &PublishArgs, format: Format) -> Result<Exit> {
    let url = match Dest::parse(&args.to).map_err(|m| Failure::new(ErrorKind::BadDestination, m))? {
        Dest::S3(u) => u,
        Dest::Local(_) => {
            return fail(
                Failure::new(ErrorKind::Usage, "--to must be s3://BUCKET/PREFIX")
                    .hint("a folder is published by copying it"),
            );
        }
    };
    if !args.dir.is_dir() {
        return fail(Failure::new(
            ErrorKind::RootMissing,
            format!("no folder at {}", args.dir.display()),
        ));
    }
    let rels = upload_order(&args.dir).map_err(|(dir, e)| io_failure("read", &dir, &e))?;
    let settings = storage_settings(&args.storage, &S3Settings::default());
    let store = Arc::new(open_store(&url, &settings)?);
    let http = net_options(&args.net)?;
    let rt = crate::runtime::new(crate::runtime::Threads::PerCore)?;
    let files = rt.block_on(async {
        let client = crate::net::client::Http::new(&http)?;
        store
            .preflight(&client, !args.storage.private_bucket)
            .await
            .map_err(store_failure)?;
        let mut out = Vec::new();
        for rel in rels {
            let path = args.dir.join(&rel);
            let bytes = std::fs::read(&path).map_err(|e| io_failure("read", &path, &e))?;
            let same = store
                .get_small(&rel)
                .await
                .map_err(store_failure)?
                .is_some_and(|(old, _)| old == bytes);
            if !same {
                store
                    .put(&rel, bytes, &Expect::Any, &[])
                    .await
                    .map_err(store_failure)?;
            }
            out.push(File {
                path: rel,
                status: if same { "unchanged" } else { "written" },
            });
        }
        anyhow::Ok(out)
    })?;
    let report = Report::new(url.to_string(), store.public_url(""), files);
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => output::human::publish::print(&report),
    }
    Ok(Exit::Ok)
}
