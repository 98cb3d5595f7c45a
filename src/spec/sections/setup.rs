//! `[setup]`: where the bundle is published and which `zoi-mirror`
//! executables the one-command setup scripts may download.
//!
//! Rules: `url` is required and an http(s) URL; it is kept normalised
//! (percent-encoded, no trailing slash) as a client will request it, since
//! that exact text is pinned into the setup scripts. Each `tools` key is a
//! Zoi platform and its value the path of an existing file, relative to
//! the spec's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::spec::Setup;
use crate::spec::reader::{Ctx, Sec};
use crate::spec::urls::http_url_problem;
use crate::zoi::platform::Platform;

const KEYS: [&str; 2] = ["url", "tools"];

/// `[setup]`, when present and its `url` usable.
pub(in crate::spec) fn read(ctx: &mut Ctx<'_>, root: &Sec<'_>) -> Option<Setup> {
    let st = root.sub(ctx, "setup")?;
    st.check_keys(ctx, &KEYS);
    let url = st.req_str(ctx, "url", "the base URL the bundle directory is published under, e.g. \"https://bin.example.com/zoi-mirror\"");
    if let Some(u) = &url
        && let Some(p) = http_url_problem(&u.value)
    {
        ctx.err(u.span.clone(), format!("`setup.url`: {p}"), None);
    }
    let mut tools = BTreeMap::new();
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
    url.and_then(|u| url::Url::parse(&u.value).ok())
        .map(|u| Setup {
            url: u.as_str().trim_end_matches('/').to_string(),
            tools,
        })
}

fn spec_dir_of(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}
