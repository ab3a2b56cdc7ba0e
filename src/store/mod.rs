//! The [`Store`]: one non-generic handle over the engine chosen at open.
//!
//! Its public methods are declared by topic: the flow operations in [`flows`], the many-row
//! ones in [`maintenance`], administration in [`crate::admin`]. Each validates its input, then
//! hands one transaction body from [`crate::flow::ops`] to the engine.

mod flows;
mod maintenance;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::sqlite::migrate::MigrationReport;
use crate::backend::{is_postgres_url, sqlite, Engine};
use crate::error::{Error, Result};
use crate::options::StoreOptions;

/// A durable store of pending OAuth flows in one SQLite file.
///
/// Cheap to clone (clones share one connection pool); `Send + Sync`. Every process on the host
/// that opens the same file sees the same flows. Dropping the last clone closes every pooled
/// connection on the dropping thread, so a program may exit right after: SQLite removes the
/// file's `-wal` and `-shm` when the last connection to it in any process closes.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    clock: Arc<dyn crate::clock::Clock>,
    ttl: std::time::Duration,
    sweep_batch_size: u32,
    sweep_batch_time: Duration,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path())
            .field("store_id", &self.store_id())
            .finish_non_exhaustive()
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
    /// [`Error::InvalidInput`] (an option out of range, such as `ttl` or `busy_timeout`; nothing
    /// is opened or created), [`Error::InsecureFile`] (symlink, other owner, group/world access, writable directory),
    /// [`Error::DatabaseMissing`], [`Error::PermissionDenied`], [`Error::NotAStore`] (another
    /// application's SQLite file, left unchanged), [`Error::DatabaseTooNew`],
    /// [`Error::MigrationNeeded`] (only with [`StoreOptions::migrate`]`(false)`; by default an
    /// older store is migrated), [`Error::Corrupt`] (not an SQLite file), [`Error::Busy`],
    /// [`Error::ReadOnly`], [`Error::Io`], [`Error::Pool`].
    ///
    /// [`Error::InvalidInput`]: crate::Error::InvalidInput
    /// [`Error::InsecureFile`]: crate::Error::InsecureFile
    /// [`Error::DatabaseMissing`]: crate::Error::DatabaseMissing
    /// [`Error::PermissionDenied`]: crate::Error::PermissionDenied
    /// [`Error::NotAStore`]: crate::Error::NotAStore
    /// [`Error::MigrationNeeded`]: crate::Error::MigrationNeeded
    /// [`Error::DatabaseTooNew`]: crate::Error::DatabaseTooNew
    /// [`Error::Corrupt`]: crate::Error::Corrupt
    /// [`Error::Busy`]: crate::Error::Busy
    /// [`Error::ReadOnly`]: crate::Error::ReadOnly
    /// [`Error::Io`]: crate::Error::Io
    /// [`Error::Pool`]: crate::Error::Pool
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
        sqlite::permissions::create_private_parent(&path)?;
        Self::open(&path)
    }

    /// A private in-memory store with the default options (for tests and examples).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) or [`Error::Pool`](crate::Error::Pool) if
    /// SQLite cannot allocate it.
    pub fn open_in_memory() -> Result<Store> {
        Self::open_in_memory_with(StoreOptions::default())
    }

    /// The options builder; same as [`StoreOptions::default`].
    pub fn options() -> StoreOptions {
        StoreOptions::default()
    }

    pub(crate) fn open_with(path: &Path, opts: StoreOptions) -> Result<Store> {
        opts.validate()?;
        if let Some(url) = path.to_str().filter(|p| is_postgres_url(p)) {
            #[cfg(feature = "postgres")]
            {
                let engine = Engine::Postgres(crate::backend::postgres::open(url, &opts)?);
                return Ok(Self::with_engine(engine, opts));
            }
            #[cfg(not(feature = "postgres"))]
            {
                let _ = url;
                return Err(Error::invalid(
                    "database",
                    "is a PostgreSQL URL, but this build has no `postgres` feature",
                ));
            }
        }
        let engine = Engine::Sqlite(sqlite::open_file(path, &opts)?);
        Ok(Self::with_engine(engine, opts))
    }

    pub(crate) fn open_in_memory_with(opts: StoreOptions) -> Result<Store> {
        opts.validate()?;
        let engine = Engine::Sqlite(sqlite::open_in_memory(&opts)?);
        Ok(Self::with_engine(engine, opts))
    }

    fn with_engine(engine: Engine, opts: StoreOptions) -> Store {
        Store {
            inner: Arc::new(Inner {
                engine,
                clock: opts.clock,
                ttl: opts.ttl,
                sweep_batch_size: opts.sweep_batch_size,
                sweep_batch_time: opts.sweep_batch_time,
            }),
        }
    }

    /// The file's random, permanent identity (`meta.store_id`): two stores with the same id
    /// share one file.
    pub fn store_id(&self) -> &str {
        self.inner.engine.store_id()
    }

    /// The database path (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.inner.engine.path()
    }

    /// The schema versions before and after this store opened the file.
    pub fn migration(&self) -> MigrationReport {
        self.inner.engine.migration()
    }

    /// The injected clock's current time, Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn default_ttl(&self) -> std::time::Duration {
        self.inner.ttl
    }

    pub(crate) fn sweep_batch_size(&self) -> u32 {
        self.inner.sweep_batch_size
    }

    pub(crate) fn sweep_batch_time(&self) -> Duration {
        self.inner.sweep_batch_time
    }
}
