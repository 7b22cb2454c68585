//! docs/reliability.md promises that every row of its fault tables is checked by a named test. This holds it to
//! that: each row's last column names at least one test as `module::function` (a module of this suite, or a
//! unit test as `callcast::path::tests::function`), every name resolves to a test function that exists, or the row
//! says "by hand" and gives the command in backticks.

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The file a test name lives in: `module::function` in this suite, `callcast::a::b::tests::function` in the
/// library (src/a/b.rs, src/a/b/mod.rs, or src/a/b/tests.rs when the tests module has a file of its own: the
/// first of these that defines the function, else the first that exists).
fn file_of(reference: &str) -> Option<(PathBuf, String)> {
    let mut parts: Vec<&str> = reference.split("::").collect();
    let function = parts.pop()?.to_string();
    if parts.first() == Some(&"callcast") {
        let module: Vec<&str> = parts[1..].iter().copied().filter(|p| *p != "tests").collect();
        let base = root().join("src").join(module.join("/"));
        let candidates = [base.with_extension("rs"), base.join("mod.rs"), base.join("tests.rs")];
        let file = candidates
            .iter()
            .find(|f| defines_test(f, &function))
            .or_else(|| candidates.iter().find(|f| f.exists()))?
            .clone();
        return Some((file, function));
    }
    let [module] = parts[..] else { return None };
    Some((root().join("tests/suite").join(format!("{module}.rs")), function))
}

fn defines_test(file: &Path, function: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        let signature = line.trim_start();
        let named = signature.starts_with(&format!("fn {function}("))
            || signature.starts_with(&format!("async fn {function}("));
        // The attribute sits right above (a doc comment may not separate them).
        named
            && i > 0
            && lines[..i]
                .iter()
                .rev()
                .take(3)
                .any(|l| l.contains("test]") || l.contains("test("))
    })
}

/// The backticked words of a table cell.
fn quoted(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// Each fault-table row as (line number, row text, last cell).
fn rows(text: &str) -> Vec<(usize, String, String)> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for (n, line) in text.lines().enumerate() {
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let last = cells.last().copied().unwrap_or_default();
        if last == "test" {
            in_table = true;
            continue;
        }
        if in_table && !last.starts_with("---") {
            rows.push((n + 1, line.to_string(), last.to_string()));
        }
    }
    rows
}

#[test]
fn every_row_of_reliability_md_names_a_test_that_exists() {
    let text = std::fs::read_to_string(root().join("docs/reliability.md")).expect("docs/reliability.md");
    let rows = rows(&text);
    assert!(rows.len() >= 40, "only {} rows read from the fault tables", rows.len());
    let mut problems = Vec::new();
    for (line, row, cell) in &rows {
        let names: Vec<&str> = quoted(cell).into_iter().filter(|q| q.contains("::")).collect();
        if cell.starts_with("by hand") {
            if quoted(cell).is_empty() {
                problems.push(format!(
                    "line {line}: \"by hand\" without the command in backticks: {row}"
                ));
            }
            continue;
        }
        if names.is_empty() {
            problems.push(format!("line {line}: no `module::test` named: {cell}"));
        }
        for name in names {
            match file_of(name) {
                Some((file, function)) if defines_test(&file, &function) => {}
                _ => problems.push(format!("line {line}: `{name}` is not a test function")),
            }
        }
    }
    assert!(problems.is_empty(), "docs/reliability.md:\n{}", problems.join("\n"));
}

#[test]
fn the_check_finds_a_missing_test() {
    // The resolver itself, on names that do and do not exist.
    let exists = |name: &str| file_of(name).is_some_and(|(file, function)| defines_test(&file, &function));
    assert!(exists("docs_reliability::the_check_finds_a_missing_test"));
    assert!(exists(
        "callcast::broadcast::admission::tests::admission_counts_and_budgets"
    ));
    assert!(!exists("docs_reliability::no_such_test"));
    assert!(!exists("no_such_module::the_check_finds_a_missing_test"));
    assert!(!exists("docs_reliability::root"), "a helper is not a test");
}
