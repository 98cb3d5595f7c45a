//! Turning the three kinds of input `check` accepts — a bundle, a
//! `repo.yaml`, or the machine's own Zoi config — into one [`Plan`].

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::check::Plan;
use super::report::RegistryRole;
use super::trust::KeySource;
use crate::bundle::load::Loaded;
use crate::error::{ErrorKind, Failure, fail};
use crate::zoi::config::{self, Config, Layer};
use crate::zoi::index::{self, PackageRef};
use crate::zoi::paths::{Env, LayoutKind};
use crate::zoi::platform::Platform;
use crate::zoi::repo::RepoYaml;

fn parse_repo_yaml(bytes: &[u8], what: &str) -> Result<RepoYaml> {
    let text = String::from_utf8_lossy(bytes);
    RepoYaml::parse(&text).map_err(|e| {
        Failure::new(
            ErrorKind::RepoYamlInvalid,
            format!("{what} is not a Zoi repo.yaml: {e}"),
        )
        .hint("Zoi requires at least `name` and `description`")
        .into()
    })
}

fn base(repo: &RepoYaml, branch: String, cache_mirrors: Vec<String>) -> Plan {
    let mut git: Vec<(RegistryRole, String)> = repo
        .git
        .iter()
        .filter(|g| g.link_type == "main")
        .map(|g| (RegistryRole::Main, g.url.clone()))
        .collect();
    git.extend(
        repo.git
            .iter()
            .filter(|g| g.link_type == "mirror")
            .map(|g| (RegistryRole::Mirror, g.url.clone())),
    );
    Plan {
        git,
        branch,
        link: repo.first_archive_link().cloned(),
        cache_mirrors,
        packages: Vec::new(),
        platforms: Vec::new(),
        deep: false,
        registry_content: None,
        git_timeout: Duration::from_secs(60),
        hosts: Vec::new(),
        trusted: Vec::new(),
        authorities: Vec::new(),
        notes: Vec::new(),
        enforced: false,
        // What `zoi sync` imports: repo.yaml's `pgp` list.
        key_sources: repo
            .pgp
            .iter()
            .map(|k| KeySource::Url {
                name: k.name.clone(),
                key: k.key.clone(),
                from: "repo.yaml",
            })
            .collect(),
    }
}

/// A plan from a verified bundle.
pub fn from_bundle(bundle: &Loaded) -> Result<Plan> {
    let bytes = bundle.verified(crate::bundle::REPO_YAML)?;
    let repo = parse_repo_yaml(&bytes, "the bundle's repo.yaml")?;
    let user: Config = serde_yaml::from_slice(&bundle.verified(crate::bundle::CONFIG_USER)?)
        .map_err(|e| Failure::new(ErrorKind::BundleInvalid, format!("config.user.yaml: {e}")))?;
    let mut plan = base(
        &repo,
        bundle.manifest.registry.branch.clone(),
        user.cache_mirrors,
    );
    plan.platforms = bundle.manifest.binaries.platforms.clone();
    plan.hosts = vec![bundle.manifest.binaries.url.clone()];
    // What a client with the bundle applied verifies against: the system
    // layer's enforced keys win over the registry's authorities.
    let system: Config = serde_yaml::from_slice(&bundle.verified(crate::bundle::CONFIG_SYSTEM)?)
        .map_err(|e| Failure::new(ErrorKind::BundleInvalid, format!("config.system.yaml: {e}")))?;
    plan.authorities = user
        .default_registry
        .and_then(|r| r.authorities)
        .unwrap_or_default();
    plan.enforced = trusted_keys(&system).is_some();
    plan.trusted = trusted_keys(&system).unwrap_or_else(|| plan.authorities.clone());
    // The extension's keys are added first; repo.yaml's are imported at
    // every sync and win for a name both carry.
    let ext: Vec<KeySource> = bundle
        .manifest
        .extension_changes
        .iter()
        .filter_map(|c| match c {
            crate::zoi::extension::Change::Pgp { name, key } => Some(KeySource::Url {
                name: name.clone(),
                key: key.clone(),
                from: "extension",
            }),
            _ => None,
        })
        .collect();
    plan.key_sources.splice(0..0, ext);
    plan.registry_content = Some(bytes);
    Ok(plan)
}

/// A plan from a `repo.yaml`'s bytes.
pub fn from_repo_yaml(bytes: &[u8], what: &str, branch: Option<String>) -> Result<Plan> {
    let repo = parse_repo_yaml(bytes, what)?;
    Ok(base(
        &repo,
        branch.unwrap_or_else(|| "HEAD".into()),
        Vec::new(),
    ))
}

/// A plan from this machine's merged Zoi config and its synced registry.
pub fn from_client(env: &Env, layout: LayoutKind) -> Result<Plan> {
    let read = |p: &Path| -> Result<Layer> {
        match std::fs::read_to_string(p) {
            Err(_) => Ok(Layer::absent()),
            Ok(t) => Layer::from_text(&t).map_err(|e| {
                Failure::new(
                    ErrorKind::ConfigInvalid,
                    format!("{} has a YAML syntax error: {e}", p.display()),
                )
                .into()
            }),
        }
    };
    let merged = config::merge(
        &read(&env.system_config())?,
        &read(&env.user_config(layout)?)?,
        &read(&env.project_config())?,
        None,
    );
    let reg = merged.config.default_registry.clone().unwrap_or_default();
    let db = env
        .user_data(layout)?
        .join("pkgs")
        .join("db")
        .join(&reg.handle);
    let repo_yaml = db.join("repo.yaml");
    // A machine whose `zoi sync` failed has no synced repo.yaml: then
    // check what that sync would have cloned, the registry's HEAD, so the
    // report says why it fails (no HEAD, unsigned, unreachable, …).
    let (repo, note) = match std::fs::read(&repo_yaml) {
        Ok(b) => (parse_repo_yaml(&b, &repo_yaml.display().to_string())?, None),
        // Zoi's built-in default is not what this tool mirrors, and must
        // not be contacted on the user's behalf.
        Err(_) if reg.url.is_empty() || reg.url == config::BUILTIN_REGISTRY_URL => {
            return fail(
                Failure::new(
                    ErrorKind::NotSynced,
                    format!(
                        "no synced registry at {} and no registry configured",
                        db.display()
                    ),
                )
                .hint("apply the bundle (or `zoi sync set URL`), run `zoi sync`, then check again"),
            );
        }
        Err(_) => {
            let note = format!(
                "this machine has no synced registry at {} (has `zoi sync` failed?): checking {} as `zoi sync` would clone it",
                db.display(),
                crate::net::redact::redact(&reg.url)
            );
            let repo =
                match super::git::repo_yaml_at_head_blocking(&reg.url, Duration::from_secs(60)) {
                    Some(b) => parse_repo_yaml(&b, "the registry's repo.yaml at HEAD")?,
                    // Nothing to read: the registry checks say why.
                    None => {
                        RepoYaml::parse("name: unknown\ndescription: unknown\n").expect("minimal")
                    }
                };
            (repo, Some(note))
        }
    };
    let mut plan = base(&repo, "HEAD".into(), merged.config.cache_mirrors.clone());
    plan.notes.extend(note);
    plan.authorities = reg.authorities.clone().unwrap_or_default();
    plan.enforced = trusted_keys(&merged.config).is_some();
    plan.trusted = trusted_keys(&merged.config).unwrap_or_else(|| plan.authorities.clone());
    // The keys this machine holds now (repo.yaml's were imported at the
    // last sync).
    let pgps = env.user_data(layout)?.join("pgps");
    let mut held: Vec<KeySource> = std::fs::read_dir(&pgps)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "asc"))
                .filter_map(|p| {
                    let name = p.file_stem()?.to_string_lossy().into_owned();
                    Some(KeySource::File { name, path: p })
                })
                .collect()
        })
        .unwrap_or_default();
    held.sort_by(|a, b| a.name().cmp(b.name()));
    plan.key_sources = held;
    // Zoi syncs from the configured URL, not from repo.yaml's own `git`.
    plan.git.retain(|(role, _)| *role != RegistryRole::Main);
    plan.git.insert(0, (RegistryRole::Main, reg.url));
    Ok(plan)
}

/// `policy.signature_enforcement.trusted_keys` when enforcement is on
/// (`download_and_cache_archive`: they take precedence over authorities).
fn trusted_keys(c: &Config) -> Option<Vec<String>> {
    c.policy
        .signature_enforcement
        .as_ref()
        .filter(|s| s.enable)
        .map(|s| s.trusted_keys.clone())
}

/// Every package of the index `bytes`, read from `what` (a file, a URL, the
/// registry's copy), which a failure names.
pub fn index_packages(bytes: &[u8], what: &str) -> Result<Vec<PackageRef>> {
    Ok(index::parse(bytes).map_err(|e| {
        Failure::new(ErrorKind::IndexInvalid, format!("{what}: {e}")).hint(
            "give a registry's packages.json (index v2, as `zoi-mirror db sync` fetches it), as a file or an http(s) URL",
        )
    })?)
}

/// `--package` references plus every package of `--index` (bytes).
pub fn packages(refs: &[String], index: Option<(&[u8], &str)>) -> Result<Vec<PackageRef>> {
    let mut out = Vec::new();
    for r in refs {
        out.push(PackageRef::parse(r).map_err(|e| Failure::new(ErrorKind::Usage, e))?);
    }
    if let Some((bytes, what)) = index {
        out.extend(index_packages(bytes, what)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `--platform` values, or `default` when none were given.
pub fn platforms(given: &[Platform], default: Vec<Platform>) -> Vec<Platform> {
    if given.is_empty() {
        default
    } else {
        given.to_vec()
    }
}

/// Lets the request headers go to the hosts a plan checks: the registry's
/// http(s) remotes and the binary host. Cache mirrors are not among them:
/// they are other hosts (often another team's or a CDN), and the token for
/// the company's mirror must not travel there.
pub fn allow_headers(http: &mut crate::net::client::Options, plan: &Plan) {
    let mut urls: Vec<&str> = plan.git.iter().map(|(_, u)| u.as_str()).collect();
    urls.extend(plan.link.iter().map(|l| l.url.as_str()));
    urls.extend(plan.hosts.iter().map(String::as_str));
    for u in urls {
        http.allow_headers_for(u);
    }
}
