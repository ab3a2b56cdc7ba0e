//! The flow operations of [`Store`] on a flow known by its state: begin, check, consume. Each
//! validates its input, then runs one transaction body of [`ops`](crate::flow::ops) on the
//! engine.

#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::flow::ops::{self, Looked};
use crate::flow::row::NewFlow;
use crate::flow::tx::Wipe;
use crate::flow::{BeginRequest, ConsumedFlow, Flow, FlowInfo, Status};
use crate::pkce::{self, CodeVerifier, State};
use crate::store::Store;
use crate::validate;

impl Store {
    /// Begins a flow: one transaction stores a `pending` row with a fresh state and S256 PKCE
    /// pair (or the ones the request carries).
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, Status};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(
    ///     BeginRequest::new("https://mcp.example.com")
    ///         .client_id("my-app")
    ///         .redirect_uri("http://127.0.0.1:33418/callback"),
    /// )?;
    /// assert_eq!(flow.info().status, Status::Pending);
    /// assert_eq!(flow.state().secret().len(), 43);
    /// let url = flow.authorization_url("https://auth.example.com/authorize")?;
    /// assert!(url.as_str().contains("&code_challenge_method=S256"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad field (nothing stored), [`Error::DuplicateState`] or
    /// [`Error::DuplicateChallenge`] for a caller-supplied state or verifier already in use,
    /// and the storage errors ([`Error::Busy`], [`Error::StorageFull`], ...).
    pub fn begin(&self, request: BeginRequest) -> Result<Flow> {
        request.validate()?;
        let ttl = validate::ttl(request.ttl.unwrap_or(self.default_ttl()))?;
        let BeginRequest {
            server_id,
            client_id,
            redirect_uri,
            issuer,
            resource,
            scope,
            state,
            verifier,
            require_issuer,
            client_created_at,
            ..
        } = request;
        let state = state.unwrap_or_else(State::generate);
        let generated_verifier = verifier.is_none();
        let verifier = verifier.unwrap_or_else(CodeVerifier::generate);
        let challenge = verifier.challenge();
        let key = state.key();
        let new = NewFlow {
            state_key: Some(&key),
            code_challenge: challenge.as_str(),
            verifier: verifier.secret(),
            server_id: &server_id,
            client_id: client_id.as_deref(),
            redirect_uri: redirect_uri.as_deref(),
            issuer: issuer.as_deref(),
            resource: resource.as_deref(),
            scope: scope.as_deref(),
            status: Status::Pending,
            require_issuer,
            client_created_at,
            generated_verifier,
        };
        let (created_at, expires_at) = self.engine().insert(&new, ttl)?;
        Ok(Flow {
            state,
            challenge,
            info: FlowInfo {
                server_id,
                client_id,
                status: Status::Pending,
                redirect_uri,
                issuer,
                resource,
                scope,
                created_at,
                expires_at,
            },
        })
    }

    /// Validates a state without consuming it: would [`Store::consume`] succeed now? An expired
    /// flow is removed and reported expired.
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, Error, Status};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(BeginRequest::new("srv"))?;
    /// assert_eq!(store.check(flow.state().secret())?.status, Status::Pending);
    /// assert!(matches!(store.check("a-forged-state"), Err(Error::UnknownState)));
    /// // Checking consumes nothing.
    /// store.consume(flow.state().secret())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`), [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyConsumed`] (consumed for a login), [`Error::FlowEnded`] (ended without
    /// one), storage errors.
    pub fn check(&self, state: &str) -> Result<FlowInfo> {
        pkce::validate_state(state)?;
        let key = pkce::state_key(state);
        match ops::check(self.engine().by_state(&key)?, &key)? {
            Looked::Found(info) => Ok(info),
            Looked::Expired => self
                .engine()
                .write(Wipe::Secret, |tx| ops::remove_expired(tx, &key)),
        }
    }

    /// Consumes the flow a callback's `state` names: in one transaction validates it, wipes the
    /// verifier, code and discovery state from the row, leaves a tombstone, and returns them.
    /// Exactly one caller across all processes gets `Ok` for a state.
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, Error};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(BeginRequest::new("srv"))?;
    /// let consumed = store.consume(flow.state().secret())?;
    /// assert_eq!(consumed.info.server_id, "srv");
    /// let _for_the_token_request = consumed.verifier.secret();
    /// // A replayed callback is told apart from a forged one.
    /// assert!(matches!(store.consume(flow.state().secret()), Err(Error::AlreadyConsumed)));
    /// assert!(matches!(store.consume("a-forged-state"), Err(Error::UnknownState)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`), [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyConsumed`] (a replay, distinct from unknown), [`Error::FlowEnded`] (the
    /// flow was ended without a login: a server mismatch, or a failed callback already
    /// consumed; start the login again),
    /// [`Error::AuthorizationFailed`] (the callback carried an error; the flow is now consumed),
    /// storage errors.
    pub fn consume(&self, state: &str) -> Result<ConsumedFlow> {
        self.consume_inner(state, None)
    }

    /// [`Store::consume`], but only for a flow begun for `server_id`. For another server's
    /// flow the flow is ended (verifier wiped, nothing returned): a callback for the wrong
    /// server means the response cannot be trusted (mix-up).
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, Error};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(BeginRequest::new("https://a.example.com"))?;
    /// let state = flow.state().secret();
    /// let wrong = store.consume_for(state, "https://b.example.com");
    /// assert!(matches!(wrong, Err(Error::ServerMismatch { .. })));
    /// // The flow is ended: not even its own server gets the verifier now.
    /// let late = store.consume_for(state, "https://a.example.com");
    /// assert!(matches!(late, Err(Error::FlowEnded { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`Store::consume`], plus [`Error::ServerMismatch`] and
    /// [`Error::InvalidInput`] (`server_id`).
    pub fn consume_for(&self, state: &str, server_id: &str) -> Result<ConsumedFlow> {
        validate::id("server_id", server_id)?;
        self.consume_inner(state, Some(server_id))
    }

    fn consume_inner(&self, state: &str, expect: Option<&str>) -> Result<ConsumedFlow> {
        pkce::validate_state(state)?;
        let key = pkce::state_key(state);
        ops::consume(
            &mut |step| self.engine().step(Wipe::Secret, step),
            &key,
            expect,
        )
    }
}
