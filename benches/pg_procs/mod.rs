//! Real OS processes for the PostgreSQL bench: the child roles (this bench binary re-run with
//! `--child ROLE TARGET [SECS]`), the parent's handle on a child, and the P-process
//! throughput table (BENCHMARKS.md, "PostgreSQL").
//!
//! A child opens its own store (a `postgres://` URL or a SQLite path: `TARGET`) or its own
//! floor connection, says `READY`, waits for `GO` on stdin, runs, and prints its report:
//! `FLOWS n`, `ERRORS n`, `ELAPSED_US n`, `LAT us...` (consume latencies).
#![allow(dead_code)]

use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth_state_store::{BeginRequest, Store};

use crate::common::child::Worker;
use crate::common::{CLIENT, REDIRECT, SERVER};
use crate::pg_floor::PgFloor;
use crate::pg_minimal::Minimal;

/// Starts a child in `role` on `target` (this binary with `--child ROLE TARGET ARGS`) and
/// waits until it has opened its store.
pub fn spawn(role: &str, target: &str, args: &[String]) -> Worker {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args(["--child", role, target]).args(args);
    let mut w = Worker::start(cmd);
    assert_eq!(w.line(), "READY", "the child did not start");
    w
}

/// p50, p99 and max of latencies in µs, as ms.
pub fn summary(mut us: Vec<u64>) -> (f64, f64, f64) {
    if us.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    us.sort_unstable();
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    (at(0.5), at(0.99), at(1.0))
}

// ---- the children ------------------------------------------------------------------------

/// One full flow, however the role runs it: `begin`, then the timed `consume`.
trait Flows {
    /// Begins a flow; `None` on an error.
    fn begin(&mut self) -> Option<String>;
    /// Consumes it; whether it succeeded.
    fn consume(&mut self, state: &str) -> bool;
}

impl Flows for Store {
    fn begin(&mut self) -> Option<String> {
        let request = BeginRequest::new(SERVER)
            .client_id(CLIENT)
            .redirect_uri(REDIRECT);
        Store::begin(self, request)
            .ok()
            .map(|f| f.state().secret().to_owned())
    }

    fn consume(&mut self, state: &str) -> bool {
        Store::consume(self, state).is_ok()
    }
}

impl Flows for PgFloor {
    fn begin(&mut self) -> Option<String> {
        Some(PgFloor::begin(self))
    }

    fn consume(&mut self, state: &str) -> bool {
        !PgFloor::consume(self, state).is_empty()
    }
}

impl Flows for Minimal {
    fn begin(&mut self) -> Option<String> {
        Some(Minimal::begin(self))
    }

    fn consume(&mut self, state: &str) -> bool {
        Minimal::consume(self, state).is_some()
    }
}

/// Runs flows until `stop` says so; prints the report.
fn run_flows(flows: &mut dyn Flows, stop: impl Fn(Instant) -> bool) {
    let start = Instant::now();
    let (mut done, mut errors, mut lat) = (0u64, 0u64, Vec::new());
    while !stop(start) {
        let Some(state) = flows.begin() else {
            errors += 1;
            continue;
        };
        let t = Instant::now();
        let ok = flows.consume(&state);
        lat.push(t.elapsed().as_micros() as u64);
        if ok {
            done += 1;
        } else {
            errors += 1;
        }
    }
    println!("FLOWS {done}");
    println!("ERRORS {errors}");
    println!("ELAPSED_US {}", start.elapsed().as_micros());
    let mut line = String::from("LAT");
    for us in lat {
        line.push(' ');
        line.push_str(&us.to_string());
    }
    println!("{line}");
}

/// Says `READY` and waits for `GO`.
fn handshake() {
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).expect("stdin");
    assert_eq!(go.trim_end(), "GO");
}

/// The child side: `ROLE TARGET [SECS]`.
///
/// - `store TARGET SECS`, `floor URL SECS`, `minimal URL SECS`: full flows for SECS seconds.
/// - `probe TARGET`: full flows through the store until a line (`STOP`) arrives.
pub fn child(args: &[String]) {
    let (role, target) = (args[0].as_str(), args[1].as_str());
    let secs = || Duration::from_secs_f64(args[2].parse().expect("SECS"));
    match role {
        "store" => {
            let mut store = Store::open(target).expect("open the store");
            let limit = secs();
            handshake();
            run_flows(&mut store, |start| start.elapsed() >= limit);
        }
        "floor" => {
            let mut floor = PgFloor::open(target);
            let limit = secs();
            handshake();
            run_flows(&mut floor, |start| start.elapsed() >= limit);
        }
        "minimal" => {
            let mut floor = Minimal::open(target);
            let limit = secs();
            handshake();
            run_flows(&mut floor, |start| start.elapsed() >= limit);
        }
        "probe" => {
            let mut store = Store::open(target).expect("open the store");
            handshake();
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let reader = std::thread::spawn(move || {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                flag.store(true, Ordering::SeqCst);
            });
            run_flows(&mut store, |_| stop.load(Ordering::SeqCst));
            reader.join().unwrap();
        }
        other => panic!("unknown child role {other}"),
    }
}

// ---- the parent's table ------------------------------------------------------------------

/// One row of the process table: what each child runs, on what.
pub struct Target {
    pub name: &'static str,
    pub role: &'static str,
    pub target: String,
}

/// P processes of each target, each running full flows for `secs`; one table row a
/// (target, P).
pub fn processes(targets: &[Target], counts: &[usize], secs: f64) {
    println!("\n### P processes, each running full flows (begin + consume) for {secs:.1} s\n");
    println!("| engine | processes | flows/s (all) | vs 1 process | consume p50 ms | p99 ms | max ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for t in targets {
        let mut single = None;
        for &p in counts {
            let arg = [secs.to_string()];
            let mut workers: Vec<_> = (0..p).map(|_| spawn(t.role, &t.target, &arg)).collect();
            for w in &mut workers {
                w.send("GO");
            }
            let (mut rate, mut lat, mut errors) = (0.0, Vec::new(), 0);
            for w in workers {
                let r = w.finish();
                rate += r.get("FLOWS") as f64 / (r.get("ELAPSED_US").max(1) as f64 / 1e6);
                errors += r.get("ERRORS");
                lat.extend(r.lat_us);
            }
            let single = *single.get_or_insert(rate);
            let (p50, p99, max) = summary(lat);
            println!(
                "| {} | {p} | {rate:.0} | {:.2}x | {p50:.3} | {p99:.3} | {max:.1} | {errors} |",
                t.name,
                rate / single
            );
        }
    }
}
