//! `[binaries.storage]`: the binary host as S3-compatible object storage.
//!
//! Rules: `url` is an `s3://BUCKET/PREFIX` URL (a folder is `bin sync
//! --dest DIR`, not a spec setting); `endpoint` and `public_url` are
//! http(s) URLs; `region` is a non-blank string; `path_style` and
//! `allow_http` are booleans. Everything is optional.

use crate::spec::Storage;
use crate::spec::reader::{Ctx, Sec};
use crate::spec::urls::http_url_problem;

const KEYS: [&str; 6] = [
    "url",
    "endpoint",
    "region",
    "path_style",
    "allow_http",
    "public_url",
];

/// Reads `[binaries.storage]` under `bin` (the default when absent).
pub(in crate::spec) fn read(ctx: &mut Ctx<'_>, bin: &Sec<'_>) -> Storage {
    let mut storage = Storage::default();
    let Some(st) = bin.sub(ctx, "storage") else {
        return storage;
    };
    st.check_keys(ctx, &KEYS);
    if let Some(u) = st.nonempty_str(ctx, "url", "e.g. \"s3://zoi/pkgs\"") {
        match crate::storage::Dest::parse(std::path::Path::new(&u.value)) {
            Ok(crate::storage::Dest::S3(_)) => storage.url = Some(u.value.clone()),
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
        storage.s3.endpoint = Some(e.value.clone());
    }
    if let Some(pu) = st.nonempty_str(ctx, "public_url", "e.g. \"https://bin.example.com\"") {
        if let Some(p) = http_url_problem(&pu.value) {
            ctx.err(pu.span.clone(), format!("storage public_url: {p}"), None);
        }
        storage.s3.public_url = Some(pu.value.clone());
    }
    storage.s3.region = st
        .nonempty_str(ctx, "region", "e.g. \"us-east-1\"")
        .map(|r| r.value);
    storage.s3.path_style = st.bool(ctx, "path_style");
    storage.s3.allow_http = st.bool(ctx, "allow_http");
    storage
}
