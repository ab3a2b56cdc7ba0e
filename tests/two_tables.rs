//! Schema 7 keeps the rows of an older file in the old `flows` table and writes new flows to
//! `flow_rows` (migration 0007, README "The file format"). These tests build a schema-6 file
//! with rows in it, as a schema-6 program left it, open it with this code, and check that every
//! operation finds, changes and removes the old rows as it does new ones, and that a state key
//! or a caller's challenge stays unique across the two tables, in both directions.

mod common;

use std::time::Duration;

use common::Fixture;
use oauth_state_store::{BeginRequest, Clock, CodeVerifier, Error, FlowFilter, OldTable, State};
use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

const SERVER: &str = "https://mcp.example.com";
const REDIRECT: &str = "http://127.0.0.1:33418/callback";
const TTL_MS: i64 = 600_000;

fn secret(what: &str, i: usize) -> String {
    format!("{what}-{i:04}-abcdefghijklmnopqrstuvwxyz-0123456789")
}

fn state_key(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes()).to_vec()
}

fn challenge(verifier: &str) -> String {
    CodeVerifier::new(verifier)
        .unwrap()
        .challenge()
        .as_str()
        .to_owned()
}

/// What a schema-6 program writes for a flow: `state` `None` for an unbound verifier.
fn old_insert(c: &Connection, state: Option<&str>, verifier: &str, now: i64, ttl: i64) {
    let status = if state.is_some() {
        "pending"
    } else {
        "unbound"
    };
    c.execute(
        "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, redirect_uri, \
         status, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            state.map(state_key),
            challenge(verifier),
            verifier,
            SERVER,
            state.map(|_| REDIRECT),
            status,
            now,
            now + ttl
        ],
    )
    .unwrap();
}

/// A schema-6 file holding pending flows 0 and 1, unbound verifier 2 and the expired pending
/// flow 3, as a schema-6 program left it.
fn old_file(fx: &Fixture) {
    let c = common::schema_6_file(&fx.path);
    let now = fx.clock.now_ms();
    old_insert(
        &c,
        Some(&secret("state", 0)),
        &secret("verifier", 0),
        now,
        TTL_MS,
    );
    old_insert(
        &c,
        Some(&secret("state", 1)),
        &secret("verifier", 1),
        now,
        TTL_MS,
    );
    old_insert(&c, None, &secret("verifier", 2), now, TTL_MS);
    old_insert(
        &c,
        Some(&secret("state", 3)),
        &secret("verifier", 3),
        now - 2 * TTL_MS,
        TTL_MS,
    );
    drop(c);
}

fn count(c: &Connection, table: &str) -> i64 {
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn authorization_url(state: &str, challenge: &str) -> String {
    url::Url::parse_with_params(
        "https://auth.example.com/authorize",
        [
            ("response_type", "code"),
            ("client_id", "app"),
            ("state", state),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .unwrap()
    .to_string()
}

#[test]
fn the_old_tables_rows_are_consumed_promoted_listed_and_swept_like_new_ones() {
    let fx = Fixture::new();
    old_file(&fx);
    let store = fx.store();
    let report = store.migration();
    assert_eq!((report.from, report.to), (6, 7));
    let raw = Connection::open(&fx.path).unwrap();
    assert_eq!((count(&raw, "flows"), count(&raw, "flow_rows")), (4, 0));

    // A new flow beside them, in the new table.
    let new = store.begin(BeginRequest::new(SERVER)).unwrap();
    assert_eq!((count(&raw, "flows"), count(&raw, "flow_rows")), (4, 1));
    let stats = store.stats().unwrap();
    assert_eq!((stats.counts.pending, stats.counts.unbound), (4, 1));
    assert_eq!(stats.expired, 1);
    assert_eq!(store.list_flows(&FlowFilter::new()).unwrap().len(), 5);

    // An old pending flow: consumed once, with its own verifier; then a tombstone.
    let consumed = store.consume(&secret("state", 0)).unwrap();
    assert_eq!(consumed.verifier.secret(), secret("verifier", 0));
    let again = store.consume(&secret("state", 0)).unwrap_err();
    assert!(matches!(again, Error::AlreadyConsumed), "{again:?}");

    // The old unbound verifier: promoted by its challenge, then consumed.
    let url = authorization_url(&secret("state", 2), &challenge(&secret("verifier", 2)));
    store.promote(SERVER, None, &url).unwrap();
    let promoted = store.consume(&secret("state", 2)).unwrap();
    assert_eq!(promoted.verifier.secret(), secret("verifier", 2));

    // The old flow 1 is the one live bound flow of the server besides the new one.
    let e = store.pending_verifier(SERVER, None).unwrap_err();
    assert!(
        matches!(e, Error::AmbiguousPendingVerifier { count: 2 }),
        "{e:?}"
    );
    store.consume(new.state().secret()).unwrap();
    let pending = store.pending_verifier(SERVER, None).unwrap();
    assert_eq!(pending.secret(), secret("verifier", 1));

    // The expired old flow is refused, then swept; once the clock passes every expiry, all
    // rows of both tables go.
    let expired = store.consume(&secret("state", 3)).unwrap_err();
    assert!(matches!(expired, Error::Expired), "{expired:?}");
    fx.clock.advance(Duration::from_millis(TTL_MS as u64 + 1));
    let report = store.sweep().unwrap();
    assert_eq!(report.removed.total(), 4, "{report:?}");
    assert_eq!((count(&raw, "flows"), count(&raw, "flow_rows")), (0, 0));
}

#[test]
fn a_state_key_or_a_callers_challenge_is_unique_across_both_tables() {
    let fx = Fixture::new();
    old_file(&fx);
    let store = fx.store();

    // New code, against the old table's rows.
    let e = store
        .begin(BeginRequest::new(SERVER).state(State::new(secret("state", 1)).unwrap()))
        .unwrap_err();
    assert!(matches!(e, Error::DuplicateState), "{e:?}");
    let e = store
        .begin(
            BeginRequest::new(SERVER).verifier(CodeVerifier::new(secret("verifier", 1)).unwrap()),
        )
        .unwrap_err();
    assert!(matches!(e, Error::DuplicateChallenge), "{e:?}");
    let e = store
        .save_code_verifier(SERVER, None, &secret("verifier", 2))
        .unwrap_err();
    assert!(matches!(e, Error::DuplicateChallenge), "{e:?}");

    // A schema-6 program that still has the file open, against the new table's rows: the
    // triggers give it the message its own UNIQUE constraint would.
    store
        .begin(
            BeginRequest::new(SERVER)
                .state(State::new(secret("state", 10)).unwrap())
                .verifier(CodeVerifier::new(secret("verifier", 10)).unwrap()),
        )
        .unwrap();
    store
        .save_code_verifier(SERVER, None, &secret("verifier", 11))
        .unwrap();
    let raw = Connection::open(&fx.path).unwrap();
    let now = fx.clock.now_ms();
    for (state, verifier, message) in [
        (Some("state"), "verifier-fresh", "flows.state_key"),
        (None, "verifier-10", "flows.code_challenge"),
        (None, "verifier-11", "flows.code_challenge"),
    ] {
        let state = state.map(|s| secret(s, 10));
        let verifier = match verifier {
            "verifier-10" => secret("verifier", 10),
            "verifier-11" => secret("verifier", 11),
            _ => secret("verifier", 99),
        };
        let err = raw
            .execute(
                "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, \
                 status, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    state.as_deref().map(state_key),
                    challenge(&verifier),
                    verifier,
                    SERVER,
                    if state.is_some() {
                        "pending"
                    } else {
                        "unbound"
                    },
                    now,
                    now + TTL_MS
                ],
            )
            .unwrap_err();
        assert!(err.to_string().contains(message), "{err}");
    }
    // A schema-6 bind of one of its unbound rows to a state that the new table holds.
    let err = raw
        .execute(
            "UPDATE flows SET state_key = ?1, status = 'pending' WHERE status = 'unbound'",
            [state_key(&secret("state", 10))],
        )
        .unwrap_err();
    assert!(err.to_string().contains("flows.state_key"), "{err}");
    // New code binding a new row to a state the old table holds.
    let url = authorization_url(&secret("state", 0), &challenge(&secret("verifier", 11)));
    let e = store.promote(SERVER, None, &url).unwrap_err();
    assert!(matches!(e, Error::DuplicateState), "{e:?}");
}

#[test]
fn new_rows_are_numbered_in_expiry_order_and_only_outside_verifiers_are_indexed_by_challenge() {
    let fx = Fixture::new();
    let store = fx.store();
    let long = store
        .begin(BeginRequest::new(SERVER).ttl(Duration::from_secs(1200)))
        .unwrap();
    let short = store
        .begin(BeginRequest::new(SERVER).ttl(Duration::from_secs(600)))
        .unwrap();
    let twin = store
        .begin(
            BeginRequest::new(SERVER)
                .ttl(Duration::from_secs(600))
                .verifier(CodeVerifier::new(secret("verifier", 5)).unwrap()),
        )
        .unwrap();
    store
        .save_code_verifier(SERVER, None, &secret("verifier", 6))
        .unwrap();
    let raw = Connection::open(&fx.path).unwrap();
    let row = |challenge: &str| -> (i64, i64, i64) {
        raw.query_row(
            "SELECT id, expires_at, generated_verifier FROM flow_rows WHERE code_challenge = ?1",
            [challenge],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    let (long_id, long_exp, long_gen) = row(long.code_challenge().as_str());
    let (short_id, short_exp, short_gen) = row(short.code_challenge().as_str());
    let (twin_id, twin_exp, twin_gen) = row(twin.code_challenge().as_str());
    let (_, _, saved_gen) = row(&challenge(&secret("verifier", 6)));
    // The clock did not move: the two 10-minute flows share an expiry millisecond and take
    // its first two ids; the 20-minute flow, begun first, sorts after both.
    assert_eq!(short_exp, twin_exp);
    assert_eq!(short_id, short_exp << 20);
    assert_eq!(twin_id, short_id + 1);
    assert_eq!(long_id, long_exp << 20);
    assert!(short_id < long_id);
    // Only the store's own verifiers are left out of the challenge index.
    assert_eq!((long_gen, short_gen, twin_gen, saved_gen), (1, 1, 0, 0));
    let indexed: i64 = raw
        .query_row(
            "SELECT count(*) FROM flow_rows INDEXED BY flow_rows_by_challenge \
             WHERE generated_verifier = 0 AND code_challenge > ''",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 2);
    // Reusing the caller's verifier is a duplicate, as before.
    let e = store
        .begin(
            BeginRequest::new(SERVER).verifier(CodeVerifier::new(secret("verifier", 5)).unwrap()),
        )
        .unwrap_err();
    assert!(matches!(e, Error::DuplicateChallenge), "{e:?}");
    // A generated verifier's row is not found by its challenge: it never was unbound.
    let url = authorization_url(&secret("state", 7), long.code_challenge().as_str());
    let e = store.promote(SERVER, None, &url).unwrap_err();
    assert!(matches!(e, Error::UnknownChallenge), "{e:?}");
}

#[test]
fn an_expiry_past_what_an_id_can_hold_is_invalid_input_and_writes_nothing() {
    let fx = Fixture::new();
    let store = fx.store();
    fx.clock.set((1 << 43) - 1000);
    let e = store.begin(BeginRequest::new(SERVER)).unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput { field: "ttl", .. }),
        "{e:?}"
    );
    assert_eq!(store.stats().unwrap().counts.total(), 0);
    // The latest expiry an id can hold still fits.
    store
        .begin(BeginRequest::new(SERVER).ttl(Duration::from_millis(999)))
        .unwrap();
    assert_eq!(store.stats().unwrap().counts.total(), 1);
}

#[test]
fn a_state_key_in_both_tables_is_damage_not_a_choice_between_two_verifiers() {
    let fx = Fixture::new();
    old_file(&fx);
    let store = fx.store();
    let state = secret("state", 20);
    store
        .begin(BeginRequest::new(SERVER).state(State::new(state.clone()).unwrap()))
        .unwrap();
    // Damage the triggers cannot stop: the same key written into the old table past them.
    let raw = Connection::open(&fx.path).unwrap();
    raw.execute_batch("DROP TRIGGER flows_unique_insert")
        .unwrap();
    old_insert(
        &raw,
        Some(&state),
        &secret("verifier", 20),
        fx.clock.now_ms(),
        TTL_MS,
    );
    drop(raw);
    let e = store.consume(&state).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    common::assert_error_clean(&e, &[&state, &secret("verifier", 20)]);
}

#[test]
fn a_flow_whose_state_and_challenge_both_collide_is_a_duplicate_challenge_in_either_table() {
    let fx = Fixture::new();
    old_file(&fx);
    let store = fx.store();
    store
        .save_code_verifier(SERVER, None, &secret("verifier", 11))
        .unwrap();
    // The state of old flow 1, with the challenge of old flow 1 or of the new unbound row.
    for verifier in [secret("verifier", 1), secret("verifier", 11)] {
        let e = store
            .begin(
                BeginRequest::new(SERVER)
                    .state(State::new(secret("state", 1)).unwrap())
                    .verifier(CodeVerifier::new(verifier).unwrap()),
            )
            .unwrap_err();
        assert!(matches!(e, Error::DuplicateChallenge), "{e:?}");
    }
}

#[test]
fn an_old_row_with_an_id_below_one_is_corrupt_and_never_sends_an_update_to_the_new_table() {
    let fx = Fixture::new();
    old_file(&fx);
    let store = fx.store();
    let new = store.begin(BeginRequest::new(SERVER)).unwrap();
    let raw = Connection::open(&fx.path).unwrap();
    let new_id: i64 = raw
        .query_row("SELECT id FROM flow_rows", [], |r| r.get(0))
        .unwrap();
    // Written past this crate: ids that, negated, would name the new row, or nothing.
    let now = fx.clock.now_ms();
    for (i, id) in [(30, -new_id), (31, 0)] {
        let (state, verifier) = (secret("state", i), secret("verifier", i));
        raw.execute(
            "INSERT INTO flows (id, state_key, code_challenge, code_verifier, server_id, \
             status, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7)",
            params![
                id,
                state_key(&state),
                challenge(&verifier),
                verifier,
                SERVER,
                now,
                now + TTL_MS
            ],
        )
        .unwrap();
        let e = store.consume(&state).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
        common::assert_error_clean(&e, &[&state, &verifier]);
    }
    // The new flow was not touched.
    let consumed = store.consume(new.state().secret()).unwrap();
    assert_eq!(consumed.verifier.secret().len(), 43);
}

/// The schema objects of a file, as `(type, name, sql)` (SQLite's own excluded).
fn schema(c: &Connection) -> Vec<(String, String, Option<String>)> {
    c.prepare(
        "SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' \
         ORDER BY type, name",
    )
    .unwrap()
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn a_new_file_has_one_table() {
    let fx = Fixture::new();
    let store = fx.store();
    store.begin(BeginRequest::new(SERVER)).unwrap();
    let raw = Connection::open(&fx.path).unwrap();
    let tables: Vec<String> = schema(&raw)
        .into_iter()
        .filter(|(kind, _, _)| kind != "index")
        .map(|(kind, name, _)| format!("{kind} {name}"))
        .collect();
    assert_eq!(tables, ["table flow_rows", "table meta"]);
    assert_eq!(count(&raw, "flow_rows"), 1);
    // Nothing to drop.
    assert_eq!(store.drop_old_table().unwrap(), OldTable::Absent);
}

#[test]
fn the_emptied_old_table_is_dropped_on_request_and_every_store_on_the_file_goes_on_with_one_table()
{
    let fx = Fixture::new();
    old_file(&fx);
    let first = fx.store();
    // Another store on the file, open before the drop, whose connections have run the
    // two-table statements of every kind.
    let other = fx.store();
    let before = other.begin(BeginRequest::new(SERVER)).unwrap();
    other.stats().unwrap();
    other.list_flows(&FlowFilter::new()).unwrap();
    other
        .list_flows(&FlowFilter::new().server_id(SERVER))
        .unwrap();
    other.sweep_preview(Some(Duration::from_millis(1))).unwrap();
    let e = other.pending_verifier(SERVER, None).unwrap_err();
    assert!(matches!(e, Error::AmbiguousPendingVerifier { .. }), "{e:?}");
    let url = authorization_url(&secret("state", 2), &challenge(&secret("verifier", 2)));
    other.promote(SERVER, None, &url).unwrap();

    // Rows are left in the old table: it stays. Neither compact nor a sweep ever drops it.
    let raw = Connection::open(&fx.path).unwrap();
    let left = count(&raw, "flows");
    assert_eq!(
        first.drop_old_table().unwrap(),
        OldTable::Kept { rows: left as u64 }
    );
    assert!(first.compact().unwrap().is_complete());
    assert_eq!(count(&raw, "flows"), left);

    // Once they have expired and been swept, it goes, with the triggers that looked into it:
    // the file has the schema of a new one.
    fx.clock.advance(Duration::from_millis(TTL_MS as u64 + 1));
    first.sweep().unwrap();
    first.compact().unwrap();
    assert_eq!(count(&raw, "flows"), 0);
    assert_eq!(first.drop_old_table().unwrap(), OldTable::Dropped);
    let fresh = Fixture::new();
    fresh.store();
    assert_eq!(
        schema(&raw),
        schema(&Connection::open(&fresh.path).unwrap())
    );

    // The other store finds the table gone and goes on, in every statement that read it.
    let e = other.consume(before.state().secret()).unwrap_err();
    assert!(matches!(e, Error::UnknownState), "{e:?}");
    let flow = other.begin(BeginRequest::new(SERVER)).unwrap();
    assert_eq!(
        other.pending_verifier(SERVER, None).unwrap().secret().len(),
        43
    );
    assert_eq!(other.stats().unwrap().counts.pending, 1);
    assert_eq!(other.list_flows(&FlowFilter::new()).unwrap().len(), 1);
    assert_eq!(
        other
            .list_flows(&FlowFilter::new().server_id(SERVER))
            .unwrap()
            .len(),
        1
    );
    let unbound = secret("verifier", 40);
    other.save_code_verifier(SERVER, None, &unbound).unwrap();
    let url = authorization_url(&secret("state", 40), &challenge(&unbound));
    other.promote(SERVER, None, &url).unwrap();
    assert_eq!(
        other
            .consume(&secret("state", 40))
            .unwrap()
            .verifier
            .secret(),
        unbound
    );
    assert_eq!(
        other
            .consume(flow.state().secret())
            .unwrap()
            .verifier
            .secret()
            .len(),
        43
    );
    fx.clock.advance(Duration::from_millis(2));
    let ms = Duration::from_millis(1);
    assert_eq!(other.sweep_preview(Some(ms)).unwrap().total(), 2);
    assert_eq!(other.sweep_finished(ms).unwrap().removed.total(), 2);
    assert_eq!(other.sweep().unwrap().removed.total(), 0);
    assert_eq!(other.drop_old_table().unwrap(), OldTable::Absent);

    // A schema-6 program that still had the file open now fails, as the README says.
    let e = raw.execute("SELECT count(*) FROM flows", []).unwrap_err();
    assert!(e.to_string().contains("no such table"), "{e}");
    drop(raw);
    // A store opened now sees one table from the start.
    let late = fx.store();
    assert_eq!(late.stats().unwrap().counts.total(), 0);
}

/// Child: on the file named by `OSS_DB`, runs native and SDK flows with their lookups, and
/// creates `OSS_READY` after the first of them, until `OSS_STOP` appears; prints `FLOWS n`
/// and one `ERROR …` line for each failure.
#[test]
#[ignore = "run as a child process by the tests in this file"]
fn child_flows_until_stopped() {
    let var = |name| std::env::var(name).expect(name);
    let (path, ready, stop) = (var("OSS_DB"), var("OSS_READY"), var("OSS_STOP"));
    let store = oauth_state_store::Store::open(&path).unwrap();
    let started = std::time::Instant::now();
    let mut flows = 0u64;
    while !std::path::Path::new(&stop).exists() && started.elapsed() < Duration::from_secs(60) {
        let native = (|| {
            let flow = store.begin(BeginRequest::new(SERVER))?;
            store.check(flow.state().secret())?;
            store.consume(flow.state().secret()).map(drop)
        })();
        let verifier = CodeVerifier::generate().secret().to_owned();
        let state = State::generate().secret().to_owned();
        let sdk = (|| {
            let challenge = store.save_code_verifier(SERVER, None, &verifier)?;
            store.promote(SERVER, None, &authorization_url(&state, challenge.as_str()))?;
            store.pending_verifier(SERVER, None)?;
            store.stats()?;
            store.list_flows(&FlowFilter::new().server_id(SERVER))?;
            store.consume(&state).map(drop)
        })();
        for result in [native, sdk] {
            match result {
                Ok(()) => flows += 1,
                Err(e) => println!("ERROR {e:?}"),
            }
        }
        if flows == 2 {
            std::fs::write(&ready, "").unwrap();
        }
    }
    println!("FLOWS {flows}");
}

#[test]
fn another_process_goes_on_without_an_error_when_the_old_table_is_dropped_under_it() {
    let fx = Fixture::new();
    drop(common::schema_6_file(&fx.path));
    let store = fx.store();
    assert_eq!(store.migration().from, 6);
    let dir = fx.path.parent().unwrap();
    let (ready, stop) = (dir.join("ready"), dir.join("stop"));
    let child = common::spawn_child(
        "child_flows_until_stopped",
        &[
            ("OSS_DB", fx.path.to_str().unwrap()),
            ("OSS_READY", ready.to_str().unwrap()),
            ("OSS_STOP", stop.to_str().unwrap()),
        ],
    );
    let began = std::time::Instant::now();
    while !ready.exists() {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the child never ran a flow"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The child is running flows on the two-table statements; the table goes under it.
    assert_eq!(store.drop_old_table().unwrap(), OldTable::Dropped);
    let raw = Connection::open(&fx.path).unwrap();
    let flows_before = count(&raw, "flow_rows");
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&stop, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = common::lines_with(&out, "ERROR ");
    assert!(
        errors.is_empty(),
        "{} failures, the first: {}",
        errors.len(),
        errors[0]
    );
    let flows: u64 = common::lines_with(&out, "FLOWS ")[0].parse().unwrap();
    assert!(flows > 2, "the child ran no flow after the drop: {flows}");
    // It wrote after the drop (its tombstones), to the one table left.
    assert!(count(&raw, "flow_rows") > flows_before);
    let e = raw.execute("SELECT 1 FROM flows", []).unwrap_err();
    assert!(e.to_string().contains("no such table"), "{e}");
}
