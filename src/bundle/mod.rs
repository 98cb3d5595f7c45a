//! Turning a validated [`Spec`] into the files of a bundle, in memory.
//!
//! Rendering is pure: no clock, no environment, no file system, ordered maps
//! only. The same spec therefore always gives byte-identical files, which is
//! what lets `build --check` compare a fresh render against the disk and
//! lets people keep the bundle in git next to the spec.

pub mod load;
pub mod manifest;
pub mod quote;
pub mod render;
pub mod verify;

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::spec::{ArchiveFormat, Spec};
use crate::zoi::config::{Config, Policy, Registry};
use crate::zoi::extension::{self, Change};
use crate::zoi::repo::{GitLink, PkgLink, RepoEntry, RepoYaml};
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
    for key in &spec.client.pgp {
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

/// The mirror's `repo.yaml`: upstream's tiers and keys, our git and binary
/// host, the handle written explicitly.
pub fn repo_yaml(spec: &Spec) -> RepoYaml {
    let up = &spec.upstream;
    let reg = &spec.registry;
    let bin = &spec.binaries;

    let mut git = vec![GitLink {
        link_type: "main".into(),
        url: reg.url.clone(),
    }];
    git.extend(reg.mirrors.iter().map(|u| GitLink {
        link_type: "mirror".into(),
        url: u.clone(),
    }));

    let link = |link_type: &str, base: &str| {
        let archive = bin.archive_template(base);
        PkgLink {
            link_type: link_type.into(),
            // Zoi appends `/{name}-{version}-{platform}.zpa` to a url that
            // does not end in `.zpa`; the legacy seed-guide layout relies on
            // that (older clients appended the .pkg.tar.zst name).
            url: match bin.format {
                ArchiveFormat::Zpa => archive.clone(),
                ArchiveFormat::PkgTarZst => bin.dir_template(base),
            },
            pgp: bin.signatures.then(|| format!("{archive}.sig")),
            hash: Some(format!("{archive}.hash")),
            size: Some(format!("{archive}.size")),
            files: Some(format!("{archive}.files")),
        }
    };
    let mut pkg = vec![link("main", &bin.url)];
    pkg.extend(bin.mirrors.iter().map(|m| link("mirror", m)));

    let mut pgp = up.pgp.clone();
    for k in &reg.keys {
        if !pgp.iter().any(|p| p.name == k.name) {
            pgp.push(k.clone());
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
        delta: Vec::new(),
        zrepo: Vec::new(),
        db: None,
        pgp,
        repos,
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
            authorities: (!reg.authorities.is_empty()).then(|| reg.authorities.clone()),
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
    if spec.binaries.format == ArchiveFormat::PkgTarZst {
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
                crate::error::Failure::bad_input(
                    "tool_missing",
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
