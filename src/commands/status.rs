//! `zoi-mirror status BUNDLE`: drift report.

use anyhow::Result;

use super::{machine, net_options};
use crate::bundle::load::{self, Source};
use crate::cli::StatusArgs;
use crate::client::status;
use crate::error::Exit;
use crate::output::{self, Format};

pub fn run(args: &StatusArgs, format: Format) -> Result<Exit> {
    let mut http = net_options(&args.net)?;
    http.allow_headers_for(&args.bundle);
    let bundle = load::open(Source::parse(&args.bundle)?, args.sha512.as_deref(), &http)?;
    super::print_warnings(&bundle.warnings);
    let (env, zoi) = machine(&args.machine)?;
    let r = status::status(
        &bundle,
        args.machine.scope,
        &env,
        args.machine.layout,
        zoi.as_ref().and_then(|z| z.version.as_ref()),
    )?;
    let exit = if r.in_sync { Exit::Ok } else { Exit::No };
    if format == Format::Json {
        output::json(&r)?;
        return Ok(exit);
    }
    crate::output::human::status::print(&r);
    Ok(exit)
}
