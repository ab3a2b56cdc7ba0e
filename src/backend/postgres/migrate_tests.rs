//! The PostgreSQL migrator against a real server (the throwaway cluster of
//! `tests/common/pg.rs`), and the harness's own skip rule.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::*;
use crate::backend::postgres::connect;
use crate::backend::postgres::test_cluster as pg;
use crate::clock::{Clock, SystemClock};
use crate::{BeginRequest, Store, StoreOptions};

/// The test-only version 2: a column and an index, as a next version might add them. Never
/// shipped: only `StoreOptions::test_version_2`, which exists in the crate's tests alone,
/// opens a database with it.
const FIXTURE_V2: &str = "ALTER TABLE flows ADD COLUMN label TEXT \
     CHECK (label IS NULL OR length(label) <= 64); \
     CREATE INDEX flows_by_label ON flows (label, created_at);";

pub(crate) const TEST_VERSION_2: Plan = Plan {
    version: 2,
    schema: &[SCHEMA, FIXTURE_V2],
    migrations: &[Migration {
        version: 2,
        name: "test_label",
        sql: FIXTURE_V2,
    }],
};

const URL_VAR: &str = "OSS_TEST_PG_URL";
const CHILD_MIGRATE: &str = "backend::postgres::migrate::tests::child_migrates";
const CHILD_SKIP: &str = "backend::postgres::migrate::tests::child_asks_for_a_cluster";
const CHILD_FLOWS: &str = "backend::postgres::migrate::tests::child_runs_flows";

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
    assert_eq!(SCHEMA_VERSION, 1);
    for plan in [&CURRENT, &TEST_VERSION_2] {
        for (i, m) in plan.migrations.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 2, "migration {} out of order", m.name);
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
        let last = plan.migrations.last().map_or(1, |m| m.version);
        assert_eq!(last, plan.version);
    }
}

#[test]
fn a_new_database_gets_schema_postgres_sql_and_version_2_the_same_whether_new_or_migrated() {
    let Some((mut new, _)) = fresh("new_gets_schema") else {
        return;
    };
    let report = migrate(&mut new, &CURRENT).unwrap();
    assert_eq!((report.from, report.to), (0, SCHEMA_VERSION));
    let schema = catalog(&mut new);
    assert!(
        schema.iter().any(|l| l.contains("flows_by_expiry")),
        "{schema:#?}"
    );
    assert!(
        schema.iter().any(|l| l.contains("state_key bytea")),
        "{schema:#?}"
    );
    assert_eq!(schema_version(&mut new).unwrap(), SCHEMA_VERSION);
    // Version 2 over it equals version 2 made at once.
    let report = migrate(&mut new, &TEST_VERSION_2).unwrap();
    assert_eq!((report.from, report.to), (1, 2));
    let Some((mut at_once, _)) = fresh("new_at_version_2") else {
        return;
    };
    assert_eq!(migrate(&mut at_once, &TEST_VERSION_2).unwrap().from, 0);
    let migrated = catalog(&mut new);
    assert!(
        migrated.iter().any(|l| l.contains("flows_by_label")),
        "{migrated:#?}"
    );
    assert_eq!(migrated, catalog(&mut at_once));
    assert!(matches!(
        migrate(&mut new, &CURRENT),
        Err(MigrateError::TooNew(2))
    ));
}

#[test]
fn migrating_twice_is_a_no_op_and_keeps_the_store_id() {
    let Some((mut c, _)) = fresh("migrate_twice") else {
        return;
    };
    assert_eq!(schema_version(&mut c).unwrap(), 0);
    let first = migrate(&mut c, &CURRENT).unwrap();
    assert_eq!((first.from, first.to), (0, SCHEMA_VERSION));
    let id = store_id(&mut c).unwrap();
    assert_eq!(id.len(), 22);
    let second = migrate(&mut c, &CURRENT).unwrap();
    assert_eq!((second.from, second.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    assert_eq!(store_id(&mut c).unwrap(), id);
    let recorded: i64 = c
        .query_one("SELECT count(*) FROM oauth_state_store_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(recorded, 1);
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
    match migrate(&mut c, &CURRENT) {
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
        require_current(&mut c, &CURRENT),
        Err(MigrateError::Needed(0))
    ));
    assert!(
        catalog(&mut c).is_empty(),
        "require_current created something"
    );
    let tracking: bool = c.query_one(TRACKING_EXISTS, &[]).unwrap().get(0);
    assert!(!tracking, "require_current made the tracking table");
    migrate(&mut c, &CURRENT).unwrap();
    let current = require_current(&mut c, &CURRENT).unwrap();
    assert_eq!((current.from, current.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    // A current version without its store id needs the migrator (which makes one).
    c.batch_execute("DELETE FROM meta").unwrap();
    assert!(matches!(
        require_current(&mut c, &CURRENT),
        Err(MigrateError::Needed(SCHEMA_VERSION))
    ));
    migrate(&mut c, &CURRENT).unwrap();
    c.execute(RECORD, &[&(SCHEMA_VERSION + 1), &"from_the_future"])
        .unwrap();
    assert!(matches!(
        require_current(&mut c, &CURRENT),
        Err(MigrateError::TooNew(v)) if v == SCHEMA_VERSION + 1
    ));
    let e = MigrateError::Needed(0).into_error(&CURRENT, Duration::from_secs(1));
    assert!(e.to_string().contains("oauth-state-store migrate"), "{e}");
}

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// The index order PostgreSQL checks a row's unique indexes in follows their OIDs, which a
/// restore or a `REINDEX CONCURRENTLY` changes: a flow whose challenge and state are both
/// taken must still be a duplicate challenge.
#[test]
fn a_double_collision_is_a_duplicate_challenge_whatever_the_index_order() {
    let Some((mut c, url)) = fresh("double_collision_order") else {
        return;
    };
    migrate(&mut c, &CURRENT).unwrap();
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

/// A database where another program made a table named `flows` or `meta` is refused by every
/// open, with nothing created or changed (not even the migrator's own table).
#[test]
fn a_database_with_another_programs_flows_or_meta_is_not_a_store_and_unchanged() {
    for (i, setup) in [
        "CREATE TABLE flows (id int PRIMARY KEY, name text, steps text); \
         INSERT INTO flows VALUES (1, 'theirs', '')",
        "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
    ]
    .into_iter()
    .enumerate()
    {
        let Some((mut c, url)) = fresh(&format!("foreign_{i}")) else {
            return;
        };
        c.batch_execute(setup).unwrap();
        let before = catalog(&mut c);
        for (how, options) in [
            ("default", StoreOptions::default()),
            ("read_only", StoreOptions::default().read_only(true)),
            ("migrate(false)", StoreOptions::default().migrate(false)),
        ] {
            match options.open(&url) {
                Err(e @ Error::NotAStore { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains("another program"), "{text}");
                    assert!(!text.contains("postgres://"), "{text}");
                }
                other => panic!("{setup}, {how}: expected NotAStore, got {other:?}"),
            }
            assert_eq!(catalog(&mut c), before, "{setup}, {how}");
            let tracking: bool = c.query_one(TRACKING_EXISTS, &[]).unwrap().get(0);
            assert!(!tracking, "{setup}, {how}: the migrator's table was made");
        }
        assert!(matches!(
            migrate(&mut c, &CURRENT),
            Err(MigrateError::Foreign(_))
        ));
    }
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
    migrate(&mut c, &CURRENT).unwrap();
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
    // sweep --older-than walks the primary key in chunks.
    let walk = plan(
        &mut c,
        "SELECT id FROM flows WHERE id > 100 AND id <= 600 AND status = ANY('{consumed}') \
         AND coalesce(consumed_at, created_at) <= 5000 ORDER BY id LIMIT 500 \
         FOR UPDATE SKIP LOCKED",
    );
    assert!(walk.contains("flows_pkey"), "{walk}");
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
    assert_eq!((recorded, ids), (1, 1));
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
    let report = migrate(&mut c, &CURRENT).expect("migrate");
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

/// A version-1 database with pending flows is migrated to the test-only version 2 by a store
/// opened with it, while a child process of version 1 runs flows on it: the child sees no
/// error, goes on after the migration, and every flow left pending, before or during it, is
/// consumed afterwards.
#[test]
fn version_2_migrates_a_version_1_database_while_another_process_runs_flows() {
    let Some(cluster) = pg::cluster("version_2_migrates") else {
        return;
    };
    let url = cluster.fresh_database("version_2_migrates");
    let v1 = Store::open(&url).unwrap();
    assert_eq!(v1.migration().to, 1);
    let mut pending: Vec<String> = (0..20)
        .map(|_| {
            let flow = v1.begin(BeginRequest::new("srv")).unwrap();
            flow.state().secret().to_owned()
        })
        .collect();
    drop(v1);
    // 20k other rows, so that the migration's index holds its lock a while.
    client(&url)
        .batch_execute(
            "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, status, \
             created_at, expires_at) SELECT sha256(i::text::bytea), rpad(i::text, 43, 'x'), \
             'v', 'other', 'pending', 1, 10000000000000 FROM generate_series(1, 20000) AS i",
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mark = |name: &str| dir.path().join(name);
    let mut child = spawn(
        CHILD_FLOWS,
        &[
            (URL_VAR, &url),
            ("OSS_TEST_MARKS", dir.path().to_str().unwrap()),
        ],
    );
    let wait_for = |name: &str, child: &mut std::process::Child| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !mark(name).exists() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the child exited before {name}"
            );
            assert!(std::time::Instant::now() < deadline, "no {name}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for("ready", &mut child);
    let options = StoreOptions {
        test_version_2: true,
        ..StoreOptions::default()
    };
    let v2 = options.open(&url).unwrap();
    assert_eq!(v2.migration(), MigrationReport { from: 1, to: 2 });
    wait_for("saw-2", &mut child);
    std::fs::write(mark("stop"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout_lines(&out, "FLOWS ");
    let counts: Vec<u64> = line[0]
        .split_whitespace()
        .map(|w| w.split_once('=').unwrap().1.parse().unwrap())
        .collect();
    let [at_1, at_2, errors] = counts[..] else {
        panic!("{line:?}")
    };
    assert_eq!(errors, 0, "{stdout}");
    assert!(at_1 > 0 && at_2 > 0, "{line:?}");
    pending.extend(stdout_lines(&out, "PENDING "));
    assert!(pending.len() > 20, "the child left no flow pending");
    for state in &pending {
        v2.consume(state).unwrap();
    }
    let mut c = client(&url);
    assert_eq!(schema_version(&mut c).unwrap(), 2);
    assert!(matches!(
        Store::open(&url),
        Err(Error::DatabaseTooNew {
            found: 2,
            supported: 1
        })
    ));
}

/// Child of `version_2_migrates_a_version_1_database_while_another_process_runs_flows`: a
/// version-1 store runs flows (one in eight left pending, printed) until told to stop, and
/// counts its errors and its flows at each version.
#[test]
#[ignore = "child process of version_2_migrates_a_version_1_database_while_another_process_runs_flows"]
fn child_runs_flows() {
    let (Ok(url), Ok(marks)) = (std::env::var(URL_VAR), std::env::var("OSS_TEST_MARKS")) else {
        println!("child_runs_flows runs as a child of its parent test only");
        return;
    };
    let mark = |name: &str| std::path::Path::new(&marks).join(name);
    let store = Store::open(&url).unwrap();
    let mut version_client = client(&url);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (mut at, mut errors) = ([0u64; 2], 0u64);
    for i in 0u64.. {
        if mark("stop").exists() || std::time::Instant::now() > deadline {
            break;
        }
        let version = schema_version(&mut version_client).unwrap_or(0);
        let done = store.begin(BeginRequest::new("srv")).and_then(|flow| {
            if i % 8 == 0 {
                println!("PENDING {}", flow.state().secret());
                Ok(())
            } else {
                store.consume(flow.state().secret()).map(drop)
            }
        });
        match done {
            Ok(()) if version == 2 => at[1] += 1,
            Ok(()) => at[0] += 1,
            Err(e) => {
                eprintln!("child: {e}");
                errors += 1;
            }
        }
        if i == 10 {
            std::fs::write(mark("ready"), "").unwrap();
        }
        if at[1] == 50 {
            std::fs::write(mark("saw-2"), "").unwrap();
        }
    }
    println!("FLOWS at_1={} at_2={} errors={errors}", at[0], at[1]);
}
