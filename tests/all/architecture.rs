//! `ARCHITECTURE.md` stays true: every path it names exists, every source file is on its map,
//! and the imports follow its layers. Also the house rules of `src/`: a one-line job at the top
//! of each file, and no file over 450 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 450;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn architecture() -> String {
    fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md at the root")
}

/// Every `.rs` file under `src/`, as a path relative to the root (`src/cache/mod.rs`).
fn source_files() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("src"), &mut files);
    let mut names: Vec<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    names.sort();
    names
}

/// The paths `ARCHITECTURE.md` names in backticks: `src/…`.
fn named_paths(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|quoted| quoted.starts_with("src/"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_path_the_map_names_exists() {
    for path in named_paths(&architecture()) {
        assert!(
            root().join(&path).exists(),
            "ARCHITECTURE.md names {path}, which does not exist: update the map"
        );
    }
}

#[test]
fn every_file_and_folder_is_on_the_map() {
    let named = named_paths(&architecture());
    for file in source_files() {
        assert!(
            named.contains(&file),
            "{file} is not on ARCHITECTURE.md's map"
        );
        let mut folder = Path::new(&file).parent();
        while let Some(dir) = folder.filter(|d| *d != Path::new("src")) {
            let dir_name = format!("{}/", dir.to_string_lossy());
            assert!(
                named.contains(&dir_name),
                "{dir_name} is not on ARCHITECTURE.md's map"
            );
            folder = dir.parent();
        }
    }
}

#[test]
fn each_file_opens_with_one_line_on_its_job_and_stays_small() {
    for file in source_files() {
        let text = fs::read_to_string(root().join(&file)).unwrap();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        assert!(
            first.starts_with("//! ") && first.len() > 10,
            "{file} does not open with a `//!` line on its job"
        );
        let second = lines.next().unwrap_or_default();
        assert!(
            second == "//!" || !second.starts_with("//!"),
            "{file}: its job should fit on the first line, details after a blank `//!`"
        );
        let count = text.lines().count();
        assert!(
            count <= MAX_LINES,
            "{file} has {count} lines, over {MAX_LINES}"
        );
    }
}

/// The module path of a source file: `src/cache/mod.rs` → `cache`, `src/cache/obtain.rs` →
/// `cache::obtain`.
fn module_of(file: &str) -> Vec<String> {
    let inner = file
        .strip_prefix("src/")
        .unwrap()
        .strip_suffix(".rs")
        .unwrap();
    let mut parts: Vec<String> = inner.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The code of a file that counts for its imports: no comments, no re-exports, no unit tests.
fn code_lines(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let tests_follow = lines
            .get(i + 1)
            .is_some_and(|next| next.trim_start().starts_with("mod tests"));
        if trimmed == "#[cfg(test)]" && tests_follow {
            break;
        }
        if trimmed.starts_with("//")
            || trimmed.starts_with("pub use")
            || trimmed.starts_with("pub(crate) use")
        {
            continue;
        }
        kept.push(*line);
    }
    kept
}

/// The module paths a line refers to (`crate::a::b::Item`, `super::Item`), as written.
fn referenced_paths(line: &str, own: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for (start, _) in line.match_indices("crate::") {
        if line[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `reqwest_middleware::…`, not our crate
        }
        found.push(segments(&line[start + "crate::".len()..], Vec::new()));
    }
    for (start, _) in line.match_indices("super::") {
        if line[..start].ends_with("::") {
            continue;
        }
        // The parent of the file's module (a mod.rs file is its folder's module).
        let base = own[..own.len().saturating_sub(1)].to_vec();
        found.push(segments(&line[start + "super::".len()..], base));
    }
    found
}

/// `base` followed by the lowercase path segments at the start of `rest`.
fn segments(rest: &str, mut base: Vec<String>) -> Vec<String> {
    for part in rest.split("::") {
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            break;
        }
        base.push(name);
    }
    base
}

/// The longest prefix of `path` that is a module with a file of its own.
fn resolve(path: &[String], modules: &BTreeMap<Vec<String>, String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]).cloned())
}

/// Which file imports which, among the crate's own files.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let files: Vec<String> = source_files()
        .into_iter()
        .filter(|f| f != "src/lib.rs")
        .collect();
    let modules: BTreeMap<Vec<String>, String> =
        files.iter().map(|f| (module_of(f), f.clone())).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let text = fs::read_to_string(root().join(file)).unwrap();
        let own = module_of(file);
        let targets: BTreeSet<String> = code_lines(&text)
            .iter()
            .flat_map(|line| referenced_paths(line, &own))
            .filter_map(|path| resolve(&path, &modules))
            .filter(|target| target != file)
            .collect();
        graph.insert(file.clone(), targets);
    }
    graph
}

#[test]
fn no_two_files_import_each_other() {
    let graph = imports();
    assert!(
        graph["src/cache/obtain.rs"].contains("src/cache/mod.rs"),
        "the import reader found nothing: {graph:?}"
    );
    for (file, targets) in &graph {
        for target in targets {
            assert!(
                !graph[target].contains(file),
                "{file} and {target} import each other"
            );
        }
    }
}

/// The layers of `ARCHITECTURE.md`'s "Layers:" line: each top-level module's step, from 0 at
/// the top.
fn layers() -> BTreeMap<String, usize> {
    let text = architecture();
    let line = text
        .lines()
        .find(|l| l.starts_with("Layers:"))
        .expect("ARCHITECTURE.md has a `Layers:` line");
    let mut steps = BTreeMap::new();
    for (depth, step) in line["Layers:".len()..].split('→').enumerate() {
        for name in step.split('|') {
            steps.insert(name.trim().trim_matches('`').to_owned(), depth);
        }
    }
    steps
}

#[test]
fn imports_point_down_the_layers() {
    let steps = layers();
    let top = |file: &str| module_of(file)[0].clone();
    for file in source_files().iter().filter(|f| *f != "src/lib.rs") {
        assert!(
            steps.contains_key(&top(file)),
            "{file} belongs to no layer of ARCHITECTURE.md"
        );
    }
    for (file, targets) in imports() {
        for target in targets {
            let (from, to) = (top(&file), top(&target));
            assert!(
                from == to || steps[&from] < steps[&to],
                "{file} imports {target}: `{from}` may not import `{to}` (ARCHITECTURE.md, Layers)"
            );
        }
    }
}
