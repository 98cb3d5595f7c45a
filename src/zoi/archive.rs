//! Reading Zoi's pre-built archives (`.zpa`, legacy `.pkg.tar.zst`) in one
//! streaming pass, to derive the three metadata files Zoi fetches next to
//! them (see [`crate::zoi::metadata`]).
//!
//! One pass, because a binary host holds gigabytes and hashing is the cost:
//! the raw bytes are hashed (SHA-512) *as they are read*, on their way into
//! the zstd decoder, and the decoded tar is walked from the same stream. No
//! temporary files, no second read, and memory bounded by the buffers and
//! zstd's window (at most what Zoi's own decoder accepts), whatever the
//! archive's size.
//!
//! What each file holds, as `zoi package build` 1.29.4 writes it:
//!
//! - `.hash`: SHA-512 of every byte of the file. Tar stops reading at its
//!   end-of-archive marker, so the rest of the stream is drained and hashed
//!   too: the digest never depends on how much the tar reader needed.
//! - `.size`: `down` = the file's bytes; `install` = the sum of the sizes of
//!   the archive's regular files. Zoi sums the regular files of the staging
//!   directory it tars up, which are exactly the tar's regular-file entries
//!   (`manifest.json`, the `.pkg.lua`, `pool/*`, `manifest.sig`). A hard
//!   link counts the size of the file it links to, as it would once
//!   unpacked; symlinks and directories count nothing.
//! - `.files`: for a `.zpa`, from `manifest.json` (`PooledZpaManifest` v2):
//!   every file `dest`, symlink `link` and directory `path` + `/`, across all
//!   sub-packages and scopes. For a legacy `.pkg.tar.zst`, which has no
//!   manifest, from the tar itself: an entry `data/<root>/<rel>` (main
//!   package) or `data/<sub>/<root>/<rel>` (sub-package `<sub>`), with
//!   `<root>` one of `pkgstore`, `usrroot`, `usrhome`, becomes
//!   `${<root>}/<rel>` — the names Zoi records for what it installs from
//!   that layout — with a trailing `/` for directories, and symlinks under
//!   their own path. A first segment that is itself a root name is read as
//!   the main package, as Zoi's installer does (`data/pkgstore` is the main
//!   package's store even if a sub-package were called `pkgstore`). Entries
//!   outside `data/` (the `.pkg.lua`, say) are counted in `install` but not
//!   listed.
//!
//! Everything Zoi's installer would trip over is an [`ArchiveError`] with a
//! stable kind, so a caller indexing thousands of files can report each bad
//! one and carry on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::{self, BufReader, Read};

use serde::Deserialize;
use sha2::{Digest, Sha512};

use crate::zoi::metadata;

/// The first bytes of every zstd frame; Zoi's installer checks them.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Read size for the raw file. Measured, not guessed: the bytes the kernel
/// copies in are hashed straight away and then decoded, so the buffer has to
/// stay in the CPU's L2 cache next to zstd's window. On a 1 GB archive
/// (AMD EPYC, page cache warm) 16–64 KiB ran at `sha512sum`'s speed, while
/// 128 KiB was 15% and 1 MiB 12–20% slower; per-call overhead is already
/// negligible at 64 KiB.
pub const READ_BUFFER: usize = 64 << 10;

/// `manifest.json` is read into memory; anything larger than this is not a
/// manifest Zoi wrote (it holds one short line per installed path).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// The two archive names Zoi has used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `.zpa`, Zoi ≥ 1.23: pool + `manifest.json`.
    Zpa,
    /// `.pkg.tar.zst`, Zoi < 1.23: the `data/` layout.
    PkgTarZst,
}

impl ArchiveKind {
    /// The file-name extension, without the leading dot.
    pub fn extension(self) -> &'static str {
        match self {
            ArchiveKind::Zpa => "zpa",
            ArchiveKind::PkgTarZst => "pkg.tar.zst",
        }
    }

    /// The kind a file name says it is (by extension), if any.
    pub fn of_file_name(name: &str) -> Option<ArchiveKind> {
        [ArchiveKind::Zpa, ArchiveKind::PkgTarZst]
            .into_iter()
            .find(|k| {
                name.strip_suffix(k.extension())
                    .and_then(|stem| stem.strip_suffix('.'))
                    .is_some_and(|stem| !stem.is_empty())
            })
    }
}

/// Why Zoi would refuse to download an archive saved under `name`: it
/// accepts only `[A-Za-z0-9._-]` in archive file names.
pub fn file_name_problem(name: &str) -> Option<String> {
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .map(|c| {
            format!("'{c}' in the file name: Zoi accepts only A-Z, a-z, 0-9, '.', '_' and '-'")
        })
}

/// What one pass over an archive yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// SHA-512 of the whole file, lowercase hex.
    pub sha512: String,
    /// The file's size in bytes (`down`).
    pub down: u64,
    /// Sum of the regular files' sizes (`install`).
    pub install: u64,
    /// The `.files` paths, de-duplicated and byte-sorted.
    pub files: Vec<String>,
}

impl Summary {
    /// The `.hash` body for this archive saved as `file_name`.
    pub fn hash_body(&self, file_name: &str) -> String {
        metadata::hash_body(&self.sha512, file_name)
    }

    pub fn size_body(&self) -> String {
        metadata::size_body(self.down, self.install)
    }

    pub fn files_body(&self) -> String {
        metadata::files_body(self.files.iter().map(String::as_str))
    }
}

string_enum! {
    /// Why an archive could not be indexed. The kind strings are part of the
    /// JSON output and stable.
    pub enum ErrorKind {
        /// A zero-byte file.
        Empty = "empty",
        /// The file could not be opened or read.
        Unreadable = "unreadable",
        /// Does not start with the zstd magic `28 B5 2F FD`.
        NotZstd = "not_zstd",
        /// The zstd stream, or the tar inside it, ends early.
        Truncated = "truncated",
        /// The zstd decoder rejected the data (bad block, checksum, trailing
        /// garbage, a window larger than Zoi's decoder accepts).
        CorruptZstd = "corrupt_zstd",
        /// Valid zstd whose content is not a readable tar.
        CorruptTar = "corrupt_tar",
        /// A tar entry (or hard-link target) that is absolute or has a `..`
        /// component: unpacking it would write outside the target directory.
        PathEscape = "path_escape",
        /// A `.zpa` without `manifest.json` at its root.
        NoManifest = "no_manifest",
        /// A `manifest.json` Zoi cannot use: not JSON, not the v2 shape, or
        /// naming pool files the archive lacks.
        BadManifest = "bad_manifest",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ArchiveError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ArchiveError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ArchiveError {}

/// Reads an archive of `kind` from `reader` in one pass. `progress` is
/// called with the number of raw bytes consumed by each read.
pub fn read_archive<R: Read>(
    reader: R,
    kind: ArchiveKind,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, ArchiveError> {
    let mut tee = Tee {
        inner: reader,
        hasher: Sha512::new(),
        bytes: 0,
        error: None,
        progress,
    };

    let mut magic = [0u8; 4];
    let got = read_up_to(&mut tee, &mut magic).map_err(unreadable)?;
    if got == 0 {
        return Err(ArchiveError::new(
            ErrorKind::Empty,
            "the file is empty (0 bytes)",
        ));
    }
    if got < magic.len() || magic != ZSTD_MAGIC {
        return Err(ArchiveError::new(
            ErrorKind::NotZstd,
            format!(
                "not a zstd stream: starts with {} instead of the zstd magic 28 b5 2f fd",
                hex_bytes(&magic[..got])
            ),
        ));
    }

    // The magic is already hashed; the decoder still has to see it.
    let input = BufReader::with_capacity(READ_BUFFER, (&magic[..]).chain(tee));
    let decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(|e| {
        ArchiveError::new(
            ErrorKind::CorruptZstd,
            format!("cannot start a zstd decoder: {e}"),
        )
    })?;
    let mut tar = tar::Archive::new(Watch {
        inner: decoder,
        eof: false,
        error: None,
    });

    let walked = walk(&mut tar, kind);
    let mut watch = tar.into_inner();
    // Drain what tar did not need (its end-of-archive padding, and anything
    // after it): every byte has to reach the hasher, and a stream corrupt
    // past the tar's end is still a corrupt stream.
    let drained = walked.and_then(|w| Ok(io::copy(&mut watch, &mut io::sink()).map(|_| w)?));
    let mut tee = watch.inner.finish().into_inner().into_inner().1;
    let drained = drained.and_then(|w| Ok(io::copy(&mut tee, &mut io::sink()).map(|_| w)?));

    let walked = match drained {
        Ok(w) => w,
        Err(e) => {
            return Err(classify(
                e,
                tee.error.as_ref(),
                watch.error.as_ref(),
                watch.eof,
            ));
        }
    };
    let install = walked.install;
    let files = walked.files(kind)?;
    Ok(Summary {
        sha512: hex::encode(tee.hasher.finalize()),
        down: tee.bytes,
        install,
        files,
    })
}

/// Hashes and counts raw bytes as they are read.
struct Tee<'p, R> {
    inner: R,
    hasher: Sha512,
    bytes: u64,
    /// The first read error, kept because the decoder and tar re-wrap it.
    error: Option<io::Error>,
    progress: &'p mut dyn FnMut(u64),
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.bytes += n as u64;
                (self.progress)(n as u64);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted && self.error.is_none() {
                    self.error = Some(io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }
}

/// Remembers how the decoder ended, because tar reports a short or broken
/// stream with messages of its own.
struct Watch<D> {
    inner: D,
    eof: bool,
    error: Option<io::Error>,
}

impl<D: Read> Read for Watch<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted && self.error.is_none() {
                    self.error = Some(io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }
}

/// The root cause of a failed pass: the file, then zstd, then tar.
fn classify(
    err: WalkError,
    read_err: Option<&io::Error>,
    zstd_err: Option<&io::Error>,
    zstd_eof: bool,
) -> ArchiveError {
    if let Some(e) = read_err {
        return unreadable(io::Error::new(e.kind(), e.to_string()));
    }
    if let Some(e) = zstd_err {
        return if e.kind() == io::ErrorKind::UnexpectedEof {
            ArchiveError::new(
                ErrorKind::Truncated,
                "the zstd stream ends in the middle of a frame (a partial download or copy?)",
            )
        } else {
            ArchiveError::new(ErrorKind::CorruptZstd, format!("corrupt zstd data: {e}"))
        };
    }
    match err {
        WalkError::Archive(e) => e,
        WalkError::Io(e) if zstd_eof => ArchiveError::new(
            ErrorKind::Truncated,
            format!("the tar inside the zstd stream ends early: {e}"),
        ),
        WalkError::Io(e) => {
            ArchiveError::new(ErrorKind::CorruptTar, format!("not a readable tar: {e}"))
        }
    }
}

fn unreadable(e: io::Error) -> ArchiveError {
    ArchiveError::new(ErrorKind::Unreadable, format!("cannot read the file: {e}"))
}

enum WalkError {
    /// A verdict about the content, final.
    Archive(ArchiveError),
    /// An I/O error from tar, to be traced to its root cause.
    Io(io::Error),
}

impl From<io::Error> for WalkError {
    fn from(e: io::Error) -> Self {
        WalkError::Io(e)
    }
}

/// What the tar walk collects.
#[derive(Default)]
struct Walked {
    install: u64,
    /// `.zpa`: the last `manifest.json` (tar extraction keeps the last).
    manifest: Option<Vec<u8>>,
    /// `.zpa`: the names under `pool/`.
    pool: BTreeSet<String>,
    /// `.pkg.tar.zst`: the `.files` paths.
    legacy: BTreeSet<String>,
}

impl Walked {
    fn files(self, kind: ArchiveKind) -> Result<Vec<String>, ArchiveError> {
        match kind {
            ArchiveKind::PkgTarZst => Ok(self.legacy.into_iter().collect()),
            ArchiveKind::Zpa => {
                let bytes = self.manifest.ok_or_else(|| {
                    ArchiveError::new(
                        ErrorKind::NoManifest,
                        "no manifest.json at the root of the .zpa: Zoi cannot map its files",
                    )
                })?;
                manifest_files(&bytes, &self.pool)
            }
        }
    }
}

fn walk<R: Read>(tar: &mut tar::Archive<R>, kind: ArchiveKind) -> Result<Walked, WalkError> {
    let mut w = Walked::default();
    // Sizes of regular files by path, so a hard link counts its target.
    let mut sizes: HashMap<String, u64> = HashMap::new();
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry_path(&entry.path_bytes()).map_err(WalkError::Archive)?;
        let ty = entry.header().entry_type();
        let regular = ty.is_file() || ty.is_gnu_sparse();
        let link_target = if ty.is_hard_link() {
            let target = entry.link_name_bytes().unwrap_or_default();
            Some(entry_path(&target).map_err(WalkError::Archive)?)
        } else {
            None
        };
        let size = if regular {
            entry.size()
        } else {
            link_target
                .as_ref()
                .and_then(|t| sizes.get(t).copied())
                .unwrap_or(0)
        };
        w.install += size;
        if regular || link_target.is_some() {
            sizes.insert(path.clone(), size);
        }

        match kind {
            ArchiveKind::Zpa => {
                if path == "manifest.json" && regular {
                    if entry.size() > MAX_MANIFEST_BYTES {
                        return Err(WalkError::Archive(ArchiveError::new(
                            ErrorKind::BadManifest,
                            format!(
                                "manifest.json is {} bytes, more than the {MAX_MANIFEST_BYTES} a manifest can plausibly need",
                                entry.size()
                            ),
                        )));
                    }
                    let mut buf = Vec::with_capacity(entry.size() as usize);
                    entry.read_to_end(&mut buf)?;
                    w.manifest = Some(buf);
                } else if let Some(name) = path.strip_prefix("pool/")
                    && (regular || link_target.is_some())
                {
                    w.pool.insert(name.to_string());
                }
            }
            ArchiveKind::PkgTarZst => {
                if let Some(listed) = legacy_path(&path, ty.is_dir()) {
                    w.legacy.insert(listed);
                }
            }
        }
    }
    Ok(w)
}

/// An entry's path relative to the archive root (`./` and empty segments
/// dropped), or an error when it would unpack outside of it.
fn entry_path(raw: &[u8]) -> Result<String, ArchiveError> {
    let text = String::from_utf8_lossy(raw);
    let escape = |why: &str| {
        Err(ArchiveError::new(
            ErrorKind::PathEscape,
            format!(
                "tar entry '{text}' {why}: unpacking it would write outside the target directory"
            ),
        ))
    };
    if text.starts_with('/') {
        return escape("is an absolute path");
    }
    let mut parts = Vec::new();
    for seg in text.split('/') {
        match seg {
            "" | "." => {}
            ".." => return escape("has a '..' component"),
            s => parts.push(s),
        }
    }
    Ok(parts.join("/"))
}

/// The roots of the legacy `data/` layout and the variable Zoi names them by.
const LEGACY_ROOTS: [&str; 3] = ["pkgstore", "usrroot", "usrhome"];

/// `data/[<sub>/]<root>/<rel>` → `${<root>}/<rel>` (plus `/` for a
/// directory); `None` for anything else, including the roots themselves.
fn legacy_path(path: &str, is_dir: bool) -> Option<String> {
    let rest = path.strip_prefix("data/")?;
    let (first, after) = rest.split_once('/')?;
    let (root, rel) = if LEGACY_ROOTS.contains(&first) {
        (first, after)
    } else {
        let (second, rel) = after.split_once('/')?;
        if !LEGACY_ROOTS.contains(&second) {
            return None;
        }
        (second, rel)
    };
    if rel.is_empty() {
        return None;
    }
    Some(if is_dir {
        format!("${{{root}}}/{rel}/")
    } else {
        format!("${{{root}}}/{rel}")
    })
}

/// Zoi 1.29.4's `PooledZpaManifest` (zoi-core `types.rs`), as far as the
/// `.files` list needs it. Required fields are required here too, so that a
/// manifest we accept is one Zoi's `serde_json::from_str` accepts; unknown
/// fields are ignored, as serde does for Zoi. The `version` string is not
/// checked, because Zoi does not check it either.
#[derive(Deserialize)]
struct PooledManifest {
    #[allow(dead_code)]
    version: String,
    pool: BTreeMap<String, PoolFile>,
    mappings: BTreeMap<String, SubPackageMapping>,
}

#[derive(Deserialize)]
struct PoolFile {
    #[allow(dead_code)]
    size: u64,
}

#[derive(Deserialize)]
struct SubPackageMapping {
    scopes: BTreeMap<Scope, ScopeMapping>,
}

/// Zoi's `Scope` enum: a scope key outside these three fails Zoi's parse.
#[derive(Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
enum Scope {
    User,
    System,
    Project,
}

#[derive(Deserialize)]
struct ScopeMapping {
    #[serde(default)]
    files: Vec<MappedFile>,
    #[serde(default)]
    symlinks: Vec<MappedSymlink>,
    #[serde(default)]
    dirs: Vec<MappedDir>,
}

#[derive(Deserialize)]
struct MappedFile {
    dest: String,
    hash: String,
    #[allow(dead_code)]
    mode: u32,
}

#[derive(Deserialize)]
struct MappedSymlink {
    link: String,
    #[allow(dead_code)]
    target: String,
}

#[derive(Deserialize)]
struct MappedDir {
    path: String,
}

/// The `.files` set of a `.zpa`, exactly as `zoi package build` derives it
/// from the manifest. `pool` is what the archive holds under `pool/`: a file
/// mapped from a pool entry the archive lacks cannot be installed.
fn manifest_files(bytes: &[u8], pool: &BTreeSet<String>) -> Result<Vec<String>, ArchiveError> {
    let bad = |msg: String| ArchiveError::new(ErrorKind::BadManifest, msg);
    let manifest: PooledManifest = serde_json::from_slice(bytes).map_err(|e| {
        bad(format!(
            "manifest.json is not a Zoi v2 pooled manifest: {e}"
        ))
    })?;
    let mut out = BTreeSet::new();
    for (sub, mapping) in &manifest.mappings {
        for scope in mapping.scopes.values() {
            for f in &scope.files {
                if !manifest.pool.contains_key(&f.hash) || !pool.contains(&f.hash) {
                    return Err(bad(format!(
                        "manifest.json maps '{}'{} to pool entry '{}', which the archive does not contain",
                        f.dest,
                        sub_label(sub),
                        f.hash
                    )));
                }
                out.insert(f.dest.clone());
            }
            for s in &scope.symlinks {
                out.insert(s.link.clone());
            }
            for d in &scope.dirs {
                let mut p = d.path.clone();
                if !p.ends_with('/') {
                    p.push('/');
                }
                out.insert(p);
            }
        }
    }
    // Zoi installs `dest` where it says: outside its roots is a path escape,
    // exactly like a `../` tar entry.
    if let Some((p, why)) = out
        .iter()
        .find_map(|p| super::metadata::install_path_problem(p).map(|w| (p, w)))
    {
        return Err(ArchiveError::new(
            ErrorKind::PathEscape,
            format!(
                "manifest.json installs {p:?}, which {why}: installing it would write outside Zoi's store"
            ),
        ));
    }
    // One path per line: a newline inside a path would forge a second one.
    if let Some(p) = out.iter().find(|p| p.contains(['\n', '\r'])) {
        return Err(bad(format!(
            "manifest.json has a path with a line break ({p:?}); it cannot be listed in .files"
        )));
    }
    Ok(out.into_iter().collect())
}

fn sub_label(sub: &str) -> String {
    if sub.is_empty() {
        String::new()
    } else {
        format!(" (sub-package '{sub}')")
    }
}

fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn hex_bytes(b: &[u8]) -> String {
    if b.is_empty() {
        return "nothing".into();
    }
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar built in memory: (path, content or None for a directory).
    fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, content) in entries {
            let mut h = tar::Header::new_gnu();
            match content {
                Some(c) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(c.len() as u64);
                    h.set_mode(0o644);
                    b.append_data(&mut h, path, *c).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    b.append_data(&mut h, path, io::empty()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn zst(raw: &[u8]) -> Vec<u8> {
        zstd::encode_all(raw, 3).unwrap()
    }

    fn read(bytes: &[u8], kind: ArchiveKind) -> Result<Summary, ArchiveError> {
        read_archive(bytes, kind, &mut |_| {})
    }

    const MANIFEST: &str = r#"{"version":"2","pool":{"sha256-aa":{"size":3}},
        "mappings":{"":{"scopes":{"user":{"files":[{"dest":"${pkgstore}/bin/t","hash":"sha256-aa","mode":493}],
        "dirs":[{"path":"${pkgstore}/bin"}],"extra":1}}},
        "doc":{"scopes":{"system":{"symlinks":[{"link":"${usrroot}/x","target":"y"}],"dirs":[{"path":"${pkgstore}/d/"}]}}}},
        "future":true}"#;

    #[test]
    fn zpa_summary() {
        let raw = tar_of(&[
            ("./", None),
            ("pool", None),
            ("pool/sha256-aa", Some(b"abc")),
            ("t.pkg.lua", Some(b"-- lua\n")),
            ("manifest.json", Some(MANIFEST.as_bytes())),
        ]);
        let z = zst(&raw);
        let s = read(&z, ArchiveKind::Zpa).unwrap();
        assert_eq!(s.sha512, hex::encode(Sha512::digest(&z)));
        assert_eq!(s.down, z.len() as u64);
        assert_eq!(s.install, 3 + 7 + MANIFEST.len() as u64);
        assert_eq!(
            s.files_body(),
            "${pkgstore}/bin/\n${pkgstore}/bin/t\n${pkgstore}/d/\n${usrroot}/x"
        );
    }

    #[test]
    fn legacy_summary() {
        let raw = tar_of(&[
            ("data", None),
            ("data/pkgstore", None),
            ("data/pkgstore/bin", None),
            ("data/pkgstore/bin/t", Some(b"12345")),
            ("data/usrroot/etc/t.conf", Some(b"x")),
            ("data/docs/usrhome/.t/readme", Some(b"")),
            ("data/docs/other/ignored", Some(b"zz")),
            ("t.pkg.lua", Some(b"lua")),
        ]);
        let s = read(&zst(&raw), ArchiveKind::PkgTarZst).unwrap();
        assert_eq!(s.install, 5 + 1 + 2 + 3);
        assert_eq!(
            s.files,
            vec![
                "${pkgstore}/bin/",
                "${pkgstore}/bin/t",
                "${usrhome}/.t/readme",
                "${usrroot}/etc/t.conf",
            ]
        );
    }

    #[test]
    fn hash_covers_bytes_tar_never_reads() {
        let raw = tar_of(&[
            ("pool/sha256-aa", Some(b"abc")),
            ("manifest.json", Some(MANIFEST.as_bytes())),
        ]);
        // A second zstd frame after the tar's end marker: tar never reads
        // it, the digest must still cover it.
        let mut z = zst(&raw);
        z.extend(zst(&[0u8; 4096]));
        let s = read(&z, ArchiveKind::Zpa).unwrap();
        assert_eq!(s.sha512, hex::encode(Sha512::digest(&z)));
        assert_eq!(s.down, z.len() as u64);
    }

    fn kind_of(bytes: &[u8], kind: ArchiveKind) -> ErrorKind {
        read(bytes, kind).unwrap_err().kind
    }

    #[test]
    fn bad_inputs_have_kinds() {
        let good = zst(&tar_of(&[
            ("pool/sha256-aa", Some(&[7u8; 100_000][..])),
            ("manifest.json", Some(MANIFEST.as_bytes())),
        ]));
        assert_eq!(kind_of(b"", ArchiveKind::Zpa), ErrorKind::Empty);
        assert_eq!(
            kind_of(b"PK\x03\x04rest", ArchiveKind::Zpa),
            ErrorKind::NotZstd
        );
        assert_eq!(kind_of(b"\x28\xb5", ArchiveKind::Zpa), ErrorKind::NotZstd);
        assert_eq!(
            kind_of(&good[..good.len() / 2], ArchiveKind::Zpa),
            ErrorKind::Truncated
        );
        let mut corrupt = good.clone();
        for b in &mut corrupt[8..40] {
            *b ^= 0x5a;
        }
        assert_eq!(kind_of(&corrupt, ArchiveKind::Zpa), ErrorKind::CorruptZstd);
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"garbage!");
        assert_eq!(kind_of(&trailing, ArchiveKind::Zpa), ErrorKind::CorruptZstd);
        assert_eq!(
            kind_of(&zst(&b"not a tar header. ".repeat(64)), ArchiveKind::Zpa),
            ErrorKind::CorruptTar
        );
        // A complete zstd frame around half a tar.
        let raw = tar_of(&[("pool/sha256-aa", Some(&[1u8; 5000][..]))]);
        assert_eq!(
            kind_of(&zst(&raw[..2048]), ArchiveKind::Zpa),
            ErrorKind::Truncated
        );
        let no_manifest = zst(&tar_of(&[("t.pkg.lua", Some(b"x"))]));
        assert_eq!(
            kind_of(&no_manifest, ArchiveKind::Zpa),
            ErrorKind::NoManifest
        );
        // The same archive is fine as a legacy one (no manifest there).
        assert!(read(&no_manifest, ArchiveKind::PkgTarZst).is_ok());
        let bad_json = zst(&tar_of(&[("manifest.json", Some(b"{\"version\":\"2\"}"))]));
        assert_eq!(kind_of(&bad_json, ArchiveKind::Zpa), ErrorKind::BadManifest);
        let missing_pool = zst(&tar_of(&[("manifest.json", Some(MANIFEST.as_bytes()))]));
        assert_eq!(
            kind_of(&missing_pool, ArchiveKind::Zpa),
            ErrorKind::BadManifest
        );
    }

    #[test]
    fn unknown_scope_is_rejected_like_zoi() {
        let m = r#"{"version":"2","pool":{},"mappings":{"":{"scopes":{"global":{}}}}}"#;
        let z = zst(&tar_of(&[("manifest.json", Some(m.as_bytes()))]));
        assert_eq!(kind_of(&z, ArchiveKind::Zpa), ErrorKind::BadManifest);
    }

    #[test]
    fn escaping_paths_are_rejected() {
        assert_eq!(entry_path(b"./a//b/./c").unwrap(), "a/b/c");
        assert_eq!(entry_path(b"./").unwrap(), "");
        for bad in [&b"../x"[..], b"a/../../x", b"/etc/passwd", b"a/.."] {
            assert_eq!(entry_path(bad).unwrap_err().kind, ErrorKind::PathEscape);
        }
        // Through a real archive: tar::Builder refuses '..', so write the
        // name into the header by hand.
        let mut h = tar::Header::new_ustar();
        h.as_ustar_mut().unwrap().name[..7].copy_from_slice(b"../evil");
        h.set_size(1);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut raw = h.as_bytes().to_vec();
        raw.extend_from_slice(&[b'x'; 512]);
        raw.extend_from_slice(&[0; 1024]);
        assert_eq!(
            kind_of(&zst(&raw), ArchiveKind::PkgTarZst),
            ErrorKind::PathEscape
        );
    }

    #[test]
    fn legacy_mapping() {
        assert_eq!(
            legacy_path("data/pkgstore/a/b", false).unwrap(),
            "${pkgstore}/a/b"
        );
        assert_eq!(
            legacy_path("data/pkgstore/a", true).unwrap(),
            "${pkgstore}/a/"
        );
        assert_eq!(
            legacy_path("data/sub/usrroot/x", false).unwrap(),
            "${usrroot}/x"
        );
        assert_eq!(
            legacy_path("data/pkgstore/pkgstore/x", false).unwrap(),
            "${pkgstore}/pkgstore/x"
        );
        assert_eq!(legacy_path("data/pkgstore", true), None);
        assert_eq!(legacy_path("data/sub/pkgstore", true), None);
        assert_eq!(legacy_path("data/sub/other/x", false), None);
        assert_eq!(legacy_path("pkgstore/x", false), None);
    }

    #[test]
    fn file_names_zoi_accepts() {
        assert_eq!(
            file_name_problem("a_b-1.0.0+x-linux-amd64.zpa").unwrap(),
            "'+' in the file name: Zoi accepts only A-Z, a-z, 0-9, '.', '_' and '-'"
        );
        assert!(file_name_problem("A_b-1.0.0-rc.1-linux-amd64.zpa").is_none());
        assert!(file_name_problem("a b.zpa").is_some());
    }

    #[test]
    fn kinds_from_names() {
        assert_eq!(
            ArchiveKind::of_file_name("a-1-linux-amd64.zpa"),
            Some(ArchiveKind::Zpa)
        );
        assert_eq!(
            ArchiveKind::of_file_name("a-1-linux-amd64.pkg.tar.zst"),
            Some(ArchiveKind::PkgTarZst)
        );
        for no in [".zpa", "a.zpa.hash", "a.tar.zst", "azpa", ".pkg.tar.zst"] {
            assert_eq!(ArchiveKind::of_file_name(no), None, "{no}");
        }
    }
}
