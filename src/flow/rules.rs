//! The flow rules, apart from any SQL: given what the store found for a key, what happens.
//!
//! A backend looks the row up inside its write transaction, asks one of these functions for a
//! [`Verdict`], and carries it out in the same transaction. A second backend adds statements,
//! not a second copy of these rules.

use crate::error::Error;
use crate::flow::Status;

/// What a backend found for a key: the columns the rules look at.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot<'a> {
    pub status: Status,
    pub expires_at: i64,
    pub server_id: &'a str,
    pub client_id: Option<&'a str>,
    pub created_at: i64,
}

impl Snapshot<'_> {
    /// Past its expiry, or created after `now`: a clock that reads before the flow's creation
    /// (stepped back, or another process's clock ahead) cannot vouch for its age, and going
    /// by expiry alone would let the flow outlive its creation plus its TTL.
    fn expired(&self, now: i64) -> bool {
        now >= self.expires_at || now < self.created_at
    }
}

/// What the backend must do.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Carry the operation out.
    Proceed,
    /// Delete the expired row, commit, and report [`Error::Expired`].
    Expire,
    /// End the flow (wipe its secrets, tombstone it), commit, and report the error.
    Burn(Error),
    /// Change nothing and report the error.
    Refuse(Error),
    /// The operation was already carried out (a repeated, idempotent call): report success.
    AlreadyDone,
}

/// What every lookup by state checks first: an unknown state, a tombstone, an expired flow.
/// `Ok` carries a row that is bound to a state, not consumed and not expired.
fn live_by_state<'r, 'a>(
    row: Option<&'r Snapshot<'a>>,
    now: i64,
) -> Result<&'r Snapshot<'a>, Verdict> {
    let Some(row) = row else {
        return Err(Verdict::Refuse(Error::UnknownState));
    };
    match row.status {
        Status::Consumed => Err(Verdict::Refuse(Error::AlreadyConsumed)),
        // An unbound row has no state key, so a lookup by state never finds one.
        Status::Unbound => Err(Verdict::Refuse(Error::UnknownState)),
        _ if row.expired(now) => Err(Verdict::Expire),
        _ => Ok(row),
    }
}

/// `consume(state)`, optionally expecting a server.
pub(crate) fn consume(
    row: Option<&Snapshot<'_>>,
    now: i64,
    expect_server: Option<&str>,
) -> Verdict {
    match live_by_state(row, now) {
        Err(verdict) => verdict,
        Ok(row) if expect_server.is_some_and(|s| s != row.server_id) => {
            Verdict::Burn(Error::ServerMismatch { field: "server_id" })
        }
        Ok(_) => Verdict::Proceed,
    }
}

/// `check(state)`: would a consume succeed?
pub(crate) fn check(row: Option<&Snapshot<'_>>, now: i64) -> Verdict {
    consume(row, now, None)
}

/// A callback result (code or error) being recorded on a pending flow.
pub(crate) fn record_callback(row: Option<&Snapshot<'_>>, now: i64) -> Verdict {
    match live_by_state(row, now) {
        Err(verdict) => verdict,
        Ok(row) if row.status == Status::Pending => Verdict::Proceed,
        Ok(_) => Verdict::Refuse(Error::AlreadyCompleted),
    }
}

/// `promote`: binding the unbound row found by its challenge to a state.
///
/// `already_bound_to_this_state` tells whether a bound row carries the same state key, which
/// makes a repeated promote of the same URL a no-op instead of an error.
pub(crate) fn promote(
    row: Option<&Snapshot<'_>>,
    now: i64,
    server_id: &str,
    client_id: Option<&str>,
    already_bound_to_this_state: bool,
) -> Verdict {
    let Some(row) = row else {
        return Verdict::Refuse(Error::UnknownChallenge);
    };
    if row.server_id != server_id {
        return Verdict::Refuse(Error::ServerMismatch { field: "server_id" });
    }
    if row.client_id != client_id {
        return Verdict::Refuse(Error::ServerMismatch { field: "client_id" });
    }
    if row.expired(now) {
        return Verdict::Expire;
    }
    match row.status {
        Status::Unbound => Verdict::Proceed,
        Status::Pending if already_bound_to_this_state => Verdict::AlreadyDone,
        _ => Verdict::Refuse(Error::ChallengeAlreadyBound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: Status, expires_at: i64) -> Snapshot<'static> {
        Snapshot {
            status,
            expires_at,
            server_id: "s",
            client_id: Some("c"),
            created_at: 0,
        }
    }

    #[test]
    fn consume_rules() {
        assert!(matches!(
            consume(None, 0, None),
            Verdict::Refuse(Error::UnknownState)
        ));
        let r = row(Status::Consumed, 0);
        assert!(matches!(
            consume(Some(&r), 10, None),
            Verdict::Refuse(Error::AlreadyConsumed)
        ));
        let r = row(Status::Pending, 10);
        assert!(matches!(consume(Some(&r), 10, None), Verdict::Expire));
        assert!(matches!(consume(Some(&r), 9, None), Verdict::Proceed));
        assert!(matches!(
            consume(Some(&r), 9, Some("other")),
            Verdict::Burn(_)
        ));
        assert!(matches!(consume(Some(&r), 9, Some("s")), Verdict::Proceed));
    }

    #[test]
    fn a_clock_reading_before_creation_is_expired() {
        let mut r = row(Status::Pending, 10);
        r.created_at = 5;
        assert!(matches!(consume(Some(&r), 5, None), Verdict::Proceed));
        assert!(matches!(consume(Some(&r), 4, None), Verdict::Expire));
        assert!(matches!(record_callback(Some(&r), 4), Verdict::Expire));
        r.status = Status::Unbound;
        assert!(matches!(
            promote(Some(&r), 4, "s", Some("c"), false),
            Verdict::Expire
        ));
    }

    #[test]
    fn promote_rules() {
        let r = row(Status::Unbound, 10);
        assert!(matches!(
            promote(Some(&r), 0, "s", Some("c"), false),
            Verdict::Proceed
        ));
        assert!(matches!(
            promote(Some(&r), 0, "x", Some("c"), false),
            Verdict::Refuse(Error::ServerMismatch { field: "server_id" })
        ));
        assert!(matches!(
            promote(Some(&r), 0, "s", None, false),
            Verdict::Refuse(Error::ServerMismatch { field: "client_id" })
        ));
        assert!(matches!(
            promote(Some(&r), 10, "s", Some("c"), false),
            Verdict::Expire
        ));
        assert!(matches!(
            promote(None, 0, "s", None, false),
            Verdict::Refuse(Error::UnknownChallenge)
        ));
    }
}
