//! What a mirror's `.hash`, `.size` and `.files` must hold for Zoi 1.29.4
//! to use them, as verdicts (the parsers are [`super::metadata`]'s):
//!
//! - `.hash`: a SHA-512 (a SHA-256 verifies too, but `zoi package build`
//!   writes SHA-512); a 32-digit token or no hash at all fails Zoi ("Unsupported
//!   hash length"); the line with the hash must not name another file.
//! - `.size`: both `down: N` and `install: N` (zoi sync's pre-fetch reads
//!   only those lines).
//! - `.files`: at least one path, none of them escaping Zoi's roots.
//!
//! The wording of each fault, and whether it is fatal for a client, is the
//! caller's (`check` quotes server bytes through a redacting excerpt).

use super::metadata::{self, HashKind, HashRead};

/// A `.hash` judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashVerdict {
    /// The SHA-512 the file gives, if any.
    pub sha512: Option<String>,
    /// It gives a SHA-256 instead (Zoi verifies it).
    pub sha256: bool,
    pub fault: Option<HashFault>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashFault {
    /// No SHA-512 or SHA-256: Zoi reads `first_word` and fails.
    NoHash { first_word: String },
    /// A 32-digit token (an MD5?), which Zoi does not verify.
    Unsupported32 { token: String },
    /// The hash's line names `name`, not the archive.
    NamesAnother { name: String },
}

/// Judges a `.hash` body for the archive `file_name`.
pub fn judge_hash(body: &str, file_name: &str) -> HashVerdict {
    let read = metadata::parse_hash(body, Some(file_name));
    let mut v = HashVerdict {
        sha512: None,
        sha256: false,
        fault: None,
    };
    match &read {
        HashRead::Junk { first_word } => {
            v.fault = Some(HashFault::NoHash {
                first_word: first_word.to_string(),
            });
            return v;
        }
        HashRead::Hash {
            kind: HashKind::Unsupported32,
            token,
        } => {
            v.fault = Some(HashFault::Unsupported32 {
                token: token.to_string(),
            });
            return v;
        }
        HashRead::Hash {
            kind: HashKind::Sha256,
            ..
        } => v.sha256 = true,
        HashRead::Hash {
            kind: HashKind::Sha512,
            ..
        } => {}
    }
    if let Some(line) = body.lines().find(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let _hash = words.next();
        if let Some(name) = words.next() {
            let name = name.trim_start_matches('*');
            if name != file_name {
                v.fault = Some(HashFault::NamesAnother {
                    name: name.to_string(),
                });
            }
        }
    }
    v.sha512 = read.sha512();
    v
}

/// A `.size` judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeVerdict {
    /// The download size, when the file gives one.
    pub down: Option<u64>,
    pub fault: Option<SizeFault>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeFault {
    /// Sizes are there, but not both `down:` and `install:`.
    Incomplete,
    /// No `down: N` / `install: N` lines at all.
    NoSizes,
}

/// Judges a `.size` body.
pub fn judge_size(body: &str) -> SizeVerdict {
    let has = |key: &str| {
        body.lines().any(|l| {
            l.split_once(':')
                .is_some_and(|(k, v)| k.trim() == key && v.trim().parse::<u64>().is_ok())
        })
    };
    let sizes = metadata::parse_size(body);
    let fault = (!has("down") || !has("install")).then_some(if sizes.is_some() {
        SizeFault::Incomplete
    } else {
        SizeFault::NoSizes
    });
    SizeVerdict {
        down: sizes.map(|s| s.down),
        fault,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesFault {
    Empty,
    /// The first path that leaves Zoi's roots, and why.
    Escapes {
        path: String,
        why: &'static str,
    },
}

/// Judges a `.files` body.
pub fn judge_files(body: &str) -> Option<FilesFault> {
    let lines = metadata::parse_files(body);
    if lines.is_empty() {
        return Some(FilesFault::Empty);
    }
    lines.into_iter().find_map(|l| {
        metadata::install_path_problem(l).map(|why| FilesFault::Escapes {
            path: l.to_string(),
            why,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn hashes() {
        let ok = judge_hash(&format!("{SHA}  a.zpa\n"), "a.zpa");
        assert_eq!((ok.sha512.as_deref(), ok.fault), (Some(SHA), None));
        let other = judge_hash(&format!("{SHA}  b.zpa\n"), "a.zpa");
        assert_eq!(
            other.fault,
            Some(HashFault::NamesAnother {
                name: "b.zpa".into()
            })
        );
        assert!(matches!(
            judge_hash("<html>", "a.zpa").fault,
            Some(HashFault::NoHash { .. })
        ));
        assert!(matches!(
            judge_hash(&SHA[..32], "a.zpa").fault,
            Some(HashFault::Unsupported32 { .. })
        ));
        let s256 = judge_hash(&SHA[..64], "a.zpa");
        assert!(s256.sha256 && s256.fault.is_none() && s256.sha512.is_none());
    }

    #[test]
    fn sizes_and_files() {
        assert_eq!(
            judge_size("down: 3\ninstall: 9\n"),
            SizeVerdict {
                down: Some(3),
                fault: None
            }
        );
        assert_eq!(judge_size("down: 3\n").fault, Some(SizeFault::Incomplete));
        assert_eq!(judge_size("nope").fault, Some(SizeFault::NoSizes));
        assert_eq!(judge_files("\n"), Some(FilesFault::Empty));
        assert!(matches!(
            judge_files("bin/x\n../etc/passwd\n"),
            Some(FilesFault::Escapes { path, .. }) if path == "../etc/passwd"
        ));
        assert_eq!(judge_files("bin/x\n"), None);
    }
}
