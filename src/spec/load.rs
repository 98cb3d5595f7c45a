//! Reading `mirror.toml` with spans and collecting every problem.
//!
//! serde stops at the first error, which would make IT fix a spec one
//! complaint per run. So the document is parsed with `toml_edit` (which
//! keeps byte spans) and walked by a small schema reader that records a
//! [`Diagnostic`] for each unknown key, wrong type, missing or empty value,
//! then semantic checks run on the values with their spans. Only when the
//! list is empty is a [`Spec`] returned.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{Item, Table, TableLike, Value};

use super::*;
use crate::error::{Diagnostic, Failure, fail};
use crate::zoi::config::{LOCKS, SignatureEnforcement};
use crate::zoi::names::{package_name_problem, tier_problem};
use crate::zoi::placeholders;
use crate::zoi::upstream;

/// A value and where it was written.
#[derive(Debug, Clone)]
struct Sp<T> {
    value: T,
    span: Option<Range<usize>>,
}

struct Ctx<'a> {
    file: &'a Path,
    src: &'a str,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(
        &mut self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let offset = span.map_or(0, |s| s.start);
        self.diags
            .push(Diagnostic::at(self.file, self.src, offset, message, hint));
    }

    /// Span of the `i`-th character of a string value, when the source text
    /// of the value is a plain quoted string (escapes make it approximate, so
    /// then we point at the value's start).
    fn inner_span(&self, sp: &Sp<String>, byte: usize) -> Option<Range<usize>> {
        let span = sp.span.clone()?;
        let raw = self.src.get(span.clone())?;
        let quoted = raw.len() == sp.value.len() + 2 && raw[1..raw.len() - 1] == sp.value;
        if quoted {
            Some(span.start + 1 + byte..span.start + 2 + byte)
        } else {
            Some(span)
        }
    }
}

/// One table of the schema being read.
struct Sec<'t> {
    path: String,
    table: &'t dyn TableLike,
    span: Option<Range<usize>>,
}

fn suggest(word: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(word, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.to_string())
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => v.type_name(),
        Item::Table(_) => "table",
        Item::ArrayOfTables(_) => "array of tables",
    }
}

impl<'t> Sec<'t> {
    fn root(table: &'t Table) -> Self {
        Sec {
            path: String::new(),
            table,
            span: Some(0..0),
        }
    }

    fn qualified(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table.key(key).and_then(|k| k.span())
    }

    fn value_span(&self, key: &str) -> Option<Range<usize>> {
        self.table
            .get(key)
            .and_then(Item::span)
            .or_else(|| self.key_span(key))
    }

    fn check_keys(&self, ctx: &mut Ctx<'_>, known: &[&str]) {
        for (key, _) in self.table.iter() {
            if known.contains(&key) {
                continue;
            }
            let hint = match suggest(key, known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "known keys{}: {}",
                    if self.path.is_empty() {
                        String::new()
                    } else {
                        format!(" in [{}]", self.path)
                    },
                    known.join(", ")
                ),
            };
            ctx.err(
                self.key_span(key),
                format!("unknown key `{}`", self.qualified(key)),
                Some(hint),
            );
        }
    }

    fn missing(&self, ctx: &mut Ctx<'_>, key: &str, hint: &str) {
        let at = if self.path.is_empty() {
            "the top level".to_string()
        } else {
            format!("[{}]", self.path)
        };
        ctx.err(
            self.span.clone(),
            format!("missing required key `{}` in {at}", self.qualified(key)),
            Some(hint.to_string()),
        );
    }

    fn wrong_type(&self, ctx: &mut Ctx<'_>, key: &str, expected: &str, item: &Item) {
        ctx.err(
            self.value_span(key),
            format!(
                "`{}` must be {expected}, found {}",
                self.qualified(key),
                type_name(item)
            ),
            None,
        );
    }

    fn str(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Sp<String>> {
        let item = self.table.get(key)?;
        match item.as_str() {
            Some(s) => single_line(
                ctx,
                Sp {
                    value: s.to_string(),
                    span: self.value_span(key),
                },
                &self.qualified(key),
            ),
            None => {
                self.wrong_type(ctx, key, "a string", item);
                None
            }
        }
    }

    /// A string that must be present and not blank.
    fn req_str(&self, ctx: &mut Ctx<'_>, key: &str, hint: &str) -> Option<Sp<String>> {
        if self.table.get(key).is_none() {
            self.missing(ctx, key, hint);
            return None;
        }
        let s = self.str(ctx, key)?;
        if s.value.trim().is_empty() {
            ctx.err(
                s.span.clone(),
                format!("`{}` is empty", self.qualified(key)),
                Some(hint.to_string()),
            );
            return None;
        }
        Some(s)
    }

    /// An optional string that, when present, must not be blank.
    fn nonempty_str(&self, ctx: &mut Ctx<'_>, key: &str, hint: &str) -> Option<Sp<String>> {
        let s = self.str(ctx, key)?;
        if s.value.trim().is_empty() {
            ctx.err(
                s.span.clone(),
                format!("`{}` is empty", self.qualified(key)),
                Some(format!("remove the key to use the default, or {hint}")),
            );
            return None;
        }
        Some(s)
    }

    fn bool(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<bool> {
        let item = self.table.get(key)?;
        match item.as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong_type(ctx, key, "true or false", item);
                None
            }
        }
    }

    /// An array of non-empty strings (absent → `None`).
    fn str_list(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Vec<Sp<String>>> {
        let item = self.table.get(key)?;
        let Some(array) = item.as_array() else {
            self.wrong_type(ctx, key, "an array of strings", item);
            return None;
        };
        let mut out = Vec::new();
        for (i, v) in array.iter().enumerate() {
            match v.as_str() {
                Some(s) if s.trim().is_empty() => ctx.err(
                    v.span(),
                    format!("`{}[{i}]` is an empty string", self.qualified(key)),
                    Some("remove the empty entry".into()),
                ),
                Some(s) => out.extend(single_line(
                    ctx,
                    Sp {
                        value: s.to_string(),
                        span: v.span(),
                    },
                    &format!("{}[{i}]", self.qualified(key)),
                )),
                None => ctx.err(
                    v.span(),
                    format!(
                        "`{}[{i}]` must be a string, found {}",
                        self.qualified(key),
                        v.type_name()
                    ),
                    None,
                ),
            }
        }
        Some(out)
    }

    fn sub(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Sec<'t>> {
        let item = self.table.get(key)?;
        let path = self.qualified(key);
        let span = item.span().or_else(|| self.key_span(key));
        match item {
            Item::Table(t) => Some(Sec {
                path,
                table: t,
                span,
            }),
            Item::Value(Value::InlineTable(t)) => Some(Sec {
                path,
                table: t,
                span,
            }),
            other => {
                self.wrong_type(ctx, key, "a table", other);
                None
            }
        }
    }

    /// `[[key]]` or `key = [{...}, …]`.
    fn table_list(&self, ctx: &mut Ctx<'_>, key: &str) -> Vec<Sec<'t>> {
        let Some(item) = self.table.get(key) else {
            return Vec::new();
        };
        let path = self.qualified(key);
        match item {
            Item::ArrayOfTables(a) => a
                .iter()
                .enumerate()
                .map(|(i, t)| Sec {
                    path: format!("{path}[{i}]"),
                    table: t,
                    span: t.span(),
                })
                .collect(),
            Item::Value(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        Value::InlineTable(t) => out.push(Sec {
                            path: format!("{path}[{i}]"),
                            table: t,
                            span: v.span(),
                        }),
                        other => ctx.err(
                            other.span(),
                            format!("`{path}[{i}]` must be a table, found {}", other.type_name()),
                            None,
                        ),
                    }
                }
                out
            }
            other => {
                self.wrong_type(ctx, key, "an array of tables", other);
                Vec::new()
            }
        }
    }
}

const TOP_KEYS: [&str; 6] = [
    "extension",
    "registry",
    "binaries",
    "client",
    "system",
    "setup",
];
const SETUP_KEYS: [&str; 2] = ["url", "tools"];
const EXTENSION_KEYS: [&str; 6] = [
    "name",
    "version",
    "description",
    "license",
    "tier",
    "maintainer",
];
const MAINTAINER_KEYS: [&str; 2] = ["name", "email"];
const REGISTRY_KEYS: [&str; 13] = [
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
const BINARIES_KEYS: [&str; 11] = [
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
const STORAGE_KEYS: [&str; 6] = [
    "url",
    "endpoint",
    "region",
    "path_style",
    "allow_http",
    "public_url",
];
const CLIENT_KEYS: [&str; 8] = [
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
const SYSTEM_KEYS: [&str; 8] = [
    "lock",
    "allowed_packages",
    "denied_packages",
    "allowed_repos",
    "denied_repos",
    "allowed_licenses",
    "denied_licenses",
    "signature_enforcement",
];
const SIGENF_KEYS: [&str; 2] = ["enable", "trusted_keys"];

/// The one check every spec string passes through: every value is a single
/// line, so a control character or line break (`\r`, NEL, LS, PS, NUL,
/// ESC, …) is an error at its exact position — it could otherwise forge a
/// key in a generated YAML file or drive a terminal.
fn single_line(ctx: &mut Ctx<'_>, sp: Sp<String>, what: &str) -> Option<Sp<String>> {
    let bad = sp
        .value
        .char_indices()
        .find(|(_, c)| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'));
    let Some((byte, c)) = bad else {
        return Some(sp);
    };
    let name = match c {
        '\n' => "a line break (\\n)",
        '\r' => "a carriage return (\\r)",
        '\t' => "a tab",
        '\0' => "a NUL",
        '\u{1b}' => "an escape character (ESC)",
        '\u{85}' => "a next-line character (NEL, U+0085)",
        '\u{2028}' => "a line separator (U+2028)",
        '\u{2029}' => "a paragraph separator (U+2029)",
        _ => "a control character",
    };
    let span = ctx.inner_span(&sp, byte);
    ctx.err(
        span,
        format!("`{what}` contains {name} (U+{:04X})", c as u32),
        Some(
            "every value in mirror.toml is a single line of printable text: remove the character"
                .into(),
        ),
    );
    None
}

fn values(list: Vec<Sp<String>>) -> Vec<String> {
    list.into_iter().map(|s| s.value).collect()
}

/// Why `url` is not a plain http(s) URL, if it is not.
fn http_url_problem(url: &str) -> Option<String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("{url:?} contains whitespace or control characters"));
    }
    match url::Url::parse(url) {
        Err(e) => Some(format!("'{url}' is not a valid URL ({e})")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Some(format!(
            "'{url}' uses the `{}` scheme; Zoi fetches archives and metadata over http(s) only",
            u.scheme()
        )),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some(format!("'{url}' has no host")),
        Ok(u) if !u.username().is_empty() || u.password().is_some() => Some(format!(
            "'{url}' embeds credentials, which would be copied into every client's config"
        )),
        Ok(_) => None,
    }
}

/// Why `url` is not something `git clone` and Zoi's sync accept, if it is not.
fn git_url_problem(url: &str) -> Option<String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("{url:?} contains whitespace or control characters"));
    }
    if !url.contains("://") {
        // scp-like `user@host:path`
        let scp = url.split_once(':').is_some_and(|(host, path)| {
            !host.is_empty() && !path.is_empty() && !host.contains('/')
        });
        return (!scp).then(|| {
            format!("'{url}' is not a git URL (expected https://, http://, git://, ssh://, file:// or user@host:path)")
        });
    }
    match url::Url::parse(url) {
        Err(e) => Some(format!("'{url}' is not a valid URL ({e})")),
        Ok(u) if !matches!(u.scheme(), "http" | "https" | "git" | "ssh" | "file") => Some(format!(
            "'{url}' uses the `{}` scheme; git remotes are https, http, git, ssh or file",
            u.scheme()
        )),
        Ok(u)
            if u.password().is_some()
                || (matches!(u.scheme(), "http" | "https") && !u.username().is_empty()) =>
        {
            Some(format!(
                "'{url}' embeds credentials, which would be copied into every client's config"
            ))
        }
        Ok(_) => None,
    }
}

fn is_fingerprint(s: &str) -> bool {
    let hex: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    matches!(hex.len(), 40 | 64) && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// Loads and validates a spec file.
pub fn load(path: &Path, upstream: &UpstreamInput) -> anyhow::Result<Spec> {
    let src = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let valid = String::from_utf8_lossy(&e.as_bytes()[..offset]).into_owned();
                let d = Diagnostic::at(
                    path,
                    &valid,
                    offset,
                    "the file is not UTF-8 text (TOML requires UTF-8)",
                    Some("save mirror.toml as UTF-8".into()),
                );
                return fail(spec_failure(path, vec![d]));
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(
                Failure::bad_input(
                    "spec_missing",
                    format!("spec file {} not found", path.display()),
                )
                .hint("create one with `zoi-mirror init`, or pass its path with -c"),
            );
        }
        Err(e) => return fail(crate::error::io_failure("read", path, &e)),
    };
    load_str(path, &src, upstream)
}

/// Validates spec text `src` (as if read from `path`).
pub fn load_str(path: &Path, src: &str, upstream: &UpstreamInput) -> anyhow::Result<Spec> {
    let mut ctx = Ctx {
        file: path,
        src,
        diags: Vec::new(),
    };
    let doc = match toml_edit::Document::parse(src) {
        Ok(d) => d,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            let msg = e.message().trim().to_string();
            ctx.err(
                Some(offset..offset),
                format!("TOML syntax error: {msg}"),
                None,
            );
            return fail(spec_failure(path, ctx.diags));
        }
    };
    let spec = read(&mut ctx, doc.as_table(), upstream);
    if ctx.diags.is_empty()
        && let Some(spec) = spec
    {
        return Ok(spec);
    }
    fail(spec_failure(path, ctx.diags))
}

fn spec_failure(path: &Path, mut diags: Vec<Diagnostic>) -> Failure {
    diags.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    let n = diags.len();
    Failure::bad_input(
        "spec_invalid",
        format!(
            "{} has {n} problem{}",
            path.display(),
            if n == 1 { "" } else { "s" }
        ),
    )
    .hint("fix the lines above; `zoi-mirror init` writes a commented example of every key")
    .with_diagnostics(diags)
}

fn read(ctx: &mut Ctx<'_>, root: &Table, upstream_input: &UpstreamInput) -> Option<Spec> {
    let root = Sec::root(root);
    root.check_keys(ctx, &TOP_KEYS);

    // ---- [extension]
    let ext = root.sub(ctx, "extension");
    if ext.is_none() && root.table.get("extension").is_none() {
        ctx.err(
            Some(0..0),
            "missing required table [extension]",
            Some("add [extension] with name, version, description, tier and maintainer".into()),
        );
    }
    let mut e_name = None;
    let mut e_version = None;
    let mut e_desc = None;
    let mut e_license = None;
    let mut e_tier = None;
    let mut m_name = None;
    let mut m_email = None;
    if let Some(ext) = &ext {
        ext.check_keys(ctx, &EXTENSION_KEYS);
        e_name = ext.req_str(
            ctx,
            "name",
            "a lowercase Zoi package name, e.g. \"acme-mirror\"",
        );
        if let Some(n) = &e_name
            && let Some(problem) = package_name_problem(&n.value)
        {
            ctx.err(
                n.span.clone(),
                format!(
                    "`extension.name` '{}' is not a valid Zoi package name: {problem}",
                    n.value
                ),
                Some(
                    "use lowercase letters, digits, '.', '_' and '-', e.g. \"acme-mirror\"".into(),
                ),
            );
            e_name = None;
        }
        e_version = ext.req_str(ctx, "version", "a semantic version, e.g. \"1.0.0\"");
        if let Some(v) = &e_version
            && let Err(err) = semver::Version::parse(&v.value)
        {
            ctx.err(
                v.span.clone(),
                format!(
                    "`extension.version` '{}' is not a semantic version: {err}",
                    v.value
                ),
                Some("write MAJOR.MINOR.PATCH, e.g. \"1.0.0\"".into()),
            );
            e_version = None;
        }
        e_desc = ext.req_str(
            ctx,
            "description",
            "one line saying what the extension does",
        );
        e_license = ext.nonempty_str(ctx, "license", "an SPDX license expression");
        e_tier = ext.req_str(
            ctx,
            "tier",
            "the registry tier the extension is published in",
        );
        match ext.sub(ctx, "maintainer") {
            Some(m) => {
                m.check_keys(ctx, &MAINTAINER_KEYS);
                m_name = m.req_str(ctx, "name", "who maintains this extension");
                m_email = m.req_str(ctx, "email", "an address users can write to");
                if let Some(e) = &m_email
                    && !e.value.contains('@')
                {
                    ctx.err(
                        e.span.clone(),
                        format!(
                            "`extension.maintainer.email` '{}' is not an email address",
                            e.value
                        ),
                        Some("write it as name@domain".into()),
                    );
                }
            }
            None if ext.table.get("maintainer").is_none() => ext.missing(
                ctx,
                "maintainer",
                "add `maintainer = { name = \"…\", email = \"…\" }`",
            ),
            None => {}
        }
    }

    // ---- [registry]
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
    let mut r_url = None;
    let mut r_mirrors = Vec::new();
    let mut r_upstream = None;
    let mut r_upstream_yaml = None;
    let mut r_branch = None;
    let mut r_handle = None;
    let mut r_authorities = Vec::new();
    let mut r_name = None;
    let mut r_desc = None;
    let mut r_prefix = None;
    let mut r_signing = None;
    let mut r_tiers: Vec<(RepoEntry, Option<Range<usize>>)> = Vec::new();
    let mut r_keys = Vec::new();
    if let Some(reg) = &reg {
        reg.check_keys(ctx, &REGISTRY_KEYS);
        r_url = reg.req_str(ctx, "url", "the internal git URL clients sync from");
        let git_hint = || Some("e.g. \"https://git.example.com/zoi/zoidberg.git\"".to_string());
        if let Some(u) = &r_url
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
            r_mirrors.push(m.value);
        }
        r_upstream = reg.nonempty_str(ctx, "upstream", "give the upstream git URL");
        if let Some(u) = &r_upstream
            && let Some(p) = git_url_problem(&u.value)
        {
            ctx.err(
                u.span.clone(),
                format!("`registry.upstream`: {p}"),
                git_hint(),
            );
        }
        r_upstream_yaml = reg.nonempty_str(
            ctx,
            "upstream_repo_yaml",
            "give a path to upstream's repo.yaml",
        );
        r_branch = reg.nonempty_str(ctx, "branch", "give a branch name");
        r_handle = reg.nonempty_str(ctx, "handle", "give a handle");
        if let Some(h) = &r_handle
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
        r_authorities = reg.str_list(ctx, "authorities").unwrap_or_default();
        r_name = reg.nonempty_str(ctx, "name", "give a registry name");
        r_desc = reg.nonempty_str(ctx, "description", "give a description");
        r_prefix = reg.nonempty_str(ctx, "advisory_prefix", "give a prefix such as \"ZSA\"");
        r_signing = reg.nonempty_str(ctx, "signing_key", "give a GnuPG key id or fingerprint");
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
                r_tiers.push((
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
                r_keys.push(PgpKey {
                    name: name.value,
                    key: key.value,
                });
            }
        }
    }

    // ---- [binaries]
    let bin = root.sub(ctx, "binaries");
    if bin.is_none() && root.table.get("binaries").is_none() {
        ctx.err(
            Some(0..0),
            "missing required table [binaries]",
            Some("add [binaries] with at least `url`, the base URL of the binary host".into()),
        );
    }
    let mut b_url = None;
    let mut b_layout = None;
    let mut b_format = ArchiveFormat::Zpa;
    let mut b_sigs = None;
    let mut b_mirrors = Vec::new();
    let mut b_platforms = Vec::new();
    let mut b_keys_dir = None;
    let mut b_trust: Option<Vec<Sp<String>>> = None;
    let mut b_trust_span = None;
    let mut b_sign_key = None;
    let mut b_allow_unsigned = false;
    let mut b_storage = crate::spec::Storage::default();
    if let Some(bin) = &bin {
        if let Some(st) = bin.sub(ctx, "storage") {
            st.check_keys(ctx, &STORAGE_KEYS);
            if let Some(u) = st.nonempty_str(ctx, "url", "e.g. \"s3://zoi/pkgs\"") {
                match crate::storage::Dest::parse(std::path::Path::new(&u.value)) {
                    Ok(crate::storage::Dest::S3(_)) => b_storage.url = Some(u.value.clone()),
                    Ok(crate::storage::Dest::Local(_)) => ctx.err(
                        u.span.clone(),
                        "`binaries.storage.url` must be an s3://BUCKET/PREFIX URL",
                        Some("a folder destination is given with `bin sync --dest DIR`".into()),
                    ),
                    Err(m) => ctx.err(u.span.clone(), m, None),
                }
            }
            if let Some(e) = st.nonempty_str(ctx, "endpoint", "e.g. \"https://s3.example.com\"") {
                if let Some(p) = http_url_problem(&e.value) {
                    ctx.err(e.span.clone(), format!("storage endpoint: {p}"), None);
                }
                b_storage.s3.endpoint = Some(e.value.clone());
            }
            if let Some(pu) = st.nonempty_str(ctx, "public_url", "e.g. \"https://bin.example.com\"")
            {
                if let Some(p) = http_url_problem(&pu.value) {
                    ctx.err(pu.span.clone(), format!("storage public_url: {p}"), None);
                }
                b_storage.s3.public_url = Some(pu.value.clone());
            }
            b_storage.s3.region = st
                .nonempty_str(ctx, "region", "e.g. \"us-east-1\"")
                .map(|r| r.value);
            b_storage.s3.path_style = st.bool(ctx, "path_style");
            b_storage.s3.allow_http = st.bool(ctx, "allow_http");
        }
        bin.check_keys(ctx, &BINARIES_KEYS);
        let url_hint = || Some("e.g. \"https://bin.example.com/pkgs\"".to_string());
        b_url = bin.req_str(
            ctx,
            "url",
            "the base URL of the binary host, e.g. \"https://bin.example.com/pkgs\"",
        );
        let mirrors = bin.str_list(ctx, "mirrors").unwrap_or_default();
        for u in b_url.iter().chain(mirrors.iter()) {
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
        b_mirrors = mirrors
            .into_iter()
            .map(|m| m.value.trim_end_matches('/').to_string())
            .collect();
        b_layout = bin.nonempty_str(
            ctx,
            "layout",
            "give a folder template such as \"{repo}/{os}/{arch}/{version}\"",
        );
        if let Some(l) = &b_layout {
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
            match f.value.as_str() {
                "zpa" => b_format = ArchiveFormat::Zpa,
                "pkg.tar.zst" => b_format = ArchiveFormat::PkgTarZst,
                other => ctx.err(
                    f.span.clone(),
                    format!("unknown archive format '{other}'"),
                    Some("use \"zpa\" (Zoi ≥ 1.23) or \"pkg.tar.zst\" (the seed guide's legacy naming)".into()),
                ),
            }
        }
        b_sigs = bin.bool(ctx, "signatures");
        b_keys_dir = bin.nonempty_str(
            ctx,
            "keys_dir",
            "give a folder under binaries.url, e.g. \"keys\"",
        );
        if let Some(k) = &b_keys_dir
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
        b_trust = bin.str_list(ctx, "trust");
        b_trust_span = bin.value_span("trust");
        b_sign_key = bin.nonempty_str(ctx, "sign_key", "give a GnuPG key id or fingerprint");
        b_allow_unsigned = bin.bool(ctx, "allow_unsigned").unwrap_or(false);
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
                    Ok(pl) if !b_platforms.contains(&pl) => b_platforms.push(pl),
                    Ok(_) => {}
                    Err(e) => ctx.err(
                        p.span.clone(),
                        e.to_string(),
                        Some("e.g. \"linux-amd64\", \"macos-arm64\"".into()),
                    ),
                }
            }
        } else {
            b_platforms = [
                "linux-amd64",
                "linux-arm64",
                "macos-amd64",
                "macos-arm64",
                "windows-amd64",
            ]
            .iter()
            .map(|p| p.parse().expect("valid default platform"))
            .collect();
        }
    }

    // ---- the upstream repo.yaml (needed to know which tiers exist)
    let spec_dir = ctx.file.parent().map(Path::to_path_buf).unwrap_or_default();
    let upstream_path: Option<(PathBuf, Option<Range<usize>>)> = match upstream_input {
        UpstreamInput::File(p) => Some((p.clone(), None)),
        UpstreamInput::Bytes { .. } => None,
        UpstreamInput::Auto => r_upstream_yaml
            .as_ref()
            .map(|p| (spec_dir.join(&p.value), p.span.clone())),
    };
    let upstream_origin = match (&upstream_path, upstream_input) {
        (Some((p, _)), _) => UpstreamOrigin::File(p.clone()),
        (None, UpstreamInput::Bytes { origin, .. }) => UpstreamOrigin::Given(origin.clone()),
        (None, _) => UpstreamOrigin::BuiltIn,
    };
    let upstream = match &upstream_path {
        None => {
            match upstream_input {
                UpstreamInput::Bytes { origin, bytes } => {
                    match RepoYaml::parse(&String::from_utf8_lossy(bytes)) {
                        Ok(r) => r,
                        Err(e) => {
                            ctx.err(
                            None,
                            format!("upstream's repo.yaml ({origin}) is not a valid Zoi repo.yaml: {e}"),
                            Some("pass a good copy with --upstream-repo-yaml FILE".into()),
                        );
                            upstream::zoidberg()
                        }
                    }
                }
                _ => upstream::zoidberg(),
            }
        }
        Some((p, span)) => match std::fs::read_to_string(p) {
            Err(e) => {
                ctx.err(
                    span.clone(),
                    format!("cannot read upstream repo.yaml {}: {e}", p.display()),
                    Some(
                        "give the path of a copy of upstream's repo.yaml, relative to mirror.toml"
                            .into(),
                    ),
                );
                upstream::zoidberg()
            }
            Ok(text) => match RepoYaml::parse(&text) {
                Ok(r) => r,
                Err(e) => {
                    let loc = e.location();
                    ctx.diags.push(Diagnostic {
                        file: p.clone(),
                        line: loc.as_ref().map_or(1, |l| l.line()),
                        column: loc.as_ref().map_or(1, |l| l.column()),
                        message: format!("upstream repo.yaml is not a valid Zoi repo.yaml: {e}"),
                        hint: Some(
                            "it needs at least `name` and `description`, as Zoi requires".into(),
                        ),
                    });
                    upstream::zoidberg()
                }
            },
        },
    };

    let mut known_tiers: Vec<String> = upstream.repos.iter().map(|r| r.name.clone()).collect();
    for (t, span) in &r_tiers {
        if known_tiers.contains(&t.name) {
            ctx.err(
                span.clone(),
                format!("tier '{}' is already one of upstream's tiers", t.name),
                Some("declare only tiers upstream does not have".into()),
            );
        } else {
            known_tiers.push(t.name.clone());
        }
    }
    let tier_hint = |t: &str| {
        let mut h = match suggest(
            t,
            &known_tiers.iter().map(String::as_str).collect::<Vec<_>>(),
        ) {
            Some(s) => format!("did you mean '{s}'? "),
            None => String::new(),
        };
        h.push_str(&format!(
            "known tiers: {}; declare new ones under [[registry.tiers]]",
            known_tiers.join(", ")
        ));
        h
    };
    if let Some(t) = &e_tier
        && !known_tiers.contains(&t.value)
    {
        ctx.err(
            t.span.clone(),
            format!(
                "`extension.tier` '{}' is neither one of upstream's tiers nor declared",
                t.value
            ),
            Some(tier_hint(&t.value)),
        );
    }

    // ---- [client]
    let client = root.sub(ctx, "client");
    let mut c_tiers = None;
    let mut c_repo_add = Vec::new();
    let mut c_cache = Vec::new();
    let mut c_pkg_dirs = Vec::new();
    let mut c_offline = None;
    let mut c_registries = Vec::new();
    let mut c_git = Vec::new();
    let mut c_pgp: Vec<ClientKey> = Vec::new();
    if let Some(client) = &client {
        client.check_keys(ctx, &CLIENT_KEYS);
        let tiers = client.str_list(ctx, "tiers");
        if let Some(list) = &tiers
            && list.is_empty()
        {
            ctx.err(
                client.value_span("tiers"),
                "`client.tiers` is empty",
                Some("list the tiers to activate, e.g. [\"core\", \"main\"], or remove the key to use upstream's active tiers".into()),
            );
        }
        for key in ["tiers", "repo_add"] {
            let list = if key == "tiers" {
                tiers.clone()
            } else {
                client.str_list(ctx, key)
            };
            for t in list.iter().flatten() {
                if !known_tiers.contains(&t.value) {
                    ctx.err(
                        t.span.clone(),
                        format!("`client.{key}`: tier '{}' is neither one of upstream's tiers nor declared", t.value),
                        Some(tier_hint(&t.value)),
                    );
                }
            }
            if key == "tiers" {
                c_tiers = tiers.clone().map(values);
            } else {
                c_repo_add = values(list.unwrap_or_default());
            }
        }
        for u in client.str_list(ctx, "cache_mirrors").unwrap_or_default() {
            if let Some(p) = http_url_problem(&u.value) {
                ctx.err(u.span.clone(), format!("`client.cache_mirrors`: {p}"), None);
            }
            c_cache.push(u.value);
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
            c_pkg_dirs.push(d.value);
        }
        c_offline = client.bool(ctx, "offline");
        for u in client.str_list(ctx, "registries").unwrap_or_default() {
            if let Some(p) = git_url_problem(&u.value) {
                ctx.err(u.span.clone(), format!("`client.registries`: {p}"), None);
            }
            c_registries.push(u.value);
        }
        for u in client.str_list(ctx, "git_repos").unwrap_or_default() {
            if let Some(p) = git_url_problem(&u.value) {
                ctx.err(u.span.clone(), format!("`client.git_repos`: {p}"), None);
            }
            c_git.push(u.value);
        }
        for k in client.table_list(ctx, "pgp") {
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
                            format!("`{}.fingerprint` '{}' is not a 40- or 64-hex-digit key fingerprint", k.path, f.value),
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
                        Some("Zoi fetches the key from the URL, or from keys.openpgp.org by fingerprint".into()),
                    );
                    None
                }
            };
            if let Some(n) = &name
                && (!crate::zoi::names::archive_file_name_ok(&n.value) || n.value.starts_with('.'))
            {
                ctx.err(
                    n.span.clone(),
                    format!("`{}.name` {:?} is not a plain file name (Zoi saves the key as pgps/<name>.asc)", k.path, n.value),
                    Some("only letters, digits, '.', '_' and '-'".into()),
                );
            }
            if let (Some(name), Some(source)) = (name, source) {
                if c_pgp.iter().any(|p| p.name == name.value) {
                    ctx.err(
                        name.span.clone(),
                        format!("key name '{}' is used twice", name.value),
                        None,
                    );
                }
                c_pgp.push(ClientKey {
                    name: name.value,
                    source,
                });
            }
        }
    }

    for a in &r_authorities {
        let known_name = c_pgp.iter().any(|k| k.name == a.value)
            || upstream.pgp.iter().any(|k| k.name == a.value);
        if !known_name && !is_fingerprint(&a.value) {
            ctx.err(
                a.span.clone(),
                format!("authority '{}' is neither a key fingerprint nor the name of a key in [[client.pgp]]", a.value),
                Some("Zoi checks the registry HEAD signature against keys in its key store; ship the key with [[client.pgp]]".into()),
            );
        }
    }

    // ---- [system]
    let mut system = System::default();
    if let Some(sys) = root.sub(ctx, "system") {
        sys.check_keys(ctx, &SYSTEM_KEYS);
        for l in sys.str_list(ctx, "lock").unwrap_or_default() {
            if LOCKS.contains(&l.value.as_str()) {
                system.lock.push(l.value);
            } else {
                let hint = match suggest(&l.value, &LOCKS) {
                    Some(s) => format!(
                        "did you mean '{s}'? settings that can be locked: {}",
                        LOCKS.join(", ")
                    ),
                    None => format!("settings that can be locked: {}", LOCKS.join(", ")),
                };
                ctx.err(
                    l.span.clone(),
                    format!("`system.lock`: '{}' is not a setting Zoi can lock", l.value),
                    Some(hint),
                );
            }
        }
        system.allowed_packages = sys.str_list(ctx, "allowed_packages").map(values);
        system.denied_packages = sys.str_list(ctx, "denied_packages").map(values);
        system.allowed_repos = sys.str_list(ctx, "allowed_repos").map(values);
        system.denied_repos = sys.str_list(ctx, "denied_repos").map(values);
        system.allowed_licenses = sys.str_list(ctx, "allowed_licenses").map(values);
        system.denied_licenses = sys.str_list(ctx, "denied_licenses").map(values);
        if let Some(se) = sys.sub(ctx, "signature_enforcement") {
            se.check_keys(ctx, &SIGENF_KEYS);
            system.signature_enforcement = Some(SignatureEnforcement {
                enable: se.bool(ctx, "enable").unwrap_or(false),
                trusted_keys: values(se.str_list(ctx, "trusted_keys").unwrap_or_default()),
            });
        }
    }

    // ---- [setup]
    let mut setup = None;
    if let Some(st) = root.sub(ctx, "setup") {
        st.check_keys(ctx, &SETUP_KEYS);
        let url = st.req_str(ctx, "url", "the base URL the bundle directory is published under, e.g. \"https://bin.example.com/zoi-mirror\"");
        if let Some(u) = &url
            && let Some(p) = http_url_problem(&u.value)
        {
            ctx.err(u.span.clone(), format!("`setup.url`: {p}"), None);
        }
        let mut tools = std::collections::BTreeMap::new();
        if let Some(t) = st.sub(ctx, "tools") {
            let keys: Vec<String> = t.table.iter().map(|(k, _)| k.to_string()).collect();
            for key in keys {
                let platform = match key.parse::<Platform>() {
                    Ok(p) => Some(p),
                    Err(e) => {
                        ctx.err(t.key_span(&key), format!("`setup.tools`: {e}"), None);
                        None
                    }
                };
                if let Some(path) = t.req_str(
                    ctx,
                    &key,
                    "the path of a zoi-mirror executable for that platform",
                ) && let Some(platform) = platform
                {
                    let full = spec_dir_of(ctx.file).join(&path.value);
                    if !full.is_file() {
                        ctx.err(
                            path.span.clone(),
                            format!("`setup.tools.{key}`: {} is not a file", full.display()),
                            Some("build zoi-mirror for that platform first, or pass --tool PLATFORM=PATH".into()),
                        );
                    }
                    tools.insert(platform, full);
                }
            }
        }
        // Normalised (percent-encoded) as a client will request it: this
        // exact text is pinned into the setup scripts.
        setup = url
            .and_then(|u| url::Url::parse(&u.value).ok())
            .map(|u| Setup {
                url: u.as_str().trim_end_matches('/').to_string(),
                tools,
            });
    }

    // ---- key names become file names (`<keys_dir>/<name>.asc` on the host,
    // `pgps/<name>.asc` on every client): never paths
    let bad_key_name = |n: &str| !crate::zoi::names::archive_file_name_ok(n) || n.starts_with('.');
    for k in &upstream.pgp {
        if bad_key_name(&k.name) {
            ctx.err(
                None,
                format!(
                    "upstream's repo.yaml ({upstream_origin}) lists a key named {:?}, which is not a plain file name: mirrored, it would be written outside the keys folder and outside clients' key stores",
                    k.name
                ),
                Some("only letters, digits, '.', '_' and '-'; fix upstream's repo.yaml or pass a corrected copy with --upstream-repo-yaml".into()),
            );
        }
        if let Err(e) = crate::zoi::pgp::key_source(&k.key) {
            ctx.err(
                None,
                format!(
                    "upstream's repo.yaml ({upstream_origin}): key '{}': {e}",
                    k.name
                ),
                Some(
                    "fix upstream's repo.yaml or pass a corrected copy with --upstream-repo-yaml"
                        .into(),
                ),
            );
        }
    }
    // ---- trust: what signs the archives, and whether clients accept it
    let key_known = |n: &str| {
        upstream.pgp.iter().any(|k| k.name == n)
            || r_keys.iter().any(|k| k.name == n)
            || c_pgp.iter().any(|k| k.name == n)
            || is_fingerprint(n)
    };
    for t in b_trust.iter().flatten() {
        if !key_known(&t.value) {
            let mut names: Vec<&str> = upstream.pgp.iter().map(|k| k.name.as_str()).collect();
            names.extend(c_pgp.iter().map(|k| k.name.as_str()));
            ctx.err(
                t.span.clone(),
                format!("`binaries.trust`: '{}' is not a key upstream's repo.yaml, [[registry.keys]] or [[client.pgp]] declares, nor a fingerprint", t.value),
                Some(format!("known keys: {}", names.join(", "))),
            );
        }
    }
    check_trust(
        ctx,
        &TrustInputs {
            upstream: &upstream,
            authorities: &r_authorities,
            enforcement: system.signature_enforcement.as_ref(),
            enforcement_span: root
                .table
                .get("system")
                .and_then(|s| s.get("signature_enforcement"))
                .and_then(|s| s.span()),
            trust: b_trust.as_deref(),
            trust_span: b_trust_span.clone(),
            sign_key: b_sign_key.as_ref().map(|k| k.value.as_str()),
            signing_key: r_signing.as_ref().map(|k| k.value.as_str()),
            upstream_origin: &upstream_origin.to_string(),
        },
    );

    // Everything required is present and valid from here on, or we have
    // diagnostics and return None.
    if !ctx.diags.is_empty() {
        return None;
    }
    let (e_name, e_version, e_desc, e_tier, m_name, m_email, r_url, b_url) = (
        e_name?, e_version?, e_desc?, e_tier?, m_name?, m_email?, r_url?, b_url?,
    );

    let declared: Vec<RepoEntry> = r_tiers.into_iter().map(|(t, _)| t).collect();
    let tiers = c_tiers.unwrap_or_else(|| {
        upstream
            .active_tiers()
            .into_iter()
            .chain(declared.iter().filter(|t| t.active).map(|t| t.name.clone()))
            .collect()
    });

    Some(Spec {
        file: ctx.file.to_path_buf(),
        extension: Extension {
            name: e_name.value,
            version: semver::Version::parse(&e_version.value).ok()?,
            description: e_desc.value,
            license: e_license.map_or_else(|| "LicenseRef-Proprietary".to_string(), |l| l.value),
            tier: e_tier.value,
            maintainer_name: m_name.value,
            maintainer_email: m_email.value,
        },
        registry: Registry {
            url: r_url.value,
            mirrors: r_mirrors,
            upstream: r_upstream.map_or_else(
                || {
                    upstream
                        .main_git()
                        .unwrap_or(upstream::UPSTREAM_GIT)
                        .to_string()
                },
                |u| u.value,
            ),
            branch: r_branch.map_or_else(|| DEFAULT_BRANCH.to_string(), |b| b.value),
            handle: r_handle.map_or_else(|| DEFAULT_HANDLE.to_string(), |h| h.value),
            authorities: r_authorities.into_iter().map(|a| a.value).collect(),
            name: r_name.map_or_else(|| upstream.name.clone(), |n| n.value),
            description: r_desc.map_or_else(|| upstream.description.clone(), |d| d.value),
            advisory_prefix: r_prefix
                .map(|p| p.value)
                .or_else(|| upstream.advisory_prefix.clone()),
            signing_key: r_signing.map(|s| s.value),
            tiers: declared,
            keys: r_keys,
        },
        binaries: Binaries {
            url: b_url.value.trim_end_matches('/').to_string(),
            layout: b_layout.map_or_else(
                || DEFAULT_LAYOUT.to_string(),
                |l| l.value.trim_matches('/').to_string(),
            ),
            format: b_format,
            // By default, `.sig` links follow what is signed: upstream's
            // archives when it declares keys, or ours when we re-sign.
            signatures: b_sigs.unwrap_or(!upstream.pgp.is_empty() || b_sign_key.is_some()),
            mirrors: b_mirrors,
            platforms: b_platforms,
            keys_dir: b_keys_dir.map_or_else(
                || "keys".to_string(),
                |k| k.value.trim_matches('/').to_string(),
            ),
            trust: b_trust.map(values),
            sign_key: b_sign_key.map(|k| k.value),
            allow_unsigned: b_allow_unsigned,
            storage: b_storage,
        },
        client: Client {
            tiers,
            repo_add: c_repo_add,
            cache_mirrors: c_cache,
            pkg_dirs: c_pkg_dirs,
            offline: c_offline,
            registries: c_registries,
            git_repos: c_git,
            pgp: c_pgp,
        },
        system,
        setup,
        upstream,
        upstream_origin,
    })
}

struct TrustInputs<'a> {
    upstream: &'a RepoYaml,
    authorities: &'a [Sp<String>],
    enforcement: Option<&'a SignatureEnforcement>,
    enforcement_span: Option<Range<usize>>,
    trust: Option<&'a [Sp<String>]>,
    trust_span: Option<Range<usize>>,
    sign_key: Option<&'a str>,
    signing_key: Option<&'a str>,
    upstream_origin: &'a str,
}

/// Hex digits of a key id or fingerprint, upper-case.
fn key_hex(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .trim_start_matches("0x")
        .to_uppercase()
}

/// Refuses a spec whose clients verify archives (authorities, or enforced
/// trusted keys) against keys that cannot verify the archives it mirrors:
/// every `zoi install` would fail "No valid signature found from any
/// trusted key".
fn check_trust(ctx: &mut Ctx<'_>, t: &TrustInputs<'_>) {
    let registry: Vec<String> = t.authorities.iter().map(|a| a.value.clone()).collect();
    if registry.is_empty() && t.enforcement.is_none_or(|e| !e.enable) {
        if let Some(span) = &t.trust_span {
            ctx.err(
                Some(span.clone()),
                "`binaries.trust` has no effect: clients verify archive signatures only with registry.authorities or system.signature_enforcement",
                Some("set registry.authorities, or remove binaries.trust".into()),
            );
        }
        return;
    }
    let upstream_names: Vec<&str> = t.upstream.pgp.iter().map(|k| k.name.as_str()).collect();
    let trust: Vec<String> = match t.trust {
        Some(list) => list.iter().map(|s| s.value.clone()).collect(),
        None => upstream_names.iter().map(|s| s.to_string()).collect(),
    };
    // What Zoi verifies archives against: enforced keys win over
    // authorities (`download_and_cache_archive`).
    let (verifying, span, what) = match t.enforcement.filter(|e| e.enable) {
        Some(e) => (
            e.trusted_keys.clone(),
            t.enforcement_span.clone(),
            "system.signature_enforcement.trusted_keys",
        ),
        None => {
            let mut all = registry.clone();
            all.extend(trust.iter().cloned());
            (
                all,
                t.trust_span
                    .clone()
                    .or_else(|| t.authorities.first().and_then(|a| a.span.clone())),
                if t.trust.is_some() {
                    "registry.authorities + binaries.trust"
                } else {
                    "registry.authorities"
                },
            )
        }
    };
    let trusts_upstream = verifying
        .iter()
        .any(|k| upstream_names.contains(&k.as_str()));
    let trusts_resign = t.sign_key.is_some_and(|sk| {
        let sk = key_hex(sk);
        verifying.iter().any(|k| {
            let k = key_hex(k);
            (is_fingerprint(&k) && (sk.ends_with(&k) || k.ends_with(&sk)))
                || (t.signing_key.is_some_and(|s| key_hex(s) == sk) && registry.contains(&k))
        }) || (t.signing_key.is_some_and(|s| key_hex(s) == sk)
            && verifying.iter().any(|k| registry.contains(k)))
    });
    if trusts_upstream || trusts_resign {
        return;
    }
    if upstream_names.is_empty() && t.sign_key.is_none() {
        ctx.err(
            span,
            format!(
                "clients verify every archive ({what}), but upstream ({}) declares no signing keys, so its archives are unsigned and every `zoi install` would fail",
                t.upstream_origin
            ),
            Some("re-sign the archives with binaries.sign_key (a key clients trust), or drop registry.authorities".into()),
        );
        return;
    }
    let signers = if t.sign_key.is_some() {
        format!(
            "upstream's {} or the re-signing key binaries.sign_key",
            upstream_names.join(", ")
        )
    } else {
        format!("upstream's key {}", upstream_names.join(", "))
    };
    ctx.err(
        span,
        format!(
            "clients would verify archives against {} ({what}), which cannot verify the mirrored archives: they are signed by {signers}; every `zoi install` would fail \"No valid signature found from any trusted key\"",
            if verifying.is_empty() { "no key".to_string() } else { verifying.join(", ") },
        ),
        Some(match upstream_names.first() {
            Some(k) => format!("add '{k}' (upstream's key) to binaries.trust, or re-sign with binaries.sign_key and trust that key"),
            None => "trust the key binaries.sign_key re-signs with".into(),
        }),
    );
}

fn spec_dir_of(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls() {
        for ok in [
            "https://git.example.com/z.git",
            "git://127.0.0.1:9418/z.git",
            "ssh://git@h/z.git",
            "git@h:z/z.git",
            "file:///srv/z.git",
        ] {
            assert_eq!(git_url_problem(ok), None, "{ok}");
        }
        for bad in [
            "ftp://h/z",
            "not a url",
            "https://u:p@h/z.git",
            "/srv/z.git",
        ] {
            assert!(git_url_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn http_urls() {
        assert_eq!(http_url_problem("https://bin.example.com/pkgs"), None);
        assert!(http_url_problem("ftp://bin.example.com").is_some());
        assert!(http_url_problem("https://user:pw@bin.example.com").is_some());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("descripton", &EXTENSION_KEYS).as_deref(),
            Some("description")
        );
        assert_eq!(suggest("zzz", &EXTENSION_KEYS), None);
    }
}
