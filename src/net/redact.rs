//! How URLs and messages are shown: credentials never reach a log line, an
//! error message or JSON output. URLs lose their user info; git's messages
//! lose every URL's credentials, including URLs git rewrote itself.

/// A URL fit for output: user info replaced by `***`.
pub fn redact(url: &str) -> String {
    // Credentials need an '@': without one there is nothing to hide, and
    // `check` calls this for every URL.
    if !url.contains('@') {
        return url.to_string();
    }
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("***");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => url.to_string(),
        // Not a URL (an scp-like git remote): hide anything before '@'.
        Err(_) => match url.split_once('@') {
            Some((_, rest)) if url.contains("://") => format!("***@{rest}"),
            _ => url.to_string(),
        },
    }
}

/// Removes every URL's credentials from git's messages.
pub fn scrub(text: &str, urls: &[&str]) -> String {
    let mut out = text.to_string();
    for u in urls {
        let r = redact(u);
        if r != *u {
            out = out.replace(u, &r);
        }
    }
    // git sometimes prints URLs it rewrote itself; catch `scheme://user:pw@`.
    let re_like = out
        .split_whitespace()
        .filter(|w| w.contains("://") && w.contains('@'))
        .map(|w| {
            (
                w.to_string(),
                redact(w.trim_matches(|c| c == '\'' || c == '"')),
            )
        })
        .collect::<Vec<_>>();
    for (raw, red) in re_like {
        if !red.contains("://***@") {
            continue;
        }
        out = out.replace(raw.trim_matches(|c| c == '\'' || c == '"'), &red);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_credentials_from_git_messages() {
        let msg = "fatal: unable to access 'https://bob:s3cret@git.example/z.git/': refused";
        let out = scrub(msg, &["https://bob:s3cret@git.example/z.git"]);
        assert!(!out.contains("s3cret") && !out.contains("bob"), "{out}");
        let out = scrub("remote: https://u:p@h/x failed", &[]);
        assert!(!out.contains("u:p@"), "{out}");
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact("https://u:secret@h/x"), "https://***@h/x");
        assert_eq!(redact("https://token@h/x"), "https://***@h/x");
        assert_eq!(redact("https://h/x"), "https://h/x");
        assert_eq!(redact("git@h:z.git"), "git@h:z.git");
    }
}
