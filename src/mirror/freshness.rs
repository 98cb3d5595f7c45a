//! `check --freshness`: is the mirror as fresh as it says, and does it say
//! the truth? Compares the beacon `sync` writes on the binary host
//! ([`crate::mirror::status`]) with the registry's `HEAD` (what Zoi clones)
//! and with upstream's current tip.
//!
//! Zoi has no freshness limit on a registry, so a frozen mirror verifies
//! forever; this is the check that notices. It fails when the mirror is
//! behind upstream, older than `max_age`, published incompletely, or when
//! the registry's HEAD is not the overlay the beacon names (a half-published
//! state: a push without its beacon, or someone else's push).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::mirror::status::{Beacon, Stamp, SyncOutcome, Time, ago};
use crate::net::redact::{redact, scrub};

#[derive(Debug, Clone)]
pub struct Options {
    /// Where the beacon came from (for the report).
    pub beacon_source: String,
    pub beacon: Vec<u8>,
    /// Upstream's git URL (default: the beacon's).
    pub upstream: Option<String>,
    /// The internal registry's git URL (default: the beacon's).
    pub registry: Option<String>,
    pub max_age: Option<Duration>,
    pub now: Time,
}

/// One reason the mirror is not fresh.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub message: String,
}

string_enum! {
    /// Why the mirror is not fresh (`check --freshness --help` lists these).
    pub enum FindingKind {
        /// The beacon records no published sync.
        NeverPublished = "never_published",
        /// The registry's HEAD is not the overlay the beacon names.
        HalfPublished = "half_published",
        /// The mirror is behind upstream's current tip.
        Behind = "behind",
        /// The published tip is not an ancestor of upstream's tip.
        Diverged = "diverged",
        /// The last published sync is older than --max-age.
        Stale = "stale",
        /// Published with files missing.
        Partial = "partial",
        /// The mirror's registry cannot be reached.
        RegistryUnreachable = "registry_unreachable",
        /// Upstream's registry cannot be reached.
        UpstreamUnreachable = "upstream_unreachable",
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub beacon: String,
    pub fresh: bool,
    /// One line for people: "behind by 2 commits / 1 archives, last synced
    /// 3 h ago".
    pub summary: String,
    pub upstream: String,
    pub branch: String,
    /// The upstream commit the mirror publishes (beacon).
    pub published_tip: Option<String>,
    /// Upstream's branch now.
    pub upstream_tip: Option<String>,
    pub behind_commits: Option<u64>,
    /// Archives (package × platform) the current upstream index names at a
    /// version the published one does not.
    pub behind_archives: Option<usize>,
    pub registry: String,
    pub registry_head: Option<String>,
    pub overlay_commit: Option<String>,
    pub last_sync: Option<Stamp>,
    pub age_seconds: Option<i64>,
    pub max_age_seconds: Option<u64>,
    pub complete: Option<bool>,
    pub last_run_outcome: String,
    pub problems: Vec<Finding>,
    pub warnings: Vec<String>,
}

fn git(dir: Option<&Path>, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    if let Some(d) = dir {
        c.arg("-C").arg(d);
    }
    c.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        .stdin(Stdio::null());
    c
}

fn output(mut c: Command, urls: &[&str]) -> Result<String, String> {
    let out = c.output().map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(scrub(String::from_utf8_lossy(&out.stderr).trim(), urls))
    }
}

/// The object a remote ref names (`None`: no such ref).
fn remote_ref(url: &str, rf: &str) -> Result<Option<String>, String> {
    let text = output(git(None, &["ls-remote", "--", url, rf]), &[url])?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .find(|(_, name)| name.trim() == rf)
        .map(|(sha, _)| sha.to_string()))
}

/// (commits from `old` to the tip, archives the tip's index names at a new
/// version), from a throw-away fetch of the branch. `None` commits: `old`
/// is not in the branch's history (upstream rewrote it).
fn distance(
    upstream: &str,
    branch: &str,
    old: &str,
    platforms: usize,
) -> Result<(Option<u64>, Option<usize>), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = Some(tmp.path());
    output(git(d, &["init", "--bare", "-q"]), &[])?;
    let spec = format!("+refs/heads/{branch}:refs/heads/tip");
    output(
        git(d, &["fetch", "-q", "--no-tags", "--", upstream, &spec]),
        &[upstream],
    )?;
    let known = git(d, &["cat-file", "-e", &format!("{old}^{{commit}}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !known {
        return Ok((None, None));
    }
    let n = output(
        git(d, &["rev-list", "--count", &format!("{old}..tip")]),
        &[],
    )?
    .parse()
    .ok();
    let index_at = |rev: &str| {
        git(d, &["show", &format!("{rev}:packages.json")])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| crate::zoi::index::parse(&o.stdout).ok())
    };
    let archives = match (index_at(old), index_at("tip")) {
        (Some(before), Some(after)) => {
            let before: std::collections::BTreeSet<(String, String, String)> = before
                .into_iter()
                .map(|p| (p.repo, p.name, p.version))
                .collect();
            let changed = after
                .into_iter()
                .filter(|p| !before.contains(&(p.repo.clone(), p.name.clone(), p.version.clone())))
                .count();
            Some(changed * platforms)
        }
        _ => None,
    };
    Ok((n, archives))
}

/// Runs the comparison (network: two `git ls-remote`, and a fetch of the
/// branch when upstream moved).
pub fn check(o: &Options) -> Result<Report, String> {
    let beacon = Beacon::parse(&o.beacon).map_err(|e| format!("{}: {e}", o.beacon_source))?;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let p = beacon.published.as_ref();
    let upstream = o
        .upstream
        .clone()
        .or_else(|| p.map(|p| p.upstream.clone()))
        .unwrap_or_default();
    let registry = o
        .registry
        .clone()
        .or_else(|| p.map(|p| p.registry.clone()))
        .unwrap_or_default();
    let branch = p.map(|p| p.branch.clone()).unwrap_or_default();
    let mut report = Report {
        beacon: o.beacon_source.clone(),
        fresh: false,
        summary: String::new(),
        upstream: redact(&upstream),
        branch: branch.clone(),
        published_tip: p.map(|p| p.upstream_tip.clone()),
        upstream_tip: None,
        behind_commits: None,
        behind_archives: None,
        registry: redact(&registry),
        registry_head: None,
        overlay_commit: p.map(|p| p.overlay_commit.clone()),
        last_sync: p.map(|p| p.finished.clone()),
        age_seconds: p.map(|p| o.now.unix - p.finished.unix),
        max_age_seconds: o.max_age.map(|d| d.as_secs()),
        complete: p.map(|p| p.complete),
        last_run_outcome: beacon.last_run.outcome.clone(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    if beacon.last_run.outcome == SyncOutcome::NotPublished.as_str() {
        warnings.push(format!(
            "the latest run ({}) did not publish: {} file(s) could not be placed",
            beacon.last_run.finished.utc,
            beacon.last_run.failures.len()
        ));
    }
    let Some(p) = p else {
        problems.push(Finding {
            kind: FindingKind::NeverPublished,
            message: "the beacon says no sync has published yet".into(),
        });
        report.summary = "never published".into();
        report.problems = problems;
        report.warnings = warnings;
        return Ok(report);
    };

    match remote_ref(&registry, "HEAD") {
        Ok(head) => {
            if head.as_deref() != Some(p.overlay_commit.as_str()) {
                problems.push(Finding {
                    kind: FindingKind::HalfPublished,
                    message: format!(
                        "the registry's HEAD ({}) is {}, but the beacon says {} was published: a push without its beacon (a sync cut short), or someone else's push",
                        redact(&registry),
                        head.as_deref().unwrap_or("missing"),
                        p.overlay_commit
                    ),
                });
            }
            report.registry_head = head;
        }
        Err(e) => problems.push(Finding {
            kind: FindingKind::RegistryUnreachable,
            message: format!(
                "cannot read the registry's HEAD ({}): {e}",
                redact(&registry)
            ),
        }),
    }

    let mut behind = String::new();
    match remote_ref(&upstream, &format!("refs/heads/{branch}")) {
        Ok(Some(tip)) if tip == p.upstream_tip => {
            report.behind_commits = Some(0);
            report.behind_archives = Some(0);
            report.upstream_tip = Some(tip);
        }
        Ok(Some(tip)) => {
            match distance(&upstream, &branch, &p.upstream_tip, p.platforms.len()) {
                Ok((Some(n), archives)) => {
                    report.behind_commits = Some(n);
                    report.behind_archives = archives;
                    behind = format!(
                        "behind by {n} commit{}{}",
                        if n == 1 { "" } else { "s" },
                        archives
                            .map(|a| format!(" / {a} archive{}", if a == 1 { "" } else { "s" }))
                            .unwrap_or_default()
                    );
                    problems.push(Finding {
                        kind: FindingKind::Behind,
                        message: format!(
                            "{behind}: upstream {branch} is at {tip}, the mirror publishes {}",
                            p.upstream_tip
                        ),
                    });
                }
                Ok((None, _)) => {
                    behind = "diverged from upstream".into();
                    problems.push(Finding {
                        kind: FindingKind::Diverged,
                        message: format!(
                            "upstream {branch} ({tip}) no longer contains the published {}: upstream rewrote its history",
                            p.upstream_tip
                        ),
                    });
                }
                Err(e) => problems.push(Finding {
                    kind: FindingKind::UpstreamUnreachable,
                    message: format!("cannot fetch upstream {}: {e}", redact(&upstream)),
                }),
            }
            report.upstream_tip = Some(tip);
        }
        Ok(None) => problems.push(Finding {
            kind: FindingKind::UpstreamUnreachable,
            message: format!("upstream {} has no branch {branch}", redact(&upstream)),
        }),
        Err(e) => problems.push(Finding {
            kind: FindingKind::UpstreamUnreachable,
            message: format!("cannot reach upstream {}: {e}", redact(&upstream)),
        }),
    }

    let age = o.now.unix - p.finished.unix;
    if let Some(max) = o.max_age
        && age > max.as_secs() as i64
    {
        problems.push(Finding {
            kind: FindingKind::Stale,
            message: format!(
                "last synced {} ({}), more than --max-age {} s",
                ago(age),
                p.finished.utc,
                max.as_secs()
            ),
        });
    }
    if !p.complete {
        problems.push(Finding {
            kind: FindingKind::Partial,
            message: format!(
                "published with {} file(s) missing (--allow-partial): clients installing them fail",
                p.failures.len()
            ),
        });
    }
    let head = if behind.is_empty() {
        if report.behind_commits == Some(0) {
            format!(
                "up to date with upstream {}",
                &p.upstream_tip[..p.upstream_tip.len().min(12)]
            )
        } else {
            "upstream unknown".to_string()
        }
    } else {
        behind
    };
    report.summary = format!("{head}, last synced {}", ago(age));
    report.fresh = problems.is_empty();
    report.problems = problems;
    report.warnings = warnings;
    Ok(report)
}

/// `--max-age`: `90s`, `30m`, `6h`, `2d`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m, 6h or 2d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(n * mult))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("6h").unwrap().as_secs(), 6 * 3600);
        assert_eq!(parse_duration("2d").unwrap().as_secs(), 2 * 86_400);
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }
}

#[cfg(test)]
mod state_tests {
    use super::FindingKind;

    /// `check --help` documents the freshness problem kinds.
    #[test]
    fn check_help_lists_every_freshness_problem_kind() {
        crate::assert_documents(
            include_str!("../cli.rs"),
            "last_run_outcome, problems",
            "kind: ",
            FindingKind::ALL.iter().map(|k| k.as_str()),
        );
    }
}
