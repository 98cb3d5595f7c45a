//! The URL and key-id rules every value of `mirror.toml` that ends up in a
//! client's config passes, with the reason in words when it fails.
//!
//! - an http(s) URL (binary host, key, cache mirror, setup): parses, has a
//!   host, uses `http` or `https` (Zoi fetches archives and metadata over
//!   nothing else), and embeds no credentials (they would be copied into
//!   every client's config);
//! - a git URL (registry, mirrors, extra registries): `https`, `http`,
//!   `git`, `ssh` or `file`, or scp-like `user@host:path`; no password, and
//!   no user name over http(s);
//! - neither may contain whitespace or control characters;
//! - a key fingerprint is 40 or 64 hex digits (whitespace ignored).

/// Why `url` is not a plain http(s) URL, if it is not.
pub(super) fn http_url_problem(url: &str) -> Option<String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("{url:?} contains whitespace or control characters"));
    }
    match url::Url::parse(url) {
        Err(e) => Some(format!("'{url}' is not a valid URL ({e})")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Some(format!(
            "'{url}' uses the `{}` scheme; Zoi fetches archives and metadata over http(s) only",
            u.scheme()
        )),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some(format!("'{url}' has no host")),
        Ok(u) if !u.username().is_empty() || u.password().is_some() => Some(format!(
            "'{url}' embeds credentials, which would be copied into every client's config"
        )),
        Ok(_) => None,
    }
}

/// Why `url` is not something `git clone` and Zoi's sync accept, if it is not.
pub(super) fn git_url_problem(url: &str) -> Option<String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("{url:?} contains whitespace or control characters"));
    }
    if !url.contains("://") {
        // scp-like `user@host:path`
        let scp = url.split_once(':').is_some_and(|(host, path)| {
            !host.is_empty() && !path.is_empty() && !host.contains('/')
        });
        return (!scp).then(|| {
            format!("'{url}' is not a git URL (expected https://, http://, git://, ssh://, file:// or user@host:path)")
        });
    }
    match url::Url::parse(url) {
        Err(e) => Some(format!("'{url}' is not a valid URL ({e})")),
        Ok(u) if !matches!(u.scheme(), "http" | "https" | "git" | "ssh" | "file") => Some(format!(
            "'{url}' uses the `{}` scheme; git remotes are https, http, git, ssh or file",
            u.scheme()
        )),
        Ok(u)
            if u.password().is_some()
                || (matches!(u.scheme(), "http" | "https") && !u.username().is_empty()) =>
        {
            Some(format!(
                "'{url}' embeds credentials, which would be copied into every client's config"
            ))
        }
        Ok(_) => None,
    }
}

pub(super) fn is_fingerprint(s: &str) -> bool {
    let hex: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    matches!(hex.len(), 40 | 64) && hex.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls() {
        for ok in [
            "https://git.example.com/z.git",
            "git://127.0.0.1:9418/z.git",
            "ssh://git@h/z.git",
            "git@h:z/z.git",
            "file:///srv/z.git",
        ] {
            assert_eq!(git_url_problem(ok), None, "{ok}");
        }
        for bad in [
            "ftp://h/z",
            "not a url",
            "https://u:p@h/z.git",
            "/srv/z.git",
        ] {
            assert!(git_url_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn http_urls() {
        assert_eq!(http_url_problem("https://bin.example.com/pkgs"), None);
        assert!(http_url_problem("ftp://bin.example.com").is_some());
        assert!(http_url_problem("https://user:pw@bin.example.com").is_some());
    }
}
