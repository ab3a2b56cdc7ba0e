//! Operations over many rows: the SDK's state-less verifier lookup, invalidation, sweep and
//! statistics.

use std::time::{Duration, Instant};

use rusqlite::params;

use crate::error::{Error, Result};
use crate::flow::{InvalidateScope, Stats, Status, SweepReport};
use crate::ops::{corrupt_row, verifier_matches};
use crate::pkce::CodeVerifier;
use crate::store::Store;
use crate::validate;

pub(crate) const SELECT_LIVE_BOUND_VERIFIERS: &str =
    "SELECT code_verifier, code_challenge FROM flows \
     WHERE server_id = ?1 AND client_id IS ?2 AND status IN ('pending', 'completed') \
     AND expires_at > ?3 AND created_at <= ?3 LIMIT 2";

pub(crate) const COUNT_LIVE_BOUND: &str = "SELECT count(*) FROM flows \
     WHERE server_id = ?1 AND client_id IS ?2 AND status IN ('pending', 'completed') \
     AND expires_at > ?3 AND created_at <= ?3";

/// `?2` NULL means every client of the server; `?3..?7` are the statuses to delete (NULL
/// fills unused slots).
pub(crate) const INVALIDATE: &str = "DELETE FROM flows WHERE server_id = ?1 \
     AND (?2 IS NULL OR client_id = ?2) AND status IN (?3, ?4, ?5, ?6, ?7)";

pub(crate) const SWEEP_BATCH: &str = "DELETE FROM flows WHERE id IN \
     (SELECT id FROM flows WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2) RETURNING status";

const STATS: &str = "SELECT status, count(*), min(expires_at), max(expires_at), \
     sum(expires_at <= ?1) FROM flows GROUP BY status";

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

fn status_of(s: &str) -> rusqlite::Result<Status> {
    Status::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            "unknown status".into(),
        )
    })
}

impl Store {
    /// The SDK call without state context (`codeVerifier()`): the verifier of the one live
    /// flow bound to a state for this server and client. It is not consumed.
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
        self.read(|tx, now| {
            let mut found: Vec<(String, String)> = tx
                .prepare_cached(SELECT_LIVE_BOUND_VERIFIERS)?
                .query_map(params![server_id, client_id, now], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            match found.len() {
                0 => Err(Error::NoPendingVerifier),
                1 => {
                    let (verifier, challenge) = found.remove(0);
                    if !verifier_matches(&verifier, &challenge) {
                        return Err(corrupt_row(
                            "the code_verifier no longer matches its code_challenge",
                        ));
                    }
                    Ok(CodeVerifier::from_stored(verifier))
                }
                _ => {
                    let count: i64 = tx
                        .prepare_cached(COUNT_LIVE_BOUND)?
                        .query_row(params![server_id, client_id, now], |r| r.get(0))?;
                    Err(Error::AmbiguousPendingVerifier {
                        count: count.max(0) as u64,
                    })
                }
            }
        })
    }

    /// Deletes exactly the flows of `server_id` (and of `client_id`, when given; `None` means
    /// every client of that server) that `scope` names, by exact column match. Returns how many
    /// rows were deleted. Other servers' and clients' rows are never touched.
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
        let mut slots: [Option<&str>; 5] = [None; 5];
        for (slot, status) in slots.iter_mut().zip(scope.statuses()) {
            *slot = Some(status.as_str());
        }
        // A bulk wipe: scrub_wal below clears the WAL once, in either scrub mode.
        let n = self.write(|tx, _now| {
            let n = tx.prepare_cached(INVALIDATE)?.execute(params![
                server_id, client_id, slots[0], slots[1], slots[2], slots[3], slots[4]
            ])?;
            Ok(Ok(n as u64))
        })?;
        if n > 0 {
            self.scrub_wal()?;
        }
        Ok(n)
    }

    /// Deletes every row whose expiry has passed, whatever its status (unbound orphans,
    /// pending, completed, failed, tombstones), in short write transactions of
    /// [`sweep_batch_size`](crate::StoreOptions::sweep_batch_size) rows so that live traffic
    /// is never blocked for long. Safe while other processes use the file.
    ///
    /// # Errors
    /// Storage errors; rows deleted by batches already committed stay deleted.
    pub fn sweep(&self) -> Result<SweepReport> {
        self.delete_in_batches(SWEEP_BATCH, Ok)
    }

    /// Runs `sql` (a `DELETE ... LIMIT ?2 RETURNING status` whose `?1` is `cut(now)`) in short
    /// write transactions on one connection until a batch comes back short, then scrubs the
    /// WAL once.
    ///
    /// Batch sizes adapt: each batch's time from `BEGIN IMMEDIATE` to the end of its commit
    /// (the write lock's hold) is measured, and the next batch halves when it took longer than
    /// [`sweep_batch_time`](crate::StoreOptions::sweep_batch_time), doubles (up to
    /// [`sweep_batch_size`](crate::StoreOptions::sweep_batch_size)) when it took less than
    /// half. SQLite's automatic checkpoint, which runs inside a commit call after the lock is
    /// released, is turned off on this connection for the sweep and a passive checkpoint runs
    /// between batches instead, so that it neither counts as a batch's time nor makes the
    /// next one shrink.
    pub(crate) fn delete_in_batches(
        &self,
        sql: &'static str,
        cut: impl Fn(i64) -> Result<i64>,
    ) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let max = self.sweep_batch_size();
        let target = self.sweep_batch_time();
        let mut conn = self.conn()?;
        let autocheckpoint: i64 = conn
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .map_err(|e| self.classify(e.into()))?;
        self.with_pragma(&mut conn, "wal_autocheckpoint", 0, autocheckpoint, |conn| {
            let mut size = max.min(FIRST_SWEEP_BATCH);
            loop {
                let mut began = None;
                let deleted = self.write_on(conn, |tx, now| {
                    began = Some(Instant::now());
                    let statuses = tx
                        .prepare_cached(sql)?
                        .query_map(params![cut(now)?, size], |r| {
                            status_of(&r.get::<_, String>(0)?)
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok(Ok(statuses))
                })??;
                let held = began.map_or(Duration::ZERO, |t| t.elapsed());
                report.longest_batch = report.longest_batch.max(held);
                report.batches += u64::from(!deleted.is_empty());
                for status in &deleted {
                    report.removed.add(*status, 1);
                }
                if deleted.len() < size as usize {
                    return Ok(());
                }
                // Each batch's pages go to the file before the next: the WAL stays short, so
                // no other process's commit finds it past its own automatic-checkpoint size
                // and does the copying (tried: every 500 rows instead doubled a concurrent
                // consume's p99).
                self.checkpoint_passive(conn);
                size = next_batch_size(size, held, target, max);
                // Let waiting writers in between batches.
                std::thread::yield_now();
            }
        })?;
        drop(conn);
        if report.removed.total() > 0 {
            self.scrub_wal()?;
        }
        Ok(report)
    }

    /// Row counts by status, how many have expired, and the oldest and newest expiry.
    ///
    /// # Errors
    /// Storage errors.
    pub fn stats(&self) -> Result<Stats> {
        self.read(|tx, now| {
            let mut stats = Stats::default();
            let mut stmt = tx.prepare_cached(STATS)?;
            let mut rows = stmt.query([now])?;
            while let Some(r) = rows.next()? {
                let status = status_of(&r.get::<_, String>(0)?)?;
                let count: i64 = r.get(1)?;
                stats.counts.add(status, count.max(0) as u64);
                let (min, max): (Option<i64>, Option<i64>) = (r.get(2)?, r.get(3)?);
                stats.oldest_expiry = [stats.oldest_expiry, min].into_iter().flatten().min();
                stats.newest_expiry = [stats.newest_expiry, max].into_iter().flatten().max();
                stats.expired += r.get::<_, Option<i64>>(4)?.unwrap_or(0).max(0) as u64;
            }
            Ok(stats)
        })
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
