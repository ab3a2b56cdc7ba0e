//! The database check against a real server (the throwaway cluster of `tests/common/pg.rs`).

use std::collections::BTreeSet;

use super::*;
use crate::backend::postgres::test_cluster as pg;

fn client(url: &str) -> Client {
    let config = connect::config(url).expect("test URL");
    connect::connect(&config).expect("connect")
}

/// Every relation, column and index of the current schema, and the recorded migrations: what
/// a check must leave as it was.
fn snapshot(c: &mut Client) -> Vec<String> {
    const QUERY: &str = "SELECT c.relname::text || ' ' || c.relkind::text || ' ' \
         || coalesce((SELECT string_agg(attname::text, ',' ORDER BY attnum) FROM pg_attribute \
         WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped), '') FROM pg_class c \
         WHERE c.relnamespace = current_schema()::regnamespace ORDER BY 1";
    let mut lines: Vec<String> = c
        .query(QUERY, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    if migrate::schema_version(c).unwrap() > 0 {
        let n: i64 = c
            .query_one("SELECT count(*) FROM oauth_state_store_migrations", &[])
            .unwrap()
            .get(0);
        lines.push(format!("recorded {n}"));
    }
    lines
}

fn flat(e: &Expected) -> (BTreeSet<String>, BTreeSet<String>) {
    let columns = e
        .tables
        .iter()
        .flat_map(|(t, cs)| {
            std::iter::once(format!("table {t}")).chain(cs.iter().map(move |c| format!("{t}.{c}")))
        })
        .collect();
    let indexes = e
        .indexes
        .iter()
        .map(|(i, t)| format!("{i} on {t}"))
        .collect();
    (columns, indexes)
}

#[test]
fn the_schema_file_declares_the_tables_columns_and_indexes() {
    let want = expected();
    let (columns, indexes) = flat(&want);
    for item in [
        "table flows",
        "table meta",
        "flows.state_key",
        "flows.code_verifier",
    ] {
        assert!(columns.contains(item), "{item}: {columns:#?}");
    }
    for index in [
        "flows_pkey on flows",
        "meta_pkey on meta",
        "flows_state_key_key on flows",
        "flows_code_challenge_key on flows",
        "flows_by_expiry on flows",
        "flows_by_server on flows",
    ] {
        assert!(indexes.contains(index), "{index}: {indexes:#?}");
    }
    // Constraints and CHECKs are not columns.
    assert!(!columns
        .iter()
        .any(|c| c.contains("CHECK") || c.contains("CONSTRAINT")));
}

#[test]
fn the_reader_takes_lower_case_keywords_and_added_columns() {
    let sql = "create table t (id bigint primary key, a text, -- a comment, with a comma\n\
               b text check (length(b) < 3), constraint t_a_key unique (a), check(a <> b));\n\
               ALTER TABLE t ADD COLUMN IF NOT EXISTS c text;\n\
               alter table t add d int;\n\
               ALTER TABLE t ADD CONSTRAINT t_d_key UNIQUE (d);\n\
               create unique index if not exists t_by_b on t (b);\n\
               CREATE INDEX CONCURRENTLY t_by_c ON ONLY t(c);";
    let e = parse(sql);
    assert_eq!(
        e.tables,
        [(
            "t".to_owned(),
            vec!["id".into(), "a".into(), "b".into(), "c".into(), "d".into()]
        )]
    );
    assert_eq!(
        e.indexes,
        [
            ("t_pkey".to_owned(), "t".to_owned()),
            ("t_a_key".into(), "t".into()),
            ("t_d_key".into(), "t".into()),
            ("t_by_b".into(), "t".into()),
            ("t_by_c".into(), "t".into()),
        ]
    );
}

#[test]
fn what_is_looked_for_equals_the_catalog_of_a_migrated_database() {
    let Some(cluster) = pg::cluster("check_expected_equals_catalog") else {
        return;
    };
    let mut c = client(&cluster.fresh_database("check_expected"));
    migrate::migrate(&mut c, &migrate::CURRENT).unwrap();
    let mut catalog = Expected::default();
    for row in c
        .query(
            "SELECT relname::text FROM pg_class WHERE relkind = 'r' \
             AND relnamespace = current_schema()::regnamespace \
             AND relname <> 'oauth_state_store_migrations' ORDER BY 1",
            &[],
        )
        .unwrap()
    {
        let table: String = row.get(0);
        let columns = c
            .query(COLUMNS, &[&table])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for r in c
            .query(
                "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = to_regclass($1)",
                &[&table],
            )
            .unwrap()
        {
            catalog.indexes.push((r.get(0), table.clone()));
        }
        catalog.tables.push((table, columns));
    }
    assert_eq!(
        flat(&expected()),
        flat(&catalog),
        "the check would look for other objects than the migrations make"
    );
}

#[test]
fn a_migrated_database_passes_and_a_damaged_one_has_a_line_per_missing_object() {
    let Some(cluster) = pg::cluster("check_damaged") else {
        return;
    };
    let url = cluster.fresh_database("check_damaged");
    let mut c = client(&url);
    migrate::migrate(&mut c, &migrate::CURRENT).unwrap();
    let ok = check(&url, Duration::from_secs(5)).unwrap();
    assert!(ok.is_ok(), "{:#?}", ok.problems);
    assert_eq!(ok.schema_version, SCHEMA_VERSION);
    assert!(ok.checked.contains(&"index flows_by_expiry".to_owned()));
    assert!(ok.checked.contains(&"column flows.state_key".to_owned()));
    assert!(ok.server_version.starts_with(char::is_numeric));

    c.batch_execute(
        "DROP INDEX flows_by_server; ALTER TABLE flows DROP COLUMN scope; \
         DELETE FROM meta WHERE key = 'store_id'",
    )
    .unwrap();
    let before = snapshot(&mut c);
    let damaged = check(&url, Duration::from_secs(5)).unwrap();
    let messages: Vec<&str> = damaged
        .problems
        .iter()
        .map(|p| p.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "column flows.scope is missing",
            "index flows_by_server on flows is missing",
            "the store has no store_id in meta",
        ]
    );
    assert!(damaged
        .problems
        .iter()
        .all(|p| p.kind == ProblemKind::Schema));
    assert_eq!(snapshot(&mut c), before, "the check changed the database");
}

#[test]
fn an_empty_or_older_database_is_one_problem_and_stays_as_it_was() {
    let Some(cluster) = pg::cluster("check_empty") else {
        return;
    };
    let url = cluster.fresh_database("check_empty");
    let mut c = client(&url);
    let before = snapshot(&mut c);
    let empty = check(&url, Duration::from_secs(5)).unwrap();
    assert_eq!(empty.schema_version, 0);
    assert_eq!(empty.problems.len(), 1, "{:#?}", empty.problems);
    assert!(empty.problems[0].fix.contains("oauth-state-store migrate"));
    assert!(empty.checked.is_empty());
    assert_eq!(snapshot(&mut c), before, "the check created something");

    // A recorded version above this code's: one problem, nothing else looked at.
    migrate::migrate(&mut c, &migrate::CURRENT).unwrap();
    c.execute(
        "INSERT INTO oauth_state_store_migrations (version, name) VALUES ($1, 'future')",
        &[&(SCHEMA_VERSION + 1)],
    )
    .unwrap();
    let newer = check(&url, Duration::from_secs(5)).unwrap();
    assert_eq!(newer.problems.len(), 1, "{:#?}", newer.problems);
    assert!(newer.problems[0].fix.contains("upgrade"));
}

#[test]
fn an_unreachable_server_is_unavailable_and_a_bad_url_is_not_repeated() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgresql://u:pw-secret@127.0.0.1:{port}/db?sslmode=disable");
    let e = check(&url, Duration::from_secs(1)).unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    let e = check(
        "postgres://u:pw-secret@h:notaport/db",
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("pw-secret"));
}
