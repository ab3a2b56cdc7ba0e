//! The SQLite engine's connection pool, closed on the thread that drops the engine.
//!
//! The pool makes its connections on a thread of its own, which holds the pool for a moment
//! after each one. When the store is dropped in that moment, the pool (and its connections)
//! would be closed on that thread instead, and a process that exits right after (a command
//! line's `main` returning) kills it mid-close: the last connection to the file never
//! checkpoints and removes the `-wal` and `-shm`. So the engine's drop closes every idle
//! connection itself, on its own thread, before letting the pool go.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

/// A connection borrowed from the pool.
pub(crate) type Conn = PooledConnection<Manager>;

/// SQLite's connection manager, and whether the pool is closing: a connection handed back
/// while it is counts as broken, so the pool closes it on the thread that hands it back.
#[derive(Debug)]
pub(crate) struct Manager {
    inner: SqliteConnectionManager,
    closing: Arc<AtomicBool>,
}

impl ManageConnection for Manager {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<Connection, rusqlite::Error> {
        self.inner.connect()
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        self.inner.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        self.closing.load(Ordering::Acquire) || self.inner.has_broken(conn)
    }
}

/// The pool, closing its connections when dropped.
pub(crate) struct ConnPool {
    pool: Pool<Manager>,
    closing: Arc<AtomicBool>,
}

impl ConnPool {
    /// The pool `builder` makes over `manager` (no connection is made yet).
    pub(crate) fn new(builder: r2d2::Builder<Manager>, manager: SqliteConnectionManager) -> Self {
        let closing = Arc::new(AtomicBool::new(false));
        let pool = builder.build_unchecked(Manager {
            inner: manager,
            closing: closing.clone(),
        });
        ConnPool { pool, closing }
    }

    /// A connection, waiting at most the pool's connection timeout.
    pub(crate) fn get(&self) -> Result<Conn, r2d2::Error> {
        self.pool.get()
    }
}

impl Drop for ConnPool {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Release);
        // Each idle connection taken and handed back is closed here; none comes back idle,
        // and with no minimum of idle connections the pool makes no new one.
        while let Some(conn) = self.pool.try_get() {
            drop(conn);
        }
    }
}
