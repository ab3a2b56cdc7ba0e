//! `sweep`: exactly the expired rows, `--dry-run`, `--older-than`, `--vacuum`, while another
//! process consumes flows, and no progress drawn where no one sees it.

use std::io::{BufRead, BufReader, Read, Write};

use oauth_state_store::{
    BeginRequest, Clock, ManualClock, Status, Store, StoreOptions, SystemClock,
};
use serde_json::Value;

use super::{cli, counts, json, populate, removed_of, stderr, stdout, Populator, HOUR_MS, SERVERS};
use crate::common::{spawn_child, Fixture};

#[test]
fn sweep_removes_exactly_the_expired_rows_of_each_status() {
    let fx = Fixture::new();
    let (p, expired) = populate(&fx);
    drop(p);
    let out = cli(&fx.path, &["sweep", "--json", "--batch-size", "4"]);
    let doc = json(&out);
    assert_eq!(removed_of(&doc), expired);
    assert_eq!(doc["total"], 15);
    assert_eq!(doc["dry_run"], false);
    assert!(doc["batches"].as_u64().unwrap() >= 4, "{doc}");
    let left = counts(&fx.path);
    for status in Status::ALL {
        assert_eq!(left[&status], 2, "live {status} rows must stay");
    }
    let again = cli(&fx.path, &["sweep"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).starts_with("removed 0 rows"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn dry_run_counts_and_removes_nothing() {
    let fx = Fixture::new();
    let (p, expired) = populate(&fx);
    drop(p);
    let before = counts(&fx.path);
    let doc = json(&cli(&fx.path, &["sweep", "--dry-run", "--json"]));
    assert_eq!(removed_of(&doc), expired);
    assert_eq!(doc["dry_run"], true);
    let human = cli(&fx.path, &["sweep", "--dry-run"]);
    assert!(
        stdout(&human).starts_with("would remove 15 rows"),
        "{}",
        stdout(&human)
    );
    assert_eq!(counts(&fx.path), before);
}

#[test]
fn older_than_removes_finished_rows_before_they_expire() {
    let fx = Fixture::new();
    let mut p = Populator::new(&fx);
    p.at(-30 * 60_000);
    for status in [
        Status::Pending,
        Status::Completed,
        Status::Failed,
        Status::Consumed,
    ] {
        p.make(status, SERVERS[0]);
    }
    p.at(0);
    p.make(Status::Consumed, SERVERS[0]);
    p.make(Status::Failed, SERVERS[0]);
    drop(p);
    let preview = json(&cli(
        &fx.path,
        &["sweep", "--dry-run", "--older-than", "20m", "--json"],
    ));
    let doc = json(&cli(&fx.path, &["sweep", "--older-than", "20m", "--json"]));
    for d in [&preview, &doc] {
        assert_eq!(d["total"], 2, "{d}");
        assert_eq!(
            (
                d["removed"]["consumed"].as_u64(),
                d["removed"]["failed"].as_u64()
            ),
            (Some(1), Some(1))
        );
    }
    let left = counts(&fx.path);
    assert_eq!(
        (
            left[&Status::Pending],
            left[&Status::Completed],
            left[&Status::Failed],
            left[&Status::Consumed]
        ),
        (1, 1, 1, 1)
    );
}

const CHILD_DB: &str = "OAUTH_STATE_STORE_CLI_TEST_DB";

/// Child process: begins and consumes flows on the file until told to stop on stdin.
#[test]
#[ignore = "run by sweep_runs_while_another_process_consumes_flows"]
fn child_consumes_flows() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let store = Store::open(path).expect("child open");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let mut consumed = 0u64;
    while consumed < 50 || !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let flow = store
            .begin(BeginRequest::new(SERVERS[0]))
            .unwrap_or_else(|e| panic!("child begin: {e}"));
        store
            .consume(flow.state().secret())
            .unwrap_or_else(|e| panic!("child consume: {e}"));
        consumed += 1;
        if consumed == 1 {
            println!("ready");
            std::io::stdout().flush().unwrap();
        }
    }
    println!("consumed {consumed}");
}

#[test]
fn sweep_runs_while_another_process_consumes_flows() {
    const EXPIRED: u64 = 600;
    let fx = Fixture::new();
    {
        let store = StoreOptions::default()
            .clock(ManualClock::new(SystemClock.now_ms() - 2 * HOUR_MS))
            .open(&fx.path)
            .unwrap();
        for i in 0..EXPIRED {
            store
                .begin(BeginRequest::new(SERVERS[(i % 2) as usize]))
                .unwrap();
        }
    }
    let db = fx.path.to_str().unwrap();
    let mut child = spawn_child("sweep::child_consumes_flows", &[(CHILD_DB, db)]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "ready" {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "child ended before it was ready"
        );
    }
    let sweep = cli(&fx.path, &["sweep", "--json", "--batch-size", "10"]);
    child.stdin.take().unwrap().write_all(b"stop\n").unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "the consuming process failed: {rest}{err}"
    );
    let consumed: u64 = rest
        .lines()
        .find_map(|l| l.strip_prefix("consumed "))
        .and_then(|n| n.trim().parse().ok())
        .expect("child reports its count");
    assert!(consumed >= 50);
    let doc = json(&sweep);
    assert_eq!(doc["total"], EXPIRED, "exactly the expired rows");
    assert!(doc["batches"].as_u64().unwrap() >= EXPIRED / 10);
    assert_eq!(counts(&fx.path)[&Status::Consumed], consumed);
}

#[test]
fn vacuum_reclaims_space_and_says_when_another_process_holds_the_file() {
    let fx = Fixture::new();
    {
        let store = StoreOptions::default()
            .clock(ManualClock::new(SystemClock.now_ms() - 2 * HOUR_MS))
            .open(&fx.path)
            .unwrap();
        for i in 0..400 {
            store.begin(BeginRequest::new(SERVERS[i % 2])).unwrap();
        }
    }
    let doc = json(&cli(&fx.path, &["sweep", "--vacuum", "--json"]));
    assert_eq!(doc["total"], 400);
    let v = &doc["vacuum"];
    assert_eq!(
        (v["vacuumed"].as_bool(), v["wal_truncated"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(
        v["file_bytes_after"].as_u64() < v["file_bytes_before"].as_u64(),
        "{v}"
    );
    assert_eq!(v["wal_bytes_after"], 0);

    // A reader that keeps an old snapshot open keeps the WAL from being truncated.
    let store = Store::open(&fx.path).unwrap();
    store.begin(BeginRequest::new(SERVERS[0])).unwrap();
    let reader = rusqlite::Connection::open(&fx.path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM flows", [], |r| r.get(0))
        .unwrap();
    store.begin(BeginRequest::new(SERVERS[1])).unwrap();
    let out = cli(&fx.path, &["sweep", "--vacuum"]);
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("another process kept the database busy"),
        "{err}"
    );
    assert!(err.contains("sweep --vacuum"), "{err}");
    assert_eq!(err.lines().count(), 1);
    assert_eq!(counts(&fx.path)[&Status::Pending], 2, "live rows untouched");
}

#[test]
fn durations_take_weeks_refuse_zero_and_json_times_are_integers() {
    let fx = Fixture::new();
    drop(fx.store());
    let zero = cli(&fx.path, &["sweep", "--older-than", "0s"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(
        stderr(&zero).contains("must be positive"),
        "{}",
        stderr(&zero)
    );
    let doc = json(&cli(&fx.path, &["sweep", "--older-than", "2w", "--json"]));
    assert_eq!(doc["older_than_ms"], 14 * 24 * HOUR_MS);
    // Nothing to remove: no batch, and so no batch time either.
    assert_eq!(
        (&doc["batches"], &doc["longest_batch_us"]),
        (&Value::from(0), &Value::from(0))
    );
    assert!(doc.get("longest_batch_ms").is_none());

    let (p, _) = populate(&fx);
    drop(p);
    let doc = json(&cli(&fx.path, &["sweep", "--json"]));
    assert!(doc["batches"].as_u64().unwrap() > 0);
    assert!(doc["longest_batch_us"].is_u64(), "{doc}");
}

#[test]
fn a_long_sweep_prints_no_progress_when_stderr_is_not_a_terminal() {
    const EXPIRED: u64 = 1_000;
    let fx = Fixture::new();
    {
        let store = StoreOptions::default()
            .clock(ManualClock::new(SystemClock.now_ms() - 2 * HOUR_MS))
            .open(&fx.path)
            .unwrap();
        for _ in 0..EXPIRED {
            store.begin(BeginRequest::new(SERVERS[0])).unwrap();
        }
    }
    // One row a batch: the sweep lasts far longer than the moment before progress is drawn.
    let human = cli(&fx.path, &["sweep", "--batch-size", "1", "--vacuum"]);
    assert_eq!(human.status.code(), Some(0), "{}", stderr(&human));
    assert!(human.stderr.is_empty(), "{}", stderr(&human));
    assert!(stdout(&human).starts_with(&format!("removed {EXPIRED} rows in {EXPIRED} batches")));
    let store = StoreOptions::default()
        .clock(ManualClock::new(SystemClock.now_ms() - 2 * HOUR_MS))
        .open(&fx.path)
        .unwrap();
    for _ in 0..EXPIRED {
        store.begin(BeginRequest::new(SERVERS[1])).unwrap();
    }
    drop(store);
    let out = cli(&fx.path, &["sweep", "--batch-size", "1", "--json"]);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    assert_eq!(json(&out)["total"], EXPIRED);
}
