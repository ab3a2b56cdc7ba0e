//! The PostgreSQL migrator against a real server (the throwaway cluster of
//! `tests/common/pg.rs`), and the harness's own skip rule.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::*;
use crate::backend::postgres::connect;
use crate::backend::postgres::test_cluster as pg;
use crate::clock::{Clock, SystemClock};

const URL_VAR: &str = "OSS_TEST_PG_URL";
const CHILD_MIGRATE: &str = "backend::postgres::migrate::tests::child_migrates";
const CHILD_SKIP: &str = "backend::postgres::migrate::tests::child_asks_for_a_cluster";

fn client(url: &str) -> Client {
    let config = connect::config(url).expect("test URL");
    connect::connect(&config).expect("connect")
}

/// A fresh database on the shared cluster and a client on it; `None` when skipped.
fn fresh(test: &str) -> Option<(Client, String)> {
    let url = pg::cluster(test)?.fresh_database(test);
    Some((client(&url), url))
}

/// The schema as the catalog describes it, one line an item, in a stable order: columns,
/// constraints, indexes and storage options of everything but the migrator's own table.
fn catalog(c: &mut Client) -> Vec<String> {
    const QUERIES: &[&str] = &[
        "SELECT 'column', table_name::text, lpad(ordinal_position::text, 3, '0') || ' ' || column_name::text \
         || ' ' || data_type::text || ' null=' || is_nullable::text || ' default=' \
         || coalesce(column_default::text, '') || ' identity=' \
         || coalesce(identity_generation::text, '') \
         FROM information_schema.columns WHERE table_schema = current_schema() \
         AND table_name <> 'oauth_state_store_migrations' ORDER BY 2, 3",
        "SELECT 'constraint', conrelid::regclass::text, conname::text || ' ' || contype::text \
         || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE connamespace = current_schema()::regnamespace \
         AND conrelid::regclass::text <> 'oauth_state_store_migrations' ORDER BY 2, 3",
        "SELECT 'index', tablename::text, indexdef FROM pg_indexes \
         WHERE schemaname = current_schema() \
         AND tablename <> 'oauth_state_store_migrations' ORDER BY 2, 3",
        "SELECT 'relation', relname::text, relkind::text || ' ' \
         || coalesce(array_to_string(reloptions, ','), '') FROM pg_class \
         WHERE relnamespace = current_schema()::regnamespace \
         AND relname::text NOT LIKE 'oauth_state_store_migrations%' ORDER BY 2, 3",
    ];
    let mut lines = Vec::new();
    for q in QUERIES {
        for row in c.query(*q, &[]).expect("catalog query") {
            let (kind, table, what): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            lines.push(format!("{kind} {table}: {what}"));
        }
    }
    lines
}

#[test]
fn migrations_are_numbered_in_order_and_end_at_the_schema_version() {
    for (i, m) in MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version, i as i64 + 1, "migration {} out of order", m.name);
        // The migrator owns the transaction: a migration must not end it.
        let ends_it = m.sql.lines().any(|l| {
            let l = l.trim_start().to_ascii_uppercase();
            ["BEGIN", "COMMIT", "ROLLBACK", "END"]
                .iter()
                .any(|w| l.starts_with(w))
        });
        assert!(
            !ends_it,
            "migration {} has its own transaction control",
            m.name
        );
    }
    assert_eq!(MIGRATIONS.last().unwrap().version, SCHEMA_VERSION);
}

#[test]
fn schema_postgres_sql_equals_what_the_migrations_produce() {
    let Some((mut migrated, _)) = fresh("schema_equals_migrations") else {
        return;
    };
    let report = migrate(&mut migrated).unwrap();
    assert_eq!((report.from, report.to), (0, SCHEMA_VERSION));
    let Some((mut declared, _)) = fresh("schema_declared") else {
        return;
    };
    declared
        .batch_execute(include_str!("../../../schema_postgres.sql"))
        .unwrap();
    let (a, b) = (catalog(&mut migrated), catalog(&mut declared));
    assert!(a.iter().any(|l| l.contains("flows_by_expiry")), "{a:#?}");
    assert!(a.iter().any(|l| l.contains("state_key bytea")), "{a:#?}");
    assert_eq!(
        a, b,
        "schema_postgres.sql differs from what migrations_postgres/ produce"
    );
    assert_eq!(schema_version(&mut migrated).unwrap(), SCHEMA_VERSION);
    assert_eq!(schema_version(&mut declared).unwrap(), 0);
}

#[test]
fn migrating_twice_is_a_no_op_and_keeps_the_store_id() {
    let Some((mut c, _)) = fresh("migrate_twice") else {
        return;
    };
    assert_eq!(schema_version(&mut c).unwrap(), 0);
    let first = migrate(&mut c).unwrap();
    assert_eq!((first.from, first.to), (0, SCHEMA_VERSION));
    let id = store_id(&mut c).unwrap();
    assert_eq!(id.len(), 22);
    let second = migrate(&mut c).unwrap();
    assert_eq!((second.from, second.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    assert_eq!(store_id(&mut c).unwrap(), id);
    let recorded: i64 = c
        .query_one("SELECT count(*) FROM oauth_state_store_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(recorded, SCHEMA_VERSION);
}

#[test]
fn a_newer_database_is_refused_and_left_unchanged() {
    let Some((mut c, _)) = fresh("newer_refused") else {
        return;
    };
    c.batch_execute(CREATE_TRACKING).unwrap();
    c.execute(RECORD, &[&(SCHEMA_VERSION + 1), &"from_the_future"])
        .unwrap();
    let before = catalog(&mut c);
    match migrate(&mut c) {
        Err(MigrateError::TooNew(v)) => assert_eq!(v, SCHEMA_VERSION + 1),
        other => panic!("expected TooNew, got {other:?}"),
    }
    assert_eq!(
        catalog(&mut c),
        before,
        "a refused migration changed the schema"
    );
    assert!(before.is_empty(), "{before:#?}");
    assert_eq!(schema_version(&mut c).unwrap(), SCHEMA_VERSION + 1);
}

#[test]
fn an_open_that_may_not_migrate_refuses_an_empty_or_older_database_unchanged() {
    let Some((mut c, _)) = fresh("require_current") else {
        return;
    };
    assert!(matches!(
        require_current(&mut c),
        Err(MigrateError::Needed(0))
    ));
    assert!(
        catalog(&mut c).is_empty(),
        "require_current created something"
    );
    let tracking: bool = c.query_one(TRACKING_EXISTS, &[]).unwrap().get(0);
    assert!(!tracking, "require_current made the tracking table");
    migrate(&mut c).unwrap();
    let current = require_current(&mut c).unwrap();
    assert_eq!((current.from, current.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    // A current version without its store id needs the migrator (which makes one).
    c.batch_execute("DELETE FROM meta").unwrap();
    assert!(matches!(
        require_current(&mut c),
        Err(MigrateError::Needed(SCHEMA_VERSION))
    ));
    migrate(&mut c).unwrap();
    c.execute(RECORD, &[&(SCHEMA_VERSION + 1), &"from_the_future"])
        .unwrap();
    assert!(matches!(
        require_current(&mut c),
        Err(MigrateError::TooNew(v)) if v == SCHEMA_VERSION + 1
    ));
    let e = MigrateError::Needed(0).into_error(Duration::from_secs(1));
    assert!(e.to_string().contains("oauth-state-store migrate"), "{e}");
}

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// What a program of schema `version` left: its schema, its records, a store id and the
/// pending flow `old-state` (verifier [`VERIFIER`]), far from expiry.
fn old_database(c: &mut Client, version: usize) {
    c.batch_execute(CREATE_TRACKING).unwrap();
    for m in &MIGRATIONS[..version] {
        c.batch_execute(m.sql).unwrap();
        c.execute(RECORD, &[&m.version, &m.name]).unwrap();
    }
    c.execute(INSERT_STORE_ID, &[&"old-store"]).unwrap();
    c.execute(
        "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, issuer, \
         status, created_at, expires_at) \
         VALUES ($1, $2, $3, 's', 'https://as.example.com', 'pending', 1, $4)",
        &[
            &&crate::pkce::state_key("old-state")[..],
            &CHALLENGE,
            &VERIFIER,
            &(i64::MAX / 2),
        ],
    )
    .unwrap();
}

#[test]
fn a_version_1_database_keeps_its_pending_flows_and_gains_the_discovery_column() {
    let Some((mut c, url)) = fresh("version_1_migrates") else {
        return;
    };
    old_database(&mut c, 1);
    let verifier = VERIFIER;
    let store = crate::StoreOptions::default().open(&url).unwrap();
    let report = store.migration();
    assert_eq!((report.from, report.to), (1, SCHEMA_VERSION));
    let consumed = store.consume("old-state").unwrap();
    assert_eq!(consumed.verifier.secret(), verifier);
    assert_eq!(
        consumed.info.issuer.as_deref(),
        Some("https://as.example.com")
    );
    assert_eq!(consumed.discovery(), None);
    assert_eq!(schema_version(&mut c).unwrap(), SCHEMA_VERSION);
    assert_eq!(store_id(&mut c).unwrap(), "old-store");
    let column: Option<String> = c
        .query_one("SELECT discovery FROM flows", &[])
        .unwrap()
        .get(0);
    assert_eq!(column, None);
    // The new column's limit holds in the database itself, past the store's own check.
    let too_long = "a".repeat(crate::MAX_DISCOVERY_LEN + 1);
    assert!(c
        .execute("UPDATE flows SET discovery = $1", &[&too_long])
        .is_err());
}

#[test]
fn a_version_2_database_keeps_its_flows_unique_by_challenge_and_checks_the_challenge_first() {
    let Some((mut c, url)) = fresh("version_2_migrates") else {
        return;
    };
    // Its pending flow's verifier was generated by the store, but the column that says so did
    // not exist: every old row is kept in the challenge's index.
    old_database(&mut c, 2);
    let (verifier, challenge) = (VERIFIER, CHALLENGE);
    let store = crate::StoreOptions::default().open(&url).unwrap();
    let report = store.migration();
    assert_eq!((report.from, report.to), (2, SCHEMA_VERSION));
    let generated: bool = c
        .query_one("SELECT generated_verifier FROM flows", &[])
        .unwrap()
        .get(0);
    assert!(!generated);
    assert!(matches!(
        store.save_code_verifier("s", None, verifier),
        Err(Error::DuplicateChallenge)
    ));
    let both = crate::BeginRequest::new("s")
        .state(crate::State::new("old-state").unwrap())
        .verifier(crate::CodeVerifier::new(verifier).unwrap());
    assert!(matches!(store.begin(both), Err(Error::DuplicateChallenge)));
    let url = format!("https://as.example/authorize?state=other&code_challenge={challenge}");
    assert!(matches!(
        store.promote("s", None, &url),
        Err(Error::ChallengeAlreadyBound)
    ));
    assert_eq!(
        store.consume("old-state").unwrap().verifier.secret(),
        verifier
    );
    // The database refuses an unbound row marked generated, past the store's own rules.
    let e = c
        .execute(
            "INSERT INTO flows (code_challenge, code_verifier, server_id, status, created_at, \
             expires_at, generated_verifier) VALUES (repeat('a', 43), 'v', 's', 'unbound', 1, \
             2, true)",
            &[],
        )
        .unwrap_err();
    assert_eq!(
        e.as_db_error().and_then(|d| d.constraint()),
        Some("flows_generated_verifier_check")
    );
}

/// The index order PostgreSQL checks a row's unique indexes in follows their OIDs, which a
/// restore or a `REINDEX CONCURRENTLY` changes: a flow whose challenge and state are both
/// taken must still be a duplicate challenge.
#[test]
fn a_double_collision_is_a_duplicate_challenge_whatever_the_index_order() {
    let Some((mut c, url)) = fresh("double_collision_order") else {
        return;
    };
    migrate(&mut c).unwrap();
    // Made again, the challenge's index now comes after the state key's.
    c.batch_execute(
        "DROP INDEX flows_code_challenge_key; \
         CREATE UNIQUE INDEX flows_code_challenge_key ON flows (code_challenge) \
         WHERE NOT generated_verifier",
    )
    .unwrap();
    let order: Vec<String> = c
        .query(
            "SELECT indexrelid::regclass::text FROM pg_index \
             WHERE indrelid = 'flows'::regclass AND indisunique ORDER BY indexrelid::bigint",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        order,
        [
            "flows_pkey",
            "flows_state_key_key",
            "flows_code_challenge_key"
        ]
    );
    let store = crate::StoreOptions::default().open(&url).unwrap();
    let outside = || crate::CodeVerifier::new(VERIFIER).unwrap();
    store
        .begin(crate::BeginRequest::new("s").verifier(outside()))
        .unwrap();
    let native = store.begin(crate::BeginRequest::new("s")).unwrap();
    let both = crate::BeginRequest::new("s")
        .state(crate::State::new(native.state().secret()).unwrap())
        .verifier(outside());
    assert!(matches!(store.begin(both), Err(Error::DuplicateChallenge)));
    let state_only =
        crate::BeginRequest::new("s").state(crate::State::new(native.state().secret()).unwrap());
    assert!(matches!(
        store.begin(state_only),
        Err(Error::DuplicateState)
    ));
    let rows: i64 = c
        .query_one("SELECT count(*) FROM flows", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 2);
}

#[test]
fn a_failed_migration_leaves_nothing_behind() {
    let Some((mut c, _)) = fresh("failed_rolls_back") else {
        return;
    };
    // A table of that name makes migration 1 fail half-way (after the tracking table).
    c.batch_execute("CREATE TABLE flows (x int)").unwrap();
    assert!(matches!(migrate(&mut c), Err(MigrateError::Postgres(_))));
    assert_eq!(schema_version(&mut c).unwrap(), 0);
    let meta: bool = c
        .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    assert!(!meta, "the rolled-back migration left `meta` behind");
}

/// The plan of `query` as text, after the table holds `rows` rows and has been analysed.
fn plan(c: &mut Client, query: &str) -> String {
    c.query(&format!("EXPLAIN {query}"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_sweep_and_the_per_server_queries_use_an_index() {
    let Some((mut c, _)) = fresh("plans_use_indexes") else {
        return;
    };
    migrate(&mut c).unwrap();
    // 20k flows of 50 servers, a tenth of them expired, then statistics.
    c.batch_execute(
        "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, client_id, \
         status, created_at, expires_at) \
         SELECT sha256(i::text::bytea), rpad(i::text, 43, 'x'), 'v', 'https://s' || (i % 50), \
         'c', 'pending', i, CASE WHEN i % 10 = 0 THEN 1000 ELSE 10000000000000 END \
         FROM generate_series(1, 20000) AS i; ANALYZE flows",
    )
    .unwrap();
    let sweep = plan(
        &mut c,
        "SELECT id FROM flows WHERE expires_at <= 5000 ORDER BY expires_at LIMIT 500 \
         FOR UPDATE SKIP LOCKED",
    );
    assert!(sweep.contains("flows_by_expiry"), "{sweep}");
    let server = plan(
        &mut c,
        "SELECT count(*) FROM flows WHERE server_id = 'https://s7' AND client_id = 'c' \
         AND status = 'pending'",
    );
    assert!(server.contains("flows_by_server"), "{server}");
    let by_state = plan(
        &mut c,
        "SELECT id FROM flows WHERE state_key = sha256('7'::bytea) FOR UPDATE",
    );
    assert!(by_state.contains("flows_state_key_key"), "{by_state}");
}

fn spawn(test: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args([
        test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child")
}

/// What a child printed after `prefix`, one item a line (the test runner may have printed the
/// test's name earlier on the same line).
fn stdout_lines(out: &Output, prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.find(prefix).map(|i| l[i + prefix.len()..].to_owned()))
        .collect()
}

#[test]
fn many_processes_migrating_a_fresh_database_make_one_schema() {
    const PROCESSES: usize = 8;
    let Some(cluster) = pg::cluster("many_processes_migrate") else {
        return;
    };
    let url = cluster.fresh_database("many_migrate");
    // Everyone starts at the same instant, a moment after the last child is spawned.
    let go = (SystemClock.now_ms() + 1500).to_string();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| spawn(CHILD_MIGRATE, &[(URL_VAR, &url), ("OSS_TEST_GO_MS", &go)]))
        .collect();
    let mut froms = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("child output");
        assert!(
            out.status.success(),
            "a migrating process failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = stdout_lines(&out, "MIGRATED ");
        assert_eq!(lines.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
        froms.push(lines[0].clone());
    }
    froms.sort();
    let mut expected = vec![format!("{SCHEMA_VERSION} -> {SCHEMA_VERSION}"); PROCESSES - 1];
    expected.insert(0, format!("0 -> {SCHEMA_VERSION}"));
    assert_eq!(
        froms, expected,
        "exactly one process applies the migrations"
    );

    let mut c = client(&url);
    let Some((mut declared, _)) = fresh("many_migrate_declared") else {
        return;
    };
    declared
        .batch_execute(include_str!("../../../schema_postgres.sql"))
        .unwrap();
    assert_eq!(catalog(&mut c), catalog(&mut declared), "one schema");
    let (recorded, ids): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM oauth_state_store_migrations), \
                 (SELECT count(*) FROM meta WHERE key = 'store_id')",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((recorded, ids), (SCHEMA_VERSION, 1));
}

/// Child of `many_processes_migrating_a_fresh_database_make_one_schema`: waits for the common
/// start instant, migrates, prints `MIGRATED from -> to`.
#[test]
#[ignore = "child process of many_processes_migrating_a_fresh_database_make_one_schema"]
fn child_migrates() {
    let (Ok(url), Ok(go)) = (std::env::var(URL_VAR), std::env::var("OSS_TEST_GO_MS")) else {
        println!("child_migrates runs as a child of its parent test only");
        return;
    };
    let go: i64 = go.parse().unwrap();
    let wait = go - SystemClock.now_ms();
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
    let mut c = client(&url);
    let report = migrate(&mut c).expect("migrate");
    println!("MIGRATED {} -> {}", report.from, report.to);
}

#[test]
fn missing_binaries_skip_the_tests_unless_they_are_required() {
    let skip = spawn(
        CHILD_SKIP,
        &[(pg::BIN_VAR, "/nonexistent"), (pg::REQUIRE_VAR, "0")],
    )
    .wait_with_output()
    .unwrap();
    assert!(skip.status.success(), "{skip:?}");
    assert_eq!(
        stdout_lines(&skip, "SKIPPED: ").len(),
        1,
        "{}",
        String::from_utf8_lossy(&skip.stdout)
    );
    let required = spawn(
        CHILD_SKIP,
        &[(pg::BIN_VAR, "/nonexistent"), (pg::REQUIRE_VAR, "1")],
    )
    .wait_with_output()
    .unwrap();
    assert!(
        !required.status.success(),
        "a required PostgreSQL was skipped"
    );
    assert!(String::from_utf8_lossy(&required.stderr).contains(pg::REQUIRE_VAR));
}

/// Child of `missing_binaries_skip_the_tests_unless_they_are_required`.
#[test]
#[ignore = "child process of missing_binaries_skip_the_tests_unless_they_are_required"]
fn child_asks_for_a_cluster() {
    if let Some(c) = pg::cluster("child_asks_for_a_cluster") {
        println!("STARTED on port {}", c.port());
    }
}
