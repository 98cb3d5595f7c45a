//! The commented spec `zoi-mirror init` writes.
//!
//! The comments live in a real TOML file (`templates/mirror.toml`) so they
//! can be read and reviewed as a file; `toml_edit` then fills in the values
//! given on the command line without disturbing the comments around them.

use toml_edit::{DocumentMut, value};

const TEMPLATE: &str = include_str!("../../templates/mirror.toml");

/// Values `init` may fill in; `None` keeps the template's example.
#[derive(Debug, Default, Clone)]
pub struct InitValues {
    pub name: Option<String>,
    pub registry_url: Option<String>,
    pub binaries_url: Option<String>,
}

/// The commented spec with `values` filled in.
pub fn render(values: &InitValues) -> String {
    let mut doc: DocumentMut = TEMPLATE
        .parse()
        .expect("templates/mirror.toml is valid TOML");
    if let Some(name) = &values.name {
        set_keep_decor(&mut doc["extension"]["name"], name);
    }
    if let Some(url) = &values.registry_url {
        set_keep_decor(&mut doc["registry"]["url"], url);
    }
    if let Some(url) = &values.binaries_url {
        set_keep_decor(&mut doc["binaries"]["url"], url);
    }
    doc.to_string()
}

/// Replaces a value but keeps the whitespace and comments around it.
fn set_keep_decor(item: &mut toml_edit::Item, new: &str) {
    let decor = item.as_value().map(|v| v.decor().clone());
    *item = value(new);
    if let (Some(decor), Some(v)) = (decor, item.as_value_mut()) {
        *v.decor_mut() = decor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_a_valid_spec() {
        let text = render(&InitValues::default());
        crate::spec::load_str(
            std::path::Path::new("mirror.toml"),
            &text,
            &Default::default(),
        )
        .unwrap();
    }

    #[test]
    fn values_are_filled_in_and_comments_kept() {
        let text = render(&InitValues {
            name: Some("acme-mirror".into()),
            registry_url: Some("https://git.acme.example/z.git".into()),
            binaries_url: None,
        });
        assert!(text.contains("name = \"acme-mirror\"\n"));
        assert!(text.contains("url = \"https://git.acme.example/z.git\"\n"));
        assert!(text.contains("# The extension's Zoi package name"));
        let spec =
            crate::spec::load_str(std::path::Path::new("m.toml"), &text, &Default::default())
                .unwrap();
        assert_eq!(spec.extension.name, "acme-mirror");
    }
}
