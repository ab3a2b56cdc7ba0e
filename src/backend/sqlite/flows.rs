//! The SQLite statements of the row interface, each beside the method that runs it.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, Row, ToSql, Transaction};

use crate::backend::{
    Binding, CallbackResult, FlowRow, FlowTx, ListedRow, Live, NewFlow, StatusStats, StoredVerifier,
};
use crate::error::{Error, Result};
use crate::flow::Status;

impl ToSql for Status {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(
            self.as_str().as_bytes(),
        )))
    }
}

impl FromSql for Status {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Status::parse(text).ok_or_else(|| FromSqlError::Other("unknown flow status".into()))
    }
}

/// The columns [`flow_row`] reads after the id, in order: the one column list of every row
/// lookup.
macro_rules! flow_columns {
    () => {
        "status, expires_at, created_at, server_id, client_id, redirect_uri, issuer, \
         resource, scope, code_verifier, auth_code, error, error_description, state_key, \
         code_challenge, require_issuer, client_created_at, discovery"
    };
}

fn flow_row(r: &Row<'_>) -> rusqlite::Result<FlowRow> {
    Ok(FlowRow {
        id: r.get(0)?,
        status: r.get(1)?,
        expires_at: r.get(2)?,
        created_at: r.get(3)?,
        server_id: r.get(4)?,
        client_id: r.get(5)?,
        redirect_uri: r.get(6)?,
        issuer: r.get(7)?,
        resource: r.get(8)?,
        scope: r.get(9)?,
        verifier: r.get(10)?,
        auth_code: r.get(11)?,
        error: r.get(12)?,
        error_description: r.get(13)?,
        state_key: r.get(14)?,
        code_challenge: r.get(15)?,
        require_issuer: r.get(16)?,
        client_created_at: r.get(17)?,
        discovery: r.get(18)?,
    })
}

/// Up to `N` statuses as statement parameters; unused slots are NULL (which `IN` never
/// matches).
fn status_slots<const N: usize>(statuses: &[Status]) -> [Option<Status>; N] {
    debug_assert!(
        statuses.len() <= N,
        "more statuses than the statement has slots"
    );
    let mut slots = [None; N];
    for (slot, s) in slots.iter_mut().zip(statuses) {
        *slot = Some(*s);
    }
    slots
}

/// The rows of one SQLite transaction.
pub(crate) struct Rows<'t> {
    tx: &'t Transaction<'t>,
    now: i64,
    busy_timeout: Duration,
    /// The engine's: whether the file still has the old table (see [`Layout`]).
    old_table: &'t AtomicBool,
    /// The layout this transaction reads, taken from `old_table` when it began.
    layout: Cell<&'static Layout>,
}

impl<'t> Rows<'t> {
    pub(crate) fn new(
        tx: &'t Transaction<'t>,
        now: i64,
        busy_timeout: Duration,
        old_table: &'t AtomicBool,
    ) -> Self {
        let layout = if old_table.load(Ordering::Relaxed) {
            &TWO_TABLES
        } else {
            &ONE_TABLE
        };
        Rows {
            tx,
            now,
            busy_timeout,
            old_table,
            layout: Cell::new(layout),
        }
    }

    fn run<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> Result<T> {
        f(self.tx).map_err(|e| super::error::classify(e, self.busy_timeout))
    }

    /// Runs `f` with the statements of the file's layout.
    ///
    /// Once another store's [`drop_old_table`](crate::Store::drop_old_table) has dropped the
    /// old table, a statement of [`TWO_TABLES`] no longer prepares. This transaction, and the
    /// engine from then on, keep to [`ONE_TABLE`], and `f` runs again: a statement that failed
    /// to prepare did nothing, and the old table cannot come back. A transaction sees one schema from its
    /// first statement on (a write holds the lock, a read its snapshot), so only the first
    /// two-table statement of a transaction can fail this way, and a transaction that read
    /// the old table keeps reading it even if another thread of this engine has found it gone
    /// since (its snapshot still has it).
    fn over<T>(
        &self,
        f: impl Fn(&Transaction<'_>, &'static Layout) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let layout = self.layout.get();
        match f(self.tx, layout) {
            Err(e) if layout.old_table && old_table_gone(&e) => {
                self.layout.set(&ONE_TABLE);
                self.old_table.store(false, Ordering::Relaxed);
                self.run(|tx| f(tx, &ONE_TABLE))
            }
            other => other.map_err(|e| super::error::classify(e, self.busy_timeout)),
        }
    }

    /// The row a key finds in either table. A key in both is damage: each table keeps it
    /// unique, and the triggers of migration 0007 keep it out of the other.
    fn find(&self, sql: fn(&Layout) -> &'static str, key: &dyn ToSql) -> Result<Option<FlowRow>> {
        let (found, in_both) = self.over(|tx, layout| {
            let mut stmt = tx.prepare_cached(sql(layout))?;
            let mut rows = stmt.query_map([key], |r| Ok((flow_row(r)?, r.get::<_, bool>(19)?)))?;
            let first = rows.next().transpose()?;
            Ok((first, rows.next().transpose()?.is_some()))
        })?;
        if in_both {
            return Err(Error::corrupt("a flow's key is in both flows tables"));
        }
        let Some((mut row, old)) = found else {
            return Ok(None);
        };
        if old {
            // The old table's ids are SQLite's own (1 and up); a row numbered otherwise was
            // written past this crate and cannot be told apart from a `flow_rows` id.
            if row.id <= 0 {
                return Err(Error::corrupt("an old flows row has an id below 1"));
            }
            row.id = -row.id;
        }
        Ok(Some(row))
    }

    /// The statement of the table an id names, and the table's own id: `new` for a
    /// `flow_rows` id, `old` for a `flows` one (negated by [`Rows::find`]).
    fn of_table(id: i64, [new, old]: [&str; 2]) -> (&str, i64) {
        if id < 0 {
            (old, -id)
        } else {
            (new, id)
        }
    }

    /// A batch from the old table first (while the file has it), then from `flow_rows` up to
    /// the same limit.
    fn batch_both(
        &self,
        [new, old]: [&str; 2],
        params: &[&dyn ToSql],
        limit: u32,
    ) -> Result<Vec<Status>> {
        self.over(|tx, layout| {
            let mut params = params.to_vec();
            params.push(&limit);
            let mut done = Vec::new();
            if layout.old_table {
                done = batch(tx, old, &params)?;
            }
            let left = limit.saturating_sub(u32::try_from(done.len()).unwrap_or(u32::MAX));
            if left > 0 {
                *params.last_mut().expect("the limit") = &left;
                done.extend(batch(tx, new, &params)?);
            }
            Ok(done)
        })
    }

    fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<u64> {
        self.run(|tx| Ok(tx.prepare_cached(sql)?.execute(params)? as u64))
    }
}

fn batch(tx: &Transaction<'_>, sql: &str, params: &[&dyn ToSql]) -> rusqlite::Result<Vec<Status>> {
    tx.prepare_cached(sql)?
        .query_map(params, |r| r.get::<_, Status>(0))?
        .collect()
}

/// Whether `e` says the old table is gone: SQLite's message when a statement names a table the
/// file no longer has.
fn old_table_gone(e: &rusqlite::Error) -> bool {
    let msg = match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg,
        rusqlite::Error::SqlInputError { msg, .. } => msg,
        _ => return false,
    };
    msg == "no such table: flows" || msg == "no such table: main.flows"
}

/// Maps a UNIQUE violation to the duplicate it means; anything else is classified as usual.
fn unique_violation(e: rusqlite::Error, busy_timeout: Duration) -> Error {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
        let msg = e.to_string();
        // `flow_rows.…` from the table's own index, `flows.…` from the old table or from a
        // trigger of migration 0007.
        if msg.contains("flows.state_key") || msg.contains("flow_rows.state_key") {
            return Error::DuplicateState;
        }
        if msg.contains("flows.code_challenge") || msg.contains("flow_rows.code_challenge") {
            return Error::DuplicateChallenge;
        }
    }
    super::error::classify(e, busy_timeout)
}

// The layouts of the file (`schema.sql`). `flow_rows` holds every flow this code writes; a
// new file has no other table. A file migrated from version 6 or older also has the old
// `flows`, with the rows written before version 7 (or by an older program that still has the
// file open), until `Store::drop_old_table` drops it once empty. While it is there, each
// lookup reads both tables ([`TWO_TABLES`]) and says in its last column which table the row
// came from. A row of
// `flows` is handed to the operations with its id negated (its ids must be positive;
// `flow_rows`' are at least 2^20 by the table's CHECK), so that the guarded update of [`Rows`]
// goes back to the table the row came from.

/// A `flow_rows` id is `expires_at * ID_STEP + n`: its rowid order is its expiry order.
pub(crate) const ID_STEP: i64 = 1 << 20;

/// The latest expiry a `flow_rows` id can hold: 2^43 - 1 ms, in the year 2248 (the table's
/// CHECK says the same).
pub(crate) const MAX_EXPIRY: i64 = i64::MAX / ID_STEP;

/// The text of a statement, or of one table's half of it, for either table: the same SQL
/// over `flow_rows` and over the old `flows`.
macro_rules! per_table {
    // Finds the id through the index and reads the row by id: read straight through the
    // index, `state_key` would come from the index itself and could not contradict it (see
    // the damage checks in `flow::ops`). The last column is the table's number.
    (lookup, $t:literal, $table_no:literal, $where:literal) => {
        concat!(
            "SELECT id, ",
            flow_columns!(),
            ", ",
            $table_no,
            " FROM ",
            $t,
            " WHERE id = (SELECT id FROM ",
            $t,
            " WHERE ",
            $where,
            ")"
        )
    };
    (bind, $t:literal) => {
        concat!(
            "UPDATE ",
            $t,
            " SET state_key = ?2, status = 'pending', \
             redirect_uri = coalesce(?3, redirect_uri), resource = coalesce(?4, resource), \
             scope = coalesce(?5, scope), issuer = coalesce(?6, issuer), \
             discovery = coalesce(?7, discovery), require_issuer = ?8 \
             WHERE id = ?1 AND status = 'unbound'"
        )
    };
    (complete, $t:literal) => {
        concat!(
            "UPDATE ",
            $t,
            " SET status = 'completed', auth_code = ?2 WHERE id = ?1 AND status = 'pending'"
        )
    };
    (fail, $t:literal) => {
        concat!(
            "UPDATE ",
            $t,
            " SET status = 'failed', code_verifier = NULL, error = ?2, \
             error_description = ?3 WHERE id = ?1 AND status = 'pending'"
        )
    };
    (consume, $t:literal) => {
        concat!(
            "UPDATE ",
            $t,
            " SET status = 'consumed', code_verifier = NULL, auth_code = NULL, \
             discovery = NULL, consumed_at = ?2, error = coalesce(?3, error) \
             WHERE id = ?1 AND status = ?4"
        )
    };
    (delete, $t:literal) => {
        concat!("DELETE FROM ", $t, " WHERE id = ?1 AND status = ?2")
    };
    (of_server, $t:literal) => {
        concat!(
            "DELETE FROM ",
            $t,
            " WHERE server_id = ?1 AND (?2 IS NULL OR client_id = ?2) \
             AND status IN (?3, ?4, ?5, ?6, ?7)"
        )
    };
    (live, $t:literal) => {
        concat!(
            " FROM ",
            $t,
            " WHERE server_id = ?1 AND client_id IS ?2 AND status IN (?4, ?5) \
             AND expires_at > ?3 AND created_at <= ?6"
        )
    };
    (listed, $t:literal, $table_no:literal, $where:literal) => {
        concat!(
            "SELECT state_key, server_id, client_id, status, created_at, expires_at, error, ",
            $table_no,
            ", id FROM ",
            $t,
            " WHERE ",
            $where
        )
    };
    (ended, $t:literal) => {
        concat!(
            "DELETE FROM ",
            $t,
            " WHERE id IN (SELECT id FROM ",
            $t,
            " WHERE status IN ('consumed', 'failed') AND status IN (?1, ?2) \
             AND coalesce(consumed_at, created_at) <= ?3 LIMIT ?4) RETURNING status"
        )
    };
    // `flow_rows`' expired rows are the ids below `(?1 + 1) * 2^20` (its rowid order); the
    // ended ones are found in its ended index, whose statuses the literal `status IN` names.
    (removable, $t:literal) => {
        concat!(
            "SELECT status FROM ",
            $t,
            " WHERE id IN (SELECT id FROM ",
            $t,
            " WHERE id < (?1 + 1) * 1048576 AND expires_at <= ?1 \
             UNION SELECT id FROM ",
            $t,
            " WHERE status IN ('consumed', 'failed') \
             AND status IN (?3, ?4) AND coalesce(consumed_at, created_at) <= ?2)"
        )
    };
}

/// By state key, in `flow_rows`.
pub(crate) const SELECT_BY_STATE: &str = per_table!(lookup, "flow_rows", "0", "state_key = ?1");

/// By state key, in both tables.
pub(crate) const SELECT_BY_STATE_BOTH: &str = concat!(
    per_table!(lookup, "flow_rows", "0", "state_key = ?1"),
    " UNION ALL ",
    per_table!(lookup, "flows", "1", "state_key = ?1")
);

/// A generated verifier's row has no entry in `flow_rows_by_challenge` and is not found by
/// its challenge.
pub(crate) const SELECT_BY_CHALLENGE: &str = per_table!(
    lookup,
    "flow_rows",
    "0",
    "code_challenge = ?1 AND generated_verifier = 0"
);

pub(crate) const SELECT_BY_CHALLENGE_BOTH: &str = concat!(
    per_table!(
        lookup,
        "flow_rows",
        "0",
        "code_challenge = ?1 AND generated_verifier = 0"
    ),
    " UNION ALL ",
    per_table!(lookup, "flows", "1", "code_challenge = ?1")
);

/// The id is the next free one of the expiry's millisecond (`?12` is `expires_at`).
pub(crate) const INSERT_FLOW: &str = "INSERT INTO flow_rows (id, state_key, code_challenge, \
     code_verifier, server_id, client_id, redirect_uri, issuer, resource, scope, status, \
     created_at, expires_at, require_issuer, client_created_at, generated_verifier) \
     VALUES (coalesce((SELECT max(id) + 1 FROM flow_rows \
     WHERE id BETWEEN ?12 * 1048576 AND ?12 * 1048576 + 1048575), ?12 * 1048576), \
     ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

pub(crate) const BIND: &str = per_table!(bind, "flow_rows");
pub(crate) const BIND_OLD: &str = per_table!(bind, "flows");
pub(crate) const COMPLETE: &str = per_table!(complete, "flow_rows");
pub(crate) const COMPLETE_OLD: &str = per_table!(complete, "flows");
pub(crate) const FAIL: &str = per_table!(fail, "flow_rows");
pub(crate) const FAIL_OLD: &str = per_table!(fail, "flows");
pub(crate) const CONSUME: &str = per_table!(consume, "flow_rows");
pub(crate) const CONSUME_OLD: &str = per_table!(consume, "flows");
pub(crate) const DELETE_BY_ID: &str = per_table!(delete, "flow_rows");
pub(crate) const DELETE_BY_ID_OLD: &str = per_table!(delete, "flows");

/// `?4`, `?5`: the statuses; `?3`, `?6`: the bounds of "live".
pub(crate) const SELECT_LIVE_VERIFIERS: &str = concat!(
    "SELECT code_verifier, code_challenge",
    per_table!(live, "flow_rows"),
    " LIMIT ?7"
);

pub(crate) const SELECT_LIVE_VERIFIERS_BOTH: &str = concat!(
    "SELECT code_verifier, code_challenge",
    per_table!(live, "flow_rows"),
    " UNION ALL SELECT code_verifier, code_challenge",
    per_table!(live, "flows"),
    " LIMIT ?7"
);

pub(crate) const COUNT_LIVE: &str = concat!("SELECT count(*)", per_table!(live, "flow_rows"));

pub(crate) const COUNT_LIVE_BOTH: &str = concat!(
    "SELECT (SELECT count(*)",
    per_table!(live, "flow_rows"),
    ") + (SELECT count(*)",
    per_table!(live, "flows"),
    ")"
);

/// `flow_rows`' live rows are the ids from `(?2 + 1) * 2^20` on (its rowid order).
pub(crate) const ANY_LIVE_FOR_REDIRECT: &str = "SELECT EXISTS (SELECT 1 FROM flow_rows \
     WHERE id >= (?2 + 1) * 1048576 AND status = ?1 AND expires_at > ?2 AND created_at <= ?3 \
     AND redirect_uri IN (?4, ?5))";

pub(crate) const ANY_LIVE_FOR_REDIRECT_BOTH: &str = "SELECT EXISTS (SELECT 1 FROM flow_rows \
     WHERE id >= (?2 + 1) * 1048576 AND status = ?1 AND expires_at > ?2 AND created_at <= ?3 \
     AND redirect_uri IN (?4, ?5)) OR EXISTS (SELECT 1 FROM flows \
     WHERE status = ?1 AND expires_at > ?2 AND created_at <= ?3 AND redirect_uri IN (?4, ?5))";

/// `?2` NULL means every client of the server; `?3..?7` are the statuses to delete (NULL
/// fills unused slots).
pub(crate) const DELETE_OF_SERVER: &str = per_table!(of_server, "flow_rows");
pub(crate) const DELETE_OF_SERVER_OLD: &str = per_table!(of_server, "flows");

/// Deletes from the front of `flow_rows`: every id below `(?1 + 1) * 2^20` has expired by
/// `?1`. (`expires_at <= ?1` says it again, for a row that a foreign writer numbered wrong.)
pub(crate) const DELETE_EXPIRED_BATCH: &str = "DELETE FROM flow_rows WHERE id IN \
     (SELECT id FROM flow_rows WHERE id < (?1 + 1) * 1048576 AND expires_at <= ?1 \
     ORDER BY id LIMIT ?2) RETURNING status";

pub(crate) const DELETE_EXPIRED_BATCH_OLD: &str = "DELETE FROM flows WHERE id IN \
     (SELECT id FROM flows WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2) RETURNING status";

/// Searches `flow_rows_by_end` (`flows_by_end` in the old table), whose column is the same
/// expression. That index holds the ended rows only; the literal `status IN` (the index's own
/// condition, which a parameter cannot show the planner) lets the statement use it, and `?1`,
/// `?2` still name the statuses the operation asked for ([`ENDED_STATUSES`] must cover them).
pub(crate) const DELETE_ENDED_BATCH: &str = per_table!(ended, "flow_rows");
pub(crate) const DELETE_ENDED_BATCH_OLD: &str = per_table!(ended, "flows");

/// The statuses the ended indexes cover (their `WHERE`, in `schema.sql`): a statement that
/// searches them can find no row of another status.
pub(crate) const ENDED_STATUSES: [Status; 2] = [Status::Consumed, Status::Failed];

/// Each half searches its own index; a row in both halves counts once. `?2` NULL: expired
/// rows only. The ended half names the index's statuses like [`DELETE_ENDED_BATCH`].
pub(crate) const COUNT_REMOVABLE: &str = concat!(
    "SELECT status, count(*) FROM (",
    per_table!(removable, "flow_rows"),
    ") GROUP BY status"
);

/// The old table has an expiry index, not `flow_rows`' id order.
pub(crate) const COUNT_REMOVABLE_BOTH: &str = concat!(
    "SELECT status, count(*) FROM (",
    per_table!(removable, "flow_rows"),
    " UNION ALL SELECT status FROM flows WHERE id IN \
     (SELECT id FROM flows WHERE expires_at <= ?1 \
      UNION SELECT id FROM flows WHERE status IN ('consumed', 'failed') \
      AND status IN (?3, ?4) AND coalesce(consumed_at, created_at) <= ?2)) GROUP BY status"
);

/// Reads every row: statistics are about the whole store.
pub(crate) const STATS: &str = "SELECT status, count(*), min(expires_at), max(expires_at), \
     sum(expires_at <= ?1) FROM flow_rows GROUP BY status";

pub(crate) const STATS_BOTH: &str = "SELECT status, count(*), min(expires_at), \
     max(expires_at), sum(expires_at <= ?1) FROM (SELECT status, expires_at FROM flow_rows \
     UNION ALL SELECT status, expires_at FROM flows) GROUP BY status";

/// The store in expiry order, up to the limit: `flow_rows`' id order is its expiry order.
pub(crate) const LIST_FLOWS: &str = concat!(
    per_table!(listed, "flow_rows", "1", "(?1 IS NULL OR status = ?1)"),
    " ORDER BY 9 LIMIT ?2"
);

/// Both tables, ordered by expiry, then the old table's rows first (0), then by id.
pub(crate) const LIST_FLOWS_BOTH: &str = concat!(
    per_table!(listed, "flow_rows", "1", "(?1 IS NULL OR status = ?1)"),
    " UNION ALL ",
    per_table!(listed, "flows", "0", "(?1 IS NULL OR status = ?1)"),
    " ORDER BY 6, 8, 9 LIMIT ?2"
);

pub(crate) const LIST_FLOWS_OF_SERVER: &str = concat!(
    per_table!(
        listed,
        "flow_rows",
        "1",
        "server_id = ?3 AND (?1 IS NULL OR status = ?1)"
    ),
    " ORDER BY 9 LIMIT ?2"
);

pub(crate) const LIST_FLOWS_OF_SERVER_BOTH: &str = concat!(
    per_table!(
        listed,
        "flow_rows",
        "1",
        "server_id = ?3 AND (?1 IS NULL OR status = ?1)"
    ),
    " UNION ALL ",
    per_table!(
        listed,
        "flows",
        "0",
        "server_id = ?3 AND (?1 IS NULL OR status = ?1)"
    ),
    " ORDER BY 6, 8, 9 LIMIT ?2"
);

/// The statements that read the whole store, for one layout of the file.
pub(crate) struct Layout {
    by_state: &'static str,
    by_challenge: &'static str,
    live_verifiers: &'static str,
    count_live: &'static str,
    any_live_for_redirect: &'static str,
    count_removable: &'static str,
    stats: &'static str,
    list: &'static str,
    list_of_server: &'static str,
    /// Whether the old table is there: the deletes also run its halves (`*_OLD`).
    old_table: bool,
}

impl Layout {
    /// Every statement of the layout.
    #[cfg(test)]
    pub(crate) fn statements(&self) -> [&'static str; 9] {
        [
            self.by_state,
            self.by_challenge,
            self.live_verifiers,
            self.count_live,
            self.any_live_for_redirect,
            self.count_removable,
            self.stats,
            self.list,
            self.list_of_server,
        ]
    }
}

/// A new file, or a migrated one whose old table is gone.
pub(crate) const ONE_TABLE: Layout = Layout {
    by_state: SELECT_BY_STATE,
    by_challenge: SELECT_BY_CHALLENGE,
    live_verifiers: SELECT_LIVE_VERIFIERS,
    count_live: COUNT_LIVE,
    any_live_for_redirect: ANY_LIVE_FOR_REDIRECT,
    count_removable: COUNT_REMOVABLE,
    stats: STATS,
    list: LIST_FLOWS,
    list_of_server: LIST_FLOWS_OF_SERVER,
    old_table: false,
};

/// A file migrated from version 6 or older that still has the old table.
pub(crate) const TWO_TABLES: Layout = Layout {
    by_state: SELECT_BY_STATE_BOTH,
    by_challenge: SELECT_BY_CHALLENGE_BOTH,
    live_verifiers: SELECT_LIVE_VERIFIERS_BOTH,
    count_live: COUNT_LIVE_BOTH,
    any_live_for_redirect: ANY_LIVE_FOR_REDIRECT_BOTH,
    count_removable: COUNT_REMOVABLE_BOTH,
    stats: STATS_BOTH,
    list: LIST_FLOWS_BOTH,
    list_of_server: LIST_FLOWS_OF_SERVER_BOTH,
    old_table: true,
};

impl FlowTx for Rows<'_> {
    fn now(&self) -> i64 {
        self.now
    }

    fn by_state(&mut self, key: &[u8; 32]) -> Result<Option<FlowRow>> {
        self.find(|l| l.by_state, &&key[..])
    }

    fn by_challenge(&mut self, challenge: &str) -> Result<Option<FlowRow>> {
        self.find(|l| l.by_challenge, &challenge)
    }

    fn insert(&mut self, f: &NewFlow<'_>, created_at: i64, expires_at: i64) -> Result<()> {
        if !(1..=MAX_EXPIRY).contains(&expires_at) {
            return Err(Error::invalid(
                "ttl",
                "puts the expiry outside what the SQLite file can store \
                 (1 ms to 2^43 ms after 1970, in the year 2248)",
            ));
        }
        self.tx
            .prepare_cached(INSERT_FLOW)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    f.state_key.map(|k| &k[..]),
                    f.code_challenge,
                    f.verifier,
                    f.server_id,
                    f.client_id,
                    f.redirect_uri,
                    f.issuer,
                    f.resource,
                    f.scope,
                    f.status,
                    created_at,
                    expires_at,
                    f.require_issuer,
                    f.client_created_at,
                    f.generated_verifier
                ])
            })
            .map_err(|e| unique_violation(e, self.busy_timeout))?;
        Ok(())
    }

    fn bind(&mut self, id: i64, b: &Binding<'_>) -> Result<u64> {
        let (sql, id) = Self::of_table(id, [BIND, BIND_OLD]);
        let n = self
            .tx
            .prepare_cached(sql)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    id,
                    &b.state_key[..],
                    b.redirect_uri,
                    b.resource,
                    b.scope,
                    b.issuer,
                    b.discovery,
                    b.require_issuer
                ])
            })
            .map_err(|e| unique_violation(e, self.busy_timeout))?;
        Ok(n as u64)
    }

    fn set_callback(&mut self, id: i64, result: &CallbackResult<'_>) -> Result<u64> {
        match *result {
            CallbackResult::Code(code) => {
                let (sql, id) = Self::of_table(id, [COMPLETE, COMPLETE_OLD]);
                self.execute(sql, params![id, code])
            }
            CallbackResult::Error { error, description } => {
                let (sql, id) = Self::of_table(id, [FAIL, FAIL_OLD]);
                self.execute(sql, params![id, error, description])
            }
        }
    }

    fn mark_consumed(&mut self, id: i64, was: Status, ended: Option<&str>) -> Result<u64> {
        let (sql, id) = Self::of_table(id, [CONSUME, CONSUME_OLD]);
        self.execute(sql, params![id, self.now, ended, was])
    }

    fn delete(&mut self, id: i64, was: Status) -> Result<u64> {
        let (sql, id) = Self::of_table(id, [DELETE_BY_ID, DELETE_BY_ID_OLD]);
        self.execute(sql, params![id, was])
    }

    fn live_verifiers(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
        live: Live,
        limit: u32,
    ) -> Result<Vec<StoredVerifier>> {
        let [a, b] = status_slots::<2>(statuses);
        self.over(|tx, layout| {
            tx.prepare_cached(layout.live_verifiers)?
                .query_map(
                    params![
                        server_id,
                        client_id,
                        live.expires_after,
                        a,
                        b,
                        live.created_by,
                        limit
                    ],
                    |r| {
                        Ok(StoredVerifier {
                            verifier: r.get(0)?,
                            challenge: r.get(1)?,
                        })
                    },
                )?
                .collect()
        })
    }

    fn count_live(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
        live: Live,
    ) -> Result<u64> {
        let [a, b] = status_slots::<2>(statuses);
        let n: i64 = self.over(|tx, layout| {
            tx.prepare_cached(layout.count_live)?.query_row(
                params![
                    server_id,
                    client_id,
                    live.expires_after,
                    a,
                    b,
                    live.created_by
                ],
                |r| r.get(0),
            )
        })?;
        Ok(n.max(0) as u64)
    }

    fn any_live_for_redirect(
        &mut self,
        statuses: &[Status],
        live: Live,
        redirect_uris: &[&str; 2],
    ) -> Result<bool> {
        let [status] = status_slots::<1>(statuses);
        let [u1, u2] = redirect_uris;
        self.over(|tx, layout| {
            tx.prepare_cached(layout.any_live_for_redirect)?.query_row(
                params![status, live.expires_after, live.created_by, u1, u2],
                |r| r.get(0),
            )
        })
    }

    fn delete_of_server(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
    ) -> Result<u64> {
        let [a, b, c, d, e] = status_slots::<5>(statuses);
        let params = params![server_id, client_id, a, b, c, d, e];
        self.over(|tx, layout| {
            let mut n = 0;
            if layout.old_table {
                n += tx.prepare_cached(DELETE_OF_SERVER_OLD)?.execute(params)?;
            }
            n += tx.prepare_cached(DELETE_OF_SERVER)?.execute(params)?;
            Ok(n as u64)
        })
    }

    fn delete_expired_batch(&mut self, expired_by: i64, limit: u32) -> Result<Vec<Status>> {
        self.batch_both(
            [DELETE_EXPIRED_BATCH, DELETE_EXPIRED_BATCH_OLD],
            params![expired_by],
            limit,
        )
    }

    fn delete_ended_batch(
        &mut self,
        statuses: &[Status],
        ended_by: i64,
        limit: u32,
    ) -> Result<Vec<Status>> {
        debug_assert!(statuses.iter().all(|s| ENDED_STATUSES.contains(s)));
        let [a, b] = status_slots::<2>(statuses);
        self.batch_both(
            [DELETE_ENDED_BATCH, DELETE_ENDED_BATCH_OLD],
            params![a, b, ended_by],
            limit,
        )
    }

    fn count_removable(
        &mut self,
        expired_by: i64,
        ended: Option<(&[Status], i64)>,
    ) -> Result<Vec<(Status, u64)>> {
        let (statuses, cut) = ended.map_or((&[][..], None), |(s, c)| (s, Some(c)));
        debug_assert!(statuses.iter().all(|s| ENDED_STATUSES.contains(s)));
        let [a, b] = status_slots::<2>(statuses);
        self.over(|tx, layout| {
            tx.prepare_cached(layout.count_removable)?
                .query_map(params![expired_by, cut, a, b], |r| {
                    Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64))
                })?
                .collect()
        })
    }

    fn stats(&mut self, expired_by: i64) -> Result<Vec<StatusStats>> {
        self.over(|tx, layout| {
            tx.prepare_cached(layout.stats)?
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
        self.over(|tx, layout| match server_id {
            None => tx
                .prepare_cached(layout.list)?
                .query_map(params![status, limit], map)?
                .collect(),
            Some(server) => tx
                .prepare_cached(layout.list_of_server)?
                .query_map(params![status, limit, server], map)?
                .collect(),
        })
    }
}
