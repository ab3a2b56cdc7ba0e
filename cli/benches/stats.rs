//! What `oauth-state-store stats` costs: a fresh process that opens a store only to look,
//! counts its flows and exits, on a small file and on a large one. Prints a markdown table
//! (BENCHMARKS.md, "Opening").
//!
//! ```text
//! cargo bench -p oauth-state-store-cli --bench stats -- [--quick]
//! ```
//!
//! `--quick` runs tiny sizes (CI runs it so that this file cannot rot). The files are written
//! with the benches' shared fixtures (`benches/common` at the workspace's root) and live in
//! temp dirs that are removed at the end.
#![allow(missing_docs)] // a bench binary, not an API

#[path = "../../benches/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{populate, summary, temp_db};

/// Runs `oauth-state-store stats` on `db` `runs` times; each run's wall time, microseconds.
fn stats(db: &Path, runs: usize) -> Vec<u64> {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            let status = Command::new(env!("CARGO_BIN_EXE_oauth-state-store"))
                .arg("--db")
                .arg(db)
                .arg("stats")
                .env_remove("OAUTH_STATE_DB")
                .stdout(Stdio::null())
                .status()
                .expect("run oauth-state-store");
            assert!(status.success());
            t.elapsed().as_micros() as u64
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; ignore it.
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    let (runs, small, large) = if quick {
        (5, 20, 2_000)
    } else {
        (50, 200, 100_000)
    };
    println!(
        "\n### `oauth-state-store stats`: spawn, open to look, count, exit ({runs} runs each)\n"
    );
    println!("| what | p50 ms | max ms |");
    println!("|---|---:|---:|");
    let row = |what: String, us: Vec<u64>| {
        let (p50, _, max) = summary(us);
        println!("| {what} | {p50:.3} | {max:.2} |");
    };
    // A small file: every flow pending. A large one: half of them expired.
    let (_small_dir, small_db) = temp_db();
    populate(&small_db, 0, small);
    row(
        format!("`oauth-state-store stats`, {small} flows"),
        stats(&small_db, runs),
    );
    let (_large_dir, large_db) = temp_db();
    populate(&large_db, large / 2, large / 2);
    row(
        format!("`oauth-state-store stats`, {large} flows"),
        stats(&large_db, runs),
    );
}
