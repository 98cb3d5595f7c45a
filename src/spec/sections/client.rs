//! `[client]`: what `apply` writes into every client's Zoi config.
//!
//! Rules: `tiers`, when given, is not empty (leave it out for upstream's
//! active tiers plus the declared active ones); `cache_mirrors` are http(s)
//! URLs; `pkg_dirs` are absolute paths (Zoi expands no `~` and resolves
//! relative ones from wherever it runs); `registries` and `git_repos` are
//! git URLs; each `[[client.pgp]]` has a plain-file-name `name`, used once,
//! and exactly one of an http(s) `url` or a 40/64-hex-digit `fingerprint`.
//! Whether `tiers` and `repo_add` name known tiers is
//! [`crate::spec::validate`]'s.

use crate::spec::reader::{Ctx, Sec, Sp, values};
use crate::spec::urls::{git_url_problem, http_url_problem, is_fingerprint};
use crate::spec::{Client, ClientKey, KeySource};

const KEYS: [&str; 8] = [
    "tiers",
    "repo_add",
    "cache_mirrors",
    "pkg_dirs",
    "offline",
    "registries",
    "git_repos",
    "pgp",
];
const PGP_KEYS: [&str; 3] = ["name", "url", "fingerprint"];

/// `[client]` as written.
#[derive(Default)]
pub(in crate::spec) struct Raw {
    pub tiers: Option<Vec<Sp<String>>>,
    pub repo_add: Option<Vec<Sp<String>>>,
    pub cache_mirrors: Vec<String>,
    pub pkg_dirs: Vec<String>,
    pub offline: Option<bool>,
    pub registries: Vec<String>,
    pub git_repos: Vec<String>,
    pub pgp: Vec<ClientKey>,
}

pub(in crate::spec) fn read(ctx: &mut Ctx<'_>, root: &Sec<'_>) -> Raw {
    let mut raw = Raw::default();
    let Some(client) = root.sub(ctx, "client") else {
        return raw;
    };
    client.check_keys(ctx, &KEYS);
    raw.tiers = client.str_list(ctx, "tiers");
    if let Some(list) = &raw.tiers
        && list.is_empty()
    {
        ctx.err(
            client.value_span("tiers"),
            "`client.tiers` is empty",
            Some("list the tiers to activate, e.g. [\"core\", \"main\"], or remove the key to use upstream's active tiers".into()),
        );
    }
    raw.repo_add = client.str_list(ctx, "repo_add");
    for u in client.str_list(ctx, "cache_mirrors").unwrap_or_default() {
        if let Some(p) = http_url_problem(&u.value) {
            ctx.err(u.span.clone(), format!("`client.cache_mirrors`: {p}"), None);
        }
        raw.cache_mirrors.push(u.value);
    }
    for d in client.str_list(ctx, "pkg_dirs").unwrap_or_default() {
        let v = &d.value;
        let windows_abs =
            v.len() > 2 && v.as_bytes()[1] == b':' && v.as_bytes()[0].is_ascii_alphabetic();
        if v.starts_with('~') {
            ctx.err(
                d.span.clone(),
                format!("`client.pkg_dirs`: '{v}' starts with `~`, which Zoi does not expand"),
                Some("write the absolute path, e.g. /srv/zoi-archives".into()),
            );
        } else if !(v.starts_with('/') || v.starts_with("\\\\") || windows_abs) {
            ctx.err(
                d.span.clone(),
                format!("`client.pkg_dirs`: '{v}' is not an absolute path"),
                Some("Zoi resolves pkg_dirs from wherever it runs; use absolute paths".into()),
            );
        }
        raw.pkg_dirs.push(d.value);
    }
    raw.offline = client.bool(ctx, "offline");
    for u in client.str_list(ctx, "registries").unwrap_or_default() {
        if let Some(p) = git_url_problem(&u.value) {
            ctx.err(u.span.clone(), format!("`client.registries`: {p}"), None);
        }
        raw.registries.push(u.value);
    }
    for u in client.str_list(ctx, "git_repos").unwrap_or_default() {
        if let Some(p) = git_url_problem(&u.value) {
            ctx.err(u.span.clone(), format!("`client.git_repos`: {p}"), None);
        }
        raw.git_repos.push(u.value);
    }
    for k in client.table_list(ctx, "pgp") {
        if let Some(key) = read_key(ctx, &k, &raw.pgp) {
            raw.pgp.push(key);
        }
    }
    raw
}

/// One `[[client.pgp]]` entry (`known`: the entries before it).
fn read_key(ctx: &mut Ctx<'_>, k: &Sec<'_>, known: &[ClientKey]) -> Option<ClientKey> {
    k.check_keys(ctx, &PGP_KEYS);
    let name = k.req_str(
        ctx,
        "name",
        "the name the key is saved under in Zoi's key store",
    );
    let url = k.nonempty_str(ctx, "url", "give the key's http(s) URL");
    let fpr = k.nonempty_str(ctx, "fingerprint", "give the key's fingerprint");
    let source = match (url, fpr) {
        (Some(u), None) => {
            if let Some(p) = http_url_problem(&u.value) {
                ctx.err(u.span.clone(), format!("`{}.url`: {p}", k.path), None);
            }
            Some(KeySource::Url(u.value))
        }
        (None, Some(f)) => {
            if !is_fingerprint(&f.value) {
                ctx.err(
                    f.span.clone(),
                    format!(
                        "`{}.fingerprint` '{}' is not a 40- or 64-hex-digit key fingerprint",
                        k.path, f.value
                    ),
                    Some("`gpg --fingerprint KEY` prints it".into()),
                );
            }
            Some(KeySource::Fingerprint(
                f.value.chars().filter(|c| !c.is_whitespace()).collect(),
            ))
        }
        (Some(u), Some(_)) => {
            ctx.err(
                u.span.clone(),
                format!("`{}` has both `url` and `fingerprint`", k.path),
                Some("give exactly one".into()),
            );
            None
        }
        (None, None) => {
            ctx.err(
                k.span.clone(),
                format!("`{}` needs `url` or `fingerprint`", k.path),
                Some(
                    "Zoi fetches the key from the URL, or from keys.openpgp.org by fingerprint"
                        .into(),
                ),
            );
            None
        }
    };
    if let Some(n) = &name
        && (!crate::zoi::names::archive_file_name_ok(&n.value) || n.value.starts_with('.'))
    {
        ctx.err(
            n.span.clone(),
            format!(
                "`{}.name` {:?} is not a plain file name (Zoi saves the key as pgps/<name>.asc)",
                k.path, n.value
            ),
            Some("only letters, digits, '.', '_' and '-'".into()),
        );
    }
    let (name, source) = (name?, source?);
    if known.iter().any(|p| p.name == name.value) {
        ctx.err(
            name.span.clone(),
            format!("key name '{}' is used twice", name.value),
            None,
        );
    }
    Some(ClientKey {
        name: name.value,
        source,
    })
}

impl Raw {
    /// The section, with `default_tiers` when `tiers` is not given.
    pub(in crate::spec) fn finish(self, default_tiers: impl FnOnce() -> Vec<String>) -> Client {
        Client {
            tiers: self.tiers.map_or_else(default_tiers, values),
            repo_add: values(self.repo_add.unwrap_or_default()),
            cache_mirrors: self.cache_mirrors,
            pkg_dirs: self.pkg_dirs,
            offline: self.offline,
            registries: self.registries,
            git_repos: self.git_repos,
            pgp: self.pgp,
        }
    }
}
