//! The PostgreSQL migrator against a real server (the throwaway cluster of
//! `tests/common/pg.rs`); across processes, and the harness's own skip rule, in
//! `migrate_process_tests.rs`.

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

/// The plan of the prepared statement `sql` run with `args`, under `mode` (`plan_cache_mode`:
/// `force_generic_plan` is the plan a connection may settle on after its first runs), as text.
fn prepared_plan(c: &mut Client, mode: &str, name: &str, sql: &str, args: &str) -> String {
    c.batch_execute(&format!(
        "DEALLOCATE ALL; SET plan_cache_mode = {mode}; PREPARE p_{name} AS {sql}"
    ))
    .unwrap();
    c.query(&format!("EXPLAIN EXECUTE p_{name}({args})"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The indexes a plan scans, one entry a scan.
fn scanned_indexes(plan: &str) -> Vec<&str> {
    plan.lines()
        .filter_map(|l| {
            let l = l.trim_start_matches([' ', '-', '>']);
            [
                "Index Scan using ",
                "Index Only Scan using ",
                "Bitmap Index Scan on ",
            ]
            .iter()
            .find_map(|p| l.strip_prefix(p))
            .and_then(|rest| rest.split_whitespace().next())
        })
        .collect()
}

#[test]
fn the_sweep_and_the_per_server_statements_use_an_index_in_their_plans() {
    use crate::backend::postgres::{flows as f, maintenance as m};
    let Some((mut c, _)) = fresh("plans_use_indexes") else {
        return;
    };
    migrate(&mut c, &CURRENT).unwrap();
    // 20k flows of 50 servers and 3 clients in every status, a tenth of them expired, then
    // statistics.
    c.batch_execute(
        "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, client_id, \
         status, created_at, expires_at, consumed_at) \
         SELECT CASE WHEN i % 5 = 0 THEN NULL ELSE sha256(i::text::bytea) END, \
         rpad(i::text, 43, 'x'), CASE WHEN i % 5 IN (3, 4) THEN NULL ELSE 'v' END, \
         'https://s' || (i % 50), 'c' || (i % 3), \
         (ARRAY['unbound', 'pending', 'completed', 'failed', 'consumed'])[i % 5 + 1], i, \
         CASE WHEN i % 10 = 0 THEN 1000 + i ELSE 10000000000000 END, \
         CASE WHEN i % 5 = 4 THEN i END \
         FROM generate_series(1, 20000) AS i; ANALYZE flows",
    )
    .unwrap();
    // (statement, its arguments, the indexes its generic plan may scan, the one its plan for
    // these arguments scans). Not knowing its LIMIT, the generic plan of a server's live
    // verifiers may walk the expiry index and stop at the limit; a listing's generic plan
    // walks it in the listing's order.
    let server = ["flows_by_server"];
    let cases: [(&str, &str, &str, &[&str], &str); 8] = [
        (
            "expired_batch",
            m::DELETE_EXPIRED_BATCH,
            "5000, 500",
            &["flows_by_expiry"],
            "flows_by_expiry",
        ),
        (
            "of_server",
            m::DELETE_OF_SERVER,
            "'https://s7', 'c1', '{pending,unbound}'",
            &server,
            "flows_by_server",
        ),
        (
            "live_verifiers",
            f::SELECT_LIVE_VERIFIERS,
            "'https://s7', 'c1', 5000, '{pending}', 100000, 16",
            &["flows_by_server", "flows_by_expiry"],
            "flows_by_server",
        ),
        (
            "count_live",
            f::COUNT_LIVE,
            "'https://s7', 'c1', 5000, '{pending}', 100000",
            &["flows_by_server", "flows_by_expiry"],
            "flows_by_server",
        ),
        (
            "list",
            m::LIST_FLOWS,
            "'pending', NULL, 'https://s7'",
            &["flows_by_expiry"],
            "flows_by_server",
        ),
        (
            "walk_window",
            m::WALK_WINDOW,
            "100, 500",
            &["flows_pkey"],
            "flows_pkey",
        ),
        (
            "ended_chunk",
            m::DELETE_ENDED_CHUNK,
            "100, 600, '{consumed}', 5000, 500",
            &["flows_pkey"],
            "flows_pkey",
        ),
        (
            "by_state",
            f::SELECT_BY_STATE_FOR_UPDATE,
            "sha256('7'::bytea)",
            &["flows_state_key_key"],
            "flows_state_key_key",
        ),
    ];
    for (name, sql, args, generic, custom) in cases {
        let nulls = vec!["NULL"; args.split(", ").count()].join(", ");
        let plan = prepared_plan(&mut c, "force_generic_plan", name, sql, &nulls);
        let scans = scanned_indexes(&plan);
        assert!(!plan.contains("Seq Scan"), "{name}, generic: {plan}");
        assert!(
            !scans.is_empty() && scans.iter().all(|i| generic.contains(i)),
            "{name}, generic: {plan}"
        );
        let plan = prepared_plan(&mut c, "force_custom_plan", name, sql, args);
        assert!(!plan.contains("Seq Scan"), "{name}, custom: {plan}");
        assert!(
            scanned_indexes(&plan).contains(&custom),
            "{name}, custom: {plan}"
        );
        if name == "expired_batch" {
            // The window's last row and the delete up to it: both range scans of the expiry
            // index, in its generic plan too.
            assert_eq!(scans, ["flows_by_expiry"; 2], "{name}: {plan}");
        }
    }
}

#[path = "migrate_process_tests.rs"]
mod processes;
