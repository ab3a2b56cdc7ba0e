//! The PostgreSQL statements of the flow operations ([`FlowRows`]), each beside the method
//! that runs it, and the transaction's rows that both parts of the row interface run on.
//!
//! Every method runs on the connection inside the transaction [`super::Postgres`] opened.
//! In a write transaction the row lookups read `FOR UPDATE`, so two consumes of one state
//! queue on the row and the second reads it consumed. (The one-row operations of the flows
//! run as one statement each instead: `steps`.)
//!
//! Each statement runs prepared: on first use a connection prepares it, and keeps it (see
//! [`Conn`]), so a statement costs one round trip.

use std::time::Duration;

use postgres::types::ToSql;
use postgres::Row;

use super::connect::Conn;
use super::error::{classify, unique_violation};
use crate::error::{Error, Result};
use crate::flow::row::{Binding, CallbackResult, FlowRow, Live, NewFlow, PendingFlow};
use crate::flow::tx::FlowRows;
use crate::flow::Status;

/// The columns [`flow_row`] reads, in order: the one column list of every row lookup.
macro_rules! flow_columns {
    () => {
        "id, status, expires_at, created_at, server_id, client_id, redirect_uri, issuer, \
         resource, scope, code_verifier, auth_code, error, error_description, state_key, \
         code_challenge, require_issuer, client_created_at, discovery"
    };
}

pub(super) fn status_of(text: &str) -> Result<Status> {
    Status::parse(text).ok_or(Error::Corrupt {
        what: "a flow row has an unknown status",
        source: None,
    })
}

fn flow_row(r: &Row) -> Result<FlowRow> {
    flow_row_at(r, 0)
}

/// The columns of [`flow_columns`] starting at column `at`.
pub(super) fn flow_row_at(r: &Row, at: usize) -> Result<FlowRow> {
    let key: Option<Vec<u8>> = r.get(at + 14);
    Ok(FlowRow {
        id: r.get(at),
        status: status_of(r.get(at + 1))?,
        expires_at: r.get(at + 2),
        created_at: r.get(at + 3),
        server_id: r.get(at + 4),
        client_id: r.get(at + 5),
        redirect_uri: r.get(at + 6),
        issuer: r.get(at + 7),
        resource: r.get(at + 8),
        scope: r.get(at + 9),
        verifier: r.get(at + 10),
        auth_code: r.get(at + 11),
        error: r.get(at + 12),
        error_description: r.get(at + 13),
        state_key: key,
        code_challenge: r.get(at + 15),
        require_issuer: r.get(at + 16),
        client_created_at: r.get(at + 17),
        discovery: r.get(at + 18),
    })
}

pub(super) fn names(statuses: &[Status]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.as_str()).collect()
}

pub(super) fn count(n: i64) -> u64 {
    n.max(0) as u64
}

/// The rows of one PostgreSQL transaction.
pub(crate) struct Rows<'c> {
    pub(super) conn: &'c mut Conn,
    pub(super) now: i64,
    pub(super) busy_timeout: Duration,
    /// A write transaction: row lookups lock the row (`FOR UPDATE`).
    pub(super) write: bool,
}

impl<'c> Rows<'c> {
    pub(crate) fn new(conn: &'c mut Conn, now: i64, busy_timeout: Duration, write: bool) -> Self {
        Rows {
            conn,
            now,
            busy_timeout,
            write,
        }
    }

    pub(super) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let run = |conn: &mut Conn| {
            let statement = conn.prepared(sql)?;
            conn.query(&statement, params)
        };
        run(self.conn).map_err(|e| classify(e, self.busy_timeout))
    }

    pub(super) fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        self.execute_mapped(sql, params, classify)
    }

    /// Runs `sql` and maps a failure with `map` (a prepare's failure as well: a unique
    /// violation can only come from running it).
    fn execute_mapped(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        map: fn(postgres::Error, Duration) -> Error,
    ) -> Result<u64> {
        let run = |conn: &mut Conn| {
            let statement = conn.prepared(sql)?;
            conn.execute(&statement, params)
        };
        run(self.conn).map_err(|e| map(e, self.busy_timeout))
    }

    fn find(
        &mut self,
        locking: &'static str,
        plain: &'static str,
        key: &(dyn ToSql + Sync),
    ) -> Result<Option<FlowRow>> {
        let sql = if self.write { locking } else { plain };
        match self.query(sql, &[key])?.first() {
            Some(r) => flow_row(r).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn statuses(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Status>> {
        self.query(sql, params)?
            .iter()
            .map(|r| status_of(r.get(0)))
            .collect()
    }
}

pub(crate) const SELECT_BY_STATE: &str = concat!(
    "SELECT ",
    flow_columns!(),
    " FROM flows WHERE state_key = $1"
);
pub(crate) const SELECT_BY_STATE_FOR_UPDATE: &str = concat!(
    "SELECT ",
    flow_columns!(),
    " FROM flows WHERE state_key = $1 FOR UPDATE"
);
/// A generated verifier's row is not in `flows_code_challenge_key` and is not found by its
/// challenge, as on SQLite.
pub(crate) const SELECT_BY_CHALLENGE: &str = concat!(
    "SELECT ",
    flow_columns!(),
    " FROM flows WHERE code_challenge = $1 AND NOT generated_verifier"
);
pub(crate) const SELECT_BY_CHALLENGE_FOR_UPDATE: &str = concat!(
    "SELECT ",
    flow_columns!(),
    " FROM flows WHERE code_challenge = $1 AND NOT generated_verifier FOR UPDATE"
);

/// A challenge that must be unique and is taken inserts nothing (0 rows: a duplicate
/// challenge). The arbiter is checked before the row's other unique indexes, so a flow whose
/// challenge and state are both taken is a duplicate challenge, as on SQLite, whatever order
/// PostgreSQL keeps its indexes in (a restore or a `REINDEX CONCURRENTLY` changes it).
pub(crate) const INSERT_FLOW: &str = "INSERT INTO flows (state_key, code_challenge, \
     code_verifier, server_id, client_id, redirect_uri, issuer, resource, scope, status, \
     created_at, expires_at, require_issuer, client_created_at, generated_verifier) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ON CONFLICT (code_challenge) WHERE NOT generated_verifier DO NOTHING";

pub(crate) const BIND: &str = "UPDATE flows SET state_key = $2, status = 'pending', \
     redirect_uri = coalesce($3, redirect_uri), resource = coalesce($4, resource), \
     scope = coalesce($5, scope), issuer = coalesce($6, issuer), \
     discovery = coalesce($7, discovery), require_issuer = $8 \
     WHERE id = $1 AND status = 'unbound'";

pub(crate) const COMPLETE: &str =
    "UPDATE flows SET status = 'completed', auth_code = $2 WHERE id = $1 AND status = 'pending'";

pub(crate) const FAIL: &str =
    "UPDATE flows SET status = 'failed', code_verifier = NULL, error = $2, \
     error_description = $3 WHERE id = $1 AND status = 'pending'";

pub(crate) const CONSUME: &str = "UPDATE flows SET status = 'consumed', code_verifier = NULL, \
     auth_code = NULL, discovery = NULL, consumed_at = $2, \
     error = coalesce($3, error) \
     WHERE id = $1 AND status = $4";

pub(crate) const DELETE_BY_ID: &str = "DELETE FROM flows WHERE id = $1 AND status = $2";

/// The live rows of a server and client in one of some statuses, the choice of
/// `pending_verifier`: the one condition of [`SELECT_LIVE_VERIFIERS`], [`COUNT_LIVE`] and the
/// one-statement choice ([`super::pending`]), each argument the SQL of a value (the server,
/// the client, the statuses, the bounds of [`rules::live_at`](crate::flow::rules::live_at)).
macro_rules! live_of {
    ($server:literal, $client:literal, $statuses:literal, $expires_after:literal, $created_by:literal) => {
        concat!(
            "server_id = ",
            $server,
            " AND client_id IS NOT DISTINCT FROM ",
            $client,
            " AND status = ANY(",
            $statuses,
            ") AND expires_at > ",
            $expires_after,
            " AND created_at <= ",
            $created_by
        )
    };
}

/// The columns of a [`PendingFlow`], in order.
macro_rules! pending_columns {
    () => {
        "code_verifier, code_challenge, state_key, generated_verifier, discovery"
    };
}

pub(crate) const SELECT_LIVE_VERIFIERS: &str = concat!(
    "SELECT ",
    pending_columns!(),
    " FROM flows WHERE ",
    live_of!("$1", "$2", "$4", "$3", "$5"),
    " LIMIT $6"
);

pub(crate) const COUNT_LIVE: &str = concat!(
    "SELECT count(*) FROM flows WHERE ",
    live_of!("$1", "$2", "$4", "$3", "$5")
);

/// The [`PendingFlow`] of a row whose columns are [`pending_columns`]'.
pub(super) fn pending_flow(r: &Row) -> Result<PendingFlow> {
    let verifier: Option<String> = r.get(0);
    Ok(PendingFlow {
        verifier: verifier
            .ok_or_else(|| Error::corrupt("a live flows row has no code_verifier"))?,
        challenge: r.get(1),
        state_key: r.get(2),
        generated: r.get(3),
        discovery: r.get(4),
    })
}

pub(crate) const ANY_LIVE_FOR_REDIRECT: &str = "SELECT EXISTS (SELECT 1 FROM flows \
     WHERE status = ANY($1) AND expires_at > $2 AND created_at <= $3 \
     AND redirect_uri IN ($4, $5))";

impl FlowRows for Rows<'_> {
    fn now(&self) -> i64 {
        self.now
    }

    fn by_state(&mut self, key: &[u8; 32]) -> Result<Option<FlowRow>> {
        self.find(SELECT_BY_STATE_FOR_UPDATE, SELECT_BY_STATE, &&key[..])
    }

    fn by_challenge(&mut self, challenge: &str) -> Result<Option<FlowRow>> {
        self.find(
            SELECT_BY_CHALLENGE_FOR_UPDATE,
            SELECT_BY_CHALLENGE,
            &challenge,
        )
    }

    fn insert(&mut self, f: &NewFlow<'_>, created_at: i64, expires_at: i64) -> Result<()> {
        let inserted = self.execute_mapped(
            INSERT_FLOW,
            &[
                &f.state_key.map(|k| &k[..]),
                &f.code_challenge,
                &f.verifier,
                &f.server_id,
                &f.client_id,
                &f.redirect_uri,
                &f.issuer,
                &f.resource,
                &f.scope,
                &f.status.as_str(),
                &created_at,
                &expires_at,
                &f.require_issuer,
                &f.client_created_at,
                &f.generated_verifier,
            ],
            unique_violation,
        )?;
        if inserted == 0 {
            return Err(Error::DuplicateChallenge);
        }
        Ok(())
    }

    fn bind(&mut self, id: i64, b: &Binding<'_>) -> Result<u64> {
        self.execute_mapped(
            BIND,
            &[
                &id,
                &&b.state_key[..],
                &b.redirect_uri,
                &b.resource,
                &b.scope,
                &b.issuer,
                &b.discovery,
                &b.require_issuer,
            ],
            unique_violation,
        )
    }

    fn set_callback(&mut self, id: i64, result: &CallbackResult<'_>) -> Result<u64> {
        match *result {
            CallbackResult::Code(code) => self.execute(COMPLETE, &[&id, &code]),
            CallbackResult::Error { error, description } => {
                self.execute(FAIL, &[&id, &error, &description])
            }
        }
    }

    fn mark_consumed(&mut self, id: i64, was: Status, ended: Option<&str>) -> Result<u64> {
        let now = self.now;
        self.execute(CONSUME, &[&id, &now, &ended, &was.as_str()])
    }

    fn delete(&mut self, id: i64, was: Status) -> Result<u64> {
        self.execute(DELETE_BY_ID, &[&id, &was.as_str()])
    }

    fn live_verifiers(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
        live: Live,
        limit: u32,
    ) -> Result<Vec<PendingFlow>> {
        let rows = self.query(
            SELECT_LIVE_VERIFIERS,
            &[
                &server_id,
                &client_id,
                &live.expires_after,
                &names(statuses),
                &live.created_by,
                &i64::from(limit),
            ],
        )?;
        rows.iter().map(pending_flow).collect()
    }

    fn count_live(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
        live: Live,
    ) -> Result<u64> {
        let rows = self.query(
            COUNT_LIVE,
            &[
                &server_id,
                &client_id,
                &live.expires_after,
                &names(statuses),
                &live.created_by,
            ],
        )?;
        Ok(rows.first().map_or(0, |r| count(r.get(0))))
    }

    fn any_live_for_redirect(
        &mut self,
        statuses: &[Status],
        live: Live,
        redirect_uris: &[&str; 2],
    ) -> Result<bool> {
        let [u1, u2] = redirect_uris;
        let rows = self.query(
            ANY_LIVE_FOR_REDIRECT,
            &[
                &names(statuses),
                &live.expires_after,
                &live.created_by,
                u1,
                u2,
            ],
        )?;
        Ok(rows.first().is_some_and(|r| r.get(0)))
    }
}

#[cfg(test)]
#[path = "flows_tests.rs"]
mod tests;
