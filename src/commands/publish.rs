//! `zoi-mirror publish DIR --to s3://BUCKET/PREFIX`: a bundle (or any
//! folder: keys, setup scripts) into the binary host's object storage.

use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use super::{net_options, open_store, storage_settings, store_failure};
use crate::cli::PublishArgs;
use crate::error::{ErrorKind, Exit, Failure, fail, io_failure};
use crate::output::{self, Format, outln};
use crate::storage::{Dest, Expect, S3Settings};

#[derive(Serialize)]
struct File {
    path: String,
    status: &'static str,
}

#[derive(Serialize, Default)]
struct Totals {
    written: usize,
    unchanged: usize,
}

#[derive(Serialize)]
struct Report {
    to: String,
    /// Where clients read it.
    public_url: String,
    files: Vec<File>,
    totals: Totals,
}

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
    let mut rels = Vec::new();
    for e in walkdir::WalkDir::new(&args.dir).sort_by_file_name() {
        let e = e.map_err(|e| {
            let io = std::io::Error::other(e.to_string());
            io_failure("read", &args.dir, &io)
        })?;
        if e.file_type().is_file()
            && let Ok(r) = e.path().strip_prefix(&args.dir)
        {
            rels.push(r.to_string_lossy().replace('\\', "/"));
        }
    }
    // bundle.json pins every other file: it goes last.
    rels.sort_by_key(|r| (r == crate::bundle::manifest::FILE_NAME, r.clone()));
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
    let mut totals = Totals::default();
    for f in &files {
        match f.status {
            "written" => totals.written += 1,
            _ => totals.unchanged += 1,
        }
    }
    let report = Report {
        to: url.to_string(),
        public_url: store.public_url(""),
        files,
        totals,
    };
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => {
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
    }
    Ok(Exit::Ok)
}
