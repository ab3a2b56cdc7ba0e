//! The SQLite engine: one file in WAL mode (or a private in-memory database), a pool of
//! connections, `BEGIN IMMEDIATE` write transactions, the injectable client clock.
//!
//! - [`open`]: the file checks, the connection settings, WAL mode and migrations at open.
//! - [`flows`], [`maintenance`]: the statements of the row interface ([`FlowRows`],
//!   [`MaintenanceRows`]), each beside the method that runs it.
//! - [`tokens`]: the token sets' statements ([`TokenTx`](crate::tokens::tx::TokenTx)).
//! - [`wal`]: the WAL scrub after writes that wipe a secret, and the sweep's batch session.
//! - [`admin`]: file facts and compaction.
//! - [`error`]: SQLite's errors as the crate's.
//! - [`header`]: what a file is, from its header, before SQLite opens it.
//! - [`look`]: opening a file only to look at it, creating and changing nothing.
//! - [`migrate`], [`permissions`], [`check`]: migrations, file security, `check_file`.
//! - [`denied`]: an access error told apart from a missing file.
//! - [`files`]: the file's side files (`-wal`, `-shm`, `-journal`).
//! - [`pool`]: the connection pool, closed on the thread that drops the engine.
//! - [`busy`]: the busy handler of [`LockWait::Aging`](crate::LockWait::Aging).

pub(crate) mod admin;
mod busy;
pub(crate) mod check;
pub(crate) mod denied;
pub(crate) mod error;
mod files;
pub(crate) mod flows;
pub(crate) mod header;
pub(crate) mod look;
mod maintenance;
pub(crate) mod migrate;
pub(crate) mod open;
pub(crate) mod permissions;
#[cfg(test)]
mod plans;
mod pool;
pub(crate) mod tokens;
pub(crate) mod wal;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::backend::tx::Tx;
use crate::clock::Clock;
use crate::error::{Error, Result, StorageError};
#[cfg(doc)]
use crate::flow::tx::{FlowRows, MaintenanceRows};
use crate::flow::tx::{Outcome, Wipe};
use crate::options::LockWait;
use crate::report::MigrationReport;

/// The SQLite engine of a [`Store`](crate::Store).
pub(crate) struct Sqlite {
    pool: pool::ConnPool,
    clock: Arc<dyn Clock>,
    busy_timeout: Duration,
    path: Option<PathBuf>,
    store_id: String,
    migration: MigrationReport,
    immediate_wal_scrub: bool,
    /// `Aging`: the thread that takes a connection tells its busy handler the timeout.
    lock_wait: LockWait,
}

impl Sqlite {
    pub(crate) fn store_id(&self) -> &str {
        &self.store_id
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub(crate) fn migration(&self) -> MigrationReport {
        self.migration
    }

    pub(crate) fn conn(&self) -> Result<pool::Conn> {
        if self.lock_wait == LockWait::Aging {
            // This thread runs the connection's statements: its handler keeps to this timeout.
            busy::set_timeout(self.busy_timeout);
        }
        self.pool
            .get()
            .map_err(|e| Error::Pool(StorageError::new(e)))
    }

    /// SQLite's error as the crate's, with this store's busy timeout.
    pub(crate) fn err(&self, e: rusqlite::Error) -> Error {
        error::classify(e, self.busy_timeout)
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction; a [`Wipe::Secret`] write scrubs the
    /// WAL around it when [`immediate_wal_scrub`](crate::StoreOptions::immediate_wal_scrub) is
    /// on (see [`wal`]).
    pub(crate) fn write<T>(
        &self,
        wipe: Wipe,
        body: impl FnOnce(&mut dyn Tx) -> Result<Outcome<T>>,
    ) -> Result<T> {
        let mut conn = self.conn()?;
        if wipe == Wipe::Nothing || !self.immediate_wal_scrub {
            return self.write_on(&mut conn, body)?.into_result();
        }
        self.checkpoint_passive(&conn);
        let outcome = self.write_on(&mut conn, body)?;
        self.checkpoint_passive(&conn);
        outcome.into_result()
    }

    /// One `BEGIN IMMEDIATE` transaction on `conn`: commits unless `body` fails.
    pub(crate) fn write_on<T>(
        &self,
        conn: &mut Connection,
        body: impl FnOnce(&mut dyn Tx) -> Result<Outcome<T>>,
    ) -> Result<Outcome<T>> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let mut rows = self.rows(&tx);
        let outcome = body(&mut rows)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(outcome)
    }

    /// The rows of `tx`, at this engine's clock and busy timeout.
    fn rows<'t>(&'t self, tx: &'t Transaction<'t>) -> flows::Rows<'t> {
        flows::Rows::new(tx, self.clock.now_ms(), self.busy_timeout)
    }

    /// Runs `body` in one read transaction (a consistent snapshot).
    pub(crate) fn read<T>(&self, body: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| self.err(e))?;
        let mut rows = self.rows(&tx);
        let value = body(&mut rows)?;
        tx.finish().map_err(|e| self.err(e))?;
        Ok(value)
    }

    /// Runs `f` on a pooled connection outside any transaction, for statements that cannot
    /// run inside one (`VACUUM`, `PRAGMA wal_checkpoint`).
    pub(crate) fn with_connection<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let conn = self.conn()?;
        f(&conn).map_err(|e| self.err(e))
    }
}
