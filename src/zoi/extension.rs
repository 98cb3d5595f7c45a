//! Extension changes (`extension = { type = "zoi", changes = {...} }`) and
//! the rules for ordering them and for predicting when Zoi will refuse one.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::zoi::config::Config;

/// The change types this tool emits (a subset of Zoi's eight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Change {
    Pgp { name: String, key: String },
    RegistryRepo { add: String },
    RegistryAdd { add: String },
    RepoGit { add: String },
    RepoAdd { add: String },
}

impl Change {
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Pgp { .. } => "pgp",
            Change::RegistryRepo { .. } => "registry-repo",
            Change::RegistryAdd { .. } => "registry-add",
            Change::RepoGit { .. } => "repo-git",
            Change::RepoAdd { .. } => "repo-add",
        }
    }

    /// The change as Zoi's Lua table fields, `type` first.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![("type", self.kind())];
        match self {
            Change::Pgp { name, key } => {
                out.push(("name", name));
                out.push(("key", key));
            }
            Change::RegistryRepo { add }
            | Change::RegistryAdd { add }
            | Change::RepoGit { add }
            | Change::RepoAdd { add } => out.push(("add", add)),
        }
        out
    }

    /// Position in the emitted list. Zoi applies in order, stops at the first
    /// failure and rolls back what it applied; `remove` reverts in reverse.
    /// Keys come first (authorities must resolve before the registry that
    /// needs them is used), the registry switch next, and the changes that can
    /// fail on a user's existing state (`registry-add`, `repo-git`,
    /// `repo-add`) last, so a failure rolls back the fewest steps.
    fn rank(&self) -> u8 {
        match self {
            Change::Pgp { .. } => 0,
            Change::RegistryRepo { .. } => 1,
            Change::RegistryAdd { .. } => 2,
            Change::RepoGit { .. } => 3,
            Change::RepoAdd { .. } => 4,
        }
    }

    /// Why this change would fail, or would later destroy something the
    /// user already had, if handed to Zoi 1.29.4 against the user's current
    /// config layer and data dir. A failed change makes Zoi delete the
    /// extension's record while leaving earlier changes behind; a change
    /// that "adds" what already exists makes `zoi extension remove` delete
    /// the user's own copy (`remove_added_registry` deletes the registry's
    /// synced clone, the `pgp` revert deletes the key file).
    pub fn collision(&self, user: &Config, zoi_data_dir: &Path) -> Option<String> {
        match self {
            Change::RepoAdd { add } => {
                let lower = add.to_lowercase();
                user.repos
                    .contains(&lower)
                    .then(|| format!("Repository '{add}' already exists in user config"))
            }
            Change::RegistryAdd { add } => user
                .added_registries
                .iter()
                .any(|r| &r.url == add)
                .then(|| format!("Registry with URL or handle '{add}' already exists")),
            Change::RepoGit { add } => {
                let name = git_repo_dir_name(add);
                let dir = zoi_data_dir.join("pkgs").join("git").join(name);
                dir.exists()
                    .then(|| format!("Git repo '{name}' already exists at {}", dir.display()))
            }
            Change::Pgp { name, .. } => {
                let file = zoi_data_dir.join("pgps").join(format!("{name}.asc"));
                file.exists().then(|| {
                    format!(
                        "a key named '{name}' is already in Zoi's key store ({})",
                        file.display()
                    )
                })
            }
            Change::RegistryRepo { .. } => None,
        }
    }

    /// Whether a collision can be worked around by hiding the user's entry
    /// from Zoi while it adds the change (true only for `repo-add`: the tier
    /// list has no other state attached).
    pub fn collision_is_hideable(&self) -> bool {
        matches!(self, Change::RepoAdd { .. })
    }
}

/// Sorts changes into the order Zoi can apply and revert cleanly (stable
/// within one kind, so the spec's order is kept there).
pub fn ordered(mut changes: Vec<Change>) -> Vec<Change> {
    changes.sort_by_key(Change::rank);
    changes
}

/// The folder name Zoi clones a `repo-git` URL into.
pub fn git_repo_dir_name(url: &str) -> &str {
    url.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".git")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_failure_prone_changes_last() {
        let changes = ordered(vec![
            Change::RepoAdd { add: "test".into() },
            Change::RegistryAdd {
                add: "https://r".into(),
            },
            Change::RegistryRepo {
                add: "https://m".into(),
            },
            Change::Pgp {
                name: "k".into(),
                key: "https://k".into(),
            },
        ]);
        let kinds: Vec<_> = changes.iter().map(Change::kind).collect();
        assert_eq!(kinds, ["pgp", "registry-repo", "registry-add", "repo-add"]);
    }

    #[test]
    fn predicts_repo_add_collision_case_insensitively() {
        let user = Config {
            repos: vec!["core".into()],
            ..Config::default()
        };
        let c = Change::RepoAdd { add: "Core".into() };
        assert!(c.collision(&user, Path::new("/nonexistent")).is_some());
        let c = Change::RepoAdd { add: "test".into() };
        assert!(c.collision(&user, Path::new("/nonexistent")).is_none());
    }

    #[test]
    fn git_dir_name_like_zoi() {
        assert_eq!(git_repo_dir_name("https://h/a/tools.git/"), "tools");
        assert_eq!(git_repo_dir_name("git@h:a/tools.git"), "tools");
    }
}
