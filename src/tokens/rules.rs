//! The token rules, apart from any storage: given the row a transaction read, what a save, a
//! refresh's beginning and end, a refused refresh token and a release do.
//!
//! An operation in [`ops`](super::ops) reads the row inside its transaction, asks one of these
//! functions for a verdict, and carries it out in the same transaction through a guarded
//! update whose condition is the verdict's "may proceed" spelled in SQL (the generation, or
//! the lease holder, the body read). An engine adds statements, never a second copy of these.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::tokens::tx::{NewTokens, TokenRow, TokenWatch};

/// How many replaced refresh tokens a row remembers (their SHA-256).
pub(crate) const REPLACED_KEPT: usize = 4;

/// Longest OAuth error a revocation keeps (`revoked_reason`).
pub(crate) const MAX_REASON_LEN: usize = 64;

/// What a refresh rule looks at in a row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot<'a> {
    pub generation: i64,
    /// The revocation's reason, when revoked.
    pub revoked: Option<&'a str>,
    pub has_refresh_token: bool,
    /// The lease: holder and expiry.
    pub lease: Option<(&'a str, i64)>,
}

impl TokenRow {
    /// The columns the rules look at.
    pub(crate) fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            generation: self.generation,
            revoked: self
                .revoked_at
                .map(|_| self.revoked_reason.as_deref().unwrap_or("revoked")),
            has_refresh_token: self.refresh_token.is_some(),
            lease: self.lease_holder.as_deref().zip(self.lease_expires_at),
        }
    }
}

/// The error of a revoked set.
fn revoked(reason: &str) -> Error {
    Error::TokensRevoked {
        reason: reason.to_owned(),
        after_lost_holder: false,
    }
}

/// What beginning a refresh does.
#[derive(Debug)]
pub(crate) enum Begin {
    /// A newer generation than the caller saw is stored: hand it out, send nothing.
    Newer,
    /// Take the lease; `took_over`: an expired lease of another holder was there.
    Lease { took_over: bool },
    /// Another holder's lease runs until `until`: wait.
    Wait { until: i64 },
    /// Change nothing and report the error.
    Refuse(Error),
}

/// Beginning a refresh of the row against the generation the caller saw (`None`: whatever is
/// current). A revoked or missing set refuses; a newer generation is handed out even while
/// someone else's lease runs (its waiters get the set its holder saved); a set without a
/// refresh token refuses; a running lease waits; otherwise the caller leases (taking over an
/// expired lease). A generation newer than the row's (the set was forgotten and saved again)
/// is treated as current: the only token ever sent is the row's own.
pub(crate) fn begin_refresh(row: Option<&Snapshot<'_>>, seen: Option<i64>, now: i64) -> Begin {
    let Some(row) = row else {
        return Begin::Refuse(Error::NoTokens);
    };
    if let Some(reason) = row.revoked {
        return Begin::Refuse(revoked(reason));
    }
    if seen.is_some_and(|g| g < row.generation) {
        return Begin::Newer;
    }
    if !row.has_refresh_token {
        return Begin::Refuse(Error::NoRefreshToken);
    }
    match row.lease {
        Some((_, until)) if until > now => Begin::Wait { until },
        lease => Begin::Lease {
            took_over: lease.is_some(),
        },
    }
}

/// A lease's expiry: `now + lease`.
///
/// # Errors
/// [`Error::InvalidInput`] (`lease`) when the sum overflows the clock's range.
pub(crate) fn lease_expiry(now: i64, lease: Duration) -> Result<i64> {
    i64::try_from(lease.as_millis())
        .ok()
        .and_then(|ms| now.checked_add(ms))
        .ok_or(Error::invalid("lease", "overflows the clock's range"))
}

/// How long the holder's request may run: the lease minus 2 seconds, or minus half of it for
/// a lease under 4 seconds. A live holder's request thus ends before its lease does, so two
/// live holders never have a request for one token in flight.
pub(crate) fn holder_deadline(lease: Duration) -> Duration {
    lease - Duration::from_secs(2).min(lease / 2)
}

/// When an access token received at `received_at` with `expires_in` expires.
pub(crate) fn expires_at(received_at: i64, expires_in: Option<Duration>) -> Option<i64> {
    let ms = i64::try_from(expires_in?.as_millis()).ok()?;
    Some(received_at.saturating_add(ms))
}

/// What a save does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Save {
    /// Replace the stored tokens (a new generation).
    Replace,
    /// The same tokens are stored: no new generation; `set_issuer` adds the issuer the row
    /// lacks.
    Same { set_issuer: bool },
    /// The refresh token is one the row replaced: write nothing.
    Stale,
}

/// Saving `new` over the live or revoked `row`. The same access and refresh tokens (compared
/// in constant time) are no new generation: SDKs save again what they were handed. A refresh
/// token the row replaced is never stored again.
pub(crate) fn save(row: &TokenRow, new: &NewTokens<'_>) -> Save {
    let same_refresh = match (&row.refresh_token, new.refresh_token) {
        (Some(old), Some(new)) => secret_eq(old, new),
        (None, None) => true,
        _ => false,
    };
    if !same_refresh && new.refresh_token.is_some_and(|t| was_replaced(row, t)) {
        return Save::Stale;
    }
    let same_access = row
        .access_token
        .as_deref()
        .is_some_and(|old| secret_eq(old, new.access_token));
    if same_access && same_refresh {
        return Save::Same {
            set_issuer: row.issuer.is_none() && new.issuer.is_some(),
        };
    }
    Save::Replace
}

/// What finishing a refresh of the generation `leased` does.
#[derive(Debug)]
pub(crate) enum Finish {
    /// The leased generation is still stored: save the response over it (compare-and-swap).
    Save,
    /// A newer set was stored meanwhile (a login): drop the response, hand out the stored set.
    Superseded,
    /// Nothing to save over: the set was forgotten or revoked.
    Gone(Error),
}

/// Finishing a refresh of the generation `leased`: whoever holds the lease now does not
/// matter, the generation does.
pub(crate) fn finish(row: Option<&Snapshot<'_>>, leased: i64) -> Finish {
    match row {
        None => Finish::Gone(Error::NoTokens),
        Some(row) => match row.revoked {
            Some(reason) => Finish::Gone(revoked(reason)),
            None if row.generation == leased => Finish::Save,
            None => Finish::Superseded,
        },
    }
}

/// What a refresh token refused for a generation does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// That generation is the stored one: revoke it.
    Revoke,
    /// A newer set is stored: leave it.
    Stale,
    /// No set, or already revoked.
    Gone,
}

/// A refresh token refused for `generation` clears the set only while `generation` is the
/// stored one: a stale refusal never touches a newer set.
pub(crate) fn reject(row: Option<&Snapshot<'_>>, generation: i64) -> Reject {
    match row {
        None => Reject::Gone,
        Some(row) if row.revoked.is_some() => Reject::Gone,
        Some(row) if row.generation == generation => Reject::Revoke,
        Some(_) => Reject::Stale,
    }
}

/// Whether `holder` still holds the row's lease (only then does a release clear it).
pub(crate) fn holds_lease(row: Option<&Snapshot<'_>>, holder: &str) -> bool {
    row.and_then(|r| r.lease).is_some_and(|(h, _)| h == holder)
}

/// Whether what a waiter saw (`before`) has changed by `now`: the row gone, another
/// generation, a revocation, another (or no) lease holder, or the lease expired. Then the
/// waiter begins again.
pub(crate) fn changed(before: &TokenWatch, after: Option<&TokenWatch>, now: i64) -> bool {
    match after {
        None => true,
        Some(after) => {
            after.generation != before.generation
                || after.revoked != before.revoked
                || after.lease_holder != before.lease_holder
                || after.lease_expires_at.is_none_or(|until| until <= now)
        }
    }
}

/// The `replaced` column after a row replaces `old_refresh_token` by `new_refresh_token`:
/// the old token's SHA-256 first, then the previous entries, at most [`REPLACED_KEPT`]. A
/// token kept as it was (a server that does not rotate) is not "replaced".
pub(crate) fn replaced_after(
    previous: Option<&[u8]>,
    old_refresh_token: Option<&str>,
    new_refresh_token: Option<&str>,
) -> Option<Vec<u8>> {
    let old = match (old_refresh_token, new_refresh_token) {
        (Some(old), Some(new)) if secret_eq(old, new) => None,
        (old, _) => old,
    };
    let Some(old) = old else {
        return previous.map(<[u8]>::to_vec);
    };
    let mut out = Sha256::digest(old.as_bytes()).to_vec();
    if let Some(previous) = previous {
        out.extend(previous.chunks_exact(32).take(REPLACED_KEPT - 1).flatten());
    }
    Some(out)
}

/// Whether `refresh_token` is one of the tokens the row replaced.
fn was_replaced(row: &TokenRow, refresh_token: &str) -> bool {
    let hash = Sha256::digest(refresh_token.as_bytes());
    row.replaced
        .as_deref()
        .is_some_and(|r| r.chunks_exact(32).any(|h| secret_eq_bytes(h, &hash)))
}

/// Equality of two secrets in time that depends on their lengths only.
pub(crate) fn secret_eq(a: &str, b: &str) -> bool {
    secret_eq_bytes(a.as_bytes(), b.as_bytes())
}

fn secret_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// An OAuth error code a revocation may keep: RFC 6749's characters, at most 64.
///
/// # Errors
/// [`Error::InvalidInput`] (`error`).
pub(crate) fn reason(error: &str) -> Result<()> {
    crate::validate::error_code("error", error, MAX_REASON_LEN)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
