//! What `publish` copies and reports: the files of a folder (a bundle, or
//! keys and setup scripts), in upload order, and per file whether the store
//! already held the same bytes. The upload itself is the command's (it
//! owns the store); the human rendering is `output::human::publish`.

use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Serialize)]
pub struct File {
    pub path: String,
    pub status: &'static str,
}

#[derive(Serialize, Default)]
pub struct Totals {
    pub written: usize,
    pub unchanged: usize,
}

#[derive(Serialize)]
pub struct Report {
    pub to: String,
    /// Where clients read it.
    pub public_url: String,
    pub files: Vec<File>,
    pub totals: Totals,
}

impl Report {
    pub fn new(to: String, public_url: String, files: Vec<File>) -> Report {
        let mut totals = Totals::default();
        for f in &files {
            match f.status {
                "written" => totals.written += 1,
                _ => totals.unchanged += 1,
            }
        }
        Report {
            to,
            public_url,
            files,
            totals,
        }
    }
}

/// The files below `dir` as `/`-separated relative paths, sorted, but
/// `bundle.json` last: it pins every other file, so a client that sees the
/// new manifest finds the files it names already in place.
pub fn upload_order(dir: &Path) -> Result<Vec<String>, (PathBuf, std::io::Error)> {
    let mut rels = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.map_err(|e| (dir.to_path_buf(), std::io::Error::other(e.to_string())))?;
        if e.file_type().is_file()
            && let Ok(r) = e.path().strip_prefix(dir)
        {
            rels.push(r.to_string_lossy().replace('\\', "/"));
        }
    }
    rels.sort_by_key(|r| (r == super::manifest::FILE_NAME, r.clone()));
    Ok(rels)
}
