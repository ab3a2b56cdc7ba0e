//! `EXPLAIN QUERY PLAN` checks: the hot statements search an index, never scan the table.

use rusqlite::Connection;

use crate::{maintenance as m, migrate, ops as o};

fn plan(conn: &Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let count = stmt.parameter_count();
    let params: Vec<rusqlite::types::Value> = (0..count)
        .map(|_| rusqlite::types::Value::Integer(1))
        .collect();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect::<Vec<_>>().join(" | ")
}

#[test]
fn hot_statements_use_an_index() {
    let mut conn = Connection::open_in_memory().unwrap();
    migrate::migrate(&mut conn).unwrap();
    let cases = [
        (
            "consume/check lookup",
            o::SELECT_BY_STATE,
            "sqlite_autoindex_flows_1",
        ),
        (
            "promote lookup",
            o::SELECT_BY_CHALLENGE,
            "sqlite_autoindex_flows_2",
        ),
        ("bind", o::BIND, "INTEGER PRIMARY KEY"),
        ("consume update", o::CONSUME, "INTEGER PRIMARY KEY"),
        ("complete", o::COMPLETE, "INTEGER PRIMARY KEY"),
        ("fail", o::FAIL, "INTEGER PRIMARY KEY"),
        (
            "expired delete",
            o::DELETE_EXPIRED_BY_ID,
            "INTEGER PRIMARY KEY",
        ),
        ("sweep", m::SWEEP_BATCH, "flows_by_expiry"),
        ("invalidate", m::INVALIDATE, "flows_by_server"),
        (
            "pending verifier",
            m::SELECT_LIVE_BOUND_VERIFIERS,
            "flows_by_server",
        ),
        ("pending count", m::COUNT_LIVE_BOUND, "flows_by_server"),
    ];
    for (what, sql, index) in cases {
        let p = plan(&conn, sql);
        assert!(p.contains(index), "{what} does not use {index}: {p}");
        assert!(!p.contains("SCAN flows"), "{what} scans the table: {p}");
    }
}
