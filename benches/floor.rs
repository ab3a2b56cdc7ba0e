//! The store against the minimal floor, interleaved in one run:
//!
//! - **minimal**: the least a multi-process flow store on SQLite writes (raw state as primary
//!   key, one INSERT transaction, one `DELETE ... RETURNING` transaction; see
//!   `common/minimal.rs`);
//! - **same-statements floor**: raw rusqlite running the store's own statements on the store's
//!   schema (`common::Floor`), what `benches/scale.rs` compares with;
//! - **store**: the library, on a new file;
//! - **store + flows_by_end**: the library on a file that also has the index of ended rows
//!   that `sweep --older-than` searched before it walked the table in id order: the cost of
//!   that index, measured in the same rounds.
//!
//! Each on its own file with the same pragmas, native (`begin` + `consume`) and SDK
//! (`save_code_verifier` + `promote` + `consume`) paths, `synchronous=NORMAL` and `FULL`, on an
//! empty file and on one already holding live rows. Blocks of flows of every variant run in
//! turn, round after round; each ratio is taken within a round, then the median of rounds.
//!
//! ```text
//! cargo bench --bench floor                 # 40 rounds, empty file and 100k rows
//! cargo bench --bench floor -- --quick      # CI: 3 short rounds, 2k rows
//! cargo bench --bench floor -- --rows 100000 --rounds 40 --block 200
//! ```
#![allow(missing_docs)] // a bench binary, not an API

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::minimal::Minimal;
use common::{fill_store, median, store_native_flow, store_sdk_flow, temp_db, Floor};
use oauth_state_store::{Durability, StoreOptions};

struct Sizes {
    rounds: usize,
    block: usize,
    rows: usize,
}

/// CPU time this thread has had (`CLOCK_THREAD_CPUTIME_ID`), nanoseconds.
fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// One way of running flows: its name, its path (native or SDK), a function that runs one.
type Variant<'a> = (&'static str, bool, Box<dyn FnMut() + 'a>);

/// A copy of `template` (a closed store file) at a new temp path, or a fresh path.
fn file_from(template: Option<&PathBuf>) -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = temp_db();
    if let Some(t) = template {
        std::fs::copy(t, &path).unwrap();
    }
    (dir, path)
}

/// The variants of each path (native, then SDK).
const PER_PATH: usize = 4;

/// The index of ended rows that `sweep --older-than` searched before (schema.sql until then).
const BY_END: &str = "CREATE INDEX IF NOT EXISTS flows_by_end ON flows \
     (coalesce(consumed_at, created_at)) WHERE status IN ('consumed', 'failed')";

/// Gives the store file at `path` (made by the store) the old index of ended rows.
fn with_old_index(path: &PathBuf) {
    let store = StoreOptions::default().open(path).unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(BY_END).unwrap();
}

/// `template`: the filled store file the stores and same-statements floors start from (`None`:
/// empty files made by the run itself).
fn run(sizes: &Sizes, durability: Durability, rows: usize, template: Option<&PathBuf>) {
    let full = durability == Durability::Full;
    let block = if full { sizes.block / 4 } else { sizes.block }.max(1);
    // Stores and same-statements floors start from copies of the filled store file; the
    // minimal floors fill their own schema; files 6 and 7 get the old index too.
    let files: Vec<_> = (0..8)
        .map(|i| file_from(template.filter(|_| !(4..6).contains(&i))))
        .collect();
    for file in &files[6..] {
        with_old_index(&file.1);
    }
    let open = |i: usize| {
        StoreOptions::default()
            .durability(durability)
            .open(&files[i].1)
            .unwrap()
    };
    let floor = |i: usize| {
        if template.is_some() {
            Floor::open_existing(&files[i].1, durability)
        } else {
            Floor::open(&files[i].1, durability)
        }
    };
    let (s1, s2) = (open(0), open(1));
    let (o1, o2) = (open(6), open(7));
    let (mut f1, mut f2) = (floor(2), floor(3));
    let mut m1 = Minimal::open(&files[4].1, durability, rows);
    let mut m2 = Minimal::open(&files[5].1, durability, rows);
    let mut variants: Vec<Variant<'_>> = vec![
        ("minimal", false, Box::new(|| drop(m1.native_flow()))),
        ("store", false, Box::new(|| drop(store_native_flow(&s1)))),
        (
            "same-statements floor",
            false,
            Box::new(|| drop(f1.native_flow())),
        ),
        (
            "store + flows_by_end (before)",
            false,
            Box::new(|| drop(store_native_flow(&o1))),
        ),
        ("minimal", true, Box::new(|| drop(m2.sdk_flow()))),
        ("store", true, Box::new(|| drop(store_sdk_flow(&s2)))),
        (
            "same-statements floor",
            true,
            Box::new(|| drop(f2.sdk_flow())),
        ),
        (
            "store + flows_by_end (before)",
            true,
            Box::new(|| drop(store_sdk_flow(&o2))),
        ),
    ];
    for (_, _, run) in &mut variants {
        for _ in 0..block {
            run();
        }
    }
    let n = variants.len();
    let (mut wall, mut cpu) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    for round in 0..sizes.rounds {
        for k in 0..n {
            // Rotate the order within each path's variants so that no variant always goes
            // first.
            let i = (k / PER_PATH) * PER_PATH + (k + round) % PER_PATH;
            let (w0, c0) = (Instant::now(), thread_cpu_ns());
            for _ in 0..block {
                (variants[i].2)();
            }
            wall[i].push(w0.elapsed().as_nanos() as f64 / block as f64 / 1000.0);
            cpu[i].push((thread_cpu_ns() - c0) as f64 / block as f64 / 1000.0);
        }
    }
    let ratio = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
    for (i, (name, sdk, _)) in variants.iter().enumerate() {
        let base = if *sdk { PER_PATH } else { 0 };
        let same = base + 2;
        println!(
            "| {} | {rows} | {} | {name} | {:.1} | {:.1} | {:.3}x | {:.3}x | {:.3}x |",
            if full { "Full" } else { "Normal" },
            if *sdk { "SDK" } else { "native" },
            median(wall[i].clone()),
            median(cpu[i].clone()),
            ratio(&wall[i], &wall[base]),
            ratio(&cpu[i], &cpu[base]),
            ratio(&wall[i], &wall[same]),
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut sizes = Sizes {
        rounds: 40,
        block: 200,
        rows: 100_000,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || it.next().expect("a number").parse::<usize>().unwrap();
        match a.as_str() {
            "--quick" => {
                sizes = Sizes {
                    rounds: 3,
                    block: 20,
                    rows: 2_000,
                }
            }
            "--rounds" => sizes.rounds = num(),
            "--block" => sizes.block = num(),
            "--rows" => sizes.rows = num(),
            other => panic!("unknown argument {other}"),
        }
    }
    println!(
        "SQLite {}, {} CPUs; {} rounds of {} flows of each variant (a quarter with Full)\n",
        rusqlite::version(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        sizes.rounds,
        sizes.block
    );
    println!("| durability | rows | path | variant | wall µs/flow | CPU µs/flow | wall vs minimal | CPU vs minimal | wall vs same-statements floor |");
    println!("|---|---:|---|---|---:|---:|---:|---:|---:|");
    let (_template_dir, template) = temp_db();
    fill_store(&template, sizes.rows);
    for durability in [Durability::Normal, Durability::Full] {
        run(&sizes, durability, 0, None);
        run(&sizes, durability, sizes.rows, Some(&template));
    }
}
