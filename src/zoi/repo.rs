//! `repo.yaml`, the file at the root of a registry's git repository, and the
//! archive URLs Zoi derives from its `pkg` links.

use serde::{Deserialize, Serialize};

use crate::zoi::placeholders::Coordinates;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitLink {
    #[serde(rename = "type")]
    pub link_type: String,
    pub url: String,
}

/// A `pkg` link (types `main`, `mirror`, `source-main`, `source-mirror`)
/// or a `delta` link (`main`, `mirror`; no `files`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkgLink {
    #[serde(rename = "type")]
    pub link_type: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<String>,
}

impl PkgLink {
    /// A link of `link_type` at `url` with no sidecar templates.
    pub fn new(link_type: &str, url: impl Into<String>) -> PkgLink {
        PkgLink {
            link_type: link_type.into(),
            url: url.into(),
            pgp: None,
            hash: None,
            size: None,
            files: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgpKey {
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub repo_type: String,
    pub active: bool,
}

/// `repo.yaml` as Zoi 1.29.4 reads it (`RepoConfig`), plus the `handle` key
/// Zoidberg writes, plus whatever else a registry writes (`extra`, kept
/// verbatim so a mirror derived from upstream's file loses nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoYaml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub name: String,
    pub description: String,
    /// Not read by Zoi; written so the intended handle is visible in the repo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory_prefix: Option<String>,
    #[serde(default)]
    pub git: Vec<GitLink>,
    #[serde(default)]
    pub pkg: Vec<PkgLink>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delta: Vec<PkgLink>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zrepo: Vec<serde_yaml::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    #[serde(default)]
    pub pgp: Vec<PgpKey>,
    #[serde(default)]
    pub repos: Vec<RepoEntry>,
    /// Keys Zoi 1.29.4 does not read, in upstream's order.
    #[serde(flatten)]
    pub extra: serde_yaml::Mapping,
}

impl RepoYaml {
    pub fn parse(text: &str) -> Result<Self, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }

    /// The one `pkg` link Zoi uses for pre-built archives: the first `main`,
    /// else the first `mirror`. Every other link is ignored by Zoi 1.29.
    pub fn first_archive_link(&self) -> Option<&PkgLink> {
        self.pkg
            .iter()
            .find(|p| p.link_type == "main")
            .or_else(|| self.pkg.iter().find(|p| p.link_type == "mirror"))
    }

    /// The `pkg` link Zoi uses for source bundles (`zoi download --source`,
    /// source installs): the first `source-main`, else the first
    /// `source-mirror` (`find_registry_info_for_package`, `is_source`).
    pub fn first_source_link(&self) -> Option<&PkgLink> {
        self.pkg
            .iter()
            .find(|p| p.link_type == "source-main")
            .or_else(|| self.pkg.iter().find(|p| p.link_type == "source-mirror"))
    }

    /// The `delta` link Zoi uses: the first `main`, else the first `mirror`
    /// (`find_delta_info`).
    pub fn first_delta_link(&self) -> Option<&PkgLink> {
        self.delta
            .iter()
            .find(|p| p.link_type == "main")
            .or_else(|| self.delta.iter().find(|p| p.link_type == "mirror"))
    }

    /// Links Zoi never reads for archives (later mirrors), reported apart.
    pub fn ignored_archive_links(&self) -> Vec<&PkgLink> {
        let first = self.first_archive_link();
        self.pkg
            .iter()
            .filter(|p| p.link_type == "main" || p.link_type == "mirror")
            .filter(|p| Some(*p) != first)
            .collect()
    }

    pub fn main_git(&self) -> Option<&str> {
        self.git
            .iter()
            .find(|g| g.link_type == "main")
            .map(|g| g.url.as_str())
    }

    pub fn active_tiers(&self) -> Vec<String> {
        self.repos
            .iter()
            .filter(|r| r.active)
            .map(|r| r.name.clone())
            .collect()
    }
}

/// The URLs Zoi fetches for one package on one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveUrls {
    pub archive: String,
    /// Always set: defaults to `<archive>.sig`.
    pub pgp: String,
    pub hash: Option<String>,
    pub size: Option<String>,
    pub files: Option<String>,
}

impl ArchiveUrls {
    /// The file name Zoi caches the download under: the URL's last segment.
    pub fn file_name(&self) -> &str {
        self.archive.rsplit('/').next().unwrap_or_default()
    }
}

/// Builds the archive URLs from a `pkg` link exactly as Zoi's
/// `find_registry_info_for_package` does.
pub fn archive_urls(link: &PkgLink, c: &Coordinates<'_>) -> ArchiveUrls {
    link_urls(link, c, ".zpa", &c.archive_file_name("zpa"))
}

/// The URLs Zoi fetches for a package's source bundle: like
/// [`archive_urls`], with `.zsa` and the file name `{name}-{version}.zsa`.
pub fn source_urls(link: &PkgLink, c: &Coordinates<'_>) -> ArchiveUrls {
    link_urls(link, c, ".zsa", &format!("{}-{}.zsa", c.name, c.version))
}

/// `find_registry_info_for_package`: the link's URL expanded, `file`
/// appended unless it already ends in `ext`; `pgp` defaults to
/// `<url>.sig`, the other sidecars only when the link names them.
fn link_urls(link: &PkgLink, c: &Coordinates<'_>, ext: &str, file: &str) -> ArchiveUrls {
    let base = c.expand(&link.url);
    let archive = if base.ends_with(ext) {
        base
    } else {
        format!("{}/{file}", base.trim_end_matches('/'))
    };
    with_sidecars(link, c, archive)
}

fn with_sidecars(link: &PkgLink, c: &Coordinates<'_>, archive: String) -> ArchiveUrls {
    ArchiveUrls {
        pgp: link
            .pgp
            .as_ref()
            .map_or_else(|| format!("{archive}.sig"), |t| c.expand(t)),
        hash: link.hash.as_ref().map(|t| c.expand(t)),
        size: link.size.as_ref().map(|t| c.expand(t)),
        files: link.files.as_ref().map(|t| c.expand(t)),
        archive,
    }
}

/// The URLs of a `.zdelta` patch *to* the coordinates' version: the link's
/// URL expanded as is (nothing appended), `pgp` defaulting to `<url>.sig`
/// (`find_delta_info`; `{version}` is the version upgraded to).
pub fn delta_urls(link: &PkgLink, c: &Coordinates<'_>) -> ArchiveUrls {
    ArchiveUrls {
        files: None,
        ..with_sidecars(link, c, c.expand(&link.url))
    }
}

/// Every URL template in a repo.yaml (git, pkg and delta links with their
/// sidecars, keys, `db`), for host comparisons.
pub fn all_urls(r: &RepoYaml) -> Vec<&str> {
    let mut out: Vec<&str> = r.git.iter().map(|g| g.url.as_str()).collect();
    for l in r.pkg.iter().chain(r.delta.iter()) {
        out.push(&l.url);
        for t in [&l.pgp, &l.hash, &l.size, &l.files].into_iter().flatten() {
            out.push(t);
        }
    }
    out.extend(r.pgp.iter().map(|k| k.key.as_str()));
    out.extend(r.db.as_deref());
    out
}

/// The host of a URL template (`https://h:1/x` → `h:1`; scp-like
/// `git@h:path` → `h`), lowercased.
pub fn url_host(url: &str) -> Option<String> {
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next()?;
        let host = authority.rsplit('@').next()?;
        return (!host.is_empty()).then(|| host.to_ascii_lowercase());
    }
    let (user_host, _) = url.split_once(':')?;
    let host = user_host.rsplit('@').next()?;
    (!host.is_empty() && !host.contains('/')).then(|| host.to_ascii_lowercase())
}

/// Zoi's `cache_mirrors` candidates for a URL: the URL itself, then
/// `<mirror>/<last path segment>` for each mirror.
pub fn mirror_candidates(url: &str, cache_mirrors: &[String]) -> Vec<String> {
    let mut out = vec![url.to_string()];
    if let Some(file) = url.split('/').next_back().filter(|s| !s.is_empty()) {
        for m in cache_mirrors {
            out.push(format!("{}/{file}", m.trim_end_matches('/')));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(url: &str) -> PkgLink {
        PkgLink {
            link_type: "main".into(),
            url: url.into(),
            pgp: None,
            hash: Some(format!("{url}.hash")),
            size: None,
            files: None,
        }
    }

    fn coords() -> Coordinates<'static> {
        Coordinates {
            name: "hello",
            repo: "zillowe",
            version: "2.0.0",
            platform: "macos-arm64".parse().unwrap(),
        }
    }

    #[test]
    fn directory_urls_get_the_zpa_name_appended() {
        let u = archive_urls(&link("https://b/{repo}/{os}/{arch}/{version}/"), &coords());
        assert_eq!(
            u.archive,
            "https://b/zillowe/macos/arm64/2.0.0/hello-2.0.0-macos-arm64.zpa"
        );
        assert_eq!(u.pgp, format!("{}.sig", u.archive));
        // hash is expanded from its own template, not derived from the archive
        assert_eq!(u.hash.unwrap(), "https://b/zillowe/macos/arm64/2.0.0/.hash");
    }

    #[test]
    fn legacy_names_are_not_zpa_so_zoi_appends_anyway() {
        let u = archive_urls(
            &link("https://b/{name}-{version}-{platform}.pkg.tar.zst"),
            &coords(),
        );
        assert!(
            u.archive
                .ends_with(".pkg.tar.zst/hello-2.0.0-macos-arm64.zpa")
        );
    }

    #[test]
    fn first_link_is_main_then_mirror() {
        let mut r = RepoYaml::parse("name: x\ndescription: y\n").unwrap();
        let mut m = link("https://mirror");
        m.link_type = "mirror".into();
        r.pkg = vec![m.clone(), link("https://main")];
        assert_eq!(r.first_archive_link().unwrap().url, "https://main");
        assert_eq!(r.ignored_archive_links(), vec![&m]);
        r.pkg = vec![m.clone()];
        assert_eq!(r.first_archive_link().unwrap().url, "https://mirror");
    }

    #[test]
    fn mirror_candidates_use_last_segment() {
        assert_eq!(
            mirror_candidates("https://a/x/y/f.zpa", &["https://m/".into()]),
            ["https://a/x/y/f.zpa", "https://m/f.zpa"]
        );
    }
}
