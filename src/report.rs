//! What a store, its file or its database say about themselves: migration, file and server
//! facts, compaction, and the checks' findings. Each engine fills in the reports it can answer
//! (file facts only the SQLite engine, server facts only PostgreSQL); they live here, apart
//! from both engines and from the [`Store`](crate::Store), so that neither engine imports the
//! other or a layer above it.

use std::path::PathBuf;

use serde::Serialize;

/// What migrating at open did (see [`Store::migration`](crate::Store::migration)): the schema
/// versions of the file or database before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// The schema version before.
    pub from: i64,
    /// The schema version after.
    pub to: i64,
}

/// Facts about a store's file, from [`Store::file_info`](crate::Store::file_info).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FileInfo {
    /// The database path (`None` in memory).
    pub path: Option<PathBuf>,
    /// Size of the database file in bytes (`None` in memory).
    pub file_bytes: Option<u64>,
    /// Size of its `-wal` file in bytes (`None` when there is none).
    pub wal_bytes: Option<u64>,
    /// The file's schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    /// The schema version this code writes.
    pub supported_schema_version: i64,
    /// `PRAGMA journal_mode` (`wal` for a file).
    pub journal_mode: String,
    /// The SQLite library version in use.
    pub sqlite_version: &'static str,
    /// The file's permanent identity.
    pub store_id: String,
}

/// What [`Store::compact`](crate::Store::compact) did. On PostgreSQL, `VACUUM flows` and a
/// `CHECKPOINT`: the sizes are those of the `flows` table with its indexes, and there is no
/// `-wal` (its sizes are 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CompactReport {
    /// `VACUUM` rebuilt the file. `false` when another connection kept the write lock past the
    /// busy timeout.
    pub vacuumed: bool,
    /// The WAL was checkpointed into the database and truncated. `false` when another
    /// connection's open read or write kept the checkpoint from finishing.
    pub wal_truncated: bool,
    /// Database file size before, in bytes.
    pub file_bytes_before: u64,
    /// Database file size after, in bytes.
    pub file_bytes_after: u64,
    /// `-wal` size before, in bytes (0 when there was none).
    pub wal_bytes_before: u64,
    /// `-wal` size after, in bytes (0 when there is none).
    pub wal_bytes_after: u64,
}

impl CompactReport {
    /// Both steps finished.
    pub fn is_complete(&self) -> bool {
        self.vacuumed && self.wal_truncated
    }
}

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

/// Facts about a store on a database server, from [`Store::server_info`](crate::Store::server_info): what PostgreSQL
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

/// What kind of problem a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The file, a side file or the directory breaks the rules that
    /// [`Store::open`](crate::Store::open) enforces.
    Permissions,
    /// The file is not an SQLite database or fails `PRAGMA integrity_check`.
    Corrupt,
    /// The schema version differs from this code's, or the store's metadata is missing.
    Schema,
    /// The journal mode is not WAL.
    JournalMode,
}

/// One problem a check found ([`check_file`](crate::check_file) on a file,
/// [`check_database`](crate::check_database) on a server): what is wrong and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// Which check failed.
    pub kind: ProblemKind,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
    /// The full findings behind a summarised message, one entry each (for a damaged file:
    /// every `PRAGMA integrity_check` message kept, up to 20); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Problem {
    /// A problem of `kind`: what is wrong, and what to do about it.
    pub(crate) fn new(
        kind: ProblemKind,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Problem {
            kind,
            message: message.into(),
            fix: fix.into(),
            details: Vec::new(),
        }
    }
}

/// What [`check_file`](crate::check_file) found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// The file checked.
    pub path: PathBuf,
    /// Every problem found; empty when the file is healthy.
    pub problems: Vec<Problem>,
    /// The file's schema version, when it could be read.
    pub schema_version: Option<i64>,
    /// The schema version this code writes.
    pub supported_schema_version: i64,
    /// The journal mode, when it could be read.
    pub journal_mode: Option<String>,
    /// The SQLite library version in use.
    pub sqlite_version: &'static str,
}

impl CheckReport {
    /// No problem found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What [`check_database`](crate::check_database) found.
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
