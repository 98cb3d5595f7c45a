//! File-system helpers shared by every command that writes.
//!
//! Whatever we write can be read at the same moment by someone else: a Zoi
//! client reading its config, nginx serving a `.hash`. So nothing is ever
//! written in place: bytes go to a temporary file in the same directory, are
//! flushed to disk, and the file is renamed over the target, which POSIX
//! guarantees to be atomic. A reader sees the old file or the new one, never
//! half of either.
//!
//! Reading goes the other way, with one rule for every file a user names
//! ([`read_input`]).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::{ErrorKind, Failure, io_failure};

/// Reads a file the user named (`-c mirror.toml`, `--index FILE`, …) — the
/// `what` (`spec file`, `packages.json`) whose usual name is `file_name` —
/// with one rule for every such file, after `error.rs`'s contract:
///
/// - no such path (or a path through a file): bad input, kind `missing`
///   (exit 2), "… not found" with `hint`;
/// - a directory: bad input, kind `missing` (exit 2), "… is a directory,
///   not a file", with a hint naming `DIR/<file_name>`;
/// - there, but unreadable (permissions, an I/O error): `io` (exit 3).
pub fn read_input(
    what: &str,
    path: &Path,
    file_name: &str,
    missing: ErrorKind,
    hint: &str,
) -> Result<Vec<u8>> {
    use std::io::ErrorKind as E;
    let err = match fs::read(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) => e,
    };
    let failure = if matches!(err.kind(), E::IsADirectory) || path.is_dir() {
        let inside = path.join(file_name);
        Failure::new(
            missing,
            format!("{what} {} is a directory, not a file", path.display()),
        )
        .hint(if inside.is_file() {
            format!("pass the file itself: {}", inside.display())
        } else {
            format!(
                "pass the file itself (e.g. {}), not its folder",
                inside.display()
            )
        })
    } else if matches!(err.kind(), E::NotFound | E::NotADirectory) {
        Failure::new(missing, format!("{what} {} not found", path.display())).hint(hint)
    } else {
        io_failure(&format!("read {what}"), path, &err)
    };
    Err(failure.into())
}

/// Writes `bytes` to `path` atomically. An existing file's permissions (and,
/// on Unix, owner and group, where we are allowed to set them) are kept; a
/// new file gets 0644 minus the umask, like `fs::write` (a config Zoi
/// reads as another user, metadata nginx serves).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let path = through_link(path)?;
    let staged = stage(&path, bytes)?;
    let dir = staged.dir().to_path_buf();
    staged.commit()?;
    sync_dir(&dir);
    Ok(())
}

/// Where a write to `path` lands: a symlinked file (dotfile managers) is
/// written where it points, so the link survives.
fn through_link(path: &Path) -> Result<std::borrow::Cow<'_, Path>> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path)
            .map(std::borrow::Cow::Owned)
            .with_context(|| format!("cannot resolve {}", path.display())),
        _ => Ok(std::borrow::Cow::Borrowed(path)),
    }
}

/// [`atomic_write`] in three steps, for a caller that makes several files
/// durable at once: this stages the bytes (through a symlink, with an
/// existing target's permissions and owner already on the temporary file);
/// the caller flushes [`Staged::file`] with [`sync_together`], then calls
/// [`Staged::rename_flushed`] and syncs [`Staged::dir`].
pub fn stage_replacement(path: &Path, bytes: &[u8]) -> Result<Staged> {
    let path = through_link(path)?;
    let staged = stage(&path, bytes)?;
    // Before the flush, so the flush covers the mode and owner too.
    take_target_metadata(staged.tmp.path(), &staged.target)?;
    Ok(staged)
}

/// Flushes every file in `files` (data and inode) and every directory in
/// `dirs` (its entries) to disk, at about the cost of one flush: each flush
/// waits for the filesystem's journal commit and the disk's write cache,
/// and one commit can carry them all. So every file's writeback is started
/// first ([`start_writeback`]): the first flush's commit then takes the
/// other files' data and inodes with it (ext4's ordered mode writes the data
/// of every inode a commit carries), and the flushes after it find their
/// commit done. Each flush is still made and checked, so on any filesystem
/// every file is durable when this returns.
///
/// One after another, not one thread each: a thread costs more to start
/// (about 0.15 ms here: its stack, signal stack and malloc arena) than the
/// flush it would overlap, and with every writeback started first the
/// files' I/O overlaps anyway. A local apply, three flushes together: 5.68
/// ms against 5.96 with threads; under a writer flushing 32 MiB in a loop,
/// 16.3 against 17.9. (About one flush: a later one may still wait for a
/// disk cache flush of its own.)
///
/// An error flushing a file is returned with the file's place in `files`,
/// which the caller names (its bytes must not be relied on); directories are
/// best effort, like [`sync_dir`].
pub fn sync_together(files: &[&fs::File], dirs: &[&Path]) -> Result<(), Unflushed> {
    for f in files {
        // 0 bytes: to the end of the file.
        start_writeback(f, 0, 0);
    }
    let mut result = Ok(());
    for (index, f) in files.iter().enumerate() {
        // The first error is the one returned; the other files are still
        // flushed, so what could be made durable is.
        result = result.and(f.sync_all().map_err(|error| Unflushed { index, error }));
    }
    for d in dirs {
        sync_dir(d);
    }
    result
}

/// The file [`sync_together`] could not flush: its place in the list it
/// was given, and why.
#[derive(Debug)]
pub struct Unflushed {
    pub index: usize,
    pub error: std::io::Error,
}

/// Starts writing `len` bytes of `file` from `offset` on to disk (`len` 0:
/// to the end of the file), and returns without waiting for them to get
/// there, only (briefly) for the writes to be queued (Linux's
/// `sync_file_range` with `SYNC_FILE_RANGE_WRITE`; nothing elsewhere).
/// [`sync_together`] calls it for every file before the first flush. A
/// download calls it as it goes, so the disk writes while the rest arrives and the flush it ends
/// with finds little left: otherwise the kernel holds a whole big archive
/// dirty in memory and the flush writes all of it only then. No error is
/// returned: this only hurries writes that the final flush checks.
pub fn start_writeback(file: &fs::File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: the descriptor is `file`'s, open for as long as it is
        // borrowed here, and the call takes no pointer.
        let _ = unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Removes the temporary files [`stage`] made for `path` that a killed run
/// left behind (`.<name>.XXXXXX.tmp` next to it, owned by the current user
/// or by `path`'s owner: [`stage_replacement`] gives a temp the owner of
/// the file it replaces, so one a run under sudo left in a user's config
/// folder is the user's). Call it only while holding the lock that
/// serialises writers of `path`: then no live run can own one. Returns how
/// many were removed.
pub fn remove_stale_temps(path: &Path) -> usize {
    // A symlinked file is staged next to where it points (`atomic_write`).
    let resolved = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path).ok(),
        _ => None,
    };
    let path = resolved.as_deref().unwrap_or(path);
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return 0;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return 0;
    };
    #[cfg(unix)]
    let owners = {
        use std::os::unix::fs::MetadataExt;
        [
            Some(nix::unistd::geteuid().as_raw()),
            fs::metadata(path).ok().map(|m| m.uid()),
        ]
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(middle) = file
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        if middle.len() != 6 || !middle.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if !owners.contains(&Some(meta.uid())) {
                continue;
            }
        }
        if fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The first half of an atomic write, for callers that write many files and
/// want the slow half (flushing to disk) off their hot path: the bytes are in
/// a temporary file next to the target, not yet flushed nor visible under the
/// target's name. Dropping it removes the temporary file.
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
}

/// Writes `bytes` to a temporary file next to `path`. A *new* target ends
/// up world-readable (0644 minus the umask, like `fs::write`) instead of the
/// temporary file's private 0600: nginx, running as another user, would
/// answer a 0600 `.hash` with a 403 page that Zoi then reads as the hash,
/// and a 0600 `/etc/zoi/config.yaml` makes every user's Zoi fail.
pub fn stage(path: &Path, bytes: &[u8]) -> Result<Staged> {
    let dir = parent_dir(path);
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Applied at open(2), so the umask still has its say.
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder
        .prefix(&format!(
            ".{}.",
            path.file_name()
                .map_or("tmp".into(), |n| n.to_string_lossy())
        ))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    Ok(Staged {
        tmp,
        target: path.to_path_buf(),
    })
}

impl Staged {
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The directory the file lands in.
    pub fn dir(&self) -> &Path {
        parent_dir(&self.target)
    }

    /// Flushes the bytes to disk and renames the file over the target,
    /// keeping an existing target's permissions (and, on Unix, owner and
    /// group, where we are allowed to set them). The rename is durable once
    /// the caller has called [`sync_dir`] on [`Staged::dir`], once for all
    /// the files it committed there.
    pub fn commit(self) -> Result<()> {
        self.tmp
            .as_file()
            .sync_all()
            .with_context(|| format!("cannot write {}", self.tmp.path().display()))?;
        take_target_metadata(self.tmp.path(), &self.target)?;
        self.rename_flushed()
    }

    /// The temporary file, to flush with [`sync_together`].
    pub fn file(&self) -> &fs::File {
        self.tmp.as_file()
    }

    /// Renames a file staged by [`stage_replacement`] over the target, once
    /// the caller has flushed [`Staged::file`]: renaming first could leave
    /// the target empty after a power cut.
    pub fn rename_flushed(self) -> Result<()> {
        let Staged { tmp, target } = self;
        tmp.persist(&target)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot replace {}", target.display()))?;
        Ok(())
    }
}

/// Gives the temporary file `tmp` an existing `target`'s permissions (and,
/// on Unix, owner and group, where we are allowed to set them).
fn take_target_metadata(tmp: &Path, target: &Path) -> Result<()> {
    if let Ok(meta) = fs::metadata(target) {
        fs::set_permissions(tmp, meta.permissions())
            .with_context(|| format!("cannot set permissions on {}", tmp.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // Only root can give a file away; for anyone else the new file
            // already has the right owner when they owned the old one.
            let _ = std::os::unix::fs::chown(tmp, Some(meta.uid()), Some(meta.gid()));
        }
    }
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Flushes a directory entry change (a rename) to disk, best effort.
pub fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Writes a set of files as a new directory `target`, replacing any
/// existing one only once every file is written. Files from an older
/// version of the directory do not survive.
///
/// Every file and folder of the new directory is flushed to disk before
/// the renames that swap it in (a file's failed flush fails the run; a
/// folder's is best effort, as everywhere: some file systems refuse it),
/// and their parent after, before the old version is deleted: otherwise a
/// power cut could leave the new name over empty files, the old version
/// already gone.
pub fn replace_dir_with(target: &Path, files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let parent = parent_dir(target);
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".zoi-mirror-staging.")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a staging directory in {}", parent.display()))?;
    let mut written: Vec<fs::File> = Vec::with_capacity(files.len());
    let mut dirs: std::collections::BTreeSet<PathBuf> = [staging.path().to_path_buf()].into();
    for (rel, bytes) in files {
        let path = staging.path().join(rel);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
            dirs.extend(
                p.ancestors()
                    .take_while(|d| d.starts_with(staging.path()))
                    .map(Path::to_path_buf),
            );
        }
        let f = fs::File::create(&path)
            .and_then(|mut f| f.write_all(bytes).map(|()| f))
            .with_context(|| format!("cannot write {}", path.display()))?;
        #[cfg(unix)]
        if rel.extension().is_some_and(|e| e == "sh") || rel.starts_with("tools") {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", path.display()))?;
        }
        written.push(f);
    }
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    sync_together(&written.iter().collect::<Vec<_>>(), &dirs).map_err(|u| {
        anyhow::Error::new(u.error).context(format!(
            "cannot flush the new bundle's {} to disk in {}",
            files[u.index].0.display(),
            staging.path().display()
        ))
    })?;
    drop(written);
    let staged = staging.keep();
    let old = parent.join(format!(
        ".{}.old",
        target
            .file_name()
            .map_or("dir".into(), |n| n.to_string_lossy())
    ));
    if target.exists() {
        let _ = fs::remove_dir_all(&old);
        fs::rename(target, &old)
            .with_context(|| format!("cannot move {} aside", target.display()))?;
    }
    if let Err(e) = fs::rename(&staged, target) {
        // Put the previous version back so a failed build loses nothing.
        let _ = fs::rename(&old, target);
        let _ = fs::remove_dir_all(&staged);
        return Err(e)
            .with_context(|| format!("cannot move the new bundle to {}", target.display()));
    }
    // The new name is made durable before the old bundle is deleted: a
    // power cut in between then finds one or the other, never neither.
    sync_dir(parent);
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing path and a directory are bad input (the kind given, exit
    /// 2), each said as it is; the hint for a directory names the file in it.
    #[test]
    fn read_input_says_missing_and_directory_apart() {
        let dir = tempfile::tempdir().unwrap();
        let failure = |p: &Path| {
            let e =
                read_input("packages.json", p, "packages.json", ErrorKind::Usage, "h").unwrap_err();
            let f = e.downcast::<Failure>().unwrap();
            assert_eq!(f.kind, ErrorKind::Usage, "{}", f.message);
            (f.message, f.hint.unwrap_or_default())
        };
        let (m, h) = failure(&dir.path().join("nope.json"));
        assert!(m.ends_with("nope.json not found") && h == "h", "{m} / {h}");
        let (m, _) = failure(&dir.path().join("nope/deeper.json"));
        assert!(m.ends_with("not found"), "{m}");
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        let (m, _) = failure(&file.join("under-a-file.json"));
        assert!(m.ends_with("not found"), "{m}");
        let (m, h) = failure(dir.path());
        assert_eq!(
            m,
            format!(
                "packages.json {} is a directory, not a file",
                dir.path().display()
            )
        );
        assert!(h.contains("packages.json), not its folder"), "{h}");
        fs::write(dir.path().join("packages.json"), "{}").unwrap();
        let (_, h) = failure(dir.path());
        assert_eq!(
            h,
            format!(
                "pass the file itself: {}",
                dir.path().join("packages.json").display()
            )
        );
        assert_eq!(
            read_input("x", &file, "x", ErrorKind::Usage, "h").unwrap(),
            b"x"
        );
    }

    #[cfg(unix)]
    #[test]
    fn new_files_are_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.hash");
        atomic_write(&p, b"x").unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode & 0o044,
            0o044,
            "readable by group and others: {mode:o}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_file_is_written_through_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles-config.yaml");
        fs::write(&real, "old").unwrap();
        let link = dir.path().join("config.yaml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        atomic_write(&link, b"new").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
    }

    #[test]
    fn atomic_write_replaces_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.yaml");
        fs::write(&p, "old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        }
        atomic_write(&p, b"new").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o640
            );
        }
        // no temporary files left behind
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn public_writes_are_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.zpa.hash");
        let write = |bytes: &[u8]| {
            let staged = stage(&p, bytes).unwrap();
            // Staged, not yet visible.
            assert_eq!(staged.target(), p);
            assert_eq!(staged.dir(), dir.path());
            staged.commit().unwrap();
        };
        write(b"x");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        // What fs::write gets under the current umask, minus group/other
        // write: 0644 with a umask of 022.
        let plain = dir.path().join("plain");
        fs::write(&plain, b"x").unwrap();
        let umasked = fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, umasked & 0o644, "{mode:o}");
        // An existing file keeps its mode.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write(b"y");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(fs::read(&p).unwrap(), b"y");
        // A dropped stage leaves nothing behind.
        drop(stage(&dir.path().join("other"), b"z").unwrap());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_staged_replacement_lands_only_when_renamed_and_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.yaml");
        fs::write(&p, "old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let other = stage(&dir.path().join("state.json"), b"{}").unwrap();
        let staged = stage_replacement(&p, b"new").unwrap();
        // A directory that is gone is skipped: directory flushes are best
        // effort.
        sync_together(
            &[staged.file(), other.file()],
            &[dir.path(), &dir.path().join("gone")],
        )
        .unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "old");
        staged.rename_flushed().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        drop(other);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        sync_together(&[], &[]).unwrap();
    }

    #[test]
    fn replace_dir_drops_stale_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("b");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("stale"), "x").unwrap();
        replace_dir_with(&target, &[(PathBuf::from("a/new"), b"y".to_vec())]).unwrap();
        assert!(!target.join("stale").exists());
        assert_eq!(fs::read_to_string(target.join("a/new")).unwrap(), "y");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
