//! Per-flow cost on PostgreSQL against its raw-driver floor, side by side with the SQLite floor
//! in one run (BENCHMARKS.md, "PostgreSQL").
//!
//! ```text
//! cargo bench --bench pg_flows --features postgres -- [--quick] [--durable] [--rounds N] [--block N]
//! ```
//!
//! The server is a throwaway cluster started by the bench (tests/common/pg.rs: 127.0.0.1, a
//! free port, removed at the end), with the tests' `fsync=off` unless `--durable`; or the one
//! `OSS_BENCH_PG_URL` names (a database the bench may create one database in). Variants run
//! in interleaved blocks of `--block` flows, `--rounds` times; each row reports the median
//! round. `--quick` (CI) runs tiny sizes so that this file cannot rot.
#![allow(missing_docs)] // a bench binary, not an API

mod common;
#[path = "../tests/common/pg.rs"]
mod pg_cluster;
mod pg_floor;

use std::time::Instant;

use common::{store_native_flow, store_sdk_flow, temp_db, Floor};
use oauth_state_store::{Durability, Store};
use pg_floor::PgFloor;

struct Args {
    rounds: usize,
    block: usize,
    durable: bool,
}

fn args() -> Args {
    let mut a = Args {
        rounds: 20,
        block: 200,
        durable: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => (a.rounds, a.block) = (2, 10),
            "--durable" => a.durable = true,
            "--rounds" => a.rounds = it.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--block" => a.block = it.next().and_then(|v| v.parse().ok()).expect("--block N"),
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// A variant: its name and one flow.
type Variant<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Runs each variant for `block` flows in turn, `rounds` times; returns each variant's µs/flow
/// per round.
fn interleaved(variants: &mut [Variant<'_>], rounds: usize, block: usize) -> Vec<Vec<f64>> {
    let mut per_round = vec![Vec::with_capacity(rounds); variants.len()];
    for (_, flow) in variants.iter_mut() {
        for _ in 0..block.min(20) {
            flow(); // warm-up: caches, plans, connections
        }
    }
    for _ in 0..rounds {
        for (i, (_, flow)) in variants.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..block {
                flow();
            }
            per_round[i].push(t.elapsed().as_secs_f64() * 1e6 / block as f64);
        }
    }
    per_round
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let a = args();
    let (_cluster, url, store_url) = match std::env::var("OSS_BENCH_PG_URL") {
        Ok(admin) => {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("connect");
            let mut database = |suffix: &str| {
                let name = format!("oss_bench_{}_{suffix}", std::process::id());
                c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
                match admin.rsplit_once('/') {
                    Some((server, _)) => format!("{server}/{name}"),
                    None => panic!("OSS_BENCH_PG_URL must end in /DATABASE"),
                }
            };
            let (floor, store) = (database("floor"), database("store"));
            (None, floor, store)
        }
        Err(_) => {
            let cluster = if a.durable {
                pg_cluster::Cluster::start_durable()
            } else {
                pg_cluster::Cluster::start()
            };
            let url = cluster.fresh_database("bench_floor");
            let store_url = cluster.fresh_database("bench_store");
            (Some(cluster), url, store_url)
        }
    };
    let store = Store::open(&store_url).expect("open the store on PostgreSQL");
    PgFloor::create_schema(&url);
    let mut pg_native = PgFloor::open(&url);
    let mut pg_sdk = PgFloor::open(&url);
    let (_d1, p1) = temp_db();
    let (_d2, p2) = temp_db();
    let mut lite_native = Floor::open(&p1, Durability::Normal);
    let mut lite_sdk = Floor::open(&p2, Durability::Normal);

    let mut variants: Vec<Variant<'_>> = vec![
        (
            "PostgreSQL floor native",
            Box::new(|| drop(pg_native.native_flow())),
        ),
        (
            "PostgreSQL store native",
            Box::new(|| drop(store_native_flow(&store))),
        ),
        ("PostgreSQL floor SDK", Box::new(|| drop(pg_sdk.sdk_flow()))),
        (
            "PostgreSQL store SDK",
            Box::new(|| drop(store_sdk_flow(&store))),
        ),
        (
            "SQLite floor native (Normal)",
            Box::new(|| drop(lite_native.native_flow())),
        ),
        (
            "SQLite floor SDK (Normal)",
            Box::new(|| drop(lite_sdk.sdk_flow())),
        ),
    ];
    let rounds = interleaved(&mut variants, a.rounds, a.block);
    // Each store variant follows its floor: the ratio is taken within each round.
    let ratio = |store: usize, floor: usize| {
        median(
            rounds[store]
                .iter()
                .zip(&rounds[floor])
                .map(|(s, f)| s / f)
                .collect(),
        )
    };
    let ratios = [None, Some(ratio(1, 0)), None, Some(ratio(3, 2)), None, None];
    println!(
        "\nPer-flow cost, {} rounds of {} flows a variant, interleaved; PostgreSQL {}\n",
        a.rounds,
        a.block,
        if a.durable {
            "with fsync and synchronous_commit on"
        } else {
            "with the tests' fsync=off"
        }
    );
    println!("| variant | wall µs/flow (median round) | min round | max round | vs floor (median of rounds) |");
    println!("|---|---:|---:|---:|---:|");
    for (((name, _), r), ratio) in variants.iter().zip(rounds.clone()).zip(ratios) {
        let (min, max) = (
            r.iter().copied().fold(f64::INFINITY, f64::min),
            r.iter().copied().fold(0.0, f64::max),
        );
        let ratio = ratio.map_or_else(|| "".to_owned(), |x| format!("{x:.3}x"));
        println!(
            "| {name} | {:.1} | {min:.1} | {max:.1} | {ratio} |",
            median(r)
        );
    }
}
