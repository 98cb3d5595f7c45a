//! `[extension]`: the Zoi extension package the bundle is.
//!
//! Rules: the table is required; `name` (a valid Zoi package name),
//! `version` (semver), `description`, `tier` and `maintainer = { name,
//! email }` are required and non-blank; `email` contains `@`; `license`
//! is optional (default `LicenseRef-Proprietary`). Whether `tier` exists
//! is checked against upstream in [`crate::spec::validate`].

use crate::spec::Extension;
use crate::spec::reader::{Ctx, Sec, Sp};
use crate::zoi::names::package_name_problem;

pub(in crate::spec) const KEYS: [&str; 6] = [
    "name",
    "version",
    "description",
    "license",
    "tier",
    "maintainer",
];
const MAINTAINER_KEYS: [&str; 2] = ["name", "email"];

/// `[extension]` as written.
#[derive(Default)]
pub(in crate::spec) struct Raw {
    pub name: Option<Sp<String>>,
    pub version: Option<Sp<String>>,
    pub description: Option<Sp<String>>,
    pub license: Option<Sp<String>>,
    pub tier: Option<Sp<String>>,
    pub maintainer_name: Option<Sp<String>>,
    pub maintainer_email: Option<Sp<String>>,
}

pub(in crate::spec) fn read(ctx: &mut Ctx<'_>, root: &Sec<'_>) -> Raw {
    let ext = root.sub(ctx, "extension");
    if ext.is_none() && root.table.get("extension").is_none() {
        ctx.err(
            Some(0..0),
            "missing required table [extension]",
            Some("add [extension] with name, version, description, tier and maintainer".into()),
        );
    }
    let mut raw = Raw::default();
    let Some(ext) = &ext else {
        return raw;
    };
    ext.check_keys(ctx, &KEYS);
    raw.name = ext.req_str(
        ctx,
        "name",
        "a lowercase Zoi package name, e.g. \"acme-mirror\"",
    );
    if let Some(n) = &raw.name
        && let Some(problem) = package_name_problem(&n.value)
    {
        ctx.err(
            n.span.clone(),
            format!(
                "`extension.name` '{}' is not a valid Zoi package name: {problem}",
                n.value
            ),
            Some("use lowercase letters, digits, '.', '_' and '-', e.g. \"acme-mirror\"".into()),
        );
        raw.name = None;
    }
    raw.version = ext.req_str(ctx, "version", "a semantic version, e.g. \"1.0.0\"");
    if let Some(v) = &raw.version
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
        raw.version = None;
    }
    raw.description = ext.req_str(
        ctx,
        "description",
        "one line saying what the extension does",
    );
    raw.license = ext.nonempty_str(ctx, "license", "an SPDX license expression");
    raw.tier = ext.req_str(
        ctx,
        "tier",
        "the registry tier the extension is published in",
    );
    match ext.sub(ctx, "maintainer") {
        Some(m) => {
            m.check_keys(ctx, &MAINTAINER_KEYS);
            raw.maintainer_name = m.req_str(ctx, "name", "who maintains this extension");
            raw.maintainer_email = m.req_str(ctx, "email", "an address users can write to");
            if let Some(e) = &raw.maintainer_email
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
    raw
}

impl Raw {
    /// The section with defaults; `None` when a required value is missing
    /// (a diagnostic says which).
    pub(in crate::spec) fn finish(self) -> Option<Extension> {
        Some(Extension {
            name: self.name?.value,
            version: semver::Version::parse(&self.version?.value).ok()?,
            description: self.description?.value,
            license: self
                .license
                .map_or_else(|| "LicenseRef-Proprietary".to_string(), |l| l.value),
            tier: self.tier?.value,
            maintainer_name: self.maintainer_name?.value,
            maintainer_email: self.maintainer_email?.value,
        })
    }
}
