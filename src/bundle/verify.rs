//! The last step of every render: read back each generated YAML, JSON, Lua
//! and script file and insist it means exactly what was meant to be written.
//!
//! Values reach generated text only through a serialiser or a function of
//! [`super::quote`]; this check is what proves it, whatever a spec string
//! holds. A file that does not read back as intended fails the build
//! instead of shipping to every laptop.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::manifest::Manifest;
use crate::error::{ErrorKind, Failure};
use crate::spec::Spec;

fn mismatch(file: &str, why: String) -> anyhow::Error {
    Failure::new(
        ErrorKind::RenderMismatch,
        format!("the generated {file} does not read back as intended: {why}"),
    )
    .hint("this is a zoi-mirror bug: please report it with the spec that caused it; nothing was written")
    .into()
}

fn yaml_means<T: Serialize>(files: &BTreeMap<String, Vec<u8>>, file: &str, want: &T) -> Result<()> {
    let Some(bytes) = files.get(file) else {
        return Err(mismatch(file, "missing".into()));
    };
    let got: serde_yaml::Value =
        serde_yaml::from_slice(bytes).map_err(|e| mismatch(file, e.to_string()))?;
    let want = serde_yaml::to_value(want)?;
    if got != want {
        return Err(mismatch(file, format!("read {got:?}, meant {want:?}")));
    }
    Ok(())
}

/// Decodes every Lua string literal in `src` (as [`super::quote::lua`]
/// writes them), skipping `--` comments. `None`: something that is not one
/// of our literals, e.g. an unterminated string.
pub fn lua_literals(src: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut it = src.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '-' if it.peek() == Some(&'-') => {
                for c in it.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                let mut s = String::new();
                loop {
                    match it.next()? {
                        '"' => break,
                        '\n' | '\r' => return None,
                        '\\' => match it.next()? {
                            'n' => s.push('\n'),
                            'r' => s.push('\r'),
                            't' => s.push('\t'),
                            '"' => s.push('"'),
                            '\\' => s.push('\\'),
                            d if d.is_ascii_digit() => {
                                let mut n = d.to_digit(10)?;
                                for _ in 0..2 {
                                    n = n * 10 + it.next()?.to_digit(10)?;
                                }
                                s.push(char::from_u32(n)?);
                            }
                            _ => return None,
                        },
                        c => s.push(c),
                    }
                }
                out.push(s);
            }
            '\'' => return None,
            _ => {}
        }
    }
    Some(out)
}

/// The value of a POSIX single-quoted word (as [`super::quote::sh`] writes).
pub fn sh_word(word: &str) -> Option<String> {
    let mut out = String::new();
    let mut it = word.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\'' => loop {
                match it.next()? {
                    '\'' => break,
                    c => out.push(c),
                }
            },
            '\\' => out.push(it.next()?),
            _ => return None,
        }
    }
    Some(out)
}

/// The value of a PowerShell verbatim string (as [`super::quote::powershell`]).
pub fn ps_word(word: &str) -> Option<String> {
    let quote = |c: char| matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}');
    let inner = word.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::new();
    let mut it = inner.chars().peekable();
    while let Some(c) = it.next() {
        if quote(c) && it.next() != Some(c) {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

/// The assignment `prefix<word>` on its own line of `text`.
fn assigned<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(prefix))
}

/// Checks every generated file of a render of `spec`.
pub fn check(spec: &Spec, files: &BTreeMap<String, Vec<u8>>, manifest: &Manifest) -> Result<()> {
    yaml_means(files, super::REPO_YAML, &super::repo_yaml(spec))?;
    yaml_means(files, super::CONFIG_USER, &super::config_layer(spec, false))?;
    yaml_means(
        files,
        super::CONFIG_SYSTEM,
        &super::config_layer(spec, true),
    )?;

    let json = files
        .get(super::manifest::FILE_NAME)
        .ok_or_else(|| mismatch(super::manifest::FILE_NAME, "missing".into()))?;
    let got: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| mismatch(super::manifest::FILE_NAME, e.to_string()))?;
    if got != serde_json::to_value(manifest)? {
        return Err(mismatch(
            super::manifest::FILE_NAME,
            "it differs from the manifest".into(),
        ));
    }

    let lua_file = super::Bundle::extension_file(spec);
    let lua = files
        .get(&lua_file)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let ext = &spec.extension;
    let mut want: Vec<String> = vec![
        ext.name.clone(),
        ext.tier.clone(),
        ext.version.to_string(),
        ext.description.clone(),
        ext.maintainer_name.clone(),
        ext.maintainer_email.clone(),
        ext.license.clone(),
        "extension".into(),
        "source".into(),
        "zoi".into(),
    ];
    for c in super::extension_changes(spec) {
        want.extend(c.fields().into_iter().map(|(_, v)| v.to_string()));
    }
    match lua_literals(&lua) {
        Some(got) if got == want => {}
        Some(got) => {
            return Err(mismatch(
                &lua_file,
                format!("its strings are {got:?}, meant {want:?}"),
            ));
        }
        None => return Err(mismatch(&lua_file, "a string literal is malformed".into())),
    }

    if let Some(setup) = &spec.setup {
        let url = setup.bundle_url(&spec.bundle_dir_name());
        let sh = files
            .get(super::SETUP_SH)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        for (prefix, value) in [("BUNDLE_URL=", &url), ("EXTENSION=", &ext.name)] {
            if assigned(&sh, prefix).and_then(sh_word).as_ref() != Some(value) {
                return Err(mismatch(
                    super::SETUP_SH,
                    format!("{prefix} is not {value:?}"),
                ));
            }
        }
        let ps = files
            .get(super::SETUP_PS1)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        for (prefix, value) in [("$BundleUrl = ", &url), ("$Extension = ", &ext.name)] {
            if assigned(&ps, prefix).and_then(ps_word).as_ref() != Some(value) {
                return Err(mismatch(
                    super::SETUP_PS1,
                    format!("{prefix} is not {value:?}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::quote;

    #[test]
    fn decoders_invert_the_quoting_functions() {
        for s in [
            "",
            "a\"b\\c",
            "x\ny\0z\x01",
            "\x011",
            "it's $HOME",
            "\u{2019}'é",
            "\r\u{85}\u{2028}",
        ] {
            assert_eq!(
                lua_literals(&quote::lua(s)),
                Some(vec![s.to_string()]),
                "{s:?}"
            );
            assert_eq!(sh_word(&quote::sh(s)).as_deref(), Some(s), "{s:?}");
            assert_eq!(ps_word(&quote::powershell(s)).as_deref(), Some(s), "{s:?}");
        }
        assert_eq!(
            lua_literals("-- \"not\" a literal\nx = \"y\""),
            Some(vec!["y".into()])
        );
    }
}

/// Any string in any spec field is either rejected with a diagnostic or
/// comes back exactly from every generated file that carries it.
#[cfg(test)]
mod properties {
    use std::path::Path;

    use proptest::prelude::*;

    use super::lua_literals;

    const EXAMPLE: &str = include_str!("../../examples/acme/mirror.toml");

    type Read = fn(&std::collections::BTreeMap<String, Vec<u8>>) -> Vec<String>;

    fn yaml(files: &std::collections::BTreeMap<String, Vec<u8>>, f: &str) -> serde_yaml::Value {
        serde_yaml::from_slice(&files[f]).unwrap()
    }

    fn lua(files: &std::collections::BTreeMap<String, Vec<u8>>) -> Vec<String> {
        lua_literals(&String::from_utf8_lossy(&files["acme-mirror.pkg.lua"])).unwrap()
    }

    /// (the example's text to replace, its value, how to read the value back
    /// from each generated file carrying it)
    fn fields() -> Vec<(&'static str, &'static str, Read)> {
        vec![
            (
                "description = \"Points Zoi at ACME Corp's internal package mirror\"",
                "description = ",
                |f| vec![lua(f)[3].clone()],
            ),
            (
                "license = \"LicenseRef-ACME-Internal\"",
                "license = ",
                |f| vec![lua(f)[6].clone()],
            ),
            ("name = \"ACME IT Platform Team\"", "name = ", |f| {
                vec![lua(f)[4].clone()]
            }),
            ("email = \"zoi-admins@acme.example\"", "email = ", |f| {
                vec![lua(f)[5].clone()]
            }),
            ("name = \"zoidberg\"", "name = ", |f| {
                vec![yaml(f, "repo.yaml")["name"].as_str().unwrap().to_string()]
            }),
            (
                "description = \"ACME Corp mirror of the official Zoi packages repository\"",
                "description = ",
                |f| {
                    vec![
                        yaml(f, "repo.yaml")["description"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    ]
                },
            ),
            ("\"/srv/zoi-archives\"", "", |f| {
                ["config.user.yaml", "config.system.yaml"]
                    .iter()
                    .map(|c| yaml(f, c)["pkg_dirs"][0].as_str().unwrap().to_string())
                    .collect()
            }),
            ("\"https://bin-dr.acme.example/flat\"", "", |f| {
                vec![
                    yaml(f, "config.user.yaml")["cache_mirrors"][0]
                        .as_str()
                        .unwrap()
                        .to_string(),
                ]
            }),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z \\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{2028}\\u{2029}'\"\\\\#:$`{}\\[\\]&*!|>%@,-]{0,16}",
            "/srv/[a-z \\x00-\\x1f\\u{85}\\u{2028}'\"\\\\#:$`{}\\[\\]&*!|>%@,-]{0,12}",
            "https://[a-z.]{1,8}/[a-z \\x00-\\x1f\\u{85}'\"\\\\#:$`{}&*!|>%@,-]{0,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
        #[test]
        fn any_string_is_rejected_or_round_trips(field in 0usize..8, value in text()) {
            let (old, prefix, read) = fields()[field];
            prop_assume!(EXAMPLE.contains(old));
            let encoded = toml_edit::Value::from(value.as_str()).to_string();
            let src = EXAMPLE.replacen(old, &format!("{prefix}{}", encoded.trim()), 1);
            match crate::spec::load_str(Path::new("mirror.toml"), &src, &Default::default()) {
                Err(e) => {
                    let f = e.downcast_ref::<crate::error::Failure>().expect("a Failure");
                    prop_assert_eq!(f.exit, crate::error::Exit::BadInput);
                    prop_assert!(!f.diagnostics.is_empty(), "rejected without a diagnostic");
                }
                Ok(spec) => {
                    let bundle = crate::bundle::render(&spec).expect("a valid spec renders");
                    for got in read(&bundle.files) {
                        prop_assert_eq!(&got, &value);
                    }
                }
            }
        }
    }
}
