//! Opening a bundle someone else built: from a directory or an http(s) URL,
//! verified before anything in it is used.
//!
//! Trust starts at `bundle.json`: its own SHA-512 can be pinned (`--sha512`,
//! which the one-command setup scripts do), and it pins every other file.
//! A file is handed out only after its bytes match, so a tampered bundle can
//! never reach a user's config.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::manifest::{self, Manifest, sha512_hex};
use crate::error::{ErrorKind, Failure, fail};

/// Where a bundle comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Dir(PathBuf),
    Url(url::Url),
}

impl Source {
    /// A directory (a path or a `file://` URL) or an http(s) URL; any
    /// other URL scheme is a usage error ([`crate::net::source`]).
    pub fn parse(s: &str) -> Result<Source, Failure> {
        Ok(match crate::net::source::parse("bundle", s)? {
            crate::net::source::Input::Url(mut u) => {
                if !u.path().ends_with('/') {
                    let p = format!("{}/", u.path());
                    u.set_path(&p);
                }
                Source::Url(u)
            }
            crate::net::source::Input::Path(p) => Source::Dir(p),
        })
    }

    pub fn display(&self) -> String {
        match self {
            Source::Dir(d) => d.display().to_string(),
            Source::Url(u) => crate::net::redact::redact(u.as_str()),
        }
    }
}

/// A bundle whose `bundle.json` has been read and (optionally) pinned.
#[derive(Debug)]
pub struct Loaded {
    pub source: Source,
    /// A local directory holding the files (the bundle dir, or a temp copy
    /// of a downloaded bundle).
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub manifest: Manifest,
    pub manifest_sha512: String,
    /// `manifest.extension.version`, checked to be a semantic version.
    version: semver::Version,
    /// What the caller should tell the user (a bundle over plain http with
    /// no pinned hash); the library never prints.
    pub warnings: Vec<String>,
    /// For URL bundles: members are downloaded when first used (a bundle
    /// may carry large `zoi-mirror` binaries that `apply` never needs).
    http: crate::net::client::Options,
}

fn bad(kind: ErrorKind, msg: String) -> Failure {
    Failure::new(kind, msg)
}

/// Opens a bundle. With `pin`, `bundle.json` must have that SHA-512.
/// Downloads (for URLs) go into a temp dir first; nothing is used until
/// verified.
pub fn open(
    source: Source,
    pin: Option<&str>,
    http: &crate::net::client::Options,
) -> Result<Loaded> {
    // A malformed pin is bad input, not a mismatch: nothing could match it.
    if let Some(pin) = pin
        && (pin.len() != 128 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return fail(
            bad(
                ErrorKind::Usage,
                format!(
                    "--sha512 {:?} is not a SHA-512 (128 hexadecimal digits)",
                    crate::output::escape_controls(pin)
                ),
            )
            .hint(
                "copy the SHA-512 of bundle.json from the setup script or `sha512sum bundle.json`",
            ),
        );
    }
    let (dir, tmp) = match &source {
        Source::Dir(d) => {
            bundle_dir(d)?;
            (d.clone(), None)
        }
        Source::Url(_) => {
            let t = tempfile::Builder::new()
                .prefix("zoi-mirror-bundle.")
                .tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };

    let manifest_bytes = match &source {
        Source::Dir(d) => read_manifest(d, &d.join(manifest::FILE_NAME))?,
        Source::Url(u) => {
            let b = download(http, u, manifest::FILE_NAME)?;
            std::fs::write(dir.join(manifest::FILE_NAME), &b)?;
            b
        }
    };

    let manifest_sha512 = sha512_hex(&manifest_bytes);
    if let Some(pin) = pin
        && !pin.eq_ignore_ascii_case(&manifest_sha512)
    {
        return fail(
            Failure::new(
                ErrorKind::HashMismatch,
                format!(
                    "{} of {} has SHA-512 {manifest_sha512}, not the pinned {pin}",
                    manifest::FILE_NAME,
                    source.display()
                ),
            )
            .hint("the bundle changed since the hash was pinned, or it was tampered with; nothing was changed"),
        );
    }

    let (manifest, version) = parse_manifest(&manifest_bytes, &source)?;
    let mut warnings = Vec::new();
    if let Source::Url(u) = &source
        && u.scheme() == "http"
        && pin.is_none()
    {
        warnings.push(format!(
            "{} comes over plain http without --sha512: anyone on the network path could change it",
            source.display()
        ));
    }
    Ok(Loaded {
        source,
        dir,
        _tmp: tmp,
        manifest,
        manifest_sha512,
        version,
        warnings,
        http: http.clone(),
    })
}

/// The manifest of the bundle at `path` (its directory, or its
/// `bundle.json`), read and checked exactly as [`open`] checks it — format
/// version, extension name, the paths it lists, with the same errors — for
/// a command that needs only what the manifest says (`index --bundle`: the
/// layout and the archive format), not the files it pins.
pub fn manifest_at(path: &Path) -> Result<Manifest> {
    let (dir, file) = if path.is_file() {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (dir.to_path_buf(), path.to_path_buf())
    } else {
        bundle_dir(path)?;
        (path.to_path_buf(), path.join(manifest::FILE_NAME))
    };
    let bytes = read_manifest(&dir, &file)?;
    // The version is checked all the same (the same errors as apply).
    parse_manifest(&bytes, &Source::Dir(dir)).map(|(m, _version)| m)
}

/// A bundle directory must be one: a file, a symlink loop or a missing path
/// is no bundle, each said as it is.
fn bundle_dir(d: &Path) -> Result<()> {
    if d.is_dir() {
        return Ok(());
    }
    let what = match std::fs::metadata(d) {
        Ok(_) => "is not a directory".to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "not found".to_string(),
        Err(e) => format!("cannot be read: {e}"),
    };
    fail(
        bad(
            ErrorKind::BundleMissing,
            format!("bundle directory {} {what}", d.display()),
        )
        .hint(
            "pass the directory `zoi-mirror build` wrote (DIR/<name>-<version>) or its http(s) URL",
        ),
    )
}

/// The bytes of bundle `dir`'s manifest `file`.
fn read_manifest(dir: &Path, file: &Path) -> Result<Vec<u8>> {
    match std::fs::read(file) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(
            bad(
                ErrorKind::BundleInvalid,
                format!(
                    "{} has no {}: not a zoi-mirror bundle",
                    dir.display(),
                    manifest::FILE_NAME
                ),
            )
            .hint("pass the directory `zoi-mirror build` wrote (DIR/<name>-<version>)"),
        ),
        Err(e) => fail(crate::error::io_failure("read", file, &e)),
    }
}

/// The hint every malformed-bundle error carries.
const REBUILD_HINT: &str = "the bundle is damaged or was not written by `zoi-mirror build`: rebuild it (or fetch it again) and pass the directory build wrote, DIR/<name>-<version>; nothing was changed";

/// A malformed `bundle.json`, named by the bundle's path or URL.
fn malformed(source: &Source, what: String) -> Failure {
    bad(
        ErrorKind::BundleInvalid,
        format!("{} of {} {what}", manifest::FILE_NAME, source.display()),
    )
    .hint(REBUILD_HINT)
}

/// The manifest, and its extension's version parsed.
fn parse_manifest(bytes: &[u8], source: &Source) -> Result<(Manifest, semver::Version)> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        let html = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'<');
        let f = malformed(source, format!("is not valid JSON: {e}"));
        if html {
            f.hint("an HTML page (a login, error or directory page) answered instead of bundle.json: check the bundle URL, and that the server serves the file itself without a login")
        } else {
            f
        }
    })?;
    match value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
    {
        Some(v) if v == u64::from(manifest::FORMAT_VERSION) => {}
        Some(v) => {
            return fail(
                bad(
                    ErrorKind::BundleFormat,
                    format!(
                        "{} has bundle format version {v}; this zoi-mirror reads version {}",
                        source.display(),
                        manifest::FORMAT_VERSION
                    ),
                )
                .hint("use the zoi-mirror version that built the bundle, or rebuild the bundle with this one"),
            );
        }
        None => {
            return fail(malformed(source, "has no format_version".into()));
        }
    }
    let m: Manifest = serde_json::from_value(value)
        .map_err(|e| malformed(source, format!("is malformed: {e}")))?;
    for rel in m.files.keys() {
        safe_rel(rel, source)?;
    }
    // The name becomes a file name (the state) and a zoi argument.
    if let Some(why) = crate::zoi::names::package_name_problem(&m.extension.name) {
        return fail(malformed(
            source,
            format!("names the extension {:?}: {why}", m.extension.name),
        ));
    }
    // The version reaches the user's config (the header of a new file),
    // the state, Zoi's store path and the terminal. `build` writes the
    // spec's `extension.version`, a semantic version, and Zoi parses
    // extension versions as semver (`zoi update`, `zoi downgrade`): a
    // semver has no room for a line break, a `:` or a control character.
    let version = semver::Version::parse(&m.extension.version).map_err(|e| {
        malformed(
            source,
            format!(
                "gives extension.version {:?}, which is not a semantic version: {e}",
                m.extension.version
            ),
        )
        .hint("`zoi-mirror build` writes the spec's extension.version there, a semantic version such as 1.2.0: this bundle.json was changed after it was built, or not written by zoi-mirror. Rebuild the bundle (or fetch it again); nothing was changed")
    })?;
    Ok((m, version))
}

/// A bundle-relative path must stay inside the bundle.
fn safe_rel(rel: &str, source: &Source) -> Result<()> {
    let p = Path::new(rel);
    let ok = !rel.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        fail(malformed(
            source,
            format!("lists a file outside the bundle: {rel:?}"),
        ))
    }
}

fn download(http: &crate::net::client::Options, base: &url::Url, rel: &str) -> Result<Vec<u8>> {
    let url = base.join(rel)?;
    crate::net::client::fetch_blocking(http, &url).map_err(|e| {
        let shown = crate::net::redact::redact(url.as_str());
        Failure::new(
            ErrorKind::Download,
            format!("cannot download {shown}: {e:#}"),
        )
        .hint("check the bundle URL and that the host serves it")
        .into()
    })
}

impl Loaded {
    /// The bytes of bundle file `rel`, only if they match `bundle.json`.
    pub fn verified(&self, rel: &str) -> Result<Vec<u8>> {
        safe_rel(rel, &self.source)?;
        let Some(entry) = self.manifest.files.get(rel) else {
            return fail(malformed(&self.source, format!("does not list {rel}")));
        };
        let path = self.dir.join(rel);
        if let Source::Url(u) = &self.source
            && !path.exists()
        {
            let bytes = download(&self.http, u, rel)?;
            if let Some(p) = path.parent() {
                std::fs::create_dir_all(p)?;
            }
            std::fs::write(&path, bytes)?;
        }
        let bytes = std::fs::read(&path).map_err(|e| {
            malformed(&self.source, format!("lists {rel}, but it cannot be read: {e}")).hint(
                format!("{rel} is missing from the bundle directory or unreadable: copy the whole directory `zoi-mirror build` wrote, or rebuild it; nothing was changed"),
            )
        })?;
        let got = sha512_hex(&bytes);
        if got != entry.sha512 || bytes.len() as u64 != entry.size {
            return fail(
                Failure::new(
                    ErrorKind::HashMismatch,
                    format!(
                        "{} of {} has SHA-512 {got} ({} bytes), but {} says {} ({} bytes)",
                        rel,
                        self.source.display(),
                        bytes.len(),
                        manifest::FILE_NAME,
                        entry.sha512,
                        entry.size
                    ),
                )
                .hint("the bundle was modified after it was built; rebuild it or fetch it again. Nothing was changed"),
            );
        }
        Ok(bytes)
    }

    /// The path of a verified file (verifies it first).
    pub fn verified_path(&self, rel: &str) -> Result<PathBuf> {
        self.verified(rel)?;
        Ok(self.dir.join(rel))
    }

    /// The extension's name, checked to be a Zoi package name.
    pub fn name(&self) -> &str {
        &self.manifest.extension.name
    }

    /// The extension's version, checked to be a semantic version.
    pub fn version(&self) -> &semver::Version {
        &self.version
    }

    pub fn extension_file(&self) -> String {
        format!("{}.pkg.lua", self.manifest.extension.name)
    }
}
