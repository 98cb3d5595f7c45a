//! What `apply` writes for each managed key, and what `revert` restores.
//!
//! The rule is "change only what the bundle manages, and within it only
//! what the bundle says": lists gain the bundle's entries (no duplicates)
//! and keep the user's; `default_registry` takes url, handle and
//! authorities from the bundle; scalars are set. Revert is the inverse with
//! one extra rule: a key the user changed after apply is theirs, and stays.

use serde_yaml::{Mapping, Value};

use crate::zoi::config::{Config, Registry};

/// Keys whose value is a list of strings, merged entry by entry.
const STRING_LISTS: [&str; 4] = ["repos", "git_repos", "pkg_dirs", "cache_mirrors"];

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_yaml::to_value(t).expect("config values serialise")
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| serde_yaml::from_value::<Vec<String>>(v.clone()).ok())
        .unwrap_or_default()
}

fn registries(v: Option<&Value>) -> Vec<Registry> {
    v.and_then(|v| serde_yaml::from_value::<Vec<Registry>>(v.clone()).ok())
        .unwrap_or_default()
}

fn push_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// The value `key` should have after applying `bundle` over `current`
/// (the user's raw value, `None` when the key is absent).
pub fn applied_value(key: &str, current: Option<&Value>, bundle: &Config) -> Value {
    match key {
        k if STRING_LISTS.contains(&k) => {
            let mut out = Vec::new();
            push_unique(&mut out, string_list(current));
            let ours = match k {
                "repos" => &bundle.repos,
                "git_repos" => &bundle.git_repos,
                "pkg_dirs" => &bundle.pkg_dirs,
                _ => &bundle.cache_mirrors,
            };
            push_unique(&mut out, ours.iter().cloned());
            to_value(&out)
        }
        "added_registries" => {
            let mut out = registries(current);
            for r in &bundle.added_registries {
                if !out.iter().any(|o| o.url == r.url) {
                    out.push(r.clone());
                }
            }
            to_value(&out)
        }
        "default_registry" => {
            let ours = bundle.default_registry.clone().unwrap_or_default();
            let theirs = current.and_then(|v| {
                serde_yaml::from_value::<Option<Registry>>(v.clone())
                    .ok()
                    .flatten()
            });
            // name/description/prefix describe a registry: keep the user's
            // only when they already pointed at ours.
            let merged = match theirs {
                Some(t) if t.url == ours.url => Registry {
                    handle: ours.handle.clone(),
                    authorities: ours.authorities.clone(),
                    ..t
                },
                _ => ours,
            };
            to_value(&merged)
        }
        "offline_mode" => Value::Bool(bundle.offline_mode),
        "policy" => {
            let mut m = match current {
                Some(Value::Mapping(m)) => m.clone(),
                _ => Mapping::new(),
            };
            if let Value::Mapping(ours) = to_value(&bundle.policy) {
                for (k, v) in ours {
                    m.insert(k, v);
                }
            }
            Value::Mapping(m)
        }
        other => unreachable!("{other} is not a key zoi-mirror manages"),
    }
}

/// `current` without the entries an earlier apply added (per `prev`) that
/// the bundle now being applied no longer lists. Only list keys have such
/// entries; other keys are returned unchanged.
pub fn without_retired(
    key: &str,
    current: Option<&Value>,
    prev: &crate::client::state::KeyState,
    bundle: &Config,
) -> Option<Value> {
    let current = current?;
    if STRING_LISTS.contains(&key) {
        let before = string_list(prev.before.as_ref());
        let ours = match key {
            "repos" => &bundle.repos,
            "git_repos" => &bundle.git_repos,
            "pkg_dirs" => &bundle.pkg_dirs,
            _ => &bundle.cache_mirrors,
        };
        let retired: Vec<String> = prev
            .written()
            .flat_map(|v| string_list(Some(v)))
            .filter(|e| !before.contains(e) && !ours.contains(e))
            .collect();
        let kept: Vec<String> = string_list(Some(current))
            .into_iter()
            .filter(|e| !retired.contains(e))
            .collect();
        return Some(to_value(&kept));
    }
    if key == "added_registries" {
        let before: Vec<String> = registries(prev.before.as_ref())
            .into_iter()
            .map(|r| r.url)
            .collect();
        let retired: Vec<String> = prev
            .written()
            .flat_map(|v| registries(Some(v)))
            .map(|r| r.url)
            .filter(|u| !before.contains(u) && !bundle.added_registries.iter().any(|r| &r.url == u))
            .collect();
        let kept: Vec<Registry> = registries(Some(current))
            .into_iter()
            .filter(|r| !retired.contains(&r.url))
            .collect();
        return Some(to_value(&kept));
    }
    Some(current.clone())
}

/// Every key `apply` may manage.
pub const MANAGEABLE: [&str; 8] = [
    "repos",
    "default_registry",
    "added_registries",
    "git_repos",
    "cache_mirrors",
    "pkg_dirs",
    "offline_mode",
    "policy",
];

/// What revert does with one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Restore {
    /// Set the key to this value (`None`: remove the key).
    Set(Option<Value>),
    /// The user changed the key after apply: leave it.
    Kept,
}

/// How to revert `key`, given its value now, the value apply wrote and the
/// value before apply.
pub fn restore(key: &str, now: Option<&Value>, applied: &Value, before: Option<&Value>) -> Restore {
    restore_any(key, now, &[applied], before)
}

/// [`restore`] when apply may have left any of `written` in the file (an
/// upgrade interrupted before it replaced the file).
pub fn restore_any(
    key: &str,
    now: Option<&Value>,
    written: &[&Value],
    before: Option<&Value>,
) -> Restore {
    if STRING_LISTS.contains(&key) {
        // Remove exactly the entries apply added; anything the user added
        // later stays, in place.
        let added: Vec<String> = written
            .iter()
            .flat_map(|v| string_list(Some(v)))
            .filter(|e| !string_list(before).contains(e))
            .collect();
        let Some(now) = now else { return Restore::Kept };
        let remaining: Vec<String> = string_list(Some(now))
            .into_iter()
            .filter(|e| !added.contains(e))
            .collect();
        if remaining.is_empty() && before.is_none() {
            return Restore::Set(None);
        }
        return Restore::Set(Some(to_value(&remaining)));
    }
    if key == "added_registries" {
        let before_urls: Vec<String> = registries(before).into_iter().map(|r| r.url).collect();
        let added: Vec<String> = written
            .iter()
            .flat_map(|v| registries(Some(v)))
            .map(|r| r.url)
            .filter(|u| !before_urls.contains(u))
            .collect();
        let Some(now) = now else { return Restore::Kept };
        let remaining: Vec<Registry> = registries(Some(now))
            .into_iter()
            .filter(|r| !added.contains(&r.url))
            .collect();
        if remaining.is_empty() && before.is_none() {
            return Restore::Set(None);
        }
        return Restore::Set(Some(to_value(&remaining)));
    }
    if now.is_some_and(|n| written.contains(&n)) {
        Restore::Set(before.cloned())
    } else {
        Restore::Kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(y: &str) -> Value {
        serde_yaml::from_str(y).unwrap()
    }

    fn bundle() -> Config {
        serde_yaml::from_str(
            "repos: [core, main, acme]\ncache_mirrors: [https://m]\ndefault_registry: {handle: zoidberg, url: https://git.acme/z.git, authorities: [k]}\nadded_registries: [{handle: '', url: https://r}]\npolicy: {repos_unoverridable: true}\n",
        )
        .unwrap()
    }

    #[test]
    fn lists_merge_without_duplicates_keeping_the_users() {
        let out = applied_value("repos", Some(&v("[extra, core, extra]")), &bundle());
        assert_eq!(out, v("[extra, core, main, acme]"));
        assert_eq!(
            applied_value("repos", None, &bundle()),
            v("[core, main, acme]")
        );
    }

    #[test]
    fn default_registry_takes_url_handle_authorities() {
        let out = applied_value(
            "default_registry",
            Some(&v("{handle: '', url: https://git.acme/z.git, name: Mine}")),
            &bundle(),
        );
        assert_eq!(
            out,
            v("{handle: zoidberg, url: https://git.acme/z.git, name: Mine, authorities: [k]}")
        );
        // Another registry's name is not carried over.
        let out = applied_value(
            "default_registry",
            Some(&v("{handle: x, url: https://other, name: Other}")),
            &bundle(),
        );
        assert_eq!(
            out,
            v("{handle: zoidberg, url: https://git.acme/z.git, authorities: [k]}")
        );
    }

    #[test]
    fn registries_merge_by_url() {
        let out = applied_value(
            "added_registries",
            Some(&v("[{handle: r, url: https://r}]")),
            &bundle(),
        );
        assert_eq!(out, v("[{handle: r, url: https://r}]"));
    }

    #[test]
    fn policy_merges_fields() {
        let out = applied_value("policy", Some(&v("{denied_packages: [x]}")), &bundle());
        assert_eq!(out, v("{denied_packages: [x], repos_unoverridable: true}"));
    }

    #[test]
    fn an_upgrade_drops_what_the_old_bundle_added_and_the_new_one_does_not() {
        let prev = crate::client::state::KeyState {
            before: Some(v("[https://mine]")),
            applied: v("[https://mine, https://old-mirror]"),
            replacing: Vec::new(),
            before_text: None,
        };
        let mut b = bundle();
        b.cache_mirrors = vec!["https://new-mirror".into()];
        let now = v("[https://mine, https://old-mirror, https://added-later]");
        let base = without_retired("cache_mirrors", Some(&now), &prev, &b);
        assert_eq!(base, Some(v("[https://mine, https://added-later]")));
        assert_eq!(
            applied_value("cache_mirrors", base.as_ref(), &b),
            v("[https://mine, https://added-later, https://new-mirror]")
        );
    }

    #[test]
    fn restore_lists_removes_only_what_apply_added() {
        let before = v("[extra]");
        let applied = v("[extra, core, main, acme]");
        // the user added "test" after apply
        let now = v("[extra, core, main, acme, test]");
        assert_eq!(
            restore("repos", Some(&now), &applied, Some(&before)),
            Restore::Set(Some(v("[extra, test]")))
        );
        // nothing was there before and nothing remains: remove the key
        assert_eq!(
            restore("repos", Some(&applied), &applied, None),
            Restore::Set(None)
        );
        assert_eq!(
            restore(
                "cache_mirrors",
                Some(&v("[https://m]")),
                &v("[https://m]"),
                None
            ),
            Restore::Set(None)
        );
    }

    #[test]
    fn restore_scalars_keeps_user_changes() {
        let applied = v("{handle: zoidberg, url: https://git.acme/z.git}");
        let before = v("{handle: '', url: https://old}");
        assert_eq!(
            restore("default_registry", Some(&applied), &applied, Some(&before)),
            Restore::Set(Some(before.clone()))
        );
        let edited = v("{handle: zoidberg, url: https://elsewhere}");
        assert_eq!(
            restore("default_registry", Some(&edited), &applied, Some(&before)),
            Restore::Kept
        );
        assert_eq!(
            restore("offline_mode", Some(&v("true")), &v("true"), None),
            Restore::Set(None)
        );
    }
}
