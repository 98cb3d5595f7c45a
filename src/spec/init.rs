//! `init`'s write: a rendered spec to a path, never over an existing file
//! unless asked, and the report of what was done (rendered by
//! `output::human::init`).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::error::{Failure, fail, io_failure};

#[derive(Serialize)]
pub struct InitReport {
    pub path: PathBuf,
    pub overwritten: bool,
}

/// Writes `text` to `path`. An existing file is an error (exit 2) without
/// `force`, and is then replaced atomically.
pub fn write(path: &Path, text: &str, force: bool) -> Result<InitReport> {
    let existed = path.exists();
    if existed && !force {
        return fail(
            Failure::new(
                crate::error::ErrorKind::Exists,
                format!("{} already exists", path.display()),
            )
            .hint("pass --force to overwrite it, or give another path"),
        );
    }
    if existed {
        crate::fsutil::atomic_write(path, text.as_bytes())?;
    } else {
        // create_new: never clobber a file that appeared since the check.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io_failure("create", path, &e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| io_failure("write", path, &e))?;
    }
    Ok(InitReport {
        path: path.to_path_buf(),
        overwritten: existed,
    })
}
