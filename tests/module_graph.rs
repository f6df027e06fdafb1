//! The layout of `src/` stays a story a newcomer can read (issue #12): at most 16 entries at
//! its top besides `main.rs` and `lib.rs`, and no import cycle between the top-level modules.
//!
//! A top-level module is `src/NAME.rs` or `src/NAME/`; an edge A -> B is a `crate::B` path in
//! A's non-test code (text before a file's first `#[cfg(test)]`, files named `tests.rs` left
//! out, `//` comments ignored): the rules of `module-cycles.py`, so the two agree.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Entries allowed at the top of `src/` besides `main.rs` and `lib.rs`.
const MOST_TOP_LEVEL_ENTRIES: usize = 16;

/// Top-level module -> the top-level modules it names.
type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn src_has_at_most_16_top_level_entries() {
    let entries = top_level_entries(&src());
    assert!(
        entries.len() <= MOST_TOP_LEVEL_ENTRIES,
        "{} entries at the top of src/ (at most {MOST_TOP_LEVEL_ENTRIES}): {entries:?}; put the \
         new one under the stage, action or helper folder it belongs to",
        entries.len()
    );
}

#[test]
fn src_has_no_import_cycle_between_top_level_modules() {
    let graph = graph(&src());
    assert!(graph.len() > 5, "too few modules found: {graph:?}");
    let cycles = cycles(&graph);
    assert!(
        cycles.is_empty(),
        "import cycles between top-level modules of src/: {cycles:?}\nedges: {graph:#?}"
    );
}

/// The checker itself finds a cycle where there is one, and ignores test code and comments.
#[test]
fn a_crate_with_a_cycle_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    write(
        src,
        "lib.rs",
        "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n",
    );
    write(src, "a.rs", "use crate::b::B;\n");
    write(src, "b/mod.rs", "mod inner;\n");
    write(src, "b/inner.rs", "use crate::{c::C, d};\n");
    write(src, "c.rs", "fn f() { crate::a::g() }\n");
    // Test code, tests.rs and comments name modules without making edges.
    write(src, "d.rs", "// crate::a\n#[cfg(test)]\nuse crate::a;\n");
    write(src, "b/tests.rs", "use crate::a;\n");
    let found = graph(src);
    assert_eq!(found["b"], set(&["c", "d"]));
    assert_eq!(found["d"], set(&[]));
    assert_eq!(cycles(&found), vec![set(&["a", "b", "c"])]);

    fs::write(src.join("c.rs"), "fn f() {}\n").unwrap();
    assert!(cycles(&graph(src)).is_empty());
}

/// The entries counted are the top's, but for `main.rs` and `lib.rs`.
#[test]
fn top_level_entries_are_files_and_folders_but_main_and_lib() {
    let dir = tempfile::tempdir().unwrap();
    for path in ["main.rs", "lib.rs", "a.rs", "b/mod.rs", "b/c.rs"] {
        write(dir.path(), path, "");
    }
    assert_eq!(top_level_entries(dir.path()), ["a.rs", "b"]);
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Names at the top of `src`, but for `main.rs` and `lib.rs`.
fn top_level_entries(src: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "main.rs" && n != "lib.rs")
        .collect();
    names.sort();
    names
}

/// Every top-level module with the files that make it.
fn modules(src: &Path) -> BTreeMap<String, Vec<std::path::PathBuf>> {
    let mut modules: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for name in top_level_entries(src) {
        let path = src.join(&name);
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            modules.entry(name).or_default().extend(files);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            modules.entry(stem.to_owned()).or_default().push(path);
        }
    }
    modules
}

/// The `.rs` files under `dir`, but for `tests.rs`.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

fn graph(src: &Path) -> Graph {
    let modules = modules(src);
    let mut graph = Graph::new();
    for (name, files) in &modules {
        let edges = graph.entry(name.clone()).or_default();
        for file in files {
            let text = fs::read_to_string(file).unwrap();
            for named in crate_paths(&text) {
                if modules.contains_key(&named) && &named != name {
                    edges.insert(named);
                }
            }
        }
    }
    graph
}

/// The first segment of every `crate::` path in the non-test code of `text`.
fn crate_paths(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let code: String = code
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = group.split('}').next().unwrap_or_default();
                found.extend(group.split(',').map(|p| first_segment(p.trim())));
            }
            None => found.push(first_segment(rest)),
        }
    }
    found
}

fn first_segment(path: &str) -> String {
    path.chars()
        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
        .collect()
}

/// The groups of more than one module that reach each other.
fn cycles(graph: &Graph) -> Vec<BTreeSet<String>> {
    let reach: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reachable(graph, m))).collect();
    let mut groups: Vec<BTreeSet<String>> = Vec::new();
    for (module, reached) in &reach {
        let group: BTreeSet<String> = reached
            .iter()
            .filter(|other| reach[other].contains(*module))
            .cloned()
            .collect();
        if group.len() > 1 && !groups.contains(&group) {
            groups.push(group);
        }
    }
    groups
}

/// Every module `from` reaches, itself included when it is on a cycle.
fn reachable(graph: &Graph, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&String> = graph[from].iter().collect();
    while let Some(next) = stack.pop() {
        if seen.insert(next.clone()) {
            stack.extend(graph.get(next).into_iter().flatten());
        }
    }
    seen
}
