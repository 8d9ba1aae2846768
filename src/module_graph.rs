//! The layout rules, checked on the source text: the modules import each other without loops
//! (between top-level modules, and between the files of one directory module), and only the
//! modules that compose the whole agent import `crate::config`; collectors, the endpoint, push
//! and remote write get their own settings type, never the whole config.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules allowed to name `crate::config`: the config itself and what starts the agent.
const COMPOSERS: [&str; 4] = ["config", "lib", "cli", "main"];

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module names that follow each `prefix` in `text` (`crate::` -> `config`, `push`...).
fn names_after<'t>(text: &'t str, prefix: &str) -> Vec<&'t str> {
    text.match_indices(prefix)
        .map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// Module -> the modules it names, for one level of the tree.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// A loop in `graph`, as the path around it, if there is one.
fn find_loop(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn modules_import_each_other_without_loops_and_only_composers_import_the_config() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut top = Graph::new();
    // Directory module (`pi`, `collector`...) -> graph of its files.
    let mut inner: BTreeMap<String, Graph> = BTreeMap::new();
    let mut config_users = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let parts: Vec<String> = relative
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        let module = parts[0].clone();
        if module == "module_graph" {
            continue; // this file names modules in its text
        }
        let text = std::fs::read_to_string(file).unwrap();
        for name in names_after(&text, "crate::") {
            if name != module {
                top.entry(module.clone())
                    .or_default()
                    .insert(name.to_string());
            }
            if name == "config" && !COMPOSERS.contains(&module.as_str()) {
                config_users.push(relative.display().to_string());
            }
        }
        // Files directly in a directory module: `super::sibling` and `crate::dir::sibling`.
        if parts.len() == 2 && parts[1] != "mod" {
            let siblings = inner.entry(module.clone()).or_default();
            let own = siblings.entry(parts[1].clone()).or_default();
            let qualified = format!("crate::{module}::");
            let mut names = names_after(&text, "super::");
            names.extend(names_after(&text, &qualified));
            for name in names {
                let sibling = src.join(&module).join(format!("{name}.rs")).exists()
                    || src.join(&module).join(name).is_dir();
                if name != parts[1] && sibling {
                    own.insert(name.to_string());
                }
            }
        }
    }
    assert!(
        config_users.is_empty(),
        "only {COMPOSERS:?} may import crate::config; also: {config_users:?}"
    );
    assert_eq!(find_loop(&top), None, "top-level modules: {top:#?}");
    for (module, graph) in &inner {
        assert_eq!(find_loop(graph), None, "files of {module}/: {graph:#?}");
    }
    // The check sees real edges (a renamed directory would make it pass vacuously).
    assert!(top["push"].contains("agent"), "{top:#?}");
    assert!(inner["pi"]["firmware"].contains("mailbox"), "{inner:#?}");
}

#[test]
fn a_loop_is_found() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_string(), BTreeSet::from([to.to_string()])))
        .collect();
    let found = find_loop(&graph).unwrap();
    assert_eq!(found.first(), found.last());
    assert_eq!(found.len(), 4);
}
