//! Loading `mirror.toml`: the file, its TOML syntax, then each section
//! in turn and the checks across them, collecting every problem.
//!
//! Only when no diagnostic was recorded is a [`Spec`] returned; otherwise
//! one `spec_invalid` failure lists them all, sorted by file, line and
//! column (a stable sort: problems at the same place keep the order they
//! were found in, which is the order of the calls in [`read`]).

use std::path::Path;

use toml_edit::Table;

use super::reader::{Ctx, Sec};
use super::sections::{binaries, client, extension, registry, setup, system};
use super::{Spec, UpstreamInput, upstream_input, validate};
use crate::error::{Diagnostic, ErrorKind, Failure, fail};

const TOP_KEYS: [&str; 6] = [
    "extension",
    "registry",
    "binaries",
    "client",
    "system",
    "setup",
];

/// Loads and validates a spec file.
pub fn load(path: &Path, upstream: &UpstreamInput) -> anyhow::Result<Spec> {
    // Missing or a directory: spec_missing (exit 2); unreadable: io (3).
    let bytes = crate::fsutil::read_input(
        "spec file",
        path,
        "mirror.toml",
        ErrorKind::SpecMissing,
        "create one with `zoi-mirror init`, or pass its path with -c",
    )?;
    let src = match String::from_utf8(bytes) {
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
    Failure::new(
        ErrorKind::SpecInvalid,
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

    let extension = extension::read(ctx, &root);
    let registry = registry::read(ctx, &root);
    let binaries = binaries::read(ctx, &root);
    // Needed to know which tiers and keys exist.
    let (upstream, upstream_origin) =
        upstream_input::read(ctx, upstream_input, registry.upstream_repo_yaml.as_ref());
    let tiers = validate::tiers(ctx, &upstream, &registry.tiers, extension.tier.as_ref());
    let client = client::read(ctx, &root);
    validate::client_tiers(
        ctx,
        &tiers,
        client.tiers.as_deref(),
        client.repo_add.as_deref(),
    );
    validate::authorities(ctx, &registry.authorities, &client.pgp, &upstream);
    let system = system::read(ctx, &root);
    let setup = setup::read(ctx, &root);

    validate::upstream_keys(ctx, &upstream, &upstream_origin);
    validate::trust_names(
        ctx,
        binaries.trust.as_deref(),
        &upstream,
        &registry.keys,
        &client.pgp,
    );
    validate::check_trust(
        ctx,
        &validate::TrustInputs {
            upstream: &upstream,
            authorities: &registry.authorities,
            enforcement: system.signature_enforcement.as_ref(),
            enforcement_span: system::enforcement_span(&root),
            trust: binaries.trust.as_deref(),
            trust_span: binaries.trust_span.clone(),
            sign_key: binaries.sign_key.as_ref().map(|k| k.value.as_str()),
            signing_key: registry.signing_key.as_ref().map(|k| k.value.as_str()),
            upstream_origin: &upstream_origin.to_string(),
        },
    );

    // Everything required is present and valid from here on, or we have
    // diagnostics and return None.
    if !ctx.diags.is_empty() {
        return None;
    }
    let extension = extension.finish()?;
    let registry = registry.finish(&upstream)?;
    let binaries = binaries.finish(&upstream)?;
    let client = client.finish(|| {
        upstream
            .active_tiers()
            .into_iter()
            .chain(
                registry
                    .tiers
                    .iter()
                    .filter(|t| t.active)
                    .map(|t| t.name.clone()),
            )
            .collect()
    });
    Some(Spec {
        file: ctx.file.to_path_buf(),
        extension,
        registry,
        binaries,
        client,
        system,
        setup,
        upstream,
        upstream_origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostics(src: &str) -> Vec<(usize, usize, String)> {
        let err = super::load_str(Path::new("mirror.toml"), src, &UpstreamInput::Auto)
            .expect_err("the spec is invalid");
        let failure = err.downcast_ref::<Failure>().expect("a Failure");
        failure
            .diagnostics
            .iter()
            .map(|d| (d.line, d.column, d.message.clone()))
            .collect()
    }

    /// Problems at the same place keep the order the sections are read in.
    #[test]
    fn missing_tables_are_reported_in_section_order() {
        let d = diagnostics("");
        let at_start: Vec<&str> = d
            .iter()
            .filter(|(l, c, _)| (*l, *c) == (1, 1))
            .map(|(_, _, m)| m.as_str())
            .collect();
        assert_eq!(
            at_start,
            [
                "missing required table [extension]",
                "missing required table [registry]",
                "missing required table [binaries]",
            ]
        );
    }

    /// Every problem is reported at once, sorted by line and column.
    #[test]
    fn problems_from_several_sections_come_sorted() {
        let src = "[extension]\nname = \"Bad Name\"\nversion = \"1\"\n\n[registry]\nurl = \"ftp://h/z\"\n\n[binaries]\nurl = \"https://b/{os}\"\nformat = \"tar\"\n";
        let d = diagnostics(src);
        let mut sorted = d.clone();
        sorted.sort_by_key(|(l, c, _)| (*l, *c));
        assert_eq!(d, sorted);
        for (line, needle) in [
            (2, "not a valid Zoi package name"),
            (3, "not a semantic version"),
            (6, "`registry.url`"),
            (9, "contains a placeholder"),
            (10, "unknown archive format 'tar'"),
        ] {
            assert!(
                d.iter().any(|(l, _, m)| *l == line && m.contains(needle)),
                "line {line}: {needle} in {d:#?}"
            );
        }
    }
}
