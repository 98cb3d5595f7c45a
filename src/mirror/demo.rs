//! The demo (`zoi-mirror demo`): the whole product, end to end, on the
//! shipped example spec, with nothing but loopback and a temp directory.
//!
//! It runs the real code paths (not a simulation): a spec is loaded and
//! rendered, sample archives are built and indexed, everything is served by
//! the real `serve` on 127.0.0.1, the bundle is applied *from its URL* to a
//! throw-away home, and `check` and `status` run against the result. The
//! user's own Zoi files are never touched: the home used is inside the temp
//! directory, whatever `HOME` or `XDG_*` say.
//!
//! Each step is handed to the caller as it ends (the human report prints
//! it then, `output::human::demo`); the whole run is the [`DemoReport`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bundle::{self, load};
use crate::client::{self, ApplyOptions, Scope};
use crate::mirror::serve;
use crate::probe;
use crate::zoi::index::PackageRef;
use crate::zoi::paths::{Env, LayoutKind};
use crate::zoi::platform::Platform;

const EXAMPLE: &str = include_str!("../../examples/acme/mirror.toml");

/// One step of the demo and how it went.
#[derive(Serialize)]
pub struct Step {
    pub step: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Serialize)]
pub struct DemoReport {
    /// Where everything is (spec, site, throw-away home).
    pub dir: PathBuf,
    /// The loopback server's base URL (stopped by the end).
    pub url: String,
    pub steps: Vec<Step>,
    pub ok: bool,
    /// The Zoi config the bundle wrote in the throw-away home.
    #[serde(skip)]
    pub config_path: PathBuf,
}

/// A small but real `.zpa`: manifest.json (v2), one pool file, the
/// package's `.pkg.lua`, zstd-compressed tar.
fn sample_zpa(name: &str, version: &str, repo: &str) -> Result<Vec<u8>> {
    let ctx = minijinja::context! { name => name, version => version, repo => repo };
    let script = crate::bundle::render::render("demo-package.sh", ctx.clone())?;
    let hash = format!("sha256-{}", hex::encode(Sha256::digest(script.as_bytes())));
    let manifest = serde_json::json!({
        "version": "2",
        "pool": { &hash: { "size": script.len() } },
        "mappings": { "": { "scopes": { "user": {
            "files": [{ "dest": format!("${{pkgstore}}/bin/{name}"), "hash": &hash, "mode": 493 }],
            "dirs": [{ "path": "${pkgstore}/bin", "mode": 493 }]
        }}}}
    });
    // The same package script the registry serves for it.
    let lua = crate::bundle::render::render("demo-package.pkg.lua", ctx)?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, data)
    };
    add(
        "manifest.json",
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
        0o644,
    )?;
    add(&format!("pool/{hash}"), script.as_bytes(), 0o755)?;
    add(&format!("{name}.pkg.lua"), lua.as_bytes(), 0o644)?;
    let raw = tar.into_inner()?;
    Ok(zstd::stream::encode_all(&raw[..], 3)?)
}

/// The shipped example, pointed at loopback and stripped of anything that
/// would reach beyond it.
fn demo_spec(base: &str, registry: &str, platforms: &[Platform]) -> Result<String> {
    let mut doc: toml_edit::DocumentMut = EXAMPLE.parse().context("the shipped example spec")?;
    doc["registry"]["url"] = toml_edit::value(registry);
    if let Some(t) = doc["registry"].as_table_mut() {
        t.remove("mirrors");
        // The demo has no signing keys (it needs no GnuPG): its registry
        // commit and sample archives are unsigned, so its clients must not
        // verify signatures. The tests cover the signed setup end to end.
        t.remove("authorities");
        t.remove("signing_key");
    }
    doc["binaries"]["url"] = toml_edit::value(format!("{base}/pkgs"));
    let mut plats = toml_edit::Array::new();
    for p in platforms {
        plats.push(p.to_string());
    }
    doc["binaries"]["platforms"] = toml_edit::value(plats);
    if let Some(t) = doc["client"].as_table_mut() {
        t.remove("cache_mirrors");
    }
    doc["setup"]["url"] = toml_edit::value(base);
    Ok(doc.to_string())
}

fn git_available() -> bool {
    std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A registry git repository holding the mirror's repo.yaml and index, as
/// `db sync` would leave it.
fn make_registry(dir: &Path, repo_yaml: &[u8], packages: &[PackageRef]) -> Result<()> {
    let work = dir.join("registry-work");
    std::fs::create_dir_all(&work)?;
    std::fs::write(work.join("repo.yaml"), repo_yaml)?;
    let mut pkgs = serde_json::Map::new();
    for p in packages {
        pkgs.insert(
            format!("@{}/{}", p.repo, p.name),
            serde_json::json!({"repo": p.repo, "repo_type": "official", "version": p.version, "epoch": 0,
                "revision": "1", "description": "demo package", "sub_packages": [], "main_sub_packages": [],
                "vuln": [], "dependencies": null}),
        );
    }
    std::fs::write(
        work.join("packages.json"),
        serde_json::to_vec_pretty(&serde_json::json!({"version": "2", "packages": pkgs}))?,
    )?;
    // What `zoi install @tier/name` resolves: <tier>/<name>/<name>.pkg.lua.
    for p in packages {
        let dir = work.join(&p.repo).join(&p.name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join(format!("{}.pkg.lua", p.name)),
            crate::bundle::render::render(
                "demo-package.pkg.lua",
                minijinja::context! { name => p.name, version => p.version, repo => p.repo },
            )?,
        )?;
    }
    let git = |args: &[&str], cwd: &Path| -> Result<()> {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(cwd)
            .env("GIT_AUTHOR_NAME", "zoi-mirror demo")
            .env("GIT_AUTHOR_EMAIL", "demo@localhost")
            .env("GIT_COMMITTER_NAME", "zoi-mirror demo")
            .env("GIT_COMMITTER_EMAIL", "demo@localhost")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    git(&["init", "-q", "-b", "main"], &work)?;
    git(&["add", "."], &work)?;
    git(&["commit", "-q", "-m", "mirror registry"], &work)?;
    let bare = dir.join("registry.git");
    git(
        &[
            "clone",
            "-q",
            "--bare",
            &work.to_string_lossy(),
            &bare.to_string_lossy(),
        ],
        dir,
    )?;
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

/// Runs the demo in `dir` (created if need be; a fresh temp directory,
/// kept, without it). `on_step` sees each step as it ends, `on_warning`
/// the bundle's warnings.
pub fn run(
    dir: Option<&Path>,
    on_step: &mut dyn FnMut(&Step),
    on_warning: &dyn Fn(&str),
) -> Result<DemoReport> {
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.canonicalize()?
        }
        None => tempfile::Builder::new()
            .prefix("zoi-mirror-demo.")
            .tempdir()?
            .keep(),
    };
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("pkgs"))?;
    let mut steps: Vec<Step> = Vec::new();
    let mut say = |step: &'static str, ok: bool, detail: String| {
        let s = Step { step, ok, detail };
        on_step(&s);
        steps.push(s);
    };

    let rt = crate::runtime::new(crate::runtime::Threads::PerCore)?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serve_opts = serve::Options {
        root: site.clone(),
        list: true,
        access_log: None,
    };
    let server = rt.spawn(async move {
        serve::serve(listener, &serve_opts, async {
            let _ = stop_rx.await;
        })
        .await
    });
    say("serve", true, format!("{base}/ serves {}", site.display()));

    // Sample packages for this machine's platform and one more.
    let host = Platform::host().unwrap_or_else(|| "linux-amd64".parse().expect("platform"));
    let other: Platform = if host.to_string() == "linux-arm64" {
        "linux-amd64"
    } else {
        "linux-arm64"
    }
    .parse()
    .expect("platform");
    let platforms = [host, other];
    let packages = [
        PackageRef {
            repo: "acme".into(),
            name: "hello-acme".into(),
            version: "1.0.0".into(),
        },
        PackageRef {
            repo: "core".into(),
            name: "greet".into(),
            version: "2.1.0".into(),
        },
    ];
    let registry_path = dir.join("registry.git");
    // Percent-encoded (a TMPDIR with a space is a valid URL this way; git
    // and Zoi decode it).
    let registry_url = url::Url::from_file_path(&registry_path)
        .map_err(|()| anyhow::anyhow!("{}: not an absolute path", registry_path.display()))?
        .to_string();
    let spec_text = demo_spec(&base, &registry_url, &platforms)?;
    let spec_path = dir.join("mirror.toml");
    std::fs::write(&spec_path, &spec_text)?;
    let spec = crate::spec::load_str(&spec_path, &spec_text, &Default::default())?;
    for p in &packages {
        for pl in &platforms {
            let rel = crate::zoi::layout::archive_path(&spec.binaries.layout, p, *pl);
            let path = site.join("pkgs").join(rel);
            std::fs::create_dir_all(path.parent().expect("parent"))?;
            std::fs::write(&path, sample_zpa(&p.name, &p.version, &p.repo)?)?;
        }
    }
    let indexed = crate::mirror::index::index_tree(&site.join("pkgs"))?;
    say(
        "archives",
        indexed.totals.errors == 0,
        format!(
            "{} sample archives built and indexed (.hash/.size/.files) under {}",
            indexed.totals.written,
            site.join("pkgs").display()
        ),
    );

    // The bundle, published on the served site.
    let rendered = bundle::render(&spec)?;
    let bundle_dir = site.join(&rendered.dir_name);
    let files: Vec<(PathBuf, Vec<u8>)> = rendered
        .files
        .iter()
        .map(|(p, b)| (PathBuf::from(p), b.clone()))
        .collect();
    crate::fsutil::replace_dir_with(&bundle_dir, &files)?;
    say(
        "build",
        true,
        format!(
            "{} {} → {} ({} files)",
            spec.extension.name,
            spec.extension.version,
            bundle_dir.display(),
            files.len()
        ),
    );

    let have_git = git_available();
    if have_git {
        make_registry(&dir, &rendered.files[bundle::REPO_YAML], &packages)?;
        say(
            "registry",
            true,
            format!("{registry_url} (the mirror's repo.yaml and packages.json committed)"),
        );
    } else {
        say(
            "registry",
            true,
            "skipped: git is not installed (the registry check is skipped too)".into(),
        );
    }

    // Apply from the URL, pinned, into a throw-away home.
    let home = dir.join("home");
    std::fs::create_dir_all(&home)?;
    let env = Env {
        home: Some(home.clone()),
        xdg_config_home: None,
        xdg_data_home: None,
        xdg_state_home: None,
        cwd: dir.clone(),
        root: None,
    };
    let http = crate::net::client::Options::default();
    let bundle_url = format!("{base}/{}/", rendered.dir_name);
    let pin = bundle::manifest::sha512_hex(&rendered.files[bundle::manifest::FILE_NAME]);
    let loaded = load::open(load::Source::parse(&bundle_url)?, Some(&pin), &http)?;
    for w in &loaded.warnings {
        on_warning(w);
    }
    let applied = client::apply(
        &loaded,
        &ApplyOptions {
            scope: Scope::User,
            env: env.clone(),
            layout: Some(LayoutKind::Xdg),
            zoi: None,
            dry_run: false,
            lock_timeout: std::time::Duration::from_secs(10),
        },
    )?;
    say(
        "apply",
        true,
        format!(
            "{bundle_url} → {} ({} keys set)",
            applied.target.config_path.display(),
            applied.keys.iter().filter(|k| k.changed).count()
        ),
    );

    // Check what Zoi would fetch, and the machine's status.
    let mut plan = probe::plan::from_bundle(&loaded)?;
    plan.registry_content = None;
    if !have_git {
        plan.git.clear();
    }
    plan.packages = packages.to_vec();
    plan.platforms = platforms.to_vec();
    let report = probe::run_blocking(
        plan,
        &http,
        &probe::RunOptions {
            concurrency: 16,
            per_host: 16,
            retries: 1,
            progress: false,
        },
    )?;
    say(
        "check",
        report.ok(),
        format!(
            "{} URLs as Zoi builds them ({} packages × {} platforms, registry, host): {} ok, {} failed",
            report.counts.urls,
            packages.len(),
            platforms.len(),
            report.counts.ok,
            report.counts.failed
        ),
    );
    let status = client::status::status(&loaded, Scope::User, &env, Some(LayoutKind::Xdg), None)?;
    say(
        "status",
        status.in_sync,
        if status.in_sync {
            "the throw-away home uses the mirror".into()
        } else {
            "drift (see `zoi-mirror status`)".into()
        },
    );

    let _ = stop_tx.send(());
    let _ = rt.block_on(server);
    say("stop", true, "server stopped".into());

    let ok = steps.iter().all(|s| s.ok);
    Ok(DemoReport {
        dir,
        url: base,
        steps,
        ok,
        config_path: applied.target.config_path,
    })
}
