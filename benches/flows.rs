//! Per-flow cost of the store against two references, measured side by side in one run:
//!
//! - the **floor**: raw rusqlite on a file with the same schema and pragmas, cached prepared
//!   statements, the same random generation and SHA-256 + base64 work, and the same rows
//!   written in the same number of `BEGIN IMMEDIATE` transactions, but none of the library's
//!   validation, URL parsing, rules, pool or error mapping;
//! - an in-memory `Mutex<HashMap>` store (what clients do today), for scale.
//!
//! A flow is the native path (`begin` + `consume`) or the SDK path (`save_code_verifier` +
//! `promote` + `consume`). Groups `flow_normal` (`synchronous=NORMAL`) and `flow_full`
//! (`synchronous=FULL`, one fsync a commit). Each case starts on a fresh file in a temp dir.
//!
//! `cargo bench --bench flows` (see BENCHMARKS.md).
#![allow(missing_docs)] // criterion's macros make undocumented functions

mod common;

use std::time::Duration;

use common::{authorization_url, random_token, temp_db, Floor, MemStore, CLIENT, REDIRECT, SERVER};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use oauth_state_store::{BeginRequest, Durability, StoreOptions};

// ---- the cases ----------------------------------------------------------------------------

fn store_cases(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, d: Durability) {
    let (_dir, path) = temp_db();
    let store = StoreOptions::default().durability(d).open(&path).unwrap();
    group.bench_function("store_native", |b| {
        b.iter(|| {
            let flow = store
                .begin(
                    BeginRequest::new(SERVER)
                        .client_id(CLIENT)
                        .redirect_uri(REDIRECT),
                )
                .unwrap();
            store.consume(flow.state().secret()).unwrap()
        })
    });
    let (_dir2, path) = temp_db();
    let store = StoreOptions::default().durability(d).open(&path).unwrap();
    group.bench_function("store_sdk", |b| {
        b.iter(|| {
            let verifier = random_token();
            let state = random_token();
            let challenge = store
                .save_code_verifier(SERVER, Some(CLIENT), &verifier)
                .unwrap();
            let url = authorization_url(&state, challenge.as_str());
            store.promote(SERVER, Some(CLIENT), &url).unwrap();
            store.consume(&state).unwrap()
        })
    });
}

fn floor_cases(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, d: Durability) {
    let (_dir, path) = temp_db();
    let mut floor = Floor::open(&path, d);
    group.bench_function("floor_native", |b| {
        b.iter(|| {
            let state = floor.begin();
            floor.consume(&state)
        })
    });
    let (_dir2, path) = temp_db();
    let mut floor = Floor::open(&path, d);
    group.bench_function("floor_sdk", |b| {
        b.iter(|| {
            let verifier = random_token();
            let state = random_token();
            let challenge = floor.save(&verifier);
            // The caller builds the URL on both paths; only the store parses it.
            let url = authorization_url(&state, &challenge);
            floor.promote(&state, &challenge);
            drop(url);
            floor.consume(&state)
        })
    });
}

fn flow_normal(c: &mut Criterion) {
    let mut group = c.benchmark_group("flow_normal");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    // Interleave store and floor so that a noisy neighbour hits both alike.
    floor_cases(&mut group, Durability::Normal);
    store_cases(&mut group, Durability::Normal);
    let mem = MemStore::default();
    group.bench_function("hashmap_native", |b| {
        b.iter(|| {
            let state = mem.begin();
            mem.consume(&state)
        })
    });
    let mem = MemStore::default();
    group.bench_function("hashmap_sdk", |b| {
        b.iter(|| {
            let verifier = random_token();
            let state = random_token();
            let challenge = mem.save(&verifier);
            let url = authorization_url(&state, &challenge);
            mem.promote(&state, &challenge);
            drop(url);
            mem.consume(&state)
        })
    });
    group.finish();
}

fn flow_full(c: &mut Criterion) {
    let mut group = c.benchmark_group("flow_full");
    group
        .sample_size(15)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    floor_cases(&mut group, Durability::Full);
    store_cases(&mut group, Durability::Full);
    group.finish();
}

criterion_group!(benches, flow_normal, flow_full);
criterion_main!(benches);
