//! The flow rules, apart from any storage: given what the store found for a key, what happens;
//! and what "expired", "live" and "finished" mean, for the statements over many rows.
//!
//! An operation in [`ops`](super::ops) looks the row up inside its transaction, asks one of
//! these functions for a [`Verdict`], and carries it out in the same transaction. An engine
//! adds statements, never a second copy of these rules: its many-row statements compare
//! columns with the bounds and statuses defined here.

use crate::error::{EndReason, Error, Result};
use crate::flow::row::Live;
use crate::flow::Status;

/// What a backend found for a key: the columns the rules look at.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot<'a> {
    pub status: Status,
    pub expires_at: i64,
    pub server_id: &'a str,
    pub client_id: Option<&'a str>,
    pub created_at: i64,
    pub redirect_uri: Option<&'a str>,
    pub issuer: Option<&'a str>,
    /// The row's `error` column: on a tombstone, why the flow ended without a login (`None`
    /// when it was consumed for a login).
    pub error: Option<&'a str>,
    /// The authorization server promised an `iss` on its callbacks (RFC 9207).
    pub require_issuer: bool,
}

impl Snapshot<'_> {
    /// Past its expiry, or created after `now`: a clock that reads before the flow's creation
    /// (stepped back, or another process's clock ahead) cannot vouch for its age, and going
    /// by expiry alone would let the flow outlive its creation plus its TTL.
    fn expired(&self, now: i64) -> bool {
        now >= self.expires_at || now < self.created_at
    }
}

/// "Live at `now`" for a statement over many rows: the same as [`Snapshot::expired`]'s
/// negation, as bounds (`expires_at > expires_after AND created_at <= created_by`).
pub(crate) fn live_at(now: i64) -> Live {
    Live {
        expires_after: now,
        created_by: now,
    }
}

/// A sweep removes the rows whose expiry is at or before this.
pub(crate) fn sweep_cutoff(now: i64) -> i64 {
    now
}

/// The flows bound to a state whose verifier is still wanted: what `pending_verifier` chooses
/// from.
pub(crate) const LIVE_BOUND: [Status; 2] = [Status::Pending, Status::Completed];

/// The flows still waiting for their callback: what keeps a listener running.
pub(crate) const WAITING_FOR_CALLBACK: [Status; 1] = [Status::Pending];

/// The flows that ended (tombstones and failed flows): what `sweep_finished` removes early.
pub(crate) const FINISHED: [Status; 2] = [Status::Consumed, Status::Failed];

/// The reason kept on the tombstone of a flow ended by a consume for another server.
pub(crate) const SERVER_MISMATCH_REASON: &str = "server_mismatch";

/// Why a flow ended without a login, for a tombstone (`status` consumed), from its `error`
/// column: `None` for a flow consumed for a login (and for any row not a tombstone);
/// [`SERVER_MISMATCH_REASON`] for one ended by a consume for another server; any other value
/// is the error of a failed flow's callback, kept when it was consumed.
pub(crate) fn end_reason(status: Status, error: Option<&str>) -> Option<EndReason> {
    if status != Status::Consumed {
        return None;
    }
    match error? {
        SERVER_MISMATCH_REASON => Some(EndReason::ServerMismatch),
        _ => Some(EndReason::AuthorizationFailed),
    }
}

/// What a lookup that finds a tombstone reports: a replay of a completed login, or a flow
/// ended for a reason.
fn tombstone(row: &Snapshot<'_>) -> Error {
    match end_reason(row.status, row.error) {
        None => Error::AlreadyConsumed,
        Some(reason) => Error::FlowEnded { reason },
    }
}

/// How many live bound verifiers `pending_verifier` reads: enough to tell one from many.
pub(crate) const TO_TELL_ONE_FROM_MANY: u32 = 2;

/// `now - older_than`, for a positive duration: the end time before which a finished flow is
/// removed by `sweep_finished`.
///
/// # Errors
/// [`Error::InvalidInput`] (`older_than`) unless it is positive and in range.
pub(crate) fn finished_cutoff(now: i64, older_than: std::time::Duration) -> Result<i64> {
    if older_than.is_zero() {
        return Err(Error::invalid("older_than", "must be positive"));
    }
    i64::try_from(older_than.as_millis())
        .ok()
        .and_then(|ms| now.checked_sub(ms))
        .ok_or(Error::invalid("older_than", "is out of range"))
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

/// What a verdict makes the store do to the row it judged: the write an engine's one-step
/// statement must have made for the same row at the same time (see [`Verdict::action`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// The row was changed (bound, a callback recorded, consumed or ended).
    Changed,
    /// The expired row was deleted.
    Deleted,
    /// Nothing was written.
    Nothing,
}

impl Verdict {
    /// The write this verdict asks for.
    pub(crate) fn action(&self) -> Action {
        match self {
            Verdict::Proceed | Verdict::Burn(_) => Action::Changed,
            Verdict::Expire => Action::Deleted,
            Verdict::AlreadyDone | Verdict::Refuse(_) => Action::Nothing,
        }
    }
}

/// Which of several candidates: the 0/1/many of `pending_verifier`.
#[derive(Debug)]
pub(crate) enum Choice<T> {
    /// None was found.
    None,
    /// Exactly one was found.
    One(T),
    /// More than one: choosing would be a guess.
    Several,
}

/// `pending_verifier`: among the live bound flows found (at most
/// [`TO_TELL_ONE_FROM_MANY`]), only a single one is an answer.
pub(crate) fn pending_verifier<T>(mut found: Vec<T>) -> Choice<T> {
    match found.len() {
        0 => Choice::None,
        1 => Choice::One(found.remove(0)),
        _ => Choice::Several,
    }
}

/// What a callback must match, besides its state, to be recorded.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Expectations<'a> {
    /// Where the callback arrived: a loopback listener's port and path. A flow that names
    /// another redirect URI refuses it.
    pub arrived_at: Option<(u16, &'a str)>,
    /// Where a delivered callback (a pasted URL, a web app's route) arrived: a flow that names
    /// another redirect URI (see [`redirect_is`]) refuses it.
    pub delivered_to: Option<&'a url::Url>,
    /// The callback's `iss` parameter (RFC 9207): a flow that expects another issuer refuses
    /// it.
    pub iss: Option<&'a str>,
}

/// The statuses a lookup by state lets through to the expiry check: a tombstone (consumed)
/// is refused whatever its age, and an unbound row has no state key. A statement that carries
/// an operation out in one step receives this set as a parameter, so it reads the one the
/// rules read.
pub(crate) const ACTS_BY_STATE: [Status; 3] = [Status::Pending, Status::Completed, Status::Failed];

/// What every lookup by state checks first: an unknown state, a tombstone, an expired flow.
/// `Ok` carries a row that is bound to a state, not consumed and not expired.
fn live_by_state<'r, 'a>(
    row: Option<&'r Snapshot<'a>>,
    now: i64,
) -> Result<&'r Snapshot<'a>, Verdict> {
    let Some(row) = row else {
        return Err(Verdict::Refuse(Error::UnknownState));
    };
    if !ACTS_BY_STATE.contains(&row.status) {
        return Err(Verdict::Refuse(match row.status {
            Status::Consumed => tombstone(row),
            // An unbound row has no state key, so a lookup by state never finds one.
            _ => Error::UnknownState,
        }));
    }
    if row.expired(now) {
        return Err(Verdict::Expire);
    }
    Ok(row)
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

/// An SDK's `load(state)` for `server_id`: may it see the flow? Anything but a live flow of
/// that server is refused (the caller reports it as absent); an expired one is removed.
pub(crate) fn peek(row: Option<&Snapshot<'_>>, now: i64, server_id: &str) -> Verdict {
    match live_by_state(row, now) {
        Err(verdict) => verdict,
        Ok(row) if row.server_id != server_id => {
            Verdict::Refuse(Error::ServerMismatch { field: "server_id" })
        }
        Ok(_) => Verdict::Proceed,
    }
}

/// A callback result (code or error) being recorded on a pending flow: the flow must be
/// pending, and must expect a callback where this one arrived and from this issuer.
pub(crate) fn record_callback(
    row: Option<&Snapshot<'_>>,
    now: i64,
    expect: &Expectations<'_>,
) -> Verdict {
    let row = match live_by_state(row, now) {
        Err(verdict) => return verdict,
        Ok(row) if row.status != Status::Pending => {
            return Verdict::Refuse(Error::AlreadyCompleted)
        }
        Ok(row) => row,
    };
    if let (Some((port, path)), Some(uri)) = (expect.arrived_at, row.redirect_uri) {
        if !redirect_names(uri, port, path) {
            return Verdict::Refuse(Error::ServerMismatch {
                field: "redirect_uri",
            });
        }
    }
    if let (Some(at), Some(uri)) = (expect.delivered_to, row.redirect_uri) {
        if !redirect_is(uri, at) {
            return Verdict::Refuse(Error::ServerMismatch {
                field: "redirect_uri",
            });
        }
    }
    // A callback from the browser (at a listener, or delivered) without the `iss` its server
    // promised: refused, as RFC 9207 asks (a direct `complete` or `reject` call has neither
    // `arrived_at` nor `delivered_to`, and no `iss`).
    let from_browser = expect.arrived_at.is_some() || expect.delivered_to.is_some();
    if row.require_issuer && from_browser && expect.iss.is_none() {
        return Verdict::Refuse(Error::ServerMismatch { field: "iss" });
    }
    if let (Some(expected), Some(got)) = (row.issuer, expect.iss) {
        if expected != got {
            return Verdict::Refuse(Error::ServerMismatch { field: "iss" });
        }
    }
    Verdict::Proceed
}

/// The exact spellings of a redirect URI that a callback arriving as `expect` says accepts,
/// for a statement that compares strings: `None` when the callback came from neither a
/// listener nor a delivered URL (no redirect check). Every string returned passes the rule of
/// [`record_callback`] itself (the candidates are filtered through it), so a statement that
/// accepts only these never accepts what the rule refuses; a stored spelling missing from the
/// list (`http://LOCALHOST:…`, an explicit default port) is the operation's second try with
/// the stored URI the rule approved.
pub(crate) fn redirect_spellings(expect: &Expectations<'_>) -> Option<Vec<String>> {
    if expect.arrived_at.is_none() && expect.delivered_to.is_none() {
        return None;
    }
    let mut candidates = Vec::new();
    if let Some((port, path)) = expect.arrived_at {
        for host in ["127.0.0.1", "localhost"] {
            candidates.push(format!("http://{host}:{port}{path}"));
        }
    }
    if let Some(at) = expect.delivered_to {
        let mut base = at.clone();
        base.set_query(None);
        base.set_fragment(None);
        candidates.push(base.to_string());
        let loopback = match base.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        if loopback {
            for host in ["127.0.0.1", "localhost", "[::1]"] {
                let mut other = base.clone();
                if other.set_host(Some(host)).is_ok() {
                    candidates.push(other.to_string());
                }
            }
        }
    }
    candidates.retain(|c| {
        expect
            .arrived_at
            .is_none_or(|(port, path)| redirect_names(c, port, path))
            && expect.delivered_to.is_none_or(|at| redirect_is(c, at))
    });
    candidates.dedup();
    Some(candidates)
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

/// Whether the redirect URI `uri` names a loopback listener on `port` at `path` (`http`,
/// `127.0.0.1` or another loopback address, or `localhost`).
fn redirect_names(uri: &str, port: u16, path: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    let host_ok = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        _ => false,
    };
    url.scheme() == "http" && host_ok && url.port() == Some(port) && url.path() == path
}

/// Whether a callback delivered at `at` arrived where the flow's redirect URI `uri` points:
/// the same scheme, port and path always; the same host, where the loopback names
/// (`127.0.0.1`, `[::1]`, `localhost`) count as one. The query is the callback's own.
fn redirect_is(uri: &str, at: &url::Url) -> bool {
    let Ok(want) = url::Url::parse(uri) else {
        return false;
    };
    let loopback = |u: &url::Url| match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    let host_ok = (loopback(&want) && loopback(at)) || want.host() == at.host();
    want.scheme() == at.scheme()
        && host_ok
        && want.port_or_known_default() == at.port_or_known_default()
        && want.path() == at.path()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod callback_tests;
