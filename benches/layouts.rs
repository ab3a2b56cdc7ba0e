//! What each index of the layout costs a flow: the store's own statements, run by
//! raw rusqlite (the same-statements floor of `common::Floor`), over `schema.sql`'s table with
//! other sets of indexes, each against the minimal floor (`common/minimal.rs`), interleaved in
//! one run like `benches/floor.rs`. The variants that drop a guarantee are there to price it,
//! not as proposals.
//!
//! ```text
//! cargo bench --bench layouts                # 30 rounds of 200 flows, Normal, empty files
//! cargo bench --bench layouts -- --quick     # 3 rounds of 20
//! ```
#![allow(missing_docs)] // a bench binary, not an API

mod common;

use std::time::Instant;

use common::minimal::Minimal;
use common::{median, temp_db, Floor, SCHEMA};
use oauth_state_store::Durability;

const BY_END: &str = "CREATE INDEX flows_by_end ON flows (coalesce(consumed_at, created_at))
    WHERE status IN ('consumed', 'failed');";
/// An expiry index (the id order makes it needless).
const BY_EXPIRY: &str = "CREATE INDEX flows_by_expiry ON flows (expires_at);";
const BY_SERVER: &str = "CREATE INDEX flows_by_server ON flows (server_id, client_id);";
const CHALLENGE_PARTIAL: &str = "ON flows (code_challenge)
    WHERE generated_verifier = 0;";

/// `schema` without the statement `what` (which must be in it).
fn without(schema: &str, what: &str) -> String {
    assert!(schema.contains(what), "{what} is not in schema.sql");
    schema.replacen(what, "", 1)
}

/// A variant: its name and its schema.
fn variants() -> Vec<(&'static str, String)> {
    let now = SCHEMA.to_owned();
    // Two costly choices the schema avoids, put back one at a time.
    let expiry = format!("{now}{BY_EXPIRY}");
    let every_challenge = now.replacen(CHALLENGE_PARTIAL, "ON flows (code_challenge);", 1);
    assert_ne!(
        every_challenge, now,
        "flows_by_challenge changed in schema.sql"
    );
    let both = format!("{every_challenge}{BY_EXPIRY}");
    vec![
        ("schema.sql (now)", now.clone()),
        ("now + an expiry index", expiry),
        ("now, every challenge in the UNIQUE index", every_challenge),
        ("now + both", both),
        (
            "now + flows_by_end (what sweep --older-than searched before it walked the table)",
            format!("{now}{BY_END}"),
        ),
        (
            "now without flows_by_server (only the state key, the challenge while not generated)",
            without(&now, BY_SERVER),
        ),
    ]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, block) = if quick { (3, 20) } else { (30, 200) };
    println!(
        "SQLite {}; {rounds} rounds of {block} flows of each variant, Normal, empty files\n",
        rusqlite::version()
    );
    println!("| variant | native µs/flow | native vs minimal | SDK µs/flow | SDK vs minimal |");
    println!("|---|---:|---:|---:|---:|");
    let variants = variants();
    let dirs: Vec<_> = (0..variants.len() + 1).map(|_| temp_db()).collect();
    let mut minimal = Minimal::open(&dirs[0].1, Durability::Normal, 0);
    let mut floors: Vec<Floor> = variants
        .iter()
        .zip(&dirs[1..])
        .map(|((_, schema), (_, path))| Floor::open_with_schema(path, Durability::Normal, schema))
        .collect();
    let n = floors.len();
    let (mut native, mut sdk) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    let (mut native_us, mut sdk_us) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..block {
            f();
        }
        t.elapsed().as_secs_f64() * 1e6 / block as f64
    };
    for _ in 0..rounds {
        let m_native = time(&mut || drop(minimal.native_flow()));
        let m_sdk = time(&mut || drop(minimal.sdk_flow()));
        for (i, floor) in floors.iter_mut().enumerate() {
            let us = time(&mut || drop(floor.native_flow()));
            native[i].push(us / m_native);
            native_us[i].push(us);
            let us = time(&mut || drop(floor.sdk_flow()));
            sdk[i].push(us / m_sdk);
            sdk_us[i].push(us);
        }
    }
    for (i, (name, _)) in variants.iter().enumerate() {
        let sdk_cells = format!(
            "{:.1} | {:.2}x",
            median(sdk_us[i].clone()),
            median(sdk[i].clone())
        );
        println!(
            "| {name} | {:.1} | {:.2}x | {sdk_cells} |",
            median(native_us[i].clone()),
            median(native[i].clone())
        );
    }
}
