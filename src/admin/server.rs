//! Administration of a store on a database server (PostgreSQL): what the server has in place
//! of a file's facts, and a check of the database that changes nothing. The command line's
//! `stats` and `check` on a `postgres://` URL are built on these.

use std::time::Duration;

use serde::Serialize;

use crate::backend::sqlite::check::Problem;
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::store::Store;

/// Whether a relation is a table or an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RelationKind {
    /// A table (its size: the rows, their TOAST and the free-space and visibility maps).
    Table,
    /// An index.
    Index,
}

/// The size of one of the store's tables or indexes on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RelationSize {
    /// The table's or index's name.
    pub name: String,
    /// Table or index.
    pub kind: RelationKind,
    /// The table it belongs to (its own name for a table).
    pub table: String,
    /// Bytes on the server's disk.
    pub bytes: u64,
}

/// Facts about a store on a database server, from [`Store::server_info`]: what PostgreSQL
/// has in place of a file's sizes, WAL size and mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ServerInfo {
    /// The engine: `"postgresql"`.
    pub engine: &'static str,
    /// The server's version (`SHOW server_version`).
    pub server_version: String,
    /// The database's schema version (the highest migration it records).
    pub schema_version: i64,
    /// The schema version this code writes.
    pub supported_schema_version: i64,
    /// The store's permanent identity.
    pub store_id: String,
    /// The store's tables, each followed by its indexes, with their sizes.
    pub relations: Vec<RelationSize>,
    /// Live row versions of the `flows` table, as the server's statistics estimate them.
    pub live_rows: u64,
    /// Dead row versions of the `flows` table (updated or deleted rows that VACUUM has not
    /// reclaimed yet; a consumed verifier lingers in one until then), as estimated.
    pub dead_rows: u64,
    /// When `flows` was last vacuumed by hand (`sweep --vacuum`), Unix milliseconds.
    pub last_vacuum: Option<i64>,
    /// When autovacuum last vacuumed `flows`, Unix milliseconds.
    pub last_autovacuum: Option<i64>,
}

/// What [`check_database`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DatabaseCheck {
    /// The engine: `"postgresql"`.
    pub engine: &'static str,
    /// Every problem found, one a missing or invalid table, column or index; empty when the
    /// database is healthy.
    pub problems: Vec<Problem>,
    /// The server's version (`SHOW server_version`).
    pub server_version: String,
    /// The database's schema version (0: no store schema).
    pub schema_version: i64,
    /// The schema version this code writes.
    pub supported_schema_version: i64,
    /// The tables, columns and indexes that were looked for (`table flows`,
    /// `column flows.state_key`, `index flows_by_expiry`); empty when the schema version
    /// differs, since then they are expected to differ too.
    pub checked: Vec<String>,
}

impl DatabaseCheck {
    /// No problem found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the store's database on a server (a `postgres://` or `postgresql://` URL) without
/// changing it: that the server can be reached, the schema version against this code's, and,
/// at the current version, that every table, column and index of `schema_postgres.sql` is in
/// the catalog (and every index is valid) and the store has its `store_id`. It opens one
/// connection whose transactions are read-only, migrates nothing and creates nothing. Waits
/// up to `busy_timeout` for a lock.
///
/// # Errors
/// [`Error::InvalidInput`] (not a PostgreSQL URL, or this build has no `postgres` feature; the
/// URL is never repeated), [`Error::Unavailable`] (the server cannot be reached), other
/// errors of the server (a refused login is [`Error::Storage`]).
pub fn check_database(url: &str, busy_timeout: Duration) -> Result<DatabaseCheck> {
    #[cfg(feature = "postgres")]
    {
        crate::backend::postgres::check::check(url, busy_timeout)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (url, busy_timeout);
        Err(crate::error::Error::invalid(
            "database",
            "is a PostgreSQL URL, but this build has no `postgres` feature",
        ))
    }
}

impl Store {
    /// On a database server, its facts about the store: the server's version, the sizes of
    /// the store's tables and indexes, live and dead rows, the last vacuums. `None` for a
    /// store in an SQLite file (see [`Store::file_info`]).
    ///
    /// ```
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path().join("flows.db"))?;
    /// assert!(store.server_info()?.is_none()); // a file: its facts are in `file_info`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Unavailable`] (the server cannot be reached), other storage errors.
    pub fn server_info(&self) -> Result<Option<ServerInfo>> {
        #[cfg(feature = "postgres")]
        if let crate::backend::Engine::Postgres(pg) = self.engine() {
            return pg.server_info().map(Some);
        }
        Ok(None)
    }
}
