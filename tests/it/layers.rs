//! The house keeps its shape: data flows one way through `src/`.
//!
//! Every file under `src/` is read, its `crate::…` and `super::…` paths
//! (in `use` lines and in code, `{…}` groups expanded) are resolved to the
//! file-level module they name, and the graph is held to the rules the
//! module docs of `src/lib.rs` state:
//! (a) no import circle, of any length, between file modules;
//! (b) nothing outside `commands/`, `cli.rs` and `main.rs` imports
//!     `commands` or `cli`;
//! (c) `clap` only in `cli.rs`, `commands/` and `main.rs`;
//! (d) between top-level modules, imports only go down [`LAYERS`].
//! Comments are skipped (a doc link is not an import); so are the unit
//! tests at the end of a file (`#[cfg(test)] mod tests`), which may reach
//! anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first; a module may import its own layer's
/// modules and those of lower layers. Keep in step with `src/lib.rs`.
const LAYERS: &[&[&str]] = &[
    &["zoi"],
    &["error", "fsutil", "runtime"],
    &["net"],
    &["storage"],
    // The printer redacts with net's secret registry: above net, and below
    // everything that prints through it or uses its diffs and bars.
    &["output"],
    &["spec"],
    &["bundle"],
    &["client"],
    &["probe"],
    &["mirror"],
    // The human reports render the library's report types: above them,
    // below the commands that call them.
    &["output::human"],
    &["cli"],
    &["commands"],
    &["main"],
];

struct Tree {
    /// module path (`probe::check`) → source without comments and tests.
    files: BTreeMap<String, String>,
}

fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        return String::new();
    }
    parts.join("::")
}

/// The code of a file: line comments (doc comments included) dropped, and
/// everything from the unit tests on.
fn code_of(src: &str) -> String {
    let src = match src.find("#[cfg(test)]\nmod tests") {
        Some(i) => &src[..i],
        None => src,
    };
    src.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn read_tree(root: &Path) -> Tree {
    let mut files = BTreeMap::new();
    for e in walkdir::WalkDir::new(root) {
        let e = e.expect("walk src");
        if e.path().extension().is_some_and(|x| x == "rs") {
            let rel = e.path().strip_prefix(root).unwrap();
            let text = std::fs::read_to_string(e.path()).expect("read source");
            let m = module_of(rel);
            // lib.rs only declares the modules.
            if !m.is_empty() {
                files.insert(m, code_of(&text));
            }
        }
    }
    Tree { files }
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (the text after
/// `crate::` or `super::`).
fn expand(prefix: &str, rest: &str, out: &mut Vec<String>) {
    let rest = rest.trim();
    if let Some(inner) = rest.strip_prefix('{') {
        let inner = inner.strip_suffix('}').unwrap_or(inner);
        let mut depth = 0;
        let mut start = 0;
        for (i, ch) in inner.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(prefix, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(prefix, &inner[start..], out);
        return;
    }
    let rest = rest.split(" as ").next().unwrap_or_default().trim();
    if rest.is_empty() {
        return;
    }
    match rest.find("::{") {
        Some(i) => expand(&format!("{prefix}{}::", &rest[..i]), &rest[i + 2..], out),
        None => out.push(format!("{prefix}{rest}")),
    }
}

/// The paths a file names below the crate root, as written (`probe::check::Report`).
fn paths_in(module: &str, code: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\b(crate|super)::((?:\w+::)*)(\{[^;]*?\}|\w+)").unwrap();
    let mut out = Vec::new();
    for c in re.captures_iter(code) {
        let base = if &c[1] == "crate" {
            String::new()
        } else {
            // `super` of `a::b` (the file `a/b.rs` or `a/b/mod.rs`) is `a`.
            let mut parts: Vec<&str> = module.split("::").collect();
            parts.pop();
            if parts.is_empty() || parts == [""] {
                String::new()
            } else {
                format!("{}::", parts.join("::"))
            }
        };
        let mut items = Vec::new();
        expand(&c[2], &c[3], &mut items);
        out.extend(items.into_iter().map(|i| format!("{base}{i}")));
    }
    out
}

fn edges(tree: &Tree) -> BTreeMap<String, BTreeSet<String>> {
    let resolve = |path: &str| -> Option<String> {
        let segs: Vec<&str> = path.split("::").collect();
        (1..=segs.len())
            .rev()
            .map(|n| segs[..n].join("::"))
            .find(|m| tree.files.contains_key(m) && !m.is_empty())
    };
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, code) in &tree.files {
        let entry = g.entry(m.clone()).or_default();
        for p in paths_in(m, code) {
            if let Some(t) = resolve(&p)
                && t != *m
                && !m.starts_with(&format!("{t}::"))
            {
                entry.insert(t);
            }
        }
    }
    g
}

/// Every strongly connected component with more than one module.
fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's algorithm; recursion is fine for ~100 files.
    struct S<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut S<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut c = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on.remove(w);
                c.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                c.sort();
                s.out.push(c);
            }
        }
    }
    let mut s = S {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The unit [`LAYERS`] places `m` by: its top-level module, except for
/// `output::human`, which has a layer of its own.
fn top(m: &str) -> &str {
    if m == "output::human" || m.starts_with("output::human::") {
        return "output::human";
    }
    m.split("::").next().unwrap_or(m)
}

fn layer_of(m: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top(m)))
}

/// All the rule breaks of a tree, one line each.
fn violations(tree: &Tree) -> Vec<String> {
    let g = edges(tree);
    let mut out = Vec::new();
    for c in circles(&g) {
        let links: Vec<String> = c
            .iter()
            .map(|a| {
                let to: Vec<&str> = g[a]
                    .iter()
                    .filter(|t| c.contains(t))
                    .map(String::as_str)
                    .collect();
                format!("{a} -> {}", to.join(", "))
            })
            .collect();
        out.push(format!("(a) import circle: {}", links.join("; ")));
    }
    let above = |m: &str| matches!(top(m), "commands" | "cli" | "main");
    for (m, ts) in &g {
        for t in ts {
            if !above(m) && matches!(top(t), "commands" | "cli") {
                out.push(format!("(b) {m} imports {t}, above it"));
            }
            match (layer_of(m), layer_of(t)) {
                (Some(a), Some(b)) if top(m) != top(t) && b > a => out.push(format!(
                    "(d) {m} imports {t}: `{}` is in a higher layer than `{}`",
                    top(t),
                    top(m)
                )),
                (None, _) => out.push(format!("(d) `{}` has no layer in LAYERS", top(m))),
                _ => {}
            }
        }
    }
    let clap = regex::Regex::new(r"\bclap::").unwrap();
    for (m, code) in &tree.files {
        if !above(m) && clap.is_match(code) {
            out.push(format!("(c) {m} uses clap (clap belongs in cli.rs)"));
        }
    }
    out
}

#[test]
fn data_flows_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let tree = read_tree(&root);
    assert!(tree.files.len() > 50, "read {} files", tree.files.len());
    let v = violations(&tree);
    assert!(
        v.is_empty(),
        "the house rules are broken:\n{}",
        v.join("\n")
    );
}

/// The checker itself catches each kind of break (so a green run means
/// something).
#[test]
fn the_rules_catch_each_kind_of_break() {
    let tree = |files: &[(&str, &str)]| Tree {
        files: files
            .iter()
            .map(|(m, c)| (m.to_string(), code_of(c)))
            .collect(),
    };
    let found = |files: &[(&str, &str)]| violations(&tree(files)).join("\n");

    // (a) a circle inside one folder, through a `{…}` group and `super::`.
    let v = found(&[
        ("probe", ""),
        ("probe::fetch", "use super::http;\nfn f() { http::x() }"),
        (
            "probe::http",
            "use crate::probe::{check, fetch::redirect_policy};",
        ),
        ("probe::check", ""),
    ]);
    assert!(
        v.contains("(a) import circle: probe::fetch -> probe::http; probe::http -> probe::fetch"),
        "{v}"
    );
    // (b) and (d): the library reaching up into a command.
    let v = found(&[
        ("commands", ""),
        ("commands::check", ""),
        ("mirror", ""),
        (
            "mirror::binsync",
            "pub error: Option<crate::commands::check::Out>,",
        ),
    ]);
    assert!(
        v.contains("(b) mirror::binsync imports commands::check"),
        "{v}"
    );
    assert!(
        v.contains("(d) mirror::binsync imports commands::check"),
        "{v}"
    );
    // (c) clap below the CLI.
    let v = found(&[
        ("zoi", ""),
        ("zoi::paths", "#[derive(clap::ValueEnum)]\nenum K {}"),
    ]);
    assert!(v.contains("(c) zoi::paths uses clap"), "{v}");
    // (d) a lower layer importing a higher one, e.g. storage → mirror.
    let v = found(&[
        ("storage", "use crate::mirror::index::Layout;"),
        ("mirror", ""),
        ("mirror::index", ""),
    ]);
    assert!(v.contains("(d) storage imports mirror::index"), "{v}");
    // Comments and unit tests are not imports.
    let v = found(&[
        (
            "storage",
            "//! see [`crate::mirror::index`]\n#[cfg(test)]\nmod tests {\n use crate::mirror::index;\n}",
        ),
        ("mirror", ""),
        ("mirror::index", ""),
    ]);
    assert!(v.is_empty(), "{v}");
}
