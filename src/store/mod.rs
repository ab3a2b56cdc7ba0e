//! The [`Store`]: opening the file, the connection pool, and the transaction helpers every
//! operation goes through.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::migrate::{self, MigrationReport, SCHEMA_VERSION};
use crate::options::{Durability, StoreOptions};
use crate::permissions;

/// A durable store of pending OAuth flows in one SQLite file.
///
/// Cheap to clone (clones share one connection pool); `Send + Sync`. Every process on the host
/// that opens the same file sees the same flows.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<SqliteConnectionManager>,
    clock: Arc<dyn Clock>,
    ttl: time::Duration,
    busy_timeout: Duration,
    sweep_batch_size: u32,
    sweep_batch_time: Duration,
    path: Option<PathBuf>,
    store_id: String,
    migration: MigrationReport,
    immediate_wal_scrub: bool,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("store_id", &self.inner.store_id)
            .finish_non_exhaustive()
    }
}

const CHECKPOINT_PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";

/// A write that leaves the file as it was but still writes a page (an `UPDATE` to the same
/// value writes none), to restart the WAL after a checkpoint (see `scrub_wal`).
const TOUCH_META: &str = "INSERT INTO meta (key, value) VALUES ('wal_restart', ''); \
     DELETE FROM meta WHERE key = 'wal_restart';";

/// Per-connection settings, applied by the pool to every new connection.
fn init_connection(
    conn: &mut Connection,
    busy_timeout: Duration,
    durability: Durability,
    max_size: Option<u64>,
    immediate_wal_scrub: bool,
) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_prepared_statement_cache_capacity(32);
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "cell_size_check", "ON")?;
    if immediate_wal_scrub {
        // When a write restarts the WAL, it cuts the file to its own frames: old page images
        // (wiped secrets among them) do not linger past the restart. See `Store::write_wiping`.
        // Not by default: cutting and regrowing the file at every restart costs a third of a
        // flow's time with `synchronous=NORMAL` (BENCHMARKS.md).
        conn.pragma_update(None, "journal_size_limit", 0)?;
    }
    if let Some(bytes) = max_size {
        let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let pages = (bytes / page.max(1) as u64).clamp(1, u64::from(u32::MAX - 1));
        conn.pragma_update(None, "max_page_count", pages as i64)?;
    }
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)
}

/// Sets WAL mode. On a brand-new file several processes race to do it; the losers get
/// `SQLITE_BUSY` without the busy handler being consulted, so retry with bounded backoff.
fn ensure_wal(conn: &Connection, limit: Duration) -> rusqlite::Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let mode =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0));
        match mode {
            Ok(m) if m.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(_) | Err(_) if start.elapsed() < limit => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Ok(m) => {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some(format!("journal_mode stayed {m}")),
                ))
            }
            Err(e) => return Err(e),
        }
    }
}

impl Store {
    /// Opens the database at `path` with the default [`StoreOptions`], creating it (mode 0600)
    /// if it does not exist.
    ///
    /// The directory must exist. The file, its `-wal`/`-shm` and the directory are checked
    /// first (see [`FileChecks`](crate::FileChecks)). Several processes may open the same new
    /// file at once.
    ///
    /// # Errors
    /// [`Error::InsecureFile`] (symlink, other owner, group/world access, writable directory),
    /// [`Error::DatabaseMissing`], [`Error::DatabaseTooNew`], [`Error::Corrupt`] (not an SQLite
    /// file), [`Error::Busy`], [`Error::ReadOnly`], [`Error::Io`], [`Error::Pool`].
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_with(path.as_ref(), StoreOptions::default())
    }

    /// Opens (or creates) the store at the default path that the `oauth-state-store` command
    /// line uses too: `$OAUTH_STATE_DB`, else `$XDG_STATE_HOME/oauth-state-store/flows.db`, else
    /// `~/.local/state/oauth-state-store/flows.db` (see
    /// [`default_database_path`](crate::default_database_path)). A missing directory is created
    /// 0700; then the same checks as [`Store::open`] apply, so an existing directory that others
    /// can write to is still refused.
    ///
    /// ```no_run
    /// use oauth_state_store::Store;
    ///
    /// fn main() -> Result<(), oauth_state_store::Error> {
    ///     let store = Store::open_default()?;
    ///     println!("flows live in {}", store.path().unwrap().display());
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`HOME`) when neither `$OAUTH_STATE_DB`, `$XDG_STATE_HOME` nor
    /// `$HOME` says where the file goes; [`Error::Io`] when the directory cannot be created;
    /// otherwise as [`Store::open`].
    pub fn open_default() -> Result<Store> {
        let path = crate::default_database_path().ok_or(Error::invalid(
            "HOME",
            "is not set, so there is no default path: set OAUTH_STATE_DB to the store's file",
        ))?;
        permissions::create_private_parent(&path)?;
        Self::open(&path)
    }

    /// A private in-memory store with the default options (for tests and examples).
    ///
    /// # Errors
    /// [`Error::Sqlite`] or [`Error::Pool`] if SQLite cannot allocate it.
    pub fn open_in_memory() -> Result<Store> {
        Self::open_in_memory_with(StoreOptions::default())
    }

    /// The options builder; same as [`StoreOptions::default`].
    pub fn options() -> StoreOptions {
        StoreOptions::default()
    }

    pub(crate) fn open_with(path: &Path, opts: StoreOptions) -> Result<Store> {
        let create = opts.create_if_missing && !opts.read_only;
        permissions::prepare(path, create, opts.file_checks)?;
        // No SQLITE_OPEN_CREATE: the file exists now, made 0600 by us. No SQLITE_OPEN_URI: a
        // path is a path. NOFOLLOW: a symlink swapped in after our check is still refused.
        let access = if opts.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        let flags = access
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_EXRESCODE;
        let manager = SqliteConnectionManager::file(path).with_flags(flags);
        Self::build(manager, opts, Some(path.to_path_buf()))
    }

    pub(crate) fn open_in_memory_with(mut opts: StoreOptions) -> Result<Store> {
        // r2d2_sqlite names the in-memory database with a URI of its own making; the user's
        // input never becomes a URI. One connection: shared-cache locks do not wait.
        opts.pool_size = 1;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let manager = SqliteConnectionManager::memory().with_flags(flags);
        Self::build(manager, opts, None)
    }

    fn build(
        manager: SqliteConnectionManager,
        opts: StoreOptions,
        path: Option<PathBuf>,
    ) -> Result<Store> {
        let (bt, durability, max_size, scrub) = (
            opts.busy_timeout,
            opts.durability,
            opts.max_database_size,
            opts.immediate_wal_scrub,
        );
        let manager =
            manager.with_init(move |c| init_connection(c, bt, durability, max_size, scrub));
        let sql = |e| Error::from_sqlite(e, bt);
        // Set the file up on a connection of our own, so that its failures keep SQLite's
        // typed error (r2d2 would flatten them into a message).
        let mut conn = manager.connect().map_err(sql)?;
        let found = migrate::user_version(&conn).map_err(sql)?;
        if found > SCHEMA_VERSION {
            return Err(Error::DatabaseTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        // A read-only connection cannot change the journal mode; it reads the file as it is.
        if path.is_some() && !opts.read_only {
            ensure_wal(&conn, bt).map_err(sql)?;
        }
        let migration = if found == SCHEMA_VERSION {
            MigrationReport {
                from: found,
                to: found,
            }
        } else {
            migrate::migrate(&mut conn).map_err(|e| e.into_error(bt))?
        };
        let store_id = match migrate::store_id(&conn) {
            Ok(id) => id,
            // A file at the current version always has one; a missing row means damage.
            Err(_) => migrate::migrate(&mut conn)
                .map_err(|e| e.into_error(bt))
                .and_then(|_| migrate::store_id(&conn).map_err(sql))?,
        };
        drop(conn);
        let pool = Pool::builder()
            .max_size(opts.pool_size)
            .min_idle(Some(0))
            .idle_timeout(path.as_ref().map(|_| Duration::from_secs(600)))
            .max_lifetime(None)
            .test_on_check_out(false)
            .connection_timeout(bt.max(Duration::from_secs(1)))
            .build_unchecked(manager);
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                clock: opts.clock,
                ttl: opts.ttl,
                busy_timeout: bt,
                sweep_batch_size: opts.sweep_batch_size,
                sweep_batch_time: opts.sweep_batch_time,
                path,
                store_id,
                migration,
                immediate_wal_scrub: opts.immediate_wal_scrub,
            }),
        })
    }

    /// The file's random, permanent identity (`meta.store_id`): two stores with the same id
    /// share one file.
    pub fn store_id(&self) -> &str {
        &self.inner.store_id
    }

    /// The database path (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The schema versions before and after this store opened the file.
    pub fn migration(&self) -> MigrationReport {
        self.inner.migration
    }

    /// The injected clock's current time, Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    pub(crate) fn default_ttl(&self) -> time::Duration {
        self.inner.ttl
    }

    pub(crate) fn sweep_batch_size(&self) -> u32 {
        self.inner.sweep_batch_size
    }

    pub(crate) fn sweep_batch_time(&self) -> Duration {
        self.inner.sweep_batch_time
    }

    pub(crate) fn conn(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        self.inner.pool.get().map_err(Error::Pool)
    }

    pub(crate) fn classify(&self, e: Error) -> Error {
        match e {
            Error::Sqlite(s) => Error::from_sqlite(s, self.inner.busy_timeout),
            Error::Busy { source, .. } => Error::Busy {
                timeout: self.inner.busy_timeout,
                source,
            },
            other => other,
        }
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction.
    ///
    /// `f` returns `Err` to roll back and fail, or `Ok(outcome)` to commit and then report
    /// `outcome`, which may itself be an error (an expired row deleted, a flow burned).
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, i64) -> Result<Result<T>>,
    ) -> Result<T> {
        let mut conn = self.conn()?;
        self.write_on(&mut conn, f)?
    }

    /// [`Store::write`] for a transaction that wipes a secret (a verifier or code set to NULL,
    /// a row deleted). `secure_delete` zeroes the old cell in the page, but with WAL the page
    /// image that held the secret is still an old frame of the `-wal` file. With
    /// [`immediate_wal_scrub`](crate::StoreOptions::immediate_wal_scrub): a passive checkpoint
    /// first, which lets this transaction restart the WAL from its start and, with
    /// `journal_size_limit=0`, cut it to its own frames; then a passive checkpoint again, which
    /// copies the wiped pages into the database file. Passive checkpoints never wait and never
    /// hold the write lock; if another connection holds an old snapshot, the frames go at the
    /// next such write. Without it, a plain write: the frames go at the next checkpoint and
    /// WAL restart (see the option's docs).
    pub(crate) fn write_wiping<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, i64) -> Result<Result<T>>,
    ) -> Result<T> {
        let mut conn = self.conn()?;
        if !self.inner.immediate_wal_scrub {
            return self.write_on(&mut conn, f)?;
        }
        self.checkpoint_passive(&conn);
        let outcome = self.write_on(&mut conn, f)?;
        self.checkpoint_passive(&conn);
        outcome
    }

    /// After a bulk wipe (sweep, invalidate): a passive checkpoint copies the wiped pages into
    /// the database file; then one tiny write on the same connection, with
    /// `journal_size_limit=0` for it alone, restarts the WAL and cuts it to that write's
    /// frames, so the old page images of what was wiped leave the `-wal`. Never waits for
    /// readers; while one holds an older snapshot the write appends instead, and the frames go
    /// at a later scrub.
    pub(crate) fn scrub_wal(&self) -> Result<()> {
        if self.inner.path.is_none() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        let keep = if self.inner.immediate_wal_scrub {
            0
        } else {
            -1
        };
        self.with_pragma(&mut conn, "journal_size_limit", 0, keep, |conn| {
            self.checkpoint_passive(conn);
            self.write_on(conn, |tx, _now| {
                tx.execute_batch(TOUCH_META)?;
                Ok(Ok(()))
            })?
        })
    }

    /// Sets the connection setting `pragma` to `value` for the duration of `f`, then to
    /// `restore`, whether `f` failed or not (pooled connections outlive the call).
    pub(crate) fn with_pragma<T>(
        &self,
        conn: &mut Connection,
        pragma: &str,
        value: i64,
        restore: i64,
        f: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Result<T> {
        let set = |conn: &Connection, v: i64| {
            conn.pragma_update(None, pragma, v)
                .map_err(|e| self.classify(e.into()))
        };
        set(conn, value)?;
        let outcome = f(conn);
        let restored = set(conn, restore);
        let outcome = outcome?;
        restored?;
        Ok(outcome)
    }

    pub(crate) fn write_on<T>(
        &self,
        conn: &mut Connection,
        f: impl FnOnce(&Transaction<'_>, i64) -> Result<Result<T>>,
    ) -> Result<Result<T>> {
        let run = || -> Result<Result<T>> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = self.inner.clock.now_ms();
            let outcome = f(&tx, now)?;
            tx.commit()?;
            Ok(outcome)
        };
        run().map_err(|e| self.classify(e))
    }

    /// Best effort and never blocking: a busy or partial checkpoint is not an error, the next
    /// one finishes the job.
    pub(crate) fn checkpoint_passive(&self, conn: &Connection) {
        if self.inner.path.is_some() {
            let _ = conn.query_row(CHECKPOINT_PASSIVE, [], |_| Ok(()));
        }
    }

    /// Runs `f` on a pooled connection outside any transaction, for statements that cannot
    /// run inside one (`VACUUM`, `PRAGMA wal_checkpoint`). Errors are classified like
    /// [`Store::write`]'s.
    pub(crate) fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn()?;
        f(&conn).map_err(|e| self.classify(e))
    }

    /// Runs `f` in one read transaction (a consistent snapshot).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Transaction<'_>, i64) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        let run = || -> Result<T> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let now = self.inner.clock.now_ms();
            let value = f(&tx, now)?;
            tx.finish()?;
            Ok(value)
        };
        run().map_err(|e| self.classify(e))
    }
}
