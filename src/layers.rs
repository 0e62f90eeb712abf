//! The import graph of the files in `src/`, read from their text, and the
//! test that every import runs downward.
//!
//! A file imports another when its code (tests left out) names a path into
//! it: `crate::…`, `super::…`, `self::…`, or, in a file that declares child
//! modules, `child::…`. The path goes to the deepest file it reaches, so
//! `crate::push::lock::Lock` is push/lock.rs and `crate::push::Plan` is
//! push/mod.rs. Inline modules (`mod fx { … }`) count as their file.
//!
//! The rule is checked in every folder, between its entries: its files and
//! its sub-folders, each sub-folder taken as one (what is inside it imports
//! and is imported as the folder). In `src/console/`, `app.rs` may import
//! `screens/` and `screens/` `model.rs`, but nothing in `screens/` may
//! import `app.rs`. A folder's mod.rs is the folder itself, so it is no
//! entry: it declares its children (`mod child;` is no import), re-exports
//! and calls them, and its children use what it defines; that is one
//! module and its parts, as Rust's privacy treats it (a child sees its
//! parent's private items). Any other cycle between files is one between
//! two entries of some folder, and fails the test with its path.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Files (relative to `src/`, as `push/lock.rs`) and the files each imports.
pub(crate) type Graph = BTreeMap<String, BTreeSet<String>>;

/// The import graph of every file of the library under `src/` (main.rs is
/// another crate).
pub(crate) fn import_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.retain(|f| f != &src.join("main.rs"));
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap();
            (module_of(rel), rel.to_string_lossy().replace('\\', "/"))
        })
        .collect();
    let mut graph = Graph::new();
    for (module, file) in &modules {
        let text = fs::read_to_string(src.join(file)).unwrap();
        let code = without_tests(&blank_comments_and_literals(&text));
        let children = declared_children(&code);
        let mut roots = vec!["crate", "super", "self"];
        roots.extend(children.iter().map(String::as_str));
        let deps = graph.entry(file.clone()).or_default();
        for path in paths(&code, &roots) {
            let mut at = module.clone();
            let mut rest = path.as_slice();
            match rest[0].as_str() {
                "crate" => at.clear(),
                "super" => {
                    while rest.len() > 1 && rest[1] == "super" {
                        at.pop();
                        rest = &rest[1..];
                    }
                    at.pop();
                }
                "self" => {}
                child => at.push(child.to_string()),
            }
            at.extend(rest[1..].iter().filter(|s| *s != "self").cloned());
            if let Some(target) = deepest(&modules, &at)
                && target != file
            {
                deps.insert(target.clone());
            }
        }
    }
    graph
}

/// The file of the longest prefix of `path` that is a file's module.
fn deepest<'m>(modules: &'m BTreeMap<Vec<String>, String>, path: &[String]) -> Option<&'m String> {
    (0..=path.len()).rev().find_map(|n| modules.get(&path[..n]))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `push::lock` for push/lock.rs, `push` for push/mod.rs, the root for lib.rs.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The text with comments, string and character literals replaced by
/// spaces (doc links and messages name paths that are not imports).
fn blank_comments_and_literals(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[char]| {
        out.extend(s.iter().map(|c| if *c == '\n' { '\n' } else { ' ' }));
    };
    while i < b.len() {
        let start = i;
        if b[i] == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if b[i] == '/' && b.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == 'r'
            && (i == 0 || !is_ident(b[i - 1]))
            && matches!(b.get(i + 1), Some('"' | '#'))
            && raw_string_end(&b, i + 1).is_some()
        {
            i = raw_string_end(&b, i + 1).unwrap();
        } else if b[i] == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if b[i] == '\'' && b.get(i + 1) == Some(&'\\') {
            i += 2;
            while i < b.len() && b[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if b[i] == '\'' && b.get(i + 2) == Some(&'\'') {
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let end = i.min(b.len());
        blank(&mut out, &b[start..end]);
        i = end;
    }
    out
}

/// Past the end of a raw string whose `#`s or quote start at `at`.
fn raw_string_end(b: &[char], at: usize) -> Option<usize> {
    let hashes = b[at..].iter().take_while(|c| **c == '#').count();
    if b.get(at + hashes) != Some(&'"') {
        return None;
    }
    let mut i = at + hashes + 1;
    while i < b.len() {
        if b[i] == '"'
            && b[i + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes
        {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    Some(b.len())
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The code without the items marked `#[cfg(test)]` (comments blanked).
fn without_tests(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        rest = &rest[at + MARK.len()..];
        // The item ends at its first `;` outside braces, or with the braces
        // it opens.
        let mut depth = 0usize;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The modules a file declares with `mod name;`.
fn declared_children(code: &str) -> Vec<String> {
    let words: Vec<&str> = code
        .split(|c: char| !is_ident(c) && c != ';')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .filter(|w| w[0] == "mod" && w[1].ends_with(';'))
        .map(|w| w[1].trim_end_matches(';').to_string())
        .collect()
}

/// Every path that starts with one of `roots` followed by `::`, with use
/// groups (`a::{b, c::{d, self}}`) expanded: `[root, seg, …]`.
fn paths(code: &str, roots: &[&str]) -> Vec<Vec<String>> {
    let b: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_ident(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        let word: String = b[start..i].iter().collect();
        let before = start.checked_sub(1).map(|p| b[p]);
        // `x::word` continues another path; `$crate` is a macro's.
        if matches!(before, Some(':' | '$' | '.')) || !roots.contains(&word.as_str()) {
            continue;
        }
        let mut j = skip_space(&b, i);
        if !(b.get(j) == Some(&':') && b.get(j + 1) == Some(&':')) {
            continue;
        }
        j += 2;
        let mut tails = Vec::new();
        i = tree(&b, j, &mut Vec::new(), &mut tails);
        for tail in tails {
            let mut path = vec![word.clone()];
            path.extend(tail);
            found.push(path);
        }
    }
    found
}

fn skip_space(b: &[char], mut i: usize) -> usize {
    while i < b.len() && b[i].is_whitespace() {
        i += 1;
    }
    i
}

/// Reads a use tree at `i` (after a `::`), pushing each full path below
/// `prefix` into `out`; returns where it ends.
fn tree(b: &[char], i: usize, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut i = skip_space(b, i);
    let depth = prefix.len();
    loop {
        if b.get(i) == Some(&'{') {
            i += 1;
            loop {
                i = skip_space(b, i);
                match b.get(i) {
                    Some('}') => {
                        i += 1;
                        break;
                    }
                    Some(',') => i += 1,
                    None => break,
                    _ => {
                        let before = i;
                        i = tree(b, i, prefix, out);
                        if i == before {
                            i += 1;
                        }
                    }
                }
            }
            prefix.truncate(depth);
            return i;
        }
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        if start == i {
            // `*` or the end of the path.
            out.push(prefix.clone());
            prefix.truncate(depth);
            return i.max(start + usize::from(b.get(i) == Some(&'*')));
        }
        prefix.push(b[start..i].iter().collect());
        let j = skip_space(b, i);
        if b.get(j) == Some(&':') && b.get(j + 1) == Some(&':') {
            i = skip_space(b, j + 2);
            continue;
        }
        out.push(prefix.clone());
        prefix.truncate(depth);
        return i;
    }
}

/// The first cycle met, as the files along it (the first one repeated at
/// the end), or `None` when every import runs downward.
pub(crate) fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if done.contains(node) {
            return None;
        }
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        path.push(node.to_string());
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(dep, graph, path, done) {
                return Some(cycle);
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

/// The graph between the entries of `folder` (as `push/`, or `` for
/// `src/` itself): its files, and its sub-folders each taken as one
/// (`config/wif/elements.rs` is `wif/` in `config/`). The folder's own
/// mod.rs (lib.rs) is the folder itself, so it is left out.
pub(crate) fn entries_of(graph: &Graph, folder: &str) -> Graph {
    let entry = |file: &str| -> Option<String> {
        let rel = file.strip_prefix(folder)?;
        match rel.split_once('/') {
            Some((sub, _)) => Some(format!("{sub}/")),
            None => (rel != "mod.rs" && rel != "lib.rs").then(|| rel.to_string()),
        }
    };
    let mut out = Graph::new();
    for (file, deps) in graph {
        let Some(from) = entry(file) else { continue };
        let edges = out.entry(from.clone()).or_default();
        edges.extend(
            deps.iter()
                .filter_map(|d| entry(d))
                .filter(|to| *to != from),
        );
    }
    out
}

/// Every folder of the graph's files, `` (`src/`) first.
pub(crate) fn folders(graph: &Graph) -> BTreeSet<String> {
    let mut out = BTreeSet::from([String::new()]);
    for file in graph.keys() {
        let mut at = 0;
        while let Some(i) = file[at..].find('/') {
            at += i + 1;
            out.insert(file[..at].to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_of(edges: &[(&str, &str)]) -> Graph {
        let mut graph = Graph::new();
        for (from, to) in edges {
            graph
                .entry(from.to_string())
                .or_default()
                .insert(to.to_string());
        }
        graph
    }

    /// One meaning per type name: two types of one name in `src/` (even
    /// private ones) are two things a reader must tell apart.
    #[test]
    fn every_type_name_is_defined_once() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut twice = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = blank_comments_and_literals(&text);
            for line in code.lines() {
                let words: Vec<&str> = line
                    .split(|c: char| !is_ident(c))
                    .filter(|w| !w.is_empty())
                    .collect();
                // `pub(crate) enum X`, `struct X<'a>`, `trait X`; not an
                // associated `type Target = ...` inside an impl.
                let Some(at) = words
                    .iter()
                    .position(|w| matches!(*w, "enum" | "struct" | "trait"))
                else {
                    continue;
                };
                if !words[..at]
                    .iter()
                    .all(|w| matches!(*w, "pub" | "crate" | "super"))
                {
                    continue;
                }
                let Some(name) = words.get(at + 1) else {
                    continue;
                };
                let here = file.strip_prefix(&root).unwrap().display().to_string();
                if let Some(first) = seen.insert(name.to_string(), here.clone()) {
                    twice.push(format!("{name}: {first} and {here}"));
                }
            }
        }
        assert!(twice.is_empty(), "type names defined twice: {twice:#?}");
    }

    #[test]
    fn every_import_runs_downward() {
        let graph = import_graph();
        for folder in folders(&graph) {
            if let Some(cycle) = find_cycle(&entries_of(&graph, &folder)) {
                panic!("import cycle in src/{folder}: {}", cycle.join(" -> "));
            }
        }
    }

    #[test]
    fn a_folder_is_one_entry_of_the_folder_above() {
        let graph = graph_of(&[
            ("console/app.rs", "console/screens/mod.rs"),
            ("console/screens/log.rs", "console/app.rs"),
            ("console/screens/log.rs", "console/screens/mod.rs"),
            ("console/screens/mod.rs", "console/screens/log.rs"),
        ]);
        assert_eq!(
            folders(&graph),
            BTreeSet::from(["".into(), "console/".into(), "console/screens/".into()])
        );
        let console = entries_of(&graph, "console/");
        assert_eq!(
            find_cycle(&console).unwrap().join(" -> "),
            "app.rs -> screens/ -> app.rs"
        );
        // A mod.rs and its children are one module.
        assert_eq!(find_cycle(&entries_of(&graph, "console/screens/")), None);
    }

    #[test]
    fn the_graph_holds_the_real_imports() {
        // The check above passes on an empty graph: make sure it reads real
        // edges of each kind.
        let graph = import_graph();
        let has = |from: &str, to: &str| graph[from].contains(to);
        // `use crate::…` and a group.
        assert!(has("push/apply.rs", "transport/mod.rs"), "{graph:#?}");
        // `super::sibling::…`
        assert!(
            has("config/effective.rs", "config/wif/mod.rs"),
            "{graph:#?}"
        );
        // `pub use child::…` in a mod.rs.
        assert!(has("push/mod.rs", "push/plan.rs"), "{graph:#?}");
        // `mod child;` alone is not an import, and tests are left out
        // (retry's tests run on a local folder, its code on any transport).
        assert!(!has("lib.rs", "console/mod.rs"), "{graph:#?}");
        assert!(has("push/retry.rs", "transport/mod.rs"), "{graph:#?}");
        assert!(!has("push/retry.rs", "transport/local.rs"), "{graph:#?}");
    }

    #[test]
    fn a_cycle_is_named() {
        let graph = graph_of(&[
            ("a.rs", "b.rs"),
            ("b.rs", "c.rs"),
            ("c.rs", "a.rs"),
            ("d.rs", "a.rs"),
        ]);
        assert_eq!(
            find_cycle(&graph).unwrap().join(" -> "),
            "a.rs -> b.rs -> c.rs -> a.rs"
        );
        let mut acyclic = graph.clone();
        acyclic.get_mut("c.rs").unwrap().clear();
        assert_eq!(find_cycle(&acyclic), None);
    }

    #[test]
    fn paths_read_use_trees_and_leave_comments_and_strings_alone() {
        let code = blank_comments_and_literals(
            "use crate::{a::B, c::{self, d::E}};\n\
             // crate::f::G\n\
             let s = \"crate::h::I\"; let c = '\"'; let r = r#\"super::j\"#;\n\
             fn x<'a>() { super::super::k::L::new(); child::M; other::child::N }\n\
             #[cfg(test)]\nmod tests { use crate::t::U; }\n",
        );
        let code = without_tests(&code);
        let got: Vec<String> = paths(&code, &["crate", "super", "self", "child"])
            .into_iter()
            .map(|p| p.join("::"))
            .collect();
        assert_eq!(
            got,
            [
                "crate::a::B",
                "crate::c::self",
                "crate::c::d::E",
                "super::super::k::L::new",
                "child::M"
            ]
        );
    }
}
