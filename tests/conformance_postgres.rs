//! The conformance suite (tests/conformance/) on the PostgreSQL engine, unchanged: the same
//! files, with the factory of `conformance/postgres.rs`.
//!
//! Its own test binary, because where PostgreSQL is missing (and `OSS_REQUIRE_POSTGRES` is not
//! 1) the whole binary prints `SKIPPED: ...` and exits successfully at the first fixture.

#[path = "common/mod.rs"]
mod common;
#[path = "common/pg.rs"]
mod pg;

/// The name of the `#[ignore]`d child test `name` in the suite module `module` (pass
/// `module_path!()`), as the test harness knows it: children re-run this binary by name.
pub fn child_name(module: &str, name: &str) -> String {
    let module = module.split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{name}")
}

#[path = "conformance/postgres.rs"]
mod postgres;
