//! What each index of the layout costs a flow (issue 17): the store's own statements, run by
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

/// The table part of `schema.sql` (everything before its first index).
fn tables() -> &'static str {
    &SCHEMA[..SCHEMA.find("CREATE INDEX").expect("an index in schema.sql")]
}

const EXPIRY: &str = "CREATE INDEX flows_by_expiry ON flows (expires_at);";
const SERVER: &str = "CREATE INDEX flows_by_server ON flows (server_id, client_id);";
const ENDED: &str = "CREATE INDEX flows_by_end ON flows (coalesce(consumed_at, created_at)) \
     WHERE status IN ('consumed', 'failed');";

/// A variant: its name, its schema, whether its SDK path is meaningful.
fn variants() -> Vec<(&'static str, String, bool)> {
    // `schema.sql` itself; the variants below rebuild its indexes from these constants.
    let now = SCHEMA.to_owned();
    let schema_4 = format!(
        "{}{EXPIRY}CREATE INDEX flows_by_server ON flows (server_id, client_id, status);\
         CREATE INDEX flows_by_end ON flows (status, coalesce(consumed_at, created_at));",
        tables()
    );
    // The challenge UNIQUE only among unbound rows: promote's lookup could not use it, so
    // only the native path is measured.
    let unbound_challenge = now.replacen(
        "code_challenge    TEXT NOT NULL UNIQUE",
        "code_challenge    TEXT NOT NULL",
        1,
    ) + "CREATE UNIQUE INDEX flows_by_challenge ON flows (code_challenge) \
           WHERE state_key IS NULL;";
    assert!(unbound_challenge.contains("flows_by_challenge") && unbound_challenge != now);
    // What is left with every one of those removed: the table, its state key, the tombstone.
    let bare = format!(
        "{}CREATE UNIQUE INDEX flows_by_challenge ON flows (code_challenge) \
         WHERE state_key IS NULL;",
        tables()
    )
    .replacen(
        "code_challenge    TEXT NOT NULL UNIQUE",
        "code_challenge    TEXT NOT NULL",
        1,
    );
    vec![
        ("schema 4 (before issue 17)", schema_4, true),
        ("schema 6 (now)", now.clone(), true),
        (
            "now without flows_by_end",
            format!("{}{EXPIRY}{SERVER}", tables()),
            true,
        ),
        (
            "now without flows_by_expiry",
            format!("{}{SERVER}{ENDED}", tables()),
            true,
        ),
        (
            "now without flows_by_server",
            format!("{}{EXPIRY}{ENDED}", tables()),
            true,
        ),
        (
            "now, challenge UNIQUE only while unbound",
            unbound_challenge,
            false,
        ),
        (
            "only the state key, the challenge while unbound",
            bare,
            false,
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
        .map(|((_, schema, _), (_, path))| {
            Floor::open_with_schema(path, Durability::Normal, schema)
        })
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
        for (i, ((_, _, has_sdk), floor)) in variants.iter().zip(&mut floors).enumerate() {
            let us = time(&mut || drop(floor.native_flow()));
            native[i].push(us / m_native);
            native_us[i].push(us);
            if *has_sdk {
                let us = time(&mut || drop(floor.sdk_flow()));
                sdk[i].push(us / m_sdk);
                sdk_us[i].push(us);
            }
        }
    }
    for (i, (name, _, has_sdk)) in variants.iter().enumerate() {
        let sdk_cells = if *has_sdk {
            format!(
                "{:.1} | {:.2}x",
                median(sdk_us[i].clone()),
                median(sdk[i].clone())
            )
        } else {
            "– | –".to_owned()
        };
        println!(
            "| {name} | {:.1} | {:.2}x | {sdk_cells} |",
            median(native_us[i].clone()),
            median(native[i].clone())
        );
    }
}
