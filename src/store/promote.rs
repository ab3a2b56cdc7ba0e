//! The SDK path of [`Store`]: a verifier saved before the state is known, then bound to the
//! authorization URL's state (promote). Each validates its input, then runs one transaction
//! body of [`ops`](crate::flow::ops) on the engine.

use crate::error::{Error, Result};
use crate::flow::ops;
use crate::flow::row::{Binding, NewFlow};
use crate::flow::tx::Wipe;
use crate::flow::{FlowInfo, Promotion, Status};
use crate::pkce::{self, CodeChallenge, CodeVerifier};
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
        self.engine().insert(&new, ttl)?;
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
    ///   takes the flow ([`ConsumedFlow::discovery`](crate::flow::ConsumedFlow::discovery)) and wiped in its tombstone.
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
        ops::promote(
            &mut |step| self.engine().step(Wipe::Nothing, step),
            server_id,
            client_id,
            &challenge,
            &binding,
        )
    }
}
