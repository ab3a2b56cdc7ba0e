//! The Rust MCP SDK's `StateStore` over a [`Store`] (cargo feature `rmcp`).
//!
//! `rmcp`'s `AuthorizationManager` keeps each pending authorization in a
//! [`StateStore`](rmcp::transport::auth::StateStore); its own store lives in one process's
//! memory and never expires anything. [`RmcpStateStore`] keeps them as rows of the shared file
//! instead, so the process that receives the callback need not be the one that built the
//! authorization URL.

use std::fmt;

use crate::error::{Error, Result};
use crate::flow::BeginRequest;
use crate::pkce::{CodeVerifier, State};
use crate::store::Store;
use crate::validate;
use ::rmcp::transport::auth::{AuthError, StateStore, StoredAuthorizationState};
use async_trait::async_trait;

mod convert;
mod credentials;
mod refresh_http;

pub use credentials::RmcpCredentialStore;

/// A `rmcp` [`StateStore`] that keeps one MCP server's pending authorizations in a [`Store`].
///
/// Give each MCP server its own adapter (the `server_id` is the row's `server_id` column, as
/// `oauth-state-store list` shows it); every process that opens the same file with the same
/// server id shares the flows.
///
/// # What each call does
///
/// - **`save(csrf, state)`** begins a `pending` flow keyed by SHA-256 of the CSRF token (the
///   token itself never reaches the disk), with every field of `StoredAuthorizationState`:
///   the PKCE verifier, the expected issuer, `require_issuer`, the requested scopes (in order,
///   duplicates kept; stored space-separated in `scope`) and `created_at` exactly as given
///   (column `client_created_at`), and the adapter's redirect URI when it has one
///   ([`RmcpStateStore::with_redirect_uri`]). The flow expires after the store's TTL, measured by the
///   store's clock. One transaction: once `save` returns, every process sees the flow.
/// - **A second `save` under the same CSRF token is refused**, with
///   `AuthError::AuthorizationFailed` ("another authorization attempt already uses this
///   state"), and changes nothing, as long as the first flow's row exists (pending,
///   completed, failed or consumed, until it expires). `rmcp`'s in-memory store overwrites
///   instead; this one does not, on purpose. The token already went out in an authorization
///   URL whose code challenge is the first verifier's, so a replacement could only make that
///   login's token exchange fail with a verifier that does not match (the swap this crate
///   exists to prevent), point the flow at another server's adapter, or, over a completed or
///   consumed flow, make a replayed callback for it usable again. `rmcp` draws a fresh token
///   for every authorization URL, so only a bug or a forged call saves one twice; a retry
///   after an error starts a new login (`get_authorization_url`).
/// - **`load(csrf)`** returns the flow while it is pending (or completed by a callback
///   listener) and unexpired, **without** consuming it. An expired flow is removed (through
///   the same wiping write as every other removal) and reported as absent; a consumed, failed
///   or unknown one, or one begun for another server id, is absent too. The row gets the
///   damage checks of a consume (its key matches, its verifier hashes to its challenge): a
///   damaged row is an error, never a wrong verifier.
/// - **`delete(csrf)`** *consumes* the flow ([`Store::consume_for`]): one `BEGIN IMMEDIATE`
///   transaction wipes the verifier and leaves a tombstone. Exactly one caller across all
///   processes gets `Ok`; every later or concurrent caller gets an `Err`, as does a delete of
///   an unknown or expired flow. (The in-memory store ignores such deletes; this one must
///   not, see below.)
///
/// # The multi-process guarantee
///
/// `rmcp`'s `exchange_code_for_token` calls `load`, checks the callback's `iss`, then calls
/// `delete` and propagates its error with `?` **before** it sends the token request. So the
/// consume inside `delete` is the arbiter, and with this adapter:
///
/// - **The verifier is sent at most once.** When two processes handle callbacks for the same
///   state at once, both `load`s may succeed (`load` is a read and claims nothing), but only
///   one `delete` wins; the other process's exchange fails with
///   `AuthError::AuthorizationFailed("... already used (a duplicate or replayed callback) ...")`
///   and never makes a token request. A process that arrives after the winner's `delete`
///   already fails at `load` (`None`, which `rmcp` reports as "Authorization state not found").
/// - **A wrong `iss` does not burn the flow**: that check runs between `load` and `delete`, so
///   the legitimate callback can still complete it.
/// - What is *not* guaranteed: the losing process has read the verifier into its memory (it
///   drops it unused); and a winner whose token request then fails has consumed the flow, so
///   the login must be started again (as with the in-memory store).
/// - Same host only: SQLite's WAL mode needs shared memory between the processes.
///
/// # Limits on what `rmcp` hands over
///
/// `save` refuses, with an error and without storing anything, a CSRF token that is not 1–512
/// printable ASCII characters, a verifier that is not 43–128 RFC 7636 characters, an issuer
/// that is not an `https` URL (or `http` on loopback), a requested scope that is not one
/// RFC 6749 scope token, `created_at` past `i64::MAX`, and a `csrf_token` argument that
/// differs from `state.csrf_token`. `rmcp` itself generates values well inside these limits.
///
/// Blocking SQLite work runs on tokio's blocking thread pool (`spawn_blocking`) when called
/// inside a tokio runtime, and inline otherwise.
///
/// ```no_run
/// use oauth_state_store::{RmcpStateStore, Store};
/// # async fn demo(manager: &mut rmcp::transport::auth::AuthorizationManager) -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::open("/home/me/.local/state/oauth-state-store/flows.db")?;
/// manager.set_state_store(RmcpStateStore::new(store, "https://mcp.example.com/mcp")?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RmcpStateStore {
    store: Store,
    server_id: String,
    redirect_uri: Option<String>,
}

impl fmt::Debug for RmcpStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RmcpStateStore")
            .field("server_id", &self.server_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("store_id", &self.store.store_id())
            .finish()
    }
}

impl RmcpStateStore {
    /// An adapter for the MCP server `server_id` (any stable name: its URL is a good one).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`server_id`) unless it is 1–512 bytes without control
    /// characters.
    pub fn new(store: Store, server_id: impl Into<String>) -> Result<Self> {
        let server_id = server_id.into();
        validate::id("server_id", &server_id)?;
        Ok(RmcpStateStore {
            store,
            server_id,
            redirect_uri: None,
        })
    }

    /// The redirect URI every flow this adapter saves expects its callback at: give it the one
    /// `rmcp`'s client is configured with (`OAuthClientConfig`'s `redirect_uri`). A
    /// [`LoopbackCallback`] (feature `listener`, in any process) then knows the flow
    /// waits for it: its listener does not stop for idleness while the flow is pending, and
    /// refuses a callback for the flow that arrives at another address.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use oauth_state_store::{ListenerOptions, LoopbackCallback, RmcpStateStore, Store};
    /// # async fn demo(manager: &mut rmcp::transport::auth::AuthorizationManager) -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Store::open_default()?;
    /// let callback = LoopbackCallback::attach(&store, ListenerOptions::default().port(33418))?;
    /// let adapter = RmcpStateStore::new(store, "https://mcp.example.com/mcp")?
    ///     .with_redirect_uri(callback.redirect_uri())?;
    /// manager.set_state_store(adapter);
    /// let url = manager.get_authorization_url(&[]).await?;
    /// // ... open `url` in the browser; `state` is its `state` parameter ...
    /// # let state = "";
    /// let recorded = callback.wait_for_code(state, Duration::from_secs(300))?;
    /// // rmcp loads the flow, consumes it (its `delete`) and only then sends the token request.
    /// manager
    ///     .exchange_code_for_token_with_issuer(
    ///         recorded.code.secret(),
    ///         state,
    ///         recorded.issuer.as_deref(),
    ///     )
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`redirect_uri`) unless RFC 8252 allows it: `https`, plain
    /// `http` only on a loopback host, or a reverse-domain private scheme; no fragment (the
    /// rule [`Store::begin`] applies to [`BeginRequest::redirect_uri`]).
    ///
    #[cfg_attr(
        feature = "listener",
        doc = "[`LoopbackCallback`]: crate::LoopbackCallback"
    )]
    #[cfg_attr(
        not(feature = "listener"),
        doc = concat!("[`LoopbackCallback`]: https://docs.rs/oauth-state-store/", env!("CARGO_PKG_VERSION"), "/oauth_state_store/struct.LoopbackCallback.html")
    )]
    pub fn with_redirect_uri(mut self, redirect_uri: impl Into<String>) -> Result<Self> {
        let redirect_uri = redirect_uri.into();
        validate::redirect_uri(&redirect_uri)?;
        self.redirect_uri = Some(redirect_uri);
        Ok(self)
    }

    /// The redirect URI this adapter's flows expect their callback at, if one was given.
    pub fn redirect_uri(&self) -> Option<&str> {
        self.redirect_uri.as_deref()
    }

    /// The store the flows live in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The server id this adapter's flows carry.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// The [`BeginRequest`] that stores `state` under `csrf_token`, after checking every field.
    fn request(&self, csrf_token: &str, state: StoredAuthorizationState) -> Result<BeginRequest> {
        if state.csrf_token != csrf_token {
            return Err(Error::invalid(
                "csrf_token",
                "differs from the csrf_token of the state saved under it",
            ));
        }
        for scope in &state.requested_scopes {
            if scope.contains(' ') || validate::scope(scope).is_err() {
                return Err(Error::invalid(
                    "requested_scopes",
                    "each requested scope must be one RFC 6749 scope token",
                ));
            }
        }
        let created_at = i64::try_from(state.created_at).map_err(|_| {
            Error::invalid("created_at", "is past the largest time the store can keep")
        })?;
        let mut request = BeginRequest::new(self.server_id.clone())
            .state(State::new(csrf_token)?)
            .verifier(CodeVerifier::new(state.pkce_verifier)?)
            .require_issuer(state.require_issuer)
            .client_created_at(created_at);
        if let Some(uri) = &self.redirect_uri {
            request = request.redirect_uri(uri.clone());
        }
        if let Some(issuer) = state.expected_issuer {
            request = request.issuer(issuer);
        }
        if !state.requested_scopes.is_empty() {
            request = request.scope(state.requested_scopes.join(" "));
        }
        request.validate()?;
        Ok(request)
    }

    /// `save`, blocking.
    fn save_blocking(&self, request: BeginRequest) -> Result<()> {
        self.store.begin(request).map(drop)
    }

    /// `load`, blocking.
    fn load_blocking(&self, csrf_token: &str) -> Result<Option<StoredAuthorizationState>> {
        let Some(flow) = self.store.peek(csrf_token, &self.server_id)? else {
            return Ok(None);
        };
        // A flow begun without the adapter: the store's own time, in rmcp's seconds.
        let created_at = flow
            .client_created_at
            .unwrap_or(flow.info.created_at.div_euclid(1000));
        Ok(Some(stored_state(
            flow.verifier,
            csrf_token,
            flow.info.issuer,
            flow.require_issuer,
            flow.info.scope,
            created_at,
        )?))
    }

    /// `delete`, blocking: the consume that decides which process may use the verifier.
    fn delete_blocking(&self, csrf_token: &str) -> Result<()> {
        self.store
            .consume_for(csrf_token, &self.server_id)
            .map(drop)
    }
}

/// Builds rmcp's `#[non_exhaustive]` state: the required fields through serde, then every
/// field assigned, so a field rmcp adds with a default keeps it.
fn stored_state(
    verifier: CodeVerifier,
    csrf_token: &str,
    issuer: Option<String>,
    require_issuer: bool,
    scope: Option<String>,
    created_at: i64,
) -> Result<StoredAuthorizationState> {
    let created_at = u64::try_from(created_at).unwrap_or(0);
    let mut state: StoredAuthorizationState = serde_json::from_value(serde_json::json!({
        "pkce_verifier": "",
        "csrf_token": "",
        "created_at": created_at,
    }))
    .map_err(|_| Error::invalid("state", "rmcp's StoredAuthorizationState changed shape"))?;
    state.pkce_verifier = verifier.secret().to_owned();
    state.csrf_token = csrf_token.to_owned();
    state.expected_issuer = issuer;
    state.require_issuer = require_issuer;
    state.created_at = created_at;
    state.requested_scopes = scope
        .map(|s| s.split(' ').map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(state)
}

/// Runs blocking store work off the async executor when there is a tokio runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T, AuthError> {
    blocking_with(f, auth_error).await
}

/// [`blocking`], with the store's error mapped by `map`.
async fn blocking_with<T: Send + 'static, E>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
    map: impl FnOnce(Error) -> E,
) -> Result<T, E> {
    let result = match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(f).await.unwrap_or_else(|_| {
            Err(Error::Storage(crate::error::StorageError::message(
                "the OAuth state store's worker task failed".to_owned(),
            )))
        }),
        Err(_) => f(),
    };
    result.map_err(map)
}

/// Maps a store error to what rmcp's `CredentialStore` returns for a backend failure, so that
/// it stays distinct from the errors that require a new authorization. No message carries a
/// secret: the store's errors never do.
fn credential_error(e: Error) -> AuthError {
    AuthError::CredentialStoreError(format!("OAuth state store: {}", e.cause_chain()))
}

/// Maps a store error to the `AuthError` rmcp reports. Flow outcomes (unknown, expired,
/// replayed, wrong server, bad input) are authorization failures; the rest is internal. No
/// message carries a secret: the store's errors never do.
fn auth_error(e: Error) -> AuthError {
    let message = format!("OAuth state store: {}", e.cause_chain());
    match e {
        Error::UnknownState
        | Error::Expired
        | Error::AlreadyConsumed
        | Error::FlowEnded { .. }
        | Error::ServerMismatch { .. }
        | Error::AuthorizationFailed { .. }
        | Error::DuplicateState
        | Error::DuplicateChallenge
        | Error::InvalidInput { .. } => AuthError::AuthorizationFailed(message),
        _ => AuthError::InternalError(message),
    }
}

#[async_trait]
impl StateStore for RmcpStateStore {
    async fn save(
        &self,
        csrf_token: &str,
        state: StoredAuthorizationState,
    ) -> Result<(), AuthError> {
        let request = self.request(csrf_token, state).map_err(auth_error)?;
        let this = self.clone();
        blocking(move || this.save_blocking(request)).await
    }

    async fn load(&self, csrf_token: &str) -> Result<Option<StoredAuthorizationState>, AuthError> {
        let (this, csrf_token) = (self.clone(), csrf_token.to_owned());
        blocking(move || this.load_blocking(&csrf_token)).await
    }

    async fn delete(&self, csrf_token: &str) -> Result<(), AuthError> {
        let (this, csrf_token) = (self.clone(), csrf_token.to_owned());
        blocking(move || this.delete_blocking(&csrf_token)).await
    }
}
