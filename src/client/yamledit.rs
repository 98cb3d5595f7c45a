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

/// The exact text of top-level `key`'s block (its key line and value lines,
/// `\n`-joined, no trailing newline), when `text` can be spliced.
pub fn block_text(text: &str, key: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let found = blocks(&lines).ok()?;
    let mut matching = found.iter().filter(|b| b.key == key);
    let b = matching.next()?;
    if matching.next().is_some() {
        return None;
    }
    Some(
        lines[b.start..b.end]
            .iter()
            .map(|l| l.trim_end_matches('\r'))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// One block-sequence item line: `<indent>- <scalar>[  # comment]`.
fn list_item(line: &str) -> Option<(usize, String)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = &line[indent..];
    if !rest.starts_with("- ") && rest.trim_end() != "-" {
        return None;
    }
    let v: Vec<String> = serde_yaml::from_str(rest).ok()?;
    match v.as_slice() {
        [one] => Some((indent, one.clone())),
        _ => None,
    }
}

/// A list block rewritten entry by entry: the lines of entries that stay
/// are kept byte for byte (with their comments and indentation), removed
/// entries' lines go, new entries are appended in the block's own style.
/// `None` when the block or the change does not allow it.
fn splice_list(block: &[String], new: &[String]) -> Option<Vec<String>> {
    let head = block.first()?;
    // `key:` with nothing but a comment after it.
    let after_colon = head.trim_end_matches('\r').split_once(':')?.1.trim();
    if !(after_colon.is_empty() || after_colon.starts_with('#')) {
        return None;
    }
    let mut out = vec![head.clone()];
    let mut kept: Vec<String> = Vec::new();
    let mut indent = None;
    let mut last_item = 0;
    for line in &block[1..] {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            out.push(line.clone());
            continue;
        }
        let (ind, value) = list_item(line.trim_end_matches('\r'))?;
        if *indent.get_or_insert(ind) != ind {
            return None;
        }
        if new.contains(&value) && !kept.contains(&value) {
            kept.push(value);
            out.push(line.clone());
            last_item = out.len();
        }
    }
    let indent = indent?;
    if !new.starts_with(&kept) || new[kept.len()..].iter().any(|n| kept.contains(n)) {
        return None;
    }
    let mut added = Vec::new();
    for n in &new[kept.len()..] {
        let item = serde_yaml::to_string(&vec![n]).ok()?;
        for l in item.lines() {
            added.push(format!("{}{l}", " ".repeat(indent)));
        }
    }
    if kept.is_empty() {
        // Nothing left to anchor the new entries: let the serialiser write it.
        if new.is_empty() {
            return None;
        }
        last_item = out.len();
    }
    out.splice(last_item..last_item, added);
    Some(out)
}

/// Replaces top-level `key`'s block with `raw` (as returned by
/// [`block_text`]), only if the result reads back with `key` equal to
/// `expected` and every other key unchanged.
pub fn set_raw(text: &str, key: &str, raw: &str, expected: &Value) -> Result<String, Unsupported> {
    set_keys_inner(
        text,
        &[(key.to_string(), Some(expected.clone()))],
        Some(raw),
    )
}

/// Sets (`Some`) or removes (`None`) top-level `key`s in `text`.
///
/// Returns the new text, or `Unsupported` when the document's style does
/// not allow a faithful splice (the caller then re-serialises).
pub fn set_keys(text: &str, edits: &[(String, Option<Value>)]) -> Result<String, Unsupported> {
    set_keys_inner(text, edits, None)
}

fn set_keys_inner(
    text: &str,
    edits: &[(String, Option<Value>)],
    raw: Option<&str>,
) -> Result<String, Unsupported> {
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
        let existing: Option<Vec<String>> =
            matching.first().map(|b| lines[b.start..b.end].to_vec());
        let as_list = |v: &Value| serde_yaml::from_value::<Vec<String>>(v.clone()).ok();
        let new_lines: Vec<String> = match (raw, value) {
            (Some(r), _) => r.lines().map(str::to_string).collect(),
            (None, Some(v)) => match (existing.as_deref(), as_list(v)) {
                (Some(block), Some(list)) if splice_list(block, &list).is_some() => {
                    splice_list(block, &list).unwrap_or_default()
                }
                _ => fragment(key, v)
                    .map_err(|e| Unsupported(e.to_string()))?
                    .lines()
                    .map(str::to_string)
                    .collect(),
            },
            (None, None) => Vec::new(),
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
