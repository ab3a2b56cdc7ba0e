//! The guarantees guide (`docs/guarantees.md`) names, for each promise, the test that would fail
//! if the promise stopped being true. A renamed or moved test must fail here instead of leaving
//! a citation that leads nowhere: every source path it cites exists, and every test (or helper)
//! it names by a snake_case name of three words or more is a `fn` in the repository's Rust.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The text between backticks, in order.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn is_source_path(span: &str) -> bool {
    ["tests/", "src/", "cli/", "benches/"]
        .iter()
        .any(|p| span.starts_with(p))
        && span.ends_with(".rs")
        && !span.contains(' ')
}

/// A test or helper name: lowercase words joined by at least two underscores.
fn is_fn_name(span: &str) -> bool {
    span.matches('_').count() >= 2
        && span
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !span.starts_with('_')
        && !span.ends_with('_')
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

#[test]
fn every_test_the_guarantees_guide_cites_exists() {
    let guide = fs::read_to_string(root().join("docs/guarantees.md")).unwrap();
    let mut sources = Vec::new();
    for dir in ["src", "tests", "cli/src", "cli/tests"] {
        rust_files(&root().join(dir), &mut sources);
    }
    let sources: Vec<String> = sources
        .iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();

    let (mut paths, mut names) = (0, 0);
    let mut missing = Vec::new();
    for span in code_spans(&guide) {
        if is_source_path(span) {
            paths += 1;
            if !root().join(span).is_file() {
                missing.push(format!("file {span}"));
            }
        } else if is_fn_name(span) {
            names += 1;
            let def = format!("fn {span}(");
            if !sources.iter().any(|s| s.contains(&def)) {
                missing.push(format!("fn {span}"));
            }
        }
    }
    // The guide cites a dozen files and about twenty tests: an empty scan is a broken parser.
    assert!(paths >= 10 && names >= 15, "{paths} paths, {names} names");
    assert!(
        missing.is_empty(),
        "docs/guarantees.md cites what does not exist: {missing:#?}"
    );
}
