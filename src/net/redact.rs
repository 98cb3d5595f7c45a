//! How URLs and messages are shown: credentials never reach a log line, an
//! error message or JSON output. URLs lose their user info; git's messages
//! lose every URL's credentials, including URLs git rewrote itself; and the
//! secrets a command was given (header values) are replaced by `***`
//! wherever they appear: in the messages made here ([`super::problem`]) and,
//! through the printer ([`crate::output`]), in everything printed.

use std::sync::RwLock;

/// Secret values (request header values) that must never be printed, set
/// once by the command that received them.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a value to redact from everything printed (stdout, stderr,
/// JSON). Values shorter than 4 bytes are not registered: replacing them
/// would mangle ordinary text and they protect nothing.
pub fn register_secret(value: &str) {
    let v = value.trim();
    if v.len() < 4 {
        return;
    }
    if let Ok(mut s) = SECRETS.write() {
        let mut parts = vec![v.to_string()];
        // `Bearer <token>`: the token alone is as secret as the whole value.
        if let Some((_, token)) = v.split_once(char::is_whitespace)
            && token.trim().len() >= 4
        {
            parts.push(token.trim().to_string());
        }
        for p in parts {
            if !s.contains(&p) {
                s.push(p);
            }
        }
        // Longest first, so a value containing another is replaced whole.
        s.sort_by_key(|x| std::cmp::Reverse(x.len()));
    }
}

/// `text` with every registered secret replaced by `***`.
pub fn redact_secrets(text: &str) -> String {
    let Ok(secrets) = SECRETS.read() else {
        return text.to_string();
    };
    let mut out = text.to_string();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// The registered secrets, longest first (none when the registry is
/// poisoned, as [`redact_secrets`] then redacts nothing): for the printer's
/// streaming redactor, which matches them all at once.
pub fn secrets() -> Vec<String> {
    SECRETS.read().map(|s| s.clone()).unwrap_or_default()
}

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

    /// The registry is process-wide: these values are this test's own.
    #[test]
    fn registered_secrets_are_redacted_longest_first() {
        register_secret("  Bearer unit-t0ken-2c1f  ");
        register_secret("abc");
        let out = redact_secrets("a: Bearer unit-t0ken-2c1f, b: unit-t0ken-2c1f, c: abc");
        assert_eq!(out, "a: ***, b: ***, c: abc");
        let s = secrets();
        let at = |v: &str| s.iter().position(|x| x == v).unwrap();
        assert!(
            at("Bearer unit-t0ken-2c1f") < at("unit-t0ken-2c1f"),
            "{s:?}"
        );
        assert!(!s.iter().any(|x| x == "abc"), "too short to register");
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact("https://u:secret@h/x"), "https://***@h/x");
        assert_eq!(redact("https://token@h/x"), "https://***@h/x");
        assert_eq!(redact("https://h/x"), "https://h/x");
        assert_eq!(redact("git@h:z.git"), "git@h:z.git");
    }
}
