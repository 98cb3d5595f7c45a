//! Specs for tests, built with `toml_edit` instead of written by hand.
//!
//! Start from [`Spec::minimal`] (the smallest spec `build` accepts) or
//! [`Spec::example`] (the shipped `examples/acme/mirror.toml`), change it
//! with dotted paths, write it:
//!
//! ```ignore
//! let p = Spec::minimal()
//!     .set("extension.name", "lab-mirror")
//!     .list("binaries.platforms", ["linux-amd64"])
//!     .push("client.pgp", &[("name", "k"), ("url", "https://…/k.asc")])
//!     .write(dir);
//! ```
//!
//! Paths are table names joined by `.` (no quoting: spec keys never hold a
//! dot). Setting a key creates the tables on its way; an array of tables
//! (`[[registry.tiers]]`) is grown with [`Spec::push`].

use std::path::{Path, PathBuf};

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

/// The smallest valid spec. Its text is also the base of the malformed-spec
/// tests, whose expected line and column numbers count from it: keep its
/// lines where they are.
pub const MINIMAL: &str = r#"[extension]
name = "acme-mirror"
version = "1.0.0"
description = "d"
tier = "core"
maintainer = { name = "n", email = "e@x.example" }

[registry]
url = "https://git.acme.example/z.git"

[binaries]
url = "https://bin.acme.example/pkgs"
"#;

#[derive(Clone)]
pub struct Spec {
    doc: DocumentMut,
}

impl Spec {
    pub fn minimal() -> Spec {
        Spec::parse(MINIMAL)
    }

    /// The shipped example, as users start from it.
    pub fn example() -> Spec {
        Spec::parse(&std::fs::read_to_string(super::example_spec()).unwrap())
    }

    pub fn parse(text: &str) -> Spec {
        Spec {
            doc: text
                .parse()
                .unwrap_or_else(|e| panic!("not TOML ({e}):\n{text}")),
        }
    }

    /// The table at `path`, made (as a `[header]` table) if missing.
    fn table(&mut self, path: &str) -> &mut Table {
        let mut t = self.doc.as_table_mut();
        for key in path.split('.').filter(|k| !k.is_empty()) {
            let item = t.entry(key).or_insert_with(|| {
                let mut new = Table::new();
                new.set_implicit(true);
                Item::Table(new)
            });
            t = item
                .as_table_mut()
                .unwrap_or_else(|| panic!("`{key}` in `{path}` is not a table"));
        }
        t
    }

    /// (parent table path, last key) of a dotted path.
    fn split(path: &str) -> (&str, &str) {
        path.rsplit_once('.').unwrap_or(("", path))
    }

    /// Sets the key at `path` to a string, integer, bool or any toml value.
    pub fn set(mut self, path: &str, value: impl Into<Value>) -> Spec {
        let (parent, key) = Spec::split(path);
        self.table(parent).insert(key, Item::Value(value.into()));
        self
    }

    /// Sets the key at `path` to an array of strings.
    pub fn list<'a>(self, path: &str, items: impl IntoIterator<Item = &'a str>) -> Spec {
        let array: toml_edit::Array = items.into_iter().collect();
        self.set(path, array)
    }

    /// Sets the key at `path` to an inline table of strings
    /// (`maintainer = { name = …, email = … }`).
    pub fn inline(self, path: &str, pairs: &[(&str, &str)]) -> Spec {
        let mut t = toml_edit::InlineTable::new();
        for (k, v) in pairs {
            t.insert(*k, (*v).into());
        }
        self.set(path, t)
    }

    /// Appends one `[[path]]` table of string values.
    pub fn push(mut self, path: &str, pairs: &[(&str, &str)]) -> Spec {
        let (parent, key) = Spec::split(path);
        let item = self
            .table(parent)
            .entry(key)
            .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
        let mut t = Table::new();
        for (k, v) in pairs {
            t.insert(k, toml_edit::value(*v));
        }
        item.as_array_of_tables_mut()
            .unwrap_or_else(|| panic!("`{path}` is not an array of tables"))
            .push(t);
        self
    }

    /// Removes the key or table at `path`; it must be there (a test that
    /// removes nothing tests nothing).
    pub fn remove(mut self, path: &str) -> Spec {
        let (parent, key) = Spec::split(path);
        assert!(
            self.table(parent).remove(key).is_some(),
            "no `{path}` to remove"
        );
        self
    }

    /// Merges a TOML fragment into the spec: tables merge key by key, a
    /// key replaces, `[[arrays]]` of tables append. For callers that hand
    /// a test's extra settings around as text (`"trust = [\"k\"]"` under
    /// `[binaries]`): `merge_under("binaries", text)`.
    pub fn merge(mut self, fragment: &str) -> Spec {
        let other = Spec::parse(fragment).doc;
        merge_table(self.doc.as_table_mut(), other.as_table());
        self
    }

    /// [`Spec::merge`] with `fragment`'s top level read as table `path`.
    pub fn merge_under(self, path: &str, fragment: &str) -> Spec {
        if fragment.trim().is_empty() {
            return self;
        }
        self.merge(&format!("[{path}]\n{fragment}\n"))
    }

    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// Writes `dir/mirror.toml`; returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        self.write_to(&dir.join("mirror.toml"))
    }

    /// Writes the spec to `path`; returns it.
    pub fn write_to(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.text()).unwrap();
        path.to_path_buf()
    }
}

fn merge_table(into: &mut Table, from: &Table) {
    for (key, item) in from.iter() {
        let mut item = item.clone();
        unposition(&mut item);
        match (into.get_mut(key), item) {
            (Some(Item::Table(a)), Item::Table(b)) => merge_table(a, &b),
            (Some(Item::ArrayOfTables(a)), Item::ArrayOfTables(b)) => {
                for t in b.into_iter() {
                    a.push(t);
                }
            }
            (_, item) => {
                into.insert(key, item);
            }
        }
    }
}

/// Forgets where a fragment's tables stood in the fragment: toml_edit
/// writes tables in the order of their positions, and the fragment's
/// would put them (and their `[[array]]` entries) before the spec's own.
fn unposition(item: &mut Item) {
    match item {
        Item::Table(t) => {
            t.set_position(None);
            t.iter_mut().for_each(|(_, i)| unposition(i));
        }
        Item::ArrayOfTables(a) => {
            for t in a.iter_mut() {
                t.set_position(None);
                t.iter_mut().for_each(|(_, i)| unposition(i));
            }
        }
        _ => {}
    }
}

#[test]
fn the_builder_sets_removes_pushes_and_merges() {
    let text = Spec::minimal()
        .set("extension.name", "lab")
        .list("binaries.platforms", ["linux-amd64", "macos-arm64"])
        .push("client.pgp", &[("name", "k"), ("url", "https://x/k.asc")])
        .merge_under("client", "tiers = [\"core\"]\n[[client.pgp]]\nname = \"j\"")
        .remove("extension.tier")
        .set("setup.url", "https://x/setup")
        .text();
    let v: toml_edit::DocumentMut = text.parse().unwrap();
    assert_eq!(v["extension"]["name"].as_str(), Some("lab"));
    assert!(v["extension"].get("tier").is_none(), "{text}");
    assert_eq!(v["binaries"]["platforms"].as_array().unwrap().len(), 2);
    let pgp = v["client"]["pgp"].as_array_of_tables().unwrap();
    assert_eq!(pgp.len(), 2, "{text}");
    assert_eq!(pgp.get(1).unwrap()["name"].as_str(), Some("j"));
    assert_eq!(v["client"]["tiers"].as_array().unwrap().len(), 1);
    assert_eq!(v["setup"]["url"].as_str(), Some("https://x/setup"));
    assert_eq!(
        Spec::minimal().text(),
        MINIMAL,
        "minimal is the text as written"
    );
}

/// The shipped example's secure shape over a test world: the company's
/// registry (`registry`, signed with `fpr`, authorities = its key) mirrored
/// from `upstream`, binaries under `{base}/pkgs` for this host's platform,
/// clients given the key at `{base}/keys/acme-registry.asc`.
pub fn company(registry: &str, upstream: &str, fpr: &str, base: &str) -> Spec {
    Spec::minimal()
        .set("extension.description", "ACME's Zoi mirror")
        .set("extension.tier", "main")
        .inline(
            "extension.maintainer",
            &[("name", "ACME IT"), ("email", "it@acme.example")],
        )
        .set("registry.url", registry)
        .set("registry.upstream", upstream)
        .set("registry.handle", "zoidberg")
        .set("registry.name", "zoidberg")
        .list("registry.authorities", ["acme-registry"])
        .set("registry.signing_key", fpr)
        .set("binaries.url", format!("{base}/pkgs"))
        .list(
            "binaries.platforms",
            [super::upstream::host_platform().as_str()],
        )
        .list("client.tiers", ["core", "main", "extra"])
        .push(
            "client.pgp",
            &[
                ("name", "acme-registry"),
                ("url", &format!("{base}/keys/acme-registry.asc")),
            ],
        )
}
