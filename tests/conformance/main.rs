//! The conformance suite: the flow, model, history and rmcp-contract tests, written once over
//! an engine's [`Fixture`](sqlite::Fixture) and run by every engine unchanged.
//!
//! Each engine is a module (`sqlite.rs`) that names its fixture `Fixture` and includes the
//! suite's files with `#[path]`. A second engine adds a file like `sqlite.rs` with its own
//! fixture: the same API
//! (`new`, `options`, `store`, `open`, `target`, `open_target`, `scratch`, the `clock` field)
//! over its own kind of database. Engine-specific tests (file modes, WAL bytes, a writer's
//! crash, faults) live in their own test files, not here.

#[path = "../common/mod.rs"]
mod common;

/// The name of the `#[ignore]`d child test `name` in the suite module `module` (pass
/// `module_path!()`), as the test harness knows it: children re-run this binary by name.
pub fn child_name(module: &str, name: &str) -> String {
    let module = module.split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{name}")
}

/// The embedded engine: a file in a private temporary directory.
mod sqlite;
