//! Opening the SQLite engine: the file checks, the per-connection settings, WAL mode, the
//! migrations and the store id.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use r2d2::{ManageConnection, Pool};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use super::header::{self, FileKind};
use super::look::Look;
use super::migrate::Plan;
use super::pool::ConnPool;
use super::{busy, error::classify, migrate, permissions, Sqlite};
use crate::error::{Error, Result};
use crate::options::{Durability, LockWait, StoreOptions};
use crate::report::MigrationReport;

/// Per-connection settings, applied by the pool to every new connection.
fn init_connection(
    conn: &mut Connection,
    busy_timeout: Duration,
    lock_wait: LockWait,
    durability: Durability,
    max_size: Option<u64>,
    immediate_wal_scrub: bool,
    query_only: bool,
) -> rusqlite::Result<()> {
    if query_only {
        // A read-only store that had to open the file read-write (see `look`): SQLite itself
        // refuses every write on this connection.
        conn.pragma_update(None, "query_only", true)?;
    }
    match lock_wait {
        LockWait::Aging => {
            // Replaces the handler `busy_timeout` would install; it keeps to the same timeout.
            busy::set_timeout(busy_timeout);
            conn.busy_handler(Some(busy::handler))?;
        }
        _ => conn.busy_timeout(busy_timeout)?,
    }
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_prepared_statement_cache_capacity(32);
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "cell_size_check", "ON")?;
    if immediate_wal_scrub {
        // When a write restarts the WAL, it cuts the file to its own frames: old page images
        // (wiped secrets among them) do not linger past the restart. See `Sqlite::write`.
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

/// The engine on the file at `path`, checked (and created 0600) first.
pub(crate) fn open_file(path: &Path, opts: &StoreOptions) -> Result<Sqlite> {
    let create = opts.create_if_missing && !opts.read_only;
    permissions::prepare(path, create, opts.file_checks)?;
    // No SQLITE_OPEN_CREATE: the file exists now, made 0600 by us. No SQLITE_OPEN_URI: a
    // path is a path. NOFOLLOW: a symlink swapped in after our check is still refused. A
    // read-only store only looks, creating and changing nothing (see `look`).
    let look = opts.read_only.then(|| Look::of(path));
    let access = look.map_or(OpenFlags::SQLITE_OPEN_READ_WRITE, Look::access);
    let flags = access
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_EXRESCODE;
    let manager = SqliteConnectionManager::file(path).with_flags(flags);
    let query_only = look.is_some_and(Look::query_only);
    build(manager, opts, Some(path.to_path_buf()), query_only)
}

/// A private in-memory engine (for tests and examples).
pub(crate) fn open_in_memory(opts: &StoreOptions) -> Result<Sqlite> {
    // r2d2_sqlite names the in-memory database with a URI of its own making; the user's
    // input never becomes a URI. One connection: shared-cache locks do not wait.
    let mut opts = opts.clone();
    opts.pool_size = 1;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let manager = SqliteConnectionManager::memory().with_flags(flags);
    build(manager, &opts, None, false)
}

/// What this open brings the file to: this code's schema, or, in the crate's own tests that
/// ask for it, the test-only version 2 (`migrate_tests.rs`).
fn plan(opts: &StoreOptions) -> &'static Plan {
    #[cfg(test)]
    if opts.test_version_2 {
        return &migrate::tests::TEST_VERSION_2;
    }
    let _ = opts;
    &migrate::CURRENT
}

fn build(
    manager: SqliteConnectionManager,
    opts: &StoreOptions,
    path: Option<PathBuf>,
    query_only: bool,
) -> Result<Sqlite> {
    let (bt, durability, max_size, scrub) = (
        opts.busy_timeout,
        opts.durability,
        opts.max_database_size,
        opts.immediate_wal_scrub,
    );
    let wait = opts.lock_wait;
    let manager = manager
        .with_init(move |c| init_connection(c, bt, wait, durability, max_size, scrub, query_only));
    let sql = |e| classify(e, bt);
    if wait == LockWait::Aging {
        // The migrations below run on this thread.
        busy::set_timeout(bt);
    }
    // What the file is, read from its header before SQLite opens it: another program's
    // file is refused unchanged, with nothing created beside it.
    let plan = plan(opts);
    let kind = match &path {
        Some(p) => header::file_kind(p)?,
        None => FileKind::Empty,
    };
    let may_migrate = opts.migrate && !opts.read_only;
    match kind {
        FileKind::Foreign(what) => {
            return Err(Error::NotAStore {
                path: path.clone().unwrap_or_default(),
                what,
            })
        }
        FileKind::Empty if !may_migrate => {
            return Err(Error::MigrationNeeded {
                found: 0,
                expected: plan.version,
            })
        }
        FileKind::Empty | FileKind::Store => {}
    }
    // Set the file up on a connection of our own, so that its failures keep SQLite's
    // typed error (r2d2 would flatten them into a message).
    let mut conn = manager.connect().map_err(sql)?;
    let (found, current) = if kind == FileKind::Store {
        let found = migrate::user_version(&conn).map_err(sql)?;
        if found == 0 {
            return Err(Error::corrupt("a store file without a schema version"));
        }
        if found > plan.version {
            return Err(Error::DatabaseTooNew {
                found,
                supported: plan.version,
            });
        }
        // A file at the current version always has a store id; a missing one means damage,
        // which migrating repairs.
        (
            found,
            found == plan.version && migrate::store_id(&conn).is_ok(),
        )
    } else {
        (0, false)
    };
    if !current && !may_migrate {
        return Err(Error::MigrationNeeded {
            found,
            expected: plan.version,
        });
    }
    // A new file gets its schema (and the application id that says it is a store) in rollback
    // mode, so that the id is in the main file's header before any `-wal` exists.
    let migration = if current {
        MigrationReport {
            from: found,
            to: found,
        }
    } else {
        migrate::migrate(&mut conn, plan).map_err(|e| e.into_error(plan, bt, path.as_deref()))?
    };
    // Only an open that may migrate changes the journal mode; a read-only connection could not.
    if path.is_some() && may_migrate {
        ensure_wal(&conn, bt).map_err(sql)?;
    }
    let store_id = migrate::store_id(&conn).map_err(sql)?;
    drop(conn);
    let builder = Pool::builder()
        .max_size(opts.pool_size)
        .min_idle(Some(0))
        .idle_timeout(path.as_ref().map(|_| Duration::from_secs(600)))
        .max_lifetime(None)
        .test_on_check_out(false)
        .connection_timeout(bt.max(Duration::from_secs(1)));
    let pool = ConnPool::new(builder, manager);
    Ok(Sqlite {
        pool,
        clock: opts.clock.clone(),
        busy_timeout: bt,
        path,
        store_id,
        migration,
        immediate_wal_scrub: opts.immediate_wal_scrub,
        lock_wait: wait,
    })
}
