//! The shape of `runner/src`, checked on every test run:
//!
//! - no import cycle: between the top-level modules (a folder counts as one
//!   module), and between the modules inside each folder (a module may use
//!   its ancestors' items, `super::`, without that counting as a cycle);
//! - no file longer than `MAX_LINES` unless its first lines say why;
//! - `lib.rs`'s module map and `docs/architecture.md`'s name every module
//!   of the library and the binary, and nothing that does not exist.
//!
//! It reads the sources (`mod` declarations from `lib.rs` and `main.rs`, and
//! every `crate::`, `super::` and `self::` path, `use` groups included), so
//! `cargo test -p graft --lib layout` is the command that checks it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

/// A file longer than `MAX_LINES` says why within its first lines with this.
const LONG_FILE_REASON: &str = "Long file:";

struct Module {
    /// `storage::sqlite`, relative to its crate's root ("" for the root).
    path: String,
    file: PathBuf,
    text: String,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module of the crate rooted at `root`, found by its `mod` lines.
fn modules(root: &str) -> Vec<Module> {
    let mut found = Vec::new();
    let mut todo = vec![(String::new(), src().join(root), src())];
    while let Some((path, file, dir)) = todo.pop() {
        let text = std::fs::read_to_string(&file).unwrap();
        for name in declared_modules(&text) {
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}::{name}")
            };
            let flat = dir.join(format!("{name}.rs"));
            let (child_file, child_dir) = if flat.exists() {
                (flat, dir.join(&name))
            } else {
                (dir.join(&name).join("mod.rs"), dir.join(&name))
            };
            todo.push((child, child_file, child_dir));
        }
        found.push(Module { path, file, text });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// `mod x;` and `pub(crate) mod x;` lines (not inline `mod x { .. }`).
fn declared_modules(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_suffix(';')?;
            let name = rest.rsplit_once("mod ")?.1;
            let before = &rest[..rest.len() - name.len() - 4];
            let before = before.trim();
            let allowed =
                before.is_empty() || before.starts_with("pub") || before.starts_with("#[cfg");
            (allowed && name.chars().all(|c| c.is_alphanumeric() || c == '_'))
                .then(|| name.to_string())
        })
        .collect()
}

/// Every path a module names: `crate::a::b`, `super::x` (resolved), and
/// each branch of a `use crate::{a, b::{c, d}}` group, as module paths.
fn named_paths(module: &Module) -> Vec<String> {
    let text = strip_comments(&module.text);
    let bytes = text.as_bytes();
    let mut paths = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            let boundary = at == 0 || {
                let c = bytes[at - 1] as char;
                !(c.is_alphanumeric() || c == '_' || c == ':')
            };
            if !boundary {
                continue;
            }
            let base = match start {
                "crate::" => Vec::new(),
                "self::" => segments(&module.path),
                _ => {
                    // `super::super::x`
                    let mut base = segments(&module.path);
                    let mut rest = &text[at..];
                    while let Some(r) = rest.strip_prefix("super::") {
                        base.pop();
                        rest = r;
                    }
                    from = text.len() - rest.len();
                    for expanded in expand(rest) {
                        paths.push(join(&base, &expanded));
                    }
                    continue;
                }
            };
            for expanded in expand(&text[from..]) {
                paths.push(join(&base, &expanded));
            }
        }
    }
    paths
}

fn segments(path: &str) -> Vec<String> {
    if path.is_empty() {
        Vec::new()
    } else {
        path.split("::").map(str::to_string).collect()
    }
}

fn join(base: &[String], rest: &[String]) -> String {
    base.iter()
        .chain(rest)
        .cloned()
        .collect::<Vec<_>>()
        .join("::")
}

/// The paths spelled at the start of `text`: `a::b::c` or `a::{b, c::d}`.
fn expand(text: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut rest = text;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut items = Vec::new();
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        items.push(&group[item_start..i]);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(&group[item_start..i]);
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
            return items
                .into_iter()
                .flat_map(|item| {
                    let item = item.trim();
                    expand(item).into_iter().map({
                        let prefix = prefix.clone();
                        move |tail| prefix.iter().cloned().chain(tail).collect()
                    })
                })
                .collect();
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            return vec![prefix];
        }
        prefix.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(next) => rest = next,
            None => return vec![prefix],
        }
    }
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module a path lands in: its longest prefix that is a module.
fn owner<'a>(path: &str, known: &'a BTreeSet<String>) -> Option<&'a String> {
    let mut parts = segments(path);
    while !parts.is_empty() {
        if let Some(found) = known.get(&parts.join("::")) {
            return Some(found);
        }
        parts.pop();
    }
    None
}

/// Test-only modules (`tests`, `*_tests`, `fuzz`, `test_support`) may use
/// anything and nothing uses them: they are no layer.
fn is_test_only(path: &str) -> bool {
    path.split("::").any(|part| {
        part == "tests" || part.ends_with("_tests") || part == "fuzz" || part == "test_support"
    })
}

/// Module-to-module uses of one crate, test-only modules left out.
fn edges(modules: &[Module]) -> BTreeSet<(String, String)> {
    let known: BTreeSet<String> = modules.iter().map(|m| m.path.clone()).collect();
    let mut edges = BTreeSet::new();
    for module in modules.iter().filter(|m| !is_test_only(&m.path)) {
        for path in named_paths(module) {
            if let Some(to) = owner(&path, &known) {
                if *to != module.path && !is_test_only(to) {
                    edges.insert((module.path.clone(), to.clone()));
                }
            }
        }
    }
    edges
}

fn is_ancestor(ancestor: &str, of: &str) -> bool {
    ancestor.is_empty() || of.starts_with(&format!("{ancestor}::"))
}

/// A cycle in the graph, if any, as the modules on it.
fn find_cycle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges {
        next.entry(from).or_default().push(to);
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let at = stack.iter().position(|n| *n == node).unwrap();
                let mut cycle: Vec<String> = stack[at..].iter().map(|n| n.to_string()).collect();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node, Mark::Open);
        stack.push(node);
        for to in next.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(to, next, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in next.keys() {
        if let Some(cycle) = visit(node, &next, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

fn top(path: &str) -> String {
    path.split("::").next().unwrap_or("").to_string()
}

fn cycles_of(root: &str) -> Vec<String> {
    let modules = modules(root);
    let all = edges(&modules);
    let mut problems = Vec::new();
    // Between top-level modules, a folder being one.
    let top_level: BTreeSet<(String, String)> = all
        .iter()
        .map(|(from, to)| (top(from), top(to)))
        .filter(|(from, to)| from != to && !from.is_empty() && !to.is_empty())
        .collect();
    if let Some(cycle) = find_cycle(&top_level) {
        problems.push(format!("{root}: top-level cycle {}", cycle.join(" -> ")));
    }
    // Inside each folder, uses of an ancestor's items do not count.
    let inner: BTreeSet<(String, String)> = all
        .iter()
        .filter(|(from, to)| top(from) == top(to) && !is_ancestor(to, from))
        .cloned()
        .collect();
    if let Some(cycle) = find_cycle(&inner) {
        problems.push(format!("{root}: cycle {}", cycle.join(" -> ")));
    }
    problems
}

#[test]
fn layout_no_import_cycle() {
    let problems: Vec<String> = ["lib.rs", "main.rs"]
        .into_iter()
        .flat_map(cycles_of)
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn layout_no_long_file_without_a_reason() {
    let mut long = Vec::new();
    for root in ["lib.rs", "main.rs"] {
        for module in modules(root) {
            let lines = module.text.lines().count();
            let says_why = module
                .text
                .lines()
                .take(30)
                .any(|l| l.contains(LONG_FILE_REASON));
            if lines > MAX_LINES && !says_why {
                long.push(format!("{} ({lines} lines)", module.file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines without a `{LONG_FILE_REASON}` note at the top:\n{}",
        long.join("\n")
    );
}

/// The modules a map names: `` [`a::b`] `` or `` `a::b` `` at the start of
/// a list item.
fn mapped(text: &str, marker: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let item = line.trim_start().strip_prefix(marker)?.trim_start();
            let item = item.strip_prefix("- ").unwrap_or(item);
            let item = item.strip_prefix('[').unwrap_or(item);
            let name = item.strip_prefix('`')?.split('`').next()?;
            Some(name.to_string())
        })
        .collect()
}

#[test]
fn layout_module_maps_match_the_tree() {
    let lib: BTreeSet<String> = modules("lib.rs")
        .into_iter()
        .map(|m| m.path)
        .filter(|p| !p.is_empty() && (!is_test_only(p) || p == "test_support"))
        .collect();
    let bin: BTreeSet<String> = modules("main.rs")
        .into_iter()
        .map(|m| m.path)
        .filter(|p| !p.is_empty() && !is_test_only(p))
        .collect();
    let lib_rs = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let in_lib_map = mapped(&lib_rs, "//! -");
    assert_eq!(
        in_lib_map, lib,
        "lib.rs's module map (`//! - [`name`]: ...` lines) differs from the modules of the library"
    );
    // The map lists the top-level modules bottom layer first: each uses
    // only those before it.
    let order: Vec<String> = lib_rs
        .lines()
        .filter_map(|line| {
            let name = line.strip_prefix("//! - `")?.split('`').next()?;
            (!name.contains("::")).then(|| name.to_string())
        })
        .collect();
    let position = |name: &str| order.iter().position(|n| n == name);
    let mut upward = Vec::new();
    for (from, to) in edges(&modules("lib.rs")) {
        let (from, to) = (top(&from), top(&to));
        if let (Some(f), Some(t)) = (position(&from), position(&to)) {
            if t > f {
                upward.push(format!("{from} uses {to}, listed after it"));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "lib.rs's module map is not in layer order:\n{}",
        upward.join("\n")
    );
    let doc = std::fs::read_to_string(src().join("../../docs/architecture.md")).unwrap();
    let map = doc
        .split("## Module map")
        .nth(1)
        .expect("docs/architecture.md has a `## Module map` section")
        .split("\n## ")
        .next()
        .unwrap();
    let in_doc: BTreeSet<String> = mapped(map, "-");
    let expected: BTreeSet<String> = lib
        .iter()
        .cloned()
        .chain(bin.iter().map(|m| format!("bin::{m}")))
        .collect();
    assert_eq!(
        in_doc, expected,
        "docs/architecture.md's module map differs from the tree (the binary's modules as `bin::name`)"
    );
}
