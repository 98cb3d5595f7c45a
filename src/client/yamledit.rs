//! Replacing top-level keys of a YAML document without losing the rest.
//!
//! A user's `config.yaml` carries comments and keys we do not manage; a
//! serde round trip would drop both. Zoi's config is a block mapping at the
//! top level, so each top-level key owns a contiguous run of lines: its key
//! line, then indented lines (or `- ` items at column 0, which is how Zoi
//! and serde_yaml write sequences). We replace exactly that run with a
//! fragment produced by the YAML serialiser, and leave every other byte
//! alone. Comment lines at column 0 directly above a key belong to that key
//! and stay where they are.
//!
//! Every edit is verified by parsing the result: unmanaged keys must be
//! unchanged and managed keys must equal what was asked for. When the
//! document uses a style we do not splice (flow mapping at the top, several
//! documents, an anchor whose alias the edit would break), the caller falls
//! back to a full re-serialisation.

use serde_yaml::{Mapping, Value};

/// A top-level key and the line range `[start, end)` it occupies.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    key: String,
    start: usize,
    end: usize,
}

/// Why a document cannot be spliced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

fn top_level_key(line: &str) -> Option<String> {
    let first = line.chars().next()?;
    if first.is_whitespace()
        || matches!(
            first,
            '#' | '-' | '{' | '[' | '?' | '&' | '*' | '!' | '%' | '.'
        )
    {
        return None;
    }
    let (key, rest) = if first == '"' || first == '\'' {
        let close = line[1..].find(first)? + 1;
        (&line[1..close], &line[close + 1..])
    } else {
        let colon = line.find(':')?;
        (line[..colon].trim_end(), &line[colon..])
    };
    let rest = rest.trim_start();
    if !rest.starts_with(':') {
        return None;
    }
    let after = &rest[1..];
    (after.is_empty() || after.starts_with([' ', '\t', '\r'])).then(|| key.to_string())
}

fn blocks(lines: &[&str]) -> Result<Vec<Block>, Unsupported> {
    let mut out: Vec<Block> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" && i == 0 {
            continue;
        }
        if trimmed == "---" || trimmed == "..." || trimmed.starts_with("--- ") {
            return Err(Unsupported("the file has several YAML documents".into()));
        }
        if trimmed.starts_with('{') {
            return Err(Unsupported("the top level is a flow mapping".into()));
        }
        if let Some(key) = top_level_key(line) {
            if let Some(prev) = out.last_mut() {
                prev.end = i;
            }
            out.push(Block {
                key,
                start: i,
                end: lines.len(),
            });
        }
    }
    // Column-0 comments and blank lines at the end of a block introduce the
    // next key; they are not part of the value above them.
    let n = out.len();
    for (idx, b) in out.iter_mut().enumerate() {
        if idx + 1 == n {
            continue;
        }
        while b.end > b.start + 1 {
            let l = lines[b.end - 1];
            if l.trim().is_empty() || l.starts_with('#') {
                b.end -= 1;
            } else {
                break;
            }
        }
    }
    Ok(out)
}

/// A one-key YAML fragment written by the serialiser.
fn fragment(key: &str, value: &Value) -> Result<String, serde_yaml::Error> {
    let mut m = Mapping::new();
    m.insert(Value::String(key.to_string()), value.clone());
    serde_yaml::to_string(&m)
}

/// Sets (`Some`) or removes (`None`) top-level `key`s in `text`.
///
/// Returns the new text, or `Unsupported` when the document's style does
/// not allow a faithful splice (the caller then re-serialises).
pub fn set_keys(text: &str, edits: &[(String, Option<Value>)]) -> Result<String, Unsupported> {
    let original: Value = serde_yaml::from_str(text)
        .map_err(|e| Unsupported(format!("the file does not parse: {e}")))?;
    if !matches!(original, Value::Mapping(_) | Value::Null) {
        return Err(Unsupported("the top level is not a mapping".into()));
    }

    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let ends_with_newline = text.is_empty() || text.ends_with('\n');
    // An empty document may say so with `{}`, `null` or `~`: drop that
    // marker (comments stay) so keys can be appended as a block mapping.
    let is_empty = match &original {
        Value::Null => true,
        Value::Mapping(m) => m.is_empty(),
        _ => false,
    };
    if is_empty {
        lines.retain(|l| !matches!(l.trim(), "{}" | "null" | "~"));
    }

    for (key, value) in edits {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let found = blocks(&refs)?;
        let matching: Vec<&Block> = found.iter().filter(|b| &b.key == key).collect();
        if matching.len() > 1 {
            return Err(Unsupported(format!("the key `{key}` appears twice")));
        }
        let new_lines: Vec<String> = match value {
            Some(v) => fragment(key, v)
                .map_err(|e| Unsupported(e.to_string()))?
                .lines()
                .map(str::to_string)
                .collect(),
            None => Vec::new(),
        };
        match matching.first() {
            Some(b) => {
                let (start, end) = (b.start, b.end);
                lines.splice(start..end, new_lines);
            }
            None if value.is_some() => {
                // An empty document may be `{}` or `null` on one line.
                if lines.iter().all(|l| {
                    let t = l.trim();
                    t.is_empty()
                        || t.starts_with('#')
                        || t == "{}"
                        || t == "null"
                        || t == "~"
                        || t == "---"
                }) {
                    lines.retain(|l| {
                        let t = l.trim();
                        !(t == "{}" || t == "null" || t == "~")
                    });
                }
                lines.extend(new_lines);
            }
            None => {}
        }
    }

    // Keep the file's line endings (`lines()` dropped the `\r`s).
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines: Vec<String> = lines
        .into_iter()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect();
    let mut out = lines.join(eol);
    if ends_with_newline || !out.is_empty() {
        out.push_str(eol);
    }

    // Verify: the splice must mean exactly what was asked.
    let mut expected = match original {
        Value::Mapping(m) => m,
        _ => Mapping::new(),
    };
    for (key, value) in edits {
        let k = Value::String(key.clone());
        match value {
            Some(v) => {
                expected.insert(k, v.clone());
            }
            None => {
                expected.remove(&k);
            }
        }
    }
    let got: Value = serde_yaml::from_str(&out)
        .map_err(|e| Unsupported(format!("the edited text does not parse: {e}")))?;
    let got = match got {
        Value::Mapping(m) => m,
        Value::Null => Mapping::new(),
        _ => return Err(Unsupported("the edited text is not a mapping".into())),
    };
    if got != expected {
        return Err(Unsupported("the edited text does not round-trip".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).unwrap()
    }

    const USER: &str = "\
# My Zoi settings
telemetry_enabled: false   # never
repos:
- core
- extra

# where I keep archives
pkg_dirs:
  - /mnt/usb
jobs: 8
my_unknown_key: {a: 1}
";

    #[test]
    fn replaces_one_key_and_keeps_every_other_byte() {
        let out = set_keys(USER, &[("repos".into(), Some(v("[core, extra, acme]")))]).unwrap();
        assert_eq!(
            out,
            USER.replace("- extra\n", "- extra\n- acme\n"),
            "only the repos block may change"
        );
    }

    #[test]
    fn comment_above_next_key_stays_with_it() {
        let out = set_keys(USER, &[("repos".into(), Some(v("[main]")))]).unwrap();
        assert!(
            out.contains("repos:\n- main\n\n# where I keep archives\npkg_dirs:"),
            "{out}"
        );
    }

    #[test]
    fn appends_new_keys_and_removes_keys() {
        let out = set_keys(
            USER,
            &[
                ("cache_mirrors".into(), Some(v("[https://m]"))),
                ("jobs".into(), None),
            ],
        )
        .unwrap();
        assert!(
            out.ends_with("my_unknown_key: {a: 1}\ncache_mirrors:\n- https://m\n"),
            "{out}"
        );
        assert!(!out.contains("jobs"));
        assert!(out.starts_with("# My Zoi settings\ntelemetry_enabled: false   # never\n"));
    }

    #[test]
    fn nested_mappings_are_replaced_whole() {
        let text = "default_registry:\n  handle: ''\n  url: https://old\n  # a note\noffline_mode: false\n";
        let out = set_keys(
            text,
            &[(
                "default_registry".into(),
                Some(v("{handle: zoidberg, url: https://new}")),
            )],
        )
        .unwrap();
        assert_eq!(
            out,
            "default_registry:\n  handle: zoidberg\n  url: https://new\noffline_mode: false\n"
        );
    }

    #[test]
    fn empty_documents() {
        for text in ["", "{}\n", "# only a comment\n", "---\n"] {
            let out = set_keys(text, &[("repos".into(), Some(v("[core]")))]).unwrap();
            assert_eq!(v(&out), v("repos: [core]"), "{text:?} -> {out:?}");
        }
    }

    #[test]
    fn unsupported_styles_are_refused() {
        assert!(set_keys("{repos: [core]}\n", &[("repos".into(), None)]).is_err());
        assert!(set_keys("a: 1\n---\nb: 2\n", &[("a".into(), None)]).is_err());
        assert!(set_keys("- a\n- b\n", &[("a".into(), None)]).is_err());
    }

    #[test]
    fn quoted_keys_and_crlf() {
        let out = set_keys(
            "\"repos\": [a]\r\nx: 1\r\n",
            &[("repos".into(), Some(v("[b]")))],
        )
        .unwrap();
        assert_eq!(v(&out), v("repos: [b]\nx: 1"));
    }
}
