//! The PostgreSQL engine (feature `postgres`): the same flows for callbacks that land on other
//! hosts, on a database that every host reaches by a `postgres://` URL.
//!
//! - [`connect`]: the URL, its defaults, the pool's connections.
//! - [`tls`]: the URL's `sslmode` and `sslrootcert` as libpq reads them, and the rustls
//!   connector that carries them out.
//! - [`migrate`]: `schema_postgres.sql` (later versions: `migrations_postgres/`), in one
//!   transaction under an advisory lock, tracked in the database; a schema newer than the code
//!   is refused, and another program's `flows` or `meta` table is not a store.
//! - [`steps`]: begin, promote, a callback and consume, one autocommit statement each (one
//!   round trip), the clock read inside it.
//! - [`pending`]: the choice of the SDK's finish without the state (`pending_verifier`,
//!   `pending_discovery`), one statement; `consume_pending` is that choice, then a consume.
//! - [`look`]: the reads by state (`check`, `peek`, `recorded_code`), one statement each;
//!   [`tokens`] reads a token set the same way.
//! - [`flows`], [`maintenance`]: the statements of the row interface, each beside the method
//!   that runs it.
//! - [`error`]: the driver's errors as the crate's (`Unavailable`, `CommitOutcomeUnknown`).
//!
//! The one-row operations are single statements that lock the row they judge (`FOR UPDATE`),
//! so two consumes of one state have one winner and the loser reads the row consumed;
//! `consume_pending` consumes its choice by the same statement, so the loser of two reads the
//! flow consumed as well. The other operations run in transactions: READ COMMITTED, a write
//! transaction reading its rows `FOR UPDATE`. The time of a transaction is the database
//! server's clock, read in the same round trip as `BEGIN`, unless the options injected a
//! clock: hosts' clocks differ, the server's is one for all of them.

pub(crate) mod admin;
pub(crate) mod check;
pub(crate) mod connect;
pub(crate) mod error;
#[macro_use]
pub(crate) mod flows;
mod maintenance;
pub(crate) mod migrate;
// `pending` after `flows` and `steps`: its statement is built with their macros.
#[macro_use]
pub(crate) mod steps;
pub(crate) mod look;
pub(crate) mod pending;
pub(crate) mod tls;
pub(crate) mod tokens;

// The integration tests' cluster harness, shared with the unit tests; its items are `pub`
// for the test binaries.
#[cfg(test)]
#[path = "../../../tests/common/pg.rs"]
#[allow(unreachable_pub)]
pub(crate) mod test_cluster;

#[cfg(test)]
#[path = "hot_tests.rs"]
mod hot_tests;

use std::sync::Arc;
use std::time::Duration;

use ::postgres::SimpleQueryMessage;
use r2d2::{Pool, PooledConnection};

use crate::backend::tx::Tx;
use crate::clock::Clock;
use crate::error::{Error, Result, StorageError};
use crate::flow::row::{FlowRow, NewFlow, PendingFlows};
use crate::flow::tx::{FlowTx, Outcome, Step, Stepped};
use crate::options::StoreOptions;
use crate::report::{CompactReport, MigrationReport};
use crate::tokens::tx::TokenRow;
use connect::{Conn, Manager, TlsFailure};
use error::{classify, commit_failed};

/// `sweep`'s largest batch and batch time when the caller set neither option. A batch locks
/// and deletes expired rows only, found by their expiry, so it blocks no live flow; few large
/// batches keep a sweep within a small factor of one `DELETE` (each batch is a commit).
pub(crate) const SWEEP_BATCHES: (u32, Duration) = (50_000, Duration::from_millis(250));

/// How long a transaction may sit idle before the server ends it (a paused or hung client
/// must not hold a flow's row lock for ever).
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The server's clock in Unix milliseconds, read by the same round trip that opens the
/// transaction.
const BEGIN_WRITE_AT_SERVER_TIME: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; \
     SELECT floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint";
const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";
const BEGIN_READ_AT_SERVER_TIME: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
     SELECT floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint";
const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
const COMMIT: &str = "COMMIT";
const ROLLBACK: &str = "ROLLBACK";
const TABLE_BYTES: &str = "SELECT pg_total_relation_size('flows')";
const VACUUM: &str = "VACUUM flows, token_sets";
const CHECKPOINT: &str = "CHECKPOINT";

/// Runs `f` where the synchronous driver may block: on this thread, or, when this thread is
/// driving a tokio runtime (which forbids starting the driver's own), on a scoped thread.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// The PostgreSQL engine of a [`Store`](crate::Store).
pub(crate) struct Postgres {
    /// Always `Some` until dropped (see the `Drop`).
    pool: Option<Pool<Manager>>,
    /// `Some` when the options injected a clock; else the server's clock.
    clock: Option<Arc<dyn Clock>>,
    busy_timeout: Duration,
    /// The pool's size: how many closed connections a checkout may skip.
    pool_size: u32,
    store_id: String,
    migration: MigrationReport,
    /// The pool's last connection failure, when TLS refused it.
    tls_failure: TlsFailure,
}

/// An open transaction on a pooled connection: rolled back when dropped uncommitted (an
/// error or a panic in the body), so no connection goes back to the pool inside one.
struct Open<'c> {
    client: &'c mut Conn,
    committed: bool,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.committed && !self.client.is_closed() {
            let _ = self.client.batch_execute(ROLLBACK);
        }
    }
}

/// Opens the engine on the database `url` names and migrates it (unless read-only or told not
/// to migrate: then an older database is [`Error::MigrationNeeded`] and is left unchanged).
///
/// # Errors
///
/// [`Error::InvalidInput`] for a bad URL (the URL is never repeated), [`Error::Unavailable`]
/// when the server cannot be reached in time, [`Error::DatabaseTooNew`],
/// [`Error::MigrationNeeded`], or the server's
/// refusal.
pub(crate) fn open(url: &str, opts: &StoreOptions) -> Result<Postgres> {
    off_runtime(|| open_here(url, opts))
}

fn open_here(url: &str, opts: &StoreOptions) -> Result<Postgres> {
    let mut settings =
        connect::config(url).map_err(|e| Error::invalid("database URL", e.reason()))?;
    let config = &mut settings.driver;
    let options = format!(
        "{} -c lock_timeout={} -c idle_in_transaction_session_timeout={}",
        config.get_options().unwrap_or_default(),
        opts.busy_timeout.as_millis().max(1),
        IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
    );
    config.options(options.trim_start());
    let tls = tls::connector(&settings.tls)?;
    let manager = Manager::new(settings.driver, tls);
    let tls_failure = manager.tls_failure();
    let busy_timeout = opts.busy_timeout;
    let pool = Pool::builder()
        .max_size(opts.pool_size.max(1))
        .min_idle(Some(0))
        .connection_timeout(opts.busy_timeout.max(Duration::from_millis(100)))
        .test_on_check_out(false)
        .error_handler(Box::new(tls_failure.clone()))
        .build(manager)
        .map_err(|e| pool_failed(e, &tls_failure, busy_timeout))?;
    let mut conn = pool
        .get()
        .map_err(|e| pool_failed(e, &tls_failure, busy_timeout))?;
    let plan = plan(opts);
    let migration = if opts.read_only || !opts.migrate {
        migrate::require_current(&mut conn, plan)
    } else {
        migrate::migrate(&mut conn, plan)
    }
    .map_err(|e| e.into_error(plan, busy_timeout))?;
    let store_id = migrate::store_id(&mut conn).map_err(|e| classify(e, busy_timeout))?;
    drop(conn);
    Ok(Postgres {
        pool: Some(pool),
        clock: opts.clock_injected.then(|| opts.clock.clone()),
        busy_timeout,
        pool_size: opts.pool_size.max(1),
        store_id,
        migration,
        tls_failure,
    })
}

/// What this open brings the database to: this code's schema, or, in the crate's own tests
/// that ask for it, the test-only version 2 (`migrate_tests.rs`).
fn plan(opts: &StoreOptions) -> &'static migrate::Plan {
    #[cfg(test)]
    if opts.test_version_2 {
        return &migrate::tests::TEST_VERSION_2;
    }
    let _ = opts;
    &migrate::CURRENT
}

/// The pool gave up waiting for a connection: [`Error::Tls`] when the last attempt was
/// refused by TLS (retrying will not help), else [`Error::Unavailable`].
fn pool_failed(e: r2d2::Error, tls_failure: &TlsFailure, busy_timeout: Duration) -> Error {
    match tls_failure.take() {
        Some(refused) => classify(refused, busy_timeout),
        None => Error::Unavailable {
            source: StorageError::new(e),
        },
    }
}

impl Postgres {
    pub(crate) fn store_id(&self) -> &str {
        &self.store_id
    }

    pub(crate) fn migration(&self) -> MigrationReport {
        self.migration
    }

    fn conn(&self) -> Result<PooledConnection<Manager>> {
        match &self.pool {
            Some(pool) => pool
                .get()
                .map_err(|e| pool_failed(e, &self.tls_failure, self.busy_timeout)),
            None => Err(Error::Storage(StorageError::message(
                "the store is being closed".to_owned(),
            ))),
        }
    }

    /// A pooled connection the driver does not already know to be closed (one the server
    /// ended while it sat in the pool): a statement sent on such a connection would have an
    /// unknown outcome, although it never left.
    fn open_conn(&self) -> Result<PooledConnection<Manager>> {
        let mut conn = self.conn()?;
        for _ in 0..self.pool_size {
            if !conn.ended_while_idle() {
                break;
            }
            // Returned broken, the pool drops it.
            drop(conn);
            conn = self.conn()?;
        }
        Ok(conn)
    }

    /// The injected clock's time, or `None`: the server's, read inside the statement.
    fn injected_now(&self) -> Option<i64> {
        self.clock.as_ref().map(|c| c.now_ms())
    }

    /// Runs one statement of its own (no transaction) on a pooled connection, off the async
    /// runtime: `f` gets the connection, the injected clock's time (`None`: the server's,
    /// read inside the statement) and the busy timeout.
    fn alone<T: Send>(
        &self,
        f: impl FnOnce(&mut Conn, Option<i64>, Duration) -> Result<T> + Send,
    ) -> Result<T> {
        off_runtime(|| {
            let mut conn = self.open_conn()?;
            f(&mut conn, self.injected_now(), self.busy_timeout)
        })
    }

    /// `begin`, `save_code_verifier`: one statement.
    pub(crate) fn insert(&self, flow: &NewFlow<'_>, ttl_ms: i64) -> Result<(i64, i64)> {
        self.alone(|conn, now, busy| steps::insert(conn, flow, ttl_ms, now, busy))
    }

    /// One guarded step: one statement.
    pub(crate) fn step(&self, step: &Step<'_>) -> Result<Stepped> {
        self.alone(|conn, now, busy| steps::step(conn, step, now, busy))
    }

    /// The clock and the row of a state key: one statement.
    pub(crate) fn by_state(&self, key: &[u8; 32]) -> Result<(i64, Option<FlowRow>)> {
        self.alone(|conn, now, busy| look::by_state(conn, key, now, busy))
    }

    /// The choice of the SDK's finish without the state: one statement.
    pub(crate) fn pending(&self, server_id: &str, client_id: Option<&str>) -> Result<PendingFlows> {
        self.alone(|conn, now, busy| pending::choose(conn, server_id, client_id, now, busy))
    }

    /// The clock and the token set row of a server and client: one statement.
    pub(crate) fn token_row(
        &self,
        server_id: &str,
        client_id: &str,
    ) -> Result<(i64, Option<TokenRow>)> {
        self.alone(|conn, now, busy| tokens::row_now(conn, server_id, client_id, now, busy))
    }

    /// Opens a transaction and reads its time: the injected clock, or the server's.
    fn begin<'c>(&self, client: &'c mut Conn, write: bool) -> Result<(Open<'c>, i64)> {
        let lost = |e| classify(e, self.busy_timeout);
        let now = match &self.clock {
            Some(clock) => {
                client
                    .batch_execute(if write { BEGIN_WRITE } else { BEGIN_READ })
                    .map_err(lost)?;
                clock.now_ms()
            }
            None => {
                let sql = if write {
                    BEGIN_WRITE_AT_SERVER_TIME
                } else {
                    BEGIN_READ_AT_SERVER_TIME
                };
                let messages = client.simple_query(sql).map_err(lost)?;
                let now = messages.iter().find_map(|m| match m {
                    SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse::<i64>().ok()),
                    _ => None,
                });
                match now {
                    Some(now) => now,
                    None => {
                        let _ = client.batch_execute(ROLLBACK);
                        return Err(Error::Storage(StorageError::message(
                            "the server did not report its time".to_owned(),
                        )));
                    }
                }
            }
        };
        Ok((
            Open {
                client,
                committed: false,
            },
            now,
        ))
    }

    /// One READ COMMITTED write transaction on `client`: commits unless `body` fails.
    pub(crate) fn write_on<T>(
        &self,
        client: &mut Conn,
        body: impl FnOnce(&mut dyn Tx) -> Result<Outcome<T>>,
    ) -> Result<Outcome<T>> {
        let (mut open, now) = self.begin(client, true)?;
        let outcome = {
            let mut rows = flows::Rows::new(open.client, now, self.busy_timeout, true);
            body(&mut rows)?
        };
        open.committed = true;
        open.client
            .batch_execute(COMMIT)
            .map_err(|e| commit_failed(e, self.busy_timeout))?;
        Ok(outcome)
    }

    /// Runs `body` in one write transaction.
    pub(crate) fn write<T: Send>(
        &self,
        body: impl FnOnce(&mut dyn Tx) -> Result<Outcome<T>> + Send,
    ) -> Result<T> {
        off_runtime(|| {
            let mut conn = self.conn()?;
            self.write_on(&mut conn, body)?.into_result()
        })
    }

    /// Runs `body` in one read-only REPEATABLE READ transaction (a consistent snapshot).
    pub(crate) fn read<T: Send>(
        &self,
        body: impl FnOnce(&mut dyn Tx) -> Result<T> + Send,
    ) -> Result<T> {
        off_runtime(|| self.read_here(body))
    }

    fn read_here<T>(&self, body: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        let (mut open, now) = self.begin(&mut conn, false)?;
        let value = {
            let mut rows = flows::Rows::new(open.client, now, self.busy_timeout, false);
            body(&mut rows)?
        };
        open.committed = true;
        open.client
            .batch_execute(COMMIT)
            .map_err(|e| classify(e, self.busy_timeout))?;
        Ok(value)
    }

    /// A held connection for a sweep's batches.
    pub(crate) fn session(&self) -> Result<Session<'_>> {
        Ok(Session {
            engine: self,
            conn: Some(off_runtime(|| self.conn())?),
        })
    }

    fn table_bytes(&self, client: &mut Conn) -> Result<u64> {
        let n: i64 = client
            .query_one(TABLE_BYTES, &[])
            .map_err(|e| classify(e, self.busy_timeout))?
            .get(0);
        Ok(n.max(0) as u64)
    }

    /// `VACUUM flows` (dead row versions, wiped verifiers among them, become free space),
    /// then a `CHECKPOINT` where the role may run one (`wal_truncated`: the server's WAL up to
    /// it can be recycled; PostgreSQL recycles, it does not wipe, WAL segments).
    pub(crate) fn compact(&self) -> Result<CompactReport> {
        off_runtime(|| self.compact_here())
    }

    fn compact_here(&self) -> Result<CompactReport> {
        let mut conn = self.conn()?;
        let before = self.table_bytes(&mut conn)?;
        let vacuumed = match conn.batch_execute(VACUUM) {
            Ok(()) => true,
            Err(e) if e.code().is_some() && !error::is_connection_lost(&e) => false,
            Err(e) => return Err(classify(e, self.busy_timeout)),
        };
        let checkpointed = match conn.batch_execute(CHECKPOINT) {
            Ok(()) => true,
            Err(e) if e.code().is_some() && !error::is_connection_lost(&e) => false,
            Err(e) => return Err(classify(e, self.busy_timeout)),
        };
        let after = self.table_bytes(&mut conn)?;
        Ok(CompactReport {
            vacuumed,
            wal_truncated: checkpointed,
            file_bytes_before: before,
            file_bytes_after: after,
            wal_bytes_before: 0,
            wal_bytes_after: 0,
        })
    }
}

/// A held connection on which a sweep runs its batches.
pub(crate) struct Session<'e> {
    engine: &'e Postgres,
    /// Always `Some` until dropped (see the `Drop`).
    conn: Option<PooledConnection<Manager>>,
}

impl Session<'_> {
    pub(crate) fn write<T: Send>(
        &mut self,
        body: impl FnOnce(&mut dyn FlowTx) -> Result<Outcome<T>> + Send,
    ) -> Result<T> {
        let (engine, conn) = (self.engine, &mut self.conn);
        off_runtime(move || match conn {
            Some(conn) => engine.write_on(conn, |tx| body(tx))?.into_result(),
            None => Err(Error::Storage(StorageError::message(
                "the sweep session is closed".to_owned(),
            ))),
        })
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // Returning a broken connection closes it, which blocks like any driver call.
        let conn = self.conn.take();
        off_runtime(move || drop(conn));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Closing the pool's connections blocks like any driver call.
        let pool = self.pool.take();
        off_runtime(move || drop(pool));
    }
}
