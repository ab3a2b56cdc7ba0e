//! Secrets at rest: once a flow is consumed, failed or swept, its verifier
//! and code are in neither the database file nor its `-wal`, before and after a checkpoint.
//!
//! With WAL, the insert's page image (verifier included) is a frame of the `-wal`; the
//! consume's update writes a new frame, but the old one stays until the WAL is checkpointed
//! and restarted. `secure_delete` zeroes the old cell inside the page, not old frames. By
//! default the old frames go at the next checkpoint and WAL restart (and at every sweep or
//! `Store::scrub`, whether a sweep removed rows or not);
//! with `immediate_wal_scrub` they go with the write that wipes the secret.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_error_clean, file_contains, Fixture};
use oauth_state_store::{BeginRequest, CodeVerifier, Error, State, Store};

const VERIFIER: &str = "atRestVERIFIERsecret-0123456789-abcdefghijklmnopq";
const STATE: &str = "atRest-STATE-secret-5a6b7c";
const CODE: &str = "atRest-CODE-secret-8d9e0f";

fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Where each secret of flow `i` is found on disk (db, -wal), as readable labels.
fn found(path: &Path, i: usize) -> Vec<String> {
    let (_, verifier, code) = secrets(i);
    let mut hits = Vec::new();
    for (what, secret) in [("verifier", verifier), ("code", code)] {
        for (file, p) in [("db", path.to_path_buf()), ("-wal", side(path, "-wal"))] {
            if file_contains(&p, secret.as_bytes()) {
                hits.push(format!("{what} in {file}"));
            }
        }
    }
    hits
}

fn secrets(i: usize) -> (String, String, String) {
    (
        format!("{STATE}-{i:03}"),
        format!("{VERIFIER}-{i:03}"),
        format!("{CODE}-{i:03}"),
    )
}

fn begin(store: &Store, i: usize) {
    let (state, verifier, _) = secrets(i);
    store
        .begin(
            BeginRequest::new("srv")
                .state(State::new(state).unwrap())
                .verifier(CodeVerifier::new(verifier).unwrap()),
        )
        .unwrap();
}

/// Flows 0 to 3 begun, 0 failed (its verifier wiped by reject), 2 completed (a code stored),
/// then the clock moved an hour on, past every expiry.
fn four_flows_an_hour_ago(fx: &Fixture, store: &Store) {
    for i in 0..4 {
        begin(store, i);
    }
    store
        .reject(&secrets(0).0, "access_denied", Some("the user said no"))
        .unwrap();
    store.complete(&secrets(2).0, &secrets(2).2).unwrap();
    fx.clock.advance(std::time::Duration::from_secs(3600));
}

/// A store that scrubs the `-wal` with every write that wipes a secret.
fn scrubbing(fx: &Fixture) -> Store {
    fx.options()
        .immediate_wal_scrub(true)
        .open(&fx.path)
        .unwrap()
}

fn checkpoint(path: &Path) {
    let raw = rusqlite::Connection::open(path).unwrap();
    let busy: i64 = raw
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint could not finish");
}

#[test]
fn a_stored_verifier_is_on_disk_so_the_scan_can_see_it() {
    // The control: without it the other tests could pass by looking in the wrong place.
    let fx = Fixture::new();
    let store = fx.store();
    begin(&store, 0);
    store.complete(&secrets(0).0, &secrets(0).2).unwrap();
    assert!(!found(&fx.path, 0).is_empty());
    checkpoint(&fx.path);
    assert_eq!(found(&fx.path, 0), ["verifier in db", "code in db"]);
}

#[test]
fn a_consumed_verifier_and_code_are_gone_from_the_db_and_the_wal() {
    let fx = Fixture::new();
    let store = scrubbing(&fx);
    // Neighbours on the same page, live before and after: their cells move around ours.
    for i in 0..5 {
        begin(&store, i);
    }
    store.complete(&secrets(2).0, &secrets(2).2).unwrap();
    let consumed = store.consume(&secrets(2).0).unwrap();
    assert_eq!(consumed.verifier.secret(), secrets(2).1);
    drop(consumed);
    assert_eq!(
        found(&fx.path, 2),
        Vec::<String>::new(),
        "before any checkpoint"
    );
    checkpoint(&fx.path);
    assert_eq!(found(&fx.path, 2), Vec::<String>::new(), "after checkpoint");
    // The other flows are untouched.
    assert!(found(&fx.path, 3).contains(&"verifier in db".to_string()));
    let e = store.consume(&secrets(2).0).unwrap_err();
    assert!(matches!(e, Error::AlreadyConsumed));
    assert_error_clean(&e, &[&secrets(2).0, &secrets(2).1, &secrets(2).2]);
}

#[test]
fn a_verifier_checkpointed_before_its_consume_is_gone_after_it() {
    // The insert reached the main file first; the consume's page must replace it there.
    let fx = Fixture::new();
    let store = scrubbing(&fx);
    for i in 0..3 {
        begin(&store, i);
    }
    checkpoint(&fx.path);
    assert!(found(&fx.path, 1).contains(&"verifier in db".to_string()));
    store.consume(&secrets(1).0).unwrap();
    assert_eq!(
        found(&fx.path, 1),
        Vec::<String>::new(),
        "before checkpoint"
    );
    checkpoint(&fx.path);
    assert_eq!(found(&fx.path, 1), Vec::<String>::new(), "after checkpoint");
}

#[test]
fn failed_expired_and_swept_flows_leave_no_secret() {
    let fx = Fixture::new();
    let store = scrubbing(&fx);
    four_flows_an_hour_ago(&fx, &store);
    // Flow 1 expired and found by consume (its row is removed); flow 2 completed (a code
    // stored) and flow 3 pending, both expired and swept.
    assert!(matches!(store.consume(&secrets(1).0), Err(Error::Expired)));
    let swept = store.sweep().unwrap();
    assert!(swept.removed.total() >= 2);
    for i in 0..4 {
        assert_eq!(found(&fx.path, i), Vec::<String>::new(), "flow {i}");
    }
    checkpoint(&fx.path);
    for i in 0..4 {
        assert_eq!(found(&fx.path, i), Vec::<String>::new(), "flow {i}");
    }
}

#[test]
fn a_reader_holding_an_old_snapshot_delays_the_scrub_until_the_next_write() {
    // The exact guarantee: an open read transaction elsewhere pins the old frames, so they
    // cannot go at once; they go at the next write that wipes a secret, or at compact.
    let fx = Fixture::new();
    let store = scrubbing(&fx);
    for i in 0..3 {
        begin(&store, i);
    }
    let reader = rusqlite::Connection::open(&fx.path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM flows", [], |r| r.get(0))
        .unwrap();
    store.consume(&secrets(0).0).unwrap();
    // The passive checkpoint copied the insert into the file up to the reader's snapshot,
    // and could copy nothing newer: the secret is still on disk, as expected.
    assert!(
        found(&fx.path, 0).contains(&"verifier in -wal".to_string()),
        "the reader pins the old frames"
    );
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    store.consume(&secrets(1).0).unwrap();
    for i in 0..2 {
        assert_eq!(found(&fx.path, i), Vec::<String>::new(), "flow {i}");
    }
    assert!(found(&fx.path, 2).contains(&"verifier in db".to_string()));
}

#[test]
fn by_default_a_consumed_verifier_leaves_the_wal_at_the_next_checkpoint() {
    let fx = Fixture::new();
    let store = fx.store();
    for i in 0..5 {
        begin(&store, i);
    }
    store.complete(&secrets(2).0, &secrets(2).2).unwrap();
    let consumed = store.consume(&secrets(2).0).unwrap();
    assert_eq!(consumed.verifier.secret(), secrets(2).1);
    drop(consumed);
    // The default promise, stated exactly: the row is wiped at once, the old page image of
    // the insert stays in the -wal until a checkpoint (the costly step this mode skips).
    assert_eq!(
        found(&fx.path, 2),
        ["verifier in -wal", "code in -wal"],
        "before any checkpoint"
    );
    checkpoint(&fx.path);
    assert_eq!(found(&fx.path, 2), Vec::<String>::new(), "after checkpoint");
    assert!(found(&fx.path, 3).contains(&"verifier in db".to_string()));
}

#[test]
fn by_default_invalidate_scrubs_the_flows_it_removes() {
    let fx = Fixture::new();
    let store = fx.store();
    for i in 0..3 {
        begin(&store, i);
    }
    store.complete(&secrets(1).0, &secrets(1).2).unwrap();
    let removed = store
        .invalidate("srv", None, oauth_state_store::InvalidateScope::All)
        .unwrap();
    assert_eq!(removed, 3);
    for i in 0..3 {
        assert_eq!(found(&fx.path, i), Vec::<String>::new(), "flow {i}");
    }
}

#[test]
fn by_default_a_sweep_scrubs_the_flows_it_removes() {
    let fx = Fixture::new();
    let store = fx.store();
    four_flows_an_hour_ago(&fx, &store);
    let swept = store.sweep().unwrap();
    assert_eq!(swept.removed.total(), 4);
    // The sweep ended with a checkpoint and a write that restarted and cut the WAL.
    for i in 0..4 {
        assert_eq!(found(&fx.path, i), Vec::<String>::new(), "flow {i}");
    }
}

#[test]
fn by_default_a_sweep_that_removes_nothing_still_scrubs_a_consumed_verifier() {
    // The promise "after a sweep" holds for every sweep, not only for
    // one that removed rows.
    let fx = Fixture::new();
    let store = fx.store();
    for i in 0..5 {
        begin(&store, i);
    }
    store.complete(&secrets(2).0, &secrets(2).2).unwrap();
    store.consume(&secrets(2).0).unwrap();
    assert!(
        !found(&fx.path, 2).is_empty(),
        "the control: still in the -wal"
    );
    let swept = store.sweep().unwrap();
    assert_eq!(swept.removed.total(), 0);
    assert_eq!(found(&fx.path, 2), Vec::<String>::new(), "after the sweep");
    assert!(found(&fx.path, 3).contains(&"verifier in db".to_string()));
}

#[test]
fn scrubbing_a_verifier_checkpointed_by_an_unrelated_sweep_is_gone_after_its_consume() {
    // Begin G; a sweep of another, expired flow copies G's page into the
    // database file; then consuming G must not leave its verifier there.
    let fx = Fixture::new();
    let store = scrubbing(&fx);
    store
        .begin(BeginRequest::new("srv").ttl(std::time::Duration::from_secs(1)))
        .unwrap();
    begin(&store, 0);
    fx.clock.advance(std::time::Duration::from_secs(2));
    assert_eq!(store.sweep().unwrap().removed.total(), 1);
    assert!(found(&fx.path, 0).contains(&"verifier in db".to_string()));
    store.consume(&secrets(0).0).unwrap();
    assert_eq!(
        found(&fx.path, 0),
        Vec::<String>::new(),
        "after the consume"
    );
    checkpoint(&fx.path);
    assert_eq!(found(&fx.path, 0), Vec::<String>::new(), "after checkpoint");
}

/// What the default promises, stated exactly: begin A (ttl 1 s) and B; two seconds later a
/// sweep removes A, and its scrub checkpoints B's live page, verifier included, into the
/// database file. Consuming B wipes the verifier in a new page image, in the `-wal`; the
/// database file keeps the old image until the next checkpoint (here the next scrub), which
/// copies the wiped page over it. (The promise used to say "never in the database
/// file"; keeping that promise costs a checkpoint, two syncs, after every consume, which is
/// what `immediate_wal_scrub` does: see
/// `scrubbing_a_verifier_checkpointed_by_an_unrelated_sweep_is_gone_after_its_consume`.)
#[test]
fn by_default_a_verifier_a_sweep_checkpointed_stays_in_the_database_file_until_the_next_scrub() {
    let fx = Fixture::new();
    let store = fx.store();
    store
        .begin(BeginRequest::new("srv").ttl(std::time::Duration::from_secs(1)))
        .unwrap();
    begin(&store, 0);
    fx.clock.advance(std::time::Duration::from_secs(2));
    assert_eq!(store.sweep().unwrap().removed.total(), 1);
    assert_eq!(found(&fx.path, 0), ["verifier in db"], "live, checkpointed");
    store.consume(&secrets(0).0).unwrap();
    assert_eq!(
        found(&fx.path, 0),
        ["verifier in db"],
        "consumed: the old image in the database file, nothing in the -wal"
    );
    store.scrub().unwrap();
    assert_eq!(found(&fx.path, 0), Vec::<String>::new(), "after the scrub");
}

#[test]
fn scrub_on_demand_clears_a_consumed_verifier_from_the_wal() {
    let fx = Fixture::new();
    let store = fx.store();
    for i in 0..3 {
        begin(&store, i);
    }
    store.consume(&secrets(1).0).unwrap();
    assert!(
        !found(&fx.path, 1).is_empty(),
        "the control: still in the -wal"
    );
    store.scrub().unwrap();
    assert_eq!(found(&fx.path, 1), Vec::<String>::new(), "after scrub");
    assert!(found(&fx.path, 2).contains(&"verifier in db".to_string()));
}
