//! The store at scale, across real processes: contention, shared consumes, sweep of many
//! expired rows, the cost of opening, and memory. Prints markdown tables (BENCHMARKS.md).
//!
//! ```text
//! cargo bench --bench scale -- [--quick | --full] [--only SECTION,...]
//! ```
//!
//! `--quick` runs tiny sizes (CI runs it so that this file cannot rot); the default sweeps 10k
//! and 100k expired rows; `--full` adds 1M (`--sweep-rows N,N` and `--sweep-batch N` choose;
//! `--procs N,N` the process counts of `contention` and `shared`; `--lock-wait aging` opens
//! every store of the run with `LockWait::Aging`).
//! Sections: `ratio`, `contention`, `shared`, `sweep`, `finished` (`sweep --older-than`),
//! `open`, `memory`. Children are this
//! binary run again with `--child ROLE`; secrets travel to them on stdin and are never printed.
//! Everything lives in temp dirs that are removed at the end.
#![allow(missing_docs)] // a bench binary, not an API

mod common;

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::child::{Report, Worker};
use common::{
    populate, store_native_flow, store_sdk_flow, summary, temp_db, Floor, MemStore, RAW_DELETE,
};
use oauth_state_store::{
    BeginRequest, Clock, Durability, Error, LockWait, Store, StoreOptions, SystemClock,
};
use rusqlite::{Connection, TransactionBehavior};

use common::{CLIENT, SERVER};
const DB_ENV: &str = "OSS_BENCH_DB";

// ---- sizes ------------------------------------------------------------------------------------

struct Sizes {
    sweep_batch: u32,
    ratio_rounds: usize,
    ratio_block: usize,
    procs: Vec<usize>,
    flow_secs: f64,
    shared_states: usize,
    sweep_rows: Vec<usize>,
    open_runs: usize,
    memory_flows: usize,
    memory_consumes: usize,
}

impl Sizes {
    fn quick() -> Sizes {
        Sizes {
            sweep_batch: 500,
            ratio_rounds: 3,
            ratio_block: 20,
            procs: vec![1, 2, 4],
            flow_secs: 0.3,
            shared_states: 100,
            sweep_rows: vec![2_000],
            open_runs: 5,
            memory_flows: 2_000,
            memory_consumes: 500,
        }
    }
    fn default_sizes() -> Sizes {
        Sizes {
            sweep_batch: 500,
            ratio_rounds: 40,
            ratio_block: 200,
            procs: vec![1, 2, 4, 8, 16],
            flow_secs: 3.0,
            shared_states: 2_000,
            sweep_rows: vec![10_000, 100_000],
            open_runs: 50,
            memory_flows: 100_000,
            memory_consumes: 10_000,
        }
    }
}

// ---- small helpers ----------------------------------------------------------------------------

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// Runs `f`, pushing how long it took (µs) onto `lat`.
fn timed<T>(lat: &mut Vec<u64>, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    lat.push(t.elapsed().as_micros() as u64);
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Opens the store at `path`, begins `n` flows and closes it again; returns their states.
fn pending_states(path: &Path, n: usize) -> Vec<String> {
    let store = Store::open(path).unwrap();
    (0..n)
        .map(|_| {
            let f = store
                .begin(BeginRequest::new(SERVER).client_id(CLIENT))
                .unwrap();
            f.state().secret().to_owned()
        })
        .collect()
}

// ---- children ---------------------------------------------------------------------------------

/// Starts a child: this binary with `--child ROLE ARGS`, the database in `OSS_BENCH_DB`.
fn spawn(db: &Path, role: &str, args: &[String]) -> Worker {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.arg("--child").arg(role).args(args).env(DB_ENV, db);
    Worker::start(cmd)
}

/// Reads payload lines up to `END`, says `READY`, and waits for `GO`.
fn child_handshake() -> (Vec<String>, std::io::StdinLock<'static>) {
    let mut stdin = std::io::stdin().lock();
    let mut payload = Vec::new();
    loop {
        let mut line = String::new();
        stdin.read_line(&mut line).expect("stdin");
        let line = line.trim_end();
        if line == "END" {
            break;
        }
        payload.push(line.to_owned());
    }
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    stdin.read_line(&mut go).expect("stdin");
    assert_eq!(go.trim_end(), "GO");
    (payload, stdin)
}

fn print_lat(key: &str, us: &[u64]) {
    let mut line = String::with_capacity(us.len() * 6 + 8);
    line.push_str(key);
    for u in us {
        line.push(' ');
        line.push_str(&u.to_string());
    }
    println!("{line}");
}

/// `--lock-wait aging`: the stores of this run (the children inherit it) wait with
/// `LockWait::Aging`.
const LOCK_WAIT_ENV: &str = "OSS_BENCH_LOCK_WAIT";

/// The options of the stores that run flows: the default, or `--lock-wait`'s.
fn options() -> StoreOptions {
    match std::env::var(LOCK_WAIT_ENV).as_deref() {
        Ok("aging") => StoreOptions::default().lock_wait(LockWait::Aging),
        _ => StoreOptions::default(),
    }
}

fn open_child_store() -> Store {
    options()
        .open(std::env::var(DB_ENV).expect(DB_ENV))
        .expect("open store")
}

/// Full flows (begin + consume) for `secs`; reports consume latencies and errors.
fn child_flows(secs: f64) {
    let store = open_child_store();
    let _ = child_handshake();
    let (deadline, start) = (Duration::from_secs_f64(secs), Instant::now());
    let (mut flows, mut errors, mut lat) = (0u64, 0u64, Vec::new());
    while start.elapsed() < deadline {
        let Ok(flow) = store.begin(BeginRequest::new(SERVER).client_id(CLIENT)) else {
            errors += 1;
            continue;
        };
        timed(&mut lat, || match store.consume(flow.state().secret()) {
            Ok(_) => flows += 1,
            Err(_) => errors += 1,
        });
    }
    println!("FLOWS {flows}");
    println!("ERRORS {errors}");
    println!("ELAPSED_US {}", start.elapsed().as_micros());
    print_lat("LAT", &lat);
}

/// Consumes every shared state, in the order given; counts wins and replays.
fn child_shared() {
    let store = open_child_store();
    let (states, _stdin) = child_handshake();
    let (mut wins, mut replays, mut errors, mut lat) = (0u64, 0u64, 0u64, Vec::new());
    for state in &states {
        timed(&mut lat, || match store.consume(state) {
            Ok(_) => wins += 1,
            Err(Error::AlreadyConsumed) => replays += 1,
            Err(_) => errors += 1,
        });
    }
    println!("WINS {wins}");
    println!("REPLAYS {replays}");
    println!("ERRORS {errors}");
    print_lat("LAT", &lat);
}

/// Full flows until `STOP` arrives; reports consume (LAT) and begin (LAT2) latencies.
fn child_probe() {
    let store = open_child_store();
    drop(child_handshake());
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        stop2.store(true, Ordering::SeqCst);
    });
    let (mut flows, mut errors, mut lat, mut lat_begin) = (0u64, 0u64, Vec::new(), Vec::new());
    while !stop.load(Ordering::SeqCst) {
        let flow = timed(&mut lat_begin, || {
            store.begin(BeginRequest::new(SERVER).client_id(CLIENT))
        });
        let Ok(flow) = flow else {
            errors += 1;
            continue;
        };
        timed(&mut lat, || match store.consume(flow.state().secret()) {
            Ok(_) => flows += 1,
            Err(_) => errors += 1,
        });
    }
    reader.join().unwrap();
    println!("FLOWS {flows}");
    println!("ERRORS {errors}");
    print_lat("LAT", &lat);
    print_lat("LAT2", &lat_begin);
}

/// What a CLI pays: open an existing file, consume one state (from stdin), exit.
fn child_open_consume() {
    let mut state = String::new();
    std::io::stdin().read_line(&mut state).expect("stdin");
    let t = Instant::now();
    let store = open_child_store();
    let ok = store.consume(state.trim_end()).is_ok();
    println!("INPROC_US {}", t.elapsed().as_micros());
    println!("OK {}", u64::from(ok));
}

/// Holds `n` pending flows (their states in memory) and consumes `k` of them; reports VmHWM.
fn child_memory(n: usize, k: usize) {
    println!("HWM_START {}", vm_hwm_kib());
    let store = open_child_store();
    println!("HWM_OPEN {}", vm_hwm_kib());
    let flows: Vec<_> = (0..n)
        .map(|_| {
            store
                .begin(BeginRequest::new(SERVER).client_id(CLIENT))
                .unwrap()
        })
        .collect();
    println!("HWM_BEGUN {}", vm_hwm_kib());
    let mut lat = Vec::with_capacity(k);
    for flow in flows.iter().take(k) {
        timed(&mut lat, || {
            store.consume(flow.state().secret()).unwrap();
        });
    }
    println!("HWM_CONSUMED {}", vm_hwm_kib());
    print_lat("LAT", &lat);
}

fn run_child(role: &str, args: &[String]) {
    match role {
        "flows" => child_flows(args[0].parse().unwrap()),
        "shared" => child_shared(),
        "probe" => child_probe(),
        "open-consume" => child_open_consume(),
        "noop" => {}
        "memory" => child_memory(args[0].parse().unwrap(), args[1].parse().unwrap()),
        other => panic!("unknown child role {other}"),
    }
}

// ---- 1-2. per-flow cost, interleaved --------------------------------------------------------

/// CPU time this thread has had (`CLOCK_THREAD_CPUTIME_ID`), nanoseconds.
fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// One way of running flows: a function that runs one.
type Variant<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Blocks of flows of every variant in turn, round after round, so that a noisy neighbour
/// hits them all alike; the ratio to the floor is taken within each round, then the median.
fn ratio(sizes: &Sizes) {
    println!(
        "\n### Per-flow cost, interleaved: {} rounds of {} flows of each variant, one file each\n",
        sizes.ratio_rounds, sizes.ratio_block
    );
    println!("| durability | variant | wall µs/flow (median round) | CPU µs/flow | wall vs floor (median of rounds) | CPU vs floor |");
    println!("|---|---|---:|---:|---:|---:|");
    for durability in [Durability::Normal, Durability::Full] {
        let full = durability == Durability::Full;
        let block = if full {
            sizes.ratio_block / 4
        } else {
            sizes.ratio_block
        }
        .max(1);
        let dirs: Vec<_> = (0..5).map(|_| temp_db()).collect();
        let open = |i: usize| {
            StoreOptions::default()
                .durability(durability)
                .immediate_wal_scrub(i == 4)
                .open(&dirs[i].1)
                .unwrap()
        };
        let (s1, s2, scrubbing) = (open(0), open(1), open(4));
        let mut f1 = Floor::open(&dirs[2].1, durability);
        let mut f2 = Floor::open(&dirs[3].1, durability);
        let mem = MemStore::default();
        let mut variants: Vec<Variant<'_>> = vec![
            ("floor native", Box::new(|| drop(f1.native_flow()))),
            ("store native", Box::new(|| drop(store_native_flow(&s1)))),
            ("floor SDK", Box::new(|| drop(f2.sdk_flow()))),
            ("store SDK", Box::new(|| drop(store_sdk_flow(&s2)))),
            (
                "store native, immediate_wal_scrub",
                Box::new(|| drop(store_native_flow(&scrubbing))),
            ),
        ];
        if !full {
            variants.push(("HashMap native", Box::new(|| drop(mem.native_flow()))));
            variants.push(("HashMap SDK", Box::new(|| drop(mem.sdk_flow()))));
        }
        // Warm up: caches, statements, the first pages of each file.
        for (_, run) in &mut variants {
            for _ in 0..block {
                run();
            }
        }
        let n = variants.len();
        let (mut wall, mut cpu) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        for round in 0..sizes.ratio_rounds {
            for k in 0..n {
                // Rotate the order within each pair so neither side always goes first.
                let i = if round % 2 == 1 && k ^ 1 < n {
                    k ^ 1
                } else {
                    k
                };
                let (w0, c0) = (Instant::now(), thread_cpu_ns());
                for _ in 0..block {
                    (variants[i].1)();
                }
                wall[i].push(w0.elapsed().as_nanos() as f64 / block as f64 / 1000.0);
                cpu[i].push((thread_cpu_ns() - c0) as f64 / block as f64 / 1000.0);
            }
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let floor_of = |i: usize| if variants[i].0.ends_with("SDK") { 2 } else { 0 };
        for (i, (name, _)) in variants.iter().enumerate() {
            let f = floor_of(i);
            let wr = median(wall[i].iter().zip(&wall[f]).map(|(a, b)| a / b).collect());
            let cr = median(cpu[i].iter().zip(&cpu[f]).map(|(a, b)| a / b).collect());
            println!(
                "| {} | {name} | {:.1} | {:.1} | {wr:.3}x | {cr:.3}x |",
                if full { "Full" } else { "Normal" },
                median(wall[i].clone()),
                median(cpu[i].clone()),
            );
        }
    }
}

// ---- 3. contention ----------------------------------------------------------------------------

fn contention(sizes: &Sizes) {
    println!("\n### Contention: P processes on one file, each running full flows (begin + consume) for {:.1} s\n", sizes.flow_secs);
    println!(
        "| processes | flows/s (all) | vs 1 process | consume p50 ms | p99 ms | max ms | errors |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut single = None;
    for &p in &sizes.procs {
        let (_dir, path) = temp_db();
        drop(Store::open(&path).unwrap());
        let secs = sizes.flow_secs.to_string();
        let mut workers: Vec<_> = (0..p)
            .map(|_| spawn(&path, "flows", std::slice::from_ref(&secs)))
            .collect();
        for w in &mut workers {
            w.load(&[]);
        }
        for w in &mut workers {
            w.send("GO");
        }
        let (mut rate, mut lat, mut errors) = (0.0, Vec::new(), 0);
        for w in workers {
            let r = w.finish();
            rate += r.get("FLOWS") as f64 / (r.get("ELAPSED_US") as f64 / 1e6);
            errors += r.get("ERRORS");
            lat.extend(r.lat_us);
        }
        let single = *single.get_or_insert(rate);
        let (p50, p99, max) = summary(lat);
        println!(
            "| {p} | {rate:.0} | {:.2}x | {p50:.3} | {p99:.3} | {max:.1} | {errors} |",
            rate / single
        );
    }
}

// ---- 3b. shared consumes ----------------------------------------------------------------------

fn shared(sizes: &Sizes) {
    let m = sizes.shared_states;
    println!("\n### Shared states: {m} pending flows, every process consumes every one of them (same order)\n");
    println!("| processes | wins (must be {m}) | already consumed | errors | consume p50 ms | p99 ms | max ms | wall ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &p in &sizes.procs {
        let (_dir, path) = temp_db();
        let states = pending_states(&path, m);
        let mut workers: Vec<_> = (0..p).map(|_| spawn(&path, "shared", &[])).collect();
        for w in &mut workers {
            w.load(&states);
        }
        let t = Instant::now();
        for w in &mut workers {
            w.send("GO");
        }
        let (mut wins, mut replays, mut errors, mut lat) = (0, 0, 0, Vec::new());
        let reports: Vec<_> = workers.into_iter().map(Worker::finish).collect();
        let wall = t.elapsed();
        for r in reports {
            wins += r.get("WINS");
            replays += r.get("REPLAYS");
            errors += r.get("ERRORS");
            lat.extend(r.lat_us);
        }
        let (p50, p99, max) = summary(lat);
        println!(
            "| {p} | {wins} | {replays} | {errors} | {p50:.3} | {p99:.3} | {max:.1} | {:.0} |",
            ms(wall)
        );
        assert_eq!(wins as usize, m, "every state consumed exactly once");
    }
}

// ---- 4. sweep at scale ------------------------------------------------------------------------

/// A clock that notes when each write transaction starts (the store asks the time right
/// after `BEGIN IMMEDIATE` succeeds), to time each sweep batch from outside the library.
#[derive(Debug, Clone, Default)]
struct BatchClock(Arc<Mutex<Vec<Instant>>>);

impl Clock for BatchClock {
    fn now_ms(&self) -> i64 {
        self.0.lock().unwrap().push(Instant::now());
        SystemClock.now_ms()
    }
}

fn start_probe(path: &Path) -> Worker {
    let mut w = spawn(path, "probe", &[]);
    w.load(&[]);
    w.send("GO");
    // Let it reach its steady state before the delete begins.
    std::thread::sleep(Duration::from_millis(100));
    w
}

fn stop_probe(mut w: Worker) -> Report {
    w.send("STOP");
    w.finish()
}

fn sweep(sizes: &Sizes) {
    println!("\n### Sweep: N expired rows among N/10 live ones; `Store::sweep` ({}-row batches) vs one raw `DELETE ... WHERE expires_at <= ?`, each while another process runs full flows\n", sizes.sweep_batch);
    println!("| expired rows | sweep ms | raw DELETE ms | ratio | batches | longest lock hold ms | longest batch ms | p99 batch ms | probe consume p99 ms (sweep) | max ms | probe errors | probe consume p99 ms (raw DELETE) | max ms | probe errors |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &sizes.sweep_rows {
        let (dir, path) = temp_db();
        populate(&path, n, (n / 10).max(100));
        let raw_path = dir.path().join("raw.db");
        std::fs::copy(&path, &raw_path).unwrap();

        // The library's sweep, timed batch by batch.
        let clock = BatchClock::default();
        let store = options()
            .clock(clock.clone())
            .sweep_batch_size(sizes.sweep_batch)
            .open(&path)
            .unwrap();
        let probe = start_probe(&path);
        clock.0.lock().unwrap().clear();
        let t = Instant::now();
        let report = store.sweep().unwrap();
        let end = Instant::now();
        let sweep_time = end - t;
        let probe_sweep = stop_probe(probe);
        let mut starts = std::mem::take(&mut *clock.0.lock().unwrap());
        starts.push(end);
        let mut batch_us: Vec<u64> = starts
            .windows(2)
            .map(|w| (w[1] - w[0]).as_micros() as u64)
            .collect();
        let longest = batch_us.iter().copied().max().unwrap_or(0) as f64 / 1000.0;
        batch_us.sort_unstable();
        let (_, batch_p99, _) = summary(batch_us);
        assert_eq!(report.removed.total(), n as u64);
        drop(store);

        // The floor: one DELETE in one transaction, same pragmas as the store's connections.
        let mut conn = Connection::open(&raw_path).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.pragma_update(None, "secure_delete", "ON").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        let probe = start_probe(&raw_path);
        let t = Instant::now();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let deleted = tx.execute(RAW_DELETE, [now_ms()]).unwrap();
        tx.commit().unwrap();
        let raw_time = t.elapsed();
        let probe_raw = stop_probe(probe);
        assert!(deleted >= n);

        let (_, sp99, smax) = summary(probe_sweep.lat_us.clone());
        let (_, rp99, rmax) = summary(probe_raw.lat_us.clone());
        println!(
            "| {n} | {:.0} | {:.0} | {:.2}x | {} | {:.1} | {longest:.1} | {batch_p99:.1} | {sp99:.2} | {smax:.1} | {} | {rp99:.1} | {rmax:.1} | {} |",
            ms(sweep_time),
            ms(raw_time),
            sweep_time.as_secs_f64() / raw_time.as_secs_f64(),
            report.batches,
            ms(report.longest_batch),
            probe_sweep.get("ERRORS"),
            probe_raw.get("ERRORS"),
        );
    }
}

/// `sweep --older-than`: the table walked in id order in chunks (no index of ended rows), each
/// chunk one short transaction, while another process runs full flows.
fn sweep_finished(sizes: &Sizes) {
    println!("\n### Sweep --older-than: N rows ended an hour ago (a third of them consumed) among N/10 live ones, walked in id order; `Store::sweep_finished(1 min)` ({} rows deleted at most a transaction) while another process runs full flows\n", sizes.sweep_batch);
    println!("| rows | removed | sweep ms | transactions that removed rows | longest lock hold ms | probe consume p99 ms | max ms | probe errors |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &sizes.sweep_rows {
        let (_dir, path) = temp_db();
        populate(&path, n, (n / 10).max(100));
        let store = options()
            .sweep_batch_size(sizes.sweep_batch)
            .open(&path)
            .unwrap();
        let probe = start_probe(&path);
        let t = Instant::now();
        let report = store.sweep_finished(Duration::from_secs(60)).unwrap();
        let took = t.elapsed();
        let probe = stop_probe(probe);
        let (_, p99, max) = summary(probe.lat_us.clone());
        println!(
            "| {n} | {} | {:.0} | {} | {:.1} | {p99:.2} | {max:.1} | {} |",
            report.removed.total(),
            ms(took),
            report.batches,
            ms(report.longest_batch),
            probe.get("ERRORS"),
        );
        assert_eq!(probe.get("ERRORS"), 0, "the probe saw errors");
        assert!(report.removed.consumed > 0);
    }
}

// ---- 5. open cost -----------------------------------------------------------------------------

fn open_cost(sizes: &Sizes) {
    let runs = sizes.open_runs;
    let (_dir, path) = temp_db();
    let mut states = pending_states(&path, runs * 4);
    println!("\n### Open cost: open an existing file and consume one flow ({runs} runs each)\n");
    println!("| what | p50 ms | max ms |");
    println!("|---|---:|---:|");

    let (mut open_only, mut first, mut second, mut close, mut inproc) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let us = |t: Instant| t.elapsed().as_micros() as u64;
    for _ in 0..runs {
        let (a, b) = (states.pop().unwrap(), states.pop().unwrap());
        let t = Instant::now();
        let store = Store::open(&path).unwrap();
        open_only.push(us(t));
        let t1 = Instant::now();
        store.consume(&a).unwrap();
        first.push(us(t1));
        inproc.push(us(t));
        let t2 = Instant::now();
        store.consume(&b).unwrap();
        second.push(us(t2));
        let t3 = Instant::now();
        drop(store);
        close.push(us(t3));
    }
    let row = |what: &str, us: Vec<u64>| {
        let (p50, _, max) = summary(us);
        println!("| {what} | {p50:.3} | {max:.2} |");
    };
    row("in-process: `Store::open`", open_only);
    row("in-process: the first `consume` after it", first);
    row("in-process: `Store::open` + first `consume`", inproc);
    row("in-process: a second `consume`", second);
    row("in-process: drop (last connection closes the WAL)", close);

    let (mut wall, mut child_inproc, mut noop) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        spawn(&path, "noop", &[]).finish();
        noop.push(t.elapsed().as_micros() as u64);
        let state = states.pop().unwrap();
        let t = Instant::now();
        let mut w = spawn(&path, "open-consume", &[]);
        w.send(&state);
        let r = w.finish();
        wall.push(t.elapsed().as_micros() as u64);
        assert_eq!(r.get("OK"), 1);
        child_inproc.push(r.get("INPROC_US"));
    }
    row("fresh process: spawn + exit, doing nothing", noop);
    row("fresh process: spawn + open + consume + exit", wall);
    row(
        "fresh process: open + consume, timed inside it",
        child_inproc,
    );
}

// ---- 6. memory --------------------------------------------------------------------------------

fn memory(sizes: &Sizes) {
    let (n, k) = (sizes.memory_flows, sizes.memory_consumes);
    let (_dir, path) = temp_db();
    drop(Store::open(&path).unwrap());
    let w = spawn(&path, "memory", &[n.to_string(), k.to_string()]);
    let r = w.finish();
    println!(
        "\n### Memory: one process begins {n} flows (keeping their states) and consumes {k}\n"
    );
    println!("| stage | peak RSS (VmHWM) MiB |");
    println!("|---|---:|");
    for (key, what) in [
        ("HWM_START", "process start"),
        ("HWM_OPEN", "after `Store::open`"),
        ("HWM_BEGUN", "after the begins"),
        ("HWM_CONSUMED", "after the consumes"),
    ] {
        println!("| {what} | {:.1} |", r.get(key) as f64 / 1024.0);
    }
    let (p50, p99, max) = summary(r.lat_us);
    println!(
        "\nconsume with {n} rows in the file: p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.1} ms"
    );
}

// ---- main -------------------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; ignore it.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--child") {
        run_child(&args[1], &args[2..]);
        return;
    }
    let mut sizes = Sizes::default_sizes();
    let mut only: Option<Vec<String>> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => sizes = Sizes::quick(),
            "--full" => sizes.sweep_rows = vec![10_000, 100_000, 1_000_000],
            "--only" => {
                only = Some(
                    it.next()
                        .expect("--only SECTIONS")
                        .split(',')
                        .map(str::to_owned)
                        .collect(),
                )
            }
            "--procs" => {
                sizes.procs = it
                    .next()
                    .expect("--procs N,N")
                    .split(',')
                    .map(|n| n.parse().unwrap())
                    .collect()
            }
            "--lock-wait" => match it.next().map(String::as_str) {
                Some("aging") => std::env::set_var(LOCK_WAIT_ENV, "aging"),
                Some("backoff") => std::env::remove_var(LOCK_WAIT_ENV),
                other => panic!("--lock-wait aging|backoff, not {other:?}"),
            },
            "--sweep-batch" => {
                sizes.sweep_batch = it.next().expect("--sweep-batch N").parse().unwrap()
            }
            "--sweep-rows" => {
                sizes.sweep_rows = it
                    .next()
                    .expect("--sweep-rows N,N")
                    .split(',')
                    .map(|n| n.parse().unwrap())
                    .collect()
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let want = |s: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == s));
    println!(
        "SQLite {}, {} CPUs",
        rusqlite::version(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if want("ratio") {
        ratio(&sizes);
    }
    if want("contention") {
        contention(&sizes);
    }
    if want("shared") {
        shared(&sizes);
    }
    if want("sweep") {
        sweep(&sizes);
    }
    if want("finished") {
        sweep_finished(&sizes);
    }
    if want("open") {
        open_cost(&sizes);
    }
    if want("memory") {
        memory(&sizes);
    }
}
