//! Turning a validated [`Spec`] into the files of a bundle, in memory.
//!
//! Rendering is pure: no clock, no environment, no file system, ordered maps
//! only. The same spec therefore always gives byte-identical files, which is
//! what lets `build --check` compare a fresh render against the disk and
//! lets people keep the bundle in git next to the spec.

pub mod load;
pub mod manifest;
/// Publishing a bundle folder (or keys, setup scripts) to a bucket or a folder.
pub mod publish;
pub mod quote;
pub mod render;
pub mod report;
pub mod verify;

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::spec::Spec;
use crate::zoi::archive::ArchiveKind;
use crate::zoi::config::{Config, Policy, Registry};
use crate::zoi::extension::{self, Change};
use crate::zoi::repo::{GitLink, PgpKey, PkgLink, RepoEntry, RepoYaml};
use manifest::{FileEntry, Manifest};

pub const GENERATOR: &str = "zoi-mirror";
pub const GENERATOR_VERSION: &str = env!("CARGO_PKG_VERSION");

pub const REPO_YAML: &str = "repo.yaml";
pub const CONFIG_USER: &str = "config.user.yaml";
pub const CONFIG_SYSTEM: &str = "config.system.yaml";
pub const SETUP_SH: &str = "setup.sh";
pub const SETUP_PS1: &str = "setup.ps1";

/// Where a platform's `zoi-mirror` goes in the bundle.
pub fn tool_path(platform: crate::zoi::platform::Platform) -> String {
    let exe = if platform.os == crate::zoi::platform::Os::Windows {
        "zoi-mirror.exe"
    } else {
        "zoi-mirror"
    };
    format!("tools/{platform}/{exe}")
}

/// A rendered bundle: file paths (relative to the bundle directory) and bytes.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir_name: String,
    pub files: BTreeMap<String, Vec<u8>>,
    /// Things IT should know about the spec that are not errors.
    pub warnings: Vec<String>,
}

impl Bundle {
    pub fn extension_file(spec: &Spec) -> String {
        format!("{}.pkg.lua", spec.extension.name)
    }
}

/// The extension's change list, in the order Zoi applies and reverts cleanly.
pub fn extension_changes(spec: &Spec) -> Vec<Change> {
    let mut changes = Vec::new();
    for key in spec.delivered_keys() {
        changes.push(Change::Pgp {
            name: key.name.clone(),
            key: key.zoi_key().to_string(),
        });
    }
    changes.push(Change::RegistryRepo {
        add: spec.registry.url.clone(),
    });
    for url in &spec.client.registries {
        changes.push(Change::RegistryAdd { add: url.clone() });
    }
    for url in &spec.client.git_repos {
        changes.push(Change::RepoGit { add: url.clone() });
    }
    for tier in &spec.client.repo_add {
        changes.push(Change::RepoAdd { add: tier.clone() });
    }
    extension::ordered(changes)
}

/// The hosts of upstream's URLs (git, pkg, delta, keys, db, zrepo, and the
/// spec's `registry.upstream`): what an air-gapped client cannot reach.
pub fn upstream_hosts(spec: &Spec) -> Vec<String> {
    let up = &spec.upstream;
    let mut hosts: Vec<String> = crate::zoi::repo::all_urls(up)
        .into_iter()
        .chain([spec.registry.upstream.as_str()])
        .filter_map(crate::zoi::repo::url_host)
        .collect();
    for v in &up.zrepo {
        if let Some(h) = v.as_str().and_then(crate::zoi::repo::url_host) {
            hosts.push(h);
        }
    }
    hosts.sort();
    hosts.dedup();
    // The company's own hosts are never "upstream's", even when upstream's
    // file already names them (a mirror of a mirror).
    let ours: Vec<String> = [spec.registry.url.as_str(), spec.binaries.url.as_str()]
        .into_iter()
        .chain(spec.registry.mirrors.iter().map(String::as_str))
        .chain(spec.binaries.mirrors.iter().map(String::as_str))
        .filter_map(crate::zoi::repo::url_host)
        .collect();
    hosts.retain(|h| !ours.contains(h));
    hosts
}

/// The last path segment of a URL template (`…/{name}-{version}.zdelta`).
fn file_template(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// The mirror's `repo.yaml`, derived from upstream's (`spec.upstream`):
/// every upstream field kept, the URLs that point at upstream's hosts
/// rewritten to the company's (git → `registry.url`/`mirrors`; archive,
/// source and delta links → the binary host in the spec's layout; keys →
/// the company's copies under `binaries.keys_dir`), the tiers' `active`
/// flags as `client.tiers` decide, then the spec's own additions.
/// `build` and `db sync` both call this one function.
pub fn repo_yaml(spec: &Spec) -> RepoYaml {
    let up = &spec.upstream;
    let reg = &spec.registry;
    let bin = &spec.binaries;
    let upstream_hosts = upstream_hosts(spec);
    let at_upstream =
        |url: &str| crate::zoi::repo::url_host(url).is_some_and(|h| upstream_hosts.contains(&h));

    let mut git = vec![GitLink {
        link_type: "main".into(),
        url: reg.url.clone(),
    }];
    git.extend(reg.mirrors.iter().map(|u| GitLink {
        link_type: "mirror".into(),
        url: u.clone(),
    }));

    // Archives: always a `main` link on our host (`index` and `bin sync`
    // write every sidecar), `mirror` links for the spec's other hosts.
    let archive_link = |link_type: &str, base: &str| {
        let archive = bin.archive_template(base);
        PkgLink {
            link_type: link_type.into(),
            // Zoi appends `/{name}-{version}-{platform}.zpa` to a url that
            // does not end in `.zpa`; the legacy seed-guide layout relies on
            // that (older clients appended the .pkg.tar.zst name).
            url: match bin.format {
                ArchiveKind::Zpa => archive.clone(),
                ArchiveKind::PkgTarZst => bin.dir_template(base),
            },
            pgp: bin.signatures.then(|| format!("{archive}.sig")),
            hash: Some(format!("{archive}.hash")),
            size: Some(format!("{archive}.size")),
            files: Some(format!("{archive}.files")),
        }
    };
    // Source bundles and deltas: ours where upstream has them, with the
    // sidecars upstream publishes (`bin sync` copies exactly those).
    let like = |theirs: &PkgLink, url: String, link_type: &str| PkgLink {
        link_type: link_type.into(),
        pgp: theirs.pgp.as_ref().map(|_| format!("{url}.sig")),
        hash: theirs.hash.as_ref().map(|_| format!("{url}.hash")),
        size: theirs.size.as_ref().map(|_| format!("{url}.size")),
        files: theirs.files.as_ref().map(|_| format!("{url}.files")),
        url,
    };
    let mut pkg = vec![archive_link("main", &bin.url)];
    pkg.extend(bin.mirrors.iter().map(|m| archive_link("mirror", m)));
    if let Some(src) = up.first_source_link() {
        pkg.push(like(src, bin.source_template(&bin.url), "source-main"));
        for m in &bin.mirrors {
            pkg.push(like(src, bin.source_template(m), "source-mirror"));
        }
    }
    // Link types Zoi 1.29 does not know are kept when they do not point at
    // upstream (we cannot serve what we do not know).
    for l in &up.pkg {
        if !["main", "mirror", "source-main", "source-mirror"].contains(&l.link_type.as_str())
            && !at_upstream(&l.url)
        {
            pkg.push(l.clone());
        }
    }

    let mut delta = Vec::new();
    if let Some(d) = up.first_delta_link() {
        let file = file_template(&d.url);
        delta.push(like(
            d,
            format!("{}/{file}", bin.dir_template(&bin.url)),
            "main",
        ));
        for m in &bin.mirrors {
            delta.push(like(d, format!("{}/{file}", bin.dir_template(m)), "mirror"));
        }
    }

    // Upstream's keys, served from the company's host; then the spec's.
    let mut pgp: Vec<PgpKey> = up
        .pgp
        .iter()
        .map(|k| PgpKey {
            name: k.name.clone(),
            key: bin.key_url(&k.name),
        })
        .collect();
    for k in &reg.keys {
        match pgp.iter_mut().find(|p| p.name == k.name) {
            Some(p) => p.key = k.key.clone(),
            None => pgp.push(k.clone()),
        }
    }

    let active = |name: &str| spec.client.tiers.iter().any(|t| t == name);
    let repos = up
        .repos
        .iter()
        .chain(reg.tiers.iter())
        .map(|r| RepoEntry {
            name: r.name.clone(),
            repo_type: r.repo_type.clone(),
            active: active(&r.name),
        })
        .collect();

    RepoYaml {
        version: up.version.clone(),
        name: reg.name.clone(),
        description: reg.description.clone(),
        handle: Some(reg.handle.clone()),
        advisory_prefix: reg.advisory_prefix.clone(),
        git,
        pkg,
        delta,
        // Snapshot distribution (`zrepo`, `db`) is upstream's own
        // infrastructure, which a mirror does not copy: kept only when it
        // does not point at upstream.
        zrepo: up
            .zrepo
            .iter()
            .filter(|v| !v.as_str().is_some_and(&at_upstream))
            .filter(|v| {
                !v.as_mapping()
                    .is_some_and(|m| m.values().any(|x| x.as_str().is_some_and(&at_upstream)))
            })
            .cloned()
            .collect(),
        db: up.db.clone().filter(|d| !at_upstream(d)),
        pgp,
        repos,
        extra: up.extra.clone(),
    }
}

/// The config keys a bundle manages, for one scope.
pub fn managed_keys(spec: &Spec, system: bool) -> Vec<String> {
    let c = &spec.client;
    let mut keys = vec!["repos", "default_registry"];
    if !c.registries.is_empty() {
        keys.push("added_registries");
    }
    if !c.git_repos.is_empty() {
        keys.push("git_repos");
    }
    if !c.cache_mirrors.is_empty() {
        keys.push("cache_mirrors");
    }
    if !c.pkg_dirs.is_empty() {
        keys.push("pkg_dirs");
    }
    if c.offline.is_some() {
        keys.push("offline_mode");
    }
    if system && policy(spec) != Policy::default() {
        keys.push("policy");
    }
    keys.into_iter().map(String::from).collect()
}

fn policy(spec: &Spec) -> Policy {
    let s = &spec.system;
    let mut p = Policy {
        allowed_packages: s.allowed_packages.clone(),
        denied_packages: s.denied_packages.clone(),
        allowed_repos: s.allowed_repos.clone(),
        denied_repos: s.denied_repos.clone(),
        allowed_licenses: s.allowed_licenses.clone(),
        denied_licenses: s.denied_licenses.clone(),
        signature_enforcement: s.signature_enforcement.clone(),
        ..Policy::default()
    };
    for lock in &s.lock {
        if let Some(flag) = p.lock_mut(lock) {
            *flag = true;
        }
    }
    p
}

/// A complete config layer carrying the bundle's managed settings.
pub fn config_layer(spec: &Spec, system: bool) -> Config {
    let c = &spec.client;
    let reg = &spec.registry;
    Config {
        repos: c.tiers.clone(),
        default_registry: Some(Registry {
            handle: reg.handle.clone(),
            url: reg.url.clone(),
            authorities: (!reg.authorities.is_empty()).then(|| spec.client_authorities()),
            ..Registry::default()
        }),
        added_registries: c
            .registries
            .iter()
            .map(|url| Registry {
                url: url.clone(),
                ..Registry::default()
            })
            .collect(),
        git_repos: c.git_repos.clone(),
        offline_mode: c.offline.unwrap_or(false),
        pkg_dirs: c.pkg_dirs.clone(),
        cache_mirrors: c.cache_mirrors.clone(),
        policy: if system {
            policy(spec)
        } else {
            Policy::default()
        },
        ..Config::default()
    }
}

fn yaml_with_header<T: Serialize>(header: &str, value: &T) -> Result<Vec<u8>> {
    let mut text = String::new();
    for line in header.lines() {
        text.push_str("# ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&serde_yaml::to_string(value)?);
    Ok(text.into_bytes())
}

/// Warnings about a spec that builds, but may not do what IT expects.
fn warnings(spec: &Spec) -> Vec<String> {
    let mut w = Vec::new();
    if !spec.client.repo_add.is_empty() {
        w.push(format!(
            "client.repo_add emits Zoi `repo-add` changes for {}; Zoi fails that change (and loses the extension's record) for every user whose config already lists the tier — prefer client.tiers",
            spec.client.repo_add.join(", ")
        ));
    }
    if spec.binaries.format == ArchiveKind::PkgTarZst {
        w.push(
            "binaries.format = \"pkg.tar.zst\": Zoi >= 1.23 requests `.zpa` archive names, so only older clients can install from this layout".into(),
        );
    }
    let mut sorted = spec.client.cache_mirrors.clone();
    sorted.sort();
    if sorted != spec.client.cache_mirrors {
        w.push(format!(
            "client.cache_mirrors are not in alphabetical order; Zoi sorts them and tries {} first",
            sorted[0]
        ));
    }
    if !spec.registry.authorities.is_empty() && spec.registry.signing_key.is_none() {
        w.push(
            "registry.authorities is set but registry.signing_key is not: clients will reject the mirror's repo.yaml commit unless it is signed by one of the authorities (`db sync` will refuse)".into(),
        );
    }
    if !spec.binaries.mirrors.is_empty() {
        w.push(
            "binaries.mirrors are written as `mirror` pkg links, which Zoi 1.29 never reads while a `main` link exists; add them to client.cache_mirrors for a real fallback".into(),
        );
    }
    if spec.registry.name != spec.registry.handle {
        w.push(format!(
            "registry.name is {:?} but the handle is {:?}: a client that adds the extension without `zoi-mirror apply` gets the handle {:?} (Zoi uses repo.yaml's name when the handle is empty), so its package ids change; set registry.name = {:?} to avoid that",
            spec.registry.name, spec.registry.handle, spec.registry.name, spec.registry.handle
        ));
    }
    let derived = repo_yaml(spec);
    if spec.upstream.db.is_some() && derived.db.is_none()
        || spec.upstream.zrepo.len() != derived.zrepo.len()
    {
        w.push("upstream's snapshot links (`db`/`zrepo`) point at upstream's own hosts and are not mirrored: the mirror's repo.yaml leaves them out (clients registered by git URL never read them)".into());
    }
    let hosts = upstream_hosts(spec);
    let leaked: Vec<String> = serde_yaml::to_string(&derived.extra)
        .unwrap_or_default()
        .split(|c: char| c.is_whitespace() || c == '\'' || c == '"')
        .filter(|w| w.contains("://"))
        .filter(|u| crate::zoi::repo::url_host(u).is_some_and(|h| hosts.contains(&h)))
        .map(str::to_string)
        .collect();
    if !leaked.is_empty() {
        w.push(format!(
            "upstream's repo.yaml has keys this tool does not know, kept verbatim, that name upstream's hosts: {}",
            leaked.join(", ")
        ));
    }
    for k in spec
        .client
        .pgp
        .iter()
        .map(|k| &k.name)
        .chain(spec.registry.keys.iter().map(|k| &k.name))
    {
        if crate::zoi::pgp::BUILTIN_KEYS.contains(&k.as_str()) {
            w.push(format!("key name '{k}' is one of Zoi's built-in keys, which Zoi writes back into its key store at every start: pick another name for the company's key"));
        }
    }
    let delivered = spec.delivered_keys();
    for a in spec.client_authorities() {
        let known = crate::zoi::pgp::is_fingerprint(&a)
            || delivered.iter().any(|k| k.name == a)
            || derived.pgp.iter().any(|k| k.name == a);
        if !known {
            w.push(format!("authority '{a}' is delivered neither by the extension nor by repo.yaml's pgp list: clients cannot verify with it"));
        }
    }
    if spec.client.offline == Some(true) && spec.client.pkg_dirs.is_empty() {
        w.push("client.offline is true but client.pkg_dirs is empty: offline clients will find no archives".into());
    }
    let core_tiers: Vec<&str> = spec
        .upstream
        .repos
        .iter()
        .filter(|r| r.active)
        .map(|r| r.name.as_str())
        .filter(|t| !spec.client.tiers.iter().any(|c| c == t))
        .collect();
    if !core_tiers.is_empty() {
        w.push(format!(
            "client.tiers leaves out upstream's default tier(s) {}: clients will no longer see those packages",
            core_tiers.join(", ")
        ));
    }
    w
}

/// Renders the whole bundle for `spec`.
pub fn render(spec: &Spec) -> Result<Bundle> {
    let mut files = BTreeMap::new();
    let ext = &spec.extension;

    let changes = extension_changes(spec);
    let change_fields: Vec<Vec<(&str, &str)>> = changes.iter().map(Change::fields).collect();
    let lua = render::render(
        "extension.pkg.lua",
        minijinja::context! {
            name => ext.name,
            version => ext.version.to_string(),
            description => ext.description,
            license => ext.license,
            tier => ext.tier,
            maintainer_name => ext.maintainer_name,
            maintainer_email => ext.maintainer_email,
            generator_version => GENERATOR_VERSION,
            changes => change_fields,
        },
    )?;
    files.insert(Bundle::extension_file(spec), lua.into_bytes());

    // No spec value in comments: user text goes only through serialisers.
    let header = format!(
        "repo.yaml of this registry mirror, generated by {GENERATOR} {GENERATOR_VERSION}\nfrom mirror.toml: change the spec and rebuild instead of editing this file."
    );
    files.insert(
        REPO_YAML.into(),
        yaml_with_header(&header, &repo_yaml(spec))?,
    );

    for (system, file, what) in [
        (false, CONFIG_USER, "user"),
        (true, CONFIG_SYSTEM, "system"),
    ] {
        let header = format!(
            "Zoi {what} config layer for {} {}, generated by {GENERATOR} {GENERATOR_VERSION}.\n`zoi-mirror apply` merges the managed keys into the {what} config.yaml.",
            ext.name, ext.version
        );
        files.insert(
            file.into(),
            yaml_with_header(&header, &config_layer(spec, system))?,
        );
    }

    let mut tools = BTreeMap::new();
    if let Some(setup) = &spec.setup {
        for (platform, path) in &setup.tools {
            let bytes = std::fs::read(path).map_err(|e| {
                crate::error::Failure::new(
                    crate::error::ErrorKind::ToolMissing,
                    format!(
                        "cannot read the zoi-mirror binary for {platform} at {}: {e}",
                        path.display()
                    ),
                )
            })?;
            let rel = tool_path(*platform);
            files.insert(rel.clone(), bytes);
            tools.insert(*platform, rel);
        }
    }

    let manifest = Manifest {
        format_version: manifest::FORMAT_VERSION,
        extension: manifest::ExtensionId {
            name: ext.name.clone(),
            version: ext.version.to_string(),
        },
        generator: manifest::Generator {
            name: GENERATOR.into(),
            version: GENERATOR_VERSION.into(),
        },
        manages: manifest::Manages {
            user: managed_keys(spec, false),
            system: managed_keys(spec, true),
        },
        extension_changes: changes.clone(),
        registry: manifest::RegistryInfo {
            url: spec.registry.url.clone(),
            branch: spec.registry.branch.clone(),
            handle: spec.registry.handle.clone(),
        },
        binaries: manifest::BinariesInfo {
            url: spec.binaries.url.clone(),
            layout: spec.binaries.layout.clone(),
            format: spec.binaries.format.extension().into(),
            platforms: spec.binaries.platforms.clone(),
        },
        tools: tools.clone(),
        files: files
            .iter()
            .map(|(path, bytes)| (path.clone(), FileEntry::of(bytes)))
            .collect(),
    };
    let mut json = serde_json::to_vec_pretty(&manifest)?;
    json.push(b'\n');
    let manifest_sha512 = manifest::sha512_hex(&json);
    files.insert(manifest::FILE_NAME.into(), json);

    // The setup scripts pin bundle.json, so they come last and are not
    // listed in it.
    if let Some(setup) = &spec.setup {
        let bundle_url = setup.bundle_url(&spec.bundle_dir_name());
        let tool_list: Vec<minijinja::Value> = tools
            .iter()
            .map(|(platform, rel)| {
                minijinja::context! {
                    platform => platform.to_string(),
                    path => rel,
                    sha512 => manifest.files[rel].sha512,
                    windows => platform.os == crate::zoi::platform::Os::Windows,
                }
            })
            .collect();
        for (file, template) in [(SETUP_SH, "setup.sh"), (SETUP_PS1, "setup.ps1")] {
            let text = render::render(
                template,
                minijinja::context! {
                    name => ext.name,
                    version => ext.version.to_string(),
                    generator_version => GENERATOR_VERSION,
                    bundle_url => bundle_url,
                    bundle_sha512 => manifest_sha512,
                    min_version => manifest::MIN_READER_VERSION,
                    script_url => format!("{bundle_url}{file}"),
                    tools => tool_list,
                },
            )?;
            files.insert(file.into(), text.into_bytes());
        }
    }

    verify::check(spec, &files, &manifest)?;
    Ok(Bundle {
        dir_name: spec.bundle_dir_name(),
        files,
        warnings: warnings(spec),
    })
}
