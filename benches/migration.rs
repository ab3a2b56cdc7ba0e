//! The migration of a large schema-2 (or `--from 3` to `6`) file to the current schema, while another process keeps
//! running flows on it (issue 17: "a migration that runs online").
//!
//! The file holds `--rows` rows: a tenth live pending flows with known states, the rest expired
//! rows and tombstones, over 50 servers. A probe child, a schema-2 program (raw rusqlite running
//! that schema's statements, as an older build of the store would), runs begin + consume
//! transactions in a loop; the parent opens the file with the store, which migrates it, and
//! then consumes a sample of the old pending flows. The probe's slowest transaction is the
//! longest write-lock hold the migration imposed, measured from outside.
//!
//! ```text
//! cargo bench --bench migration                    # 1,000,000 rows
//! cargo bench --bench migration -- --rows 100000
//! cargo bench --bench migration -- --from 6       # a file of the previous release
//! cargo bench --bench migration -- --quick         # CI: 20,000 rows
//! ```
#![allow(missing_docs)] // a bench binary, not an API

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::child::Worker;
use common::{challenge_of, now_ms, random_token, state_key, summary, temp_db, MIGRATIONS};
use oauth_state_store::{Durability, Store};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// The statements of a schema-2 program: its insert, its lookup, its consume.
const OLD_INSERT: &str = "INSERT INTO flows (state_key, code_challenge, code_verifier, \
     server_id, client_id, redirect_uri, status, created_at, expires_at, require_issuer) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, 0)";
const OLD_SELECT: &str = "SELECT id, status, code_verifier FROM flows \
     WHERE id = (SELECT id FROM flows WHERE state_key = ?1)";
const OLD_CONSUME: &str = "UPDATE flows SET status = 'consumed', code_verifier = NULL, \
     auth_code = NULL, consumed_at = ?2 WHERE id = ?1 AND status = ?3";

fn server(i: usize) -> String {
    format!("https://mcp{}.example.com", i % 50)
}

/// A store file at schema `from` (2 to 6) with `rows` rows; returns the live flows' states and
/// verifiers.
fn old_file(path: &Path, from: usize, rows: usize) -> Vec<(String, String)> {
    let mut conn = common::bench_connection(path, Durability::Normal);
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    for sql in &MIGRATIONS[..from] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", from as i64)
        .unwrap();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('store_id', 'migration-bench')",
        [],
    )
    .unwrap();
    let now = now_ms();
    let mut live = Vec::with_capacity(rows / 10 + 1);
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, \
                 client_id, status, created_at, expires_at, consumed_at) \
                 VALUES (?1, ?2, ?3, ?4, 'bench-client', ?5, ?6, ?7, ?8)",
            )
            .unwrap();
        for i in 0..rows {
            let verifier = random_token();
            let challenge = challenge_of(&verifier);
            let state = random_token();
            let key = state_key(&state);
            // (status, created, expires, consumed): live, expired, tombstones.
            let (status, created, expires, consumed_at) = match i % 10 {
                0 => ("pending", now - 1_000, now + 3_600_000, None),
                1..=3 => {
                    let expires = now - 3_600_000 + (i % 100_000) as i64;
                    ("pending", expires - 600_000, expires, None)
                }
                _ => {
                    let created = now - 500_000 - (i % 100_000) as i64;
                    (
                        "consumed",
                        created,
                        created + 600_000,
                        Some(created + 1_000),
                    )
                }
            };
            let stored_verifier = (status == "pending").then_some(&verifier);
            insert
                .execute(params![
                    &key[..],
                    challenge,
                    stored_verifier,
                    server(i),
                    status,
                    created,
                    expires,
                    consumed_at
                ])
                .unwrap();
            if i % 10 == 0 {
                live.push((state, verifier));
            }
        }
    }
    tx.commit().unwrap();
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
    live
}

/// The probe: a schema-2 program running begin + consume until its stdin closes.
fn probe(path: &Path) {
    let mut conn = common::bench_connection(path, Durability::Normal);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    println!("READY");
    std::thread::spawn(move || {
        for _ in std::io::stdin().lock().lines() {}
        flag.store(true, Ordering::SeqCst);
    });
    let (mut flows, mut errors, mut lat) = (0u64, 0u64, Vec::new());
    let mut slowest = (0u64, 0u64); // (µs, µs since the probe started)
    let start = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let state = random_token();
        let verifier = random_token();
        let key = state_key(&state);
        let now = now_ms();
        for step in 0..2 {
            let t = Instant::now();
            let done = (|| -> rusqlite::Result<()> {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if step == 0 {
                    tx.prepare_cached(OLD_INSERT)?.execute(params![
                        &key[..],
                        challenge_of(&verifier),
                        verifier,
                        "https://probe.example.com",
                        "probe",
                        "http://127.0.0.1:33418/callback",
                        now,
                        now + 600_000
                    ])?;
                } else {
                    let row: Option<(i64, String, Option<String>)> = tx
                        .prepare_cached(OLD_SELECT)?
                        .query_row([&key[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()?;
                    let (id, status, stored) = row.expect("the probe's own flow");
                    assert_eq!(stored.as_deref(), Some(verifier.as_str()));
                    let n =
                        tx.prepare_cached(OLD_CONSUME)?
                            .execute(params![id, now_ms(), status])?;
                    assert_eq!(n, 1);
                }
                tx.commit()
            })();
            let us = t.elapsed().as_micros() as u64;
            if us > slowest.0 {
                slowest = (us, start.elapsed().as_micros() as u64);
            }
            lat.push(us);
            if let Err(e) = done {
                eprintln!("probe: {e}");
                errors += 1;
                break;
            }
        }
        flows += 1;
    }
    println!("FLOWS {flows}");
    println!("ERRORS {errors}");
    println!("SLOWEST_AT_US {}", slowest.1);
    let lat: Vec<String> = lat.iter().map(u64::to_string).collect();
    println!("LAT {}", lat.join(" "));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        probe(Path::new(&args[i + 1]));
        return;
    }
    let mut rows = 1_000_000usize;
    let mut from = 2usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => rows = 20_000,
            "--rows" => rows = it.next().and_then(|n| n.parse().ok()).expect("--rows N"),
            "--from" => {
                from = it.next().and_then(|n| n.parse().ok()).expect("--from 2..6");
                assert!((2..=6).contains(&from), "--from 2..6");
            }
            _ => {} // `--bench`, passed by cargo
        }
    }
    let (_dir, path) = temp_db();
    let t = Instant::now();
    let live = old_file(&path, from, rows);
    let fill = t.elapsed();
    // The store refuses a file others can read; this one was made by rusqlite.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();

    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("--child").arg(&path);
    let mut probe = Worker::start(cmd);
    assert_eq!(probe.line(), "READY");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let store = Store::open(&path).unwrap();
    let migrated = t.elapsed();
    let report = store.migration();
    std::thread::sleep(Duration::from_millis(300));
    let r = probe.finish();

    // Every old pending flow is still there; a sample of them is consumed by the new store.
    let stats = store.stats().unwrap();
    // Every pending row of the file (live and expired; the probe's own are consumed).
    let pending_written = (0..rows).filter(|i| i % 10 <= 3).count() as u64;
    let sample = live.len().min(1000);
    for (state, verifier) in live.iter().step_by((live.len() / sample.max(1)).max(1)) {
        let consumed = store.consume(state).expect("an old pending flow");
        assert_eq!(consumed.verifier.secret(), verifier);
    }
    drop(store);
    let check = Connection::open(&path).unwrap();
    let version: i64 = check
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();

    let (p50, p99, slowest) = summary(r.lat_us.clone());
    let slowest_at = Duration::from_micros(r.get("SLOWEST_AT_US"));
    let slowest_in_migration = slowest_at
        .checked_sub(Duration::from_millis(300))
        .is_some_and(|d| d <= migrated + Duration::from_millis(50));
    println!(
        "SQLite {}; {rows} rows ({:.0} MB, filled in {:.1} s), schema {} -> {} (file now {version})\n",
        rusqlite::version(),
        bytes as f64 / 1e6,
        fill.as_secs_f64(),
        report.from,
        report.to
    );
    println!("| from | rows | migration | probe flows | probe errors | probe p50 ms | p99 ms | slowest ms | slowest during the migration | old pending flows kept |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    println!(
        "| {from} | {rows} | {:.2} s | {} | {} | {:.3} | {:.3} | {:.1} | {} | {} of {} (sample of {sample} consumed) |",
        migrated.as_secs_f64(),
        r.get("FLOWS"),
        r.get("ERRORS"),
        p50,
        p99,
        slowest,
        if slowest_in_migration { "yes" } else { "no" },
        stats.counts.pending,
        pending_written,
    );
    assert_eq!(r.get("ERRORS"), 0, "the probe saw errors");
    assert_eq!(stats.counts.pending, pending_written, "pending flows lost");
    assert_eq!(version, oauth_state_store::SCHEMA_VERSION);
}
