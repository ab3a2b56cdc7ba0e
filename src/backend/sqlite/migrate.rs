//! Schema migrations: `migrations/NNNN_name.sql`, applied in order, tracked by
//! `PRAGMA user_version`, each run inside one `BEGIN IMMEDIATE` transaction.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::admin::OldTable;
use crate::error::{Error, Result};

/// One migration: the version it brings the file to, its name, its SQL.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "sdk_fields",
        sql: include_str!("../../../migrations/0002_sdk_fields.sql"),
    },
    Migration {
        version: 3,
        name: "finished_index",
        sql: include_str!("../../../migrations/0003_finished_index.sql"),
    },
    Migration {
        version: 4,
        name: "discovery",
        sql: include_str!("../../../migrations/0004_discovery.sql"),
    },
    Migration {
        version: 5,
        name: "server_index",
        sql: include_str!("../../../migrations/0005_server_index.sql"),
    },
    Migration {
        version: 6,
        name: "ended_index",
        sql: include_str!("../../../migrations/0006_ended_index.sql"),
    },
    Migration {
        version: 7,
        name: "flow_rows",
        sql: include_str!("../../../migrations/0007_flow_rows.sql"),
    },
];

/// The schema version this code writes and understands.
pub const SCHEMA_VERSION: i64 = 7;

/// What a new file gets, in one transaction: `schema.sql`, which the migrations also lead to
/// (an older file keeps its old table beside it; see `schema.sql`).
pub(crate) const SCHEMA: &str = include_str!("../../../schema.sql");

/// The one store-id query.
pub(crate) const SELECT_STORE_ID: &str = "SELECT value FROM meta WHERE key = 'store_id'";
pub(crate) const SELECT_USER_VERSION: &str = "PRAGMA user_version";
pub(crate) const INSERT_STORE_ID: &str =
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?1)";

/// What migrating the file on open did (see [`Store::migration`](crate::Store::migration)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MigrationReport {
    /// The file's schema version before.
    pub from: i64,
    /// The file's schema version after.
    pub to: i64,
}

/// Reads the file's schema version.
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(SELECT_USER_VERSION, [], |r| r.get(0))
}

/// A migration that held the write lock longer than this is followed by [`STEP_GAP`].
const LONG_STEP: Duration = Duration::from_millis(20);
/// The pause after a long migration, before the next one takes the lock.
const STEP_GAP: Duration = Duration::from_millis(100);

/// Brings the schema up to [`SCHEMA_VERSION`] and makes sure the file has a `store_id`.
///
/// Each migration runs in its own `BEGIN IMMEDIATE` transaction, with the `user_version` it
/// brings: other processes' writes get the lock between two migrations instead of waiting for
/// all of them (BENCHMARKS.md, "Migration"), and a migration interrupted by a crash leaves the
/// file at the version before it. Safe to run from many processes at once: the version is read
/// again inside each write transaction, so exactly one of them applies each migration.
pub(crate) fn migrate(conn: &mut Connection) -> Result<MigrationReport, MigrateError> {
    let mut from = None;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut version = user_version(&tx)?;
        if version > SCHEMA_VERSION {
            return Err(MigrateError::TooNew(version));
        }
        from.get_or_insert(version);
        if version == 0 {
            // A new file: the current schema at once, without the old table and its triggers
            // that the migrations keep for an older file's rows.
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            version = SCHEMA_VERSION;
        }
        let Some(m) = MIGRATIONS.iter().find(|m| m.version > version) else {
            let store_id: Option<String> =
                tx.query_row(SELECT_STORE_ID, [], |r| r.get(0)).optional()?;
            if store_id.is_none() {
                let id: [u8; 16] = rand::random();
                tx.execute(INSERT_STORE_ID, [URL_SAFE_NO_PAD.encode(id)])?;
            }
            tx.commit()?;
            break;
        };
        debug_assert!(!m.name.is_empty());
        let began = Instant::now();
        tx.execute_batch(m.sql)?;
        tx.pragma_update(None, "user_version", m.version)?;
        tx.commit()?;
        if began.elapsed() > LONG_STEP {
            // Writers that waited through this step get the lock before the next one, even
            // an older program's, whose SQLite handler sleeps up to 100 ms between tries.
            std::thread::sleep(STEP_GAP);
        }
    }
    Ok(MigrationReport {
        from: from.unwrap_or(SCHEMA_VERSION),
        to: SCHEMA_VERSION,
    })
}

/// The tables of the file, by name (SQLite's own excluded).
pub(crate) const SELECT_TABLES: &str = "SELECT name FROM sqlite_schema \
     WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";
/// How many schema objects of any kind the file has.
pub(crate) const COUNT_SCHEMA_OBJECTS: &str = "SELECT count(*) FROM sqlite_schema";
/// Whether the `meta` table has a `store_id` row (run only when the table exists).
pub(crate) const HAS_STORE_ID: &str = "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'store_id')";

/// Whether the file still has the table `flows` of version 6 and older, which a migrated file
/// keeps beside `flow_rows` until [`retire_old_table`] drops it.
pub(crate) const HAS_OLD_TABLE: &str = "SELECT EXISTS (SELECT 1 FROM sqlite_schema \
     WHERE type = 'table' AND name = 'flows')";
/// How many rows the old table holds (run only when it exists).
pub(crate) const COUNT_OLD_TABLE: &str = "SELECT count(*) FROM flows";
/// The old table, with its indexes and triggers, and the triggers of migration 0007 that look
/// into it: what a migrated file has beyond `schema.sql`.
pub(crate) const DROP_OLD_TABLE: &str = "DROP TRIGGER IF EXISTS flow_rows_unique_insert; \
     DROP TRIGGER IF EXISTS flow_rows_unique_bind; DROP TABLE flows;";

/// Makes `conn` a store the way a file of version 1 became one: migration 0001 and then the
/// others one by one, so that it keeps the old table.
#[cfg(test)]
pub(crate) fn migrate_from_version_1(conn: &mut Connection) {
    conn.execute_batch(MIGRATIONS[0].sql).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    migrate(conn).unwrap();
}

/// Whether the file has the old table.
pub(crate) fn has_old_table(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(HAS_OLD_TABLE, [], |r| r.get(0))
}

/// Drops the old table once it is empty, in one `BEGIN IMMEDIATE` transaction, so that a
/// migrated file is left with `schema.sql` alone (see `Store::drop_old_table`). A program of
/// version 6 or older that still has the file open fails from then on.
pub(crate) fn retire_old_table(conn: &Connection) -> rusqlite::Result<OldTable> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    if !has_old_table(&tx)? {
        return Ok(OldTable::Absent);
    }
    let rows: i64 = tx.query_row(COUNT_OLD_TABLE, [], |r| r.get(0))?;
    if rows > 0 {
        return Ok(OldTable::Kept { rows: rows as u64 });
    }
    tx.execute_batch(DROP_OLD_TABLE)?;
    tx.commit()?;
    Ok(OldTable::Dropped)
}

/// What a database file is, read without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// No schema at all: a new file, made a store by migrating it.
    Empty,
    /// A store (it has `meta.store_id`, or the `meta` table and a flows table of one that lost
    /// it) at this schema version.
    Store(i64),
    /// Something else; the text says what it seems to be.
    Foreign(String),
}

/// Tells an empty file, a store and another application's database apart.
pub(crate) fn file_kind(conn: &Connection) -> rusqlite::Result<FileKind> {
    let version = user_version(conn)?;
    let objects: i64 = conn.query_row(COUNT_SCHEMA_OBJECTS, [], |r| r.get(0))?;
    if objects == 0 && version == 0 {
        return Ok(FileKind::Empty);
    }
    let tables: Vec<String> = conn
        .prepare(SELECT_TABLES)?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let has = |name: &str| tables.iter().any(|t| t == name);
    if has("meta") {
        // Another application's `meta` table may lack the `key` column: that is no store id.
        let with_id: bool = match conn.query_row(HAS_STORE_ID, [], |r| r.get(0)) {
            Ok(found) => found,
            Err(rusqlite::Error::SqlInputError { .. }) => false,
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::Unknown => {
                false
            }
            Err(e) => return Err(e),
        };
        if with_id || ((has("flows") || has("flow_rows")) && version >= 1) {
            return Ok(FileKind::Store(version));
        }
    }
    Ok(FileKind::Foreign(describe(&tables, version)))
}

/// "an SQLite database with the tables users, sessions (user_version 7)".
fn describe(tables: &[String], version: i64) -> String {
    const SHOWN: usize = 5;
    let names: Vec<String> = tables
        .iter()
        .take(SHOWN)
        .map(|t| {
            t.chars()
                .take(40)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect()
        })
        .collect();
    let mut text = match tables.len() {
        0 => "an SQLite database without tables".to_string(),
        1 => format!("an SQLite database with the table {}", names[0]),
        _ => format!("an SQLite database with the tables {}", names.join(", ")),
    };
    if tables.len() > SHOWN {
        text.push_str(&format!(" and {} more", tables.len() - SHOWN));
    }
    if version != 0 {
        text.push_str(&format!(" (user_version {version})"));
    }
    text.push_str(", probably another application's");
    text
}

/// Reads the file's `store_id`.
pub(crate) fn store_id(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row(SELECT_STORE_ID, [], |r| r.get(0))
}

/// Migration failures before they are classified.
#[derive(Debug)]
pub(crate) enum MigrateError {
    TooNew(i64),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

impl MigrateError {
    pub(crate) fn into_error(self, busy_timeout: std::time::Duration) -> Error {
        match self {
            MigrateError::TooNew(found) => Error::DatabaseTooNew {
                found,
                supported: SCHEMA_VERSION,
            },
            MigrateError::Sqlite(e) => super::error::classify(e, busy_timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(conn: &Connection) -> Vec<(String, String, String)> {
        let mut stmt = conn
            .prepare(
                "SELECT type, name, sql FROM sqlite_schema \
                 WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
            )
            .unwrap();
        stmt.query_map([], |r| {
            let sql: String = r.get(2)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                sql.split_whitespace().collect::<Vec<_>>().join(" "),
            ))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
    }

    fn declared() -> Vec<(String, String, String)> {
        let declared = Connection::open_in_memory().unwrap();
        declared.execute_batch(SCHEMA).unwrap();
        schema_of(&declared)
    }

    #[test]
    fn a_new_file_gets_schema_sql() {
        let mut new = Connection::open_in_memory().unwrap();
        let report = migrate(&mut new).unwrap();
        assert_eq!((report.from, report.to), (0, SCHEMA_VERSION));
        assert!(!declared().is_empty());
        assert_eq!(schema_of(&new), declared());
        assert_eq!(user_version(&new).unwrap(), SCHEMA_VERSION);
        assert!(store_id(&new).is_ok());
        assert!(!has_old_table(&new).unwrap());
        assert_eq!(retire_old_table(&new).unwrap(), OldTable::Absent);
    }

    /// The migrations lead an older file to `schema.sql`, plus its old table (as version 6
    /// left it) and the triggers of migration 0007, which `retire_old_table` removes.
    #[test]
    fn schema_sql_equals_what_the_migrations_produce() {
        let six = Connection::open_in_memory().unwrap();
        six.execute_batch(MIGRATIONS[0].sql).unwrap();
        for m in &MIGRATIONS[1..6] {
            six.execute_batch(m.sql).unwrap();
        }
        let old: Vec<_> = schema_of(&six)
            .into_iter()
            .filter(|(_, name, _)| name != "meta")
            .collect();
        assert!(old
            .iter()
            .any(|(kind, name, _)| kind == "table" && name == "flows"));

        let mut migrated = Connection::open_in_memory().unwrap();
        migrate_from_version_1(&mut migrated);
        let (migrated_schema, declared) = (schema_of(&migrated), declared());
        for object in declared.iter().chain(&old) {
            assert!(
                migrated_schema.contains(object),
                "the migrations do not produce {object:?}"
            );
        }
        let extra: Vec<&str> = migrated_schema
            .iter()
            .filter(|o| !declared.contains(o) && !old.contains(o))
            .map(|(kind, name, _)| {
                assert_eq!(kind, "trigger", "{name}");
                name.as_str()
            })
            .collect();
        assert_eq!(
            extra,
            [
                "flow_rows_unique_bind",
                "flow_rows_unique_insert",
                "flows_unique_bind",
                "flows_unique_insert"
            ]
        );
        assert_eq!(user_version(&migrated).unwrap(), SCHEMA_VERSION);

        // Retired, the old table leaves exactly what a new file has.
        migrated
            .execute(
                "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, \
                 status, created_at, expires_at) VALUES (zeroblob(32), ?1, 'v', 's', \
                 'pending', 1, 2)",
                ["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"],
            )
            .unwrap();
        assert_eq!(
            retire_old_table(&migrated).unwrap(),
            OldTable::Kept { rows: 1 }
        );
        assert_eq!(schema_of(&migrated), migrated_schema);
        migrated.execute("DELETE FROM flows", []).unwrap();
        assert_eq!(retire_old_table(&migrated).unwrap(), OldTable::Dropped);
        assert_eq!(schema_of(&migrated), declared);
        assert!(!has_old_table(&migrated).unwrap());
        assert_eq!(retire_old_table(&migrated).unwrap(), OldTable::Absent);
    }

    #[test]
    fn migrations_are_numbered_in_order_and_end_at_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "migration {} out of order", m.name);
        }
        assert_eq!(MIGRATIONS.last().unwrap().version, SCHEMA_VERSION);
    }

    #[test]
    fn migrating_twice_is_a_no_op_and_keeps_the_store_id() {
        let mut c = Connection::open_in_memory().unwrap();
        let first = migrate(&mut c).unwrap();
        assert_eq!((first.from, first.to), (0, SCHEMA_VERSION));
        let id = store_id(&c).unwrap();
        let second = migrate(&mut c).unwrap();
        assert_eq!((second.from, second.to), (SCHEMA_VERSION, SCHEMA_VERSION));
        assert_eq!(store_id(&c).unwrap(), id);
    }

    #[test]
    fn a_version_1_file_keeps_its_rows_and_gains_the_sdk_columns() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(MIGRATIONS[0].sql).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute(
            "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, status, \
             created_at, expires_at) VALUES (zeroblob(32), ?1, 'v', 's', 'pending', 1, 2)",
            ["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"],
        )
        .unwrap();
        let report = migrate(&mut c).unwrap();
        assert_eq!((report.from, report.to), (1, SCHEMA_VERSION));
        let (require, created): (i64, Option<i64>) = c
            .query_row(
                "SELECT require_issuer, client_created_at FROM flows",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((require, created), (0, None));
    }

    #[test]
    fn a_version_3_file_keeps_its_pending_flows_and_gains_the_discovery_column() {
        use std::os::unix::fs::PermissionsExt;

        // RFC 7636 Appendix B.
        let (verifier, challenge) = (
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flows.db");
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "journal_mode", "WAL").unwrap();
            for m in &MIGRATIONS[..3] {
                c.execute_batch(m.sql).unwrap();
            }
            c.pragma_update(None, "user_version", 3).unwrap();
            c.execute(INSERT_STORE_ID, ["old-store"]).unwrap();
            // A flow a version-3 program left pending, far from expiry.
            c.execute(
                "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, \
                 issuer, status, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, 's', 'https://as.example.com', 'pending', 1, ?4)",
                rusqlite::params![
                    &crate::pkce::state_key("old-state")[..],
                    challenge,
                    verifier,
                    i64::MAX / 2
                ],
            )
            .unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        let store = crate::StoreOptions::default().open(&path).unwrap();
        let report = store.migration();
        assert_eq!((report.from, report.to), (3, SCHEMA_VERSION));
        let consumed = store.consume("old-state").unwrap();
        assert_eq!(consumed.verifier.secret(), verifier);
        assert_eq!(
            consumed.info.issuer.as_deref(),
            Some("https://as.example.com")
        );
        assert_eq!(consumed.discovery(), None);
        let c = Connection::open(&path).unwrap();
        assert_eq!(user_version(&c).unwrap(), SCHEMA_VERSION);
        assert_eq!(store_id(&c).unwrap(), "old-store");
        let column: Option<String> = c
            .query_row("SELECT discovery FROM flows", [], |r| r.get(0))
            .unwrap();
        assert_eq!(column, None);
        // The new column's limit holds in the file itself, past the store's own check.
        let too_long = "a".repeat(crate::MAX_DISCOVERY_LEN + 1);
        assert!(c
            .execute("UPDATE flows SET discovery = ?1", [&too_long])
            .is_err());
    }

    #[test]
    fn files_are_told_apart_without_being_changed() {
        let mut c = Connection::open_in_memory().unwrap();
        assert_eq!(file_kind(&c).unwrap(), FileKind::Empty);
        c.execute_batch("CREATE TABLE users (id INTEGER); CREATE TABLE meta (k, v);")
            .unwrap();
        match file_kind(&c).unwrap() {
            FileKind::Foreign(what) => assert!(what.contains("meta, users"), "{what}"),
            other => panic!("expected Foreign, got {other:?}"),
        }
        let mut s = Connection::open_in_memory().unwrap();
        migrate(&mut s).unwrap();
        assert_eq!(file_kind(&s).unwrap(), FileKind::Store(SCHEMA_VERSION));
        s.execute("DELETE FROM meta", []).unwrap();
        assert_eq!(file_kind(&s).unwrap(), FileKind::Store(SCHEMA_VERSION));
        c.pragma_update(None, "user_version", 0).unwrap();
        assert!(matches!(file_kind(&c).unwrap(), FileKind::Foreign(_)));
        let _ = &mut c;
    }

    #[test]
    fn a_newer_file_is_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        match migrate(&mut c) {
            Err(MigrateError::TooNew(v)) => assert_eq!(v, SCHEMA_VERSION + 1),
            other => panic!("expected TooNew, got {other:?}"),
        }
    }
}
