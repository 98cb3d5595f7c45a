//! The schema reader: span-aware access to the `toml_edit` tree of
//! `mirror.toml`, recording a [`Diagnostic`] instead of stopping.
//!
//! serde stops at the first error, which would make IT fix a spec one
//! complaint per run. So the document is parsed with `toml_edit` (which
//! keeps byte spans) and read through [`Sec`], whose accessors never fail:
//! each unknown key, wrong type, missing or empty value becomes a
//! diagnostic at the file, line and column of the offending text (the key
//! for an unknown key, the value otherwise, the table header for a missing
//! key), and the accessor returns `None`, so reading carries on. The rules:
//!
//! - an unknown key gets `did you mean` when one known key scores above 0.8
//!   (Jaro-Winkler), else the list of known keys of its table;
//! - every string (alone or in a list) is a single line of printable text
//!   ([`single_line`]): a control character or line break is reported at
//!   its own position, since it could forge a key in a generated YAML file
//!   or drive a terminal;
//! - an empty string in a list is an error; an optional key set to a blank
//!   string is an error, not the default (remove the key for that).

use std::ops::Range;
use std::path::Path;

use toml_edit::{Item, Table, TableLike, Value};

use crate::error::Diagnostic;

/// A value and where it was written.
#[derive(Debug, Clone)]
pub(super) struct Sp<T> {
    pub(super) value: T,
    pub(super) span: Option<Range<usize>>,
}

pub(super) struct Ctx<'a> {
    pub(super) file: &'a Path,
    pub(super) src: &'a str,
    pub(super) diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub(super) fn err(
        &mut self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let offset = span.map_or(0, |s| s.start);
        self.diags
            .push(Diagnostic::at(self.file, self.src, offset, message, hint));
    }

    /// Span of the `i`-th character of a string value, when the source text
    /// of the value is a plain quoted string (escapes make it approximate, so
    /// then we point at the value's start).
    pub(super) fn inner_span(&self, sp: &Sp<String>, byte: usize) -> Option<Range<usize>> {
        let span = sp.span.clone()?;
        let raw = self.src.get(span.clone())?;
        let quoted = raw.len() == sp.value.len() + 2 && raw[1..raw.len() - 1] == sp.value;
        if quoted {
            Some(span.start + 1 + byte..span.start + 2 + byte)
        } else {
            Some(span)
        }
    }
}

/// One table of the schema being read.
pub(super) struct Sec<'t> {
    pub(super) path: String,
    pub(super) table: &'t dyn TableLike,
    pub(super) span: Option<Range<usize>>,
}

pub(super) fn suggest(word: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(word, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.to_string())
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => v.type_name(),
        Item::Table(_) => "table",
        Item::ArrayOfTables(_) => "array of tables",
    }
}

impl<'t> Sec<'t> {
    pub(super) fn root(table: &'t Table) -> Self {
        Sec {
            path: String::new(),
            table,
            span: Some(0..0),
        }
    }

    pub(super) fn qualified(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table.key(key).and_then(|k| k.span())
    }

    pub(super) fn value_span(&self, key: &str) -> Option<Range<usize>> {
        self.table
            .get(key)
            .and_then(Item::span)
            .or_else(|| self.key_span(key))
    }

    pub(super) fn check_keys(&self, ctx: &mut Ctx<'_>, known: &[&str]) {
        for (key, _) in self.table.iter() {
            if known.contains(&key) {
                continue;
            }
            let hint = match suggest(key, known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "known keys{}: {}",
                    if self.path.is_empty() {
                        String::new()
                    } else {
                        format!(" in [{}]", self.path)
                    },
                    known.join(", ")
                ),
            };
            ctx.err(
                self.key_span(key),
                format!("unknown key `{}`", self.qualified(key)),
                Some(hint),
            );
        }
    }

    pub(super) fn missing(&self, ctx: &mut Ctx<'_>, key: &str, hint: &str) {
        let at = if self.path.is_empty() {
            "the top level".to_string()
        } else {
            format!("[{}]", self.path)
        };
        ctx.err(
            self.span.clone(),
            format!("missing required key `{}` in {at}", self.qualified(key)),
            Some(hint.to_string()),
        );
    }

    pub(super) fn wrong_type(&self, ctx: &mut Ctx<'_>, key: &str, expected: &str, item: &Item) {
        ctx.err(
            self.value_span(key),
            format!(
                "`{}` must be {expected}, found {}",
                self.qualified(key),
                type_name(item)
            ),
            None,
        );
    }

    pub(super) fn str(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Sp<String>> {
        let item = self.table.get(key)?;
        match item.as_str() {
            Some(s) => single_line(
                ctx,
                Sp {
                    value: s.to_string(),
                    span: self.value_span(key),
                },
                &self.qualified(key),
            ),
            None => {
                self.wrong_type(ctx, key, "a string", item);
                None
            }
        }
    }

    /// A string that must be present and not blank.
    pub(super) fn req_str(&self, ctx: &mut Ctx<'_>, key: &str, hint: &str) -> Option<Sp<String>> {
        if self.table.get(key).is_none() {
            self.missing(ctx, key, hint);
            return None;
        }
        let s = self.str(ctx, key)?;
        if s.value.trim().is_empty() {
            ctx.err(
                s.span.clone(),
                format!("`{}` is empty", self.qualified(key)),
                Some(hint.to_string()),
            );
            return None;
        }
        Some(s)
    }

    /// An optional string that, when present, must not be blank.
    pub(super) fn nonempty_str(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        hint: &str,
    ) -> Option<Sp<String>> {
        let s = self.str(ctx, key)?;
        if s.value.trim().is_empty() {
            ctx.err(
                s.span.clone(),
                format!("`{}` is empty", self.qualified(key)),
                Some(format!("remove the key to use the default, or {hint}")),
            );
            return None;
        }
        Some(s)
    }

    pub(super) fn bool(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<bool> {
        let item = self.table.get(key)?;
        match item.as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong_type(ctx, key, "true or false", item);
                None
            }
        }
    }

    /// An array of non-empty strings (absent → `None`).
    pub(super) fn str_list(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Vec<Sp<String>>> {
        let item = self.table.get(key)?;
        let Some(array) = item.as_array() else {
            self.wrong_type(ctx, key, "an array of strings", item);
            return None;
        };
        let mut out = Vec::new();
        for (i, v) in array.iter().enumerate() {
            match v.as_str() {
                Some(s) if s.trim().is_empty() => ctx.err(
                    v.span(),
                    format!("`{}[{i}]` is an empty string", self.qualified(key)),
                    Some("remove the empty entry".into()),
                ),
                Some(s) => out.extend(single_line(
                    ctx,
                    Sp {
                        value: s.to_string(),
                        span: v.span(),
                    },
                    &format!("{}[{i}]", self.qualified(key)),
                )),
                None => ctx.err(
                    v.span(),
                    format!(
                        "`{}[{i}]` must be a string, found {}",
                        self.qualified(key),
                        v.type_name()
                    ),
                    None,
                ),
            }
        }
        Some(out)
    }

    pub(super) fn sub(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Sec<'t>> {
        let item = self.table.get(key)?;
        let path = self.qualified(key);
        let span = item.span().or_else(|| self.key_span(key));
        match item {
            Item::Table(t) => Some(Sec {
                path,
                table: t,
                span,
            }),
            Item::Value(Value::InlineTable(t)) => Some(Sec {
                path,
                table: t,
                span,
            }),
            other => {
                self.wrong_type(ctx, key, "a table", other);
                None
            }
        }
    }

    /// `[[key]]` or `key = [{...}, …]`.
    pub(super) fn table_list(&self, ctx: &mut Ctx<'_>, key: &str) -> Vec<Sec<'t>> {
        let Some(item) = self.table.get(key) else {
            return Vec::new();
        };
        let path = self.qualified(key);
        match item {
            Item::ArrayOfTables(a) => a
                .iter()
                .enumerate()
                .map(|(i, t)| Sec {
                    path: format!("{path}[{i}]"),
                    table: t,
                    span: t.span(),
                })
                .collect(),
            Item::Value(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        Value::InlineTable(t) => out.push(Sec {
                            path: format!("{path}[{i}]"),
                            table: t,
                            span: v.span(),
                        }),
                        other => ctx.err(
                            other.span(),
                            format!("`{path}[{i}]` must be a table, found {}", other.type_name()),
                            None,
                        ),
                    }
                }
                out
            }
            other => {
                self.wrong_type(ctx, key, "an array of tables", other);
                Vec::new()
            }
        }
    }
}

/// The one check every spec string passes through: every value is a single
/// line, so a control character or line break (`\r`, NEL, LS, PS, NUL,
/// ESC, …) is an error at its exact position — it could otherwise forge a
/// key in a generated YAML file or drive a terminal.
pub(super) fn single_line(ctx: &mut Ctx<'_>, sp: Sp<String>, what: &str) -> Option<Sp<String>> {
    let bad = sp
        .value
        .char_indices()
        .find(|(_, c)| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'));
    let Some((byte, c)) = bad else {
        return Some(sp);
    };
    let name = match c {
        '\n' => "a line break (\\n)",
        '\r' => "a carriage return (\\r)",
        '\t' => "a tab",
        '\0' => "a NUL",
        '\u{1b}' => "an escape character (ESC)",
        '\u{85}' => "a next-line character (NEL, U+0085)",
        '\u{2028}' => "a line separator (U+2028)",
        '\u{2029}' => "a paragraph separator (U+2029)",
        _ => "a control character",
    };
    let span = ctx.inner_span(&sp, byte);
    ctx.err(
        span,
        format!("`{what}` contains {name} (U+{:04X})", c as u32),
        Some(
            "every value in mirror.toml is a single line of printable text: remove the character"
                .into(),
        ),
    );
    None
}

pub(super) fn values(list: Vec<Sp<String>>) -> Vec<String> {
    list.into_iter().map(|s| s.value).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = super::super::sections::extension::KEYS;
        assert_eq!(suggest("descripton", &keys).as_deref(), Some("description"));
        assert_eq!(suggest("zzz", &keys), None);
    }
}
