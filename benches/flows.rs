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

use common::{store_native_flow, store_sdk_flow, temp_db, Floor, MemStore};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use oauth_state_store::{Durability, StoreOptions};

// ---- the cases ----------------------------------------------------------------------------

fn store_cases(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, d: Durability) {
    let (_dir, path) = temp_db();
    let store = StoreOptions::default().durability(d).open(&path).unwrap();
    group.bench_function("store_native", |b| b.iter(|| store_native_flow(&store)));
    let (_dir2, path) = temp_db();
    let store = StoreOptions::default().durability(d).open(&path).unwrap();
    group.bench_function("store_sdk", |b| b.iter(|| store_sdk_flow(&store)));
}

fn floor_cases(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, d: Durability) {
    let (_dir, path) = temp_db();
    let mut floor = Floor::open(&path, d);
    group.bench_function("floor_native", |b| b.iter(|| floor.native_flow()));
    let (_dir2, path) = temp_db();
    let mut floor = Floor::open(&path, d);
    group.bench_function("floor_sdk", |b| b.iter(|| floor.sdk_flow()));
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
    group.bench_function("hashmap_native", |b| b.iter(|| mem.native_flow()));
    let mem = MemStore::default();
    group.bench_function("hashmap_sdk", |b| b.iter(|| mem.sdk_flow()));
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
