//! `[binaries]`: the binary host clients download archives from.
//!
//! Rules: the table is required, and `url` in it: an http(s) URL without
//! placeholders (they belong in `layout`), as are `mirrors`; `layout` uses
//! only Zoi's seven placeholders and no `.`/`..` segments (default
//! [`DEFAULT_LAYOUT`]); `format` is `zpa` or `pkg.tar.zst` (Zoi's
//! [`ArchiveKind`], default `zpa`); `keys_dir` is a plain relative folder
//! (default `keys`); `platforms` is a non-empty list of Zoi platforms
//! (default the five Zoi publishes for). Whether `trust` names known keys,
//! and whether clients can verify what is signed, is
//! [`crate::spec::validate`]'s.

use std::ops::Range;

use crate::spec::reader::{Ctx, Sec, Sp, values};
use crate::spec::urls::http_url_problem;
use crate::spec::{Binaries, DEFAULT_LAYOUT, Storage};
use crate::zoi::archive::ArchiveKind;
use crate::zoi::placeholders;
use crate::zoi::platform::Platform;
use crate::zoi::repo::RepoYaml;

const KEYS: [&str; 11] = [
    "storage",
    "url",
    "layout",
    "format",
    "signatures",
    "mirrors",
    "platforms",
    "keys_dir",
    "trust",
    "sign_key",
    "allow_unsigned",
];

/// The platforms a spec without `binaries.platforms` mirrors.
const DEFAULT_PLATFORMS: [&str; 5] = [
    "linux-amd64",
    "linux-arm64",
    "macos-amd64",
    "macos-arm64",
    "windows-amd64",
];

/// The values of `format`: Zoi's archive kinds, named by their extension.
const FORMATS: [ArchiveKind; 2] = [ArchiveKind::Zpa, ArchiveKind::PkgTarZst];

/// `[binaries]` as written.
pub(in crate::spec) struct Raw {
    pub url: Option<Sp<String>>,
    pub layout: Option<Sp<String>>,
    pub format: ArchiveKind,
    pub signatures: Option<bool>,
    pub mirrors: Vec<String>,
    pub platforms: Vec<Platform>,
    pub keys_dir: Option<Sp<String>>,
    pub trust: Option<Vec<Sp<String>>>,
    /// Where `trust` is written (the whole list).
    pub trust_span: Option<Range<usize>>,
    pub sign_key: Option<Sp<String>>,
    pub allow_unsigned: bool,
    pub storage: Storage,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            url: None,
            layout: None,
            format: ArchiveKind::Zpa,
            signatures: None,
            mirrors: Vec::new(),
            platforms: Vec::new(),
            keys_dir: None,
            trust: None,
            trust_span: None,
            sign_key: None,
            allow_unsigned: false,
            storage: Storage::default(),
        }
    }
}

pub(in crate::spec) fn read(ctx: &mut Ctx<'_>, root: &Sec<'_>) -> Raw {
    let bin = root.sub(ctx, "binaries");
    if bin.is_none() && root.table.get("binaries").is_none() {
        ctx.err(
            Some(0..0),
            "missing required table [binaries]",
            Some("add [binaries] with at least `url`, the base URL of the binary host".into()),
        );
    }
    let mut raw = Raw::default();
    let Some(bin) = &bin else {
        return raw;
    };
    raw.storage = super::storage::read(ctx, bin);
    bin.check_keys(ctx, &KEYS);
    let url_hint = || Some("e.g. \"https://bin.example.com/pkgs\"".to_string());
    raw.url = bin.req_str(
        ctx,
        "url",
        "the base URL of the binary host, e.g. \"https://bin.example.com/pkgs\"",
    );
    let mirrors = bin.str_list(ctx, "mirrors").unwrap_or_default();
    for u in raw.url.iter().chain(mirrors.iter()) {
        if let Some(p) = http_url_problem(&u.value) {
            ctx.err(u.span.clone(), format!("binary host URL: {p}"), url_hint());
        } else if u.value.contains('{') {
            ctx.err(
                u.span.clone(),
                format!("binary host URL '{}' contains a placeholder", u.value),
                Some("put placeholders in `binaries.layout`; the URL is the fixed base".into()),
            );
        }
    }
    raw.mirrors = mirrors
        .into_iter()
        .map(|m| m.value.trim_end_matches('/').to_string())
        .collect();
    raw.layout = bin.nonempty_str(
        ctx,
        "layout",
        "give a folder template such as \"{repo}/{os}/{arch}/{version}\"",
    );
    if let Some(l) = &raw.layout {
        for (offset, word) in placeholders::unknown(&l.value) {
            ctx.err(
                ctx.inner_span(l, offset),
                format!("unknown placeholder `{{{word}}}` in `binaries.layout`"),
                Some(format!(
                    "Zoi knows exactly seven: {}; anything else stays literally in the URL",
                    placeholders::known_list()
                )),
            );
        }
        if l.value.split('/').any(|seg| seg == ".." || seg == ".") {
            ctx.err(
                l.span.clone(),
                "`binaries.layout` must not contain `.` or `..` segments",
                None,
            );
        }
    }
    if let Some(f) = bin.str(ctx, "format") {
        match FORMATS.into_iter().find(|k| k.extension() == f.value) {
            Some(kind) => raw.format = kind,
            None => ctx.err(
                f.span.clone(),
                format!("unknown archive format '{}'", f.value),
                Some(
                    "use \"zpa\" (Zoi ≥ 1.23) or \"pkg.tar.zst\" (the seed guide's legacy naming)"
                        .into(),
                ),
            ),
        }
    }
    raw.signatures = bin.bool(ctx, "signatures");
    raw.keys_dir = bin.nonempty_str(
        ctx,
        "keys_dir",
        "give a folder under binaries.url, e.g. \"keys\"",
    );
    if let Some(k) = &raw.keys_dir
        && (k.value.split('/').any(|seg| seg == ".." || seg == ".")
            || k.value.contains(['{', '\\', '?', '#'])
            || k.value.starts_with('/'))
    {
        ctx.err(
            k.span.clone(),
            format!(
                "`binaries.keys_dir` '{}' is not a plain relative folder",
                k.value
            ),
            Some("e.g. \"keys\": keys are served at <binaries.url>/keys/<name>.asc".into()),
        );
    }
    raw.trust = bin.str_list(ctx, "trust");
    raw.trust_span = bin.value_span("trust");
    raw.sign_key = bin.nonempty_str(ctx, "sign_key", "give a GnuPG key id or fingerprint");
    raw.allow_unsigned = bin.bool(ctx, "allow_unsigned").unwrap_or(false);
    if let Some(list) = bin.str_list(ctx, "platforms") {
        if list.is_empty() {
            ctx.err(
                bin.value_span("platforms"),
                "`binaries.platforms` is empty",
                Some("list at least one platform, e.g. [\"linux-amd64\"]".into()),
            );
        }
        for p in list {
            match p.value.parse::<Platform>() {
                Ok(pl) if !raw.platforms.contains(&pl) => raw.platforms.push(pl),
                Ok(_) => {}
                Err(e) => ctx.err(
                    p.span.clone(),
                    e.to_string(),
                    Some("e.g. \"linux-amd64\", \"macos-arm64\"".into()),
                ),
            }
        }
    } else {
        raw.platforms = DEFAULT_PLATFORMS
            .iter()
            .map(|p| p.parse().expect("valid default platform"))
            .collect();
    }
    raw
}

impl Raw {
    /// The section with defaults (`signatures` follows what upstream
    /// signs); `None` without `url`.
    pub(in crate::spec) fn finish(self, upstream: &RepoYaml) -> Option<Binaries> {
        Some(Binaries {
            url: self.url?.value.trim_end_matches('/').to_string(),
            layout: self.layout.map_or_else(
                || DEFAULT_LAYOUT.to_string(),
                |l| l.value.trim_matches('/').to_string(),
            ),
            format: self.format,
            // By default, `.sig` links follow what is signed: upstream's
            // archives when it declares keys, or ours when we re-sign.
            signatures: self
                .signatures
                .unwrap_or(!upstream.pgp.is_empty() || self.sign_key.is_some()),
            mirrors: self.mirrors,
            platforms: self.platforms,
            keys_dir: self.keys_dir.map_or_else(
                || "keys".to_string(),
                |k| k.value.trim_matches('/').to_string(),
            ),
            trust: self.trust.map(values),
            sign_key: self.sign_key.map(|k| k.value),
            allow_unsigned: self.allow_unsigned,
            storage: self.storage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's key table names exactly the formats the reader accepts.
    #[test]
    fn readme_lists_every_format() {
        let readme = include_str!("../../../README.md");
        let row = readme
            .lines()
            .find(|l| l.starts_with("| `[binaries]` |"))
            .expect("README has a [binaries] row");
        let listed = row
            .split_once("`format` (")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(list, _)| list)
            .expect("the row documents `format`");
        let names: Vec<&str> = listed.split('`').skip(1).step_by(2).collect();
        let ours: Vec<&str> = FORMATS.iter().map(|k| k.extension()).collect();
        assert_eq!(names, ours);
    }
}
