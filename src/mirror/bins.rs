//! The archive half of a sync, shared by `bin sync` and `sync`: from a spec,
//! upstream's `repo.yaml` and its `packages.json` to the files the mirror
//! must host (every package at its index version × the spec's platforms),
//! then keys first and [`binsync::run`] over them, with the totals both
//! commands report. The rules live here; the commands only parse flags and
//! print.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use crate::error::{ErrorKind, Failure, fail};
use crate::mirror::binsync::{self, KeyReport, KeyStatus, TargetReport, TargetStatus};
use crate::mirror::prune::{self, Pruned};
use crate::net::client;
use crate::net::prober::Prober;
use crate::spec::Spec;
use crate::zoi::archive::ArchiveKind;
use crate::zoi::index::PackageRef;
use crate::zoi::platform::Platform;
use crate::zoi::repo::{PkgLink, RepoYaml};

/// Which part of the index to mirror (`bin sync --tier/--package/
/// --platform`); empty lists mean everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tiers: Vec<String>,
    pub packages: Vec<String>,
    pub platforms: Vec<Platform>,
}

/// `bin sync` copies `.zpa` archives: a spec asking for the legacy format
/// cannot be filled from upstream.
pub fn check_format(spec: &Spec) -> Result<()> {
    if spec.binaries.format == ArchiveKind::PkgTarZst {
        return fail(
            Failure::new(
                ErrorKind::Format,
                "bin sync copies upstream's .zpa archives, but binaries.format is \"pkg.tar.zst\"",
            )
            .hint("set binaries.format = \"zpa\" (Zoi >= 1.23 installs only .zpa from a registry)"),
        );
    }
    Ok(())
}

/// Upstream's archive link, the one Zoi uses (the first `main`, else the
/// first `mirror`).
pub fn archive_link(upstream: &RepoYaml) -> Result<PkgLink> {
    match upstream.first_archive_link() {
        Some(l) => Ok(l.clone()),
        None => fail(
            Failure::new(ErrorKind::NoPkgLink, "upstream's repo.yaml has no `main` or `mirror` pkg link: it publishes no pre-built archives")
                .hint("pass the repo.yaml of a registry that does with --upstream-repo-yaml"),
        ),
    }
}

/// What a run mirrors, out of the index it read.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Every package of the index, selected or not: `--prune` reads the
    /// host's file names against all of them ([`prune::candidates`]).
    pub known: Vec<PackageRef>,
    /// Every (package at its index version, platform) to mirror.
    pub targets: Vec<(PackageRef, Platform)>,
}

/// Every (package at its index version, platform) to mirror, with the
/// index's packages.
pub fn select(
    spec: &Spec,
    index_bytes: &[u8],
    index_source: &str,
    filter: &Filter,
) -> Result<Selection> {
    let packages = crate::probe::plan::index_packages(index_bytes, index_source)?;
    for p in &filter.platforms {
        if !spec.binaries.platforms.contains(p) {
            return fail(
                Failure::new(
                    ErrorKind::Usage,
                    format!("--platform {p} is not one the spec serves"),
                )
                .hint("add it to binaries.platforms first"),
            );
        }
    }
    let platforms = if filter.platforms.is_empty() {
        spec.binaries.platforms.clone()
    } else {
        filter.platforms.clone()
    };
    let names = package_globs(&filter.packages)?;
    let targets = packages
        .iter()
        .filter(|p| filter.tiers.is_empty() || filter.tiers.contains(&p.repo))
        .filter(|p| {
            filter.packages.is_empty()
                || names.is_match(&p.name)
                || names.is_match(format!("@{}/{}", p.repo, p.name))
        })
        .flat_map(|p| platforms.iter().map(move |pl| (p.clone(), *pl)))
        .collect();
    Ok(Selection {
        known: packages,
        targets,
    })
}

/// `--package` patterns (`*`, `?`, as globs: `*` may span the `/` of
/// `@tier/name`), matched against a package's name and its `@tier/name`.
fn package_globs(patterns: &[String]) -> Result<globset::GlobSet> {
    let mut set = globset::GlobSetBuilder::new();
    for p in patterns {
        let glob = globset::Glob::new(p).map_err(|e| {
            Failure::new(
                ErrorKind::Usage,
                format!("--package {p:?} is not a valid pattern: {e}"),
            )
            .hint("use `*` and `?`, e.g. --package 'z*' or --package '@core/*'")
        })?;
        set.add(glob);
    }
    Ok(set.build()?)
}

/// Where `bin sync` writes: `--dest`, else the spec's `[binaries.storage]
/// url`; with the bucket when that is `s3://…` (re-signing works for both:
/// into a bucket gpg signs the bytes as they stream up).
pub fn destination(
    flag: Option<&Path>,
    spec: &Spec,
) -> Result<(PathBuf, Option<crate::storage::S3Url>)> {
    let dest: PathBuf = match (flag, &spec.binaries.storage.url) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(u)) => u.into(),
        (None, None) => {
            return fail(
                Failure::new(
                    ErrorKind::Usage,
                    "no destination: give --dest DIR|s3://BUCKET/PREFIX",
                )
                .hint("or set [binaries.storage] url in the spec"),
            );
        }
    };
    match crate::storage::Dest::parse(&dest)
        .map_err(|m| Failure::new(ErrorKind::BadDestination, m))?
    {
        crate::storage::Dest::Local(_) => Ok((dest, None)),
        crate::storage::Dest::S3(url) => Ok((dest, Some(url))),
    }
}

/// How to mirror the selected targets.
#[derive(Debug, Clone)]
pub struct Run {
    pub dest: PathBuf,
    pub targets: Vec<(PackageRef, Platform)>,
    /// Every package of the index ([`Selection::known`]).
    pub known: Vec<PackageRef>,
    pub dry_run: bool,
    pub retries: u32,
    pub concurrency: usize,
    /// Place files without verifying upstream's signatures.
    pub allow_unsigned: bool,
    /// GnuPG key to re-sign verified files with.
    pub resign: Option<String>,
}

/// What the keys and files came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub keys: Vec<KeyReport>,
    pub targets: Vec<TargetReport>,
}

/// The binsync options for a run (also to count its files beforehand).
pub fn options(spec: &Spec, upstream: &RepoYaml, link: PkgLink, run: &Run) -> binsync::Options {
    binsync::Options {
        dest: run.dest.clone(),
        layout: spec.binaries.layout.clone(),
        source_layout: spec.binaries.source_layout(),
        link,
        source: upstream.first_source_link().cloned(),
        delta: upstream.first_delta_link().cloned(),
        targets: run.targets.clone(),
        dry_run: run.dry_run,
        retries: run.retries,
        verify: None,
        resign: run.resign.clone(),
    }
}

/// Keys first (they are what the files are verified against), then every
/// file. `progress(bytes, files_done)` is called as files complete.
pub fn mirror(
    spec: &Spec,
    upstream: &RepoYaml,
    mut opts: binsync::Options,
    run: &Run,
    http_opts: &client::Options,
    progress: impl Fn(u64, u64),
) -> Result<Outcome> {
    if !run.dry_run {
        writable_dir(&run.dest)?;
    }
    let upstream_keys = upstream_keys(upstream);
    let rt = crate::runtime::new(crate::runtime::Threads::PerCore)?;
    rt.block_on(async {
        let prober = prober(run, http_opts)?;
        let (keys, parsed) = binsync::sync_keys(
            &prober,
            &upstream_keys,
            &run.dest,
            &spec.binaries.keys_dir,
            run.dry_run,
        )
        .await;
        if !upstream_keys.is_empty() && !run.allow_unsigned {
            opts.verify = Some(verifying_keys(spec, &opts, &keys, parsed));
        }
        let targets = binsync::run(prober, opts, run.concurrency, progress).await?;
        anyhow::Ok(Outcome { keys, targets })
    })
}

/// A folder destination is checked before anything is fetched, as a bucket
/// is ([`mirror_to_store`]): made if missing, then a file created in it and
/// removed. A file, a symlink loop or a folder this user cannot write ends
/// the run here (exit 3), not as a failed download of every target.
fn writable_dir(dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest)
        .and_then(|()| {
            tempfile::Builder::new()
                .prefix(".zoi-mirror-probe")
                .tempfile_in(dest)
        })
        .map(drop)
        .map_err(|e| {
            Failure::new(
                ErrorKind::Io,
                format!("cannot write into the destination {}: {e}", dest.display()),
            )
            .hint("give --dest a folder this user can write (it is made if missing)")
            .into()
        })
}

/// Upstream's `pgp:` keys as (name, URL or inline key).
fn upstream_keys(upstream: &RepoYaml) -> Vec<(String, String)> {
    upstream
        .pgp
        .iter()
        .map(|k| (k.name.clone(), k.key.clone()))
        .collect()
}

/// The prober a run fetches with: a few requests per job in flight (the
/// archive and its sidecars), the run's retries.
fn prober(run: &Run, http_opts: &client::Options) -> Result<Arc<Prober>> {
    let client = client::Http::new(http_opts)?;
    Ok(Arc::new(Prober::new(
        client,
        run.concurrency * 4,
        run.concurrency * 4,
        run.retries,
    )))
}

/// What clients will verify with: with `binaries.trust` (and no
/// re-signing) only those of upstream's keys, so that nothing is placed
/// that clients would refuse.
fn verifying_keys(
    spec: &Spec,
    opts: &binsync::Options,
    keys: &[KeyReport],
    parsed: Vec<crate::zoi::pgp::PublicKey>,
) -> Vec<crate::zoi::pgp::PublicKey> {
    let keep = |k: &crate::zoi::pgp::PublicKey| match (&spec.binaries.trust, &opts.resign) {
        (Some(trust), None) => keys.iter().any(|r| {
            r.fingerprint.as_deref() == Some(k.fingerprint().as_str())
                && (trust.contains(&r.name)
                    || trust
                        .iter()
                        .any(|t| k.fingerprint().eq_ignore_ascii_case(t)))
        }),
        _ => true,
    };
    parsed.into_iter().filter(|k| keep(k)).collect()
}

/// What an object-storage run does besides mirroring.
#[derive(Debug, Clone, Default)]
pub struct StoreRun {
    /// Refuse a bucket anonymous clients cannot read (before writing).
    pub require_public: bool,
    /// `--prune --keep N`.
    pub prune: Option<usize>,
}

/// [`mirror`] (and [`prune()`]) into S3-compatible object storage: the bucket
/// is checked first (exists, credentials work, clients can read it), so a
/// bad destination writes nothing; then keys, then every file, streamed
/// ([`crate::mirror::binsync_s3`]).
#[allow(clippy::too_many_arguments)]
pub fn mirror_to_store(
    spec: &Spec,
    upstream: &RepoYaml,
    mut opts: binsync::Options,
    run: &Run,
    http_opts: &client::Options,
    store: Arc<crate::storage::Store>,
    extra: &StoreRun,
    progress: impl Fn(u64, u64),
) -> Result<(Outcome, Vec<Pruned>)> {
    use crate::mirror::binsync_s3;
    let store_failure =
        |e: crate::storage::StoreError| -> anyhow::Error { e.into_failure().into() };
    let upstream_keys = upstream_keys(upstream);
    let rt = crate::runtime::new(crate::runtime::Threads::PerCore)?;
    rt.block_on(async {
        let prober = prober(run, http_opts)?;
        store
            .preflight(&prober.http, extra.require_public)
            .await
            .map_err(store_failure)?;
        let (keys, parsed) = binsync_s3::sync_keys(
            &prober,
            &upstream_keys,
            &store,
            &spec.binaries.keys_dir,
            run.dry_run,
        )
        .await;
        if !upstream_keys.is_empty() && !run.allow_unsigned {
            opts.verify = Some(verifying_keys(spec, &opts, &keys, parsed));
        }
        let targets =
            binsync_s3::run(prober, opts, store.clone(), run.concurrency, progress).await?;
        let mut pruned = Vec::new();
        if let Some(keep) = extra.prune {
            let listing = store.list().await.map_err(store_failure)?;
            let files = listing.iter().map(|e| PathBuf::from(&e.rel));
            for (path, version) in prune::candidates_in(
                files,
                &spec.binaries.layout,
                &run.known,
                &run.targets,
                &prune::held(&targets),
                keep,
            ) {
                let rel = path.to_string_lossy().replace('\\', "/");
                if !run.dry_run {
                    binsync_s3::remove_archive(&store, &rel)
                        .await
                        .map_err(store_failure)?;
                }
                pruned.push(Pruned { path: rel, version });
            }
        }
        anyhow::Ok((Outcome { keys, targets }, pruned))
    })
}

/// Removes the archives of versions no longer in the index beyond the
/// `keep` newest (only reported with `dry_run`), but for the targets
/// `outcome` did not place ([`prune::held`]).
pub fn prune(run: &Run, layout: &str, keep: usize, outcome: &Outcome) -> Result<Vec<Pruned>> {
    let held = prune::held(&outcome.targets);
    let mut pruned = Vec::new();
    for (path, version) in
        prune::candidates(&run.dest, layout, &run.known, &run.targets, &held, keep)
    {
        if !run.dry_run {
            prune::remove_archive(&path)
                .map_err(|e| crate::error::io_failure("remove", &path, &e))?;
        }
        pruned.push(Pruned {
            path: rel(&run.dest, &path),
            version,
        });
    }
    Ok(pruned)
}

fn rel(dest: &Path, p: &Path) -> String {
    p.strip_prefix(dest)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

/// The counts `bin sync` reports (`totals` in its JSON).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Totals {
    pub targets: usize,
    pub downloaded: usize,
    pub up_to_date: usize,
    pub not_available: usize,
    pub would_download: usize,
    /// Files and keys that could not be placed.
    pub failed: usize,
    pub bytes: u64,
    pub pruned: usize,
}

impl Totals {
    pub fn of(o: &Outcome, pruned: usize) -> Totals {
        let mut t = Totals {
            targets: o.targets.len(),
            pruned,
            ..Totals::default()
        };
        for r in &o.targets {
            t.bytes += r.bytes;
            match r.status {
                TargetStatus::Downloaded => t.downloaded += 1,
                TargetStatus::UpToDate => t.up_to_date += 1,
                TargetStatus::NotAvailable => t.not_available += 1,
                TargetStatus::WouldDownload => t.would_download += 1,
                TargetStatus::Failed => t.failed += 1,
            }
        }
        t.failed += o
            .keys
            .iter()
            .filter(|k| k.status == KeyStatus::Failed)
            .count();
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_patterns_match_names_and_tier_paths() {
        let g = package_globs(&["z*".into(), "@zillowe/*".into(), "h?llo".into()]).unwrap();
        assert!(g.is_match("zls"));
        assert!(g.is_match("@zillowe/hello"));
        assert!(g.is_match("hallo"));
        assert!(!g.is_match("bacon"));
        assert!(!g.is_match("@core/bacon"));
        assert!(package_globs(&["[oops".into()]).is_err());
    }
}

/// What `bin sync` reports: keys, then every file, what was pruned, and
/// the totals (rendered by `output::human::bin`).
#[derive(Serialize)]
pub struct Report {
    pub dest: PathBuf,
    pub dry_run: bool,
    /// Where upstream's repo.yaml came from.
    pub upstream_repo_yaml: String,
    pub keys: Vec<KeyReport>,
    pub targets: Vec<TargetReport>,
    pub pruned: Vec<Pruned>,
    pub totals: Totals,
}
