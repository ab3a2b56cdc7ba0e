//! The engines, and the one enum that picks the engine.
//!
//! Every operation's body is written once, in [`crate::flow::ops`], over the per-transaction
//! row interface [`FlowTx`], or, for the one-row operations (begin, promote, a callback,
//! consume), over one guarded [`Step`] that an engine carries out atomically and that returns
//! the row it judged; every verdict comes from [`crate::flow::rules`], on that row.
//! An engine supplies no rule, only storage. It depends on the flow layer and the neutral
//! values (options, reports, errors), never on the [`Store`](crate::Store), the
//! administration or the other engine, and the store asks each engine only what it can answer
//! (file facts the SQLite engine, server facts PostgreSQL).
//!
//! # Adding an engine
//!
//! A second engine (PostgreSQL, say, in `backend/postgres/`) implements:
//!
//! 1. **The row interface** on its transaction type, [`FlowRows`] (the flow operations'
//!    statements) and [`MaintenanceRows`] (the many-row ones): one method a statement, each
//!    statement a named `const` beside the method that runs it. The methods take values the
//!    operation computed (an id, a state key, the bounds of "live" from
//!    [`rules`](crate::flow::rules)); none decides anything. Guarded updates (`bind`,
//!    `set_callback`, `mark_consumed`) are conditional on the status the operation read and
//!    return the number of rows they changed; the operation checks it. `insert` maps a unique
//!    violation to [`Error::DuplicateState`] or [`Error::DuplicateChallenge`], never a prior
//!    read.
//! 2. **A transaction** around a closure: `write` (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: READ
//!    COMMITTED with the rows read `FOR UPDATE`) commits on `Ok`, rolls back on `Err`, and
//!    turns an [`Outcome::CommitThenFail`] into its error after the commit; `read` gives a
//!    consistent snapshot. Each supplies [`FlowRows::now`] for its transaction: SQLite the
//!    injectable client clock, PostgreSQL the server's clock read in the transaction unless a
//!    test injected a clock.
//! 3. **One [`Step`] per one-row operation** ([`Engine::step`], [`Engine::insert`]): either
//!    [`ops::step_in_tx`] in its write transaction (SQLite), or statements of its own whose
//!    condition is the rules' "may proceed", with the rules' status sets as parameters, that
//!    return the row as it was and what they wrote (PostgreSQL: one statement each, one round
//!    trip). The operation asks the rules again on the returned row and checks that the write
//!    was the verdict's; a model test holds the engine's statements to the rules. The choice
//!    of the SDK's finish without the state ([`Engine::pending`]) is the same: either
//!    [`ops::read_pending`] in a transaction, or one statement over the same condition;
//!    `consume_pending` is that choice, then the consume step of the flow chosen.
//! 4. **A batch session** for sweeps ([`Session`]): a held connection on which several short
//!    write transactions run, with whatever the engine wants between batches.
//! 5. **Its migrations, its file or connection checks, and its error mapping**: storage
//!    failures become [`Error::Busy`], [`Error::StorageFull`], [`Error::ReadOnly`],
//!    [`Error::Corrupt`] or [`Error::Storage`], with the engine's own error as an opaque
//!    [`StorageError`](crate::error::StorageError) source. What it reports about itself is one
//!    of the values of [`crate::report`].
//! 6. **A variant of [`Engine`] and of [`Session`]**, and its arm in each of their `match`es.
//!    Then the conformance suite (`tests/conformance/`) gets a factory for it and must pass
//!    unchanged.

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod sqlite;
pub(crate) mod tx;

use std::path::Path;

use self::tx::Tx;
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::flow::ops;
use crate::flow::row::{FlowRow, NewFlow, PendingFlows};
use crate::flow::rules::Action;
#[cfg(doc)]
use crate::flow::tx::{FlowRows, MaintenanceRows};
use crate::flow::tx::{FlowTx, Outcome, Step, Stepped, Wipe};
use crate::flow::ConsumedFlow;
use crate::report::{CompactReport, FileInfo, MigrationReport, ServerInfo};
use crate::tokens::ops::{self as token_ops, Key as TokenKey};
use crate::tokens::tx::TokenRow;

/// The engine a [`Store`](crate::Store) runs on, chosen at open.
pub(crate) enum Engine {
    /// The embedded default: one SQLite file (or a private in-memory database).
    Sqlite(sqlite::Sqlite),
    /// A PostgreSQL database named by a URL (feature `postgres`).
    #[cfg(feature = "postgres")]
    Postgres(self::postgres::Postgres),
}

impl Engine {
    /// Runs `body` in one write transaction; see [`Outcome`].
    pub(crate) fn write<T: Send>(
        &self,
        wipe: Wipe,
        body: impl FnOnce(&mut dyn Tx) -> Result<Outcome<T>> + Send,
    ) -> Result<T> {
        match self {
            Engine::Sqlite(e) => e.write(wipe, body),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.write(body),
        }
    }

    /// `begin` and `save_code_verifier`: inserts `flow`, created now and expiring `ttl_ms`
    /// later; returns its creation and expiry times. PostgreSQL: one statement, the clock
    /// read inside it.
    pub(crate) fn insert(&self, flow: &NewFlow<'_>, ttl_ms: i64) -> Result<(i64, i64)> {
        match self {
            Engine::Sqlite(e) => e.write(Wipe::Nothing, |tx| ops::insert(tx, flow, ttl_ms)),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.insert(flow, ttl_ms),
        }
    }

    /// One guarded [`Step`] of a flow operation, atomically (see [`Step`]). SQLite: the body
    /// [`ops::step_in_tx`] in one write transaction; PostgreSQL: one statement.
    pub(crate) fn step(&self, wipe: Wipe, step: &Step<'_>) -> Result<Stepped> {
        match self {
            Engine::Sqlite(e) => e.write(wipe, |tx| ops::step_in_tx(tx, step)),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => {
                let _ = wipe;
                e.step(step)
            }
        }
    }

    /// The clock and the row of a state key, for the reads by state (`check`, `peek`,
    /// `recorded_code`), which `ops` then judges. SQLite: in one read transaction;
    /// PostgreSQL: one statement.
    pub(crate) fn by_state(&self, key: &[u8; 32]) -> Result<(i64, Option<FlowRow>)> {
        match self {
            Engine::Sqlite(e) => e.read(|tx| Ok((tx.now(), tx.by_state(key)?))),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.by_state(key),
        }
    }

    /// The clock and the token set row of `key`, for `tokens` (which `tokens::ops::load`
    /// judges). SQLite: in one read transaction; PostgreSQL: one statement.
    pub(crate) fn token_row(&self, key: TokenKey<'_>) -> Result<(i64, Option<TokenRow>)> {
        match self {
            Engine::Sqlite(e) => e.read(|tx| token_ops::read_row(tx.tokens(), key)),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.token_row(key.server_id, key.client_id),
        }
    }

    /// The choice of the SDK's finish without the state (see [`ops::read_pending`]). SQLite:
    /// in one read transaction; PostgreSQL: one statement.
    pub(crate) fn pending(&self, server_id: &str, client_id: Option<&str>) -> Result<PendingFlows> {
        match self {
            Engine::Sqlite(e) => e.read(|tx| ops::read_pending(tx, server_id, client_id)),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.pending(server_id, client_id),
        }
    }

    /// `consume_pending`: the choice, then the consume of the flow chosen by its state
    /// ([`ops::consume_pending`]). SQLite: both in one write transaction (the step's write
    /// commits whatever the verdict, as a consume's does); PostgreSQL: the choice's statement,
    /// then the consume's.
    pub(crate) fn consume_pending(
        &self,
        server_id: &str,
        client_id: Option<&str>,
    ) -> Result<ConsumedFlow> {
        match self {
            Engine::Sqlite(e) => e.write(Wipe::Secret, |tx| {
                let choice = ops::read_pending(tx, server_id, client_id)?;
                let mut wrote = false;
                let consumed = ops::consume_pending(
                    choice,
                    &mut |step| {
                        let s = ops::step_in_tx(tx, step)?.into_result()?;
                        wrote = s.did != Action::Nothing;
                        Ok(s)
                    },
                    server_id,
                );
                match consumed {
                    Ok(flow) => Ok(Outcome::Done(flow)),
                    Err(e) if wrote => Ok(Outcome::CommitThenFail(e)),
                    Err(e) => Err(e),
                }
            }),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => ops::consume_pending(
                e.pending(server_id, client_id)?,
                &mut |step| e.step(step),
                server_id,
            ),
        }
    }

    /// Runs `body` in one read transaction (a consistent snapshot).
    pub(crate) fn read<T: Send>(
        &self,
        body: impl FnOnce(&mut dyn Tx) -> Result<T> + Send,
    ) -> Result<T> {
        match self {
            Engine::Sqlite(e) => e.read(body),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.read(body),
        }
    }

    /// A held connection for a run of short write transactions (a sweep).
    pub(crate) fn session(&self) -> Result<Session<'_>> {
        match self {
            Engine::Sqlite(e) => Ok(Session::Sqlite(e.session()?)),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => Ok(Session::Postgres(e.session()?)),
        }
    }

    /// After a bulk wipe (sweep, invalidate): let the engine clear old copies of what was
    /// wiped.
    pub(crate) fn after_bulk_wipe(&self) -> Result<()> {
        match self {
            Engine::Sqlite(e) => e.scrub_wal(),
            // Dead row versions wait for (auto)vacuum; `sweep --vacuum` runs one.
            #[cfg(feature = "postgres")]
            Engine::Postgres(_) => Ok(()),
        }
    }

    /// The engine's own largest sweep batch and batch time, used when the caller set neither
    /// option: `None` keeps the options' defaults.
    pub(crate) fn sweep_defaults(&self) -> Option<(u32, std::time::Duration)> {
        match self {
            Engine::Sqlite(_) => None,
            #[cfg(feature = "postgres")]
            Engine::Postgres(_) => Some(self::postgres::SWEEP_BATCHES),
        }
    }

    /// The store's permanent identity, read when it was opened.
    pub(crate) fn store_id(&self) -> &str {
        match self {
            Engine::Sqlite(e) => e.store_id(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.store_id(),
        }
    }

    /// The database file, for an engine that has one.
    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Engine::Sqlite(e) => e.path(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(_) => None,
        }
    }

    /// What migrating at open did.
    pub(crate) fn migration(&self) -> MigrationReport {
        match self {
            Engine::Sqlite(e) => e.migration(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.migration(),
        }
    }

    /// Facts about the database file: `None` for an engine without one.
    pub(crate) fn file_info(&self) -> Result<Option<FileInfo>> {
        match self {
            Engine::Sqlite(e) => e.file_info().map(Some),
            #[cfg(feature = "postgres")]
            Engine::Postgres(_) => Ok(None),
        }
    }

    /// What a database server knows about the store: `None` for an engine without a server.
    pub(crate) fn server_info(&self) -> Result<Option<ServerInfo>> {
        match self {
            Engine::Sqlite(_) => Ok(None),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.server_info().map(Some),
        }
    }

    /// Reclaims space.
    pub(crate) fn compact(&self) -> Result<CompactReport> {
        match self {
            Engine::Sqlite(e) => e.compact(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.compact(),
        }
    }
}

/// A held connection on which a sweep runs its batches.
// One a sweep, on the stack: the sizes of the engines' sessions differ with the feature set
// (which one is larger too), and neither is worth a box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Session<'e> {
    /// SQLite: the automatic checkpoint is off for the session, a passive one runs between
    /// batches.
    Sqlite(sqlite::wal::Session<'e>),
    /// PostgreSQL: a held connection; batches skip rows that live operations hold.
    #[cfg(feature = "postgres")]
    Postgres(self::postgres::Session<'e>),
}

impl Session<'_> {
    /// Runs `body` in one write transaction on the held connection; see [`Outcome`].
    pub(crate) fn write<T: Send>(
        &mut self,
        body: impl FnOnce(&mut dyn FlowTx) -> Result<Outcome<T>> + Send,
    ) -> Result<T> {
        match self {
            Session::Sqlite(s) => s.write(body),
            #[cfg(feature = "postgres")]
            Session::Postgres(s) => s.write(body),
        }
    }

    /// Between two batches: whatever keeps the engine's log short.
    pub(crate) fn between_batches(&mut self) {
        match self {
            Session::Sqlite(s) => s.between_batches(),
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => {}
        }
    }

    /// Ends the session, restoring the connection's settings.
    pub(crate) fn finish(self) -> Result<()> {
        match self {
            Session::Sqlite(s) => s.finish(),
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => Ok(()),
        }
    }
}
