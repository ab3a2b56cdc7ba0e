//! Token sets and their single-flight refresh: the public values. The guide to them is
//! `docs/refresh.md`, the crate's `guide::refresh`.

mod info;
pub(crate) mod ops;
mod refresh;
pub(crate) mod rules;
pub(crate) mod tx;
pub(crate) mod wake;

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::pkce::secret_type;
use crate::tokens::tx::TokenRow;
use crate::validate;

pub use info::{LeaseInfo, TokenSetInfo, TokenState};
pub use refresh::{
    Begun, Exchange, Finished, RefreshLease, RefreshOptions, Refreshed, Rejected, Saved, Seen,
    TryBegun, Wait,
};

/// Longest access or refresh token accepted, and longest `extra`: 64 KiB.
pub(crate) const MAX_TOKEN_LEN: usize = 65536;
/// Longest `token_type` accepted.
const MAX_TOKEN_TYPE_LEN: usize = 64;
/// Longest `expires_in` accepted: about 136 years (`u32::MAX` seconds).
const MAX_EXPIRES_IN: Duration = Duration::from_secs(u32::MAX as u64);

/// An RFC 6749 token (appendix A.12 and A.17): 1 to 65536 visible ASCII characters
/// (`%x20-7E`).
fn validate_token(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_TOKEN_LEN {
        return Err(Error::invalid(field, "must be 1 to 65536 characters long"));
    }
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(Error::invalid(
            field,
            "contains a character RFC 6749 does not allow in a token (visible ASCII only)",
        ));
    }
    Ok(())
}

secret_type!(
    /// An OAuth access token. A secret: printed as `[redacted]`, wiped from the store when its
    /// set is replaced, revoked or forgotten.
    AccessToken
);

impl AccessToken {
    /// Wraps an access token (from a token response).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`access_token`) unless it is 1 to 65536 visible ASCII
    /// characters (RFC 6749, appendix A.12).
    pub fn new(token: impl Into<String>) -> Result<Self> {
        let token = token.into();
        validate_token("access_token", &token)?;
        Ok(AccessToken(token))
    }

    /// The token itself, for an `Authorization` header.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

secret_type!(
    /// An OAuth refresh token. A secret: printed as `[redacted]`, wiped from the store when its
    /// set is replaced, revoked or forgotten, and never stored again once replaced.
    RefreshToken
);

impl RefreshToken {
    /// Wraps a refresh token (from a token response).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`refresh_token`) unless it is 1 to 65536 visible ASCII
    /// characters (RFC 6749, appendix A.17).
    pub fn new(token: impl Into<String>) -> Result<Self> {
        let token = token.into();
        validate_token("refresh_token", &token)?;
        Ok(RefreshToken(token))
    }

    /// The token itself, for the refresh request.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

/// The generation of a token set: 1 when it is first saved, one more with every save that
/// changes its tokens, every refresh and every revocation. A refresh is begun against the
/// generation the caller saw ([`Seen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Generation(u64);

impl Generation {
    /// The generation numbered `n`, as a caller kept it (another language's binding, a
    /// file): only compared with the stored one, never trusted for more.
    pub fn new(n: u64) -> Self {
        Generation(n)
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    pub(crate) fn from_row(generation: i64) -> Self {
        Generation(u64::try_from(generation).unwrap_or(0))
    }

    pub(crate) fn as_row(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// What a token endpoint answered (or a login produced): the input of
/// [`Store::save_tokens`](crate::Store::save_tokens) and of a refresh. Its `Debug` leaves
/// the tokens and `extra` out.
///
/// ```
/// use std::time::Duration;
/// use oauth_state_store::{AccessToken, RefreshToken, TokenResponse};
/// let response = TokenResponse::new(AccessToken::new("at-1")?, "Bearer")
///     .refresh_token(RefreshToken::new("rt-1")?)
///     .expires_in(Duration::from_secs(3600))
///     .scope("mcp:tools offline_access");
/// assert!(!format!("{response:?}").contains("rt-1"));
/// # Ok::<(), oauth_state_store::Error>(())
/// ```
pub struct TokenResponse {
    pub(crate) access_token: AccessToken,
    pub(crate) token_type: String,
    pub(crate) refresh_token: Option<RefreshToken>,
    pub(crate) expires_in: Option<Duration>,
    pub(crate) scope: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) extra: Option<String>,
}

impl TokenResponse {
    /// A response carrying `access_token` of `token_type` (`Bearer`, `DPoP`, ...).
    pub fn new(access_token: AccessToken, token_type: impl Into<String>) -> Self {
        TokenResponse {
            access_token,
            token_type: token_type.into(),
            refresh_token: None,
            expires_in: None,
            scope: None,
            issuer: None,
            extra: None,
        }
    }

    /// The refresh token. A refresh whose response has none keeps the one it presented
    /// (RFC 6749, section 6).
    pub fn refresh_token(mut self, token: RefreshToken) -> Self {
        self.refresh_token = Some(token);
        self
    }

    /// The access token's lifetime (`expires_in`), counted from when the store saves it.
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_in = Some(lifetime);
        self
    }

    /// The granted scope, space-separated. A refresh whose response has none keeps the
    /// set's scope (RFC 6749, section 5.1).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The authorization server's issuer (RFC 8414), kept with the set. A refresh whose
    /// response has none keeps the set's.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The response's other members (an `id_token`, vendor fields), as text the store keeps
    /// and hands back unread: a JSON object, say. A secret like the tokens. At most 64 KiB.
    pub fn extra(mut self, extra: impl Into<String>) -> Self {
        self.extra = Some(extra.into());
        self
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field (`token_type`, `expires_in`, `scope`,
    /// `issuer`, `extra`); never the value.
    pub(crate) fn validate(&self) -> Result<()> {
        let name_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        if self.token_type.is_empty()
            || self.token_type.len() > MAX_TOKEN_TYPE_LEN
            || !self.token_type.bytes().all(name_char)
        {
            return Err(Error::invalid(
                "token_type",
                "must be 1 to 64 letters, digits, '-', '.' or '_' (RFC 6749, appendix A.13)",
            ));
        }
        if self.expires_in.is_some_and(|d| d > MAX_EXPIRES_IN) {
            return Err(Error::invalid("expires_in", "is too long"));
        }
        if let Some(scope) = &self.scope {
            validate::scope(scope)?;
        }
        if let Some(issuer) = &self.issuer {
            validate::url("issuer", issuer, true)?;
        }
        if let Some(extra) = &self.extra {
            if extra.len() > MAX_TOKEN_LEN || extra.contains('\0') {
                return Err(Error::invalid(
                    "extra",
                    "must be at most 65536 bytes of text without NUL characters",
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("refresh_token", &self.refresh_token)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("issuer", &self.issuer)
            .field("extra", &self.extra.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A stored token set, as read: the newest tokens of one server and client. Its `Debug`
/// leaves the tokens and `extra` out; it has no `Clone` (a copy of a refresh token is a
/// deliberate act).
pub struct TokenSet {
    pub(crate) server_id: String,
    pub(crate) client_id: String,
    pub(crate) generation: Generation,
    pub(crate) access_token: AccessToken,
    pub(crate) refresh_token: Option<RefreshToken>,
    pub(crate) token_type: String,
    pub(crate) scope: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) extra: Option<String>,
    pub(crate) received_at: i64,
    pub(crate) expires_at: Option<i64>,
    /// The store's time when the set was read.
    pub(crate) read_at: i64,
}

impl TokenSet {
    /// The set of a live row read at `read_at`; `None` for a revoked row.
    pub(crate) fn from_row(row: TokenRow, read_at: i64) -> Option<TokenSet> {
        Some(TokenSet {
            server_id: row.server_id,
            client_id: row.client_id,
            generation: Generation::from_row(row.generation),
            access_token: AccessToken(row.access_token?),
            refresh_token: row.refresh_token.map(RefreshToken),
            token_type: row.token_type?,
            scope: row.scope,
            issuer: row.issuer,
            extra: row.extra,
            received_at: row.received_at,
            expires_at: row.expires_at,
            read_at,
        })
    }

    /// The server id the set belongs to.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// The client id the set belongs to.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Its generation: what a refresh is begun against ([`Seen::from`]).
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// The refresh token, if the server issued one.
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    /// The token type (`Bearer`, `DPoP`, ...).
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// The granted scope, space-separated.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The issuer of the authorization server that issued the tokens.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The response's other members, as saved ([`TokenResponse::extra`]). A secret.
    pub fn extra(&self) -> Option<&str> {
        self.extra.as_deref()
    }

    /// When the store saved the tokens, Unix milliseconds of the store's clock.
    pub fn received_at(&self) -> i64 {
        self.received_at
    }

    /// When the access token expires, Unix milliseconds of the store's clock (`None`: the
    /// server gave no `expires_in`).
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// How long the access token had left when the set was read, by the store's clock (zero
    /// once expired; `None`: the server gave no `expires_in`). On PostgreSQL this is the
    /// server's clock, so a host whose own clock is off still sees the right remainder.
    pub fn expires_in(&self) -> Option<Duration> {
        self.expires_at.map(|at| {
            Duration::from_millis(u64::try_from(at.saturating_sub(self.read_at)).unwrap_or(0))
        })
    }

    /// Whether the access token expires within `margin` of when the set was read (`false`
    /// without an expiry): the usual test before a refresh, with a margin of a few seconds for
    /// the request on its way.
    pub fn expires_within(&self, margin: Duration) -> bool {
        self.expires_in().is_some_and(|left| left <= margin)
    }
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("server_id", &self.server_id)
            .field("client_id", &self.client_id)
            .field("generation", &self.generation)
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("issuer", &self.issuer)
            .field("extra", &self.extra.as_ref().map(|_| "[redacted]"))
            .field("received_at", &self.received_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A token of a row, handed out by an operation (validated when it was stored).
pub(crate) fn stored_refresh_token(token: String) -> RefreshToken {
    RefreshToken(token)
}
