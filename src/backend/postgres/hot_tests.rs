//! The `flows` table lets a callback and a consume update their row in place (a heap-only
//! tuple, HOT): no index of the table covers a column those statements write, and the table's
//! pages keep room for the new row version. PostgreSQL 15 counts every indexed column against
//! HOT, the columns of a partial index's predicate and of an index expression included; one
//! such column written and every index of the table gets an entry for the new version.
//!
//! The catalog test reads the columns each statement writes from the statement's own `SET`
//! clause and the indexed columns from `pg_index`; the behavioural test runs flows through
//! the store and reads the server's own count of HOT updates.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use postgres::Client;

use super::{flows, steps, test_cluster as pg};
use crate::{BeginRequest, CodeVerifier, State, Store, StoreOptions};

const SERVER: &str = "https://mcp.example.com";
const CLIENT: &str = "c1";

/// The statements that write a callback's result or consume a flow, on either path (the
/// one-statement steps and the transaction's row operations). A promote binds the state key,
/// which is indexed (a new key is never HOT), so it is not among them.
const UPDATES: [(&str, &str); 5] = [
    ("steps::CONSUME", steps::CONSUME),
    ("steps::RECORD", steps::RECORD),
    ("flows::COMPLETE", flows::COMPLETE),
    ("flows::FAIL", flows::FAIL),
    ("flows::CONSUME", flows::CONSUME),
];

/// The columns every `UPDATE flows ... SET` of `sql` assigns, read from the statement: the
/// name before each top-level `=` of the `SET` list, which ends at the first top-level `FROM`
/// or `WHERE`.
fn set_columns(sql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = sql;
    while let Some(at) = rest.find("UPDATE flows") {
        let after = &rest[at..];
        let set = after.find(" SET ").expect("an UPDATE has a SET") + " SET ".len();
        let list = &after[set..];
        let (mut depth, mut start, mut end) = (0i32, 0usize, list.len());
        let bytes = list.as_bytes();
        let mut items = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'(' => depth += 1,
                b')' => depth -= 1,
                b',' if depth == 0 => {
                    items.push(&list[start..i]);
                    start = i + 1;
                }
                b' ' if depth == 0
                    && (list[i..].starts_with(" FROM ") || list[i..].starts_with(" WHERE ")) =>
                {
                    end = i;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        items.push(&list[start..end]);
        for item in items {
            let (column, _) = item
                .split_once('=')
                .unwrap_or_else(|| panic!("not an assignment: {item:?} in {sql}"));
            out.insert(column.trim().to_owned());
        }
        rest = &after[set..];
    }
    out
}

/// Each index of `flows` with every column it depends on: its key columns, and the columns
/// of its expressions and of its partial-index predicate, read from their node trees (`:varattno`
/// of each `VAR` node: 0 would be the whole row).
fn indexed_columns(c: &mut Client) -> Vec<(String, BTreeSet<String>)> {
    let rows = c
        .query(
            "SELECT i.indexrelid::regclass::text, \
             ARRAY(SELECT a.attname::text FROM pg_attribute a \
                   WHERE a.attrelid = i.indrelid AND (a.attnum = ANY(i.indkey::int2[]) \
                   OR a.attnum IN (SELECT m[1]::int2 FROM regexp_matches( \
                      coalesce(i.indexprs::text, '') || coalesce(i.indpred::text, ''), \
                      '\\{VAR :varno \\d+ :varattno (\\d+)', 'g') AS m))), \
             EXISTS (SELECT 1 FROM regexp_matches( \
                      coalesce(i.indexprs::text, '') || coalesce(i.indpred::text, ''), \
                      '\\{VAR :varno \\d+ :varattno 0 ', 'g')), \
             i.indpred IS NOT NULL, \
             (SELECT count(*) FROM regexp_matches(coalesce(i.indpred::text, ''), \
                      '\\{VAR ', 'g')) \
             FROM pg_index i WHERE i.indrelid = 'flows'::regclass ORDER BY 1",
            &[],
        )
        .unwrap();
    rows.iter()
        .map(|r| {
            let name: String = r.get(0);
            let whole_row: bool = r.get(2);
            assert!(!whole_row, "{name} depends on the whole row");
            let partial: bool = r.get(3);
            let predicate_vars: i64 = r.get(4);
            // A predicate that names no column would mean the node tree was not read.
            assert!(!partial || predicate_vars > 0, "{name}: predicate unread");
            (name, r.get::<_, Vec<String>>(1).into_iter().collect())
        })
        .collect()
}

fn store_and_admin(cluster: &pg::Cluster, test: &str) -> (Store, Client) {
    let url = cluster.fresh_database(test);
    let store = StoreOptions::default().open(&url).unwrap();
    let database = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    (store, cluster.client(database))
}

#[test]
fn no_index_of_flows_covers_a_column_a_callback_or_consume_writes() {
    let Some(cluster) = pg::cluster("hot_catalog") else {
        return;
    };
    let (_store, mut c) = store_and_admin(cluster, "hot_catalog");
    let columns: BTreeSet<String> = c
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = 'flows'::regclass \
             AND attnum > 0 AND NOT attisdropped",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut written = BTreeSet::new();
    for (name, sql) in UPDATES {
        let set = set_columns(sql);
        assert!(!set.is_empty(), "{name}: no SET read");
        for column in &set {
            assert!(columns.contains(column), "{name}: {column:?} is no column");
        }
        written.extend(set);
    }
    // The parse agrees with what the statements are known to write.
    let expected: BTreeSet<String> = [
        "status",
        "code_verifier",
        "auth_code",
        "error",
        "error_description",
        "discovery",
        "consumed_at",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(written, expected);

    let indexes = indexed_columns(&mut c);
    // The parse of the catalog sees what the schema declares.
    let by_name = |n: &str| {
        indexes
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, cols)| cols.clone())
            .unwrap_or_else(|| panic!("no index {n}: {indexes:?}"))
    };
    assert_eq!(
        by_name("flows_code_challenge_key"),
        ["code_challenge", "generated_verifier"]
            .map(str::to_owned)
            .into(),
        "the predicate's column is counted"
    );
    assert_eq!(by_name("flows_pkey"), ["id".to_owned()].into());
    for (index, covered) in &indexes {
        let both: Vec<_> = covered.intersection(&written).collect();
        assert!(
            both.is_empty(),
            "{index} covers {both:?}, which a callback or consume writes: none of those \
             updates can be HOT"
        );
    }
    // The pages keep room for the new row versions.
    let options: Vec<String> = c
        .query_one(
            "SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = 'flows'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    let fillfactor = options
        .iter()
        .find_map(|o| o.strip_prefix("fillfactor="))
        .map_or(100, |v| v.parse::<u32>().unwrap());
    assert!((70..=80).contains(&fillfactor), "{options:?}");
}

#[test]
fn the_set_parse_reads_every_assignment() {
    assert_eq!(
        set_columns(
            "WITH x AS (UPDATE flows f SET a = coalesce($1, b), c = CASE WHEN d THEN e END \
             FROM old WHERE f.id = 1) SELECT 1; UPDATE flows SET g = (h + 1) WHERE i = 2"
        ),
        ["a", "c", "g"].map(str::to_owned).into()
    );
}

/// The server's count of updates and of HOT updates of `flows` in this database.
fn updates(c: &mut Client) -> (i64, i64) {
    c.batch_execute("SELECT pg_stat_clear_snapshot()").unwrap();
    let r = c
        .query_one(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'flows'",
            &[],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

#[test]
fn callbacks_and_consumes_update_their_row_in_place() {
    if pg::cluster("hot_updates").is_none() {
        return;
    }
    // A cluster of its own: on the shared one, the other tests' work can keep the dead row
    // versions from being pruned for a while (their space not reused), and the count measured
    // them (721 of 800 HOT beside the other unit tests, 800 alone).
    let cluster = pg::Cluster::start();
    const N: usize = 200;
    let (store, mut admin) = store_and_admin(&cluster, "hot_updates");
    let (upd0, hot0) = updates(&mut admin);
    // Logins in flight together, as when many clients start at once: every flow begins (the
    // table's pages fill with fresh rows), then each gets its callback and is consumed.
    let mut native = Vec::new();
    let mut sdk = Vec::new();
    for _ in 0..N {
        let flow = store
            .begin(BeginRequest::new(SERVER).client_id(CLIENT))
            .unwrap();
        native.push(flow.state().secret().to_owned());
        let verifier = CodeVerifier::generate();
        let challenge = store
            .save_code_verifier(SERVER, Some(CLIENT), verifier.secret())
            .unwrap();
        let state = State::generate();
        let url = format!(
            "https://as.example.com/authorize?client_id={CLIENT}&state={}&code_challenge={}",
            state.secret(),
            challenge.as_str()
        );
        store.promote(SERVER, Some(CLIENT), &url).unwrap();
        sdk.push(state.secret().to_owned());
    }
    for (i, state) in native.iter().enumerate() {
        store.complete(state, &format!("code-{i}")).unwrap();
    }
    for (i, state) in sdk.iter().enumerate() {
        if i % 2 == 0 {
            store.complete(state, &format!("code-{i}")).unwrap();
        } else {
            store.reject(state, "access_denied", Some("no")).unwrap();
        }
    }
    for state in &native {
        store.consume(state).unwrap();
    }
    for (i, state) in sdk.iter().enumerate() {
        let consumed = store.consume_for(state, SERVER);
        assert_eq!(consumed.is_ok(), i % 2 == 0, "{consumed:?}");
    }
    // The promotes bind a state key (indexed: never HOT); every callback and every consume
    // may be HOT.
    let promotes = N as i64;
    let in_place = 4 * N as i64;
    let expected = promotes + in_place;
    // Backends report their counts at the end of a transaction, at most once a second, and
    // when they exit: close the pool, then wait for the counts to arrive.
    drop(store);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (upd, hot) = loop {
        let (upd, hot) = updates(&mut admin);
        let (upd, hot) = (upd - upd0, hot - hot0);
        if upd >= expected || Instant::now() > deadline {
            break (upd, hot);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(upd, expected, "updates counted ({hot} HOT)");
    // Without the table's fillfactor about 1 in 70 of them finds its page full here (98.5 %
    // HOT); with it, none.
    assert!(
        hot * 100 >= in_place * 99,
        "{hot} of {in_place} callback and consume updates were HOT ({upd} updates in all)"
    );
}
