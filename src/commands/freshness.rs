//! `zoi-mirror check --freshness`: the beacon against the registry and
//! upstream.

use anyhow::Result;

use super::{net_options, read_file_or_url};
use crate::cli::CheckArgs;
use crate::error::{ErrorKind, Exit, Failure};
use crate::mirror::freshness;
use crate::mirror::status::Time;
use crate::output::{self, Format};

pub fn run(args: &CheckArgs, format: Format) -> Result<Exit> {
    let mut http = net_options(&args.net)?;
    let src = args.beacon.clone().unwrap_or_default();
    http.allow_headers_for(&src);
    let beacon = read_file_or_url("beacon", "zoi-mirror-status.json", &src, &http)?;
    let report = freshness::check(&freshness::Options {
        beacon_source: crate::net::redact::redact(&src),
        beacon,
        upstream: args.upstream.clone(),
        registry: args.registry.clone(),
        max_age: args.max_age,
        now: Time::now(),
    })
    .map_err(|e| {
        Failure::new(ErrorKind::BeaconInvalid, e)
            .hint("point --beacon at the zoi-mirror-status.json `zoi-mirror sync` writes on the binary host")
    })?;
    for w in &report.warnings {
        output::warn(w);
    }
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => output::human::freshness::print(&report),
    }
    Ok(if report.fresh { Exit::Ok } else { Exit::No })
}
