//! Where an input named on the command line comes from (`--index`,
//! `--repo-yaml`, `--upstream-repo-yaml`, `--beacon`, a bundle): an http(s)
//! URL, or a local path — also written as a `file://` URL.
//!
//! Only text that starts with `scheme://` is a URL; anything else is a path,
//! `:` and all (`backup:2024/packages.json`, `C:\zoi\packages.json`). A
//! one-letter "scheme" is a Windows drive (`C://zoi/packages.json`), not a
//! URL. Any other scheme (`ftp://`, `s3://`, `git://`, …) is refused as a
//! usage error naming it: read as a path it would only fail later as "not
//! found", about a file nobody meant.

use std::path::PathBuf;

use crate::error::{ErrorKind, Failure};
use crate::net::redact::redact;

/// A command-line input: downloaded, or read from this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Url(url::Url),
    Path(PathBuf),
}

/// The scheme of `s` when it starts with `scheme://` (RFC 3986: a letter,
/// then letters, digits, `+`, `-`, `.`), lowercased; a one-letter scheme
/// is a drive letter, not a scheme.
fn scheme_of(s: &str) -> Option<String> {
    let (scheme, _) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let ok = first.is_ascii_alphabetic()
        && scheme.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    ok.then(|| scheme.to_ascii_lowercase())
}

/// Reads `s`, given for `what` (`packages.json`, `repo.yaml`, …), as an
/// http(s) URL or a path. A `file://` URL is the path it names (on this
/// machine only); any other `scheme://` is a usage error (exit 2).
pub fn parse(what: &str, s: &str) -> Result<Input, Failure> {
    let Some(scheme) = scheme_of(s) else {
        return Ok(Input::Path(PathBuf::from(s)));
    };
    let shown = redact(s);
    let bad_url = |e: url::ParseError| {
        Failure::new(
            ErrorKind::Usage,
            format!("{what} {shown} is not a valid URL: {e}"),
        )
        .hint("give an http(s) URL or a file path")
    };
    match scheme.as_str() {
        "http" | "https" => url::Url::parse(s).map(Input::Url).map_err(bad_url),
        "file" => {
            let u = url::Url::parse(s).map_err(bad_url)?;
            u.to_file_path().map(Input::Path).map_err(|()| {
                Failure::new(
                    ErrorKind::Usage,
                    format!(
                        "{what} {shown}: a file:// URL names a file on this machine (file:///path), not on host {:?}",
                        u.host_str().unwrap_or_default()
                    ),
                )
                .hint("give the file's path, or an http(s) URL for a file on another host")
            })
        }
        _ => Err(Failure::new(
            ErrorKind::Usage,
            format!(
                "{what} {shown}: URL scheme `{scheme}` is not supported (only http, https and file)"
            ),
        )
        .hint(format!(
            "give an http(s) URL or a file path (a path that really starts with `{scheme}://` is written ./{scheme}://…)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Input {
        Input::Path(PathBuf::from(s))
    }

    #[test]
    fn paths_stay_paths_colons_and_all() {
        for s in [
            "packages.json",
            "./dir/packages.json",
            "/srv/zoi/packages.json",
            "backup:2024/packages.json",
            "a:b",
            r"C:\zoi\packages.json",
            "C:/zoi/packages.json",
            "C://zoi/packages.json",
            "./ftp://x",
            "dir with space://x",
            "",
        ] {
            assert_eq!(parse("packages.json", s).unwrap(), path(s), "{s:?}");
        }
    }

    #[test]
    fn http_and_https_are_urls_in_any_case() {
        for s in ["http://h/p.json", "https://h/p.json", "HTTPS://h/p.json"] {
            assert!(
                matches!(parse("packages.json", s).unwrap(), Input::Url(_)),
                "{s}"
            );
        }
    }

    #[test]
    fn a_local_file_url_is_its_path() {
        assert_eq!(
            parse("packages.json", "file:///srv/z/packages.json").unwrap(),
            path("/srv/z/packages.json")
        );
        assert_eq!(
            parse("packages.json", "file://localhost/srv/p.json").unwrap(),
            path("/srv/p.json")
        );
        let e = parse("packages.json", "file://other/srv/p.json").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Usage);
        assert!(e.message.contains("\"other\""), "{}", e.message);
    }

    #[test]
    fn any_other_scheme_is_a_usage_error_naming_url_and_scheme() {
        for (s, scheme) in [
            ("ftp://host/packages.json", "ftp"),
            ("FTP://host/packages.json", "ftp"),
            ("s3://bucket/packages.json", "s3"),
            ("git+ssh://h/x", "git+ssh"),
        ] {
            let e = parse("packages.json", s).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Usage, "{s}");
            assert!(
                e.message.contains(s) && e.message.contains(&format!("`{scheme}`")),
                "{}",
                e.message
            );
            assert!(
                e.hint
                    .as_deref()
                    .unwrap()
                    .starts_with("give an http(s) URL or a file path"),
                "{:?}",
                e.hint
            );
        }
        // credentials in the URL are not shown
        let e = parse("packages.json", "ftp://bob:s3cret@host/p.json").unwrap_err();
        assert!(!e.message.contains("s3cret"), "{}", e.message);
    }
}
