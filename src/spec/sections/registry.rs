//! `[registry]`: the company's git registry clients sync from.
//!
//! Rules: the table is required, and `url` in it, a git URL (see
//! [`crate::spec::urls`]), as are `mirrors` and `upstream`; `handle` is a
//! valid package name (it is part of every package id); `[[registry.tiers]]`
//! need a valid tier `name` (`type` defaults to `official`, `active` to
//! true); `[[registry.keys]]` need a `name` that is a plain file name (Zoi
//! saves the key as `pgps/<name>.asc`) and an http(s) `key` URL. Optional
//! strings must not be blank. Defaults for `upstream`, `name`,
//! `description` and `advisory_prefix` come from upstream's repo.yaml.

use std::ops::Range;

use crate::spec::reader::{Ctx, Sec, Sp};
use crate::spec::urls::{git_url_problem, http_url_problem};
use crate::spec::{DEFAULT_BRANCH, DEFAULT_HANDLE, Registry};
use crate::zoi::names::{package_name_problem, tier_problem};
use crate::zoi::repo::{PgpKey, RepoEntry, RepoYaml};
use crate::zoi::upstream;

const KEYS: [&str; 13] = [
    "url",
    "mirrors",
    "upstream",
    "upstream_repo_yaml",
    "branch",
    "handle",
    "authorities",
    "name",
    "description",
    "advisory_prefix",
    "signing_key",
    "tiers",
    "keys",
];
const TIER_KEYS: [&str; 3] = ["name", "type", "active"];
const KEY_KEYS: [&str; 2] = ["name", "key"];

/// `[registry]` as written.
#[derive(Default)]
pub(in crate::spec) struct Raw {
    pub url: Option<Sp<String>>,
    pub mirrors: Vec<String>,
    pub upstream: Option<Sp<String>>,
    pub upstream_repo_yaml: Option<Sp<String>>,
    pub branch: Option<Sp<String>>,
    pub handle: Option<Sp<String>>,
    pub authorities: Vec<Sp<String>>,
    pub name: Option<Sp<String>>,
    pub description: Option<Sp<String>>,
    pub advisory_prefix: Option<Sp<String>>,
    pub signing_key: Option<Sp<String>>,
    /// Declared tiers, with the span of their name.
    pub tiers: Vec<(RepoEntry, Option<Range<usize>>)>,
    pub keys: Vec<PgpKey>,
}

pub(in crate::spec) fn read(ctx: &mut Ctx<'_>, root: &Sec<'_>) -> Raw {
    let reg = root.sub(ctx, "registry");
    if reg.is_none() && root.table.get("registry").is_none() {
        ctx.err(
            Some(0..0),
            "missing required table [registry]",
            Some(
                "add [registry] with at least `url`, the internal git URL clients sync from".into(),
            ),
        );
    }
    let mut raw = Raw::default();
    let Some(reg) = &reg else {
        return raw;
    };
    reg.check_keys(ctx, &KEYS);
    raw.url = reg.req_str(ctx, "url", "the internal git URL clients sync from");
    let git_hint = || Some("e.g. \"https://git.example.com/zoi/zoidberg.git\"".to_string());
    if let Some(u) = &raw.url
        && let Some(p) = git_url_problem(&u.value)
    {
        ctx.err(u.span.clone(), format!("`registry.url`: {p}"), git_hint());
    }
    for m in reg.str_list(ctx, "mirrors").unwrap_or_default() {
        if let Some(p) = git_url_problem(&m.value) {
            ctx.err(
                m.span.clone(),
                format!("`registry.mirrors`: {p}"),
                git_hint(),
            );
        }
        raw.mirrors.push(m.value);
    }
    raw.upstream = reg.nonempty_str(ctx, "upstream", "give the upstream git URL");
    if let Some(u) = &raw.upstream
        && let Some(p) = git_url_problem(&u.value)
    {
        ctx.err(
            u.span.clone(),
            format!("`registry.upstream`: {p}"),
            git_hint(),
        );
    }
    raw.upstream_repo_yaml = reg.nonempty_str(
        ctx,
        "upstream_repo_yaml",
        "give a path to upstream's repo.yaml",
    );
    raw.branch = reg.nonempty_str(ctx, "branch", "give a branch name");
    raw.handle = reg.nonempty_str(ctx, "handle", "give a handle");
    if let Some(h) = &raw.handle
        && let Some(p) = package_name_problem(&h.value)
    {
        ctx.err(
            h.span.clone(),
            format!(
                "`registry.handle` '{}' is not a usable handle: {p}",
                h.value
            ),
            Some("keep the default \"zoidberg\" so package ids stay stable".into()),
        );
    }
    raw.authorities = reg.str_list(ctx, "authorities").unwrap_or_default();
    raw.name = reg.nonempty_str(ctx, "name", "give a registry name");
    raw.description = reg.nonempty_str(ctx, "description", "give a description");
    raw.advisory_prefix = reg.nonempty_str(ctx, "advisory_prefix", "give a prefix such as \"ZSA\"");
    raw.signing_key = reg.nonempty_str(ctx, "signing_key", "give a GnuPG key id or fingerprint");
    for t in reg.table_list(ctx, "tiers") {
        t.check_keys(ctx, &TIER_KEYS);
        let name = t.req_str(ctx, "name", "the tier's name, e.g. \"acme\"");
        let kind = t.nonempty_str(ctx, "type", "e.g. \"official\"");
        let active = t.bool(ctx, "active").unwrap_or(true);
        if let Some(n) = name {
            if let Some(p) = tier_problem(&n.value) {
                ctx.err(
                    n.span.clone(),
                    format!("`{}.name` '{}': {p}", t.path, n.value),
                    None,
                );
            }
            raw.tiers.push((
                RepoEntry {
                    name: n.value,
                    repo_type: kind.map_or_else(|| "official".to_string(), |k| k.value),
                    active,
                },
                n.span,
            ));
        }
    }
    for k in reg.table_list(ctx, "keys") {
        k.check_keys(ctx, &KEY_KEYS);
        let name = k.req_str(ctx, "name", "the key's name in repo.yaml");
        let key = k.req_str(ctx, "key", "an http(s) URL of the armored public key");
        if let Some(key) = &key
            && let Some(p) = http_url_problem(&key.value)
        {
            ctx.err(key.span.clone(), format!("`{}.key`: {p}", k.path), None);
        }
        if let Some(n) = &name
            && (!crate::zoi::names::archive_file_name_ok(&n.value) || n.value.starts_with('.'))
        {
            ctx.err(
                n.span.clone(),
                format!("`{}.name` {:?} is not a plain file name (Zoi saves the key as pgps/<name>.asc)", k.path, n.value),
                Some("only letters, digits, '.', '_' and '-'".into()),
            );
        }
        if let (Some(name), Some(key)) = (name, key) {
            raw.keys.push(PgpKey {
                name: name.value,
                key: key.value,
            });
        }
    }
    raw
}

impl Raw {
    /// The section with defaults from `upstream`; `None` without `url`.
    pub(in crate::spec) fn finish(self, upstream: &RepoYaml) -> Option<Registry> {
        Some(Registry {
            url: self.url?.value,
            mirrors: self.mirrors,
            upstream: self.upstream.map_or_else(
                || {
                    upstream
                        .main_git()
                        .unwrap_or(upstream::UPSTREAM_GIT)
                        .to_string()
                },
                |u| u.value,
            ),
            branch: self
                .branch
                .map_or_else(|| DEFAULT_BRANCH.to_string(), |b| b.value),
            handle: self
                .handle
                .map_or_else(|| DEFAULT_HANDLE.to_string(), |h| h.value),
            authorities: self.authorities.into_iter().map(|a| a.value).collect(),
            name: self.name.map_or_else(|| upstream.name.clone(), |n| n.value),
            description: self
                .description
                .map_or_else(|| upstream.description.clone(), |d| d.value),
            advisory_prefix: self
                .advisory_prefix
                .map(|p| p.value)
                .or_else(|| upstream.advisory_prefix.clone()),
            signing_key: self.signing_key.map(|s| s.value),
            tiers: self.tiers.into_iter().map(|(t, _)| t).collect(),
            keys: self.keys,
        })
    }
}
