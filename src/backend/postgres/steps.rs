//! The one-row operations (begin, promote, a callback, consume) as one autocommit statement
//! each: one round trip on every path but one (a redirect URI spelled in a way the accepted
//! list missed: a second, exact, try).
//!
//! Each guarded statement has the same shape:
//!
//! - `t`: the clock, read inside the statement (`statement_timestamp()`, fixed for the
//!   statement: the guard, the delete and the tombstone's `consumed_at` see one instant), or the
//!   injected clock's value;
//! - `old`: the row by its key, locked `FOR UPDATE` (in READ COMMITTED the lock is taken on the
//!   latest committed version, which the rest of the statement then judges);
//! - `done`: the update, under the rules' "may proceed" for that row at `t.now`, the status
//!   sets and reasons passed from [`rules`]' constants;
//! - `gone`: the delete of the row the rules find expired (exclusive with `done`);
//! - the answer: always one row, the time, what was written, and the row as it was, its
//!   secrets only when the step handed them out.
//!
//! The operation (`ops`) asks [`rules`] for the verdict on the returned row and checks that the
//! write was the verdict's; `steps_tests.rs` holds each statement to the rules case by case.
//!
//! Autocommit means the statement's commit is its own: a connection lost once the statement
//! left is [`Error::CommitOutcomeUnknown`] (also when the server ended the session: it may end
//! it after the commit); an `ERROR` the server answered means it rolled the statement back.

use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::Row;

use super::connect::Conn;
use super::error::{commit_failed, is_connection_lost, run_alone, unique_violation};
use super::flows::{flow_row_at, names};
use crate::error::{Error, Result};
use crate::flow::row::{CallbackResult, NewFlow};
use crate::flow::rules::{self, Action};
use crate::flow::tx::{Step, Stepped};

/// The statement's clock, `$n` the injected time (NULL: the server's, in Unix milliseconds,
/// rounded down as the transactions' clock was).
macro_rules! clock {
    ($n:literal) => {
        concat!(
            "t AS (SELECT coalesce($",
            $n,
            "::bigint, floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint) AS now)"
        )
    };
}

/// The row as it was, locked: `old`.
macro_rules! old_row {
    ($key:literal) => {
        concat!(
            "old AS (SELECT id, status, expires_at, created_at, server_id, client_id, \
             redirect_uri, issuer, resource, scope, code_verifier, auth_code, error, \
             error_description, state_key, code_challenge, require_issuer, client_created_at, \
             discovery FROM flows WHERE ",
            $key,
            " FOR UPDATE)"
        )
    };
}

/// The answer: the time, changed, deleted, then the columns of `flows::flow_row` (secrets under
/// `$hand_out`).
macro_rules! answer {
    ($hand_out:literal) => {
        concat!(
            "SELECT t.now, d.id IS NOT NULL, g.id IS NOT NULL, old.id, old.status, \
             old.expires_at, old.created_at, old.server_id, old.client_id, old.redirect_uri, \
             old.issuer, old.resource, old.scope, CASE WHEN ",
            $hand_out,
            " THEN old.code_verifier END, CASE WHEN ",
            $hand_out,
            " THEN old.auth_code END, old.error, old.error_description, old.state_key, \
             old.code_challenge, old.require_issuer, old.client_created_at, CASE WHEN ",
            $hand_out,
            " THEN old.discovery END \
             FROM t LEFT JOIN old ON true LEFT JOIN done d ON d.id = old.id \
             LEFT JOIN gone g ON g.id = old.id"
        )
    };
}

/// "Live at `t.now`" of the row `old`, as `rules` defines expiry (`Snapshot::expired`).
macro_rules! live {
    () => {
        "old.expires_at > t.now AND old.created_at <= t.now"
    };
}
macro_rules! expired {
    () => {
        "(old.expires_at <= t.now OR old.created_at > t.now)"
    };
}

/// `begin` / `save_code_verifier`. `$1` state key (NULL: unbound), `$2` challenge, `$3`
/// verifier, `$4` server, `$5` client, `$6` redirect URI, `$7` issuer, `$8` resource, `$9`
/// scope, `$10` status, `$11` TTL ms, `$12` require_issuer, `$13` client_created_at, `$14`
/// generated_verifier, `$15` injected now. A challenge that must be unique and is taken
/// inserts nothing (no row: a duplicate challenge), checked before the other unique indexes,
/// so a flow whose challenge and state are both taken is a duplicate challenge, as on SQLite.
pub(crate) const INSERT: &str = concat!(
    "WITH ",
    clock!(15),
    " INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, client_id, \
     redirect_uri, issuer, resource, scope, status, created_at, expires_at, require_issuer, \
     client_created_at, generated_verifier) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, t.now, t.now + $11::bigint, $12, $13, $14 \
     FROM t ON CONFLICT (code_challenge) WHERE NOT generated_verifier DO NOTHING \
     RETURNING created_at, expires_at"
);

/// `consume` / `consume_for`. `$1` state key, `$2` the expected server (NULL: any), `$3`
/// injected now, `$4` [`rules::ACTS_BY_STATE`], `$5` [`rules::SERVER_MISMATCH_REASON`]. A
/// consume for another server ends the flow (tombstone with the reason); a failed flow keeps
/// its callback's error on its tombstone. Secrets go out only when consumed for its server.
pub(crate) const CONSUME: &str = concat!(
    "WITH ",
    clock!(3),
    ", ",
    old_row!("state_key = $1"),
    ", done AS (UPDATE flows f SET status = 'consumed', code_verifier = NULL, \
     auth_code = NULL, discovery = NULL, consumed_at = t.now, \
     error = CASE WHEN $2::text IS NOT NULL AND $2::text <> old.server_id THEN $5::text \
     ELSE old.error END \
     FROM old, t WHERE f.id = old.id AND old.status = ANY($4::text[]) AND ",
    live!(),
    " RETURNING f.id), gone AS (DELETE FROM flows f USING old, t \
     WHERE f.id = old.id AND old.status = ANY($4::text[]) AND ",
    expired!(),
    " RETURNING f.id) ",
    answer!("d.id IS NOT NULL AND ($2::text IS NULL OR $2::text = old.server_id)")
);

/// A callback's result. `$1` state key, `$2` the new status, `$3` code, `$4` error, `$5`
/// error_description, `$6` injected now, `$7` the callback's `iss`, `$8` from a browser (a
/// listener or a delivered URL), `$9` the accepted redirect URIs
/// ([`rules::redirect_spellings`]; NULL: no check), `$10`
/// [`rules::WAITING_FOR_CALLBACK`], `$11` [`rules::ACTS_BY_STATE`]. The `iss` conditions
/// are `rules::record_callback`'s; an expired flow of any status a lookup by state acts on is
/// deleted (expiry is judged before "not pending"). Hands no secret out.
pub(crate) const RECORD: &str = concat!(
    "WITH ",
    clock!(6),
    ", ",
    old_row!("state_key = $1"),
    ", done AS (UPDATE flows f SET status = $2::text, auth_code = $3, error = $4, \
     error_description = $5, \
     code_verifier = CASE WHEN $2::text = 'failed' THEN NULL ELSE f.code_verifier END \
     FROM old, t WHERE f.id = old.id AND old.status = ANY($10::text[]) AND ",
    live!(),
    " AND ($9::text[] IS NULL OR old.redirect_uri IS NULL OR old.redirect_uri = ANY($9::text[])) \
     AND NOT (old.require_issuer AND $8::boolean AND $7::text IS NULL) \
     AND (old.issuer IS NULL OR $7::text IS NULL OR old.issuer = $7::text) \
     RETURNING f.id), gone AS (DELETE FROM flows f USING old, t \
     WHERE f.id = old.id AND old.status = ANY($11::text[]) AND ",
    expired!(),
    " RETURNING f.id) ",
    answer!("false")
);

/// `promote`. `$1` challenge, `$2` state key, `$3` redirect URI, `$4` resource, `$5` scope,
/// `$6` issuer, `$7` discovery, `$8` require_issuer, `$9` server, `$10` client, `$11` injected
/// now. The order of `rules::promote` (server, client, then expiry, then status) is why the
/// delete carries the server and client condition: an expired row of another server is
/// refused, not deleted. A state key in use is a unique violation: `DuplicateState`, nothing
/// written. Hands no secret out.
pub(crate) const PROMOTE: &str = concat!(
    "WITH ",
    clock!(11),
    ", ",
    old_row!("code_challenge = $1 AND NOT generated_verifier"),
    ", done AS (UPDATE flows f SET state_key = $2, status = 'pending', \
     redirect_uri = coalesce($3, f.redirect_uri), resource = coalesce($4, f.resource), \
     scope = coalesce($5, f.scope), issuer = coalesce($6, f.issuer), \
     discovery = coalesce($7, f.discovery), require_issuer = $8 \
     FROM old, t WHERE f.id = old.id AND old.status = 'unbound' \
     AND old.server_id = $9 AND old.client_id IS NOT DISTINCT FROM $10::text AND ",
    live!(),
    " RETURNING f.id), gone AS (DELETE FROM flows f USING old, t \
     WHERE f.id = old.id AND old.server_id = $9 AND old.client_id IS NOT DISTINCT FROM $10::text \
     AND ",
    expired!(),
    " RETURNING f.id) ",
    answer!("false")
);

/// The one-statement operations (this module's, and the pending choice), for the plan checks.
#[cfg(test)]
pub(crate) const ALL: [(&str, &str); 6] = [
    ("INSERT", INSERT),
    ("CONSUME", CONSUME),
    ("RECORD", RECORD),
    ("PROMOTE", PROMOTE),
    ("CHOOSE", super::pending::CHOOSE),
    ("BY_STATE", super::look::BY_STATE),
];

/// A statement that writes failed. The server's `ERROR` means it rolled the statement back
/// (a duplicate is reported as such). A lost connection, whatever the server said last, leaves
/// the outcome unknown: an autocommit statement commits at the `Sync` that ends it, and a
/// session the server ends (a shutdown, `pg_terminate_backend`, a crash) may end after that
/// commit without the answer reaching the client, as the restart test sees.
fn write_failed(e: postgres::Error, busy_timeout: Duration) -> Error {
    if is_connection_lost(&e) {
        return commit_failed(e, busy_timeout);
    }
    if e.code() == Some(&SqlState::NUMERIC_VALUE_OUT_OF_RANGE) {
        return Error::invalid("ttl", "overflows the clock's range");
    }
    unique_violation(e, busy_timeout)
}

/// Runs `sql` prepared on `conn`: a failed prepare sent nothing that writes.
fn run(
    conn: &mut Conn,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
    busy_timeout: Duration,
) -> Result<Vec<Row>> {
    run_alone(conn, sql, params, busy_timeout, write_failed)
}

/// Inserts a flow; returns its creation and expiry times.
pub(crate) fn insert(
    conn: &mut Conn,
    f: &NewFlow<'_>,
    ttl_ms: i64,
    now: Option<i64>,
    busy_timeout: Duration,
) -> Result<(i64, i64)> {
    if let Some(now) = now {
        crate::validate::expiry(now, ttl_ms)?;
    }
    let rows = run(
        conn,
        INSERT,
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
            &ttl_ms,
            &f.require_issuer,
            &f.client_created_at,
            &f.generated_verifier,
            &now,
        ],
        busy_timeout,
    )?;
    match rows.first() {
        Some(r) => Ok((r.get(0), r.get(1))),
        None => Err(Error::DuplicateChallenge),
    }
}

/// Runs one step as one statement.
pub(crate) fn step(
    conn: &mut Conn,
    step: &Step<'_>,
    now: Option<i64>,
    busy_timeout: Duration,
) -> Result<Stepped> {
    let rows = match *step {
        Step::Consume { key, expect_server } => run(
            conn,
            CONSUME,
            &[
                &&key[..],
                &expect_server,
                &now,
                &names(&rules::ACTS_BY_STATE),
                &rules::SERVER_MISMATCH_REASON,
            ],
            busy_timeout,
        )?,
        Step::Record {
            key,
            result,
            expect,
            redirects,
        } => {
            let (code, error, description) = match *result {
                CallbackResult::Code(code) => (Some(code), None, None),
                CallbackResult::Error { error, description } => (None, Some(error), description),
            };
            let from_browser = expect.arrived_at.is_some() || expect.delivered_to.is_some();
            run(
                conn,
                RECORD,
                &[
                    &&key[..],
                    &result.status().as_str(),
                    &code,
                    &error,
                    &description,
                    &now,
                    &expect.iss,
                    &from_browser,
                    &redirects,
                    &names(&rules::WAITING_FOR_CALLBACK),
                    &names(&rules::ACTS_BY_STATE),
                ],
                busy_timeout,
            )?
        }
        Step::Promote {
            challenge,
            server_id,
            client_id,
            binding: b,
        } => run(
            conn,
            PROMOTE,
            &[
                &challenge,
                &&b.state_key[..],
                &b.redirect_uri,
                &b.resource,
                &b.scope,
                &b.issuer,
                &b.discovery,
                &b.require_issuer,
                &server_id,
                &client_id,
                &now,
            ],
            busy_timeout,
        )?,
    };
    let Some(r) = rows.first() else {
        return Err(Error::Storage(crate::error::StorageError::message(
            "a flow statement returned no answer".to_owned(),
        )));
    };
    stepped(r)
}

/// The answer row of a guarded statement.
fn stepped(r: &Row) -> Result<Stepped> {
    let (changed, deleted): (bool, bool) = (r.get(1), r.get(2));
    let did = match (changed, deleted) {
        (true, false) => Action::Changed,
        (false, true) => Action::Deleted,
        (false, false) => Action::Nothing,
        (true, true) => {
            return Err(Error::Storage(crate::error::StorageError::message(
                "a flow statement both changed and deleted its row".to_owned(),
            )))
        }
    };
    let found: Option<i64> = r.get(3);
    let row = match found {
        Some(_) => Some(flow_row_at(r, 3)?),
        None => None,
    };
    Ok(Stepped {
        now: r.get(0),
        did,
        row,
    })
}

#[cfg(test)]
#[path = "steps_tests.rs"]
pub(super) mod tests;
