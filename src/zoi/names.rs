//! Names Zoi accepts for packages and tiers.
//!
//! Zoi itself does not validate a package name up front; it fails later and
//! far away (an archive file name outside `[A-Za-z0-9._-]` is rejected at
//! download time, `@`, `/`, `#` and `:` confuse its package-source parser). We
//! check early with the intersection of those rules, lowercase only, so a
//! name that passes here works everywhere Zoi uses it.

/// Why `name` is not a valid lowercase Zoi package name, if it is not.
pub fn package_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the name is empty".into());
    }
    if name.len() > 64 {
        return Some(format!(
            "the name is {} characters long; at most 64 are allowed",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Some(if c.is_ascii_uppercase() {
            format!("'{c}' is uppercase; Zoi package names are lowercase")
        } else {
            format!("'{c}' is not allowed; use a-z, 0-9, '.', '_' and '-'")
        });
    }
    let first = name.chars().next()?;
    let last = name.chars().last()?;
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Some("the name must start and end with a letter or digit".into());
    }
    None
}

/// Whether a file name from a URL is one Zoi downloads into its cache: only
/// `[A-Za-z0-9._-]`, not empty, not `.`/`..` (`get_filename_from_url`).
pub fn archive_file_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Why `tier` is not a usable tier (`repos` entry) name, if it is not. Tiers
/// may be nested paths (`community/tools`); Zoi lowercases them on add.
pub fn tier_problem(tier: &str) -> Option<String> {
    if tier.is_empty() {
        return Some("the tier name is empty".into());
    }
    if tier != tier.to_lowercase() {
        return Some("tier names are lowercase (Zoi lowercases them on add)".into());
    }
    if tier.split('/').any(|seg| {
        seg.is_empty()
            || !seg.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
    }) {
        return Some("use a-z, 0-9, '.', '_', '-', and '/' between nested tiers".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        for ok in ["acme-mirror", "a", "zoi.mirror_2", "0x"] {
            assert_eq!(package_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "Acme",
            "acme mirror",
            "-acme",
            "acme-",
            "@acme/x",
            "a:b",
            &"a".repeat(65),
        ] {
            assert!(package_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn tiers() {
        assert_eq!(tier_problem("community/tools"), None);
        assert!(tier_problem("Core").is_some());
        assert!(tier_problem("a//b").is_some());
    }
}
