//! The schema and its migrations. A new file gets `schema.sql` at [`SCHEMA_VERSION`] in one
//! `BEGIN IMMEDIATE` transaction; a file of an older version gets `migrations/NNNN_name.sql`,
//! applied in order, each in its own `BEGIN IMMEDIATE` transaction with the `PRAGMA
//! user_version` it brings. Until the first release is published there is one version, 1,
//! which changes in place, so the list of migrations is empty; the machinery is proven by a
//! test-only version 2 (`migrate_tests.rs`).

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Error, Result};

/// One migration: the version it brings the file to, its name, its SQL.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// What this code brings a file to: the latest version, the schema a new file gets at once,
/// and the migrations that lead an older file there.
pub(crate) struct Plan {
    /// The schema version this code writes and understands.
    pub(crate) version: i64,
    /// A new file's schema at [`Plan::version`], run in order in one transaction.
    pub(crate) schema: &'static [&'static str],
    /// The migrations to versions 2 and up, in order, the last one to [`Plan::version`].
    pub(crate) migrations: &'static [Migration],
}

/// The schema version this code writes and understands.
pub const SCHEMA_VERSION: i64 = 1;

/// What a new file gets, in one transaction: `schema.sql`.
pub(crate) const SCHEMA: &str = include_str!("../../../schema.sql");

/// The plan of this code: version 1, no migration yet.
pub(crate) const CURRENT: Plan = Plan {
    version: SCHEMA_VERSION,
    schema: &[SCHEMA],
    migrations: &[],
};

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

/// Brings the schema up to `plan.version` and makes sure the file has a `store_id`.
///
/// A new file gets `plan.schema` in one transaction. An older file gets each migration in its
/// own `BEGIN IMMEDIATE` transaction, with the `user_version` it brings: other processes'
/// writes get the lock between two migrations instead of waiting for all of them, and a
/// migration interrupted by a crash leaves the file at the version before it. Safe to run
/// from many processes at once: the version is read again inside each write transaction, so
/// exactly one of them applies each migration.
pub(crate) fn migrate(conn: &mut Connection, plan: &Plan) -> Result<MigrationReport, MigrateError> {
    debug_assert!(plan
        .migrations
        .iter()
        .enumerate()
        .all(|(i, m)| m.version == i as i64 + 2 && !m.name.is_empty()));
    let mut from = None;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut version = user_version(&tx)?;
        if version > plan.version {
            return Err(MigrateError::TooNew(version));
        }
        from.get_or_insert(version);
        if version == 0 {
            // A new file: the latest schema at once.
            for sql in plan.schema {
                tx.execute_batch(sql)?;
            }
            tx.pragma_update(None, "user_version", plan.version)?;
            version = plan.version;
        }
        let Some(m) = plan.migrations.iter().find(|m| m.version > version) else {
            let store_id: Option<String> =
                tx.query_row(SELECT_STORE_ID, [], |r| r.get(0)).optional()?;
            if store_id.is_none() {
                let id: [u8; 16] = rand::random();
                tx.execute(INSERT_STORE_ID, [URL_SAFE_NO_PAD.encode(id)])?;
            }
            tx.commit()?;
            break;
        };
        let began = Instant::now();
        tx.execute_batch(m.sql)?;
        tx.pragma_update(None, "user_version", m.version)?;
        tx.commit()?;
        if began.elapsed() > LONG_STEP {
            // Writers that waited through this step get the lock before the next one.
            std::thread::sleep(STEP_GAP);
        }
    }
    Ok(MigrationReport {
        from: from.unwrap_or(plan.version),
        to: plan.version,
    })
}

/// The tables of the file, by name (SQLite's own excluded).
pub(crate) const SELECT_TABLES: &str = "SELECT name FROM sqlite_schema \
     WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";
/// How many schema objects of any kind the file has.
pub(crate) const COUNT_SCHEMA_OBJECTS: &str = "SELECT count(*) FROM sqlite_schema";
/// Whether the `meta` table has a `store_id` row (run only when the table exists).
pub(crate) const HAS_STORE_ID: &str = "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'store_id')";

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
        if with_id || (has("flows") && version >= 1) {
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
    pub(crate) fn into_error(self, plan: &Plan, busy_timeout: std::time::Duration) -> Error {
        match self {
            MigrateError::TooNew(found) => Error::DatabaseTooNew {
                found,
                supported: plan.version,
            },
            MigrateError::Sqlite(e) => super::error::classify(e, busy_timeout),
        }
    }
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
pub(crate) mod tests;
