//! The many-row operations of [`Store`]: the SDK's state-less verifier lookup, invalidation,
//! sweep and statistics.

use std::time::{Duration, Instant};

#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::flow::ops;
use crate::flow::tx::{FlowTx, Outcome, Wipe};
use crate::flow::{InvalidateScope, Stats, Status, SweepReport};
use crate::pkce::CodeVerifier;
use crate::store::Store;
use crate::validate;

/// The first batch of a sweep; later ones grow or shrink toward the time target.
const FIRST_SWEEP_BATCH: u32 = 64;

/// The next batch size: half when the last batch took longer than `target`, double (at
/// most `max`) when it took less than half of it.
fn next_batch_size(size: u32, held: Duration, target: Duration, max: u32) -> u32 {
    if held > target {
        (size / 2).max(1)
    } else if held < target / 2 {
        size.saturating_mul(2).min(max)
    } else {
        size
    }
}

impl Store {
    /// The SDK call without state context (`codeVerifier()`): the verifier of the one live
    /// flow bound to a state for this server and client. It is not consumed.
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, CodeVerifier, Error};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let verifier = CodeVerifier::generate();
    /// let request = BeginRequest::new("srv")
    ///     .client_id("my-app")
    ///     .verifier(CodeVerifier::new(verifier.secret())?);
    /// store.begin(request)?;
    /// let pending = store.pending_verifier("srv", Some("my-app"))?;
    /// assert_eq!(pending.secret(), verifier.secret());
    /// // A second attempt makes the choice a guess: refused, not guessed.
    /// store.begin(BeginRequest::new("srv").client_id("my-app"))?;
    /// let two = store.pending_verifier("srv", Some("my-app"));
    /// assert!(matches!(two, Err(Error::AmbiguousPendingVerifier { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NoPendingVerifier`], [`Error::AmbiguousPendingVerifier`] (with the count) when
    /// overlapping attempts make the choice a guess, [`Error::InvalidInput`], storage errors.
    pub fn pending_verifier(
        &self,
        server_id: &str,
        client_id: Option<&str>,
    ) -> Result<CodeVerifier> {
        validate::server_and_client(server_id, client_id)?;
        ops::pending_verifier(self.engine().pending(server_id, client_id)?)
    }

    /// The SDK's finish without state context: an SDK that exchanges a code without handing
    /// the callback's `state` over (the MCP TypeScript SDK's `finishAuth(code)`) asks for the
    /// verifier with nothing but the server and client. This consumes the one live flow bound
    /// to a state for this server and client (pending, or completed by a listener), exactly
    /// once across processes, by the rules of [`Store::consume_for`], and hands out what a
    /// consume does. With several such flows the code could belong to any of them:
    /// [`Error::AmbiguousPendingVerifier`], and nothing is consumed.
    ///
    /// Only a flow whose verifier the caller supplied ([`Store::save_code_verifier`], or
    /// [`BeginRequest::verifier`](crate::BeginRequest::verifier)) is taken this way; a flow
    /// whose verifier the store generated is finished by its state (it counts toward the
    /// choice, and alone gives [`Error::NoPendingVerifier`]).
    ///
    /// On a SQLite file the choice and the consume are one transaction. On PostgreSQL the
    /// choice is one statement and the consume of the flow chosen, by its state, another (two
    /// round trips): a flow another process consumed in between is what a consume of its state
    /// then says, [`Error::AlreadyConsumed`]; one consumed before the choice is not chosen.
    ///
    /// ```
    /// use oauth_state_store::{CodeVerifier, Error};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let verifier = CodeVerifier::generate();
    /// let challenge = store.save_code_verifier("srv", Some("app"), verifier.secret())?;
    /// let url = format!("https://as.example/authorize?state=s1&code_challenge={}", challenge.as_str());
    /// store.promote("srv", Some("app"), &url)?;
    /// let done = store.consume_pending("srv", Some("app"))?;
    /// assert_eq!(done.verifier.secret(), verifier.secret());
    /// // Exactly once: the flow is a tombstone now.
    /// assert!(matches!(store.consume_pending("srv", Some("app")), Err(Error::NoPendingVerifier)));
    /// assert!(matches!(store.consume("s1"), Err(Error::AlreadyConsumed)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NoPendingVerifier`], [`Error::AmbiguousPendingVerifier`] (with the count),
    /// [`Error::InvalidInput`] (`server_id`, `client_id`), those of [`Store::consume_for`] for
    /// the flow taken, storage errors.
    pub fn consume_pending(
        &self,
        server_id: &str,
        client_id: Option<&str>,
    ) -> Result<crate::flow::ConsumedFlow> {
        validate::server_and_client(server_id, client_id)?;
        self.engine().consume_pending(server_id, client_id)
    }

    /// The discovery state ([`Promotion::discovery`](crate::Promotion::discovery)) recorded on
    /// the flow [`Store::consume_pending`] would take now, without consuming it: what an SDK
    /// asks for before the verifier when it finishes a login without the state (the MCP
    /// TypeScript SDK v2's `discoveryState()`), in a process that did not begin it. `None`
    /// when that flow has none.
    ///
    /// # Errors
    /// As [`Store::consume_pending`]'s choice: [`Error::NoPendingVerifier`],
    /// [`Error::AmbiguousPendingVerifier`], [`Error::InvalidInput`], storage errors.
    pub fn pending_discovery(
        &self,
        server_id: &str,
        client_id: Option<&str>,
    ) -> Result<Option<String>> {
        validate::server_and_client(server_id, client_id)?;
        ops::pending_discovery(self.engine().pending(server_id, client_id)?)
    }

    /// Deletes exactly the flows of `server_id` (and of `client_id`, when given; `None` means
    /// every client of that server) that `scope` names, by exact column match. Returns how many
    /// rows were deleted. Other servers' and clients' rows are never touched.
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, CodeVerifier, InvalidateScope};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// store.save_code_verifier("srv", None, CodeVerifier::generate().secret())?;
    /// store.begin(BeginRequest::new("srv"))?;
    /// store.begin(BeginRequest::new("another-server"))?;
    /// assert_eq!(store.invalidate("srv", None, InvalidateScope::Unbound)?, 1);
    /// assert_eq!(store.invalidate("srv", None, InvalidateScope::All)?, 1);
    /// assert_eq!(store.stats()?.counts.total(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`server_id`, `client_id`), storage errors.
    pub fn invalidate(
        &self,
        server_id: &str,
        client_id: Option<&str>,
        scope: InvalidateScope,
    ) -> Result<u64> {
        validate::server_and_client(server_id, client_id)?;
        // A bulk wipe: the engine scrubs once afterwards, in either scrub mode.
        let n = self.engine().write(Wipe::Nothing, |tx| {
            ops::invalidate(tx, server_id, client_id, scope)
        })?;
        if n > 0 {
            self.engine().after_bulk_wipe()?;
        }
        Ok(n)
    }

    /// Clears old copies of wiped secrets (a consumed or failed flow's verifier and code) that
    /// the engine may still keep. On SQLite: a passive checkpoint copies the wiped pages into
    /// the database file, then, if the `-wal` file holds any frame, one tiny write restarts it
    /// and cuts it to that write's frames. Cheap (no `VACUUM`, never waits for readers); while
    /// another connection holds an older read snapshot, the old frames stay until a later
    /// scrub. Every [`sweep`](Store::sweep) ends with one.
    ///
    /// ```
    /// use oauth_state_store::BeginRequest;
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(BeginRequest::new("srv"))?;
    /// store.consume(flow.state().secret())?;
    /// store.scrub()?; // the verifier is now in neither the file nor its -wal
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Storage errors ([`Error::Busy`], [`Error::ReadOnly`], ...); nothing is changed but the
    /// engine's log.
    pub fn scrub(&self) -> Result<()> {
        self.engine().after_bulk_wipe()
    }

    /// Deletes every row whose expiry has passed, whatever its status (unbound orphans,
    /// pending, completed, failed, tombstones), in short write transactions of
    /// [`sweep_batch_size`](crate::StoreOptions::sweep_batch_size) rows so that live traffic
    /// is never blocked for long. Safe while other processes use the file.
    ///
    /// ```
    /// use std::time::Duration;
    /// use oauth_state_store::BeginRequest;
    /// # use oauth_state_store::{ManualClock, Store};
    /// # let dir = tempfile::tempdir()?;
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let store = Store::options()
    ///     .clock(clock.clone())
    ///     .open(dir.path().join("flows.db"))?;
    /// store.begin(BeginRequest::new("srv").ttl(Duration::from_secs(60)))?;
    /// store.begin(BeginRequest::new("srv").ttl(Duration::from_secs(600)))?;
    /// clock.advance(Duration::from_secs(61));
    /// let report = store.sweep()?;
    /// assert_eq!((report.removed.pending, report.batches), (1, 1));
    /// assert_eq!(store.stats()?.counts.pending, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Storage errors; rows deleted by batches already committed stay deleted.
    pub fn sweep(&self) -> Result<SweepReport> {
        let (max, target) = self.sweep_batches();
        self.delete_in_batches(max, target, |tx, size| {
            let outcome = ops::sweep_batch(tx, size)?;
            Ok(outcome.map(|deleted| {
                let more = deleted.len() >= size as usize;
                (deleted, more)
            }))
        })
    }

    /// Runs `batch` (one transaction body of at most its size of rows, returning the statuses
    /// of the rows it deleted and whether there may be more to do) in short write transactions
    /// on one held connection until there is no more, then lets the engine scrub once.
    ///
    /// Batch sizes adapt, from a small first one up to `max`: each batch's time from the start
    /// of its transaction body to the end of its commit (the write lock's hold) is measured,
    /// and the next batch halves when it took longer than
    /// [`sweep_batch_time`](crate::StoreOptions::sweep_batch_time), doubles when it took less
    /// than half.
    pub(crate) fn delete_in_batches(
        &self,
        max: u32,
        target: Duration,
        mut batch: impl FnMut(&mut dyn FlowTx, u32) -> Result<Outcome<(Vec<Status>, bool)>> + Send,
    ) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let mut session = self.engine().session()?;
        let mut run = || -> Result<()> {
            let mut size = max.min(FIRST_SWEEP_BATCH);
            loop {
                let mut began = None;
                let (deleted, more) = session.write(|tx| {
                    began = Some(Instant::now());
                    batch(tx, size)
                })?;
                let held = began.map_or(Duration::ZERO, |t| t.elapsed());
                report.longest_batch = report.longest_batch.max(held);
                report.batches += u64::from(!deleted.is_empty());
                for status in &deleted {
                    report.removed.add(*status, 1);
                }
                if !more {
                    return Ok(());
                }
                if !deleted.is_empty() {
                    session.between_batches();
                }
                size = next_batch_size(size, held, target, max);
                // Let waiting writers in between batches.
                std::thread::yield_now();
            }
        };
        let outcome = run();
        let finished = session.finish();
        outcome?;
        finished?;
        // Whether or not this sweep removed a row: a consume since the last scrub may have left
        // its flow's old page image in the engine's log.
        self.engine().after_bulk_wipe()?;
        Ok(report)
    }

    /// The loopback listener's idle test: does a live flow still wait for its callback at one
    /// of these redirect URIs?
    ///
    /// # Errors
    /// Storage errors.
    #[cfg_attr(not(feature = "listener"), allow(dead_code))]
    pub(crate) fn waiting_at(&self, redirect_uris: &[&str; 2]) -> Result<bool> {
        self.engine().read(|tx| ops::waiting_at(tx, redirect_uris))
    }

    /// Row counts by status, how many have expired, and the oldest and newest expiry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use oauth_state_store::BeginRequest;
    /// # use oauth_state_store::{ManualClock, Store};
    /// # let dir = tempfile::tempdir()?;
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let store = Store::options()
    ///     .clock(clock.clone())
    ///     .open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(BeginRequest::new("srv").ttl(Duration::from_secs(60)))?;
    /// store.consume(flow.state().secret())?;
    /// store.begin(BeginRequest::new("srv"))?;
    /// clock.advance(Duration::from_secs(61));
    /// let stats = store.stats()?;
    /// assert_eq!((stats.counts.pending, stats.counts.consumed), (1, 1));
    /// assert_eq!(stats.expired, 1);
    /// assert_eq!(stats.oldest_expiry, Some(1_700_000_060_000));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Storage errors.
    pub fn stats(&self) -> Result<Stats> {
        let lines = self.engine().read(|tx| ops::stats(tx))?;
        let mut stats = Stats::default();
        for line in lines {
            stats.counts.add(line.status, line.count);
            stats.oldest_expiry = [stats.oldest_expiry, line.min_expiry]
                .into_iter()
                .flatten()
                .min();
            stats.newest_expiry = [stats.newest_expiry, line.max_expiry]
                .into_iter()
                .flatten()
                .max();
            stats.expired += line.expired;
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_halve_when_slow_double_when_fast_and_stay_in_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(next_batch_size(64, ms(11), ms(10), 500), 32);
        assert_eq!(next_batch_size(1, ms(50), ms(10), 500), 1);
        assert_eq!(next_batch_size(64, ms(4), ms(10), 500), 128);
        assert_eq!(next_batch_size(400, ms(1), ms(10), 500), 500);
        assert_eq!(next_batch_size(u32::MAX, ms(1), ms(10), u32::MAX), u32::MAX);
        assert_eq!(next_batch_size(64, ms(7), ms(10), 500), 64);
        assert_eq!(next_batch_size(64, ms(10), ms(10), 500), 64);
    }
}
