//! Colour: ANSI styles only on a terminal, never with `NO_COLOR` set to a
//! non-empty value (<https://no-color.org>). Each stream decides for itself,
//! once per run.

use std::io::IsTerminal;
use std::sync::OnceLock;

fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether stderr may carry ANSI colour.
pub fn stderr_color() -> bool {
    static C: OnceLock<bool> = OnceLock::new();
    *C.get_or_init(|| !no_color_env() && std::io::stderr().is_terminal())
}

/// Whether stdout may carry ANSI colour.
pub fn stdout_color() -> bool {
    static C: OnceLock<bool> = OnceLock::new();
    *C.get_or_init(|| !no_color_env() && std::io::stdout().is_terminal())
}

#[derive(Clone, Copy)]
pub enum Style {
    Bold,
    Red,
    Green,
    Yellow,
    Cyan,
    Dim,
}

/// Wraps `text` in an ANSI style when `enabled`.
pub fn paint(text: &str, style: Style, enabled: bool) -> String {
    if !enabled {
        return text.to_string();
    }
    let code = match style {
        Style::Bold => "1",
        Style::Red => "1;31",
        Style::Green => "32",
        Style::Yellow => "1;33",
        Style::Cyan => "36",
        Style::Dim => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}
