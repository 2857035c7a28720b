//! Tidy tests: the invariants ARCHITECTURE.md states, checked on the source tree and the
//! workspace's manifests (rust-analyzer's `tidy.rs` is the model). A failure names the file or
//! the dependency edge that breaks the rule, and the rule it breaks.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace root (this package is the root package).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The library and binary sources (not tests, benches, examples or build scripts).
fn product_sources() -> Vec<PathBuf> {
    let root = root();
    let mut files = rust_files(&root.join("src"));
    let crates = std::fs::read_dir(root.join("crates")).unwrap();
    let mut dirs: Vec<PathBuf> = crates.flatten().map(|e| e.path().join("src")).collect();
    dirs.sort();
    for d in dirs {
        files.extend(rust_files(&d));
    }
    files
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// The text of a source file up to its unit-test module (`#[cfg(test)]`), where the rules for
/// product code stop applying. A file that *is* a test module (`tests.rs`) yields nothing.
fn product_text(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

// ---------------------------------------------------------------------------------------------
// Dependency rules, from `cargo metadata`.

/// One declared dependency edge: package → dependency (with its kind: normal, dev, build).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    kind: String,
}

/// The workspace's declared dependency edges, from `cargo metadata --no-deps` (offline: it reads
/// the manifests only).
fn workspace_edges() -> Vec<Edge> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    edges_of(&meta)
}

fn edges_of(meta: &serde_json::Value) -> Vec<Edge> {
    let mut edges = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        let from = package["name"].as_str().unwrap_or_default().to_owned();
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            edges.push(Edge {
                from: from.clone(),
                to: dep["name"].as_str().unwrap_or_default().to_owned(),
                kind: dep["kind"].as_str().unwrap_or("normal").to_owned(),
            });
        }
    }
    edges.sort();
    edges
}

/// The project's own crates.
const PROJECT: [&str; 9] = [
    "deskie-import",
    "engine",
    "store",
    "desk360",
    "deskie",
    "throttle",
    "model",
    "sandbox",
    "transport",
];

/// Every edge that breaks a rule of ARCHITECTURE.md, with the rule.
fn forbidden(edges: &[Edge]) -> Vec<String> {
    let mut out = Vec::new();
    for e in edges {
        let (from, to) = (e.from.as_str(), e.to.as_str());
        let project_dep = PROJECT.contains(&to);
        let rule = match from {
            // The API crates never depend on each other, nor on the store or the engine.
            "desk360" | "deskie" if ["desk360", "deskie", "store", "engine"].contains(&to) => {
                Some("the two API crates depend on neither each other nor the store or engine")
            }
            // The sandbox is an independent reading of the vendor pages.
            "sandbox" if project_dep => Some("the sandbox depends on no project crate"),
            // The plain model and the plumbing sit at the bottom.
            "model" | "throttle" | "transport"
                if project_dep && !matches!((from, to), ("transport", "throttle")) =>
            {
                Some(
                    "model, throttle and transport depend on no other project crate (transport on throttle only)",
                )
            }
            "store" if project_dep && to != "model" => Some("the store depends on the model only"),
            _ => None,
        };
        let rule = rule.or_else(|| {
            // Only the engine touches the store (any kind of edge: a test of the binary that
            // opens the store is a second door too).
            (to == "store" && from != "engine").then_some("only the engine depends on the store")
        });
        let rule = rule.or_else(|| {
            // Only the binary uses anyhow; libraries say how to handle each error.
            (to == "anyhow" && from != "deskie-import" && e.kind != "dev")
                .then_some("anyhow only in the binary; a library crate has its thiserror enum")
        });
        if let Some(rule) = rule {
            out.push(format!("{from} → {to} ({}): {rule}", e.kind));
        }
    }
    out
}

#[test]
fn no_crate_depends_on_what_the_architecture_forbids() {
    let edges = workspace_edges();
    assert!(
        edges.iter().any(|e| e.from == "engine" && e.to == "store"),
        "cargo metadata was read: {edges:?}"
    );
    let bad = forbidden(&edges);
    assert!(
        bad.is_empty(),
        "forbidden dependencies:\n{}",
        bad.join("\n")
    );
}

#[test]
fn an_added_forbidden_edge_is_caught() {
    let meta = serde_json::json!({"packages": [
        {"name": "deskie-import", "dependencies": [{"name": "engine", "kind": null}, {"name": "store", "kind": "dev"}]},
        {"name": "desk360", "dependencies": [{"name": "deskie", "kind": null}]},
        {"name": "sandbox", "dependencies": [{"name": "model", "kind": "dev"}]},
        {"name": "engine", "dependencies": [{"name": "store", "kind": null}, {"name": "anyhow", "kind": null}]},
    ]});
    let bad = forbidden(&edges_of(&meta));
    assert_eq!(bad.len(), 4, "{bad:#?}");
    assert!(
        bad.iter()
            .any(|b| b.starts_with("deskie-import → store (dev)"))
    );
    assert!(bad.iter().any(|b| b.starts_with("desk360 → deskie")));
    assert!(bad.iter().any(|b| b.starts_with("sandbox → model")));
    assert!(bad.iter().any(|b| b.starts_with("engine → anyhow")));
}

// ---------------------------------------------------------------------------------------------
// Source rules.

#[test]
fn every_module_opens_with_a_doc_comment_saying_its_role() {
    let mut missing = Vec::new();
    for f in product_sources() {
        let text = std::fs::read_to_string(&f).unwrap();
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        if !first.starts_with("//!") {
            missing.push(rel(&f));
        }
    }
    assert!(
        missing.is_empty(),
        "modules without a `//!` opening: {missing:#?}"
    );
}

#[test]
fn the_binary_reaches_the_store_only_through_the_engine() {
    let mut bad = Vec::new();
    for f in rust_files(&root().join("src")) {
        for (n, line) in std::fs::read_to_string(&f).unwrap().lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains(".store()") || code.contains("store::") {
                bad.push(format!("{}:{}: {}", rel(&f), n + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "the binary touches the store:\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_the_binary_prints() {
    let mut bad = Vec::new();
    for f in product_sources() {
        if f.starts_with(root().join("src")) {
            continue;
        }
        for (n, line) in product_text(&f).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("]
                .iter()
                .any(|m| code.contains(m))
            {
                bad.push(format!("{}:{}: {}", rel(&f), n + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "libraries print (use tracing):\n{}",
        bad.join("\n")
    );
}

#[test]
fn mapping_is_pure() {
    let dir = root().join("crates/engine/src/mapping");
    let mut files = rust_files(&dir);
    files.push(root().join("crates/engine/src/mapping.rs"));
    let forbidden = [
        "tokio::",
        "reqwest",
        "sqlx",
        "store::",
        "std::fs",
        "std::net",
        "Timestamp::now",
        "SystemTime",
        "Instant::now",
        "std::env",
        "tracing::",
    ];
    let mut bad = Vec::new();
    for f in files.iter().filter(|f| f.exists()) {
        for (n, line) in product_text(f).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if let Some(word) = forbidden.iter().find(|w| code.contains(*w)) {
                bad.push(format!("{}:{}: `{word}` in {}", rel(f), n + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "mapping does I/O, reads a clock or logs (it returns warnings instead):\n{}",
        bad.join("\n")
    );
}

/// Functions longer than this are split (style.md: a function does one thing you can name).
const MAX_FUNCTION_LINES: usize = 120;

/// `(file, first line, length)` of every function over the limit in `text`: a function starts at
/// a line whose code begins with `fn`/`pub fn`/`async fn`… and ends at the first line that holds
/// only its indentation and `}`.
fn long_functions(text: &str) -> Vec<(usize, usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let head = trimmed
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("const ")
            .trim_start_matches("async ")
            .trim_start_matches("unsafe ");
        if !head.starts_with("fn ") || line.trim_end().ends_with(';') {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(end) = lines[i + 1..].iter().position(|l| l.trim_end() == close) {
            let len = end + 2;
            if len > MAX_FUNCTION_LINES {
                let name = head[3..]
                    .split(['(', '<'])
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                out.push((i + 1, len, name));
            }
        }
    }
    out
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let mut bad = Vec::new();
    for f in product_sources() {
        let r = rel(&f);
        // The sandbox's data generator builds whole synthetic accounts in one place.
        if r == "crates/sandbox/src/data.rs" {
            continue;
        }
        for (line, len, name) in long_functions(&product_text(&f)) {
            bad.push(format!("{r}:{line}: fn {name} is {len} lines"));
        }
    }
    assert!(
        bad.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines (split them):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_function_length_check_measures() {
    let body = (0..130).map(|_| "    let x = 1;\n").collect::<String>();
    let text = format!("fn short() {{\n}}\n\npub async fn long() {{\n{body}}}\n");
    let found = long_functions(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, 4);
    assert_eq!(found[0].2, "long");
}

// ---------------------------------------------------------------------------------------------
// Import circles between the modules of one crate.

/// The module path of a source file inside its crate: `src/report/html.rs` → `report::html`,
/// `src/report.rs` → `report`, `src/lib.rs` → `` (the crate root).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// Modules that `text` (the module `module`) names through `crate::…` or `super::…`, as
/// top-level-or-deeper module paths that exist in `known`.
fn imports(module: &str, text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let parent: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", parent[..parent.len().saturating_sub(1)].to_vec()),
    ] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let after = &rest[i + prefix.len()..];
            let path: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            insert_longest_module(&base, &path, module, known, &mut out);
            // `use crate::{a, b::c}`: each name in the braces.
            if let Some(braced) = after.strip_prefix('{') {
                let inner = braced.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    insert_longest_module(&base, item.trim(), module, known, &mut out);
                }
            }
            rest = &rest[i + prefix.len()..];
        }
    }
    out
}

/// Adds to `out` the longest prefix of `base::path` that is a module in `known`, unless it is
/// `module` itself.
fn insert_longest_module(
    base: &[&str],
    path: &str,
    module: &str,
    known: &BTreeSet<String>,
    out: &mut BTreeSet<String>,
) {
    let mut segs: Vec<String> = base.iter().map(|s| (*s).to_owned()).collect();
    segs.extend(
        path.split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    );
    while !segs.is_empty() {
        let candidate = segs.join("::");
        if known.contains(&candidate) {
            if candidate != module {
                out.insert(candidate);
            }
            return;
        }
        segs.pop();
    }
}

/// A parent module and its own children are one unit (a child sees its parent's items by
/// design); any other loop of imports between modules is a circle.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let related = |a: &str, b: &str| {
        a.is_empty()
            || b.is_empty()
            || a.starts_with(&format!("{b}::"))
            || b.starts_with(&format!("{a}::"))
    };
    let mut found = Vec::new();
    for start in graph.keys() {
        // Depth-first search for a path back to `start` through unrelated modules.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if related(&node, next) {
                    continue;
                }
                if next == start && path.len() > 1 {
                    let mut cycle = path.clone();
                    cycle.sort();
                    if !found.contains(&cycle) {
                        found.push(cycle);
                    }
                } else if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    found
}

#[test]
fn no_import_circle_between_modules() {
    let root = root();
    let mut srcs = vec![root.join("src")];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("src"))
        .collect();
    crates.sort();
    srcs.extend(crates);
    let mut bad = Vec::new();
    for src in srcs {
        let files = rust_files(&src);
        let known: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
        let mut graph = BTreeMap::new();
        for f in &files {
            let m = module_of(&src, f);
            // Code only: a doc link to `crate::x` is not an import.
            let code: String = product_text(f)
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            graph.insert(m.clone(), imports(&m, &code, &known));
        }
        for c in circles(&graph) {
            bad.push(format!("{}: {}", rel(&src), c.join(" ↔ ")));
        }
    }
    assert!(bad.is_empty(), "import circles:\n{}", bad.join("\n"));
}

#[test]
fn the_circle_check_finds_a_circle() {
    let known: BTreeSet<String> = ["a", "b", "c", "c::d"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), imports("a", "use crate::b::Thing;", &known));
    graph.insert(
        "b".to_owned(),
        imports("b", "use crate::{a::X, c};", &known),
    );
    graph.insert("c".to_owned(), imports("c", "use self::d::Y;", &known));
    graph.insert("c::d".to_owned(), imports("c::d", "use super::Z;", &known));
    let found = circles(&graph);
    assert_eq!(found, vec![vec!["a".to_owned(), "b".to_owned()]]);
}
