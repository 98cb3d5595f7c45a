//! `index`: the `.hash`, `.size` and `.files` next to every archive of a
//! binary host, for the whole tree, whoever produced the archives.
//!
//! Zoi writes these files only for packages it builds itself, but a client
//! fetches them for every archive, and reads them without checking the HTTP
//! status: a missing `.hash` becomes a 404 page parsed as a hash. So a tree
//! mirrored from upstream, built in-house or copied from a USB stick has to
//! get them too, byte for byte as `zoi package build` writes them.
//!
//! The run has two halves. [`plan`] walks the tree (never following a
//! symlink out of ROOT) and decides, from file-system metadata alone, which
//! archives need reading: an archive is *fresh* when its three metadata files
//! exist, are regular files at least as new as the archive (its mtime and its
//! ctime, which a copy that preserves mtimes still bumps), and agree with it
//! on what can be checked without reading it (its file name in `.hash`, its
//! byte count in `.size`). [`execute`] then reads the others, each in one
//! streaming pass ([`crate::zoi::archive`]), in parallel on a pool of `jobs`
//! threads, largest first so one big archive does not finish alone at the
//! end.
//!
//! Deciding freshness is most of a no-op run, so [`plan`] inspects archives
//! on the `jobs` threads too, a folder's run of archives at a time, stats
//! each file once and by name relative to its open folder (not by full
//! path), and keeps a *seen list* ([`seen`], unless
//! [`Options::seen_list`] is off:
//! `$XDG_CACHE_HOME/zoi-mirror/index/<root digest>.seen`): for every
//! archive found fresh by reading its metadata, the inode, size, mtime and
//! ctime of the archive and of its three metadata files at that moment.
//! When all four stats still match, the metadata bodies are not read again.
//! The list may only skip reading, never change a verdict: any change to a
//! file's content or name changes its ctime (which no one can set back), so
//! a stat that matches means the bytes that were verified. An entry is only
//! recorded when every ctime is older than [`RACY`] before the run (as git
//! does for its index): an edit in the same clock tick as our stat could
//! otherwise leave the ctime we recorded unchanged. Symlinked archives are
//! never listed. A lost or corrupt list only costs the reads.
//!
//! Writes are atomic ([`fsutil::stage`], then [`fsutil::Staged::commit`]:
//! temporary file, fsync, rename): nginx serving the tree meanwhile hands
//! out the old file or the new one, never half of one. Workers only stage;
//! one flusher thread does the fsyncs and renames, so waiting for the disk
//! never idles a core. `.files` and `.size` are committed before `.hash`, so
//! an interrupted run leaves an archive that is not fresh and is redone next
//! time. New files are world-readable for the web server. Nothing is
//! written for an archive that fails: stale metadata of a corrupt archive is
//! still a correct description of nothing a client could install, and
//! deleting it is the admin's call.
//!
//! `--check` recomputes everything and compares byte for byte, writing
//! nothing. The layout lint (with a template) checks each archive's path
//! against the layout the registry's URL templates expand to (the matcher
//! is Zoi's rule, [`crate::zoi::layout::Layout`]); orphaned
//! metadata (a `.hash`, `.size`, `.files` or `.sig` whose archive is gone) is
//! always reported.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::error::io_failure;
use crate::fsutil;
use crate::zoi::archive::{self, ArchiveError, ArchiveKind, Summary};
use crate::zoi::layout::Layout;
use crate::zoi::metadata;

mod seen;
use seen::SeenList;

/// The metadata files, in the order they are written: `.hash` last, so a
/// run cut short never leaves an archive that looks fresh.
pub const METADATA: [Meta; 3] = [Meta::Files, Meta::Size, Meta::Hash];

/// Files that belong to an archive and are orphans without it.
pub(crate) const SIDECARS: [&str; 4] = ["hash", "size", "files", "sig"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    Hash,
    Size,
    Files,
}

impl Meta {
    pub fn extension(self) -> &'static str {
        match self {
            Meta::Hash => "hash",
            Meta::Size => "size",
            Meta::Files => "files",
        }
    }

    /// `<archive>.<ext>`, next to the archive (or next to the symlink that
    /// names it: that is the URL a client derives).
    pub fn path_for(self, archive: &Path) -> PathBuf {
        let mut s = archive.as_os_str().to_os_string();
        s.push(".");
        s.push(self.extension());
        PathBuf::from(s)
    }

    pub(crate) fn body(self, summary: &Summary, file_name: &str) -> String {
        match self {
            Meta::Hash => summary.hash_body(file_name),
            Meta::Size => summary.size_body(),
            Meta::Files => summary.files_body(),
        }
    }
}

/// How a run is configured.
#[derive(Debug)]
pub struct Options {
    /// Worker threads; each reads one archive at a time.
    pub jobs: usize,
    /// Re-read and rewrite every archive, fresh or not.
    pub force: bool,
    /// Recompute and compare; write nothing.
    pub check: bool,
    pub lint: Option<Lint>,
    /// Keep the seen list (see the module docs) in the user's cache: read
    /// it, and write it when it changed. Off: neither.
    pub seen_list: bool,
}

/// The layout lint's settings.
#[derive(Debug)]
pub struct Lint {
    pub layout: Layout,
    /// The archive format the registry links to (from a bundle): archives in
    /// the other format are never requested by its clients.
    pub format: Option<ArchiveKind>,
}

/// What a run found wrong with one archive (or with one unreadable folder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub kind: FailedKind,
    pub message: String,
}

/// Why an archive could not be indexed: the archive itself is bad
/// ([`archive::ErrorKind`], `unreadable` included), or one of the index's
/// own reasons. Serialised as the kind's string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedKind {
    /// What reading the archive found (`empty`, `truncated`, …).
    Archive(archive::ErrorKind),
    /// A symlink leading outside ROOT (not followed).
    OutsideRoot,
    /// The path is not a regular file.
    NotAFile,
    /// A `.hash`/`.size`/`.files` path that is not a regular file.
    MetadataNotFile,
    /// The archive changed while it was read.
    ChangedDuringRead,
    /// The metadata could not be written (the host's fault: exit 3).
    WriteFailed,
}

impl FailedKind {
    /// The index's own kinds, after [`archive::ErrorKind`]'s.
    pub const OWN: &[FailedKind] = &[
        FailedKind::OutsideRoot,
        FailedKind::NotAFile,
        FailedKind::MetadataNotFile,
        FailedKind::ChangedDuringRead,
        FailedKind::WriteFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailedKind::Archive(k) => k.as_str(),
            FailedKind::OutsideRoot => "outside_root",
            FailedKind::NotAFile => "not_a_file",
            FailedKind::MetadataNotFile => "metadata_not_file",
            FailedKind::ChangedDuringRead => "changed_during_read",
            FailedKind::WriteFailed => "write_failed",
        }
    }
}

impl std::fmt::Display for FailedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for FailedKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// [`FailedKind`] for a file or folder that cannot be read.
pub(crate) const UNREADABLE: FailedKind = FailedKind::Archive(archive::ErrorKind::Unreadable);

impl Failed {
    pub(crate) fn new(kind: FailedKind, message: impl Into<String>) -> Self {
        Failed {
            kind,
            message: message.into(),
        }
    }

    /// Whether the failure is the host's rather than the archive's (exit 3).
    pub fn is_environment(&self) -> bool {
        self.kind == FailedKind::WriteFailed
    }
}

impl From<ArchiveError> for Failed {
    fn from(e: ArchiveError) -> Self {
        Failed::new(FailedKind::Archive(e.kind), e.message)
    }
}

string_enum! {
    /// What `index` did with (or found about) one archive.
    pub enum Status {
        /// Metadata (re)written.
        Written = "written",
        /// Fresh metadata left alone.
        Unchanged = "unchanged",
        /// `--check`: metadata matches the archive.
        Ok = "ok",
        /// `--check`: metadata missing or different.
        Mismatch = "mismatch",
        /// The archive could not be indexed; nothing was written for it.
        Error = "error",
    }
}

/// One metadata file that does not match its archive (`--check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `.hash`, `.size` or `.files`.
    pub file: String,
    pub kind: ProblemKind,
    pub message: String,
}

string_enum! {
    /// What is wrong with one metadata file (`--check`).
    pub enum ProblemKind {
        /// The file is not there.
        Missing = "missing",
        /// Its content is not what the archive gives.
        Differs = "differs",
        /// A folder (or other non-file) stands where the file should.
        NotAFile = "not_a_file",
        /// The file cannot be read.
        Unreadable = "unreadable",
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ArchiveResult {
    /// Relative to ROOT, `/`-separated.
    pub path: String,
    pub status: Status,
    pub sha512: Option<String>,
    pub down: Option<u64>,
    pub install: Option<u64>,
    /// Number of paths in `.files`.
    pub files: Option<usize>,
    pub problems: Vec<Problem>,
    pub error: Option<Failed>,
}

impl ArchiveResult {
    pub(crate) fn failed(path: String, error: Failed) -> Self {
        ArchiveResult {
            path,
            status: Status::Error,
            sha512: None,
            down: None,
            install: None,
            files: None,
            problems: Vec::new(),
            error: Some(error),
        }
    }

    fn unchanged(path: String, k: Known) -> Self {
        ArchiveResult {
            path,
            status: Status::Unchanged,
            sha512: Some(k.sha512),
            down: Some(k.down),
            install: Some(k.install),
            files: Some(k.files),
            problems: Vec::new(),
            error: None,
        }
    }

    pub(crate) fn with_summary(path: String, status: Status, s: &Summary) -> Self {
        ArchiveResult {
            path,
            status,
            sha512: Some(s.sha512.clone()),
            down: Some(s.down),
            install: Some(s.install),
            files: Some(s.files.len()),
            problems: Vec::new(),
            error: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayoutProblem {
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub archives: usize,
    pub written: usize,
    pub unchanged: usize,
    pub ok: usize,
    pub mismatch: usize,
    pub errors: usize,
    pub orphans: usize,
    pub layout_problems: usize,
    /// Archive bytes read (fresh archives are not read).
    pub bytes_read: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub root: PathBuf,
    pub check: bool,
    pub archives: Vec<ArchiveResult>,
    /// Metadata files (and `.sig`) whose archive does not exist.
    pub orphans: Vec<String>,
    pub layout_problems: Vec<LayoutProblem>,
    pub totals: Totals,
}

/// What [`plan`] decided, to be carried out by [`execute`].
pub struct Plan {
    root: PathBuf,
    items: Vec<Item>,
    /// Folders the walk could not enter, reported like failed archives
    /// (whatever they hold was not indexed).
    walk_failures: Vec<ArchiveResult>,
    orphans: Vec<String>,
    layout_problems: Vec<LayoutProblem>,
}

impl Plan {
    /// Bytes [`execute`] will read, for a progress bar.
    pub fn bytes_to_read(&self) -> u64 {
        self.items
            .iter()
            .filter(|i| matches!(i.action, Action::Read))
            .map(|i| i.size)
            .sum()
    }

    /// How many archives [`execute`] will read.
    pub fn archives_to_read(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i.action, Action::Read))
            .count()
    }
}

struct Item {
    rel: String,
    path: PathBuf,
    file_name: String,
    kind: ArchiveKind,
    size: u64,
    action: Action,
}

enum Action {
    Read,
    Skip(Known),
    Fail(Failed),
}

/// What fresh metadata says, as far as the report needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    sha512: String,
    down: u64,
    install: u64,
    /// Number of paths in `.files`.
    files: usize,
}

/// The stat fields whose equality means "the same bytes as when it was
/// verified" (see the module docs): inode, size, mtime and ctime (seconds,
/// nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat(u64, u64, i64, i64, i64, i64);

impl Stat {
    #[cfg(unix)]
    fn of(m: &fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat(
            m.ino(),
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
    }

    #[cfg(not(unix))]
    fn of(m: &fs::Metadata) -> Stat {
        let (secs, nanos) = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or((0, 0), |d| {
                (d.as_secs() as i64, i64::from(d.subsec_nanos()))
            });
        // No ctime here: nothing is ever recorded (see `recordable`).
        Stat(0, m.len(), secs, nanos, i64::MAX, 0)
    }

    fn ctime(&self) -> (i64, i64) {
        (self.4, self.5)
    }
}

/// One seen-list entry: the archive's and its `.files`, `.size`, `.hash`
/// stats when their bodies were verified, and what they said.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    stats: [Stat; 4],
    known: Known,
}

/// A file whose ctime is this recent may still change within the clock
/// tick we saw it in; such entries are verified again next run.
const RACY: std::time::Duration = std::time::Duration::from_secs(2);

/// Progress notifications from [`execute`], from any worker thread.
pub enum Event<'a> {
    /// Raw archive bytes consumed.
    Read(u64),
    /// One archive is done.
    Finished(&'a ArchiveResult),
}

/// `index DIR` with the defaults (every core, nothing forced, no lint):
/// what `serve --index-on-start` and the demo run before serving a tree.
pub fn index_tree(dir: &Path) -> Result<Report> {
    let opts = Options {
        jobs: std::thread::available_parallelism().map_or(1, usize::from),
        force: false,
        check: false,
        lint: None,
        seen_list: true,
    };
    let plan = plan(dir, &opts)?;
    execute(plan, &opts, &|_| {})
}

/// Walks `root` and decides what to do with every archive in it.
pub fn plan(root: &Path, opts: &Options) -> Result<Plan> {
    let canon_root = fs::canonicalize(root).map_err(|e| io_failure("read", root, &e))?;
    let use_seen = opts.seen_list && !opts.check && !opts.force;
    let seen_file = use_seen.then(|| seen::path(&canon_root)).flatten();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .thread_name(|i| format!("index-plan-{i}"))
        .build()
        .context("cannot start the worker threads")?;
    let started = SystemTime::now();
    let seen = OnceLock::new();
    let done = Mutex::new(Vec::new());
    let mut walked = Walked::default();
    // Three things at once: this thread walks; each run of archives of one
    // folder it finds goes to the pool right away to be stat'ed (relative
    // to the folder, opened once: a stat by full path walks every component
    // again, which was half of a no-op run's kernel time); and the seen list
    // loads on a thread of its own, the pool waiting for it only if the
    // first run comes sooner.
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            // Set even if loading panics: the pool waits for it.
            let _guard = SetOnDrop(&seen);
            let _ = seen.set(SeenList::load(seen_file.as_deref()));
        });
        pool.in_place_scope(|s| {
            let mut seq = 0;
            walk(
                root,
                &mut walked,
                &mut |dir: &Path, chunk: Vec<Candidate>| {
                    let (n, dir, seen, done, canon_root) =
                        (seq, dir.to_path_buf(), &seen, &done, &canon_root);
                    seq += 1;
                    s.spawn(move |_| {
                        let folder = Folder::open(&dir);
                        let seen: &SeenList = seen.wait();
                        let out: Vec<(Item, Listed)> = chunk
                            .into_iter()
                            .map(|c| {
                                let old = seen.get(&c.rel);
                                classify(c, &folder, canon_root, opts, old, started)
                            })
                            .collect();
                        if let Ok(mut d) = done.lock() {
                            d.push((n, out));
                        }
                    });
                },
            )
        })
    });
    result?;
    let seen = seen.into_inner().unwrap_or_default();
    let mut done = done
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
    done.sort_unstable_by_key(|(n, _)| *n);
    let classified: Vec<(Item, Listed)> = done.into_iter().flat_map(|(_, c)| c).collect();
    let Walked {
        failures: walk_failures,
        orphans,
    } = walked;
    // Rewritten only when it would change: in the steady state every
    // archive is a hit and the list stays as it is.
    let hits = classified
        .iter()
        .filter(|(_, l)| matches!(l, Listed::Hit))
        .count();
    let dirty = hits != seen.len() || classified.iter().any(|(_, l)| matches!(l, Listed::New(_)));
    let mut items = Vec::with_capacity(classified.len());
    let mut new_seen = Vec::new();
    for (item, listed) in classified {
        if use_seen && dirty {
            match listed {
                Listed::Hit => {
                    if let Some(old) = seen.get(&item.rel) {
                        new_seen.push((item.rel.clone(), old));
                    }
                }
                Listed::New(entry) => new_seen.push((item.rel.clone(), *entry)),
                Listed::No => {}
            }
        }
        items.push(item);
    }
    if use_seen && dirty {
        seen::save(
            seen_file.as_deref(),
            new_seen.iter().map(|(rel, s)| (rel.as_str(), s)),
        );
    }

    let mut layout_problems = Vec::new();
    if let Some(lint) = &opts.lint {
        for item in &items {
            for message in lint.layout.check(&item.rel, item.kind) {
                layout_problems.push(LayoutProblem {
                    path: item.rel.clone(),
                    message,
                });
            }
            if let Some(format) = lint.format
                && format != item.kind
            {
                layout_problems.push(LayoutProblem {
                    path: item.rel.clone(),
                    message: format!(
                        "the bundle's binaries.format is `{}`: clients of this mirror request `.{}` names and never this file",
                        format.extension(),
                        format.extension()
                    ),
                });
            }
        }
    }

    Ok(Plan {
        root: root.to_path_buf(),
        items,
        walk_failures,
        orphans,
        layout_problems,
    })
}

/// Sets the seen list to an empty one when dropped before it was set.
struct SetOnDrop<'a>(&'a OnceLock<SeenList>);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.set(SeenList::default());
    }
}

/// An archive-named file the walk found.
struct Candidate {
    path: PathBuf,
    /// Relative to ROOT, `/`-separated.
    rel: String,
    file_name: String,
    kind: ArchiveKind,
}

/// Archives of one folder handed on together, at most this many (so one
/// huge folder still spreads over every job).
const CHUNK: usize = 256;

/// What the walk of [`plan`] found besides archives, in walk order
/// (file-name order in each folder, depth first).
#[derive(Default)]
struct Walked {
    /// Folders that could not be read.
    failures: Vec<ArchiveResult>,
    /// Metadata files (and `.sig`) whose archive is not there, relative to
    /// ROOT.
    orphans: Vec<String>,
}

/// Walks `root`, handing each run of archives of one folder to `on_run`
/// (with the folder) in walk order.
fn walk(
    root: &Path,
    out: &mut Walked,
    on_run: &mut dyn FnMut(&Path, Vec<Candidate>),
) -> Result<()> {
    // The folder entered at each depth, with the raw names of its archives
    // so far (in name order).
    let mut stack: Vec<(PathBuf, Names)> = Vec::new();
    // The run being gathered, and the depth of its folder.
    let mut run: Vec<Candidate> = Vec::new();
    let mut run_depth = 0;
    // Symlinked folders are not descended: the tree they point to is either
    // inside ROOT (and walked there, with its metadata next to the real
    // files, which the symlinked URL sees too) or outside, where we do not go.
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        // Siblings share their parent's path up to the name, so comparing
        // whole paths as bytes orders them exactly by file name, without
        // `Path::file_name` parsing components on every comparison (that
        // was 28 % of a no-op run's instructions).
        .sort_by(|a, b| a.path().as_os_str().cmp(b.path().as_os_str()))
    {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().unwrap_or(root).to_path_buf();
                if e.depth() == 0 {
                    let io = e.io_error().map_or_else(
                        || std::io::Error::other(e.to_string()),
                        |i| std::io::Error::new(i.kind(), i.to_string()),
                    );
                    return Err(io_failure("read", &path, &io).into());
                }
                out.failures.push(ArchiveResult::failed(
                    rel_path(root, &path),
                    Failed::new(UNREADABLE, format!("cannot read this folder: {e}")),
                ));
                continue;
            }
        };
        let depth = entry.depth();
        if entry.file_type().is_dir() {
            // Entered next (a symlink to a folder is not `is_dir` here);
            // the run of its parent (if any) may go on after its subtree.
            if depth <= run_depth && !run.is_empty() {
                on_run(&stack[run_depth - 1].0, std::mem::take(&mut run));
            }
            stack.truncate(depth);
            stack.push((entry.path().to_path_buf(), Names::default()));
        }
        if depth == 0 {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if let Some(kind) = ArchiveKind::of_file_name(&name) {
            if !run.is_empty() && (run_depth != depth || run.len() == CHUNK) {
                on_run(&stack[run_depth - 1].0, std::mem::take(&mut run));
            }
            let Some((_, archives)) = stack.get_mut(depth - 1) else {
                continue;
            };
            archives.push(entry.file_name().as_encoded_bytes());
            let file_name = name.into_owned();
            run_depth = depth;
            run.push(Candidate {
                rel: rel_path(root, entry.path()),
                path: entry.into_path(),
                file_name,
                kind,
            });
        } else if let Some((stem, ext)) = name.rsplit_once('.')
            && SIDECARS.contains(&ext)
            && ArchiveKind::of_file_name(stem).is_some()
        {
            // Its archive, if there, is a sibling listed before it (a name
            // sorts before the same name plus a suffix): found by a binary
            // search of this folder's archives so far, on the raw names
            // the walk sorted (a lossy name may sort elsewhere).
            let raw = entry.file_name().as_encoded_bytes();
            let raw_stem = &raw[..raw.len() - ext.len() - 1];
            let present = stack
                .get(depth - 1)
                .is_some_and(|(_, archives)| archives.contains(raw_stem));
            if !present {
                out.orphans.push(rel_path(root, entry.path()));
            }
        }
    }
    if !run.is_empty() {
        on_run(&stack[run_depth - 1].0, run);
    }
    Ok(())
}

/// File names, added in ascending byte order, in one buffer.
#[derive(Default)]
struct Names {
    bytes: Vec<u8>,
    /// Where each name ends in `bytes`.
    ends: Vec<usize>,
}

impl Names {
    fn push(&mut self, name: &[u8]) {
        self.bytes.extend_from_slice(name);
        self.ends.push(self.bytes.len());
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Binary search: the names are in order.
    fn contains(&self, name: &[u8]) -> bool {
        let (mut lo, mut hi) = (0, self.ends.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).cmp(name) {
                std::cmp::Ordering::Equal => return true,
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        false
    }
}

/// The `--check` rules over some archives only (paths relative to `root`,
/// `/`-separated), e.g. what one sync placed: each is recomputed and
/// compared with its `.hash`, `.size` and `.files`; a path that is not an
/// archive name is ignored.
pub fn check_files(root: &Path, rels: &[String], jobs: usize) -> Result<Report> {
    let opts = Options {
        jobs,
        force: false,
        check: true,
        lint: None,
        seen_list: false,
    };
    let canon_root = fs::canonicalize(root).map_err(|e| io_failure("read", root, &e))?;
    let items = rels
        .iter()
        .filter_map(|rel| {
            let name = rel.rsplit('/').next().unwrap_or(rel).to_string();
            let kind = ArchiveKind::of_file_name(&name)?;
            let candidate = Candidate {
                path: root.join(rel),
                rel: rel.clone(),
                file_name: name,
                kind,
            };
            let (item, _) = classify(
                candidate,
                &Folder::none(),
                &canon_root,
                &opts,
                None,
                SystemTime::now(),
            );
            Some(item)
        })
        .collect();
    let plan = Plan {
        root: root.to_path_buf(),
        items,
        walk_failures: Vec::new(),
        orphans: Vec::new(),
        layout_problems: Vec::new(),
    };
    execute(plan, &opts, &|_| {})
}

/// Whether an archive goes in the next seen list.
enum Listed {
    /// Fresh by its unchanged seen-list entry, kept as it is.
    Hit,
    /// Found fresh by reading its metadata: this entry.
    New(Box<Seen>),
    No,
}

/// Decides what to do with one file named like an archive; with whether
/// it goes in the next seen list (see the module docs).
fn classify(
    c: Candidate,
    dir: &Folder,
    canon_root: &Path,
    opts: &Options,
    seen: Option<Seen>,
    started: SystemTime,
) -> (Item, Listed) {
    let mut item = Item {
        rel: c.rel,
        path: c.path,
        file_name: c.file_name,
        kind: c.kind,
        size: 0,
        action: Action::Read,
    };
    let entry = match inspect(&mut item, dir, canon_root, opts, seen, started) {
        Ok(entry) => entry,
        Err(failed) => {
            item.action = Action::Fail(failed);
            Listed::No
        }
    };
    (item, entry)
}

/// The folder an archive is in, open so its files are stat'ed by name
/// (`fstatat`) rather than by full path. Without it (it could not be
/// opened, or not on unix) they are stat'ed by path: the same answers.
struct Folder(#[cfg(unix)] Option<File>);

impl Folder {
    fn open(path: &Path) -> Folder {
        #[cfg(unix)]
        return Folder(File::open(path).ok());
        #[cfg(not(unix))]
        {
            let _ = path;
            Folder()
        }
    }

    fn none() -> Folder {
        #[cfg(unix)]
        return Folder(None);
        #[cfg(not(unix))]
        Folder()
    }

    /// `lstat` of `<file>` (`suffix` empty) or `<file>.<suffix>`, `file`
    /// being a file in this folder.
    fn lstat(&self, file: &Path, suffix: &str) -> std::io::Result<FileMeta> {
        #[cfg(unix)]
        if let (Some(dir), Some(name)) = (&self.0, file.file_name()) {
            use std::os::unix::ffi::OsStrExt;
            let mut buf = Vec::with_capacity(name.len() + 1 + suffix.len());
            buf.extend_from_slice(name.as_bytes());
            if !suffix.is_empty() {
                buf.push(b'.');
                buf.extend_from_slice(suffix.as_bytes());
            }
            let st = nix::sys::stat::fstatat(
                dir,
                buf.as_slice(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(std::io::Error::from)?;
            return Ok(FileMeta::of_stat(&st));
        }
        let md = if suffix.is_empty() {
            fs::symlink_metadata(file)?
        } else {
            let mut p = file.as_os_str().to_os_string();
            p.push(".");
            p.push(suffix);
            fs::symlink_metadata(p)?
        };
        Ok(FileMeta::of(&md))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device.
    Other,
}

/// What [`inspect`] needs of one stat.
#[derive(Debug, Clone, Copy)]
struct FileMeta {
    kind: FileKind,
    stat: Stat,
}

impl FileMeta {
    fn of(m: &fs::Metadata) -> FileMeta {
        let t = m.file_type();
        let kind = if t.is_symlink() {
            FileKind::Symlink
        } else if t.is_dir() {
            FileKind::Dir
        } else if t.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        };
        FileMeta {
            kind,
            stat: Stat::of(m),
        }
    }

    /// The same fields [`Stat::of`] takes from `fs::Metadata` (std's stat
    /// is this `struct stat`), so entries do not depend on which was used.
    #[cfg(unix)]
    // The fields' integer types differ between unix platforms.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    fn of_stat(st: &nix::sys::stat::FileStat) -> FileMeta {
        use nix::libc;
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => FileKind::File,
            libc::S_IFDIR => FileKind::Dir,
            libc::S_IFLNK => FileKind::Symlink,
            _ => FileKind::Other,
        };
        FileMeta {
            kind,
            stat: Stat(
                st.st_ino as u64,
                st.st_size as u64,
                st.st_mtime as i64,
                st.st_mtime_nsec as i64,
                st.st_ctime as i64,
                st.st_ctime_nsec as i64,
            ),
        }
    }

    fn is_file(&self) -> bool {
        self.kind == FileKind::File
    }

    /// (seconds, nanoseconds) since the epoch.
    fn mtime(&self) -> (i64, i64) {
        (self.stat.2, self.stat.3)
    }
}

/// Fills in the size and, when fresh metadata already stands beside it,
/// the skip; an error is why the file cannot be indexed. Each file is
/// stat'ed once: a no-op run is mostly these stats.
fn inspect(
    item: &mut Item,
    dir: &Folder,
    canon_root: &Path,
    opts: &Options,
    seen: Option<Seen>,
    started: SystemTime,
) -> Result<Listed, Failed> {
    let unreadable =
        |e: std::io::Error| Failed::new(UNREADABLE, format!("cannot read the file: {e}"));
    let path = item.path.as_path();
    let lmeta = dir.lstat(path, "").map_err(unreadable)?;
    let symlinked = lmeta.kind == FileKind::Symlink;
    let meta = if symlinked {
        let target = fs::canonicalize(path).map_err(|e| {
            Failed::new(
                UNREADABLE,
                format!("cannot read the file: the symlink leads nowhere ({e})"),
            )
        })?;
        if !target.starts_with(canon_root) {
            return Err(Failed::new(
                FailedKind::OutsideRoot,
                format!(
                    "symlink to {}, outside ROOT: not followed",
                    target.display()
                ),
            ));
        }
        FileMeta::of(&fs::metadata(path).map_err(unreadable)?)
    } else {
        // Not a symlink: what it names is itself.
        lmeta
    };
    if !meta.is_file() {
        let what = if meta.kind == FileKind::Dir {
            "a folder named like an archive"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(Failed::new(FailedKind::NotAFile, what));
    }
    item.size = meta.stat.1;

    if opts.check {
        return Ok(Listed::No);
    }
    // One stat per metadata file serves both the not-a-file refusal and
    // the freshness test.
    let mut sidecars = [None; METADATA.len()];
    for (m, md) in METADATA.iter().zip(&mut sidecars) {
        *md = dir.lstat(path, m.extension()).ok();
        if let Some(md) = md
            && !matches!(md.kind, FileKind::File | FileKind::Symlink)
        {
            return Err(Failed::new(
                FailedKind::MetadataNotFile,
                format!(
                    "{} exists and is not a regular file; remove it so the metadata can be written",
                    m.path_for(path).display()
                ),
            ));
        }
    }
    if opts.force {
        return Ok(Listed::No);
    }
    let stamp = archive_stamp(&lmeta, &meta);
    let mut stats = [meta.stat; 4];
    for (i, md) in sidecars.iter().enumerate() {
        // Missing, a symlink, or older than the archive: not fresh.
        match md {
            Some(md) if md.is_file() && md.mtime() >= stamp => stats[i + 1] = md.stat,
            _ => return Ok(Listed::No),
        }
    }
    if !symlinked
        && let Some(seen) = seen
        && seen.stats == stats
    {
        item.action = Action::Skip(seen.known);
        return Ok(Listed::Hit);
    }
    let Some(known) = fresh_bodies(path, &item.file_name, meta.stat.1) else {
        return Ok(Listed::No);
    };
    let listed = if !symlinked && recordable(&stats, started) {
        Listed::New(Box::new(Seen {
            stats,
            known: known.clone(),
        }))
    } else {
        Listed::No
    };
    item.action = Action::Skip(known);
    Ok(listed)
}

/// Whether every ctime is older than [`RACY`] before `started`.
fn recordable(stats: &[Stat; 4], started: SystemTime) -> bool {
    let Ok(now) = started.duration_since(std::time::UNIX_EPOCH) else {
        return false;
    };
    let limit = now.saturating_sub(RACY);
    stats.iter().all(|s| {
        let (secs, nanos) = s.ctime();
        u64::try_from(secs).is_ok_and(|secs| {
            std::time::Duration::new(secs, u32::try_from(nanos).unwrap_or(0)) < limit
        })
    })
}

/// The newest of the archive's mtime and ctime (on unix: elsewhere there
/// is no ctime), through and including a symlink naming it, as (seconds,
/// nanoseconds).
fn archive_stamp(lmeta: &FileMeta, meta: &FileMeta) -> (i64, i64) {
    let stamp = lmeta.mtime().max(meta.mtime());
    #[cfg(unix)]
    let stamp = stamp.max(lmeta.stat.ctime()).max(meta.stat.ctime());
    stamp
}
/// What the `.files`, `.size` and `.hash` (in [`METADATA`] order, already
/// known to be regular files newer than the archive) say, if it is
/// consistent with the archive named `file_name` of `down` bytes (see the
/// module docs).
fn fresh_bodies(archive: &Path, file_name: &str, down: u64) -> Option<Known> {
    let mut bodies = BTreeMap::new();
    for m in METADATA {
        bodies.insert(m.extension(), fs::read_to_string(m.path_for(archive)).ok()?);
    }
    let hash = &bodies["hash"];
    let sha512 = metadata::parse_hash(hash, Some(file_name)).sha512()?;
    if *hash != metadata::hash_body(&sha512, file_name) {
        return None;
    }
    let sizes = metadata::parse_size(&bodies["size"])?;
    if sizes.down != down || bodies["size"] != metadata::size_body(sizes.down, sizes.install) {
        return None;
    }
    let files = &bodies["files"];
    if files.ends_with('\n') {
        return None;
    }
    Some(Known {
        sha512,
        down: sizes.down,
        install: sizes.install,
        files: metadata::parse_files(files).len(),
    })
}

/// Reads, writes or compares everything [`plan`] decided, on `opts.jobs`
/// threads.
pub fn execute(plan: Plan, opts: &Options, on: &(dyn Fn(Event) + Sync)) -> Result<Report> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .thread_name(|i| format!("index-{i}"))
        .build()
        .context("cannot start the worker threads")?;
    let Plan {
        root,
        mut items,
        walk_failures,
        orphans,
        layout_problems,
    } = plan;
    // Largest first: the big archives start at once and the small ones fill
    // the gaps, so no core idles at the end while one big archive finishes.
    items.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.rel.cmp(&b.rel)));

    let bytes_read = AtomicU64::new(0);
    let counting = |event: Event| {
        if let Event::Read(n) = event {
            bytes_read.fetch_add(n, Ordering::Relaxed);
        }
        on(event);
    };
    let (flush_tx, flush_rx) = mpsc::sync_channel::<Batch>(FLUSH_QUEUE);
    let (mut archives, flush_failures) = std::thread::scope(|scope| {
        let flusher = std::thread::Builder::new()
            .name("index-flush".into())
            .spawn_scoped(scope, move || flush(flush_rx))
            .context("cannot start the writer thread")?;
        // Longest processing time first: every worker takes the largest
        // archive nobody has started. (A parallel iterator's work stealing
        // would hand the big archives at the front of the list out last.)
        let queue: Vec<Mutex<Option<Item>>> =
            items.into_iter().map(|i| Mutex::new(Some(i))).collect();
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Vec::with_capacity(queue.len()));
        pool.scope(|s| {
            for _ in 0..pool.current_num_threads() {
                s.spawn(|_| {
                    while let Some(slot) = queue.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let Some(item) = slot.lock().ok().and_then(|mut i| i.take()) else {
                            continue;
                        };
                        let result = run_item(item, opts.check, &counting, &flush_tx);
                        counting(Event::Finished(&result));
                        if let Ok(mut r) = results.lock() {
                            r.push(result);
                        }
                    }
                });
            }
        });
        let archives = results
            .into_inner()
            .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
        drop(flush_tx);
        let failures = flusher
            .join()
            .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
        anyhow::Ok((archives, failures))
    })?;
    for a in &mut archives {
        if let Some(f) = flush_failures.get(&a.path) {
            a.status = Status::Error;
            a.error = Some(f.clone());
        }
    }
    archives.extend(walk_failures);
    archives.sort_by(|a, b| a.path.cmp(&b.path));

    let mut totals = Totals {
        archives: archives.len(),
        orphans: orphans.len(),
        layout_problems: layout_problems.len(),
        bytes_read: bytes_read.into_inner(),
        ..Totals::default()
    };
    for a in &archives {
        match a.status {
            Status::Written => totals.written += 1,
            Status::Unchanged => totals.unchanged += 1,
            Status::Ok => totals.ok += 1,
            Status::Mismatch => totals.mismatch += 1,
            Status::Error => totals.errors += 1,
        }
    }
    Ok(Report {
        root,
        check: opts.check,
        archives,
        orphans,
        layout_problems,
        totals,
    })
}

/// Archives whose metadata is staged, queued for the flusher. Bounded, so
/// a slow disk holds the workers back instead of piling up temporary files.
const FLUSH_QUEUE: usize = 64;

/// One archive's metadata, staged in temporary files, in write order.
struct Batch {
    rel: String,
    files: Vec<fsutil::Staged>,
}

/// The flusher: fsync and rename every staged file, then fsync the folder
/// once. Waiting for the disk here, on a thread of its own, keeps the
/// workers hashing; a worker that waited on three fsyncs per archive would
/// leave its core idle (measured: 15% of a run over many small archives).
fn flush(batches: mpsc::Receiver<Batch>) -> BTreeMap<String, Failed> {
    let mut failures = BTreeMap::new();
    for batch in batches {
        let dir = batch.files.first().map(|f| f.dir().to_path_buf());
        // In order, stopping at the first failure: `.hash` comes last, so a
        // partly written archive is not fresh and is redone next run.
        let committed = batch.files.into_iter().try_for_each(fsutil::Staged::commit);
        if let Some(dir) = dir {
            fsutil::sync_dir(&dir);
        }
        if let Err(e) = committed {
            failures.insert(
                batch.rel,
                Failed::new(FailedKind::WriteFailed, format!("{e:#}")),
            );
        }
    }
    failures
}

fn run_item(
    item: Item,
    check: bool,
    on: &(dyn Fn(Event) + Sync),
    flusher: &mpsc::SyncSender<Batch>,
) -> ArchiveResult {
    let summary = match item.action {
        Action::Fail(f) => return ArchiveResult::failed(item.rel, f),
        Action::Skip(known) => return ArchiveResult::unchanged(item.rel, known),
        Action::Read => match read(&item.path, item.kind, on) {
            Ok(s) => s,
            Err(f) => return ArchiveResult::failed(item.rel, f),
        },
    };
    if check {
        let problems = compare(&item.path, &item.file_name, &summary);
        let status = if problems.is_empty() {
            Status::Ok
        } else {
            Status::Mismatch
        };
        let mut r = ArchiveResult::with_summary(item.rel, status, &summary);
        r.problems = problems;
        return r;
    }
    let mut files = Vec::with_capacity(METADATA.len());
    for m in METADATA {
        let target = m.path_for(&item.path);
        match fsutil::stage(&target, m.body(&summary, &item.file_name).as_bytes()) {
            Ok(staged) => files.push(staged),
            Err(e) => {
                return ArchiveResult::failed(
                    item.rel,
                    Failed::new(FailedKind::WriteFailed, format!("{e:#}")),
                );
            }
        }
    }
    let batch = Batch {
        rel: item.rel.clone(),
        files,
    };
    if flusher.send(batch).is_err() {
        return ArchiveResult::failed(
            item.rel,
            Failed::new(FailedKind::WriteFailed, "the writer thread stopped"),
        );
    }
    ArchiveResult::with_summary(item.rel, Status::Written, &summary)
}

/// One pass over the archive; refuses a result from a file that changed
/// while it was read (still being copied in, say).
fn read(path: &Path, kind: ArchiveKind, on: &(dyn Fn(Event) + Sync)) -> Result<Summary, Failed> {
    let unreadable =
        |e: std::io::Error| Failed::new(UNREADABLE, format!("cannot read the file: {e}"));
    let file = File::open(path).map_err(unreadable)?;
    let before = file.metadata().map_err(unreadable)?;
    let summary = archive::read_archive(&file, kind, &mut |n| on(Event::Read(n)))?;
    let after = file.metadata().map_err(unreadable)?;
    if summary.down != before.len()
        || after.len() != before.len()
        || after.modified().ok() != before.modified().ok()
    {
        return Err(Failed::new(
            FailedKind::ChangedDuringRead,
            "the file changed while it was read (still being copied?); run again once it is complete",
        ));
    }
    Ok(summary)
}

/// `--check`: every metadata file against what we would write.
fn compare(path: &Path, file_name: &str, summary: &Summary) -> Vec<Problem> {
    let mut problems = Vec::new();
    for m in [Meta::Hash, Meta::Size, Meta::Files] {
        let p = m.path_for(path);
        let file = format!(".{}", m.extension());
        let expected = m.body(summary, file_name);
        let problem = |kind, message: String| Problem {
            file: file.clone(),
            kind,
            message,
        };
        match fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(problem(ProblemKind::Missing, format!("{file} is missing")));
                continue;
            }
            Ok(md) if md.is_dir() => {
                problems.push(problem(
                    ProblemKind::NotAFile,
                    format!("{file} is a folder"),
                ));
                continue;
            }
            _ => {}
        }
        match fs::read(&p) {
            Err(e) => problems.push(problem(
                ProblemKind::Unreadable,
                format!("cannot read {file}: {e}"),
            )),
            Ok(found) if found == expected.as_bytes() => {}
            Ok(found) => problems.push(problem(
                ProblemKind::Differs,
                describe_difference(m, &expected, &String::from_utf8_lossy(&found)),
            )),
        }
    }
    problems
}

pub(crate) fn describe_difference(m: Meta, expected: &str, found: &str) -> String {
    let file = m.extension();
    if m == Meta::Files {
        let e: Vec<&str> = expected.split('\n').collect();
        let f: Vec<&str> = found.split('\n').collect();
        if let Some(i) = (0..e.len().max(f.len())).find(|&i| e.get(i) != f.get(i)) {
            let show = |v: Option<&&str>| v.map_or("(nothing)".to_string(), |s| format!("{s:?}"));
            return format!(
                ".{file} differs at line {}: expected {}, found {}",
                i + 1,
                show(e.get(i)),
                show(f.get(i))
            );
        }
    }
    format!(
        ".{file} differs: expected {:?}, found {:?}",
        expected,
        clip(found, 300)
    )
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

fn rel_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

#[cfg(test)]
mod state_tests {
    use super::{FailedKind, ProblemKind, Status};
    use crate::zoi::archive;

    const HELP: &str = include_str!("../cli.rs");

    /// `index --help` documents the statuses and kinds scripts match on.
    #[test]
    fn index_help_lists_every_status_and_problem_kind() {
        crate::assert_documents(
            HELP,
            "(per archive:",
            "`status` ",
            Status::ALL.iter().map(|s| s.as_str()),
        );
        crate::assert_documents(
            HELP,
            "problems` = [{",
            "`kind` ",
            ProblemKind::ALL.iter().map(|k| k.as_str()),
        );
    }

    #[test]
    fn index_help_lists_every_error_kind() {
        let joined: String = HELP
            .lines()
            .map(|l| l.trim().trim_start_matches("///").trim())
            .collect::<Vec<_>>()
            .join(" ");
        let at = joined
            .find("Error kinds: ")
            .expect("index --help lists its error kinds");
        let rest = &joined[at + "Error kinds: ".len()..];
        let documented: Vec<&str> = rest[..rest.find('.').unwrap()]
            .split(',')
            .map(str::trim)
            .collect();
        let variants: Vec<&str> = archive::ErrorKind::ALL
            .iter()
            .map(|&k| FailedKind::Archive(k))
            .chain(FailedKind::OWN.iter().copied())
            .map(FailedKind::as_str)
            .collect();
        assert_eq!(documented, variants);
    }
}
