//! The template engine: minijinja with strict undefined variables, templates
//! embedded at compile time, and one filter per target language for quoting.
//!
//! Strict undefined turns a typo in a template into a build error instead of
//! an empty string in a file that ships to every laptop in the company.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::quote;

/// Every template the bundle renders, by name.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "extension.pkg.lua",
        include_str!("../../extension/extension.pkg.lua.j2"),
    ),
    ("setup.sh", include_str!("../../templates/setup.sh.j2")),
    ("setup.ps1", include_str!("../../templates/setup.ps1.j2")),
    (
        "demo-package.pkg.lua",
        include_str!("../../templates/demo-package.pkg.lua.j2"),
    ),
    (
        "demo-package.sh",
        include_str!("../../templates/demo-package.sh.j2"),
    ),
];

pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("lua", |s: String| quote::lua(&s));
    env.add_filter("sh", |s: String| quote::sh(&s));
    env.add_filter("ps", |s: String| quote::powershell(&s));
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("embedded template {name} does not parse: {e}"));
    }
    env
}

/// Pages served to people (HTML, escaped as HTML), by name.
const PAGES: &[(&str, &str)] = &[
    (
        "status.html",
        include_str!("../../templates/status.html.j2"),
    ),
    // A folder's listing: names HTML-escaped, and percent-encoded in the
    // link, so a name holding `#`, `?` or `%` still links to itself.
    (
        "listing.html",
        include_str!("../../templates/listing.html.j2"),
    ),
];

/// The environment for HTML pages: strict undefined as everywhere, and
/// every value HTML-escaped (beacon fields come from upstream's index).
pub fn page_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    for (name, source) in PAGES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("embedded page {name} does not parse: {e}"));
    }
    env
}

/// Renders page `name` with `ctx`.
pub fn render_page(name: &str, ctx: minijinja::Value) -> anyhow::Result<String> {
    let env = page_environment();
    env.get_template(name)?
        .render(ctx)
        .map_err(|e| anyhow::anyhow!("rendering {name}: {e:#}"))
}

/// Renders template `name` with `ctx`.
pub fn render(name: &str, ctx: minijinja::Value) -> anyhow::Result<String> {
    let env = environment();
    let template = env.get_template(name)?;
    template
        .render(ctx)
        .map_err(|e| anyhow::anyhow!("rendering {name}: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_variables_are_errors() {
        let mut env = environment();
        env.add_template("t", "{{ missing }}").unwrap();
        assert!(
            env.get_template("t")
                .unwrap()
                .render(minijinja::context! {})
                .is_err()
        );
    }
}
