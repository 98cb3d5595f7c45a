//! What we know about the official upstream registry, Zoidberg, when no
//! upstream `repo.yaml` is at hand (neither given nor in a `db sync` cache):
//! its whole `repo.yaml` at public Zoidberg commit 5ea5a0a.
//!
//! These are facts about a moving target, so a test compares them with the
//! real file in `shared/fixtures/zoidberg/repo.yaml`, and `build` accepts
//! `--upstream-repo-yaml` to use a fresher copy.

use crate::zoi::repo::{GitLink, PgpKey, PkgLink, RepoEntry, RepoYaml};

pub const UPSTREAM_GIT: &str = "https://gitlab.com/zillowe/zillwen/zusty/zoidberg.git";

/// Where the built-in description comes from, for messages.
pub const ORIGIN: &str = "the built-in description of Zoidberg (commit 5ea5a0a)";

const PKG_BASE: &str =
    "https://gitlab.com/api/v4/projects/71125308/packages/generic/{id}/{version}";

/// A Zoidberg `pkg` link: the file and its four sidecars.
fn link(link_type: &str, file: &str) -> PkgLink {
    let url = format!("{PKG_BASE}/{file}");
    PkgLink {
        link_type: link_type.into(),
        hash: Some(format!("{url}.hash")),
        pgp: Some(format!("{url}.sig")),
        size: Some(format!("{url}.size")),
        files: Some(format!("{url}.files")),
        url,
    }
}

/// Zoidberg's `repo.yaml`.
pub fn zoidberg() -> RepoYaml {
    let tier = |name: &str, t: &str, active: bool| RepoEntry {
        name: name.into(),
        repo_type: t.into(),
        active,
    };
    RepoYaml {
        version: None,
        name: "Zoidberg".into(),
        description: "Official Zoi packages repository".into(),
        handle: Some("zoidberg".into()),
        advisory_prefix: Some("ZSA".into()),
        git: vec![
            GitLink {
                link_type: "main".into(),
                url: UPSTREAM_GIT.into(),
            },
            GitLink {
                link_type: "mirror".into(),
                url: "https://github.com/zillowe/zoidberg.git".into(),
            },
            GitLink {
                link_type: "mirror".into(),
                url: "https://codeberg.org/zillowe/zoidberg.git".into(),
            },
        ],
        pkg: vec![
            link("main", "{name}-{version}-{platform}.zpa"),
            link("source-main", "{name}-{version}.zsa"),
        ],
        delta: Vec::new(),
        zrepo: Vec::new(),
        db: None,
        pgp: vec![PgpKey {
            name: "zillowe-main".into(),
            key: "https://zillowe.pages.dev/keys/zillowe-main.asc".into(),
        }],
        repos: vec![
            tier("core", "official", true),
            tier("main", "official", true),
            tier("extra", "official", false),
            tier("community", "community", false),
            tier("archive", "archive", false),
            tier("test", "test", false),
            tier("zillowe", "official", false),
            tier("parlex", "official", false),
        ],
        extra: serde_yaml::Mapping::new(),
    }
}
