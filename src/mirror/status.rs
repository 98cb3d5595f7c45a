//! The freshness beacon: `zoi-mirror-status.json`, written on the binary
//! host by every `sync`, atomically and last, and what is derived from it
//! (the `serve` status page and `/metrics`, `check --freshness`).
//!
//! Zoi has no freshness limit on a registry (nothing like apt's
//! `Valid-Until`): a mirror frozen a month ago verifies forever. The beacon
//! says what clients get now — the upstream commit and the overlay that is
//! published, when, and which files are there — and what the last run did,
//! so a stale or half-filled mirror shows instead of looking healthy.
//!
//! `published` changes only when a run publishes; a run that refuses to
//! publish (a file failed) rewrites only `last_run`, so the beacon goes on
//! describing the state clients are in.
//!
//! The shape is versioned by `format_version`; readers refuse a version
//! they do not know (a new field alone does not bump it).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::mirror::binsync::{Artifact, KeyReport, TargetReport, TargetStatus};

/// The file name under the binary host's root.
pub const BEACON_FILE: &str = "zoi-mirror-status.json";
/// `format` of every beacon.
pub const FORMAT: &str = "zoi-mirror-status";
/// The shape this tool writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A moment, both ways: Unix seconds for arithmetic, RFC 3339 UTC for people.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Time {
    pub unix: i64,
}

impl Time {
    pub fn now() -> Time {
        Time {
            unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        }
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn utc(self) -> String {
        chrono::DateTime::from_timestamp(self.unix, 0)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }
}

/// A moment as written in the beacon: `{unix, utc}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stamp {
    pub unix: i64,
    pub utc: String,
}

impl From<Time> for Stamp {
    fn from(t: Time) -> Stamp {
        Stamp {
            unix: t.unix,
            utc: t.utc(),
        }
    }
}

/// "3 h ago", "2 d ago": how long ago, roughly, for people.
pub fn ago(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=89 => format!("{s} s ago"),
        90..=5399 => format!("{} min ago", (s + 30) / 60),
        5400..=129_599 => format!("{} h ago", (s + 1800) / 3600),
        _ => format!("{} d ago", (s + 43_200) / 86_400),
    }
}

/// Files of one kind for one tier and platform, by what the run did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Count {
    pub tier: String,
    /// `os-arch`, or `any` for source bundles.
    pub platform: String,
    /// `archive`, `source` or `delta`.
    pub artifact: String,
    /// Fetched and placed by this run.
    pub placed: usize,
    /// Already on the host, identical to upstream's.
    pub up_to_date: usize,
    /// Upstream has none (404): not a failure.
    pub not_available: usize,
    /// Upstream has it, the host does not (or not verified).
    pub failed: usize,
    /// Bytes of these files on the host.
    pub bytes: u64,
}

/// One file (or key) the index needs that the host does not have.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Gap {
    /// `@tier/name`, or the key's name.
    pub package: String,
    pub version: String,
    pub platform: Option<String>,
    /// `archive`, `source`, `delta` or `key`.
    pub artifact: String,
    /// Relative to the binary host's root.
    pub path: String,
    /// The failure kind (`http_error`, `hash_mismatch`, `signature`,
    /// `index_mismatch`, …).
    pub kind: String,
    pub message: String,
}

/// What clients get now: the last published sync.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Published {
    /// Upstream's git URL (credentials redacted) and the synced branch.
    pub upstream: String,
    pub branch: String,
    pub upstream_tip: String,
    /// The tip's committer time.
    pub upstream_tip_time: Option<Stamp>,
    /// The internal registry (redacted) and the overlay commit its branch
    /// carries.
    pub registry: String,
    pub overlay_commit: String,
    /// Every file the index needs that upstream has is on the host.
    pub complete: bool,
    pub platforms: Vec<String>,
    pub counts: Vec<Count>,
    /// Files the index names that clients will miss (`--allow-partial`).
    pub failures: Vec<Gap>,
    /// Bytes fetched by that run.
    pub bytes_fetched: u64,
    pub started: Stamp,
    pub finished: Stamp,
    pub duration_ms: u64,
}

string_enum! {
    /// What a `sync` run published (`sync --help` lists these; the beacon's
    /// `last_run.outcome` records the same strings).
    pub enum SyncOutcome {
        /// The new index, with every file it names.
        Published = "published",
        /// The new index with files missing (`--allow-partial`).
        PublishedPartial = "published_partial",
        /// Nothing: the registry stays at its previous state.
        NotPublished = "not_published",
    }
}

/// What the latest run did, published or not.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastRun {
    /// A [`SyncOutcome`], kept as its string: the beacon is read back (by
    /// `status`, `freshness`, `serve`), maybe one another version wrote,
    /// and an outcome this version does not know must still load.
    pub outcome: String,
    pub upstream_tip: String,
    pub started: Stamp,
    pub finished: Stamp,
    pub duration_ms: u64,
    pub failures: Vec<Gap>,
}

/// `zoi-mirror-status.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Beacon {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The zoi-mirror that wrote it.
    pub tool_version: String,
    /// `None` until a run has published.
    pub published: Option<Published>,
    pub last_run: LastRun,
}

impl Beacon {
    /// Reads a beacon, refusing another format or an unknown version.
    pub fn parse(bytes: &[u8]) -> Result<Beacon, String> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(format!("not a {FORMAT} document"));
        }
        match v.get("format_version").and_then(serde_json::Value::as_u64) {
            Some(n) if n == u64::from(FORMAT_VERSION) => {}
            Some(n) => {
                return Err(format!(
                    "format_version {n}, this zoi-mirror reads {FORMAT_VERSION}: upgrade it"
                ));
            }
            None => return Err("no format_version".into()),
        }
        serde_json::from_value(v).map_err(|e| format!("malformed: {e}"))
    }

    /// The beacon under a binary host's root, if one is there and readable.
    pub fn read(dest: &Path) -> Option<Beacon> {
        std::fs::read(dest.join(BEACON_FILE))
            .ok()
            .and_then(|b| Beacon::parse(&b).ok())
    }

    /// Writes it under `dest`, atomically (readers see the old file or the
    /// new one).
    pub fn write(&self, dest: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        crate::fsutil::atomic_write(&dest.join(BEACON_FILE), &bytes)
    }
}

fn artifact_name(a: Artifact) -> &'static str {
    match a {
        Artifact::Archive => "archive",
        Artifact::Source => "source",
        Artifact::Delta => "delta",
    }
}

/// The tier of `@tier/name` (tiers may contain `/`).
fn tier_of(package: &str) -> String {
    package
        .trim_start_matches('@')
        .rsplit_once('/')
        .map_or_else(String::new, |(t, _)| t.to_string())
}

/// The gap a failed file leaves.
pub fn gap_of(t: &TargetReport) -> Gap {
    Gap {
        package: t.package.clone(),
        version: t.version.clone(),
        platform: t.platform.map(|p| p.to_string()),
        artifact: artifact_name(t.artifact).to_string(),
        path: t.path.clone(),
        kind: t
            .error
            .as_ref()
            .map_or("failed", |e| e.kind.as_str())
            .to_string(),
        message: t
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_default(),
    }
}

/// The gap a failed key leaves.
pub fn key_gap(k: &KeyReport) -> Gap {
    Gap {
        package: k.name.clone(),
        version: String::new(),
        platform: None,
        artifact: "key".to_string(),
        path: k.path.clone(),
        kind: k
            .error
            .as_ref()
            .map_or("failed", |e| e.kind.as_str())
            .to_string(),
        message: k
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_default(),
    }
}

/// Counts per tier × platform × kind; `failed_paths` are files the run
/// placed that then failed verification (counted failed, not placed).
pub fn counts(
    dest: &Path,
    targets: &[TargetReport],
    failed_paths: &std::collections::BTreeSet<String>,
) -> Vec<Count> {
    let mut by: BTreeMap<(String, String, &'static str), Count> = BTreeMap::new();
    for t in targets {
        let tier = tier_of(&t.package);
        let platform = t
            .platform
            .map_or_else(|| "any".to_string(), |p| p.to_string());
        let artifact = artifact_name(t.artifact);
        let c = by
            .entry((tier.clone(), platform.clone(), artifact))
            .or_insert_with(|| Count {
                tier,
                platform,
                artifact: artifact.to_string(),
                ..Count::default()
            });
        let status = if failed_paths.contains(&t.path) {
            TargetStatus::Failed
        } else {
            t.status
        };
        match status {
            TargetStatus::Downloaded => c.placed += 1,
            TargetStatus::UpToDate => c.up_to_date += 1,
            TargetStatus::NotAvailable => c.not_available += 1,
            TargetStatus::WouldDownload | TargetStatus::Failed => c.failed += 1,
        }
        if matches!(status, TargetStatus::Downloaded | TargetStatus::UpToDate) {
            c.bytes += std::fs::metadata(dest.join(&t.path)).map_or(0, |m| m.len());
        }
    }
    by.into_values().collect()
}

/// Prometheus' text format: a label value with `\`, `"` and newlines
/// escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `/metrics` in the Prometheus text exposition format (0.0.4), from the
/// beacon (`None`: no beacon yet, or unreadable).
pub fn metrics(beacon: Option<&Beacon>) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, v) in samples {
            out.push_str(&format!("{name}{labels} {v}\n"));
        }
    };
    metric(
        "zoi_mirror_beacon_present",
        "gauge",
        "1 when the binary host has a readable zoi-mirror-status.json.",
        vec![(String::new(), f64::from(u8::from(beacon.is_some())))],
    );
    let Some(b) = beacon else { return out };
    let run = &b.last_run;
    metric(
        "zoi_mirror_last_run_timestamp_seconds",
        "gauge",
        "When the latest sync run ended (Unix time), published or not.",
        vec![(String::new(), run.finished.unix as f64)],
    );
    metric(
        "zoi_mirror_last_run_published",
        "gauge",
        "1 when the latest sync run published its index.",
        vec![(
            String::new(),
            f64::from(u8::from(run.outcome != SyncOutcome::NotPublished.as_str())),
        )],
    );
    metric(
        "zoi_mirror_last_run_failures",
        "gauge",
        "Files the latest sync run could not place.",
        vec![(String::new(), run.failures.len() as f64)],
    );
    let Some(p) = &b.published else { return out };
    metric(
        "zoi_mirror_last_sync_timestamp_seconds",
        "gauge",
        "When the published sync ended (Unix time): how fresh the mirror is.",
        vec![(String::new(), p.finished.unix as f64)],
    );
    metric(
        "zoi_mirror_last_sync_duration_seconds",
        "gauge",
        "How long the published sync took.",
        vec![(String::new(), p.duration_ms as f64 / 1000.0)],
    );
    if let Some(t) = &p.upstream_tip_time {
        metric(
            "zoi_mirror_upstream_tip_timestamp_seconds",
            "gauge",
            "Committer time of the upstream commit the mirror publishes.",
            vec![(String::new(), t.unix as f64)],
        );
    }
    metric(
        "zoi_mirror_complete",
        "gauge",
        "1 when every file the published index needs (and upstream has) is on the host.",
        vec![(String::new(), f64::from(u8::from(p.complete)))],
    );
    metric(
        "zoi_mirror_info",
        "gauge",
        "What is published, as labels.",
        vec![(
            format!(
                "{{upstream_tip=\"{}\",overlay_commit=\"{}\",branch=\"{}\",tool_version=\"{}\"}}",
                label(&p.upstream_tip),
                label(&p.overlay_commit),
                label(&p.branch),
                label(&b.tool_version)
            ),
            1.0,
        )],
    );
    let mut files = Vec::new();
    let mut bytes = Vec::new();
    for c in &p.counts {
        let l = format!(
            "tier=\"{}\",platform=\"{}\",artifact=\"{}\"",
            label(&c.tier),
            label(&c.platform),
            label(&c.artifact)
        );
        for (state, n) in [
            ("placed", c.placed),
            ("up_to_date", c.up_to_date),
            ("not_available", c.not_available),
            ("failed", c.failed),
        ] {
            files.push((format!("{{{l},state=\"{state}\"}}"), n as f64));
        }
        bytes.push((format!("{{{l}}}"), c.bytes as f64));
    }
    metric(
        "zoi_mirror_archives",
        "gauge",
        "Files the published index names, by tier, platform, kind and what the sync did.",
        files,
    );
    metric(
        "zoi_mirror_bytes",
        "gauge",
        "Bytes on the host of the files the published index names.",
        bytes,
    );
    metric(
        "zoi_mirror_last_sync_fetched_bytes",
        "gauge",
        "Bytes the published sync fetched from upstream.",
        vec![(String::new(), p.bytes_fetched as f64)],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times() {
        assert_eq!(Time { unix: 0 }.utc(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Time {
                unix: 1_700_000_000
            }
            .utc(),
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn ages_for_people() {
        assert_eq!(ago(5), "5 s ago");
        assert_eq!(ago(3 * 3600 + 60), "3 h ago");
        assert_eq!(ago(50 * 3600), "2 d ago");
    }

    #[test]
    fn unknown_versions_are_refused() {
        let v = br#"{"format":"zoi-mirror-status","format_version":99}"#;
        assert!(Beacon::parse(v).unwrap_err().contains("99"));
        assert!(Beacon::parse(b"{}").is_err());
    }

    #[test]
    fn tiers_may_nest() {
        assert_eq!(tier_of("@main/sigtool"), "main");
        assert_eq!(tier_of("@community/x/tool"), "community/x");
    }
}
