//! Real OS processes sharing one database file.

mod common;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{lines_with, run_child, spawn_child, Fixture};
use oauth_state_store::{BeginRequest, Error, Store};

/// Child: consumes the state read from stdin on the file named by `OSS_DB`, and prints the
/// challenge of the verifier it got (public), never the verifier.
#[test]
#[ignore = "run as a child process by the tests in this file"]
fn child_consume() {
    let path = std::env::var("OSS_DB").expect("OSS_DB");
    let mut state = String::new();
    std::io::stdin().read_to_string(&mut state).unwrap();
    let store = Store::open(&path).unwrap();
    match store.consume(state.trim()) {
        Ok(flow) => println!("CONSUMED {}", flow.verifier.challenge()),
        Err(e) => println!("ERROR {e:?}"),
    }
}

/// Child: waits for the `OSS_GO` file to appear, opens the store, prints its id and mode.
#[test]
#[ignore = "run as a child process by the tests in this file"]
fn child_open() {
    let path = std::env::var("OSS_DB").expect("OSS_DB");
    let go = std::env::var("OSS_GO").expect("OSS_GO");
    let start = Instant::now();
    while !Path::new(&go).exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "no go signal");
        std::thread::sleep(Duration::from_millis(1));
    }
    let store = Store::open(&path).unwrap();
    let flow = store.begin(BeginRequest::new("srv")).unwrap();
    store.consume(flow.state().secret()).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    println!("STORE_ID {}", store.store_id());
    println!("JOURNAL {mode}");
}

#[test]
fn a_second_process_consumes_a_flow_begun_by_the_first() {
    let fx = Fixture::new();
    let store = Store::open(&fx.path).unwrap();
    let flow = store
        .begin(BeginRequest::new("srv").client_id("cli"))
        .unwrap();
    let db = fx.path.to_str().unwrap();
    let out = run_child("child_consume", &[("OSS_DB", db)], flow.state().secret());
    assert!(out.status.success(), "child failed: {out:?}");
    assert_eq!(
        lines_with(&out, "CONSUMED "),
        vec![flow.code_challenge().to_string()],
        "child output: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(matches!(
        store.consume(flow.state().secret()),
        Err(Error::AlreadyConsumed)
    ));
    // And a replay in yet another process is told it was already used.
    let again = run_child("child_consume", &[("OSS_DB", db)], flow.state().secret());
    assert_eq!(
        lines_with(&again, "ERROR "),
        vec!["AlreadyConsumed".to_owned()]
    );
}

#[test]
fn eight_processes_open_the_same_fresh_file_at_once() {
    let fx = Fixture::new();
    let go = fx.dir.path().join("go");
    let db = fx.path.to_str().unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            spawn_child(
                "child_open",
                &[("OSS_DB", db), ("OSS_GO", go.to_str().unwrap())],
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(&go, b"").unwrap();
    let mut ids = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a child failed to open: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(lines_with(&out, "JOURNAL "), vec!["wal".to_owned()]);
        ids.extend(lines_with(&out, "STORE_ID "));
    }
    assert_eq!(ids.len(), 8);
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "the schema was created more than once: {ids:?}"
    );
    let store = Store::open(&fx.path).unwrap();
    assert_eq!(store.store_id(), ids[0]);
    assert_eq!(store.stats().unwrap().counts.consumed, 8);
}
