//! The choice of the SDK's finish without the state (`pending_verifier`, `pending_discovery`,
//! and the first half of `consume_pending`) as one autocommit statement: one round trip, the
//! count of an ambiguous choice included.
//!
//! The statement reads, at the clock read inside it (`statement_timestamp()`, or the injected
//! clock's value, as [`super::steps`]' statements do), the live rows of a server and client in
//! [`rules::LIVE_BOUND`] by the one condition the transactions' [`SELECT_LIVE_VERIFIERS`]
//! uses, at most [`rules::TO_TELL_ONE_FROM_MANY`] of them, and counts them all only when that
//! many were found. The bounds of "live" are [`rules::live_at`]'s, passed as offsets from the
//! statement's clock (`live_at(0)`: the rule is the same at every instant, which a test holds
//! it to). The operation (`ops`) asks [`rules::pending_verifier`] for the choice; it locks
//! nothing: `consume_pending` then consumes the chosen flow by its state, in a statement of
//! its own that locks and judges the row as a consume does.

use std::time::Duration;

use super::connect::Conn;
use super::flows::{names, pending_flow};
use super::look::read_statement;
use crate::error::Result;
use crate::flow::row::PendingFlows;
use crate::flow::rules;

#[cfg(doc)]
use super::flows::SELECT_LIVE_VERIFIERS;

/// `$1` server, `$2` client, `$3` [`rules::LIVE_BOUND`], `$4` injected now, `$5` and `$6`
/// [`rules::live_at`]`(0)`'s bounds (`expires_after`, `created_by`), `$7`
/// [`rules::TO_TELL_ONE_FROM_MANY`]. One row per flow found, each with the count of all.
pub(crate) const CHOOSE: &str = concat!(
    "WITH ",
    clock!(4),
    ", l AS (SELECT t.now + $5::bigint AS expires_after, t.now + $6::bigint AS created_by \
     FROM t), c AS (SELECT ",
    pending_columns!(),
    " FROM flows, l WHERE ",
    live_of!("$1", "$2", "$3", "l.expires_after", "l.created_by"),
    " LIMIT $7::bigint), n AS (SELECT count(*) AS found FROM c) \
     SELECT c.*, CASE WHEN n.found < $7::bigint THEN n.found \
     ELSE (SELECT count(*) FROM flows, l WHERE ",
    live_of!("$1", "$2", "$3", "l.expires_after", "l.created_by"),
    ") END FROM c, n"
);

/// The live bound flows of `server_id` and exactly `client_id`, as the choice reads them.
pub(crate) fn choose(
    conn: &mut Conn,
    server_id: &str,
    client_id: Option<&str>,
    now: Option<i64>,
    busy_timeout: Duration,
) -> Result<PendingFlows> {
    let live = rules::live_at(0);
    let rows = read_statement(
        conn,
        CHOOSE,
        &[
            &server_id,
            &client_id,
            &names(&rules::LIVE_BOUND),
            &now,
            &live.expires_after,
            &live.created_by,
            &i64::from(rules::TO_TELL_ONE_FROM_MANY),
        ],
        busy_timeout,
    )?;
    let count: i64 = rows.first().map_or(0, |r| r.get(5));
    Ok(PendingFlows {
        found: rows.iter().map(pending_flow).collect::<Result<_>>()?,
        count: super::flows::count(count),
    })
}

#[cfg(test)]
#[path = "pending_tests.rs"]
mod tests;
