//! The SQLite statements of the flow operations ([`FlowRows`]), each beside the method that
//! runs it, and the transaction's rows that both parts of the row interface run on.

use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, Row, ToSql, Transaction};

use crate::error::{Error, Result};
use crate::flow::row::{Binding, CallbackResult, FlowRow, Live, NewFlow, PendingFlow};
use crate::flow::tx::FlowRows;
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
pub(super) fn status_slots<const N: usize>(statuses: &[Status]) -> [Option<Status>; N] {
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
    pub(super) tx: &'t Transaction<'t>,
    pub(super) now: i64,
    pub(super) busy_timeout: Duration,
}

impl<'t> Rows<'t> {
    pub(crate) fn new(tx: &'t Transaction<'t>, now: i64, busy_timeout: Duration) -> Self {
        Rows {
            tx,
            now,
            busy_timeout,
        }
    }

    pub(super) fn run<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        f(self.tx).map_err(|e| super::error::classify(e, self.busy_timeout))
    }

    /// The row a key finds.
    fn find(&self, sql: &str, key: &dyn ToSql) -> Result<Option<FlowRow>> {
        self.run(|tx| {
            tx.prepare_cached(sql)?
                .query_map([key], flow_row)?
                .next()
                .transpose()
        })
    }

    pub(super) fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<u64> {
        self.run(|tx| Ok(tx.prepare_cached(sql)?.execute(params)? as u64))
    }

    pub(super) fn batch(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Status>> {
        self.run(|tx| {
            tx.prepare_cached(sql)?
                .query_map(params, |r| r.get::<_, Status>(0))?
                .collect()
        })
    }
}

/// Maps a UNIQUE violation to the duplicate it means; anything else is classified as usual.
fn unique_violation(e: rusqlite::Error, busy_timeout: Duration) -> Error {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
        let msg = e.to_string();
        if msg.contains("flows.state_key") {
            return Error::DuplicateState;
        }
        if msg.contains("flows.code_challenge") {
            return Error::DuplicateChallenge;
        }
    }
    super::error::classify(e, busy_timeout)
}

/// An `id` is `expires_at * ID_STEP + n`: its rowid order is its expiry order.
pub(crate) const ID_STEP: i64 = 1 << 20;

/// The latest expiry an id can hold: 2^43 - 1 ms, in the year 2248 (the table's CHECK says
/// the same).
pub(crate) const MAX_EXPIRY: i64 = i64::MAX / ID_STEP;

/// Finds the id through an index and reads the row by id: read straight through the index,
/// `state_key` would come from the index itself and could not contradict it (see the damage
/// checks in `flow::ops`).
macro_rules! lookup {
    ($where:literal) => {
        concat!(
            "SELECT id, ",
            flow_columns!(),
            " FROM flows WHERE id = (SELECT id FROM flows WHERE ",
            $where,
            ")"
        )
    };
}

/// By state key.
pub(crate) const SELECT_BY_STATE: &str = lookup!("state_key = ?1");

/// A generated verifier's row has no entry in `flows_by_challenge` and is not found by its
/// challenge.
pub(crate) const SELECT_BY_CHALLENGE: &str =
    lookup!("code_challenge = ?1 AND generated_verifier = 0");

/// The id is the next free one of the expiry's millisecond (`?12` is `expires_at`).
pub(crate) const INSERT_FLOW: &str = "INSERT INTO flows (id, state_key, code_challenge, \
     code_verifier, server_id, client_id, redirect_uri, issuer, resource, scope, status, \
     created_at, expires_at, require_issuer, client_created_at, generated_verifier) \
     VALUES (coalesce((SELECT max(id) + 1 FROM flows \
     WHERE id BETWEEN ?12 * 1048576 AND ?12 * 1048576 + 1048575), ?12 * 1048576), \
     ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

pub(crate) const BIND: &str = "UPDATE flows SET state_key = ?2, status = 'pending', \
     redirect_uri = coalesce(?3, redirect_uri), resource = coalesce(?4, resource), \
     scope = coalesce(?5, scope), issuer = coalesce(?6, issuer), \
     discovery = coalesce(?7, discovery), require_issuer = ?8 \
     WHERE id = ?1 AND status = 'unbound'";

pub(crate) const COMPLETE: &str =
    "UPDATE flows SET status = 'completed', auth_code = ?2 WHERE id = ?1 AND status = 'pending'";

pub(crate) const FAIL: &str = "UPDATE flows SET status = 'failed', code_verifier = NULL, \
     error = ?2, error_description = ?3 WHERE id = ?1 AND status = 'pending'";

pub(crate) const CONSUME: &str = "UPDATE flows SET status = 'consumed', code_verifier = NULL, \
     auth_code = NULL, discovery = NULL, consumed_at = ?2, error = coalesce(?3, error) \
     WHERE id = ?1 AND status = ?4";

pub(crate) const DELETE_BY_ID: &str = "DELETE FROM flows WHERE id = ?1 AND status = ?2";

/// The live rows of a server and client: `?4`, `?5` the statuses; `?3`, `?6` the bounds of
/// "live".
macro_rules! live {
    () => {
        " FROM flows WHERE server_id = ?1 AND client_id IS ?2 AND status IN (?4, ?5) \
         AND expires_at > ?3 AND created_at <= ?6"
    };
}

pub(crate) const SELECT_LIVE_VERIFIERS: &str = concat!(
    "SELECT code_verifier, code_challenge, state_key, generated_verifier, discovery",
    live!(),
    " LIMIT ?7"
);

pub(crate) const COUNT_LIVE: &str = concat!("SELECT count(*)", live!());

/// The live rows are the ids from `(?2 + 1) * 2^20` on (the rowid order).
pub(crate) const ANY_LIVE_FOR_REDIRECT: &str = "SELECT EXISTS (SELECT 1 FROM flows \
     WHERE id >= (?2 + 1) * 1048576 AND status = ?1 AND expires_at > ?2 AND created_at <= ?3 \
     AND redirect_uri IN (?4, ?5))";

impl FlowRows for Rows<'_> {
    fn now(&self) -> i64 {
        self.now
    }

    fn by_state(&mut self, key: &[u8; 32]) -> Result<Option<FlowRow>> {
        self.find(SELECT_BY_STATE, &&key[..])
    }

    fn by_challenge(&mut self, challenge: &str) -> Result<Option<FlowRow>> {
        self.find(SELECT_BY_CHALLENGE, &challenge)
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
        let n = self
            .tx
            .prepare_cached(BIND)
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
            CallbackResult::Code(code) => self.execute(COMPLETE, params![id, code]),
            CallbackResult::Error { error, description } => {
                self.execute(FAIL, params![id, error, description])
            }
        }
    }

    fn mark_consumed(&mut self, id: i64, was: Status, ended: Option<&str>) -> Result<u64> {
        self.execute(CONSUME, params![id, self.now, ended, was])
    }

    fn delete(&mut self, id: i64, was: Status) -> Result<u64> {
        self.execute(DELETE_BY_ID, params![id, was])
    }

    fn live_verifiers(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
        live: Live,
        limit: u32,
    ) -> Result<Vec<PendingFlow>> {
        let [a, b] = status_slots::<2>(statuses);
        self.run(|tx| {
            tx.prepare_cached(SELECT_LIVE_VERIFIERS)?
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
                        Ok(PendingFlow {
                            verifier: r.get(0)?,
                            challenge: r.get(1)?,
                            state_key: r.get(2)?,
                            generated: r.get(3)?,
                            discovery: r.get(4)?,
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
        let n: i64 = self.run(|tx| {
            tx.prepare_cached(COUNT_LIVE)?.query_row(
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
        self.run(|tx| {
            tx.prepare_cached(ANY_LIVE_FOR_REDIRECT)?.query_row(
                params![status, live.expires_after, live.created_by, u1, u2],
                |r| r.get(0),
            )
        })
    }
}
