//! What we know about the official upstream registry, Zoidberg, when no
//! upstream `repo.yaml` is given: its name, description, advisory prefix,
//! signing key and tiers (public Zoidberg commit 5ea5a0a).
//!
//! These are facts about a moving target, so a test compares them with the
//! real file in `shared/fixtures/zoidberg/repo.yaml`, and `build` accepts
//! `--upstream-repo-yaml` to use a fresher copy.

use crate::zoi::repo::{GitLink, PgpKey, RepoEntry, RepoYaml};

pub const UPSTREAM_GIT: &str = "https://gitlab.com/zillowe/zillwen/zusty/zoidberg.git";

/// Zoidberg's `repo.yaml` as far as a mirror needs it. `pkg` links are left
/// out: a mirror replaces them with its own binary host.
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
        pkg: Vec::new(),
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
    }
}
