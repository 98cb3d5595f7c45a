//! `sync`: the whole mirror in the one order that is safe for clients.
//!
//! Run `db sync` before `bin sync` and, for the length of the archive copy,
//! clients sync an index naming archives the host does not have yet: a
//! `zoi install` of a freshly bumped package fails with a 404, and Zoi has
//! no source fallback once a `main` link exists. So here:
//!
//! 1. upstream's git is fetched into the work dir ([`db::fetch`]: nothing is
//!    pushed);
//! 2. everything `bin sync` mirrors — keys, archives with their sidecars,
//!    source bundles, deltas — is copied for the index at the *fetched* tip
//!    (read from the work dir, not from what was published before);
//! 3. what this run placed is verified with the `index --check` rules;
//! 4. only then is the overlay pushed ([`db::publish`], one atomic push):
//!    the pointer moves last.
//!
//! Archives of the new versions land at new paths while the old ones stay,
//! so a client syncing at any moment sees the old index with all of its
//! archives or the new one with all of its own. When a file the new index
//! needs cannot be placed although upstream has it, nothing is published
//! (unless `allow_partial`): the registry stays where it was, and the
//! beacon ([`status`]) goes on describing that state, with the failed run
//! in `last_run`. The beacon is written last, atomically.
//!
//! Not done here, on purpose: pruning old versions (clients that synced the
//! previous index a moment ago still install them; `bin sync --prune`
//! does it when the operator decides).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::error::{ErrorKind, Failure, fail};
use crate::mirror::bins::{self, Totals};
use crate::mirror::binsync::{Artifact, KeyReport, KeyStatus, TargetReport, TargetStatus};
use crate::mirror::db::{self, Endpoints, SyncReport};
use crate::mirror::index;
use crate::mirror::status::{self, Beacon, Gap, LastRun, Published, Stamp, Time};
use crate::net::client;
use crate::net::redact::redact;

#[derive(Debug, Clone)]
pub struct Options {
    pub spec_path: PathBuf,
    pub endpoints: Endpoints,
    /// Root of the binary host.
    pub dest: PathBuf,
    /// Publish even when files are missing (the beacon lists them).
    pub allow_partial: bool,
    pub publish_extension: bool,
    pub concurrency: usize,
    pub retries: u32,
    pub allow_unsigned: bool,
    pub sign: Option<String>,
    /// How long to wait for another run holding the work dir's lock.
    pub lock_timeout: Duration,
    pub http: client::Options,
}

/// An archive this run placed, checked with the `index --check` rules.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub path: String,
    pub status: VerifyStatus,
}

string_enum! {
    /// How an archive this run placed reads back (`sync --help` lists these).
    pub enum VerifyStatus {
        /// Its metadata matches it.
        Ok = "ok",
        /// Its metadata is missing or differs.
        Mismatch = "mismatch",
        /// It could not be read.
        Error = "error",
    }
}

/// Defined with the beacon that records it (status reads it back).
pub use crate::mirror::status::SyncOutcome;

#[derive(Debug, Serialize)]
pub struct Report {
    pub upstream: String,
    pub branch: String,
    /// The fetched upstream commit.
    pub upstream_tip: String,
    /// The upstream commit published before this run (from the beacon).
    pub previous_tip: Option<String>,
    pub upstream_repo_yaml: String,
    pub dest: PathBuf,
    pub outcome: SyncOutcome,
    pub published: bool,
    /// The registry push (`db sync`'s report), when the run got that far.
    pub registry: Option<SyncReport>,
    pub keys: Vec<KeyReport>,
    pub targets: Vec<TargetReport>,
    pub verified: Vec<Verified>,
    /// What the new index needs that the host does not have: clients miss
    /// these (published) or nothing was published because of them.
    pub missing: Vec<Gap>,
    pub totals: Totals,
    pub beacon: PathBuf,
    pub duration_ms: u64,
}

/// Runs one sync; `log` receives progress lines for people.
pub fn run(o: &Options, log: &dyn Fn(String)) -> Result<Report> {
    let started = Time::now();
    let clock = Instant::now();
    let mut prepared = db::prepare(&o.spec_path, &o.endpoints, o.lock_timeout)?;
    if !o.dest.is_dir() {
        return fail(
            Failure::new(
                ErrorKind::Usage,
                format!("--dest {} is not a directory", o.dest.display()),
            )
            .hint("pass the binary host's document root (what binaries.url serves)"),
        );
    }
    log(format!("fetching {}", redact(&prepared.opts.upstream)));
    let fetched = db::fetch(&prepared.opts)?;
    let tip = fetched.tip.clone();
    let spec = db::overlay_for(&o.spec_path, &mut prepared, &fetched, o.publish_extension)?;
    bins::check_format(&spec)?;
    let upstream = spec.upstream.clone();
    let link = bins::archive_link(&upstream)?;
    let mut http_opts = o.http.clone();
    http_opts.allow_headers_for(&link.url);
    let Some(index_bytes) = fetched.upstream_file(&prepared.opts, "packages.json") else {
        return fail(
            Failure::new(
                ErrorKind::NoUpstreamData,
                format!(
                    "upstream {} has no packages.json at {} ({tip})",
                    redact(&prepared.opts.upstream),
                    spec.registry.branch
                ),
            )
            .hint("is it a Zoi registry? sync mirrors the packages its index names"),
        );
    };
    let what = format!(
        "upstream {}'s packages.json at {tip}",
        redact(&prepared.opts.upstream)
    );
    let bins::Selection { known, targets } =
        bins::select(&spec, &index_bytes, &what, &bins::Filter::default())?;
    let run = bins::Run {
        dest: o.dest.clone(),
        targets,
        known,
        dry_run: false,
        retries: o.retries,
        concurrency: o.concurrency,
        allow_unsigned: o.allow_unsigned || spec.binaries.allow_unsigned,
        resign: o.sign.clone().or_else(|| spec.binaries.sign_key.clone()),
    };
    let opts = bins::options(&spec, &upstream, link, &run);
    log(format!(
        "mirroring the files of upstream {} ({} packages × platforms)",
        &tip[..tip.len().min(12)],
        run.targets.len()
    ));
    let outcome = bins::mirror(&spec, &upstream, opts, &run, &http_opts, |_, _| {})?;

    // What this run placed must read back as `index --check` expects.
    let placed: Vec<String> = outcome
        .targets
        .iter()
        .filter(|t| t.status == TargetStatus::Downloaded && t.artifact == Artifact::Archive)
        .map(|t| t.path.clone())
        .collect();
    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    let checked = index::check_files(&o.dest, &placed, jobs)?;
    let mut verified = Vec::new();
    let mut bad_paths = BTreeSet::new();
    let mut missing: Vec<Gap> = Vec::new();
    for a in &checked.archives {
        let st = match a.status {
            index::Status::Ok => VerifyStatus::Ok,
            index::Status::Mismatch => VerifyStatus::Mismatch,
            _ => VerifyStatus::Error,
        };
        verified.push(Verified {
            path: a.path.clone(),
            status: st,
        });
        if st != VerifyStatus::Ok {
            bad_paths.insert(a.path.clone());
            let t = outcome.targets.iter().find(|t| t.path == a.path);
            let message = a.error.as_ref().map_or_else(
                || {
                    a.problems
                        .iter()
                        .map(|p| format!("{}: {}", p.file, p.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                },
                |e| e.message.clone(),
            );
            if let Some(t) = t {
                let mut g = status::gap_of(t);
                g.kind = "index_mismatch".to_string();
                g.message = format!("placed, but fails the index --check rules: {message}");
                missing.push(g);
            }
        }
    }
    missing.extend(
        outcome
            .keys
            .iter()
            .filter(|k| k.status == KeyStatus::Failed)
            .map(status::key_gap),
    );
    missing.extend(
        outcome
            .targets
            .iter()
            .filter(|t| t.status == TargetStatus::Failed)
            .map(status::gap_of),
    );
    let mut totals = Totals::of(&outcome, 0);
    totals.failed += bad_paths.len();
    totals.downloaded -= bad_paths.len();

    let previous = Beacon::read(&o.dest);
    let previous_tip = previous
        .as_ref()
        .and_then(|b| b.published.as_ref())
        .map(|p| p.upstream_tip.clone());
    let beacon_path = o.dest.join(status::BEACON_FILE);
    let last_run = |outcome: SyncOutcome, failures: &[Gap]| {
        let finished = Time::now();
        LastRun {
            outcome: outcome.as_str().to_string(),
            upstream_tip: tip.clone(),
            started: started.into(),
            finished: finished.into(),
            duration_ms: clock.elapsed().as_millis() as u64,
            failures: failures.to_vec(),
        }
    };
    let beacon_with = |published: Option<Published>, run: LastRun| Beacon {
        format: status::FORMAT.to_string(),
        format_version: status::FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        published,
        last_run: run,
    };
    let mut report = Report {
        upstream: redact(&prepared.opts.upstream),
        branch: prepared.opts.branch.clone(),
        upstream_tip: tip.clone(),
        previous_tip,
        upstream_repo_yaml: spec.upstream_origin.to_string(),
        dest: o.dest.clone(),
        outcome: SyncOutcome::NotPublished,
        published: false,
        registry: None,
        keys: outcome.keys.clone(),
        targets: outcome.targets.clone(),
        verified,
        missing: missing.clone(),
        totals,
        beacon: beacon_path,
        duration_ms: 0,
    };

    if !missing.is_empty() && !o.allow_partial {
        log(format!(
            "{} file(s) the new index needs are missing: not publishing",
            missing.len()
        ));
        let b = beacon_with(
            previous.and_then(|b| b.published),
            last_run(SyncOutcome::NotPublished, &missing),
        );
        b.write(&o.dest)?;
        report.duration_ms = b.last_run.duration_ms;
        return Ok(report);
    }

    log(format!(
        "publishing the overlay on {} to {}",
        &tip[..tip.len().min(12)],
        redact(&prepared.opts.target)
    ));
    let tip_time = db::commit_time(&prepared.opts.work, &tip);
    let pushed = match db::publish(&prepared.opts, fetched) {
        Ok(r) => r,
        Err(e) => {
            let mut failures = missing.clone();
            failures.push(Gap {
                package: String::new(),
                version: String::new(),
                platform: None,
                artifact: "registry".to_string(),
                path: String::new(),
                kind: "push_failed".to_string(),
                message: format!("{e:#}"),
            });
            let b = beacon_with(
                previous.and_then(|b| b.published),
                last_run(SyncOutcome::NotPublished, &failures),
            );
            b.write(&o.dest)?;
            return Err(e);
        }
    };
    let outcome_name = if missing.is_empty() {
        SyncOutcome::Published
    } else {
        SyncOutcome::PublishedPartial
    };
    let run_rec = last_run(outcome_name, &missing);
    let published = Published {
        upstream: report.upstream.clone(),
        branch: report.branch.clone(),
        upstream_tip: tip.clone(),
        upstream_tip_time: tip_time.map(|t| Stamp::from(Time { unix: t })),
        registry: pushed.target.clone(),
        overlay_commit: pushed.overlay_commit.clone(),
        complete: missing.is_empty(),
        platforms: spec
            .binaries
            .platforms
            .iter()
            .map(ToString::to_string)
            .collect(),
        counts: status::counts(&o.dest, &outcome.targets, &bad_paths),
        failures: missing.clone(),
        bytes_fetched: report.totals.bytes,
        started: run_rec.started.clone(),
        finished: run_rec.finished.clone(),
        duration_ms: run_rec.duration_ms,
    };
    report.duration_ms = run_rec.duration_ms;
    // Last, atomically: the beacon never names an overlay not yet pushed.
    beacon_with(Some(published), run_rec).write(&o.dest)?;
    report.outcome = outcome_name;
    report.published = true;
    report.registry = Some(pushed);
    Ok(report)
}

#[cfg(test)]
mod state_tests {
    use super::{SyncOutcome, VerifyStatus};

    const HELP: &str = include_str!("../cli.rs");

    /// `sync --help` documents the outcomes and verify statuses.
    #[test]
    fn sync_help_lists_every_outcome_and_verify_status() {
        crate::assert_documents(
            HELP,
            "upstream_repo_yaml, dest,",
            "outcome: ",
            SyncOutcome::ALL.iter().map(|o| o.as_str()),
        );
        crate::assert_documents(
            HELP,
            "verified: [{path",
            "status: ",
            VerifyStatus::ALL.iter().map(|s| s.as_str()),
        );
    }
}
