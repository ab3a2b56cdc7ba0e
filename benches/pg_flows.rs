//! PostgreSQL against its raw-driver floor, side by side with SQLite in one run
//! (BENCHMARKS.md, "PostgreSQL"): the per-flow cost, P real OS processes' aggregate throughput
//! and consume latency, and a sweep of many expired rows against one raw `DELETE`.
//!
//! ```text
//! cargo bench --bench pg_flows --features postgres -- [--quick] [--durable]
//!     [--only ratio|latency|procs|sweep] [--rounds N] [--block N] [--procs N] [--secs S]
//!     [--sweep-rows N] [--delay-us N] [--lat-rounds N] [--lat-block N]
//! ```
//!
//! The server is a throwaway cluster started by the bench (tests/common/pg.rs: 127.0.0.1, a
//! free port, removed at the end), with the tests' `fsync=off` unless `--durable`; or the one
//! `OSS_BENCH_PG_URL` names (a database on a server where the bench may create databases).
//! Per-flow variants run in interleaved blocks of `--block` flows, `--rounds` times; each row
//! reports the median round. `--quick` (CI) runs tiny sizes so that this file cannot rot.
//!
//! `latency` (`pg_latency`) always runs on a durable server (fsync on; a second throwaway
//! cluster when the first has fsync off), since `synchronous_commit` is one of its axes; its
//! Redis rows need `redis-server` on PATH (`OSS_REQUIRE_REDIS=1` makes its absence fatal).
#![allow(missing_docs)] // a bench binary, not an API

mod common;
#[path = "../tests/common/pg.rs"]
mod pg_cluster;
mod pg_floor;
mod pg_latency;
mod pg_minimal;
mod pg_procs;
mod pg_sweep;

use std::time::{Duration, Instant};

use common::{median, store_native_flow, store_sdk_flow, temp_db, Floor};
use oauth_state_store::{Durability, Store};
use pg_floor::PgFloor;
use pg_minimal::Minimal;
use pg_procs::Target;

struct Args {
    rounds: usize,
    block: usize,
    durable: bool,
    only: Option<String>,
    procs: usize,
    secs: f64,
    sweep_rows: usize,
    delay_us: u64,
    lat_rounds: usize,
    lat_block: usize,
}

fn args() -> Args {
    let mut a = Args {
        rounds: 20,
        block: 200,
        durable: false,
        only: None,
        procs: 16,
        secs: 3.0,
        sweep_rows: 1_000_000,
        delay_us: 1000,
        lat_rounds: 10,
        lat_block: 30,
    };
    let mut it = std::env::args().skip(1);
    let number = |it: &mut dyn Iterator<Item = String>, what: &str| -> String {
        it.next().unwrap_or_else(|| panic!("{what} needs a value"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => {
                (a.rounds, a.block, a.procs, a.secs, a.sweep_rows) = (2, 10, 2, 0.3, 2000);
                (a.delay_us, a.lat_rounds, a.lat_block) = (200, 2, 5);
            }
            "--durable" => a.durable = true,
            "--only" => a.only = Some(number(&mut it, "--only")),
            "--rounds" => a.rounds = number(&mut it, "--rounds").parse().expect("--rounds N"),
            "--block" => a.block = number(&mut it, "--block").parse().expect("--block N"),
            "--procs" => a.procs = number(&mut it, "--procs").parse().expect("--procs N"),
            "--secs" => a.secs = number(&mut it, "--secs").parse().expect("--secs S"),
            "--sweep-rows" => {
                a.sweep_rows = number(&mut it, "--sweep-rows")
                    .parse()
                    .expect("--sweep-rows N");
            }
            "--delay-us" => {
                a.delay_us = number(&mut it, "--delay-us").parse().expect("--delay-us N");
            }
            "--lat-rounds" => {
                a.lat_rounds = number(&mut it, "--lat-rounds").parse().expect("N");
            }
            "--lat-block" => a.lat_block = number(&mut it, "--lat-block").parse().expect("N"),
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// Where the bench's databases live: a throwaway cluster, or `OSS_BENCH_PG_URL`'s server.
struct Server {
    /// A URL of a database on the server from which the others are created.
    admin: String,
    _cluster: Option<pg_cluster::Cluster>,
}

impl Server {
    fn start(durable: bool) -> Server {
        match std::env::var("OSS_BENCH_PG_URL") {
            Ok(admin) => Server {
                admin,
                _cluster: None,
            },
            Err(_) => {
                let cluster = if durable {
                    pg_cluster::Cluster::start_durable()
                } else {
                    pg_cluster::Cluster::start()
                };
                Server {
                    admin: cluster.url("postgres"),
                    _cluster: Some(cluster),
                }
            }
        }
    }

    /// The URL of database `name` on this server.
    fn url(&self, name: &str) -> String {
        let (server, rest) = self
            .admin
            .rsplit_once('/')
            .expect("OSS_BENCH_PG_URL must end in /DATABASE");
        match rest.split_once('?') {
            Some((_, query)) => format!("{server}/{name}?{query}"),
            None => format!("{server}/{name}"),
        }
    }

    /// Creates a fresh database (a copy of `template` when given) and returns its name and URL.
    fn create(&self, suffix: &str, template: Option<&str>) -> (String, String) {
        let name = format!("oss_bench_{}_{suffix}", std::process::id());
        let mut c = postgres::Client::connect(&self.admin, postgres::NoTls).expect("connect");
        // The names are made here of [a-z0-9_], so quoting them is enough.
        let sql = match template {
            Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\""),
            None => format!("CREATE DATABASE \"{name}\""),
        };
        c.batch_execute(&sql).expect("create a bench database");
        let url = self.url(&name);
        (name, url)
    }
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

fn main() {
    let raw: Vec<String> = std::env::args().collect();
    if let Some(i) = raw.iter().position(|a| a == "--child") {
        return pg_procs::child(&raw[i + 1..]);
    }
    let a = args();
    let server = Server::start(a.durable);
    let wants = |section: &str| a.only.as_deref().is_none_or(|o| o == section);
    if wants("ratio") {
        ratio(&server, &a);
    }
    if wants("latency") {
        // synchronous_commit matters only where commits wait for the disk.
        let durable;
        let on = if a.durable {
            &server
        } else {
            durable = Server::start(true);
            &durable
        };
        let delay = Duration::from_micros(a.delay_us);
        pg_latency::latency(on, a.lat_rounds, a.lat_block, delay);
    }
    if wants("procs") {
        processes(&server, &a);
    }
    if wants("sweep") {
        pg_sweep::sweep(&server, a.sweep_rows);
    }
}

fn processes(server: &Server, a: &Args) {
    let (_, minimal_url) = server.create("procs_minimal", None);
    Minimal::create_schema(&minimal_url);
    let (_, floor_url) = server.create("procs_floor", None);
    PgFloor::create_schema(&floor_url);
    let (_, store_url) = server.create("procs_store", None);
    drop(Store::open(&store_url).expect("migrate"));
    let (_dir, path) = temp_db();
    drop(Store::open(&path).expect("create the SQLite store"));
    let targets = [
        Target {
            name: "PostgreSQL minimal floor",
            role: "minimal",
            target: minimal_url,
        },
        Target {
            name: "PostgreSQL floor (old statements)",
            role: "floor",
            target: floor_url,
        },
        Target {
            name: "PostgreSQL store",
            role: "store",
            target: store_url,
        },
        Target {
            name: "SQLite store",
            role: "store",
            target: path.to_str().unwrap().to_owned(),
        },
    ];
    pg_procs::processes(&targets, &[1, a.procs], a.secs);
}

fn ratio(server: &Server, a: &Args) {
    let (_, url) = server.create("floor", None);
    let (_, store_url) = server.create("store", None);
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
