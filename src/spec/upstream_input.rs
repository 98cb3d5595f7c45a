//! The upstream `repo.yaml` a spec is read against (it says which tiers
//! and keys exist, and gives the registry's defaults).
//!
//! Rules, in order: `--upstream-repo-yaml FILE` (or given bytes) wins over
//! `registry.upstream_repo_yaml` (a path relative to the spec), which wins
//! over the built-in description of Zoidberg. A file that cannot be read
//! or is not a Zoi repo.yaml is a diagnostic (a parse error at its own
//! file, line and column), and reading goes on with the built-in one so
//! every other problem is still reported.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::reader::{Ctx, Sp};
use super::{UpstreamInput, UpstreamOrigin};
use crate::error::Diagnostic;
use crate::zoi::repo::RepoYaml;
use crate::zoi::upstream;

pub(super) fn read(
    ctx: &mut Ctx<'_>,
    input: &UpstreamInput,
    spec_setting: Option<&Sp<String>>,
) -> (RepoYaml, UpstreamOrigin) {
    let spec_dir = ctx.file.parent().map(Path::to_path_buf).unwrap_or_default();
    let path: Option<(PathBuf, Option<Range<usize>>)> = match input {
        UpstreamInput::File(p) => Some((p.clone(), None)),
        UpstreamInput::Bytes { .. } => None,
        UpstreamInput::Auto => spec_setting.map(|p| (spec_dir.join(&p.value), p.span.clone())),
    };
    let origin = match (&path, input) {
        (Some((p, _)), _) => UpstreamOrigin::File(p.clone()),
        (None, UpstreamInput::Bytes { origin, .. }) => UpstreamOrigin::Given(origin.clone()),
        (None, _) => UpstreamOrigin::BuiltIn,
    };
    let repo = match &path {
        None => match input {
            UpstreamInput::Bytes { origin, bytes } => {
                match RepoYaml::parse(&String::from_utf8_lossy(bytes)) {
                    Ok(r) => r,
                    Err(e) => {
                        ctx.err(
                            None,
                            format!(
                                "upstream's repo.yaml ({origin}) is not a valid Zoi repo.yaml: {e}"
                            ),
                            Some("pass a good copy with --upstream-repo-yaml FILE".into()),
                        );
                        upstream::zoidberg()
                    }
                }
            }
            _ => upstream::zoidberg(),
        },
        Some((p, span)) => read_file(ctx, p, span.clone()),
    };
    (repo, origin)
}

fn read_file(ctx: &mut Ctx<'_>, p: &Path, span: Option<Range<usize>>) -> RepoYaml {
    let text = match std::fs::read_to_string(p) {
        Ok(t) => t,
        Err(e) => {
            ctx.err(
                span,
                format!("cannot read upstream repo.yaml {}: {e}", p.display()),
                Some(
                    "give the path of a copy of upstream's repo.yaml, relative to mirror.toml"
                        .into(),
                ),
            );
            return upstream::zoidberg();
        }
    };
    match RepoYaml::parse(&text) {
        Ok(r) => r,
        Err(e) => {
            let loc = e.location();
            ctx.diags.push(Diagnostic {
                file: p.to_path_buf(),
                line: loc.as_ref().map_or(1, |l| l.line()),
                column: loc.as_ref().map_or(1, |l| l.column()),
                message: format!("upstream repo.yaml is not a valid Zoi repo.yaml: {e}"),
                hint: Some("it needs at least `name` and `description`, as Zoi requires".into()),
            });
            upstream::zoidberg()
        }
    }
}
