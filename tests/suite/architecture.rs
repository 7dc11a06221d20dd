//! The module structure ARCHITECTURE.md promises, checked on the source:
//! no import cycle between top-level modules of `src/`, and the core never
//! imports a channel, the web server, the app wiring or a platform library;
//! and no source file is over [`MAX_LINES`] lines.
//!
//! Every `crate::module` path outside comments and test modules counts as
//! an import of `module` (a `use` line or a path written inline).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The edge: what the core must not import.
const EDGE: &[&str] = &["app", "channels", "web", "main", "lib"];
/// Outside libraries only the edge may use.
const EDGE_LIBRARIES: &[&str] = &["axum", "teloxide", "serenity"];

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The code of a file without comments and without its test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules `code` names after `crate::` (also inside
/// `crate::{a, b::c}` groups).
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        let name = ident(&group[i..]);
                        if !name.is_empty() && name != "self" {
                            found.insert(name.to_string());
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.insert(name.to_string());
            }
        }
    }
    found
}

/// Whether `code` uses `library` by path (`library::…`).
fn uses_library(code: &str, library: &str) -> bool {
    let needle = format!("{library}::");
    code.match_indices(&needle).any(|(at, _)| {
        !code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Imports between top-level modules, and the platform libraries each uses.
fn graph(src: &Path) -> (Graph, Graph) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut imports_of = Graph::new();
    let mut libraries_of = Graph::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let first = relative.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let code = code(&std::fs::read_to_string(&file).expect("readable file"));
        let entry = imports_of.entry(module.clone()).or_default();
        entry.extend(imports(&code).into_iter().filter(|m| *m != module));
        let libraries = libraries_of.entry(module).or_default();
        for library in EDGE_LIBRARIES {
            if uses_library(&code, library) {
                libraries.insert((*library).to_string());
            }
        }
    }
    (imports_of, libraries_of)
}

/// Every cycle's modules (strongly connected components of more than one
/// module), each sorted.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    // Kosaraju: reachability both ways.
    let reach = |from: &str, reverse: bool| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(m) = stack.pop() {
            let next: Vec<String> = if reverse {
                graph
                    .iter()
                    .filter(|(_, to)| to.contains(&m))
                    .map(|(k, _)| k.clone())
                    .collect()
            } else {
                graph.get(&m).into_iter().flatten().cloned().collect()
            };
            for n in next {
                if seen.insert(n.clone()) {
                    stack.push(n);
                }
            }
        }
        seen
    };
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for module in graph.keys() {
        let forward = reach(module, false);
        let backward = reach(module, true);
        let component: Vec<String> = forward.intersection(&backward).cloned().collect();
        if component.len() > 1 {
            found.insert(component);
        }
    }
    found.into_iter().collect()
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let (graph, _) = graph(&src());
    // The parser sees the imports (a check that finds nothing proves nothing).
    assert!(graph["channels"].contains("assistant"), "{graph:#?}");
    assert!(graph["desk"].contains("store"), "{graph:#?}");
    let cycles = cycles(&graph);
    assert!(
        cycles.is_empty(),
        "import cycles between top-level modules: {cycles:?}\n{graph:#?}"
    );
}

#[test]
fn the_core_imports_no_channel_web_server_or_platform_library() {
    let (graph, libraries) = graph(&src());
    let mut wrong = Vec::new();
    for (module, imported) in &graph {
        if EDGE.contains(&module.as_str()) {
            continue;
        }
        for edge in imported.iter().filter(|m| EDGE.contains(&m.as_str())) {
            wrong.push(format!("{module} imports crate::{edge}"));
        }
        for library in &libraries[module] {
            wrong.push(format!("{module} uses {library}"));
        }
    }
    assert!(libraries["channels"].contains("teloxide"), "{libraries:#?}");
    assert!(wrong.is_empty(), "the core reaches the edge: {wrong:#?}");
}

#[test]
fn the_checks_find_what_they_look_for() {
    let code = code(
        "use crate::store::Store;\nuse crate::{delivery::Target, config, self};\n\
         // use crate::web;\nlet x = crate::clock::system();\naxum::Router::new();\n\
         #[cfg(test)]\nmod tests { use crate::app; }",
    );
    let found = imports(&code);
    let expected: BTreeSet<String> = ["store", "delivery", "config", "clock"]
        .map(String::from)
        .into();
    assert_eq!(found, expected);
    assert!(uses_library(&code, "axum"));
    assert!(!uses_library("my_axum::x", "axum"));

    let mut graph = Graph::new();
    for (from, to) in [("store", "delivery"), ("delivery", "store"), ("a", "store")] {
        graph.entry(from.into()).or_default().insert(to.into());
    }
    assert_eq!(
        cycles(&graph),
        vec![vec!["delivery".to_string(), "store".to_string()]]
    );
    graph.get_mut("delivery").unwrap().clear();
    assert!(cycles(&graph).is_empty());
}

/// Longest source file, in lines: issue 12's "no module over ~600 lines".
const MAX_LINES: usize = 600;

#[test]
fn no_source_file_is_over_the_line_limit() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    assert!(
        files.len() > 50,
        "the walk finds the sources: {}",
        files.len()
    );
    let mut long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f)
                .expect("readable file")
                .lines()
                .count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    long.sort();
    assert!(
        long.is_empty(),
        "split these by concept (ARCHITECTURE.md's module map): {long:#?}"
    );
}
