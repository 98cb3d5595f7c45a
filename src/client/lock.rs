//! One lock per state directory, so two runs never edit the same config
//! or state at once.
//!
//! The lock is `<state dir>/zoi-mirror.lock`, held with an OS file lock
//! (released by the kernel when the process dies, so a crashed run never
//! leaves it stuck) for the life of the [`Lock`]. A run waits up to its
//! timeout, polling every 50 ms, then fails `lock_held` (exit 3).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::error::{ErrorKind, Failure, fail, io_failure};

/// An exclusive lock held for the life of the value.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the lock in `state_dir`, waiting at most `timeout`.
pub fn lock(state_dir: &Path, timeout: Duration) -> Result<Lock> {
    std::fs::create_dir_all(state_dir).map_err(|e| io_failure("create", state_dir, &e))?;
    let path = state_dir.join("zoi-mirror.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_failure("open", &path, &e))?;
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return fail(
                    Failure::new(
                        ErrorKind::LockHeld,
                        format!("another zoi-mirror run holds the lock {}", path.display()),
                    )
                    .hint("wait for it to finish, or raise --lock-timeout"),
                );
            }
            Err(std::fs::TryLockError::Error(e)) => return fail(io_failure("lock", &path, &e)),
        }
    }
}
