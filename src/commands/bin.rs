//! `zoi-mirror bin sync`: mirror upstream's pre-built archives.

use anyhow::Result;

use super::{net_options, read_file_or_url};
use crate::cli::BinSyncArgs;
use crate::error::Exit;
use crate::mirror::bins::{self, Report, Totals};
use crate::mirror::binsync;
use crate::mirror::db;
use crate::mirror::shard::Shard;
use crate::net::source::{self, Input};
use crate::output::{self, Format};
use crate::spec;
use crate::zoi::repo::RepoYaml;

pub fn sync(args: &BinSyncArgs, format: Format) -> Result<Exit> {
    let mut http = net_options(&args.net)?;
    if let Some(src) = &args.index {
        // Refused before anything runs, not when it is read.
        source::parse("packages.json", src)?;
    }
    for src in [&args.index, &args.upstream_repo_yaml]
        .into_iter()
        .flatten()
    {
        http.allow_headers_for(src);
    }
    // Upstream's repo.yaml: the file or URL given, else the spec's
    // `registry.upstream_repo_yaml`, else the `db sync` cache.
    let upstream_repo_yaml = match &args.upstream_repo_yaml {
        Some(src) => Some(source::parse("upstream repo.yaml", src)?),
        None => None,
    };
    let spec = match &upstream_repo_yaml {
        Some(Input::Url(url)) => {
            let bytes = read_file_or_url("upstream repo.yaml", "repo.yaml", url.as_str(), &http)?;
            spec::load(
                &args.spec.path,
                &spec::UpstreamInput::Bytes {
                    origin: format!("URL {}", crate::net::redact::redact(url.as_str())),
                    bytes,
                },
            )?
        }
        Some(Input::Path(p)) => db::load_spec(&args.spec.path, Some(p), args.work.as_deref())?,
        None => db::load_spec(&args.spec.path, None, args.work.as_deref())?,
    };
    bins::check_format(&spec)?;
    let resign = args.sign.clone().or_else(|| spec.binaries.sign_key.clone());
    let (dest, s3) = bins::destination(args.dest.as_deref(), &spec)?;
    let store = match s3 {
        None => None,
        Some(url) => {
            let settings = super::storage_settings(&args.storage, &spec.binaries.storage.s3);
            Some(std::sync::Arc::new(super::open_store(&url, &settings)?))
        }
    };
    let shard = match &args.shard {
        None => None,
        Some(s) => Some(Shard::parse(s)?),
    };
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| db::default_work_dir(&spec.registry.upstream));
    let upstream: RepoYaml = spec.upstream.clone();
    if spec.upstream_origin == spec::UpstreamOrigin::BuiltIn {
        // The built-in description is enough to build a bundle, but a copy
        // needs the very index and links upstream has now.
        db::cached_file(&work, &spec.registry.branch, "repo.yaml")?;
    }
    let link = bins::archive_link(&upstream)?;
    // The header is for the host the archives come from, and nowhere else.
    http.allow_headers_for(&link.url);
    let (index_bytes, index_source) = match &args.index {
        Some(src) => (
            read_file_or_url("packages.json", "packages.json", src, &http)?,
            crate::net::redact::redact(src),
        ),
        None => (
            db::cached_file(&work, &spec.registry.branch, "packages.json")?,
            format!(
                "packages.json of {} in {}",
                spec.registry.branch,
                work.display()
            ),
        ),
    };
    let bins::Selection { known, mut targets } = bins::select(
        &spec,
        &index_bytes,
        &index_source,
        &bins::Filter {
            tiers: args.tiers.clone(),
            packages: args.packages.clone(),
            platforms: args.platforms.clone(),
        },
    )?;
    if let Some(shard) = shard {
        targets.retain(|(p, _)| shard.holds(&p.repo, &p.name));
    }
    let run = bins::Run {
        dest: dest.clone(),
        targets,
        known,
        dry_run: args.dry_run,
        retries: args.retries,
        concurrency: args.concurrency,
        allow_unsigned: args.allow_unsigned || spec.binaries.allow_unsigned,
        resign,
    };
    let opts = bins::options(&spec, &upstream, link, &run);
    let bar = output::progress::bar(
        output::progress::Kind::Files,
        Some(binsync::jobs(&opts).len() as u64),
        format,
    );
    let started = std::time::Instant::now();
    let show = |bytes: u64, done: u64| {
        let secs = started.elapsed().as_secs_f64().max(0.001);
        bar.set_position(done);
        bar.set_message(format!(
            "{} MiB at {:.1} MiB/s",
            bytes >> 20,
            bytes as f64 / 1048576.0 / secs
        ));
    };
    let (outcome, pruned) = match &store {
        Some(store) => bins::mirror_to_store(
            &spec,
            &upstream,
            opts,
            &run,
            &http,
            store.clone(),
            &bins::StoreRun {
                require_public: !args.storage.private_bucket,
                prune: args.prune.then_some(args.keep),
            },
            show,
        )?,
        None => {
            let outcome = bins::mirror(&spec, &upstream, opts, &run, &http, show)?;
            let pruned = if args.prune {
                bins::prune(&run, &spec.binaries.layout, args.keep, &outcome)?
            } else {
                Vec::new()
            };
            (outcome, pruned)
        }
    };
    bar.finish_and_clear();
    let totals = Totals::of(&outcome, pruned.len());
    let exit = if totals.failed == 0 {
        Exit::Ok
    } else {
        Exit::No
    };
    let report = Report {
        dest,
        dry_run: args.dry_run,
        upstream_repo_yaml: spec.upstream_origin.to_string(),
        keys: outcome.keys,
        targets: outcome.targets,
        pruned,
        totals,
    };
    match format {
        Format::Json => output::json(&report)?,
        Format::Human => output::human::bin::print(&report),
    }
    Ok(exit)
}
