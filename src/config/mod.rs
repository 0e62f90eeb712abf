//! The configuration domain: parsing IIS and ASP.NET configuration files,
//! discovering applications, computing effective values, editing files.
//! Nothing here knows about terminals or SSH.
//!
//! The modules build on each other in this order, and a module imports only
//! from those before it:
//! `xml` → `problem` (what ASP.NET refuses, as values, worded once) →
//! `record` (files, locations, values with their source, whole-file
//! refusals) → `section` (sections and `configSource`) → `locks` →
//! `machine_key` (the runtime's `<machineKey>` rules) → `wif` (`elements`,
//! then the verdict on the chain) → `effective` (the merge) → `editor`.
//! `apphost` and `import` stand apart, on `xml` alone.

pub mod apphost;
pub mod editor;
pub mod effective;
pub mod import;
pub mod locks;
pub mod machine_key;
pub mod problem;
pub mod record;
pub mod section;
pub mod wif;
pub mod xml;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fs;
    use std::path::Path;

    /// The modules of `src/config` each module's code (tests left out)
    /// names, through `super::`, `super::super::` or `crate::config::`.
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
        let mut files = Vec::new();
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                for inner in fs::read_dir(&path).unwrap() {
                    files.push(inner.unwrap().path());
                }
            } else if path.file_name().unwrap() != "mod.rs" {
                files.push(path);
            }
        }
        let module_of = |p: &Path| -> String {
            let rel = p.strip_prefix(&dir).unwrap();
            let first = rel.components().next().unwrap().as_os_str();
            first.to_string_lossy().trim_end_matches(".rs").to_string()
        };
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let module = module_of(&file);
            let nested = file.parent() != Some(dir.as_path());
            let text = fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let prefixes: &[&str] = if nested {
                &["super::super::", "crate::config::"]
            } else {
                &["super::", "crate::config::"]
            };
            let deps = graph.entry(module.clone()).or_default();
            for prefix in prefixes {
                for (at, _) in code.match_indices(prefix) {
                    let rest = &code[at + prefix.len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module && name != "super" {
                        deps.insert(name);
                    }
                }
            }
        }
        graph
    }

    #[test]
    fn config_modules_import_without_a_cycle() {
        let graph = imports();
        assert!(graph.contains_key("effective") && graph.contains_key("wif"));
        // Depth-first search; a module met again on the current path is a cycle.
        fn visit(
            m: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) {
            if done.contains(m) {
                return;
            }
            if let Some(at) = path.iter().position(|p| p == m) {
                panic!(
                    "import cycle in src/config: {} -> {m}",
                    path[at..].join(" -> ")
                );
            }
            path.push(m.to_string());
            for dep in graph.get(m).into_iter().flatten() {
                visit(dep, graph, path, done);
            }
            path.pop();
            done.insert(m.to_string());
        }
        let mut done = BTreeSet::new();
        for m in graph.keys() {
            visit(m, &graph, &mut Vec::new(), &mut done);
        }
    }

    #[test]
    fn the_cycle_check_sees_a_cycle() {
        // The check above would pass on an empty graph: make sure it reads
        // real edges (effective merges what wif and machine_key decide).
        let graph = imports();
        assert!(graph["effective"].contains("wif"), "{graph:?}");
        assert!(graph["effective"].contains("machine_key"), "{graph:?}");
        assert!(!graph["xml"].contains("effective"), "{graph:?}");
    }
}
