//! The three metadata files Zoi fetches next to a pre-built archive:
//! `<archive>.hash`, `<archive>.size` and `<archive>.files`.
//!
//! Writing: the bodies are byte-for-byte what `zoi package build` 1.29.4
//! writes (`zoi-package/src/build.rs`), checked against the golden files in
//! `fixtures/zoi-built/`. A client compares, caches and displays these bytes,
//! so "equivalent" is not good enough.
//!
//! Reading: the parsers reproduce how Zoi 1.29.4 *reads* them
//! (`zoi-install/src/util.rs`: `get_expected_hash`, `get_expected_size`,
//! `get_remote_file_list`), leniency included, so that a checker can predict
//! what a client will make of a file someone else wrote. Zoi reads these
//! bodies without looking at the HTTP status, which is why the parsers also
//! say what Zoi ends up with when the body is junk.

use std::collections::BTreeSet;

/// `.hash`: `<128 lowercase hex SHA-512>  <archive file name>\n` (two
/// spaces, like `sha512sum`).
pub fn hash_body(sha512_hex: &str, file_name: &str) -> String {
    format!("{sha512_hex}  {file_name}\n")
}

/// `.size`: `down: <archive bytes>\ninstall: <unpacked bytes>\n`.
pub fn size_body(down: u64, install: u64) -> String {
    format!("down: {down}\ninstall: {install}\n")
}

/// `.files`: the paths de-duplicated, sorted by bytes (Rust's `str` order,
/// which is Zoi's `Vec<String>::sort`), joined with `\n` and with **no**
/// trailing newline. No paths give an empty body.
pub fn files_body<I, S>(paths: I) -> String
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let set: BTreeSet<String> = paths.into_iter().map(Into::into).collect();
    set.into_iter().collect::<Vec<_>>().join("\n")
}

/// The hash algorithm Zoi picks from a hash token's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Sha512,
    Sha256,
    /// 32 hex digits: Zoi's parser accepts the token, but its verifier knows
    /// no 32-digit algorithm and fails the install ("Unsupported hash length").
    Unsupported32,
}

impl HashKind {
    fn of(token: &str) -> Option<HashKind> {
        if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        match token.len() {
            128 => Some(HashKind::Sha512),
            64 => Some(HashKind::Sha256),
            32 => Some(HashKind::Unsupported32),
            _ => None,
        }
    }
}

/// What Zoi takes from a `.hash` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashRead<'a> {
    /// A 128/64/32-digit hex token (any case; Zoi lower-cases before
    /// comparing).
    Hash { token: &'a str, kind: HashKind },
    /// No hex token anywhere: Zoi falls back to the body's first word (or
    /// the empty string) and the install fails with "Unsupported hash
    /// length: N". This is what a 404 page served as `.hash` turns into.
    Junk { first_word: &'a str },
}

impl HashRead<'_> {
    /// The SHA-512 hex digits, lower-cased, when the token is one.
    pub fn sha512(&self) -> Option<String> {
        match self {
            HashRead::Hash {
                token,
                kind: HashKind::Sha512,
            } => Some(token.to_ascii_lowercase()),
            _ => None,
        }
    }
}

/// Reads a `.hash` body as Zoi's installer does: on the first line that
/// *contains* `file_name` (a substring test, as Zoi's), the first
/// whitespace-separated 128/64/32-hex token; failing that, the first such
/// token anywhere in the body. With `file_name = None` only the second rule
/// applies, which is also how `zoi sync` reads it when it pre-fetches.
pub fn parse_hash<'a>(body: &'a str, file_name: Option<&str>) -> HashRead<'a> {
    let token_in = |text: &'a str| {
        text.split_whitespace()
            .find_map(|w| HashKind::of(w).map(|kind| HashRead::Hash { token: w, kind }))
    };
    if let Some(name) = file_name {
        // Zoi only looks at the first token of the first naming line that
        // has one; a later naming line is never consulted if an earlier one
        // already had a token.
        for line in body.lines().filter(|l| l.contains(name)) {
            if let Some(found) = token_in(line) {
                return found;
            }
        }
    }
    token_in(body).unwrap_or(HashRead::Junk {
        first_word: body.split_whitespace().next().unwrap_or_default(),
    })
}

/// Sizes from a `.size` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sizes {
    /// Download size: the archive's bytes.
    pub down: u64,
    /// Install size: the bytes of the archive's regular files, unpacked.
    pub install: u64,
}

/// Reads a `.size` body as Zoi's installer does: every `key: value` line
/// whose value is an unsigned integer, keys `down` and `install` (trimmed;
/// the last occurrence wins; others ignored). A body with neither key that
/// is a bare integer is the download size. `None` when nothing was
/// recognised; Zoi then proceeds with `0` for both.
///
/// `zoi sync`'s pre-fetch reads only the `key: value` lines; a bare integer
/// is lost there, so [`size_body`]'s two-line form is the one to serve.
pub fn parse_size(body: &str) -> Option<Sizes> {
    let mut sizes = Sizes::default();
    let mut found = false;
    for line in body.lines() {
        if let Some((key, val)) = line.split_once(':')
            && let Ok(n) = val.trim().parse::<u64>()
        {
            match key.trim() {
                "down" => {
                    sizes.down = n;
                    found = true;
                }
                "install" => {
                    sizes.install = n;
                    found = true;
                }
                _ => {}
            }
        }
    }
    if found {
        return Some(sizes);
    }
    body.trim()
        .parse::<u64>()
        .ok()
        .map(|down| Sizes { down, install: 0 })
}

/// Reads a `.files` body as Zoi does: lines, trimmed, blank ones dropped.
/// (Zoi neither sorts nor de-duplicates what it reads; neither do we.)
pub fn parse_files(body: &str) -> Vec<&str> {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Why a path Zoi would install (a `.files` line, a `.zpa` manifest's
/// `dest`/`link`/`path`) lands outside the roots it maps (`${pkgstore}`,
/// `${usrroot}`, `${usrhome}`): an absolute path or a `..` segment. The one
/// rule `index` and `check` both apply.
pub fn install_path_problem(path: &str) -> Option<&'static str> {
    let b = path.as_bytes();
    let windows_abs = b.len() > 2 && b[1] == b':' && b[0].is_ascii_alphabetic();
    if path.starts_with('/') || path.starts_with('\\') || windows_abs {
        return Some("is an absolute path");
    }
    if path.split(['/', '\\']).any(|seg| seg == "..") {
        return Some("has a '..' segment, escaping the store");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_paths_stay_inside_the_roots() {
        assert_eq!(install_path_problem("${pkgstore}/bin/x"), None);
        for bad in [
            "/etc/passwd",
            "${pkgstore}/../../../etc/cron.d/x",
            "../x",
            "C:/Windows/x",
            "\\\\server\\x",
            "${usrroot}\\..\\x",
        ] {
            assert!(install_path_problem(bad).is_some(), "{bad}");
        }
    }

    const H: &str = "1fd838c77874aa9a93da12970491c20dc0aaefb085330ab6144e118c2e8a2731498422d29d2f8d4611d8d198d8d8e48b7a76d3c2f39ad5a05d1d1971316b4e40";

    #[test]
    fn bodies_match_zoi_build() {
        assert_eq!(
            hash_body(H, "tinytool-1.0.0-linux-amd64.zpa"),
            format!("{H}  tinytool-1.0.0-linux-amd64.zpa\n")
        );
        assert_eq!(size_body(755, 2783), "down: 755\ninstall: 2783\n");
        assert_eq!(
            files_body([
                "${pkgstore}/pkgstore/",
                "${pkgstore}/bin/tinytool",
                "${pkgstore}/bin/",
                "${pkgstore}/bin/tinytool",
            ]),
            "${pkgstore}/bin/\n${pkgstore}/bin/tinytool\n${pkgstore}/pkgstore/"
        );
        assert_eq!(files_body(Vec::<String>::new()), "");
    }

    #[test]
    fn files_sort_by_bytes_not_locale() {
        // 'B' (0x42) < '_' (0x5f) < 'a' (0x61); '/' (0x2f) < '0'.
        assert_eq!(files_body(["a", "_", "B", "a0", "a/"]), "B\n_\na\na/\na0");
    }

    #[test]
    fn hash_prefers_the_line_naming_the_file() {
        let other = "a".repeat(128);
        let body = format!("{other}  other.zpa\n{H}  x.zpa\n");
        assert_eq!(
            parse_hash(&body, Some("x.zpa")).sha512().as_deref(),
            Some(H)
        );
        // Without a name, or when no line names the file: first token.
        assert_eq!(parse_hash(&body, None).sha512(), Some(other.clone()));
        assert_eq!(parse_hash(&body, Some("y.zpa")).sha512(), Some(other));
    }

    #[test]
    fn hash_name_match_is_a_substring_test() {
        // "x.zpa" is contained in "xx.zpa": Zoi takes that line.
        let a = "a".repeat(128);
        let body = format!("{a}  xx.zpa\n{H}  x.zpa\n");
        assert_eq!(parse_hash(&body, Some("x.zpa")).sha512(), Some(a));
    }

    #[test]
    fn hash_accepts_bare_uppercase_and_other_lengths() {
        let upper = H.to_ascii_uppercase();
        assert_eq!(parse_hash(&upper, Some("x")).sha512().as_deref(), Some(H));
        let s256 = "b".repeat(64);
        assert_eq!(
            parse_hash(&format!("{s256}\n"), None),
            HashRead::Hash {
                token: &s256,
                kind: HashKind::Sha256
            }
        );
        let s32 = "c".repeat(32);
        assert_eq!(
            parse_hash(&s32, None),
            HashRead::Hash {
                token: &s32,
                kind: HashKind::Unsupported32
            }
        );
        // 127 digits, or a non-hex character, is not a token.
        assert!(matches!(parse_hash(&H[1..], None), HashRead::Junk { .. }));
        let g = format!("g{}", &H[1..]);
        assert!(matches!(parse_hash(&g, None), HashRead::Junk { .. }));
    }

    #[test]
    fn hash_junk_is_the_first_word() {
        let page = "<html><head><title>404 Not Found</title>";
        assert_eq!(
            parse_hash(page, Some("x.zpa")),
            HashRead::Junk {
                first_word: "<html><head><title>404"
            }
        );
        assert_eq!(parse_hash("", None), HashRead::Junk { first_word: "" });
    }

    #[test]
    fn size_reads_keys_and_bare_integers() {
        assert_eq!(
            parse_size("down: 755\ninstall: 2783\n"),
            Some(Sizes {
                down: 755,
                install: 2783
            })
        );
        // Order, spacing and unknown keys do not matter; the last one wins.
        assert_eq!(
            parse_size("install:1\n  down :  2 \nother: 9\ndown: 3"),
            Some(Sizes {
                down: 3,
                install: 1
            })
        );
        assert_eq!(
            parse_size(" 42\n"),
            Some(Sizes {
                down: 42,
                install: 0
            })
        );
        assert_eq!(
            parse_size("install: 7"),
            Some(Sizes {
                down: 0,
                install: 7
            })
        );
        assert_eq!(parse_size("down: -1\nnope"), None);
        assert_eq!(parse_size("<html>404</html>"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn files_read_like_zoi() {
        assert_eq!(parse_files("a\n\n  b  \r\nc"), vec!["a", "b", "c"]);
        assert!(parse_files("").is_empty());
    }

    #[test]
    fn written_bodies_read_back() {
        let h = hash_body(H, "x.zpa");
        assert_eq!(parse_hash(&h, Some("x.zpa")).sha512().as_deref(), Some(H));
        assert_eq!(
            parse_size(&size_body(1, 2)),
            Some(Sizes {
                down: 1,
                install: 2
            })
        );
        assert_eq!(parse_files(&files_body(["b", "a"])), vec!["a", "b"]);
    }
}
