//! What SQLite's WAL needs: scrubbing old page images of wiped secrets, and the sweep's batch
//! session with its checkpoints between batches.
//!
//! `secure_delete` zeroes the old cell in the page, but with WAL the page image that held the
//! secret is still an old frame of the `-wal` file. With
//! [`immediate_wal_scrub`](crate::StoreOptions::immediate_wal_scrub), a write that wipes a
//! secret runs between two passive checkpoints: the first lets the write restart the WAL from
//! its start and, with `journal_size_limit=0`, cut it to its own frames; the second copies the
//! wiped pages into the database file. Passive checkpoints never wait and never hold the write
//! lock; if another connection holds an old snapshot, the frames go at the next such write.
//! Without the option, a plain write: the frames go at the next checkpoint and WAL restart.

use rusqlite::{Connection, TransactionBehavior};

use super::pool::Conn;
use super::Sqlite;
use crate::error::Result;
use crate::flow::tx::{FlowTx, Outcome};

pub(crate) const CHECKPOINT_PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";

/// A write that leaves the file as it was but still writes a page (an `UPDATE` to the same
/// value writes none), to restart the WAL after a checkpoint (see [`Sqlite::scrub_wal`]).
pub(crate) const TOUCH_META: &str = "INSERT INTO meta (key, value) VALUES ('wal_restart', ''); \
     DELETE FROM meta WHERE key = 'wal_restart';";

pub(crate) const SELECT_WAL_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint";

impl Sqlite {
    /// Best effort and never blocking: a busy or partial checkpoint is not an error, the next
    /// one finishes the job.
    pub(crate) fn checkpoint_passive(&self, conn: &Connection) {
        let _ = self.wal_frames_after_checkpoint(conn);
    }

    /// A passive checkpoint; returns how many frames the `-wal` holds (0: nothing of an old
    /// page image is left in it), `None` when the checkpoint could not run.
    fn wal_frames_after_checkpoint(&self, conn: &Connection) -> Option<i64> {
        if self.path.is_none() {
            return Some(0);
        }
        conn.query_row(CHECKPOINT_PASSIVE, [], |r| r.get::<_, i64>(1))
            .ok()
    }

    /// After a bulk wipe (sweep, invalidate): a passive checkpoint copies the wiped pages into
    /// the database file; then one tiny write on the same connection, with
    /// `journal_size_limit=0` for it alone, restarts the WAL and cuts it to that write's
    /// frames, so the old page images of what was wiped leave the `-wal`. Never waits for
    /// readers; while one holds an older snapshot the write appends instead, and the frames go
    /// at a later scrub.
    pub(crate) fn scrub_wal(&self) -> Result<()> {
        if self.path.is_none() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        let keep = if self.immediate_wal_scrub { 0 } else { -1 };
        self.with_pragma(&mut conn, "journal_size_limit", 0, keep, |conn| {
            if self.wal_frames_after_checkpoint(conn) == Some(0) {
                // An empty log holds no old page image: nothing to cut.
                return Ok(());
            }
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            tx.execute_batch(TOUCH_META).map_err(|e| self.err(e))?;
            tx.commit().map_err(|e| self.err(e))
        })
    }

    /// Sets the connection setting `pragma` to `value` for the duration of `f`, then to
    /// `restore`, whether `f` failed or not (pooled connections outlive the call).
    fn with_pragma<T>(
        &self,
        conn: &mut Connection,
        pragma: &str,
        value: i64,
        restore: i64,
        f: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Result<T> {
        let set = |conn: &Connection, v: i64| {
            conn.pragma_update(None, pragma, v).map_err(|e| self.err(e))
        };
        set(conn, value)?;
        let outcome = f(conn);
        let restored = set(conn, restore);
        let outcome = outcome?;
        restored?;
        Ok(outcome)
    }

    /// A held connection for a sweep: SQLite's automatic checkpoint, which runs inside a
    /// commit call after the lock is released, is off on it so that it neither counts as a
    /// batch's time nor makes the next batch shrink; [`Session::between_batches`] checkpoints
    /// instead.
    pub(crate) fn session(&self) -> Result<Session<'_>> {
        let conn = self.conn()?;
        let autocheckpoint: i64 = conn
            .query_row(SELECT_WAL_AUTOCHECKPOINT, [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| self.err(e))?;
        Ok(Session {
            engine: self,
            conn,
            autocheckpoint,
        })
    }
}

/// See [`Sqlite::session`].
pub(crate) struct Session<'e> {
    engine: &'e Sqlite,
    conn: Conn,
    autocheckpoint: i64,
}

impl Session<'_> {
    /// One `BEGIN IMMEDIATE` transaction on the held connection.
    pub(crate) fn write<T>(
        &mut self,
        body: impl FnOnce(&mut dyn FlowTx) -> Result<Outcome<T>>,
    ) -> Result<T> {
        self.engine
            .write_on(&mut self.conn, |tx| body(tx))?
            .into_result()
    }

    /// Each batch's pages go to the file before the next: the WAL stays short, so no other
    /// process's commit finds it past its own automatic-checkpoint size and does the copying
    /// (tried: every 500 rows instead doubled a concurrent consume's p99).
    pub(crate) fn between_batches(&mut self) {
        self.engine.checkpoint_passive(&self.conn);
    }

    /// Restores the automatic checkpoint (pooled connections outlive the session).
    pub(crate) fn finish(self) -> Result<()> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", self.autocheckpoint)
            .map_err(|e| self.engine.err(e))
    }
}
