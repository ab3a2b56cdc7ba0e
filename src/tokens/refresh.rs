//! The values of a refresh: what the caller saw, the options, the lease, the outcomes.

use std::fmt;
use std::time::{Duration, Instant};

use super::{Generation, RefreshToken, TokenResponse, TokenSet};
use crate::error::{Error, Result};
use crate::tokens::tx::TokenWatch;

/// The generation a refresh is begun against: the set whose access token the caller found
/// expired or refused. If the store holds a newer one, the caller gets it and nothing is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The caller saw this generation.
    Generation(Generation),
    /// The caller wants whatever is stored refreshed now (it saw no particular set). While
    /// another process refreshes, the caller waits for that refresh and takes its result
    /// instead of refreshing a second time.
    Current,
}

impl From<Generation> for Seen {
    fn from(generation: Generation) -> Self {
        Seen::Generation(generation)
    }
}

impl From<&TokenSet> for Seen {
    fn from(set: &TokenSet) -> Self {
        Seen::Generation(set.generation())
    }
}

impl Seen {
    pub(crate) fn as_row(self) -> Option<i64> {
        match self {
            Seen::Generation(g) => Some(g.as_row()),
            Seen::Current => None,
        }
    }
}

/// How a refresh waits and holds its lease. `Default`:
///
/// | option | default |
/// |---|---|
/// | [`lease`](Self::lease) | 30 seconds (rmcp's own HTTP timeout) |
/// | [`wait`](Self::wait) | 60 seconds (two leases) |
/// | [`poll_max`](Self::poll_max) | 25 ms |
/// | [`owner`](Self::owner) | none: the lease names the process id only |
///
/// Checked when a refresh uses them: a value out of bounds is [`Error::InvalidInput`] naming
/// the option.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    pub(crate) lease: Duration,
    pub(crate) wait: Duration,
    pub(crate) poll_max: Duration,
    pub(crate) owner: Option<String>,
}

impl Default for RefreshOptions {
    fn default() -> Self {
        RefreshOptions {
            lease: Duration::from_secs(30),
            wait: Duration::from_secs(60),
            poll_max: Duration::from_millis(25),
            owner: None,
        }
    }
}

impl RefreshOptions {
    /// How long a refresh may hold the set before another process may take over (1 second to
    /// 10 minutes). The holder's request must end before [`RefreshLease::deadline`]: the lease
    /// minus 2 seconds (or minus half, for a lease under 4 seconds).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long a refresh waits in all for other processes' refreshes before
    /// [`Error::RefreshWaitTimeout`] (at most one hour). One dead holder never makes anyone
    /// wait longer than its lease.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The longest pause between two looks at a set another process is refreshing (1 ms to
    /// 1 second). Pauses start at 5 ms and grow by half; a refresh finished in this process
    /// wakes its waiters at once.
    pub fn poll_max(mut self, poll_max: Duration) -> Self {
        self.poll_max = poll_max;
        self
    }

    /// A label for this program, shown with the process id while it holds a lease (`tokens
    /// list`): 1 to 100 printable characters, such as the tool's name.
    pub fn owner(mut self, label: impl Into<String>) -> Self {
        self.owner = Some(label.into());
        self
    }

    /// Checks every option.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the option out of bounds.
    pub(crate) fn validate(&self) -> Result<()> {
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&self.lease) {
            return Err(Error::invalid("lease", "must be 1 second to 10 minutes"));
        }
        if self.wait > Duration::from_secs(3600) {
            return Err(Error::invalid("wait", "must be at most one hour"));
        }
        if !(Duration::from_millis(1)..=Duration::from_secs(1)).contains(&self.poll_max) {
            return Err(Error::invalid("poll_max", "must be 1 ms to 1 second"));
        }
        if let Some(label) = &self.owner {
            if label.is_empty()
                || label.chars().count() > 100
                || label.chars().any(char::is_control)
            {
                return Err(Error::invalid(
                    "owner",
                    "must be 1 to 100 characters without control characters",
                ));
            }
        }
        Ok(())
    }
}

/// The right and the duty to refresh one generation of a set: taken by one process at a
/// time, in one transaction. End it with [`Store::finish_refresh`](crate::Store::finish_refresh),
/// [`reject_refresh`](crate::Store::reject_refresh) or
/// [`release_refresh`](crate::Store::release_refresh); dropped without one, it lasts until it
/// expires (its process may have died: then another takes over). Not `Clone`; its `Debug`
/// leaves the refresh token out.
pub struct RefreshLease {
    pub(crate) store_id: String,
    pub(crate) server_id: String,
    pub(crate) client_id: String,
    pub(crate) generation: Generation,
    pub(crate) holder: String,
    pub(crate) refresh_token: RefreshToken,
    pub(crate) scope: Option<String>,
    pub(crate) deadline: Instant,
    pub(crate) took_over: bool,
}

impl RefreshLease {
    /// The generation this lease refreshes.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The refresh token to send: the one stored with the leased generation, read in the
    /// transaction that took the lease. Send this one, never one you kept.
    pub fn refresh_token(&self) -> &RefreshToken {
        &self.refresh_token
    }

    /// The set's scope, if any (a refresh may ask for it again).
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// When the refresh request must have ended, by this process's monotonic clock: the
    /// lease minus a margin. Give the request this deadline (a timeout): a request still
    /// running after it could overlap with the next holder's.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether another process held this set's lease and let it expire (it died or stalled
    /// while refreshing). Its request may have reached the server: if the server answers
    /// `invalid_grant`, that is why ([`Error::TokensRevoked`] says so).
    pub fn took_over(&self) -> bool {
        self.took_over
    }

    /// The server id of the set.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// The client id of the set.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}

impl fmt::Debug for RefreshLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshLease")
            .field("server_id", &self.server_id)
            .field("client_id", &self.client_id)
            .field("generation", &self.generation)
            .field("refresh_token", &self.refresh_token)
            .field("took_over", &self.took_over)
            .finish_non_exhaustive()
    }
}

/// What [`Store::begin_refresh`](crate::Store::begin_refresh) (which waits) gives.
#[derive(Debug)]
pub enum Begun {
    /// The store holds a newer set than the caller saw: use it, send nothing.
    Newer(TokenSet),
    /// This caller refreshes: send [`RefreshLease::refresh_token`], then finish, reject or
    /// release the lease.
    Lease(RefreshLease),
}

/// What [`Store::try_begin_refresh`](crate::Store::try_begin_refresh) (which never waits)
/// gives.
#[derive(Debug)]
pub enum TryBegun {
    /// The store holds a newer set than the caller saw: use it, send nothing.
    Newer(TokenSet),
    /// This caller refreshes.
    Lease(RefreshLease),
    /// Another process is refreshing: wait ([`Store::wait_for_refresh`](crate::Store::wait_for_refresh),
    /// or a timer of your own), then try again with [`Wait::seen`].
    Wait(Wait),
}

/// Another process holds the lease: what to wait for.
#[derive(Debug, Clone)]
pub struct Wait {
    pub(crate) server_id: String,
    pub(crate) client_id: String,
    pub(crate) seen: Generation,
    pub(crate) lease_left: Duration,
    pub(crate) watch: TokenWatch,
}

impl Wait {
    /// What to try again with: the generation being refreshed, so that its refresh's result
    /// is taken instead of being refreshed again.
    pub fn seen(&self) -> Seen {
        Seen::Generation(self.seen)
    }

    /// How long the other process's lease had left when it was read: waiting longer than this
    /// is never needed (the lease can then be taken over).
    pub fn lease_left(&self) -> Duration {
        self.lease_left
    }
}

/// How a refresh ended when its response was saved.
#[derive(Debug)]
pub enum Finished {
    /// The response was saved over the leased generation: the new set.
    Saved(TokenSet),
    /// Someone saved a newer set meanwhile (a new login): the response was dropped, and this
    /// is the stored set to use.
    Superseded(TokenSet),
}

impl Finished {
    /// The set to use, either way.
    pub fn into_set(self) -> TokenSet {
        match self {
            Finished::Saved(set) | Finished::Superseded(set) => set,
        }
    }
}

/// What a refused refresh token did to the stored set.
#[derive(Debug)]
// Rare, and a boxed set would make every caller unbox it.
#[allow(clippy::large_enum_variant)]
pub enum Rejected {
    /// The refused generation was the stored one: the set is revoked (its tokens wiped), and
    /// the user must sign in again.
    Revoked,
    /// A newer set is stored: it was left alone, and here it is.
    Stale(TokenSet),
    /// No set is stored, or it was already revoked.
    Gone,
}

/// What [`Store::save_tokens`](crate::Store::save_tokens) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// The tokens were stored, as this generation.
    Stored(Generation),
    /// The same tokens were already stored (this generation); at most their issuer was added.
    Unchanged(Generation),
    /// The refresh token is one the stored set replaced: storing it again would put a token
    /// the server already rotated back into use. Nothing was written; this is the stored
    /// generation.
    Stale(Generation),
}

/// What a refresh's exchange (the caller's token request) produced, for
/// [`Store::refresh_with`](crate::Store::refresh_with).
#[derive(Debug)]
pub enum Exchange<E> {
    /// The server answered with tokens.
    Tokens(TokenResponse),
    /// The server refused the refresh token with this OAuth error (`invalid_grant`, ...): the
    /// set is revoked if the refused generation is still the stored one.
    Rejected(String),
    /// Anything else (a network error, a 5xx, a timeout): the lease is released at once and
    /// the set kept, for this caller or another to try again.
    Failed(E),
}

/// What [`Store::refresh_with`](crate::Store::refresh_with) produced.
#[derive(Debug)]
pub enum Refreshed<E> {
    /// This caller refreshed, and here is the new set.
    Refreshed(TokenSet),
    /// Another process refreshed (or a newer set was stored): nothing was sent, here is the
    /// set to use.
    Newer(TokenSet),
    /// The exchange failed; the lease was released and the set kept.
    Failed(E),
}

impl<E> Refreshed<E> {
    /// The set to use, or the exchange's error.
    pub fn into_result(self) -> std::result::Result<TokenSet, E> {
        match self {
            Refreshed::Refreshed(set) | Refreshed::Newer(set) => Ok(set),
            Refreshed::Failed(e) => Err(e),
        }
    }
}
