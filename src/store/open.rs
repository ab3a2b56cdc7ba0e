//! Opening a [`Store`] (a file, the default path, memory) and what it says about itself: its
//! id, path, migration and clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Inner, Store};
use crate::backend::{sqlite, Engine};
use crate::error::{Error, Result};
use crate::options::StoreOptions;
use crate::report::MigrationReport;
use crate::validate::is_postgres_url;

impl Store {
    /// Opens the database at `path` with the default [`StoreOptions`], creating it (mode 0600)
    /// if it does not exist.
    ///
    /// The directory must exist. The file, its `-wal`/`-shm` and the directory are checked
    /// first (see [`FileChecks`](crate::FileChecks)). Several processes may open the same new
    /// file at once.
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// use oauth_state_store::{Store, SCHEMA_VERSION};
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("flows.db");
    /// let store = Store::open(&path)?;
    /// assert_eq!(store.path(), Some(path.as_path()));
    /// assert_eq!(store.migration().to, SCHEMA_VERSION);
    /// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # PostgreSQL
    ///
    /// With the `postgres` feature, `path` may instead be a `postgres://` or `postgresql://`
    /// URL (libpq's URL form). TLS is rustls, and the URL's `sslmode` and `sslrootcert` mean
    /// what they mean to libpq: `disable`; `prefer` (the default) and `require` encrypt
    /// without checking the certificate, or check its chain when `sslrootcert` names a CA
    /// file; `verify-ca` checks the chain to that file (`sslrootcert` required); `verify-full`
    /// checks the chain and the host name, against that file or else the system's trust store
    /// (`sslrootcert=system` asks for it explicitly and takes only `verify-full`). `allow`,
    /// client certificates and libpq's other TLS parameters are refused by name. The CA file
    /// and the system's store are read here, once.
    ///
    /// ```no_run
    /// # use oauth_state_store::Store;
    /// let store = Store::open(
    ///     "postgresql://app@db.internal:5432/oauth?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem",
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (an option out of range, such as `ttl` or `busy_timeout`; nothing
    /// is opened or created), [`Error::InsecureFile`] (symlink, other owner, group/world access, writable directory),
    /// [`Error::DatabaseMissing`], [`Error::PermissionDenied`], [`Error::NotAStore`] (a file
    /// whose header lacks the store's application id: another program's database, a text file;
    /// left byte for byte unchanged, nothing created beside it), [`Error::DatabaseTooNew`],
    /// [`Error::MigrationNeeded`] (only with [`StoreOptions::migrate`]`(false)` or read-only;
    /// by default a new file is made a store, an older store migrated), [`Error::Corrupt`] (a
    /// store's file that is damaged), [`Error::Busy`],
    /// [`Error::ReadOnly`], [`Error::Io`], [`Error::Pool`]. For a URL: [`Error::InvalidInput`]
    /// for a URL or TLS parameter the store refuses (the reason names the parameter, never
    /// repeats the URL), [`Error::Io`] when the `sslrootcert` file cannot be read,
    /// [`Error::Unavailable`] when the server cannot be reached within the busy timeout,
    /// [`Error::Tls`] when TLS refuses it (no TLS where `sslmode` requires it, a certificate
    /// not trusted or not naming the host).
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
    /// [`Error::Unavailable`]: crate::Error::Unavailable
    /// [`Error::Tls`]: crate::Error::Tls
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
    /// ```
    /// use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # std::env::set_var("OAUTH_STATE_DB", dir.path().join("state/flows.db"));
    /// let store = Store::open_default()?;
    /// println!("flows live in {}", store.path().unwrap().display());
    /// # assert!(store.path().unwrap().starts_with(dir.path()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`HOME`) when neither `$OAUTH_STATE_DB`, `$XDG_STATE_HOME` nor
    /// `$HOME` says where the file goes; [`Error::Io`] when the directory cannot be created;
    /// otherwise as [`Store::open`].
    pub fn open_default() -> Result<Store> {
        StoreOptions::default().open_default()
    }

    /// A private in-memory store with the default options (for tests and examples).
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, Store};
    /// let store = Store::open_in_memory()?;
    /// assert_eq!(store.path(), None);
    /// store.begin(BeginRequest::new("https://mcp.example.com"))?;
    /// assert_eq!(store.stats()?.counts.pending, 1);
    /// # Ok::<(), oauth_state_store::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) or [`Error::Pool`](crate::Error::Pool) if
    /// SQLite cannot allocate it.
    pub fn open_in_memory() -> Result<Store> {
        Self::open_in_memory_with(StoreOptions::default())
    }

    /// The options builder; same as [`StoreOptions::default`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use oauth_state_store::{BeginRequest, Store};
    /// # let dir = tempfile::tempdir()?;
    /// let store = Store::options()
    ///     .ttl(Duration::from_secs(300))
    ///     .open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(BeginRequest::new("https://mcp.example.com"))?;
    /// assert_eq!(flow.info().expires_at - flow.info().created_at, 300_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
        let engine = Engine::Sqlite(sqlite::open::open_file(path, &opts)?);
        Ok(Self::with_engine(engine, opts))
    }

    pub(crate) fn open_in_memory_with(opts: StoreOptions) -> Result<Store> {
        opts.validate()?;
        let engine = Engine::Sqlite(sqlite::open::open_in_memory(&opts)?);
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
                sweep_batch_set: opts.sweep_batch_set,
            }),
        }
    }

    /// The file's random, permanent identity (`meta.store_id`): two stores with the same id
    /// share one file.
    ///
    /// ```
    /// use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("flows.db");
    /// let (a, b) = (Store::open(&path)?, Store::open(&path)?);
    /// assert_eq!(a.store_id(), b.store_id());
    /// assert_ne!(a.store_id(), Store::open_in_memory()?.store_id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn store_id(&self) -> &str {
        self.inner.engine.store_id()
    }

    /// The database path (`None` in memory).
    ///
    /// ```
    /// use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("flows.db");
    /// assert_eq!(Store::open(&path)?.path(), Some(path.as_path()));
    /// assert_eq!(Store::open_in_memory()?.path(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> Option<&Path> {
        self.inner.engine.path()
    }

    /// The schema versions before and after this store opened the file.
    ///
    /// ```
    /// use oauth_state_store::{MigrationReport, Store, SCHEMA_VERSION};
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("flows.db");
    /// let created = Store::open(&path)?.migration();
    /// assert_eq!(created, MigrationReport { from: 0, to: SCHEMA_VERSION });
    /// let reopened = Store::open(&path)?.migration();
    /// assert_eq!(reopened.from, reopened.to);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn migration(&self) -> MigrationReport {
        self.inner.engine.migration()
    }

    /// The injected clock's current time, Unix milliseconds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use oauth_state_store::{ManualClock, Store};
    /// # let dir = tempfile::tempdir()?;
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let store = Store::options()
    ///     .clock(clock.clone())
    ///     .open(dir.path().join("flows.db"))?;
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(store.now_ms(), 1_700_000_001_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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

    /// The largest batch and the batch time of `sweep`: the options, or, when the caller set
    /// neither, the engine's own (PostgreSQL's batches lock only expired rows, so they block
    /// no live flow and may be large).
    pub(crate) fn sweep_batches(&self) -> (u32, Duration) {
        match self.engine().sweep_defaults() {
            Some(own) if !self.inner.sweep_batch_set => own,
            _ => (self.inner.sweep_batch_size, self.inner.sweep_batch_time),
        }
    }
}

/// Opening, from the options builder.
impl StoreOptions {
    /// Opens (creating if allowed) the database at `path`.
    ///
    /// # Errors
    /// See [`Store::open`].
    pub fn open(self, path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path.as_ref(), self)
    }

    /// Opens the store at the default path, as [`Store::open_default`] does with these
    /// options: a missing directory is created 0700 unless the options forbid creating
    /// anything (`read_only`, or `create_if_missing(false)`, which then report the missing
    /// file as [`Store::open`] does).
    ///
    /// ```
    /// use std::time::Duration;
    /// use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # std::env::set_var("OAUTH_STATE_DB", dir.path().join("state/flows.db"));
    /// let store = Store::options().ttl(Duration::from_secs(300)).open_default()?;
    /// # assert!(store.path().unwrap().starts_with(dir.path()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// See [`Store::open_default`].
    pub fn open_default(self) -> Result<Store> {
        let path = default_database_path().ok_or(Error::invalid(
            "HOME",
            "is not set, so there is no default path: set OAUTH_STATE_DB to the store's file",
        ))?;
        // `OAUTH_STATE_DB` may name a PostgreSQL database: no directory for that.
        let is_url = path.to_str().is_some_and(is_postgres_url);
        if self.create_if_missing && !self.read_only && !is_url {
            sqlite::permissions::create_private_parent(&path)?;
        }
        self.open(&path)
    }

    /// Opens a private in-memory database (for tests: nothing is shared or kept).
    ///
    /// # Errors
    /// See [`Store::open_in_memory`].
    pub fn open_in_memory(self) -> Result<Store> {
        Store::open_in_memory_with(self)
    }
}

/// The default database path: `$OAUTH_STATE_DB`, else
/// `$XDG_STATE_HOME/oauth-state-store/flows.db`, else
/// `~/.local/state/oauth-state-store/flows.db`. Empty and relative `XDG_STATE_HOME` values are
/// ignored, as the XDG specification asks. `None` when not even `$HOME` is set.
pub fn default_database_path() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = var("OAUTH_STATE_DB") {
        return Some(PathBuf::from(p));
    }
    let state_home = var("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state_home.join("oauth-state-store").join("flows.db"))
}
