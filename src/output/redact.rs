//! What every printed byte goes through: registered secrets replaced by
//! `***` (the registry is net's, [`crate::net::redact`]: the client takes
//! the secrets and its messages are redacted where they are made), and (on
//! stderr) terminal controls escaped.

use std::io::Write;

use crate::net::redact::redact_secrets;

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

/// A writer that replaces every registered secret by `***` in the bytes
/// passing through it, for a JSON document streamed by the serialiser (a
/// check of 400,000 URLs is hundreds of MB: redacting a whole
/// `serde_json::Value` held all of it in memory, and, that map being
/// sorted, printed the keys in another order than an unredacted run).
///
/// Inside a JSON string a secret appears escaped, so both its plain and its
/// JSON-escaped spelling are looked for. A match may straddle two writes:
/// the last `longest - 1` bytes are held back until more arrive or
/// [`finish`](Redacting::finish). Longest match first, as [`redact_secrets`].
pub(super) struct Redacting<W: Write> {
    inner: W,
    matcher: aho_corasick::AhoCorasick,
    /// Bytes that may still begin a secret.
    held: Vec<u8>,
    longest: usize,
}

/// A [`Redacting`] writer over `inner`, or `None` when no secret is
/// registered (the stream then needs no pass at all).
pub(super) fn redacting<W: Write>(inner: W) -> Option<Redacting<W>> {
    redacting_these(inner, &crate::net::redact::secrets())
}

fn redacting_these<W: Write>(inner: W, secrets: &[String]) -> Option<Redacting<W>> {
    let mut patterns: Vec<String> = Vec::new();
    for s in secrets.iter() {
        // The string's JSON spelling, without its quotes.
        let quoted = serde_json::to_string(s).unwrap_or_default();
        let escaped = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or(s)
            .to_string();
        for p in [s.clone(), escaped] {
            if !p.is_empty() && !patterns.contains(&p) {
                patterns.push(p);
            }
        }
    }
    let longest = patterns.iter().map(String::len).max()?;
    let matcher = aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(&patterns)
        .ok()?;
    Some(Redacting {
        inner,
        matcher,
        held: Vec::new(),
        longest,
    })
}

impl<W: Write> Redacting<W> {
    /// Writes out what is held and returns the inner writer.
    pub(super) fn finish(mut self) -> std::io::Result<W> {
        self.pass(true)?;
        Ok(self.inner)
    }

    /// Writes out the held bytes that can no longer be the start of a
    /// secret (all of them at the end of the stream), redacted.
    fn pass(&mut self, end: bool) -> std::io::Result<()> {
        // A match starting before `safe` lies wholly within `held`; one
        // starting at or after it may still be growing.
        let safe = if end {
            self.held.len()
        } else {
            self.held.len().saturating_sub(self.longest - 1)
        };
        let mut done = 0;
        for m in self.matcher.find_iter(&self.held) {
            if m.start() >= safe {
                break;
            }
            self.inner.write_all(&self.held[done..m.start()])?;
            self.inner.write_all(b"***")?;
            done = m.end();
        }
        let upto = safe.max(done);
        self.inner.write_all(&self.held[done..upto])?;
        self.held.drain(..upto);
        Ok(())
    }
}

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.held.extend_from_slice(buf);
        // Batches small writes (serde_json writes token by token).
        if self.held.len() >= (1 << 16) + self.longest {
            self.pass(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `doc` serialised through a redacting writer over `secrets`, fed to
    /// it `chunk` bytes per write.
    fn through(doc: &impl serde::Serialize, secrets: &[&str], chunk: usize) -> String {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let bytes = serde_json::to_vec_pretty(doc).unwrap();
        let mut r = redacting_these(Vec::new(), &secrets).unwrap();
        for c in bytes.chunks(chunk) {
            r.write_all(c).unwrap();
        }
        String::from_utf8(r.finish().unwrap()).unwrap()
    }

    #[test]
    fn a_secret_split_across_writes_is_still_redacted() {
        let doc = serde_json::json!({"url": "http://h/x?t=tok-123456789", "n": [1, 2]});
        let want = serde_json::to_string_pretty(&doc)
            .unwrap()
            .replace("tok-123456789", "***");
        for chunk in [1, 2, 3, 7, 64, 1 << 20] {
            assert_eq!(through(&doc, &["tok-123456789"], chunk), want, "{chunk}");
        }
    }

    #[test]
    fn a_secret_is_found_in_its_json_spelling() {
        let secret = "ab\"cd\\ef\u{1}gh";
        let doc = serde_json::json!({"error": format!("server said {secret}!")});
        let out = through(&doc, &[secret], 5);
        assert!(out.contains("server said ***!"), "{out}");
        assert!(!out.contains("cd"), "{out}");
        serde_json::from_str::<serde_json::Value>(&out).expect("still JSON");
    }

    #[test]
    fn the_longest_secret_wins_and_nothing_else_changes() {
        // `Bearer <token>` registers the whole value and the token alone.
        #[derive(serde::Serialize)]
        struct Doc {
            z: &'static str,
            a: &'static str,
        }
        let doc = Doc {
            z: "Bearer tok-42424242 and tok-42424242",
            a: "plain",
        };
        let out = through(&doc, &["Bearer tok-42424242", "tok-42424242"], 4);
        let want = serde_json::to_string_pretty(&doc)
            .unwrap()
            .replace("Bearer tok-42424242", "***")
            .replace("tok-42424242", "***");
        // Same bytes, so the keys stay in the serialiser's order.
        assert_eq!(out, want);
        assert!(out.find("\"z\"") < out.find("\"a\""), "{out}");
    }

    #[test]
    fn no_secret_means_no_pass() {
        assert!(redacting_these(Vec::new(), &[]).is_none());
    }
}
