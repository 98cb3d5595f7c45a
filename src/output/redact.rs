//! What every printed byte goes through: registered secrets replaced by
//! `***`, and (on stderr) terminal controls escaped.

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

/// Whether any secret is registered (the JSON printer skips its redacting
/// pass otherwise).
pub(super) fn any() -> bool {
    SECRETS.read().is_ok_and(|s| !s.is_empty())
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

/// The first `max` characters of what a server sent, for a message: secrets
/// are redacted *before* it is cut, so no part of one survives the cut.
pub fn excerpt(text: &str, max: usize) -> String {
    redact_secrets(text).chars().take(max).collect()
}

/// `text` made safe for a terminal: control characters (C0 but newline and
/// tab, DEL, C1) and the Unicode line/paragraph separators are shown as
/// `\u{…}` escapes, so a value from a spec, a config or a server can never
/// drive the terminal (`ESC[2J`) or forge a line of output.
pub fn escape_controls(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}') {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// What every stderr line goes through: secrets redacted, controls escaped.
pub fn printable(text: &str) -> String {
    escape_controls(&redact_secrets(text))
}

/// Every string in a JSON value with the registered secrets redacted.
pub(super) fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            let r = redact_secrets(s);
            if r != *s {
                *s = r;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(redact_json),
        _ => {}
    }
}
