//! rmcp's `CredentialStore` over the store's token sets, with the refresh single-flight across
//! processes: the refresh guard is the store's lease, a refused refresh token clears the set
//! only while its generation is stored.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use ::rmcp::transport::auth::{
    AuthError, CredentialRefreshGuard, CredentialStore, StoredCredentials,
};
use async_trait::async_trait;

use super::convert::{stored_credentials, token_response};
use super::{blocking_with, credential_error};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::tokens::{
    Finished, Generation, RefreshLease, RefreshOptions, Saved, Seen, TokenSet, TryBegun,
};
use crate::validate;

/// What one `AuthorizationManager`'s refresh holds between rmcp's calls.
#[derive(Default)]
pub(super) struct State {
    /// The client id of the slot (bound, or learned from a save or a load).
    pub(super) client_id: Option<String>,
    /// The generation of the set `load` last handed out: what a refresh is begun against.
    pub(super) last_loaded: Option<Generation>,
    pub(super) pending: Pending,
    /// The wrapped HTTP client has carried a request of this manager.
    pub(super) attached: bool,
}

/// The refresh between `acquire_refresh_guard` and the guard's drop.
#[derive(Default)]
pub(super) enum Pending {
    /// No refresh (or it ended).
    #[default]
    None,
    /// This manager holds the lease; `seen` is the generation it began against.
    Lease {
        lease: RefreshLease,
        seen: Option<Generation>,
    },
    /// The lease is out with the wrapper's request.
    InFlight,
    /// A newer set than the manager saw is stored: the wrapper answers with it.
    Answer,
    /// The wrapper saved the refresh's response as this generation.
    Finished,
}

pub(super) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// rmcp's [`CredentialStore`] over a [`Store`]: the tokens of one MCP server (its
/// `server_id`) in the store's token sets, shared by every process that opens the store, and
/// their refresh made single-flight across those processes.
///
/// Give each `AuthorizationManager` its own adapter, and build the manager with the adapter's
/// [`http_client`](Self::http_client) so that its refresh requests go through it: then
/// `refresh_token` (and `get_access_token` on an expired token) in any number of processes
/// sends exactly one token request per generation. docs/refresh.md ("rmcp") says why the
/// HTTP client is needed and what happens without it.
///
/// - `acquire_refresh_guard` begins a refresh against the generation `load` last handed out:
///   the store's lease when no newer set is stored (waiting while another process holds it;
///   an expired lease is taken over). A newer set is handed to the wrapped HTTP client, which
///   answers rmcp's refresh request with it and sends nothing. Dropping the guard releases a
///   lease that was not used up.
/// - The wrapped HTTP client sends only the leased refresh token, saves the response
///   (compare-and-swap) before rmcp sees it, and bounds the request by the lease's deadline.
/// - `on_refresh_token_rejected` revokes the set only if the refused generation is still the
///   stored one; `clear` forgets the set; `save` stores a login's tokens (a new generation)
///   and is a no-op for tokens already stored.
///
/// Without [`with_client_id`](Self::with_client_id) the adapter is one slot per server id, as
/// rmcp's in-memory store is: `load` returns the server id's set whatever its client, and a
/// `save` for a new client id (a new registration) forgets the old client's set.
#[derive(Clone)]
pub struct RmcpCredentialStore {
    pub(super) store: Store,
    pub(super) server_id: String,
    bound: bool,
    pub(super) options: RefreshOptions,
    pub(super) state: Arc<Mutex<State>>,
}

impl fmt::Debug for RmcpCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RmcpCredentialStore")
            .field("server_id", &self.server_id)
            .field("client_id", &lock(&self.state).client_id)
            .field("store_id", &self.store.store_id())
            .finish_non_exhaustive()
    }
}

impl RmcpCredentialStore {
    /// An adapter for the tokens of the MCP server `server_id` (any stable name: its URL is a
    /// good one; `oauth-state-store tokens list` shows it).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`server_id`).
    pub fn new(store: Store, server_id: impl Into<String>) -> Result<Self> {
        let server_id = server_id.into();
        validate::id("server_id", &server_id)?;
        Ok(RmcpCredentialStore {
            store,
            server_id,
            bound: false,
            options: RefreshOptions::default(),
            state: Arc::new(Mutex::new(State::default())),
        })
    }

    /// Binds the adapter to one client id: it loads and saves that client's set only (a save
    /// for another client id is refused), so that several clients of one server id share a
    /// store.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`client_id`).
    pub fn with_client_id(self, client_id: impl Into<String>) -> Result<Self> {
        let client_id = client_id.into();
        validate::id("client_id", &client_id)?;
        lock(&self.state).client_id = Some(client_id);
        Ok(RmcpCredentialStore {
            bound: true,
            ..self
        })
    }

    /// How refreshes wait and hold their lease (default [`RefreshOptions::default`]: a 30 s
    /// lease, rmcp's own HTTP timeout).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming an option out of bounds.
    pub fn with_refresh_options(mut self, options: RefreshOptions) -> Result<Self> {
        options.validate()?;
        self.options = options;
        Ok(self)
    }

    /// The store the tokens live in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The server id of this adapter's set.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// The client id of the slot: bound, or learned from the last save or load.
    pub(super) fn client_id(&self) -> Option<String> {
        lock(&self.state).client_id.clone()
    }

    /// `load`, blocking: the slot's live set.
    fn load_blocking(&self) -> Result<Option<TokenSet>> {
        let client = match self.client_id() {
            Some(client) => client,
            None => match self.newest_client()? {
                Some(client) => client,
                None => return Ok(None),
            },
        };
        let set = self.store.tokens(&self.server_id, &client)?;
        let mut state = lock(&self.state);
        state.last_loaded = set.as_ref().map(TokenSet::generation);
        if set.is_some() {
            state.client_id = Some(client);
        }
        Ok(set)
    }

    /// The client of the server id's most recently saved live set.
    fn newest_client(&self) -> Result<Option<String>> {
        let sets = self.store.list_token_sets(Some(&self.server_id))?;
        Ok(sets
            .into_iter()
            .filter(|s| matches!(s.state, crate::tokens::TokenState::Live { .. }))
            .max_by_key(|s| s.received_at)
            .map(|s| s.client_id))
    }

    /// `save`, blocking.
    fn save_blocking(&self, credentials: StoredCredentials) -> Result<()> {
        let client = credentials.client_id.clone();
        validate::id("client_id", &client)?;
        if self.bound && self.client_id().as_deref() != Some(client.as_str()) {
            return Err(Error::invalid(
                "client_id",
                "differs from the client id this adapter is bound to",
            ));
        }
        let Some(response) = credentials.token_response.as_ref() else {
            // rmcp keeps a portable client id without tokens: the slot's tokens are gone.
            self.forget_others(&client, true)?;
            lock(&self.state).client_id = Some(client);
            return Ok(());
        };
        let tokens = token_response(response, &credentials)?;
        let pending = std::mem::take(&mut lock(&self.state).pending);
        match pending {
            Pending::Lease { lease, .. } if lease.client_id() == client => {
                // rmcp refreshed without the wrapper: saved over the leased generation only.
                let generation = match self.store.finish_refresh(lease, tokens)? {
                    Finished::Saved(set) | Finished::Superseded(set) => set.generation(),
                };
                lock(&self.state).last_loaded = Some(generation);
                lock(&self.state).pending = Pending::Finished;
            }
            other => {
                lock(&self.state).pending = other;
                match self.store.save_tokens(&self.server_id, &client, tokens)? {
                    Saved::Stored(g) | Saved::Unchanged(g) => {
                        lock(&self.state).last_loaded = Some(g);
                    }
                    Saved::Stale(_) => {}
                }
            }
        }
        self.forget_others(&client, false)?;
        lock(&self.state).client_id = Some(client);
        Ok(())
    }

    /// One slot per server id (unbound): forgets the sets of other clients of the server, and
    /// of `client` too when `also_client`.
    fn forget_others(&self, client: &str, also_client: bool) -> Result<()> {
        if self.bound {
            if also_client {
                self.store.forget_tokens(&self.server_id, Some(client))?;
            }
            return Ok(());
        }
        for set in self.store.list_token_sets(Some(&self.server_id))? {
            if also_client || set.client_id != client {
                self.store
                    .forget_tokens(&self.server_id, Some(&set.client_id))?;
            }
        }
        Ok(())
    }

    /// `clear`, blocking: the slot's sets are forgotten.
    fn clear_blocking(&self) -> Result<()> {
        match (self.bound, self.client_id()) {
            (true, Some(client)) => self.store.forget_tokens(&self.server_id, Some(&client)),
            _ => self.store.forget_tokens(&self.server_id, None),
        }
        .map(drop)
    }

    /// `acquire_refresh_guard`, blocking: takes the lease, or sets up the wrapper's answer
    /// with a newer set; `false` when there is nothing to refresh (rmcp's `load` and checks
    /// then say so).
    fn acquire_blocking(&self) -> Result<bool> {
        // rmcp acquires the guard before its first load: the slot's client may be unknown yet.
        let client = match self.client_id() {
            Some(client) => client,
            None => match self.newest_client()? {
                Some(client) => {
                    lock(&self.state).client_id = Some(client.clone());
                    client
                }
                None => return Ok(false),
            },
        };
        let seen = lock(&self.state).last_loaded;
        let started = Instant::now();
        let mut begin_with = seen.map_or(Seen::Current, Seen::Generation);
        loop {
            let begun =
                self.store
                    .try_begin_refresh(&self.server_id, &client, begin_with, &self.options);
            match begun {
                Ok(TryBegun::Lease(lease)) => {
                    lock(&self.state).pending = Pending::Lease { lease, seen };
                    return Ok(true);
                }
                Ok(TryBegun::Newer(_)) => {
                    let mut state = lock(&self.state);
                    if state.attached {
                        state.pending = Pending::Answer;
                        return Ok(true);
                    }
                    // Without the wrapper rmcp will send a request whatever: it must hold
                    // the lease of the generation it loads, so that it never races another.
                    begin_with = Seen::Current;
                }
                Ok(TryBegun::Wait(wait)) => {
                    if started.elapsed() >= self.options.wait {
                        return Err(Error::RefreshWaitTimeout {
                            waited: started.elapsed(),
                        });
                    }
                    self.store.wait_for_refresh(&wait, &self.options)?;
                    begin_with = wait.seen();
                }
                Err(Error::NoTokens | Error::TokensRevoked { .. } | Error::NoRefreshToken) => {
                    return Ok(false)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `on_refresh_token_rejected`, blocking: rule 3 for the lease's generation, or, without
    /// a lease, for the stored generation only if its refresh token is the refused one.
    fn rejected_blocking(&self, refused: Option<String>) -> Result<()> {
        let pending = std::mem::take(&mut lock(&self.state).pending);
        if let Pending::Lease { lease, .. } = pending {
            self.store.reject_refresh(lease, "invalid_grant")?;
            return Ok(());
        }
        let (Some(client), Some(refused)) = (self.client_id(), refused) else {
            return Ok(());
        };
        if let Some(set) = self.store.tokens(&self.server_id, &client)? {
            let same = set
                .refresh_token()
                .is_some_and(|t| crate::tokens::rules::secret_eq(t.secret(), &refused));
            if same {
                self.store.reject_tokens(
                    &self.server_id,
                    &client,
                    set.generation(),
                    "invalid_grant",
                )?;
            }
        }
        Ok(())
    }
}

/// The refresh guard: dropping it gives back a lease the refresh did not use up (its request
/// failed before it was sent, or rmcp stopped early). At once, on this thread: a process that
/// exits right after must not leave its lease to expire while others wait.
struct RefreshGuard {
    adapter: RmcpCredentialStore,
}

impl Drop for RefreshGuard {
    fn drop(&mut self) {
        let pending = std::mem::take(&mut lock(&self.adapter.state).pending);
        if let Pending::Lease { lease, .. } = pending {
            let _ = self.adapter.store.release_refresh(lease);
        }
    }
}

#[async_trait]
impl CredentialStore for RmcpCredentialStore {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        let this = self.clone();
        let set = blocking_with(move || this.load_blocking(), credential_error).await?;
        set.map(|s| stored_credentials(&s).map_err(credential_error))
            .transpose()
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        let this = self.clone();
        blocking_with(move || this.save_blocking(credentials), credential_error).await
    }

    async fn clear(&self) -> Result<(), AuthError> {
        let this = self.clone();
        blocking_with(move || this.clear_blocking(), credential_error).await
    }

    async fn on_refresh_token_rejected(
        &self,
        credentials: &StoredCredentials,
    ) -> Result<(), AuthError> {
        let refused = credentials
            .token_response
            .as_ref()
            .and_then(super::convert::refresh_token_of);
        let this = self.clone();
        blocking_with(move || this.rejected_blocking(refused), credential_error).await
    }

    async fn acquire_refresh_guard(&self) -> Result<Option<CredentialRefreshGuard>, AuthError> {
        let this = self.clone();
        let guarded = blocking_with(move || this.acquire_blocking(), credential_error).await?;
        Ok(guarded.then(|| {
            CredentialRefreshGuard::new(RefreshGuard {
                adapter: self.clone(),
            })
        }))
    }
}
