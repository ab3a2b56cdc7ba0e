//! The SQLite statements of the many-row operations ([`MaintenanceRows`]): invalidation, the
//! sweeps and their preview, statistics and listing, each beside the method that runs it.

use rusqlite::{params, Row};

use super::flows::{status_slots, Rows};
use crate::error::Result;
use crate::flow::row::{Chunk, ListedRow, StatusStats};
use crate::flow::tx::MaintenanceRows;
use crate::flow::Status;

/// `?2` NULL means every client of the server; `?3..?7` are the statuses to delete (NULL
/// fills unused slots).
pub(crate) const DELETE_OF_SERVER: &str = "DELETE FROM flows WHERE server_id = ?1 \
     AND (?2 IS NULL OR client_id = ?2) AND status IN (?3, ?4, ?5, ?6, ?7)";

/// Deletes from the front of the table: every id below `(?1 + 1) * 2^20` has expired by `?1`.
/// (`expires_at <= ?1` says it again, for a row that a foreign writer numbered wrong.)
pub(crate) const DELETE_EXPIRED_BATCH: &str = "DELETE FROM flows WHERE id IN \
     (SELECT id FROM flows WHERE id < (?1 + 1) * 1048576 AND expires_at <= ?1 \
     ORDER BY id LIMIT ?2) RETURNING status";

/// One chunk of the walk of `sweep --older-than`: the last id and the number of the (at most
/// `?2`) rows after `?1`, found by rowid.
pub(crate) const WALK_WINDOW: &str =
    "SELECT max(id), count(*) FROM (SELECT id FROM flows WHERE id > ?1 ORDER BY id LIMIT ?2)";

/// The first `?6` rows of the window `(?1, ?2]` that ended by `?5` in the statuses `?3`,
/// `?4`, by rowid: no index of ended rows, which every consume would have to write.
pub(crate) const DELETE_ENDED_CHUNK: &str = "DELETE FROM flows WHERE id IN (SELECT id \
     FROM flows WHERE id > ?1 AND id <= ?2 AND status IN (?3, ?4) \
     AND coalesce(consumed_at, created_at) <= ?5 ORDER BY id LIMIT ?6) RETURNING id, status";

/// What a sweep would remove now: the expired rows, the front of the table (`?1` the cut).
pub(crate) const COUNT_EXPIRED: &str = "SELECT status, count(*) FROM flows \
     WHERE id < (?1 + 1) * 1048576 AND expires_at <= ?1 GROUP BY status";

/// What a sweep with `--older-than` would remove now: the expired rows and those in `?3`,
/// `?4` that ended by `?2`. Reads the whole table (a read transaction, which blocks no
/// writer), as the sweep itself walks it.
pub(crate) const COUNT_REMOVABLE: &str = "SELECT status, count(*) FROM flows \
     WHERE (id < (?1 + 1) * 1048576 AND expires_at <= ?1) OR (status IN (?3, ?4) \
     AND coalesce(consumed_at, created_at) <= ?2) GROUP BY status";

/// Reads every row: statistics are about the whole store.
pub(crate) const STATS: &str = "SELECT status, count(*), min(expires_at), max(expires_at), \
     sum(expires_at <= ?1) FROM flows GROUP BY status";

/// The columns of a listed row.
macro_rules! listed {
    ($where:literal) => {
        concat!(
            "SELECT state_key, server_id, client_id, status, created_at, expires_at, error \
             FROM flows WHERE ",
            $where,
            " ORDER BY id LIMIT ?2"
        )
    };
}

/// The store in expiry order (the id order), up to the limit.
pub(crate) const LIST_FLOWS: &str = listed!("(?1 IS NULL OR status = ?1)");

pub(crate) const LIST_FLOWS_OF_SERVER: &str =
    listed!("server_id = ?3 AND (?1 IS NULL OR status = ?1)");

impl MaintenanceRows for Rows<'_> {
    fn delete_of_server(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
    ) -> Result<u64> {
        let [a, b, c, d, e] = status_slots::<5>(statuses);
        self.execute(
            DELETE_OF_SERVER,
            params![server_id, client_id, a, b, c, d, e],
        )
    }

    fn delete_expired_batch(&mut self, expired_by: i64, limit: u32) -> Result<Vec<Status>> {
        self.batch(DELETE_EXPIRED_BATCH, params![expired_by, limit])
    }

    fn delete_ended_chunk(
        &mut self,
        statuses: &[Status],
        ended_by: i64,
        after: i64,
        walk: u32,
        limit: u32,
    ) -> Result<Chunk> {
        let [a, b] = status_slots::<2>(statuses);
        self.run(|tx| {
            let (end, walked): (Option<i64>, i64) = tx
                .prepare_cached(WALK_WINDOW)?
                .query_row(params![after, walk], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let Some(end) = end else {
                return Ok(Chunk::default());
            };
            let mut last_deleted = None;
            let deleted: Vec<Status> = tx
                .prepare_cached(DELETE_ENDED_CHUNK)?
                .query_map(params![after, end, a, b, ended_by, limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Status>(1)?))
                })?
                .map(|row| {
                    row.map(|(id, status)| {
                        last_deleted = last_deleted.max(Some(id));
                        status
                    })
                })
                .collect::<rusqlite::Result<_>>()?;
            Ok(Chunk::after_walk(
                deleted,
                limit,
                last_deleted,
                walked,
                walk,
                end,
            ))
        })
    }

    fn count_removable(
        &mut self,
        expired_by: i64,
        ended: Option<(&[Status], i64)>,
    ) -> Result<Vec<(Status, u64)>> {
        let line = |r: &Row<'_>| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64));
        self.run(|tx| match ended {
            None => tx
                .prepare_cached(COUNT_EXPIRED)?
                .query_map([expired_by], line)?
                .collect(),
            Some((statuses, cut)) => {
                let [a, b] = status_slots::<2>(statuses);
                tx.prepare_cached(COUNT_REMOVABLE)?
                    .query_map(params![expired_by, cut, a, b], line)?
                    .collect()
            }
        })
    }

    fn stats(&mut self, expired_by: i64) -> Result<Vec<StatusStats>> {
        self.run(|tx| {
            tx.prepare_cached(STATS)?
                .query_map([expired_by], |r| {
                    Ok(StatusStats {
                        status: r.get(0)?,
                        count: r.get::<_, i64>(1)?.max(0) as u64,
                        min_expiry: r.get(2)?,
                        max_expiry: r.get(3)?,
                        expired: r.get::<_, Option<i64>>(4)?.unwrap_or(0).max(0) as u64,
                    })
                })?
                .collect()
        })
    }

    fn list(
        &mut self,
        server_id: Option<&str>,
        status: Option<Status>,
        limit: Option<u32>,
    ) -> Result<Vec<ListedRow>> {
        let limit = limit.map_or(-1, i64::from);
        let map = |r: &Row<'_>| {
            Ok(ListedRow {
                state_key: r.get(0)?,
                server_id: r.get(1)?,
                client_id: r.get(2)?,
                status: r.get(3)?,
                created_at: r.get(4)?,
                expires_at: r.get(5)?,
                error: r.get(6)?,
            })
        };
        self.run(|tx| match server_id {
            None => tx
                .prepare_cached(LIST_FLOWS)?
                .query_map(params![status, limit], map)?
                .collect(),
            Some(server) => tx
                .prepare_cached(LIST_FLOWS_OF_SERVER)?
                .query_map(params![status, limit, server], map)?
                .collect(),
        })
    }
}
