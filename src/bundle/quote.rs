//! Quoting for every language a bundle emits code in. Each function returns a
//! complete literal (quotes included) that evaluates to exactly the input,
//! whatever it contains: templates must never quote by hand.

use std::fmt::Write;

/// A Lua string literal valid in Lua 5.1–5.4 and Luau.
///
/// Double-quoted with escapes: `"` and `\` escaped, the usual control
/// characters by name, every other byte below 0x20 and DEL as a 3-digit
/// decimal escape (always three digits, so a following digit can never be
/// read as part of it). Non-ASCII UTF-8 passes through unchanged: both
/// interpreters treat string contents as raw bytes. Long brackets (`[[…]]`)
/// are never used, so `]]`/`]=]` in the input need no care.
pub fn lua(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\{:03}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A POSIX shell word: single-quoted, with `'` written as `'\''`. Inside
/// single quotes nothing is special to `sh`, including newlines and `$`.
pub fn sh(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A PowerShell verbatim string: single-quoted, quotes doubled. PowerShell
/// also treats the typographic single quotes U+2018–U+201B as quote
/// characters, so those are doubled too; nothing else is special inside.
pub fn powershell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_escapes() {
        assert_eq!(lua("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(lua("x\ny\0z\x01"), r#""x\ny\000z\001""#);
        assert_eq!(lua("\x011"), r#""\0011""#);
        assert_eq!(lua("]]=]é"), "\"]]=]é\"");
    }

    #[test]
    fn sh_quotes() {
        assert_eq!(sh("it's $HOME"), r"'it'\''s $HOME'");
    }

    #[test]
    fn powershell_quotes() {
        assert_eq!(powershell("it's"), "'it''s'");
        assert_eq!(powershell("\u{2019}$x"), "'\u{2019}\u{2019}$x'");
    }
}
