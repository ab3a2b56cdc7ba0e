//! The PostgreSQL statements of the many-row operations ([`MaintenanceRows`]): invalidation,
//! the sweeps and their preview, statistics and listing, each beside the method that runs it.
//! A sweep's batches delete expired rows by expiry windows; `sweep --older-than` takes
//! `FOR UPDATE SKIP LOCKED`, so it never waits on a row a live operation holds.

use super::flows::{count, names, status_of, Rows};
use crate::error::Result;
use crate::flow::row::{Chunk, ListedRow, StatusStats};
use crate::flow::tx::MaintenanceRows;
use crate::flow::Status;

/// `$2` NULL means every client of the server.
pub(crate) const DELETE_OF_SERVER: &str = "DELETE FROM flows WHERE server_id = $1 \
     AND ($2::text IS NULL OR client_id = $2) AND status = ANY($3)";

/// The `$2` soonest-expiring expired rows, as a window: the `$2`-th of them in (expiry, id)
/// order is found through `flows_by_expiry` alone, then every expired row up to it goes (an
/// index range scan). No join and no lock taken first: a large `LIMIT` inside an `IN (...)`
/// turns into a hash join over the whole table. Expired rows only: a live flow is never
/// waited for, and a row a live statement holds (one deleting it as expired) is waited for
/// briefly, then found gone.
pub(crate) const DELETE_EXPIRED_BATCH: &str = "WITH b AS (SELECT expires_at, id FROM flows \
     WHERE expires_at <= $1 ORDER BY expires_at, id OFFSET $2::bigint - 1 LIMIT 1) \
     DELETE FROM flows \
     WHERE expires_at <= least($1, coalesce((SELECT expires_at FROM b), $1)) \
     AND ((SELECT id FROM b) IS NULL OR expires_at < (SELECT expires_at FROM b) \
          OR id <= (SELECT id FROM b)) \
     RETURNING status";

/// One chunk of the walk of `sweep --older-than`: the last id and the number of the (at most
/// `$2`) rows after `$1`, found by the primary key.
pub(crate) const WALK_WINDOW: &str = "SELECT max(id), count(*) FROM \
     (SELECT id FROM flows WHERE id > $1 ORDER BY id LIMIT $2) AS walked";

/// The first `$5` rows of the window `($1, $2]` in `$3` that ended by `$4`, by the primary
/// key; rows a live operation holds are skipped (the next `sweep --older-than` takes them).
pub(crate) const DELETE_ENDED_CHUNK: &str = "DELETE FROM flows WHERE id IN (SELECT id \
     FROM flows WHERE id > $1 AND id <= $2 AND status = ANY($3) \
     AND coalesce(consumed_at, created_at) <= $4 ORDER BY id LIMIT $5 \
     FOR UPDATE SKIP LOCKED) RETURNING id, status";

/// `$2` NULL: expired rows only (found by `flows_by_expiry`); else also the rows in `$3` that
/// ended by `$2`, which reads the whole table (a read, which blocks no writer).
pub(crate) const COUNT_REMOVABLE: &str = "SELECT status, count(*) FROM flows WHERE id IN \
     (SELECT id FROM flows WHERE expires_at <= $1 \
      UNION SELECT id FROM flows WHERE status = ANY($3) \
      AND coalesce(consumed_at, created_at) <= $2) GROUP BY status";

pub(crate) const STATS: &str = "SELECT status, count(*), min(expires_at), max(expires_at), \
     count(*) FILTER (WHERE expires_at <= $1) FROM flows GROUP BY status";

/// `$2` NULL: no limit.
pub(crate) const LIST_FLOWS: &str = "SELECT state_key, server_id, client_id, status, \
     created_at, expires_at, error FROM flows WHERE ($1::text IS NULL OR status = $1) \
     AND ($3::text IS NULL OR server_id = $3) ORDER BY expires_at, id LIMIT $2";

impl MaintenanceRows for Rows<'_> {
    fn delete_of_server(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
    ) -> Result<u64> {
        self.execute(
            DELETE_OF_SERVER,
            &[&server_id, &client_id, &names(statuses)],
        )
    }

    fn delete_expired_batch(&mut self, expired_by: i64, limit: u32) -> Result<Vec<Status>> {
        self.statuses(DELETE_EXPIRED_BATCH, &[&expired_by, &i64::from(limit)])
    }

    fn delete_ended_chunk(
        &mut self,
        statuses: &[Status],
        ended_by: i64,
        after: i64,
        walk: u32,
        limit: u32,
    ) -> Result<Chunk> {
        let window = self.query(WALK_WINDOW, &[&after, &i64::from(walk)])?;
        let (end, walked): (Option<i64>, i64) = match window.first() {
            Some(r) => (r.get(0), r.get(1)),
            None => (None, 0),
        };
        let Some(end) = end else {
            return Ok(Chunk::default());
        };
        let rows = self.query(
            DELETE_ENDED_CHUNK,
            &[&after, &end, &names(statuses), &ended_by, &i64::from(limit)],
        )?;
        let last_deleted = rows.iter().map(|r| r.get::<_, i64>(0)).max();
        let deleted = rows
            .iter()
            .map(|r| status_of(r.get(1)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Chunk::after_walk(
            deleted,
            limit,
            last_deleted,
            walked,
            walk,
            end,
        ))
    }

    fn count_removable(
        &mut self,
        expired_by: i64,
        ended: Option<(&[Status], i64)>,
    ) -> Result<Vec<(Status, u64)>> {
        let (statuses, cut) = ended.map_or((&[][..], None), |(s, c)| (s, Some(c)));
        self.query(COUNT_REMOVABLE, &[&expired_by, &cut, &names(statuses)])?
            .iter()
            .map(|r| Ok((status_of(r.get(0))?, count(r.get(1)))))
            .collect()
    }

    fn stats(&mut self, expired_by: i64) -> Result<Vec<StatusStats>> {
        self.query(STATS, &[&expired_by])?
            .iter()
            .map(|r| {
                Ok(StatusStats {
                    status: status_of(r.get(0))?,
                    count: count(r.get(1)),
                    min_expiry: r.get(2),
                    max_expiry: r.get(3),
                    expired: count(r.get(4)),
                })
            })
            .collect()
    }

    fn list(
        &mut self,
        server_id: Option<&str>,
        status: Option<Status>,
        limit: Option<u32>,
    ) -> Result<Vec<ListedRow>> {
        let status = status.map(Status::as_str);
        let limit = limit.map(i64::from);
        self.query(LIST_FLOWS, &[&status, &limit, &server_id])?
            .iter()
            .map(|r| {
                Ok(ListedRow {
                    state_key: r.get(0),
                    server_id: r.get(1),
                    client_id: r.get(2),
                    status: status_of(r.get(3))?,
                    created_at: r.get(4),
                    expires_at: r.get(5),
                    error: r.get(6),
                })
            })
            .collect()
    }
}
