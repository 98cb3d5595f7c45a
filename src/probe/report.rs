//! What `check` reports: one [`UrlCheck`] per URL, grouped by registry,
//! key, host and package target, with the counts. Each field is part of
//! the JSON contract, and [`UrlCheck`] and [`TargetOut`] are its one
//! definition for a URL and a target.
//!
//! A check of a big mirror has hundreds of thousands of package URLs, so
//! the report does not keep a `UrlCheck` per package URL: a target's URLs
//! are [`Row`]s, a `UrlCheck` without its URL (which the check built from
//! the plan's `pkg` link, and [`Targets`] builds again the same way when
//! the report is read) and with the rare parts (a failure, warnings) boxed;
//! a target names its package by its place in the plan's list. Reading a
//! target ([`Targets::iter`]) gives it back as the [`TargetOut`] it
//! stands for, and the JSON is those, so the document is the same bytes.

use std::sync::Arc;

use serde::Serialize;

use crate::net::problem::{Kind, Problem, ProblemOut};
use crate::zoi::index::PackageRef;
use crate::zoi::placeholders::Coordinates;
use crate::zoi::platform::Platform;
use crate::zoi::repo::{ArchiveUrls, PkgLink, archive_urls};

string_enum! {
    /// Which of the spec's registry git remotes a [`RegistryCheck`] is.
    pub enum RegistryRole {
        /// `registry.url`: the one Zoi clones.
        Main = "main",
        /// One of `registry.mirrors`.
        Mirror = "mirror",
    }
}

string_enum! {
    /// What a checked URL is.
    pub enum CheckKind {
        /// A registry's git URL (reachable, a git repository, HEAD).
        Git = "git",
        /// A registry as Zoi clones it (`--client` on a machine that has not
        /// synced).
        Registry = "registry",
        /// The registry's `repo.yaml` at HEAD.
        RepoYaml = "repo_yaml",
        /// The registry HEAD's signature by an authority.
        Signature = "signature",
        /// A key clients verify with.
        Key = "key",
        /// A binary host.
        Host = "host",
        /// A package archive.
        Archive = "archive",
        /// The archive's `.hash`.
        Hash = "hash",
        /// The archive's `.size`.
        Size = "size",
        /// The archive's `.files`.
        Files = "files",
        /// The archive's `.sig`.
        Pgp = "pgp",
        /// The archive downloaded and read in full (`--deep`).
        Deep = "deep",
    }
}

/// One URL checked.
#[derive(Debug, Clone, Serialize)]
pub struct UrlCheck {
    pub kind: CheckKind,
    /// Shown with credentials redacted.
    pub url: String,
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ProblemOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl UrlCheck {
    pub(crate) fn new(kind: CheckKind, url: &str) -> Self {
        UrlCheck {
            kind,
            url: crate::net::redact::redact(url),
            ok: true,
            status: None,
            latency_ms: 0.0,
            attempts: 0,
            error: None,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn fail(&mut self, p: Problem) {
        self.ok = false;
        self.error = Some(p.into());
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RegistryCheck {
    pub role: RegistryRole,
    pub url: String,
    pub ok: bool,
    pub checks: Vec<UrlCheck>,
}

/// A package target's URL as the report keeps it: a [`UrlCheck`] but for
/// its URL, which is the target's URL for its kind ([`Targets`] builds it
/// again). 32 bytes, against a `UrlCheck`'s 136 and its URL's 100 or so.
#[derive(Debug, Clone)]
pub struct Row {
    pub kind: CheckKind,
    pub ok: bool,
    pub status: Option<u16>,
    pub attempts: u32,
    pub latency_ms: f64,
    /// A failure or warnings: rare, so one pointer for the rest.
    rare: Option<Box<Rare>>,
}

#[derive(Debug, Clone)]
struct Rare {
    error: Option<ProblemOut>,
    warnings: Vec<String>,
}

impl Row {
    /// `c` without its URL.
    pub(crate) fn new(c: UrlCheck) -> Row {
        let rare = (c.error.is_some() || !c.warnings.is_empty()).then(|| {
            Box::new(Rare {
                error: c.error,
                warnings: c.warnings,
            })
        });
        Row {
            kind: c.kind,
            ok: c.ok,
            status: c.status,
            attempts: c.attempts,
            latency_ms: c.latency_ms,
            rare,
        }
    }

    pub fn error(&self) -> Option<&ProblemOut> {
        self.rare.as_ref().and_then(|r| r.error.as_ref())
    }

    pub fn warnings(&self) -> &[String] {
        self.rare.as_ref().map_or(&[], |r| &r.warnings)
    }

    /// The [`UrlCheck`] it was made from, given its URL (redacted here, as
    /// [`UrlCheck::new`] does).
    fn check(&self, url: &str) -> UrlCheck {
        UrlCheck {
            kind: self.kind,
            url: crate::net::redact::redact(url),
            ok: self.ok,
            status: self.status,
            latency_ms: self.latency_ms,
            attempts: self.attempts,
            error: self.error().cloned(),
            warnings: self.warnings().to_vec(),
        }
    }
}

/// The URL a target's row of `kind` was checked at: the one rule by which
/// [`super::check`] names them (`registry_url` for the
/// [`CheckKind::Registry`] row) and [`Targets`] names them again.
pub(crate) fn row_url<'a>(
    kind: CheckKind,
    urls: &'a ArchiveUrls,
    registry_url: Option<&'a str>,
) -> &'a str {
    match kind {
        CheckKind::Archive | CheckKind::Deep => &urls.archive,
        CheckKind::Hash => urls.hash.as_deref().unwrap_or_default(),
        CheckKind::Size => urls.size.as_deref().unwrap_or_default(),
        CheckKind::Files => urls.files.as_deref().unwrap_or_default(),
        CheckKind::Pgp => &urls.pgp,
        CheckKind::Registry => registry_url.unwrap_or_default(),
        // Not a target's URL: check_target makes none of these.
        CheckKind::Git
        | CheckKind::RepoYaml
        | CheckKind::Signature
        | CheckKind::Key
        | CheckKind::Host => "",
    }
}

/// One package × platform, as kept.
#[derive(Debug, Clone)]
pub struct TargetCheck {
    /// Its package: the place in [`Targets`]' list.
    pub(crate) pkg: u32,
    pub platform: Platform,
    pub ok: bool,
    /// Its rows: `len` of [`Targets`]' rows, from `first` on.
    first: u32,
    len: u32,
    /// Its [`CheckKind::Registry`] row, once judged against the registry.
    registry: Option<Row>,
}

impl TargetCheck {
    /// Adds its row from the registry at HEAD; a failed one fails it.
    pub(crate) fn judged(&mut self, row: Row) {
        self.ok &= row.ok;
        self.registry = Some(row);
    }
}

/// A target as its check hands it over, its rows still its own.
#[derive(Debug)]
pub(crate) struct Finished {
    pub pkg: u32,
    pub platform: Platform,
    pub ok: bool,
    pub rows: Vec<Row>,
}

/// One package × platform as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetOut<'a> {
    pub package: String,
    pub version: &'a str,
    pub platform: Platform,
    pub ok: bool,
    pub urls: Vec<UrlCheck>,
}

/// The package targets, with what their URLs are rebuilt from. Serialised
/// as the list of their [`TargetOut`]s, made one at a time.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// The plan's packages, which targets name by place.
    pub(crate) packages: Arc<[PackageRef]>,
    /// The `pkg` link the URLs were built from (none: no targets).
    pub(crate) link: Option<PkgLink>,
    /// The URL of the rows of kind [`CheckKind::Registry`].
    pub(crate) registry_url: Option<String>,
    pub(crate) list: Vec<TargetCheck>,
    /// Every target's rows in one list rather than a heap block each: a
    /// big mirror's 100,000 small blocks, each outliving the requests
    /// around it, fragment glibc's heap and make every later allocation
    /// slower (check at 400 k URLs: user CPU per URL down 28 % with one
    /// list).
    rows: Vec<Row>,
}

impl Targets {
    /// No targets yet, room for `n`.
    pub(crate) fn new(packages: Arc<[PackageRef]>, link: Option<PkgLink>, n: usize) -> Targets {
        Targets {
            packages,
            link,
            registry_url: None,
            list: Vec::with_capacity(n),
            rows: Vec::new(),
        }
    }

    /// Keeps a finished target, its rows moved into the one list. That list
    /// is sized for the targets still to come, at the most rows one has had
    /// (a plan's targets differ only in rows a failure skips, such as
    /// `--deep`'s), so it is not grown by doubling, and copied, 20 times.
    pub(crate) fn keep(&mut self, t: Finished) {
        if self.rows.capacity() - self.rows.len() < t.rows.len() {
            let to_come = self.list.capacity().saturating_sub(self.list.len()).max(1);
            self.rows
                .reserve_exact(t.rows.len().saturating_mul(to_come));
        }
        let first = u32::try_from(self.rows.len()).expect("fewer than 2^32 rows");
        let len = u32::try_from(t.rows.len()).expect("fewer than 2^32 rows");
        self.rows.extend(t.rows);
        self.list.push(TargetCheck {
            pkg: t.pkg,
            platform: t.platform,
            ok: t.ok,
            first,
            len,
            registry: None,
        });
    }

    /// `t`'s rows, in order.
    pub fn rows<'a>(&'a self, t: &'a TargetCheck) -> impl Iterator<Item = &'a Row> {
        let at = t.first as usize;
        self.rows[at..at + t.len as usize].iter().chain(&t.registry)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The kept targets, each with its package.
    pub fn checks(&self) -> impl Iterator<Item = (&PackageRef, &TargetCheck)> {
        self.list
            .iter()
            .map(|t| (&self.packages[t.pkg as usize], t))
    }

    /// Every target as the report shows it, in order.
    pub fn iter(&self) -> impl Iterator<Item = TargetOut<'_>> {
        self.checks().map(|(p, t)| self.out(p, t))
    }

    fn out<'a>(&'a self, p: &'a PackageRef, t: &TargetCheck) -> TargetOut<'a> {
        let urls = self.link.as_ref().map(|link| {
            archive_urls(
                link,
                &Coordinates {
                    name: &p.name,
                    repo: &p.repo,
                    version: &p.version,
                    platform: t.platform,
                },
            )
        });
        TargetOut {
            package: format!("@{}/{}", p.repo, p.name),
            version: &p.version,
            platform: t.platform,
            ok: t.ok,
            urls: self
                .rows(t)
                .map(|r| {
                    let url = urls
                        .as_ref()
                        .map_or("", |u| row_url(r.kind, u, self.registry_url.as_deref()));
                    r.check(url)
                })
                .collect(),
        }
    }
}

impl Serialize for Targets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub urls: usize,
    pub ok: usize,
    pub failed: usize,
    pub warnings: usize,
    pub targets: usize,
    pub targets_failed: usize,
    pub fallbacks_failed: usize,
    /// Failures by kind.
    pub by_kind: std::collections::BTreeMap<Kind, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How the check was planned (e.g. a machine that never synced).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub registry: Vec<RegistryCheck>,
    /// The keys clients verify with (only when they verify anything).
    pub keys: Vec<UrlCheck>,
    /// Binary hosts answering at all.
    pub hosts: Vec<UrlCheck>,
    pub packages: Targets,
    /// `cache_mirrors` candidates for the archives, reported apart: Zoi
    /// tries them only when the main URL fails.
    pub fallbacks: Vec<UrlCheck>,
    pub counts: Counts,
    pub elapsed_ms: f64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.counts.failed == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target kept as rows reads back as the `UrlCheck`s it was made of,
    /// each URL rebuilt (and redacted) for its kind: the same JSON, byte for
    /// byte, as the target serialised with its checks.
    #[test]
    fn rows_read_back_as_the_checks_they_were_made_of() {
        let link = PkgLink {
            hash: Some("https://u:pw@bin.example/{repo}/{os}/{version}/{name}.zpa.hash".into()),
            size: Some("https://bin.example/s/{name}-{version}.size".into()),
            files: Some("https://bin.example/f/{platform}/{name}.files".into()),
            ..PkgLink::new(
                "main",
                "https://u:pw@bin.example/{repo}/{os}/{arch}/{version}",
            )
        };
        let pkg = PackageRef {
            repo: "community/tools".into(),
            name: "hello".into(),
            version: "1.2.3".into(),
        };
        let platform: Platform = "macos-arm64".parse().unwrap();
        let coords = Coordinates {
            name: &pkg.name,
            repo: &pkg.repo,
            version: &pkg.version,
            platform,
        };
        let urls = archive_urls(&link, &coords);
        let registry = "https://token@git.example/z.git";
        let mut checks = Vec::new();
        for (i, kind) in [
            CheckKind::Archive,
            CheckKind::Hash,
            CheckKind::Size,
            CheckKind::Files,
            CheckKind::Deep,
            CheckKind::Pgp,
            CheckKind::Registry,
        ]
        .into_iter()
        .enumerate()
        {
            let mut c = UrlCheck::new(kind, row_url(kind, &urls, Some(registry)));
            c.status = (i != 4).then_some(200 + i as u16);
            c.latency_ms = 0.1 + i as f64 * 1.37;
            c.attempts = i as u32;
            checks.push(c);
        }
        checks[1].fail(Problem::new(Kind::MalformedMetadata, "no SHA-512"));
        checks[2].warnings = vec!["one".into(), "two".into()];
        checks[5].fail(Problem::new(Kind::SignatureMissing, "no .sig"));
        checks[5].warnings.push("only from the cache mirror".into());
        assert!(checks[0].url.contains("***@") && checks[6].url.contains("***@"));

        let mut targets = Targets::new(vec![pkg.clone()].into(), Some(link), 1);
        targets.registry_url = Some(registry.into());
        let (registry_row, rows) = checks.split_last().unwrap();
        targets.keep(Finished {
            pkg: 0,
            platform,
            ok: false,
            rows: rows.iter().cloned().map(Row::new).collect(),
        });
        targets.list[0].judged(Row::new(registry_row.clone()));
        let with_checks = vec![TargetOut {
            package: "@community/tools/hello".into(),
            version: "1.2.3",
            platform,
            ok: false,
            urls: checks,
        }];
        assert_eq!(
            serde_json::to_string_pretty(&targets).unwrap(),
            serde_json::to_string_pretty(&with_checks).unwrap()
        );
        let (_, kept) = targets.checks().next().unwrap();
        let rows: Vec<&Row> = targets.rows(kept).collect();
        assert_eq!(rows[1].error().unwrap().kind, Kind::MalformedMetadata);
        assert_eq!(rows[2].warnings(), ["one", "two"]);
        assert!(rows[0].error().is_none() && rows[0].warnings().is_empty());
        assert_eq!(rows[6].kind, CheckKind::Registry);
    }

    /// Targets kept one after another each get back their own rows, in
    /// order, from the one list, and a failed registry row fails its target.
    #[test]
    fn each_target_gets_its_own_rows_back() {
        let pkg = |name: &str| PackageRef {
            repo: "main".into(),
            name: name.into(),
            version: "1.0.0".into(),
        };
        let platform: Platform = "linux-amd64".parse().unwrap();
        let row = |kind, status| {
            let mut c = UrlCheck::new(kind, "http://h/x");
            c.status = Some(status);
            Row::new(c)
        };
        let mut targets = Targets::new(vec![pkg("a"), pkg("b"), pkg("c")].into(), None, 3);
        for (i, n) in [2u16, 3, 1].into_iter().enumerate() {
            targets.keep(Finished {
                pkg: i as u32,
                platform,
                ok: true,
                rows: (0..n)
                    .map(|k| row(CheckKind::Archive, 100 * (i as u16 + 1) + k))
                    .collect(),
            });
        }
        let mut failed = UrlCheck::new(CheckKind::Registry, "http://g/z.git");
        failed.fail(Problem::new(Kind::NotInRegistry, "not at HEAD"));
        targets.list[1].judged(Row::new(failed));
        targets.list[2].judged(row(CheckKind::Registry, 0));
        let seen: Vec<(bool, Vec<Option<u16>>)> = targets
            .checks()
            .map(|(_, t)| (t.ok, targets.rows(t).map(|r| r.status).collect()))
            .collect();
        assert_eq!(
            seen,
            [
                (true, vec![Some(100), Some(101)]),
                (false, vec![Some(200), Some(201), Some(202), None]),
                (true, vec![Some(300), Some(0)]),
            ]
        );
    }

    /// What the report keeps per package URL (400,000 of them for a big
    /// mirror) stays at 32 bytes.
    #[test]
    fn a_row_is_32_bytes() {
        assert!(std::mem::size_of::<Row>() <= 32);
    }
}
