//! The seen list of [`super`]: what the last run verified, so a no-op run
//! need not read 60,000 small metadata files again (the rules of what may
//! be recorded and when an entry counts are in the parent's module docs).
//!
//! A file of binary records (a length-prefixed path, then a fixed-width
//! tail) rather than JSON: a no-op run over
//! 20,000 archives loads the whole list, and parsing 9.5 MB of JSON into
//! maps of strings was a third of that run. Here loading is one read, one
//! checksum and one small integer map; an entry is decoded only when its
//! archive is looked up.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! header  MAGIC (16 bytes) | version u32 | count u32 | xxh3-64 of the body u64
//! record  rel_len u16 | rel (UTF-8, relative to ROOT, `/`-separated)
//!         | 4 × stat (ino u64, size u64, mtime i64, mtime_ns i64, ctime i64, ctime_ns i64)
//!         | sha512 (64 raw bytes) | down u64 | install u64 | files u64
//! ```
//!
//! Anything unexpected (another magic or version, a short file, a bad
//! checksum, a record running past the end) makes the whole list empty:
//! a lost list costs a full run, never a wrong answer or an error. The
//! checksum is there so a damaged list (a torn copy, a bad disk block) is
//! not believed: an entry is trusted without reading the files it vouches
//! for.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use super::{Known, Seen, Stat};
use crate::fsutil;

/// Starts every list file; a file without it is not ours.
const MAGIC: &[u8; 16] = b"zoi-mirror seen\n";
/// Bumped when the record layout changes; another version is ignored.
const VERSION: u32 = 2;
const HEADER: usize = 16 + 4 + 4 + 8;
const STAT: usize = 6 * 8;
/// A record after its path.
const FIXED: usize = 4 * STAT + 64 + 3 * 8;

/// Where the list of the tree at `canon_root` lives:
/// `$XDG_CACHE_HOME/zoi-mirror/index/<digest of the path>.seen`.
pub(super) fn path(canon_root: &Path) -> Option<PathBuf> {
    let digest = crate::bundle::manifest::sha512_hex(canon_root.as_os_str().as_encoded_bytes());
    Some(
        dirs::cache_dir()?
            .join("zoi-mirror")
            .join("index")
            .join(format!("{}.seen", &digest[..16])),
    )
}

/// The last run's list, loaded whole; looked up by path.
#[derive(Default)]
pub(super) struct SeenList {
    body: Vec<u8>,
    /// xxh3 of a record's path → where the record starts in `body`. A
    /// collision only loses one of the two entries (lookups compare the
    /// path), which costs a read, not a wrong answer.
    at: HashMap<u64, usize>,
}

impl SeenList {
    /// The list at `path`; empty when there is none or it cannot be used.
    pub(super) fn load(path: Option<&Path>) -> SeenList {
        path.and_then(|p| fs::read(p).ok())
            .and_then(SeenList::parse)
            .unwrap_or_default()
    }

    fn parse(mut bytes: Vec<u8>) -> Option<SeenList> {
        let header = bytes.get(..HEADER)?;
        if &header[..16] != MAGIC || u32_at(header, 16) != VERSION {
            return None;
        }
        let count = u32_at(header, 20) as usize;
        let sum = u64_at(header, 24);
        let body = bytes.split_off(HEADER);
        if xxh3_64(&body) != sum {
            return None;
        }
        let mut at = HashMap::with_capacity(count);
        let mut pos = 0;
        for _ in 0..count {
            let len = usize::from(u16::from_le_bytes(body.get(pos..pos + 2)?.try_into().ok()?));
            let rel = body.get(pos + 2..pos + 2 + len)?;
            body.get(pos + 2 + len..pos + 2 + len + FIXED)?;
            at.insert(xxh3_64(rel), pos);
            pos += 2 + len + FIXED;
        }
        (pos == body.len()).then_some(SeenList { body, at })
    }

    pub(super) fn len(&self) -> usize {
        self.at.len()
    }

    /// The entry recorded for the archive at `rel`.
    pub(super) fn get(&self, rel: &str) -> Option<Seen> {
        let pos = *self.at.get(&xxh3_64(rel.as_bytes()))?;
        // In bounds: checked by `parse`.
        let b = &self.body[pos..];
        let len = usize::from(u16::from_le_bytes([b[0], b[1]]));
        if &b[2..2 + len] != rel.as_bytes() {
            return None;
        }
        let r = &b[2 + len..2 + len + FIXED];
        let stat = |i: usize| {
            let s = &r[i * STAT..];
            Stat(
                u64_at(s, 0),
                u64_at(s, 8),
                u64_at(s, 16) as i64,
                u64_at(s, 24) as i64,
                u64_at(s, 32) as i64,
                u64_at(s, 40) as i64,
            )
        };
        let k = &r[4 * STAT..];
        Some(Seen {
            stats: [stat(0), stat(1), stat(2), stat(3)],
            known: Known {
                sha512: hex::encode(&k[..64]),
                down: u64_at(k, 64),
                install: u64_at(k, 72),
                files: usize::try_from(u64_at(k, 80)).ok()?,
            },
        })
    }
}

/// Writes the list (atomically) at `path`. Best effort: a list that cannot
/// be written only means reading the metadata again next run, so failures
/// are not reported. An entry that cannot be encoded (a path over 64 KiB,
/// a hash that is not 128 hex digits) is left out.
pub(super) fn save<'a>(path: Option<&Path>, entries: impl Iterator<Item = (&'a str, &'a Seen)>) {
    let Some(path) = path else { return };
    if let Some(dir) = path.parent()
        && fs::create_dir_all(dir).is_err()
    {
        return;
    }
    let mut body = Vec::new();
    let mut count = 0u32;
    for (rel, seen) in entries {
        let (Ok(len), Ok(sha)) = (u16::try_from(rel.len()), hex::decode(&seen.known.sha512)) else {
            continue;
        };
        if sha.len() != 64 {
            continue;
        }
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(rel.as_bytes());
        for s in &seen.stats {
            for v in [s.0, s.1, s.2 as u64, s.3 as u64, s.4 as u64, s.5 as u64] {
                body.extend_from_slice(&v.to_le_bytes());
            }
        }
        body.extend_from_slice(&sha);
        for v in [seen.known.down, seen.known.install, seen.known.files as u64] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        count += 1;
    }
    let mut bytes = Vec::with_capacity(HEADER + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&count.to_le_bytes());
    bytes.extend_from_slice(&xxh3_64(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    if let Ok(staged) = fsutil::stage(path, &bytes) {
        let _ = staged.commit();
    }
    // The JSON list earlier releases wrote (version 1) is never read again.
    let _ = fs::remove_file(path.with_extension("json"));
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> Seen {
        Seen {
            stats: [
                Stat(n, 2, 3, 4, -5, 6),
                Stat(7, 8, 9, 10, 11, 12),
                Stat(13, 14, 15, 16, 17, 18),
                Stat(19, 20, 21, 22, 23, 24),
            ],
            known: Known {
                sha512: format!("{:0128x}", n),
                down: n * 10,
                install: n * 20,
                files: 3,
            },
        }
    }

    fn saved(entries: &[(&str, Seen)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.seen");
        save(Some(&path), entries.iter().map(|(r, s)| (*r, s)));
        (dir, path)
    }

    #[test]
    fn round_trips() {
        let entries = [
            ("a/b.zpa", entry(1)),
            ("c.pkg.tar.zst", entry(u64::MAX / 32)),
        ];
        let (_dir, path) = saved(&entries);
        let list = SeenList::load(Some(&path));
        assert_eq!(list.len(), 2);
        for (rel, seen) in &entries {
            assert_eq!(list.get(rel).as_ref(), Some(seen));
        }
        assert_eq!(list.get("a/b.zp"), None);
    }

    #[test]
    fn anything_damaged_is_an_empty_list() {
        let (_dir, path) = saved(&[("a/b.zpa", entry(1))]);
        let good = fs::read(&path).unwrap();
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut other_version = good.clone();
        other_version[16] = 1;
        for bad in [
            Vec::new(),
            good[..good.len() - 1].to_vec(),
            flipped,
            other_version,
            b"{\"version\":1,\"archives\":{}}".to_vec(),
        ] {
            fs::write(&path, &bad).unwrap();
            assert_eq!(SeenList::load(Some(&path)).len(), 0);
        }
        assert_eq!(SeenList::load(None).len(), 0);
    }
}
