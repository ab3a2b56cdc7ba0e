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

use super::header::{self, APPLICATION_ID};
use crate::error::{Error, Result};
use crate::report::MigrationReport;

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
pub(crate) const SELECT_APPLICATION_ID: &str = "PRAGMA application_id";
pub(crate) const INSERT_STORE_ID: &str =
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?1)";

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
/// What the file is is read again inside each write transaction (two processes may create one
/// new file at once, and the caller's look at the header was taken without a lock): a file
/// without the store's application id that has any schema or a `user_version` is
/// [`MigrateError::Foreign`], and nothing is written. A new file gets `plan.schema`, its
/// `application_id` and its `user_version` in one transaction. An older file gets each migration in its
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
        let id: i32 = tx.query_row(SELECT_APPLICATION_ID, [], |r| r.get(0))?;
        let ours = id as u32 == APPLICATION_ID;
        if !ours {
            let objects: i64 = tx.query_row(COUNT_SCHEMA_OBJECTS, [], |r| r.get(0))?;
            if version != 0 || objects != 0 {
                return Err(MigrateError::Foreign(header::describe_schema(
                    &tx, version,
                )?));
            }
        } else if version == 0 {
            return Err(MigrateError::Damaged(
                "a store file without a schema version",
            ));
        }
        if version > plan.version {
            return Err(MigrateError::TooNew(version));
        }
        from.get_or_insert(version);
        if !ours {
            // A new file: the latest schema at once, and the id that says it is a store.
            for sql in plan.schema {
                tx.execute_batch(sql)?;
            }
            tx.pragma_update(None, "application_id", APPLICATION_ID as i32)?;
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

/// How many schema objects of any kind the file has.
pub(crate) const COUNT_SCHEMA_OBJECTS: &str = "SELECT count(*) FROM sqlite_schema";

/// Reads the file's `store_id`.
pub(crate) fn store_id(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row(SELECT_STORE_ID, [], |r| r.get(0))
}

/// Migration failures before they are classified.
#[derive(Debug)]
pub(crate) enum MigrateError {
    TooNew(i64),
    /// Not a store: what it seems to be.
    Foreign(String),
    /// A store's file that lost what makes it one.
    Damaged(&'static str),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

impl MigrateError {
    pub(crate) fn into_error(
        self,
        plan: &Plan,
        busy_timeout: std::time::Duration,
        path: Option<&std::path::Path>,
    ) -> Error {
        match self {
            MigrateError::TooNew(found) => Error::DatabaseTooNew {
                found,
                supported: plan.version,
            },
            MigrateError::Foreign(what) => Error::NotAStore {
                path: path.map(std::path::Path::to_path_buf).unwrap_or_default(),
                what,
            },
            MigrateError::Damaged(what) => Error::corrupt(what),
            MigrateError::Sqlite(e) => super::error::classify(e, busy_timeout),
        }
    }
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
pub(crate) mod tests;
