//! How a [`Store`](crate::Store) is opened.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::validate;

/// How much a commit survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: a committed flow survives any process crash; the last
    /// commits before a power loss or kernel panic may be rolled back (never corrupted).
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced before it returns, so it also survives power
    /// loss. Costs an fsync per write.
    Full,
}

/// How a connection waits for a lock another process holds (SQLite only; up to
/// [`busy_timeout`](StoreOptions::busy_timeout) either way).
///
/// Measured with real processes on 2 cores (BENCHMARKS.md, "Waiting for the lock"):
///
/// | | worst consume wait, 16 processes | consume p99, 8 processes | 1M-row sweep beside a flow loop |
/// |---|---:|---:|---:|
/// | [`Backoff`](Self::Backoff) | 1–2 s | 3.5 ms | 3.1x one `DELETE` |
/// | [`Aging`](Self::Aging) | 30–50 ms | 12 ms | 4.9x one `DELETE` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LockWait {
    /// SQLite's own schedule (`sqlite3_busy_timeout`): sleeps of 1, 2, 5, 10, 15, 20, 25, 25,
    /// 25, 50, 50 and then 100 ms between tries. Waiters keep out of the holder's way, so most
    /// waits are short and throughput is highest; an unlucky waiter can sleep through many free
    /// locks while newer ones take them.
    #[default]
    Backoff,
    /// Back off 1, 2, 4 ms for the first 10 ms of a wait, then try every 100–200 µs
    /// (jittered): an old waiter takes the next free lock before newer ones, which are still
    /// backing off. The worst wait falls by a factor of 20–50 under heavy contention; the
    /// polling costs CPU the holders would use, so the typical wait and a concurrent sweep get
    /// slower.
    Aging,
}

/// How strictly [`Store::open`](crate::Store::open) checks the file and its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FileChecks {
    /// Refuse a symlink, a file owned by another user, a file group/others can read or write,
    /// and a directory group/others can write. The default.
    #[default]
    Enforce,
    /// Skip the owner and mode checks (containers, tests on shared mounts). Symlinks are still
    /// refused, and new files are still created `0600`.
    Relaxed,
}

/// Options for opening a [`Store`](crate::Store). `Default` is what [`Store::open`](crate::Store::open) uses:
///
/// | option | default |
/// |---|---|
/// | [`ttl`](Self::ttl) | 10 minutes |
/// | [`busy_timeout`](Self::busy_timeout) | 5 seconds |
/// | [`lock_wait`](Self::lock_wait) | [`LockWait::Backoff`] |
/// | [`pool_size`](Self::pool_size) | 4 connections (1 in memory) |
/// | [`durability`](Self::durability) | [`Durability::Normal`] |
/// | [`clock`](Self::clock) | [`SystemClock`] |
/// | [`file_checks`](Self::file_checks) | [`FileChecks::Enforce`] |
/// | [`create_if_missing`](Self::create_if_missing) | `true` |
/// | [`sweep_batch_size`](Self::sweep_batch_size) | at most 500 rows a transaction (PostgreSQL's `sweep`: 50,000 unless either sweep option is set) |
/// | [`sweep_batch_time`](Self::sweep_batch_time) | 10 ms a transaction (PostgreSQL's `sweep`: 250 ms unless either sweep option is set) |
/// | [`max_database_size`](Self::max_database_size) | no limit (SQLite's own) |
/// | [`read_only`](Self::read_only) | `false` |
/// | [`immediate_wal_scrub`](Self::immediate_wal_scrub) | `false` |
/// | [`migrate`](Self::migrate) | `true` |
///
/// ```no_run
/// use oauth_state_store::{Durability, StoreOptions};
/// let store = StoreOptions::default()
///     .ttl(std::time::Duration::from_secs(5 * 60))
///     .durability(Durability::Full)
///     .open("/home/me/.local/state/oauth-state-store/flows.db")?;
/// # Ok::<(), oauth_state_store::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub(crate) ttl: Duration,
    pub(crate) busy_timeout: Duration,
    pub(crate) lock_wait: LockWait,
    pub(crate) pool_size: u32,
    pub(crate) durability: Durability,
    pub(crate) clock: Arc<dyn Clock>,
    /// Whether [`clock`](Self::clock) was called: PostgreSQL then uses it instead of the
    /// server's clock.
    pub(crate) clock_injected: bool,
    pub(crate) file_checks: FileChecks,
    pub(crate) create_if_missing: bool,
    pub(crate) sweep_batch_size: u32,
    pub(crate) sweep_batch_time: Duration,
    /// The caller set a sweep batch option: no engine default replaces them.
    pub(crate) sweep_batch_set: bool,
    pub(crate) max_database_size: Option<u64>,
    pub(crate) read_only: bool,
    pub(crate) immediate_wal_scrub: bool,
    pub(crate) migrate: bool,
    /// The crate's own tests: open at the test-only schema version 2 (a fixture migration that
    /// proves the migration machinery), never set outside them.
    #[cfg(test)]
    pub(crate) test_version_2: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            ttl: Duration::from_secs(10 * 60),
            busy_timeout: Duration::from_secs(5),
            lock_wait: LockWait::Backoff,
            pool_size: 4,
            durability: Durability::Normal,
            clock: Arc::new(SystemClock),
            clock_injected: false,
            file_checks: FileChecks::Enforce,
            create_if_missing: true,
            sweep_batch_size: 500,
            sweep_batch_time: Duration::from_millis(10),
            sweep_batch_set: false,
            max_database_size: None,
            read_only: false,
            immediate_wal_scrub: false,
            migrate: true,
            #[cfg(test)]
            test_version_2: false,
        }
    }
}

impl StoreOptions {
    /// Default time to live of a flow: at least a millisecond, at most
    /// [`MAX_TTL`](crate::MAX_TTL) (a day). Checked when the store opens: out of range,
    /// [`open`](Self::open) fails with [`Error::InvalidInput`](crate::Error::InvalidInput)
    /// (`ttl`).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
    /// How long an operation waits for another connection's lock before failing with
    /// [`Error::Busy`](crate::Error::Busy): zero (do not wait) up to 2^31 - 1 milliseconds
    /// (about 24 days). Checked when the store opens ([`Error::InvalidInput`](crate::Error::InvalidInput),
    /// `busy_timeout`). How the wait is spent: [`lock_wait`](Self::lock_wait).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
    /// How a connection waits for another process's lock (SQLite; PostgreSQL waits in the
    /// server): [`LockWait`] compares the two ways.
    pub fn lock_wait(mut self, wait: LockWait) -> Self {
        self.lock_wait = wait;
        self
    }
    /// The most connections this `Store` (and its clones) keep open (at least 1).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(1);
        self
    }
    /// What a commit survives.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
    /// The time source (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self.clock_injected = true;
        self
    }
    /// How strictly the file and its directory are checked.
    pub fn file_checks(mut self, checks: FileChecks) -> Self {
        self.file_checks = checks;
        self
    }
    /// Whether a missing file is created (0600). When `false`, a missing file is
    /// [`Error::DatabaseMissing`](crate::Error::DatabaseMissing).
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }
    /// The most rows [`Store::sweep`](crate::Store::sweep) and
    /// [`Store::sweep_finished`](crate::Store::sweep_finished) delete in one write
    /// transaction (at least 1); `sweep_finished` walks at most 32 times as many rows in one. Batches start smaller and grow up to this while they stay under
    /// [`sweep_batch_time`](Self::sweep_batch_time).
    pub fn sweep_batch_size(mut self, rows: u32) -> Self {
        self.sweep_batch_size = rows.max(1);
        self.sweep_batch_set = true;
        self
    }
    /// How long one sweep transaction should hold the write lock: a batch that took longer
    /// halves the next one, a batch under half of it doubles the next one (up to
    /// [`sweep_batch_size`](Self::sweep_batch_size)). Other processes' writes wait at most
    /// about this long behind a sweep. A target, not a bound: one batch of a row or two can
    /// take longer on a slow disk.
    pub fn sweep_batch_time(mut self, time: Duration) -> Self {
        self.sweep_batch_time = time;
        self.sweep_batch_set = true;
        self
    }
    /// The largest the database file may grow, in bytes (rounded down to whole pages, and
    /// never below the file's current size; SQLite's `max_page_count`, set on every
    /// connection of this store). A write that needs more room fails with
    /// [`Error::StorageFull`](crate::Error::StorageFull) and changes nothing; space freed by
    /// [`Store::sweep`](crate::Store::sweep) is reused. The `-wal` file is not counted. Other processes' stores
    /// apply their own limit.
    pub fn max_database_size(mut self, bytes: u64) -> Self {
        self.max_database_size = Some(bytes);
        self
    }
    /// Only looks at the file: reading operations work, every write fails with
    /// [`Error::ReadOnly`](crate::Error::ReadOnly). The file must exist and already be a store
    /// at the current schema version (nothing is created or migrated: an empty file or an older
    /// store is [`Error::MigrationNeeded`](crate::Error::MigrationNeeded)). For inspection
    /// tools.
    ///
    /// The look creates and changes nothing. A cleanly closed file is opened read-write with
    /// `PRAGMA query_only` (SQLite refuses every write), so that the `-wal` and `-shm` that WAL
    /// mode needs to read are removed again when the store closes; a read-only connection would
    /// leave them. A `-wal` beside the file (an application has it open, or was killed) is read
    /// where it is through read-only connections (`SQLITE_OPEN_READONLY`), never merged into
    /// the database file. What SQLite does not let a look avoid: a `-wal` without its `-shm`
    /// gets a new `-shm`; a WAL-mode file this user may not write gets a `-wal` and `-shm` it
    /// cannot remove; and an application that writes while the store is open and closes first
    /// leaves its `-wal` to this store, whose close then merges it, as the application itself
    /// would have.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
    /// Whether every write that wipes a secret (consume, reject, the removal of an expired
    /// flow) also scrubs the `-wal` file at once.
    ///
    /// A wiped verifier or code is gone from its row, and `secure_delete` zeroes it in the
    /// page, as soon as the write commits. But the page image written when the flow began is
    /// still a frame of the `-wal` file. By default such frames leave the `-wal`:
    /// - at the end of every [`Store::sweep`](crate::Store::sweep) and
    ///   [`Store::sweep_finished`](crate::Store::sweep_finished), whether it removed rows or
    ///   not, at every [`Store::scrub`](crate::Store::scrub), and at every
    ///   [`Store::invalidate`](crate::Store::invalidate) that removed something (a checkpoint,
    ///   then a write that restarts the WAL and cuts the file to its own frames);
    /// - at [`Store::compact`](crate::Store::compact) (`oauth-state-store sweep --vacuum`), and
    ///   when the last connection to the file closes (SQLite then removes the `-wal`);
    /// - otherwise as SQLite's automatic checkpoints let later writes overwrite them, which is
    ///   no promise of a time.
    ///
    /// The database file itself changes only at checkpoints: when one (a sweep's, a scrub's,
    /// SQLite's automatic one) copied a flow's page while the flow was live, the file keeps
    /// that old image, verifier included, after the consume, until the next checkpoint (every
    /// item above, and SQLite's automatic ones) copies the wiped page over it. A running
    /// `oauth-state-store sweep` timer therefore bounds how long a consumed verifier can stay
    /// on disk, in the `-wal` file or in the database file. Keeping it out of the database file
    /// at once takes a checkpoint after every consume, with its two syncs: `true` below.
    ///
    /// `true` scrubs with every such write instead: a passive checkpoint before and after it,
    /// and `journal_size_limit=0` on every connection so that each WAL restart cuts the file.
    /// The old frames then go with the write itself (unless another connection holds an
    /// older read snapshot; then at the next such write). It syncs the files twice a write:
    /// BENCHMARKS.md measures a flow about 15 times slower at `Normal` durability (5 times at
    /// `Full`). For hosts where a copy of the database file or the `-wal` taken at any moment
    /// must not hold a consumed verifier.
    pub fn immediate_wal_scrub(mut self, immediate: bool) -> Self {
        self.immediate_wal_scrub = immediate;
        self
    }

    /// Whether opening may change the file's schema: create a new store's tables, migrate an
    /// older store to [`SCHEMA_VERSION`](crate::SCHEMA_VERSION), and set WAL mode. `true` by
    /// default, so that an application upgraded to a newer version of this crate keeps working
    /// on its existing file. With `false`, a file that needs any of that is
    /// [`Error::MigrationNeeded`](crate::Error::MigrationNeeded) and is left unchanged (the
    /// command line's `stats`, `list` and `sweep` open this way; only `migrate` migrates).
    ///
    /// Either way, a file that is not a store (its header lacks the store's application id)
    /// is [`Error::NotAStore`](crate::Error::NotAStore) and is never written.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Refuses an option out of range before anything is opened or created.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming the option.
    pub(crate) fn validate(&self) -> Result<()> {
        validate::ttl(self.ttl)?;
        validate::busy_timeout(self.busy_timeout)
    }
}
