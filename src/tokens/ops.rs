//! Each token operation's transaction body, written once over the row interface
//! ([`TokenTx`]): read the row, ask [`rules`] for a verdict, carry it out with a guarded
//! update. The public methods in `store/` validate their input and hand one of these to the
//! engine's `write` or `read`; no body here knows which engine runs it.

use std::time::Duration;

use super::refresh::Wait;
use super::rules::{self, Begin, Finish, Reject, Save};
use super::{Finished, Generation, Rejected, Saved, TokenResponse, TokenSet, TokenSetInfo};
use crate::error::{Error, Result, StorageError};
use crate::flow::tx::Outcome;
use crate::tokens::tx::{LeaseRow, NewTokens, TokenRow, TokenTx, TokenWatch};

/// Which set: a server id and a client id, validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<'a> {
    pub server_id: &'a str,
    pub client_id: &'a str,
}

/// The row of `key`, which must really carry that key: an engine follows a damaged index
/// entry to whatever row it names, and a wrong row would hand out another set's tokens.
fn find(tx: &mut dyn TokenTx, key: Key<'_>) -> Result<Option<TokenRow>> {
    let row = tx.token_row(key.server_id, key.client_id)?;
    check_key(&row, key)?;
    Ok(row)
}

/// [`find`]'s check on a row found by `key`.
fn check_key(row: &Option<TokenRow>, key: Key<'_>) -> Result<()> {
    match row {
        Some(r) if r.server_id != key.server_id || r.client_id != key.client_id => Err(
            Error::corrupt("the token_sets key index points at another set"),
        ),
        _ => Ok(()),
    }
}

/// A guarded update must change exactly the one row it names: the row was read in this
/// transaction, so anything else means the engine let another writer change it.
fn changed_one(n: u64, what: &'static str) -> Result<()> {
    if n == 1 {
        Ok(())
    } else {
        Err(row_changed(what))
    }
}

/// The row read in this transaction changed under it; the transaction is rolled back.
fn row_changed(what: &'static str) -> Error {
    Error::Storage(StorageError::message(format!(
        "the token_sets row changed during the transaction that read it ({what} changed no \
         row); nothing was changed, retry"
    )))
}

/// What `response` writes, received at `now`.
fn new_tokens(response: &TokenResponse, now: i64) -> NewTokens<'_> {
    NewTokens {
        access_token: response.access_token.secret(),
        refresh_token: response.refresh_token.as_ref().map(|t| t.secret()),
        token_type: &response.token_type,
        scope: response.scope.as_deref(),
        issuer: response.issuer.as_deref(),
        extra: response.extra.as_deref(),
        expires_at: rules::expires_at(now, response.expires_in),
    }
}

/// `save_tokens`: inserts the set of a new key, or saves over the stored one by
/// [`rules::save`].
pub(crate) fn save(
    tx: &mut dyn TokenTx,
    key: Key<'_>,
    response: &TokenResponse,
) -> Result<Outcome<Saved>> {
    let now = tx.now();
    let new = new_tokens(response, now);
    if tx.insert_tokens(key.server_id, key.client_id, &new, now)? {
        return Ok(Outcome::Done(Saved::Stored(Generation::from_row(1))));
    }
    let Some(row) = find(tx, key)? else {
        // The key existed at the insert and is gone at the read: a delete committed between
        // the two statements (PostgreSQL's READ COMMITTED).
        return Err(row_changed("token insert"));
    };
    let generation = Generation::from_row(row.generation);
    match rules::save(&row, &new) {
        Save::Stale => Ok(Outcome::Done(Saved::Stale(generation))),
        Save::Same { set_issuer } => {
            if let (true, Some(issuer)) = (set_issuer, new.issuer) {
                changed_one(
                    tx.set_token_issuer(row.id, row.generation, issuer)?,
                    "issuer",
                )?;
            }
            Ok(Outcome::Done(Saved::Unchanged(generation)))
        }
        Save::Replace => {
            let replaced = rules::replaced_after(
                row.replaced.as_deref(),
                row.refresh_token.as_deref(),
                new.refresh_token,
            );
            changed_one(
                tx.replace_tokens(row.id, row.generation, &new, replaced.as_deref(), now)?,
                "token save",
            )?;
            Ok(Outcome::Done(Saved::Stored(Generation::from_row(
                row.generation + 1,
            ))))
        }
    }
}

/// The clock and the row of `key`, read in one read transaction: what [`load`] judges
/// (PostgreSQL reads both with one statement instead).
pub(crate) fn read_row(tx: &mut dyn TokenTx, key: Key<'_>) -> Result<(i64, Option<TokenRow>)> {
    Ok((tx.now(), tx.token_row(key.server_id, key.client_id)?))
}

/// `tokens`, read-only: the live set of `key`, from the clock and the row the engine read
/// (`Engine::token_row`).
pub(crate) fn load(looked: (i64, Option<TokenRow>), key: Key<'_>) -> Result<Option<TokenSet>> {
    let (now, row) = looked;
    check_key(&row, key)?;
    Ok(row.and_then(|row| TokenSet::from_row(row, now)))
}

/// The lease a `begin` takes, when it may: its holder id, owner and length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseAsk<'a> {
    pub holder: &'a str,
    pub owner: &'a str,
    pub lease: Duration,
}

/// A lease taken: what the caller sends and later names.
pub(crate) struct Leased {
    pub generation: i64,
    pub refresh_token: String,
    pub scope: Option<String>,
    pub took_over: bool,
}

/// What a `begin` body found.
pub(crate) enum Began {
    /// A newer set than the caller saw.
    Newer(TokenSet),
    /// The lease, taken in this transaction.
    Leased(Leased),
    /// Another holder's lease runs.
    Wait(Wait),
    /// The caller may lease (a read-only look, which takes nothing).
    WouldLease,
}

/// `begin_refresh`: the verdict of [`rules::begin_refresh`] on the row of `key`; with `ask`
/// (a write transaction) a `Lease` verdict takes the lease, without it (a read transaction,
/// which never takes SQLite's write lock) it reports [`Began::WouldLease`].
pub(crate) fn begin(
    tx: &mut dyn TokenTx,
    key: Key<'_>,
    seen: Option<i64>,
    ask: Option<LeaseAsk<'_>>,
) -> Result<Outcome<Began>> {
    let now = tx.now();
    let Some(row) = find(tx, key)? else {
        return Err(Error::NoTokens);
    };
    let verdict = rules::begin_refresh(Some(&row.snapshot()), seen, now);
    match verdict {
        Begin::Refuse(e) => Err(e),
        Begin::Newer => Ok(Outcome::Done(Began::Newer(live(Some(row), now)?))),
        Begin::Wait { until } => Ok(Outcome::Done(Began::Wait(Wait {
            server_id: row.server_id.clone(),
            client_id: row.client_id.clone(),
            seen: Generation::from_row(row.generation),
            lease_left: Duration::from_millis(u64::try_from(until - now).unwrap_or(0)),
            watch: watch_of(&row),
        }))),
        Begin::Lease { took_over } => {
            let Some(ask) = ask else {
                return Ok(Outcome::Done(Began::WouldLease));
            };
            let lease = LeaseRow {
                holder: ask.holder,
                owner: ask.owner,
                expires_at: rules::lease_expiry(now, ask.lease)?,
            };
            changed_one(tx.take_lease(row.id, row.generation, &lease, now)?, "lease")?;
            let refresh_token = row.refresh_token.ok_or(Error::corrupt(
                "a leased token_sets row has no refresh token",
            ))?;
            Ok(Outcome::Done(Began::Leased(Leased {
                generation: row.generation,
                refresh_token,
                scope: row.scope,
                took_over,
            })))
        }
    }
}

/// What a waiter compares, from a row.
fn watch_of(row: &TokenRow) -> TokenWatch {
    TokenWatch {
        generation: row.generation,
        revoked: row.revoked_at.is_some(),
        lease_holder: row.lease_holder.clone(),
        lease_expires_at: row.lease_expires_at,
    }
}

/// `finish_refresh`: saves `response` over the generation `leased` if it is still stored
/// (compare-and-swap), or hands out the newer stored set. `presented` is the refresh token
/// the lease handed out: kept when the response has none (RFC 6749, section 6), and
/// remembered as replaced when it has another. The response's missing scope, issuer and
/// `extra` keep the stored ones.
pub(crate) fn finish(
    tx: &mut dyn TokenTx,
    key: Key<'_>,
    leased: i64,
    presented: &str,
    response: &TokenResponse,
) -> Result<Outcome<Finished>> {
    let now = tx.now();
    let row = find(tx, key)?;
    let verdict = rules::finish(row.as_ref().map(TokenRow::snapshot).as_ref(), leased);
    match verdict {
        Finish::Gone(e) => Err(e),
        Finish::Superseded => Ok(Outcome::Done(Finished::Superseded(live(row, now)?))),
        Finish::Save => {
            let row = row.ok_or(Error::NoTokens)?;
            let refresh_token = response
                .refresh_token
                .as_ref()
                .map_or(presented, |t| t.secret());
            let new = NewTokens {
                access_token: response.access_token.secret(),
                refresh_token: Some(refresh_token),
                token_type: &response.token_type,
                scope: response.scope.as_deref().or(row.scope.as_deref()),
                issuer: response.issuer.as_deref().or(row.issuer.as_deref()),
                extra: response.extra.as_deref().or(row.extra.as_deref()),
                expires_at: rules::expires_at(now, response.expires_in),
            };
            let replaced =
                rules::replaced_after(row.replaced.as_deref(), Some(presented), new.refresh_token);
            changed_one(
                tx.replace_tokens(row.id, leased, &new, replaced.as_deref(), now)?,
                "refresh save",
            )?;
            let set = TokenSet {
                server_id: row.server_id.clone(),
                client_id: row.client_id.clone(),
                generation: Generation::from_row(leased + 1),
                access_token: super::AccessToken(new.access_token.to_owned()),
                refresh_token: Some(super::stored_refresh_token(refresh_token.to_owned())),
                token_type: new.token_type.to_owned(),
                scope: new.scope.map(str::to_owned),
                issuer: new.issuer.map(str::to_owned),
                extra: new.extra.map(str::to_owned),
                received_at: now,
                expires_at: new.expires_at,
                read_at: now,
            };
            Ok(Outcome::Done(Finished::Saved(set)))
        }
    }
}

/// The set of a row that must be live.
fn live(row: Option<TokenRow>, now: i64) -> Result<TokenSet> {
    row.and_then(|r| TokenSet::from_row(r, now))
        .ok_or(Error::corrupt("a live token_sets row has no access token"))
}

/// `reject_refresh` / `reject_tokens`: the server refused the refresh token of `generation`;
/// revokes the set only while that generation is stored (rule 3).
pub(crate) fn reject(
    tx: &mut dyn TokenTx,
    key: Key<'_>,
    generation: i64,
    reason: &str,
) -> Result<Outcome<Rejected>> {
    let now = tx.now();
    let row = find(tx, key)?;
    let verdict = rules::reject(row.as_ref().map(TokenRow::snapshot).as_ref(), generation);
    match verdict {
        Reject::Gone => Ok(Outcome::Done(Rejected::Gone)),
        Reject::Stale => Ok(Outcome::Done(Rejected::Stale(live(row, now)?))),
        Reject::Revoke => {
            let row = row.ok_or(Error::NoTokens)?;
            changed_one(
                tx.revoke_tokens(row.id, generation, reason, now)?,
                "revocation",
            )?;
            Ok(Outcome::Done(Rejected::Revoked))
        }
    }
}

/// `release_refresh`: clears the lease if `holder` still holds it; `false` when it did not
/// (it expired and was taken over, or a save cleared it).
pub(crate) fn release(tx: &mut dyn TokenTx, key: Key<'_>, holder: &str) -> Result<Outcome<bool>> {
    let row = find(tx, key)?;
    let Some(row) = row.filter(|r| rules::holds_lease(Some(&r.snapshot()), holder)) else {
        return Ok(Outcome::Done(false));
    };
    changed_one(tx.clear_lease(row.id, holder)?, "lease release")?;
    Ok(Outcome::Done(true))
}

/// What a waiter compares, read-only, with the transaction's time.
pub(crate) fn watch(tx: &mut dyn TokenTx, key: Key<'_>) -> Result<(i64, Option<TokenWatch>)> {
    Ok((tx.now(), tx.token_watch(key.server_id, key.client_id)?))
}

/// `forget_tokens`: deletes the sets of a server (of one client, when given).
pub(crate) fn forget(
    tx: &mut dyn TokenTx,
    server_id: &str,
    client_id: Option<&str>,
) -> Result<Outcome<u64>> {
    Ok(Outcome::Done(tx.delete_tokens(server_id, client_id)?))
}

/// `list_token_sets`, read-only.
pub(crate) fn list(tx: &mut dyn TokenTx, server_id: Option<&str>) -> Result<Vec<TokenSetInfo>> {
    Ok(tx
        .list_tokens(server_id)?
        .into_iter()
        .map(TokenSetInfo::from)
        .collect())
}
