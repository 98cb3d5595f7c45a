//! `zoi-mirror bin sync`: mirror upstream's pre-built archives.

use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use super::{net_options, read_file_or_url};
use crate::cli::BinSyncArgs;
use crate::error::{Exit, Failure, fail};
use crate::mirror::binsync::{self, Pruned, TargetReport};
use crate::mirror::binsync_s3;
use crate::mirror::db;
use crate::output::{self, Format, Style, paint};
use crate::probe::fetch::Prober;
use crate::spec::{self, ArchiveFormat};
use crate::storage;
use crate::zoi::index;
use crate::zoi::repo::RepoYaml;

#[derive(Serialize, Default)]
struct Totals {
    targets: usize,
    downloaded: usize,
    up_to_date: usize,
    not_available: usize,
    would_download: usize,
    failed: usize,
    bytes: u64,
    pruned: usize,
}

#[derive(Serialize)]
struct Report {
    dest: std::path::PathBuf,
    dry_run: bool,
    /// Where upstream's repo.yaml came from.
    upstream_repo_yaml: String,
    keys: Vec<binsync::KeyReport>,
    targets: Vec<TargetReport>,
    pruned: Vec<Pruned>,
    totals: Totals,
}

/// A file of upstream's registry at the synced branch, from the `db sync`
/// cache.
fn from_db_cache(work: &std::path::Path, branch: &str, file: &str) -> Result<Vec<u8>> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(work)
        .args(["show", &format!("refs/heads/{branch}:{file}")])
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(o.stdout),
        _ => fail(
            Failure::bad_input(
                "no_upstream_data",
                format!("no upstream {file} in the db sync cache {}", work.display()),
            )
            .hint(format!(
                "run `zoi-mirror db sync` first, or pass --{} FILE|URL",
                if file == "packages.json" {
                    "index"
                } else {
                    "upstream-repo-yaml"
                }
            )),
        ),
    }
}

pub fn sync(args: &BinSyncArgs, format: Format) -> Result<Exit> {
    let mut http = net_options(&args.net)?;
    for src in [&args.index, &args.upstream_repo_yaml]
        .into_iter()
        .flatten()
    {
        http.allow_headers_for(src);
    }
    // Upstream's repo.yaml: the file or URL given, else the spec's
    // `registry.upstream_repo_yaml`, else the `db sync` cache.
    let spec = match &args.upstream_repo_yaml {
        Some(src) if src.starts_with("http://") || src.starts_with("https://") => {
            let bytes = read_file_or_url("upstream repo.yaml", src, &http)?;
            spec::load(
                &args.spec.path,
                &spec::UpstreamInput::Bytes {
                    origin: format!("URL {}", crate::probe::http::redact(src)),
                    bytes,
                },
            )?
        }
        explicit => db::load_spec(
            &args.spec.path,
            explicit.as_deref().map(std::path::Path::new),
            args.work.as_deref(),
        )?,
    };
    if spec.binaries.format == ArchiveFormat::PkgTarZst {
        return fail(
            Failure::bad_input(
                "format",
                "bin sync copies upstream's .zpa archives, but binaries.format is \"pkg.tar.zst\"",
            )
            .hint("set binaries.format = \"zpa\" (Zoi >= 1.23 installs only .zpa from a registry)"),
        );
    }
    let dest_arg: std::path::PathBuf = if let Some(d) = &args.dest {
        d.clone()
    } else {
        match &spec.binaries.storage.url {
            Some(u) => u.into(),
            None => {
                return fail(
                    Failure::bad_input(
                        "usage",
                        "no destination: give --dest DIR|s3://BUCKET/PREFIX",
                    )
                    .hint("or set [binaries.storage] url in the spec"),
                );
            }
        }
    };
    let store = match storage::Dest::parse(&dest_arg)
        .map_err(|m| Failure::bad_input("bad_destination", m))?
    {
        storage::Dest::Local(_) => None,
        storage::Dest::S3(url) => {
            if args.sign.is_some() || spec.binaries.sign_key.is_some() {
                return fail(Failure::bad_input(
                    "usage",
                    "re-signing (--sign, binaries.sign_key) needs the archive on local disk: sync to a folder, or leave re-signing out for s3:// destinations",
                ));
            }
            let settings = super::storage_settings(&args.storage, &spec.binaries.storage.s3);
            Some(Arc::new(super::open_store(&url, &settings)?))
        }
    };
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| db::default_work_dir(&spec.registry.upstream));
    let upstream: RepoYaml = spec.upstream.clone();
    if spec.upstream_origin == spec::UpstreamOrigin::BuiltIn {
        // The built-in description is enough to build a bundle, but a copy
        // needs the very index and links upstream has now.
        from_db_cache(&work, &spec.registry.branch, "repo.yaml")?;
    }
    let Some(link) = upstream.first_archive_link().cloned() else {
        return fail(
            Failure::bad_input("no_pkg_link", "upstream's repo.yaml has no `main` or `mirror` pkg link: it publishes no pre-built archives")
                .hint("pass the repo.yaml of a registry that does with --upstream-repo-yaml"),
        );
    };
    // The header is for the host the archives come from, and nowhere else.
    http.allow_headers_for(&link.url);
    let index_bytes = match &args.index {
        Some(src) => read_file_or_url("packages.json", src, &http)?,
        None => from_db_cache(&work, &spec.registry.branch, "packages.json")?,
    };
    let packages =
        index::parse(&index_bytes).map_err(|e| Failure::bad_input("index_invalid", e))?;

    for p in &args.platforms {
        if !spec.binaries.platforms.contains(p) {
            return fail(
                Failure::bad_input(
                    "usage",
                    format!("--platform {p} is not one the spec serves"),
                )
                .hint("add it to binaries.platforms first"),
            );
        }
    }
    let shard = match &args.shard {
        None => None,
        Some(s) => Some(parse_shard(s)?),
    };
    let platforms = if args.platforms.is_empty() {
        spec.binaries.platforms.clone()
    } else {
        args.platforms.clone()
    };
    let selected: Vec<_> = packages
        .into_iter()
        .filter(|p| args.tiers.is_empty() || args.tiers.contains(&p.repo))
        .filter(|p| {
            args.packages.is_empty()
                || args.packages.iter().any(|g| {
                    binsync::wildcard(g, &p.name)
                        || binsync::wildcard(g, &format!("@{}/{}", p.repo, p.name))
                })
        })
        .filter(|p| shard.is_none_or(|(k, n)| shard_of(&p.repo, &p.name, n) == k))
        .collect();
    let targets: Vec<_> = selected
        .iter()
        .flat_map(|p| platforms.iter().map(move |pl| (p.clone(), *pl)))
        .collect();

    let allow_unsigned = args.allow_unsigned || spec.binaries.allow_unsigned;
    let resign = args.sign.clone().or_else(|| spec.binaries.sign_key.clone());
    let mut opts = binsync::Options {
        dest: dest_arg.clone(),
        layout: spec.binaries.layout.clone(),
        source_layout: spec.binaries.source_layout(),
        link,
        source: upstream.first_source_link().cloned(),
        delta: upstream.first_delta_link().cloned(),
        targets: targets.clone(),
        dry_run: args.dry_run,
        retries: args.retries,
        verify: None,
        resign,
    };
    let upstream_keys: Vec<(String, String)> = upstream
        .pgp
        .iter()
        .map(|k| (k.name.clone(), k.key.clone()))
        .collect();
    let targets_for_prune = targets.clone();
    let bar = if format == Format::Human && !args.no_progress && output::progress_allowed() {
        let b = indicatif::ProgressBar::new(binsync::jobs(&opts).len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} files {wide_bar} {msg}")
                .expect("progress template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let reports = rt.block_on(async {
        let client = crate::probe::http::Http::new(&http)?;
        let prober = Arc::new(Prober::new(
            client,
            args.concurrency * 4,
            args.concurrency * 4,
            args.retries,
        ));
        let show = |bytes: u64, done: u64| {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            bar.set_position(done);
            bar.set_message(format!(
                "{} MiB at {:.1} MiB/s",
                bytes >> 20,
                bytes as f64 / 1048576.0 / secs
            ));
        };
        if let Some(store) = &store {
            // Before anything is written: the bucket is there, the
            // credentials work, and clients will be able to read it.
            store
                .preflight(&prober.http, !args.storage.private_bucket)
                .await
                .map_err(super::store_failure)?;
            let (keys, parsed) = binsync_s3::sync_keys(
                &prober,
                &upstream_keys,
                store,
                &spec.binaries.keys_dir,
                args.dry_run,
            )
            .await;
            if !upstream_keys.is_empty() && !allow_unsigned {
                opts.verify = Some(parsed);
            }
            let targets =
                binsync_s3::run(prober, opts, store.clone(), args.concurrency, show).await;
            let mut pruned = Vec::new();
            if args.prune {
                let listing = store.list().await.map_err(super::store_failure)?;
                let files = listing.iter().map(|e| std::path::PathBuf::from(&e.rel));
                for (path, version) in binsync::prune_candidates_in(
                    files,
                    &spec.binaries.layout,
                    &targets_for_prune,
                    args.keep,
                ) {
                    let rel = path.to_string_lossy().replace('\\', "/");
                    if !args.dry_run {
                        binsync_s3::remove_archive(store, &rel)
                            .await
                            .map_err(super::store_failure)?;
                    }
                    pruned.push(Pruned { path: rel, version });
                }
            }
            return anyhow::Ok((keys, targets, Some(pruned)));
        }
        // Keys first: they are what the archives are verified against.
        let (keys, parsed) = binsync::sync_keys(
            &prober,
            &upstream_keys,
            &dest_arg,
            &spec.binaries.keys_dir,
            args.dry_run,
        )
        .await;
        if !upstream_keys.is_empty() && !allow_unsigned {
            opts.verify = Some(parsed);
        }
        let targets = binsync::run(prober, opts, args.concurrency, show).await;
        anyhow::Ok((keys, targets, None))
    })?;
    let (keys, reports, s3_pruned) = reports;
    bar.finish_and_clear();

    let mut pruned = s3_pruned.clone().unwrap_or_default();
    if args.prune && s3_pruned.is_none() {
        for (path, version) in
            binsync::prune_candidates(&dest_arg, &spec.binaries.layout, &targets, args.keep)
        {
            if !args.dry_run {
                binsync::remove_archive(&path)
                    .map_err(|e| crate::error::io_failure("remove", &path, &e))?;
            }
            pruned.push(Pruned {
                path: path
                    .strip_prefix(&dest_arg)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned(),
                version,
            });
        }
    }

    let mut totals = Totals {
        targets: reports.len(),
        pruned: pruned.len(),
        ..Totals::default()
    };
    for r in &reports {
        totals.bytes += r.bytes;
        match r.status {
            "downloaded" => totals.downloaded += 1,
            "up_to_date" => totals.up_to_date += 1,
            "not_available" => totals.not_available += 1,
            "would_download" => totals.would_download += 1,
            _ => totals.failed += 1,
        }
    }
    let keys_failed = keys.iter().filter(|k| k.status == "failed").count();
    totals.failed += keys_failed;
    let exit = if totals.failed == 0 {
        Exit::Ok
    } else {
        Exit::No
    };
    let report = Report {
        dest: dest_arg.clone(),
        dry_run: args.dry_run,
        upstream_repo_yaml: spec.upstream_origin.to_string(),
        keys,
        targets: reports,
        pruned,
        totals,
    };
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => {
            let color = output::stdout_color();
            for k in &report.keys {
                match (k.status, &k.error) {
                    (_, Some(e)) => println!(
                        "{} key {}: {}: {}",
                        paint("FAIL   ", Style::Red, color),
                        k.name,
                        e.kind.as_str(),
                        e.message
                    ),
                    ("placed", _) => println!(
                        "{} key {} → {}",
                        paint("placed ", Style::Green, color),
                        k.name,
                        k.path
                    ),
                    ("would_place", _) => println!("would place key {} → {}", k.name, k.path),
                    _ => {}
                }
            }
            for t in &report.targets {
                let what = match t.artifact {
                    binsync::Artifact::Archive => String::new(),
                    binsync::Artifact::Source => " (source)".to_string(),
                    binsync::Artifact::Delta => " (delta)".to_string(),
                };
                let label = format!(
                    "{}@{}{}{what}",
                    t.package,
                    t.version,
                    t.platform.map(|p| format!(" {p}")).unwrap_or_default()
                );
                for w in &t.warnings {
                    output::warn(format!("{label}: {w}"));
                }
                match t.status {
                    "downloaded" => println!(
                        "{} {label} ({} bytes{})",
                        paint("fetched", Style::Green, color),
                        t.bytes,
                        if t.resumed { ", resumed" } else { "" }
                    ),
                    "not_available" => println!(
                        "{} {label}: not available upstream",
                        paint("skip   ", Style::Dim, color)
                    ),
                    "would_download" => println!("would fetch {label} → {}", t.path),
                    "failed" => println!(
                        "{} {label}: {}",
                        paint("FAIL   ", Style::Red, color),
                        t.error
                            .as_ref()
                            .map(|e| format!("{}: {}", e.kind.as_str(), e.message))
                            .unwrap_or_default()
                    ),
                    _ => {}
                }
            }
            for p in &report.pruned {
                println!(
                    "{} {}",
                    if report.dry_run {
                        "would prune"
                    } else {
                        "pruned"
                    },
                    p.path
                );
            }
            let t = &report.totals;
            println!(
                "{} files: {} fetched ({} MiB), {} up to date, {} not available upstream, {} failed{}",
                t.targets,
                t.downloaded,
                t.bytes >> 20,
                t.up_to_date,
                t.not_available,
                t.failed,
                if t.would_download > 0 {
                    format!(", {} to fetch", t.would_download)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(exit)
}

/// `K/N` with 1 <= K <= N.
fn parse_shard(s: &str) -> Result<(u64, u64)> {
    let bad = || {
        Failure::bad_input("usage", format!("--shard '{s}' is not K/N"))
            .hint("e.g. --shard 1/4 … --shard 4/4 on four machines")
    };
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(bad().into());
    }
    Ok((k, n))
}

/// Which shard (1-based) of `n` a package falls in: FNV-1a of
/// `@tier/name`, the same on every machine and stable when other packages
/// come and go.
fn shard_of(repo: &str, name: &str, n: u64) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("@{repo}/{name}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h % n + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_packages() {
        assert_eq!(parse_shard("2/3").unwrap(), (2, 3));
        assert!(parse_shard("0/3").is_err());
        assert!(parse_shard("4/3").is_err());
        assert!(parse_shard("x").is_err());
        let names: Vec<String> = (0..100).map(|i| format!("pkg{i}")).collect();
        let mut seen = [0; 4];
        for n in &names {
            let k = shard_of("core", n, 4);
            assert!((1..=4).contains(&k));
            seen[(k - 1) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 10), "{seen:?}");
    }
}
