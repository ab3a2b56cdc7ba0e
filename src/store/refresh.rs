//! The single-flight refresh of [`Store`]: begin against the generation the caller saw, lease,
//! finish (compare-and-swap), reject (rule 3), release, and the blocking `refresh_with` that
//! does all of it around the caller's token request.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::tokens::key;
use crate::error::{Error, Result, StorageError};
use crate::flow::tx::Wipe;
use crate::store::Store;
use crate::tokens::ops::{self, Began, Key, LeaseAsk};
use crate::tokens::wake::{self, Pauses};
use crate::tokens::{
    rules, Begun, Exchange, Finished, Generation, RefreshLease, RefreshOptions, Refreshed,
    Rejected, Seen, TokenResponse, TryBegun, Wait,
};

/// How many times a finish is tried when the store fails in a way a retry may mend (busy,
/// unavailable, a lost commit): the response holds a token the server may already have
/// rotated, and losing it would end the session.
const FINISH_TRIES: u32 = 3;

/// A fresh lease holder id: 16 random bytes, base64url (22 characters).
fn holder_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// Who holds a lease, as `tokens list` shows it.
fn owner(options: &RefreshOptions) -> String {
    match &options.owner {
        Some(label) => format!("pid {} ({label})", std::process::id()),
        None => format!("pid {}", std::process::id()),
    }
}

/// A failure a second try of the same write may not meet.
fn retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::Busy { .. }
            | Error::Unavailable { .. }
            | Error::CommitOutcomeUnknown { .. }
            | Error::Pool(_)
            | Error::Storage(_)
    )
}

/// Releases a lease the caller's exchange did not hand back (it panicked).
struct ReleaseOnDrop<'s> {
    store: &'s Store,
    lease: Option<RefreshLease>,
}

/// A begin body's result that took no lease: a newer set, or a wait.
fn not_leased(began: Began) -> Result<TryBegun> {
    match began {
        Began::Newer(set) => Ok(TryBegun::Newer(set)),
        Began::Wait(wait) => Ok(TryBegun::Wait(wait)),
        // A read body never leases, and a write body that may lease takes the lease.
        Began::Leased(_) | Began::WouldLease => Err(Error::Storage(StorageError::message(
            "a refresh's beginning found neither a lease nor a verdict".to_owned(),
        ))),
    }
}

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let _ = self.store.release_refresh(lease);
        }
    }
}

impl Store {
    /// Begins a refresh of the set of `server_id` and `client_id` against what the caller
    /// saw, without waiting: the newer set if one is stored ([`TryBegun::Newer`]: send
    /// nothing), the lease if no other process holds one ([`TryBegun::Lease`]: send its
    /// refresh token, then finish, reject or release it), or [`TryBegun::Wait`] while another
    /// process refreshes. A first look is a read, so processes that find a newer set or a
    /// running lease never queue for a write; only taking the lease writes, in one
    /// transaction that reads the row again.
    ///
    /// # Errors
    /// [`Error::NoTokens`], [`Error::TokensRevoked`] (sign in again),
    /// [`Error::NoRefreshToken`]; [`Error::InvalidInput`] (`server_id`, `client_id`, or an
    /// option); storage errors.
    pub fn try_begin_refresh(
        &self,
        server_id: &str,
        client_id: &str,
        seen: Seen,
        options: &RefreshOptions,
    ) -> Result<TryBegun> {
        let key = key(server_id, client_id)?;
        options.validate()?;
        let seen_row = seen.as_row();
        let looked = self
            .engine()
            .read(|tx| ops::begin(tx.tokens(), key, seen_row, None)?.into_result())?;
        if !matches!(looked, Began::WouldLease) {
            return not_leased(looked);
        }
        let (holder, owner) = (holder_id(), owner(options));
        let ask = LeaseAsk {
            holder: &holder,
            owner: &owner,
            lease: options.lease,
        };
        // The deadline counts from before the transaction that sets the lease's expiry.
        let asked_at = Instant::now();
        let began = self.engine().write(Wipe::Nothing, |tx| {
            ops::begin(tx.tokens(), key, seen_row, Some(ask))
        })?;
        match began {
            Began::Leased(l) => Ok(TryBegun::Lease(RefreshLease {
                store_id: self.store_id().to_owned(),
                server_id: server_id.to_owned(),
                client_id: client_id.to_owned(),
                generation: Generation::from_row(l.generation),
                holder,
                refresh_token: crate::tokens::stored_refresh_token(l.refresh_token),
                scope: l.scope,
                deadline: asked_at + rules::holder_deadline(options.lease),
                took_over: l.took_over,
            })),
            other => not_leased(other),
        }
    }

    /// Waits until the set a [`TryBegun::Wait`] was about changes (its holder finished,
    /// released or was refused, a new login was saved, the set was forgotten) or its lease
    /// runs out, at most `options.wait`; then try again with [`Wait::seen`]. Looks at the
    /// row (no secret read) after pauses from 5 ms up to `options.poll_max`; a change
    /// committed by this process ends the wait at once.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (an option); storage errors.
    pub fn wait_for_refresh(&self, wait: &Wait, options: &RefreshOptions) -> Result<()> {
        options.validate()?;
        let key = key(&wait.server_id, &wait.client_id)?;
        let until = Instant::now() + options.wait;
        self.wait_change(key, wait, &mut Pauses::new(options.poll_max), until)
    }

    fn wait_change(
        &self,
        key: Key<'_>,
        wait: &Wait,
        pauses: &mut Pauses,
        until: Instant,
    ) -> Result<()> {
        loop {
            let ticket = wake::ticket(self.store_id(), key.server_id, key.client_id);
            let (now, watch) = self.engine().read(|tx| ops::watch(tx.tokens(), key))?;
            if rules::changed(&wait.watch, watch.as_ref(), now) {
                return Ok(());
            }
            let lease_left = watch
                .and_then(|w| w.lease_expires_at)
                .map_or(Duration::ZERO, |at| {
                    Duration::from_millis(u64::try_from(at - now).unwrap_or(0))
                });
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let pause = pauses.next(lease_left).min(left);
            wake::sleep_unless_changed(
                self.store_id(),
                key.server_id,
                key.client_id,
                ticket,
                pause,
            );
        }
    }

    /// [`Store::try_begin_refresh`], waiting while other processes refresh: returns the newer
    /// set their refresh saved, or the lease once no one else holds it (a holder that died
    /// loses its lease when it expires, and this caller takes over). A caller that saw
    /// [`Seen::Current`] and waited takes the waited-for refresh's result; it does not refresh
    /// again.
    ///
    /// # Errors
    /// Those of [`Store::try_begin_refresh`], and [`Error::RefreshWaitTimeout`] after
    /// `options.wait`.
    pub fn begin_refresh(
        &self,
        server_id: &str,
        client_id: &str,
        seen: Seen,
        options: &RefreshOptions,
    ) -> Result<Begun> {
        let started = Instant::now();
        let mut seen = seen;
        let mut pauses = Pauses::new(options.poll_max);
        loop {
            match self.try_begin_refresh(server_id, client_id, seen, options)? {
                TryBegun::Newer(set) => return Ok(Begun::Newer(set)),
                TryBegun::Lease(lease) => return Ok(Begun::Lease(lease)),
                TryBegun::Wait(wait) => {
                    seen = wait.seen();
                    let waited = started.elapsed();
                    if waited >= options.wait {
                        return Err(Error::RefreshWaitTimeout { waited });
                    }
                    let key = key(server_id, client_id)?;
                    self.wait_change(key, &wait, &mut pauses, started + options.wait)?;
                }
            }
        }
    }

    /// The lease's key, if it was taken on this store.
    fn lease_key<'l>(&self, lease: &'l RefreshLease) -> Result<Key<'l>> {
        if lease.store_id != self.store_id() {
            return Err(Error::invalid(
                "lease",
                "was taken on another store than this one",
            ));
        }
        Ok(Key {
            server_id: &lease.server_id,
            client_id: &lease.client_id,
        })
    }

    /// Saves the token response of a refresh over the generation the lease refreshed, if it
    /// is still the stored one (compare-and-swap): [`Finished::Saved`] with the new set, its
    /// lease cleared, the old tokens wiped and the old refresh token never storable again; or
    /// [`Finished::Superseded`] with the newer set a login saved meanwhile (the response is
    /// dropped). A response without a refresh token keeps the presented one (RFC 6749,
    /// section 6); one without scope, issuer or `extra` keeps the set's. Call it as soon as
    /// the response arrives: until then the rotated refresh token exists only in this
    /// process. A storage failure a retry may mend is retried twice.
    ///
    /// # Errors
    /// [`Error::NoTokens`] (the set was forgotten meanwhile) and [`Error::TokensRevoked`]
    /// (refused meanwhile): nothing saved; [`Error::InvalidInput`] for a bad response field or
    /// a lease of another store; storage errors.
    pub fn finish_refresh(&self, lease: RefreshLease, tokens: TokenResponse) -> Result<Finished> {
        let key = self.lease_key(&lease)?;
        tokens.validate()?;
        let (leased, presented) = (lease.generation.as_row(), lease.refresh_token.secret());
        let mut tries = 0;
        let finished = loop {
            tries += 1;
            match self.engine().write(Wipe::Secret, |tx| {
                ops::finish(tx.tokens(), key, leased, presented, &tokens)
            }) {
                Err(e) if tries < FINISH_TRIES && retryable(&e) => continue,
                other => break other?,
            }
        };
        wake::changed(self.store_id(), key.server_id, key.client_id);
        Ok(finished)
    }

    /// The server refused the lease's refresh token with the OAuth error `error`
    /// (`invalid_grant`, or `invalid_client` / `unauthorized_client` when the client itself
    /// is refused): revokes the set if the leased generation is still the stored one (its
    /// tokens wiped: everyone must sign in again), and leaves a newer set alone
    /// ([`Rejected::Stale`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`error`, or a lease of another store); storage errors.
    pub fn reject_refresh(&self, lease: RefreshLease, error: &str) -> Result<Rejected> {
        self.lease_key(&lease)?;
        self.reject_tokens(&lease.server_id, &lease.client_id, lease.generation, error)
    }

    /// A refused refresh token without a lease (a token request this store did not arbitrate):
    /// revokes the set of `server_id` and `client_id` only if `generation`, the one whose
    /// refresh token was refused, is still the stored one. A stale refusal never touches a
    /// newer set: it gets it back instead ([`Rejected::Stale`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`server_id`, `client_id`, `error`); storage errors.
    pub fn reject_tokens(
        &self,
        server_id: &str,
        client_id: &str,
        generation: Generation,
        error: &str,
    ) -> Result<Rejected> {
        let key = key(server_id, client_id)?;
        rules::reason(error)?;
        let rejected = self.engine().write(Wipe::Secret, |tx| {
            ops::reject(tx.tokens(), key, generation.as_row(), error)
        })?;
        if matches!(rejected, Rejected::Revoked) {
            wake::changed(self.store_id(), server_id, client_id);
        }
        Ok(rejected)
    }

    /// Gives the lease back without saving (the request failed in a way that says nothing
    /// about the refresh token: a network error, a 5xx, a timeout): the set is kept, and the
    /// next caller (a waiter of any process, at once) takes the lease and sends the same
    /// refresh token. A lease that expired and was taken over meanwhile is left to its new
    /// holder.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (a lease of another store); storage errors.
    pub fn release_refresh(&self, lease: RefreshLease) -> Result<()> {
        let key = self.lease_key(&lease)?;
        let released = self.engine().write(Wipe::Nothing, |tx| {
            ops::release(tx.tokens(), key, &lease.holder)
        })?;
        if released {
            wake::changed(self.store_id(), key.server_id, key.client_id);
        }
        Ok(())
    }

    /// The whole single-flight refresh, blocking: [`begin_refresh`](Store::begin_refresh)
    /// against `seen` (waiting while other processes refresh), then, only if this caller holds
    /// the lease, `exchange` (the caller's token request, run outside any transaction, given
    /// the lease and its refresh token), then by its outcome:
    /// [`finish_refresh`](Store::finish_refresh),
    /// [`reject_refresh`](Store::reject_refresh) or
    /// [`release_refresh`](Store::release_refresh). In every process at once, exactly one
    /// exchange runs for a generation; the others get its result.
    ///
    /// The exchange should end before [`RefreshLease::deadline`]. If it panics, the lease is
    /// released as the panic unwinds.
    ///
    /// # Errors
    /// Those of [`Store::begin_refresh`]; [`Error::TokensRevoked`] when the server refused the
    /// current generation's refresh token (the set is revoked: sign in again); the errors of
    /// finishing. An exchange's own failure is [`Refreshed::Failed`], not an error.
    pub fn refresh_with<E>(
        &self,
        server_id: &str,
        client_id: &str,
        seen: Seen,
        options: &RefreshOptions,
        exchange: impl FnOnce(&RefreshLease) -> Exchange<E>,
    ) -> Result<Refreshed<E>> {
        let lease = match self.begin_refresh(server_id, client_id, seen, options)? {
            Begun::Newer(set) => return Ok(Refreshed::Newer(set)),
            Begun::Lease(lease) => lease,
        };
        let mut guard = ReleaseOnDrop {
            store: self,
            lease: Some(lease),
        };
        let outcome = exchange(guard.lease.as_ref().expect("held until the exchange ends"));
        let lease = guard.lease.take().expect("held until the exchange ends");
        match outcome {
            Exchange::Tokens(tokens) => Ok(match self.finish_refresh(lease, tokens)? {
                Finished::Saved(set) => Refreshed::Refreshed(set),
                Finished::Superseded(set) => Refreshed::Newer(set),
            }),
            Exchange::Rejected(error) => {
                if let Err(e) = rules::reason(&error) {
                    self.release_refresh(lease)?;
                    return Err(e);
                }
                let took_over = lease.took_over;
                match self.reject_refresh(lease, &error)? {
                    Rejected::Stale(set) => Ok(Refreshed::Newer(set)),
                    Rejected::Revoked => Err(Error::TokensRevoked {
                        reason: error,
                        after_lost_holder: took_over,
                    }),
                    Rejected::Gone => Err(Error::NoTokens),
                }
            }
            Exchange::Failed(e) => {
                self.release_refresh(lease)?;
                Ok(Refreshed::Failed(e))
            }
        }
    }
}
