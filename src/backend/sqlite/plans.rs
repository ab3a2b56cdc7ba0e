//! `EXPLAIN QUERY PLAN` checks over every statement the crate runs.
//!
//! [`STATEMENTS`] lists every statement constant of the SQLite engine with what its plan must
//! show. A test reads the engine's sources and fails when a `const NAME: &str` there is not in
//! the list, and another fails when SQL appears outside the engine, so a new statement cannot
//! slip past.

use std::path::Path;

use rusqlite::Connection;

use super::{admin as a, check as c, flows as f, header as h, maintenance as mt, migrate as m};
use super::{tokens as t, wal as w};

/// What a statement's plan must show.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Per row or per batch: searches this index (or the rowid), never scans the table.
    Search(&'static [&'static str]),
    /// Reads the whole table by design (statistics, a listing); named so it is a decision.
    WholeTable,
    /// Not a query with a plan: an `INSERT ... VALUES`, a `PRAGMA`, `VACUUM`, a batch.
    NotAQuery,
}

use Plan::{NotAQuery, Search, WholeTable};

const BY_ID: &[&str] = &["INTEGER PRIMARY KEY"];

/// Every statement constant of `backend/sqlite/`, with its plan.
const STATEMENTS: &[(&str, &str, Plan)] = &[
    (
        "SELECT_BY_STATE",
        f::SELECT_BY_STATE,
        Search(&["sqlite_autoindex_flows_1", "INTEGER PRIMARY KEY"]),
    ),
    (
        "SELECT_BY_CHALLENGE",
        f::SELECT_BY_CHALLENGE,
        Search(&["flows_by_challenge", "INTEGER PRIMARY KEY"]),
    ),
    ("INSERT_FLOW", f::INSERT_FLOW, NotAQuery),
    ("BIND", f::BIND, Search(BY_ID)),
    ("COMPLETE", f::COMPLETE, Search(BY_ID)),
    ("FAIL", f::FAIL, Search(BY_ID)),
    ("CONSUME", f::CONSUME, Search(BY_ID)),
    ("DELETE_BY_ID", f::DELETE_BY_ID, Search(BY_ID)),
    (
        "SELECT_LIVE_VERIFIERS",
        f::SELECT_LIVE_VERIFIERS,
        Search(&["flows_by_server"]),
    ),
    ("COUNT_LIVE", f::COUNT_LIVE, Search(&["flows_by_server"])),
    (
        "ANY_LIVE_FOR_REDIRECT",
        f::ANY_LIVE_FOR_REDIRECT,
        Search(&["flows USING INTEGER PRIMARY KEY"]),
    ),
    (
        "DELETE_OF_SERVER",
        mt::DELETE_OF_SERVER,
        Search(&["flows_by_server"]),
    ),
    (
        "DELETE_EXPIRED_BATCH",
        mt::DELETE_EXPIRED_BATCH,
        Search(&["flows USING INTEGER PRIMARY KEY (rowid<?)"]),
    ),
    (
        "WALK_WINDOW",
        mt::WALK_WINDOW,
        Search(&["flows USING INTEGER PRIMARY KEY (rowid>?)"]),
    ),
    (
        "DELETE_ENDED_CHUNK",
        mt::DELETE_ENDED_CHUNK,
        Search(&["flows USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"]),
    ),
    (
        "COUNT_EXPIRED",
        mt::COUNT_EXPIRED,
        Search(&["flows USING INTEGER PRIMARY KEY (rowid<?)"]),
    ),
    ("COUNT_REMOVABLE", mt::COUNT_REMOVABLE, WholeTable),
    ("STATS", mt::STATS, WholeTable),
    ("LIST_FLOWS", mt::LIST_FLOWS, WholeTable),
    (
        "LIST_FLOWS_OF_SERVER",
        mt::LIST_FLOWS_OF_SERVER,
        Search(&["flows_by_server"]),
    ),
    (
        "SELECT_STORE_ID",
        m::SELECT_STORE_ID,
        Search(&["sqlite_autoindex_meta_1"]),
    ),
    ("SELECT_USER_VERSION", m::SELECT_USER_VERSION, NotAQuery),
    ("SELECT_APPLICATION_ID", m::SELECT_APPLICATION_ID, NotAQuery),
    ("SELECT_TABLES", h::SELECT_TABLES, WholeTable),
    ("COUNT_SCHEMA_OBJECTS", m::COUNT_SCHEMA_OBJECTS, WholeTable),
    ("INSERT_STORE_ID", m::INSERT_STORE_ID, NotAQuery),
    ("SCHEMA", m::SCHEMA, NotAQuery),
    ("FIXTURE_V2", m::tests::FIXTURE_V2, NotAQuery),
    ("CHECKPOINT_PASSIVE", w::CHECKPOINT_PASSIVE, NotAQuery),
    ("TOUCH_META", w::TOUCH_META, NotAQuery),
    (
        "SELECT_WAL_AUTOCHECKPOINT",
        w::SELECT_WAL_AUTOCHECKPOINT,
        NotAQuery,
    ),
    ("SELECT_JOURNAL_MODE", a::SELECT_JOURNAL_MODE, NotAQuery),
    ("VACUUM", a::VACUUM, NotAQuery),
    ("CHECKPOINT_TRUNCATE", a::CHECKPOINT_TRUNCATE, NotAQuery),
    ("INTEGRITY_CHECK", c::INTEGRITY_CHECK, NotAQuery),
    (
        "SELECT_TOKEN_ROW",
        t::SELECT_TOKEN_ROW,
        Search(&["token_sets_by_key", "INTEGER PRIMARY KEY"]),
    ),
    (
        "SELECT_TOKEN_WATCH",
        t::SELECT_TOKEN_WATCH,
        Search(&["token_sets_by_key"]),
    ),
    ("INSERT_TOKENS", t::INSERT_TOKENS, NotAQuery),
    ("REPLACE_TOKENS", t::REPLACE_TOKENS, Search(BY_ID)),
    ("SET_TOKEN_ISSUER", t::SET_TOKEN_ISSUER, Search(BY_ID)),
    ("TAKE_LEASE", t::TAKE_LEASE, Search(BY_ID)),
    ("CLEAR_LEASE", t::CLEAR_LEASE, Search(BY_ID)),
    ("REVOKE_TOKENS", t::REVOKE_TOKENS, Search(BY_ID)),
    (
        "DELETE_TOKENS",
        t::DELETE_TOKENS,
        Search(&["token_sets_by_key"]),
    ),
    ("LIST_TOKENS", t::LIST_TOKENS, WholeTable),
    (
        "LIST_TOKENS_OF_SERVER",
        t::LIST_TOKENS_OF_SERVER,
        Search(&["token_sets_by_key"]),
    ),
];

/// String constants of the engine that are not SQL.
const NOT_STATEMENTS: &[&str] = &["CORRUPT_FIX", "CHILD", "DB_VAR"];

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

/// A new file (`schema.sql`), in memory.
fn file() -> Connection {
    let mut new = Connection::open_in_memory().unwrap();
    m::migrate(&mut new, &m::CURRENT).unwrap();
    new
}

#[test]
fn every_per_row_and_per_batch_statement_searches_an_index() {
    let conn = file();
    for (name, sql, expect) in STATEMENTS {
        let Search(indexes) = expect else {
            continue;
        };
        let p = plan(&conn, sql);
        for index in *indexes {
            assert!(p.contains(index), "{name} does not use {index}: {p}");
        }
        assert!(
            !p.contains("SCAN flows") && !p.contains("SCAN token_sets"),
            "{name} scans a table: {p}"
        );
    }
}

#[test]
fn whole_table_statements_still_prepare() {
    let conn = file();
    for (name, sql, expect) in STATEMENTS {
        if matches!(expect, WholeTable) {
            assert!(!plan(&conn, sql).is_empty(), "{name}");
        }
    }
}

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names of the `const NAME: &str` items in `text`.
fn str_consts(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let rest = line
                .trim_start()
                .strip_prefix("pub(crate) ")
                .unwrap_or(line.trim_start());
            let rest = rest.strip_prefix("const ")?;
            let (name, ty) = rest.split_once(':')?;
            ty.trim_start()
                .starts_with("&str")
                .then(|| name.trim().to_owned())
        })
        .collect()
}

#[test]
fn every_statement_constant_of_the_engine_is_listed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/backend/sqlite");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(files.len() > 5, "{files:?}");
    let listed: Vec<&str> = STATEMENTS.iter().map(|(n, _, _)| *n).collect();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for name in str_consts(&text) {
            assert!(
                listed.contains(&name.as_str()) || NOT_STATEMENTS.contains(&name.as_str()),
                "{name} in {} is not in plans::STATEMENTS: list it with its expected plan",
                file.display()
            );
        }
    }
}

#[test]
fn no_sql_outside_the_engine() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let engines = [src.join("backend/sqlite"), src.join("backend/postgres")];
    let mut files = Vec::new();
    sources(&src, &mut files);
    for file in files
        .iter()
        .filter(|f| !engines.iter().any(|e| f.starts_with(e)))
    {
        let text = std::fs::read_to_string(file).unwrap();
        for verb in ["SELECT ", "INSERT ", "UPDATE ", "DELETE ", "PRAGMA "] {
            assert!(
                !text.contains(&format!("\"{verb}")),
                "{} holds SQL ({verb}); statements belong in an engine (backend/sqlite, \
                 backend/postgres)",
                file.display()
            );
        }
    }
}

/// The `CREATE INDEX` statement of `name` in a new file.
fn index_sql(name: &str) -> String {
    file()
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("index {name}: {e}"))
}

/// The indexes of a new file: the state key's, the challenge's, a server's rows, the token
/// sets' key; none for ended rows (`sweep --older-than` walks the rowid order) or for expiry
/// (the rowid order).
#[test]
fn a_new_file_has_the_indexes_its_per_row_statements_need_and_no_other() {
    let mut names: Vec<String> = file()
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "flows_by_challenge",
            "flows_by_server",
            "sqlite_autoindex_flows_1",
            "sqlite_autoindex_meta_1",
            "token_sets_by_key"
        ]
    );
}

#[test]
fn a_status_change_writes_no_entry_in_the_per_server_index() {
    let index = index_sql("flows_by_server");
    assert!(index.contains("server_id, client_id"), "{index}");
    assert!(!index.contains("status"), "{index}");
}

#[test]
fn the_id_statements_and_the_table_agree_on_the_id_step_and_the_latest_expiry() {
    let step = f::ID_STEP.to_string();
    for sql in [
        f::INSERT_FLOW,
        f::ANY_LIVE_FOR_REDIRECT,
        mt::DELETE_EXPIRED_BATCH,
        mt::COUNT_REMOVABLE,
    ] {
        assert!(sql.contains(&format!("* {step}")), "{sql}");
    }
    assert!(f::INSERT_FLOW.contains(&format!("+ {}", f::ID_STEP - 1)));
    let table: String = file()
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'flows'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(table.contains(&format!("expires_at * {step}")), "{table}");
    assert!(
        table.contains(&format!("BETWEEN 1 AND {}", f::MAX_EXPIRY)),
        "{table}"
    );
    // The largest id the insert can make fits an INTEGER PRIMARY KEY.
    let last = f::MAX_EXPIRY
        .checked_mul(f::ID_STEP)
        .and_then(|id| id.checked_add(f::ID_STEP - 1));
    assert_eq!(last, Some(i64::MAX));
}
