//! URL templates in `repo.yaml` (`url`, `hash`, `size`, `files`, `pgp`) and
//! how Zoi expands them.
//!
//! Zoi 1.29.4 expands with plain sequential `str::replace` in a fixed order
//! (`{os}`, `{arch}`, `{version}`, `{repo}`, `{name}`, `{id}`, `{platform}`), so
//! a value that itself contains a later placeholder is expanded again. We
//! reproduce that order instead of a "correct" single-pass expansion, because
//! the point is to predict the URL Zoi will actually request.

use crate::zoi::platform::Platform;

/// The seven placeholders Zoi knows. Anything else in braces stays literally
/// in the URL.
pub const KNOWN: [&str; 7] = ["name", "version", "repo", "id", "os", "arch", "platform"];

/// Human list for error messages: `{name}, {version}, …`.
pub fn known_list() -> String {
    KNOWN
        .iter()
        .map(|p| format!("{{{p}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `{word}` tokens in `template` that Zoi does not expand, with byte offsets.
pub fn unknown(template: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{'
            && let Some(len) = template[i + 1..].find('}')
        {
            let word = &template[i + 1..i + 1 + len];
            let looks_like_placeholder = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if looks_like_placeholder && !KNOWN.contains(&word) {
                out.push((i, word.to_string()));
            }
            i += len + 2;
            continue;
        }
        i += 1;
    }
    out
}

/// What a package contributes to a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinates<'a> {
    pub name: &'a str,
    /// The package's metadata `repo` (its tier path, may contain `/`).
    pub repo: &'a str,
    /// The plain version: no epoch, no revision.
    pub version: &'a str,
    pub platform: Platform,
}

impl Coordinates<'_> {
    /// `{id}`: `repo` with `/` → `.`, then `.name`; just `name` for no repo.
    pub fn id(&self) -> String {
        if self.repo.is_empty() {
            self.name.to_string()
        } else {
            format!("{}.{}", self.repo.replace('/', "."), self.name)
        }
    }

    /// Expands `template` exactly as Zoi's `resolve_url_placeholders`.
    pub fn expand(&self, template: &str) -> String {
        self.expand_one_pass(template)
            .unwrap_or_else(|| self.expand_by_replaces(template))
    }

    /// Zoi's own way (`resolve_url_placeholders`): each placeholder replaced
    /// in turn, in its order, so a value holding another placeholder is
    /// expanded again by the later replaces, as in Zoi.
    fn expand_by_replaces(&self, template: &str) -> String {
        let platform = self.platform.to_string();
        template
            .replace("{os}", self.platform.os.as_str())
            .replace("{arch}", self.platform.arch.as_str())
            .replace("{version}", self.version)
            .replace("{repo}", self.repo)
            .replace("{name}", self.name)
            .replace("{id}", &self.id())
            .replace("{platform}", &platform)
    }

    /// [`Coordinates::expand`] in one pass over the template, for the
    /// common case (`check` expands five templates per target): when no
    /// value holds a brace and every brace in the template belongs to a
    /// known placeholder, each `{p}` the chain of `replace`s would meet is
    /// one of the template's own, so one pass gives the same string.
    /// `None` otherwise, and the chain decides.
    fn expand_one_pass(&self, template: &str) -> Option<String> {
        // Bytes, not chars: braces are ASCII, so every offset found is a
        // char boundary, and a byte scan is what five templates per target
        // (twice: checked, then reported) can afford.
        let brace = |b: u8| matches!(b, b'{' | b'}');
        let (os, arch) = (self.platform.os.as_str(), self.platform.arch.as_str());
        if [self.name, self.repo, self.version, os, arch]
            .into_iter()
            .any(|v| v.bytes().any(brace))
        {
            return None;
        }
        let mut out = String::with_capacity(template.len() + 64);
        let mut rest = template;
        while let Some(i) = rest.bytes().position(brace) {
            // A `}` of no placeholder: the chain decides.
            if rest.as_bytes()[i] == b'}' {
                return None;
            }
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let j = after.bytes().position(|b| b == b'}')?;
            match &after[..j] {
                "os" => out.push_str(os),
                "arch" => out.push_str(arch),
                "version" => out.push_str(self.version),
                "repo" => out.push_str(self.repo),
                "name" => out.push_str(self.name),
                // Written in place (as `id` and `Platform`'s `Display`
                // spell them): `check` expands five templates per target.
                "id" => {
                    if !self.repo.is_empty() {
                        for part in self.repo.split('/') {
                            out.push_str(part);
                            out.push('.');
                        }
                    }
                    out.push_str(self.name);
                }
                "platform" => {
                    out.push_str(os);
                    out.push('-');
                    out.push_str(arch);
                }
                _ => return None,
            }
            rest = &after[j + 1..];
        }
        // Nothing braced is left: the values hold none, and every brace of
        // the template was a known placeholder's.
        out.push_str(rest);
        Some(out)
    }

    /// `{name}-{version}-{platform}.zpa`, the name Zoi appends to a
    /// directory URL and searches for in `pkg_dirs`.
    pub fn archive_file_name(&self, ext: &str) -> String {
        // Pushed, not formatted: every target's URLs are built with it.
        let (os, arch) = (self.platform.os.as_str(), self.platform.arch.as_str());
        let mut out = String::with_capacity(
            self.name.len() + self.version.len() + os.len() + arch.len() + ext.len() + 4,
        );
        for part in [self.name, "-", self.version, "-", os, "-", arch, ".", ext] {
            out.push_str(part);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c<'a>(name: &'a str, repo: &'a str) -> Coordinates<'a> {
        Coordinates {
            name,
            repo,
            version: "1.2.3",
            platform: "linux-amd64".parse().unwrap(),
        }
    }

    #[test]
    fn expands_every_placeholder() {
        let url = c("hello", "zillowe")
            .expand("https://h/{repo}/{os}/{arch}/{version}/{name}-{version}-{platform}.zpa?{id}");
        assert_eq!(
            url,
            "https://h/zillowe/linux/amd64/1.2.3/hello-1.2.3-linux-amd64.zpa?zillowe.hello"
        );
    }

    #[test]
    fn one_pass_agrees_with_the_chain_of_replaces() {
        for (name, version, t) in [
            (
                "hello",
                "1.2.3",
                "https://h/{repo}/{os}/{arch}/{version}/{name}-{platform}?{id}",
            ),
            ("hello", "1.2.3", "https://h/{tier}/{name}}{"),
            ("a{b", "1.0", "{name}/{version}"),
            ("x", "nam", "{{version}e}"),
            ("x", "1", "plain}"),
            ("x", "1", "{name}}{version}"),
            ("x", "1", "{na{me}/{version}"),
            ("x", "1", "{name}/{version"),
            ("x", "1", "{name}/{id}/{platform}/{}"),
            ("x", "", "{id}-{platform}"),
        ] {
            for repo in ["community/tools", "", "a//b/"] {
                let c = Coordinates {
                    name,
                    repo,
                    version,
                    platform: "linux-amd64".parse().unwrap(),
                };
                let chain = c.expand_by_replaces(t);
                assert_eq!(c.expand(t), chain, "{t}");
                if let Some(one) = c.expand_one_pass(t) {
                    assert_eq!(one, chain, "one pass: {t}");
                }
            }
        }
        // The common case takes the one pass.
        let t = "https://h/{repo}/{os}/{arch}/{version}/{name}-{version}-{platform}.zpa?{id}";
        assert!(c("hello", "community/tools").expand_one_pass(t).is_some());
    }

    #[test]
    fn id_flattens_nested_repo() {
        assert_eq!(c("x", "community/tools").id(), "community.tools.x");
        assert_eq!(c("x", "").id(), "x");
    }

    #[test]
    fn unknown_placeholders_stay_and_are_reported() {
        assert_eq!(
            unknown("https://h/{repo}/{tier}/{name}"),
            vec![(17, "tier".to_string())]
        );
        // Unknown ones are left verbatim by the expansion.
        assert_eq!(c("a", "b").expand("{tier}/{name}"), "{tier}/a");
        // Not placeholders: empty braces and spaces.
        assert!(unknown("https://h/{}/{a b}").is_empty());
    }

    #[test]
    fn sequential_replacement_like_zoi() {
        // A repo named "{name}" is expanded again by the later {name} pass.
        assert_eq!(c("pkg", "{name}").expand("{repo}"), "pkg");
    }
}
