//! The flow operations of [`Store`]: begin, save a verifier, promote, check, record a
//! callback, consume. Each validates its input, then runs one transaction body of
//! [`ops`](crate::flow::ops) on the engine.

use crate::backend::{Binding, CallbackResult, NewFlow, Wipe};
use crate::error::{Error, Result};
use crate::flow::ops::{self, CodeAndIssuer, Looked, Peeked};
use crate::flow::rules::Expectations;
use crate::flow::{BeginRequest, ConsumedFlow, Flow, FlowInfo, Promotion, Status};
use crate::pkce::{self, CodeChallenge, CodeVerifier, State};
use crate::store::Store;
use crate::validate;

/// The first and only value of a query parameter; a repeated one is refused.
fn single_param(url: &url::Url, name: &'static str) -> Result<Option<String>> {
    let mut values = url
        .query_pairs()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned());
    let first = values.next();
    if values.next().is_some() {
        return Err(Error::InvalidInput {
            field: name,
            reason: "appears more than once in the authorization URL",
        });
    }
    Ok(first)
}

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
        let (created_at, expires_at) = self
            .engine()
            .write(Wipe::Nothing, |tx| ops::insert(tx, &new, ttl))?;
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

    /// The MCP SDK path: stores an `unbound` verifier, found later by its challenge, before the
    /// state is known. Returns the S256 challenge. Bind it with [`Store::promote`]; if it never
    /// is, it expires after the store's TTL and [`Store::sweep`] removes it.
    ///
    /// ```
    /// use oauth_state_store::CodeVerifier;
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let verifier = CodeVerifier::generate();
    /// let challenge =
    ///     store.save_code_verifier("https://mcp.example.com", Some("my-app"), verifier.secret())?;
    /// assert_eq!(challenge, verifier.challenge());
    /// assert_eq!(store.stats()?.counts.unbound, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`server_id`, `client_id`, `code_verifier`),
    /// [`Error::DuplicateChallenge`] if this verifier was already saved, storage errors.
    pub fn save_code_verifier(
        &self,
        server_id: &str,
        client_id: Option<&str>,
        verifier: &str,
    ) -> Result<CodeChallenge> {
        validate::server_and_client(server_id, client_id)?;
        pkce::validate_verifier(verifier)?;
        let ttl = validate::ttl(self.default_ttl())?;
        let challenge = CodeVerifier::new(verifier)?.challenge();
        let new = NewFlow {
            state_key: None,
            code_challenge: challenge.as_str(),
            verifier,
            server_id,
            client_id,
            redirect_uri: None,
            issuer: None,
            resource: None,
            scope: None,
            status: Status::Unbound,
            require_issuer: false,
            client_created_at: None,
            generated_verifier: false,
        };
        self.engine()
            .write(Wipe::Nothing, |tx| ops::insert(tx, &new, ttl))?;
        Ok(challenge)
    }

    /// Binds a saved verifier to the state of the authorization URL built from it: reads
    /// `state` and `code_challenge` (and `redirect_uri`, `resource`, `scope`) from the URL, and
    /// in one transaction checks the server and client and makes the row `pending`. Promoting
    /// the same URL twice is a no-op. [`Store::promote_with`] also records an issuer or a
    /// discovery state.
    ///
    /// ```
    /// use oauth_state_store::{CodeVerifier, State, Status};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let verifier = CodeVerifier::generate();
    /// let challenge = store.save_code_verifier("srv", Some("my-app"), verifier.secret())?;
    /// // The SDK builds the authorization URL around the challenge and a state of its own.
    /// let state = State::generate();
    /// let url = format!(
    ///     "https://auth.example.com/authorize?response_type=code&client_id=my-app\
    ///      &state={}&code_challenge={}&code_challenge_method=S256",
    ///     state.secret(),
    ///     challenge.as_str()
    /// );
    /// assert_eq!(store.promote("srv", Some("my-app"), &url)?.status, Status::Pending);
    /// let consumed = store.consume(state.secret())?;
    /// assert_eq!(consumed.verifier.secret(), verifier.secret());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::MissingParameter`] (the unbound row stays and later expires),
    /// [`Error::InvalidInput`] (bad URL, repeated parameter, `code_challenge_method` other
    /// than S256, `client_id` in the URL differing from the argument),
    /// [`Error::UnknownChallenge`], [`Error::ServerMismatch`] (saved for another server or
    /// client; nothing bound), [`Error::Expired`] (the row is removed),
    /// [`Error::ChallengeAlreadyBound`], [`Error::DuplicateState`], storage errors.
    pub fn promote(
        &self,
        server_id: &str,
        client_id: Option<&str>,
        authorization_url: &str,
    ) -> Result<FlowInfo> {
        self.promote_with(server_id, client_id, authorization_url, &Promotion::new())
    }

    /// [`Store::promote`], also recording the authorization server's `issuer` (RFC 9207) on
    /// the flow: `promote_with` with [`Promotion::issuer`].
    ///
    /// ```
    /// use oauth_state_store::{CodeVerifier, State};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let verifier = CodeVerifier::generate();
    /// let challenge = store.save_code_verifier("srv", Some("my-app"), verifier.secret())?;
    /// let state = State::generate();
    /// let url = format!(
    ///     "https://auth.example.com/authorize?client_id=my-app&state={}&code_challenge={}",
    ///     state.secret(),
    ///     challenge.as_str()
    /// );
    /// let issuer = "https://auth.example.com";
    /// let info = store.promote_with_issuer("srv", Some("my-app"), &url, issuer)?;
    /// assert_eq!(info.issuer.as_deref(), Some("https://auth.example.com"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`Store::promote_with`].
    pub fn promote_with_issuer(
        &self,
        server_id: &str,
        client_id: Option<&str>,
        authorization_url: &str,
        issuer: &str,
    ) -> Result<FlowInfo> {
        let promotion = Promotion::new().issuer(issuer);
        self.promote_with(server_id, client_id, authorization_url, &promotion)
    }

    /// [`Store::promote`], also recording what `promotion` carries on the flow:
    /// - the authorization server's issuer ([`Promotion::issuer`]), as
    ///   [`BeginRequest::issuer`](crate::BeginRequest::issuer) does on the native path: a
    ///   callback whose `iss` names another issuer is then refused ([`Error::ServerMismatch`]
    ///   with field `iss`), and [`FlowInfo::issuer`] hands it to the callback leg; with
    ///   [`Promotion::require_issuer`], a callback without `iss` is refused too;
    /// - the SDK's discovery state ([`Promotion::discovery`]), handed back by the consume that
    ///   takes the flow ([`ConsumedFlow::discovery`]) and wiped in its tombstone.
    ///
    /// Promoting the same URL again is a no-op that keeps what the first promote recorded.
    ///
    /// # Errors
    /// Those of [`Store::promote`], plus [`Error::InvalidInput`] (`issuer`: not an `https`
    /// URL, or `http` on loopback, or missing with `require_issuer`; `discovery`: longer than
    /// [`MAX_DISCOVERY_LEN`](crate::MAX_DISCOVERY_LEN) bytes or with a NUL character). An
    /// invalid promotion is refused before any row is read: the saved verifier stays unbound.
    pub fn promote_with(
        &self,
        server_id: &str,
        client_id: Option<&str>,
        authorization_url: &str,
        promotion: &Promotion,
    ) -> Result<FlowInfo> {
        promotion.validate()?;
        self.promote_inner(server_id, client_id, authorization_url, promotion)
    }

    fn promote_inner(
        &self,
        server_id: &str,
        client_id: Option<&str>,
        authorization_url: &str,
        promotion: &Promotion,
    ) -> Result<FlowInfo> {
        validate::server_and_client(server_id, client_id)?;
        if authorization_url.len() > 16 * 1024 {
            return Err(Error::invalid("authorization_url", "is longer than 16 KiB"));
        }
        let url = url::Url::parse(authorization_url)
            .map_err(|e| Error::invalid("authorization_url", validate::parse_reason(e)))?;
        let state =
            single_param(&url, "state")?.ok_or(Error::MissingParameter { name: "state" })?;
        let challenge = single_param(&url, "code_challenge")?.ok_or(Error::MissingParameter {
            name: "code_challenge",
        })?;
        pkce::validate_state(&state)?;
        pkce::validate_challenge(&challenge)?;
        if single_param(&url, "code_challenge_method")?.is_some_and(|m| m != "S256") {
            return Err(Error::invalid("code_challenge_method", "must be S256"));
        }
        if let (Some(url_client), Some(c)) = (single_param(&url, "client_id")?, client_id) {
            if url_client != c {
                return Err(Error::invalid(
                    "client_id",
                    "differs from the client_id in the authorization URL",
                ));
            }
        }
        let redirect_uri = single_param(&url, "redirect_uri")?;
        if let Some(r) = &redirect_uri {
            validate::redirect_uri(r)?;
        }
        let resource = single_param(&url, "resource")?;
        if let Some(r) = &resource {
            validate::url("resource", r, false)?;
        }
        let scope = single_param(&url, "scope")?;
        if let Some(s) = &scope {
            validate::scope(s)?;
        }
        let key = pkce::state_key(&state);
        let binding = Binding {
            state_key: &key,
            redirect_uri: redirect_uri.as_deref(),
            resource: resource.as_deref(),
            scope: scope.as_deref(),
            issuer: promotion.issuer.as_deref(),
            require_issuer: promotion.require_issuer,
            discovery: promotion.discovery.as_deref(),
        };
        self.engine().write(Wipe::Nothing, |tx| {
            ops::promote(tx, server_id, client_id, &challenge, &binding)
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
        match self.engine().read(|tx| ops::check(tx, &key))? {
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
        self.engine()
            .write(Wipe::Secret, |tx| ops::consume(tx, &key, expect))
    }

    /// Records the `code` a callback delivered on a pending flow (`completed`), for the process
    /// that began it to [`consume`](Store::consume). The callback listener's half of a flow.
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, Status};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(BeginRequest::new("srv"))?;
    /// let info = store.complete(flow.state().secret(), "code-from-the-server")?;
    /// assert_eq!(info.status, Status::Completed);
    /// let consumed = store.consume(flow.state().secret())?;
    /// assert_eq!(consumed.code.unwrap().secret(), "code-from-the-server");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`, `code`), [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyCompleted`], [`Error::AlreadyConsumed`], storage errors. A forged or
    /// unknown state changes nothing.
    pub fn complete(&self, state: &str, code: &str) -> Result<FlowInfo> {
        self.record_callback(state, CallbackResult::Code(code), &Expectations::default())
    }

    /// Ends a pending flow as `failed` with the error a callback delivered
    /// (`?error=access_denied&error_description=...`). The state is validated first: a forged
    /// or unknown state changes nothing. The verifier is wiped.
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, Error, Status};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(BeginRequest::new("srv"))?;
    /// let info = store.reject(flow.state().secret(), "access_denied", Some("The user said no"))?;
    /// assert_eq!(info.status, Status::Failed);
    /// let consumed = store.consume(flow.state().secret());
    /// assert!(matches!(consumed, Err(Error::AuthorizationFailed { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`, `error`, `error_description`), and those of
    /// [`Store::complete`].
    pub fn reject(&self, state: &str, error: &str, description: Option<&str>) -> Result<FlowInfo> {
        let result = CallbackResult::Error { error, description };
        self.record_callback(state, result, &Expectations::default())
    }

    /// The one rule for what a callback does to a flow, in one transaction: the state must
    /// name a pending, unexpired flow that expects a callback where this one arrived and from
    /// this issuer (`expect`); then the code is recorded (`completed`) or the error
    /// (`failed`, the verifier wiped). The loopback listener, [`Store::complete`] and
    /// [`Store::reject`] all come here. A refused callback changes nothing (an expired flow is
    /// removed).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`, `code`, `error`, `error_description`),
    /// [`Error::UnknownState`], [`Error::Expired`], [`Error::AlreadyCompleted`],
    /// [`Error::AlreadyConsumed`], [`Error::ServerMismatch`] (`redirect_uri`: the flow expects
    /// its callback elsewhere; `iss`: from another issuer), storage errors.
    pub(crate) fn record_callback(
        &self,
        state: &str,
        result: CallbackResult<'_>,
        expect: &Expectations<'_>,
    ) -> Result<FlowInfo> {
        pkce::validate_state(state)?;
        match result {
            CallbackResult::Code(code) => pkce::validate_code(code)?,
            CallbackResult::Error { error, description } => {
                validate::error_code("error", error, validate::MAX_ERROR_LEN)?;
                if let Some(d) = description {
                    validate::error_code(
                        "error_description",
                        d,
                        validate::MAX_ERROR_DESCRIPTION_LEN,
                    )?;
                }
            }
        }
        let key = pkce::state_key(state);
        // A failure wipes the verifier; a code recorded wipes nothing.
        let wipe = match result {
            CallbackResult::Code(_) => Wipe::Nothing,
            CallbackResult::Error { .. } => Wipe::Secret,
        };
        self.engine()
            .write(wipe, |tx| ops::record_callback(tx, &key, &result, expect))
    }

    /// The code a callback listener recorded on the flow of `state`, **without** consuming
    /// it: `Some` once the flow is `completed`, `None` while it is pending or when it failed.
    /// With the code, the issuer the callback's `iss` was checked against, when the flow
    /// requires one (`require_issuer`).
    /// The flow stays as it is, for a later [`Store::consume`] (or an SDK's `delete`) to take.
    /// An expired flow is removed and reported expired.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`), [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyConsumed`], [`Error::Corrupt`], storage errors.
    #[cfg_attr(not(feature = "listener"), allow(dead_code))]
    pub(crate) fn recorded_code(&self, state: &str) -> Result<Option<CodeAndIssuer>> {
        pkce::validate_state(state)?;
        let key = pkce::state_key(state);
        match self.engine().read(|tx| ops::recorded_code(tx, &key))? {
            Looked::Found(code) => Ok(code),
            Looked::Expired => self
                .engine()
                .write(Wipe::Secret, |tx| ops::remove_expired(tx, &key))
                .map(|_| None),
        }
    }

    /// An SDK's `load`: the live flow of `state` for `server_id` with its verifier, without
    /// consuming it; `None` when a consume for that server would not hand the verifier out.
    /// An expired flow is removed. The damage checks are those of a consume.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`), [`Error::Corrupt`], storage errors.
    #[cfg_attr(not(feature = "rmcp"), allow(dead_code))]
    pub(crate) fn peek(&self, state: &str, server_id: &str) -> Result<Option<Peeked>> {
        pkce::validate_state(state)?;
        let key = pkce::state_key(state);
        match self.engine().read(|tx| ops::peek(tx, &key, server_id))? {
            Looked::Found(found) => Ok(found),
            Looked::Expired => match self
                .engine()
                .write(Wipe::Secret, |tx| ops::remove_expired(tx, &key))
            {
                Ok(_) => Ok(None),
                Err(
                    Error::Expired
                    | Error::UnknownState
                    | Error::AlreadyConsumed
                    | Error::FlowEnded { .. }
                    | Error::ServerMismatch { .. },
                ) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }
}
