//! The shape of `src/`: no import circle between files, and imports only go down the house
//! (`../shared/STYLE.md`'s layout; issue 16). Run by the test command like every test, so a
//! circle cannot come back silently.
//!
//! Each file of `src/` is a node; an edge `a -> b` is a path in `a` that names an item of `b`:
//! a `use` (with `crate::`, `super::`, `self::` or a child module), or a path in the code
//! (`crate::store::open(..)`). A name a module re-exports (`pub use child::Name`) points at the
//! file that defines it, so `mod.rs` files that only declare and re-export tie nothing together.
//! Code under `#[cfg(test)]` (unit-test modules and items) is left out: tests may reach anywhere.
//! Files are parsed with `syn`, so comments, strings and macros' text never count.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A module path inside the crate: `["proxy", "routes", "api"]`; the crate root is `[]`.
type ModPath = Vec<String>;

/// Layers that must never import one another, as (importer prefix, imported prefix) over paths
/// relative to `src/` (a prefix ending in `/` is a folder). Each says why.
const NEVER: &[(&str, &str, &str)] = &[
    (
        "config/",
        "store/",
        "configuration is the bottom of the house",
    ),
    (
        "config/",
        "proxy/",
        "configuration is the bottom of the house",
    ),
    (
        "config/",
        "session.rs",
        "configuration is the bottom of the house",
    ),
    (
        "config/",
        "oidc/",
        "configuration is the bottom of the house",
    ),
    (
        "config/",
        "server.rs",
        "configuration is the bottom of the house",
    ),
    (
        "store/",
        "proxy/",
        "the store serves the proxy, not the reverse",
    ),
    (
        "store/",
        "session.rs",
        "the store knows records, not sessions",
    ),
    ("store/", "oidc/", "the store knows records, not the OP"),
    ("profile/", "proxy/", "profiling is HTTP-free"),
    ("profile/", "session.rs", "profiling is HTTP-free"),
    ("oidc/", "proxy/", "the OIDC client is below the proxy"),
    ("policy/", "proxy/", "policy is pure: no HTTP"),
    (
        "policy/",
        "config/",
        "the configuration compiles the policy, not the reverse",
    ),
    (
        "policy/",
        "profile/",
        "question conditions use the policy, not the reverse",
    ),
    (
        "policy/",
        "store/",
        "policy decides over facts, never reads the store",
    ),
    (
        "policy/",
        "session.rs",
        "policy decides over facts, not sessions",
    ),
    ("session.rs", "proxy/", "sessions are below the proxy"),
    (
        "pipeline.rs",
        "proxy/",
        "decide() is pure: the proxy carries it out",
    ),
    (
        "proxy/",
        "server.rs",
        "start-up assembles the proxy, not the reverse",
    ),
    (
        "proxy/routes/",
        "proxy/mod.rs",
        "routes are dispatched by Gate::serve, never the reverse",
    ),
];

/// One use site: which file names which module path (for the failure message).
#[derive(Clone, Debug)]
struct Site {
    from: PathBuf,
    path: String,
}

/// The parsed crate: files by module path, and the re-exports of every module.
struct Crate {
    root: PathBuf,
    /// Module path -> file, for every non-test file.
    files: BTreeMap<ModPath, PathBuf>,
    /// Module -> (re-exported name -> the full path it re-exports).
    reexports: HashMap<ModPath, HashMap<String, Vec<String>>>,
    /// The absolute (crate-rooted) paths each file names, with the text written.
    paths: BTreeMap<ModPath, Vec<(Vec<String>, String)>>,
}

fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .map(|m| m.path().is_ident("test"))
                .unwrap_or(false)
    })
}

/// Collects the paths one file names, leaving out `#[cfg(test)]` items.
struct Collector<'a> {
    /// The module this file is.
    here: &'a ModPath,
    /// The child modules this file declares (`mod x;` / `mod x { .. }`), for `use x::..`.
    children: BTreeSet<String>,
    out: Vec<(Vec<String>, String)>,
    /// `pub use` items: name -> full crate path.
    reexports: HashMap<String, Vec<String>>,
}

impl Collector<'_> {
    /// The module `self` and `super` are relative to.
    fn base(&self) -> ModPath {
        self.here.clone()
    }

    /// Turns a written path into a crate-rooted one, or `None` (std, an extern crate, a local).
    fn absolute(&self, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        match first.as_str() {
            "crate" => Some(segments[1..].to_vec()),
            "self" => {
                let mut p = self.base();
                p.extend_from_slice(&segments[1..]);
                Some(p)
            }
            "super" => {
                let mut p = self.base();
                let mut rest = segments;
                while rest.first().map(String::as_str) == Some("super") {
                    p.pop()?;
                    rest = &rest[1..];
                }
                p.extend_from_slice(rest);
                Some(p)
            }
            child if self.children.contains(child) => {
                let mut p = self.base();
                p.extend_from_slice(segments);
                Some(p)
            }
            _ => None,
        }
    }

    fn record(&mut self, segments: Vec<String>) {
        if let Some(abs) = self.absolute(&segments) {
            self.out.push((abs, segments.join("::")));
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, public: bool) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, public);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                let mut full = prefix.clone();
                if name != "self" {
                    full.push(name.clone());
                }
                if public {
                    let exported = if name == "self" {
                        prefix.last().cloned().unwrap_or_default()
                    } else {
                        name
                    };
                    self.export(exported, &full);
                }
                self.record(full);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                if r.ident != "self" {
                    full.push(r.ident.to_string());
                }
                if public {
                    self.export(r.rename.to_string(), &full);
                }
                self.record(full);
            }
            syn::UseTree::Glob(_) => self.record(prefix.clone()),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item, public);
                }
            }
        }
    }

    fn export(&mut self, name: String, full: &[String]) {
        if let Some(abs) = self.absolute(full) {
            self.reexports.insert(name, abs);
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Trait(t) => &t.attrs,
            syn::Item::Type(t) => &t.attrs,
            syn::Item::Macro(m) => &m.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if is_cfg_test(attrs) {
            return;
        }
        match item {
            syn::Item::Use(u) => {
                let public = !matches!(u.vis, syn::Visibility::Inherited);
                self.use_tree(&mut Vec::new(), &u.tree, public);
            }
            // An inline module is part of this file; its own `self`/`super` are not modelled,
            // and none in src/ uses them.
            _ => syn::visit::visit_item(self, item),
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if path.leading_colon.is_none() && segments.len() > 1 {
            self.record(segments);
        }
        syn::visit::visit_path(self, path);
    }
}

/// The `mod` items of a file: (name, declared under `#[cfg(test)]`).
fn declared_modules(file: &syn::File) -> Vec<(String, bool)> {
    file.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Mod(m) => Some((m.ident.to_string(), is_cfg_test(&m.attrs))),
            _ => None,
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut all = Vec::new();
        rust_files(src, &mut all);
        let mut parsed = BTreeMap::new();
        for file in &all {
            // `main.rs` is its own crate root: `crate::` there means the binary, not the library.
            if file.parent() == Some(src) && file.file_name().is_some_and(|n| n == "main.rs") {
                continue;
            }
            let text = std::fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            let ast = syn::parse_file(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
            parsed.insert(module_of(src, file), (file.clone(), ast));
        }
        // Modules declared under #[cfg(test)], and everything below them, are tests.
        let mut test_modules: Vec<ModPath> = Vec::new();
        for (module, (_, ast)) in &parsed {
            for (name, test) in declared_modules(ast) {
                if test {
                    let mut child = module.clone();
                    child.push(name);
                    test_modules.push(child);
                }
            }
        }
        let is_test = |m: &ModPath| test_modules.iter().any(|t| m.starts_with(t));
        let mut krate = Crate {
            root: src.to_path_buf(),
            files: BTreeMap::new(),
            reexports: HashMap::new(),
            paths: BTreeMap::new(),
        };
        for (module, (file, ast)) in parsed {
            if is_test(&module) {
                continue;
            }
            let mut collector = Collector {
                here: &module,
                children: declared_modules(&ast).into_iter().map(|(n, _)| n).collect(),
                out: Vec::new(),
                reexports: HashMap::new(),
            };
            collector.visit_file(&ast);
            let (out, reexports) = (collector.out, collector.reexports);
            krate.reexports.insert(module.clone(), reexports);
            krate.paths.insert(module.clone(), out);
            krate.files.insert(module, file);
        }
        krate
    }

    /// The file that defines what `path` names: the deepest module on it, following
    /// re-exports to the module that defines the name.
    fn resolve(&self, path: &[String]) -> Option<&ModPath> {
        let mut path = path.to_vec();
        for _ in 0..16 {
            let k = (0..=path.len())
                .rev()
                .find(|&k| self.files.contains_key(&path[..k]))?;
            let (module, rest) = path.split_at(k);
            let module = module.to_vec();
            match rest
                .first()
                .and_then(|name| self.reexports.get(&module)?.get(name))
            {
                Some(target) if target.as_slice() != path.as_slice() => {
                    let mut next = target.clone();
                    next.extend_from_slice(&rest[1..]);
                    path = next;
                }
                _ => return self.files.get_key_value(&module).map(|(m, _)| m),
            }
        }
        None
    }

    fn relative(&self, module: &ModPath) -> String {
        self.files[module]
            .strip_prefix(&self.root)
            .expect("under src")
            .to_string_lossy()
            .into_owned()
    }

    /// Every edge between two different files, with the first use site that makes it.
    fn edges(&self) -> BTreeMap<(String, String), Site> {
        let mut edges = BTreeMap::new();
        for (module, paths) in &self.paths {
            for (abs, written) in paths {
                let Some(target) = self.resolve(abs) else {
                    continue;
                };
                if target == module {
                    continue;
                }
                edges
                    .entry((self.relative(module), self.relative(target)))
                    .or_insert_with(|| Site {
                        from: self.files[module].clone(),
                        path: written.clone(),
                    });
            }
        }
        edges
    }
}

/// Strongly connected components of two or more files (Tarjan), each sorted.
fn circles(edges: &BTreeMap<(String, String), Site>) -> Vec<Vec<String>> {
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        graph.entry(from).or_default().push(to);
        graph.entry(to).or_default();
    }
    struct State<'g> {
        graph: &'g BTreeMap<&'g str, Vec<&'g str>>,
        index: HashMap<&'g str, usize>,
        low: HashMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn strong<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in &s.graph[v] {
            if !s.index.contains_key(w) {
                strong(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        graph: &graph,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for &v in graph.keys() {
        if !state.index.contains_key(v) {
            strong(&mut state, v);
        }
    }
    state.found
}

/// The report for circles: each circle with the use sites that tie it.
fn describe(found: &[Vec<String>], edges: &BTreeMap<(String, String), Site>) -> String {
    let mut out = String::new();
    for (i, circle) in found.iter().enumerate() {
        let _ = writeln!(out, "circle {}: {}", i + 1, circle.join(", "));
        for ((from, to), site) in edges {
            if circle.contains(from) && circle.contains(to) {
                let _ = writeln!(
                    out,
                    "    {from} -> {to}   ({} names `{}`)",
                    site.from.display(),
                    site.path
                );
            }
        }
    }
    out
}

fn matches(prefix: &str, file: &str) -> bool {
    if prefix.ends_with('/') {
        file.starts_with(prefix)
    } else {
        file == prefix
    }
}

#[test]
fn src_has_no_import_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let krate = Crate::read(&src);
    let edges = krate.edges();
    assert!(
        edges.len() > 50,
        "only {} edges found in src/: the checker is not reading the crate",
        edges.len()
    );
    let found = circles(&edges);
    assert!(
        found.is_empty(),
        "import circles between files of src/ (break each by moving the shared item down):\n{}",
        describe(&found, &edges)
    );
}

#[test]
fn imports_only_go_down_the_house() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = Crate::read(&src).edges();
    let mut broken = String::new();
    for ((from, to), site) in &edges {
        for (upper, lower, why) in NEVER {
            if matches(upper, from) && matches(lower, to) {
                let _ = writeln!(
                    broken,
                    "{from} -> {to} ({} names `{}`): {upper} must not import {lower}: {why}",
                    site.from.display(),
                    site.path
                );
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{broken}");
}

/// The checker itself: a planted circle through a re-export and a `super::` path is found, a
/// `#[cfg(test)]` back-reference is not, and re-exports of a `mod.rs` tie nothing together.
#[test]
fn checker_finds_a_planted_circle_and_ignores_tests_and_reexports() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let path = src.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n");
    // a/mod.rs only declares and re-exports: its children naming `super::Thing` is no circle.
    write(
        "a/mod.rs",
        "mod inner;\nmod other;\npub use inner::Thing;\n",
    );
    write("a/inner.rs", "pub struct Thing;\n");
    write("a/other.rs", "use super::Thing;\npub fn f(_: Thing) {}\n");
    // b -> c through a path in code, c -> b through a re-export of a's: a circle b <-> c.
    write(
        "b.rs",
        "pub fn g() { crate::c::h(); }\npub struct B;\n#[cfg(test)]\nmod tests { use crate::a::Thing; }\n",
    );
    write("c.rs", "use crate::b::B;\npub fn h() { let _ = B; }\n");
    let krate = Crate::read(src);
    let edges = krate.edges();
    let found = circles(&edges);
    assert_eq!(found, vec![vec!["b.rs".to_owned(), "c.rs".to_owned()]]);
    assert!(edges.contains_key(&("a/other.rs".to_owned(), "a/inner.rs".to_owned())));
    assert!(!edges.contains_key(&("a/other.rs".to_owned(), "a/mod.rs".to_owned())));
    assert!(!edges.contains_key(&("b.rs".to_owned(), "a/inner.rs".to_owned())));
    let report = describe(&found, &edges);
    assert!(
        report.contains("b.rs -> c.rs") && report.contains("crate::c::h"),
        "{report}"
    );
}
