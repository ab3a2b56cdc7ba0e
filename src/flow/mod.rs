//! The values that go into and come out of the store's operations; the rules that decide
//! them ([`rules`]), each operation's transaction body ([`ops`]), and the row interface those
//! bodies run on, which every engine implements ([`tx`], with the rows in [`row`]).

pub(crate) mod ops;
pub(crate) mod promotion;
pub(crate) mod row;
pub(crate) mod rules;
pub(crate) mod tx;

pub(crate) use promotion::Discovery;
pub use promotion::{Promotion, MAX_DISCOVERY_LEN};

use std::fmt;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::pkce::{AuthorizationCode, CodeChallenge, CodeVerifier, State};
use crate::validate;

/// Where a flow is in its life. See the state diagram in the crate documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A verifier saved before its state was known (the MCP SDK path), found by its challenge.
    Unbound,
    /// Keyed by state, waiting for the browser's callback.
    Pending,
    /// The callback delivered a code; waiting to be consumed.
    Completed,
    /// The callback delivered an error; the verifier is wiped.
    Failed,
    /// Used once; a tombstone that keeps the key (not the verifier) until it expires.
    Consumed,
}

impl Status {
    /// Every status, in life order.
    pub const ALL: [Status; 5] = [
        Status::Unbound,
        Status::Pending,
        Status::Completed,
        Status::Failed,
        Status::Consumed,
    ];

    /// The name stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unbound => "unbound",
            Status::Pending => "pending",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Consumed => "consumed",
        }
    }

    /// Parses a stored status name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The non-secret description of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FlowInfo {
    /// Which authorization server (MCP server) the flow is for.
    pub server_id: String,
    /// The OAuth client id, if the flow was given one.
    pub client_id: Option<String>,
    /// Where the flow is in its life.
    pub status: Status,
    /// The redirect URI the authorization URL names.
    pub redirect_uri: Option<String>,
    /// The expected issuer (RFC 9207).
    pub issuer: Option<String>,
    /// The resource indicator (RFC 8707).
    pub resource: Option<String>,
    /// The requested scope.
    pub scope: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; the flow is dead from this instant on.
    pub expires_at: i64,
}

/// What [`Store::begin`](crate::Store::begin) needs to start a flow.
///
/// ```
/// use oauth_state_store::BeginRequest;
/// let request = BeginRequest::new("https://mcp.example.com")
///     .client_id("my-client")
///     .redirect_uri("http://127.0.0.1:33418/callback")
///     .scope("mcp:tools");
/// ```
#[derive(Debug, Default)]
pub struct BeginRequest {
    pub(crate) server_id: String,
    pub(crate) client_id: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) ttl: Option<std::time::Duration>,
    pub(crate) state: Option<State>,
    pub(crate) verifier: Option<CodeVerifier>,
    pub(crate) require_issuer: bool,
    pub(crate) client_created_at: Option<i64>,
}

impl BeginRequest {
    /// A flow for `server_id`, with a generated state and verifier and the store's default TTL.
    pub fn new(server_id: impl Into<String>) -> Self {
        BeginRequest {
            server_id: server_id.into(),
            ..Self::default()
        }
    }
    /// The OAuth client id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }
    /// The redirect URI (a loopback callback, for a native client).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }
    /// The issuer the callback must come from (RFC 9207).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }
    /// The resource indicator (RFC 8707), such as the MCP server's URL.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }
    /// The requested scope, space-separated.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
    /// How long the flow lives (positive, at most [`MAX_TTL`](crate::MAX_TTL)). Defaults to
    /// the store's TTL. Checked by [`Store::begin`](crate::Store::begin) (`InvalidInput`,
    /// `ttl`).
    pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
    /// Uses this state instead of generating one (an SDK that makes its own CSRF token).
    pub fn state(mut self, state: State) -> Self {
        self.state = Some(state);
        self
    }
    /// Uses this verifier instead of generating one.
    pub fn verifier(mut self, verifier: CodeVerifier) -> Self {
        self.verifier = Some(verifier);
        self
    }
    /// Records that the callback must carry `iss` (RFC 9207) equal to the issuer (column
    /// `require_issuer`; the store keeps it for the SDK that checks the callback).
    pub fn require_issuer(mut self, require: bool) -> Self {
        self.require_issuer = require;
        self
    }
    /// Keeps the creation time as the client recorded it, in its own unit (column
    /// `client_created_at`, at least 0). It is only handed back; expiry uses the store's clock.
    pub fn client_created_at(mut self, created_at: i64) -> Self {
        self.client_created_at = Some(created_at);
        self
    }

    /// Checks every field; nothing has been stored yet.
    pub(crate) fn validate(&self) -> Result<()> {
        validate::id("server_id", &self.server_id)?;
        if let Some(c) = &self.client_id {
            validate::id("client_id", c)?;
        }
        if let Some(u) = &self.redirect_uri {
            validate::redirect_uri(u)?;
        }
        if let Some(u) = &self.issuer {
            validate::url("issuer", u, true)?;
        }
        if let Some(u) = &self.resource {
            validate::url("resource", u, false)?;
        }
        if let Some(s) = &self.scope {
            validate::scope(s)?;
        }
        if let Some(t) = self.ttl {
            validate::ttl(t)?;
        }
        if self.client_created_at.is_some_and(|t| t < 0) {
            return Err(Error::invalid("client_created_at", "is negative"));
        }
        Ok(())
    }
}

/// A flow just begun: its state and challenge, to put in the authorization URL.
///
/// The verifier stays in the store until the callback consumes the flow.
#[derive(Debug)]
pub struct Flow {
    pub(crate) state: State,
    pub(crate) challenge: CodeChallenge,
    pub(crate) info: FlowInfo,
}

impl Flow {
    /// The state to send (a secret: it is never stored, only its hash).
    pub fn state(&self) -> &State {
        &self.state
    }
    /// The S256 code challenge.
    pub fn code_challenge(&self) -> &CodeChallenge {
        &self.challenge
    }
    /// The flow's non-secret description.
    pub fn info(&self) -> &FlowInfo {
        &self.info
    }

    /// The authorization URL: `authorization_endpoint` with `response_type=code`, `client_id`,
    /// `redirect_uri`, `scope`, `state`, `code_challenge`, `code_challenge_method=S256` and
    /// `resource` appended. It never contains the verifier.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`authorization_endpoint`) if the endpoint is not an `https` URL
    /// (or `http` on loopback), has a fragment, or already carries one of these parameters;
    /// [`Error::InvalidInput`] (`client_id`) if the flow was begun without
    /// [`BeginRequest::client_id`]: RFC 6749 requires `client_id` in the authorization request,
    /// so a URL without it would only fail later, at the authorization server.
    pub fn authorization_url(&self, authorization_endpoint: &str) -> Result<url::Url> {
        let mut url = validate::url("authorization_endpoint", authorization_endpoint, true)?;
        let Some(client_id) = self.info.client_id.as_deref() else {
            return Err(Error::invalid(
                "client_id",
                "is missing: begin the flow with BeginRequest::client_id to build its authorization URL",
            ));
        };
        const OURS: [&str; 8] = [
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
            "resource",
        ];
        if url.query_pairs().any(|(k, _)| OURS.contains(&k.as_ref())) {
            return Err(Error::invalid(
                "authorization_endpoint",
                "already carries an OAuth authorization parameter",
            ));
        }
        {
            let info = &self.info;
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", client_id);
            if let Some(r) = &info.redirect_uri {
                q.append_pair("redirect_uri", r);
            }
            if let Some(s) = &info.scope {
                q.append_pair("scope", s);
            }
            q.append_pair("state", self.state.secret());
            q.append_pair("code_challenge", self.challenge.as_str());
            q.append_pair("code_challenge_method", "S256");
            if let Some(r) = &info.resource {
                q.append_pair("resource", r);
            }
        }
        Ok(url)
    }
}

/// What a successful [`Store::consume`](crate::Store::consume) hands back: everything needed
/// for the token request.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConsumedFlow {
    /// The PKCE verifier for the token request. It is no longer in the database.
    pub verifier: CodeVerifier,
    /// The code, when a callback listener recorded it on the row.
    pub code: Option<AuthorizationCode>,
    /// The flow's description (status as it was before it was consumed).
    pub info: FlowInfo,
    /// When it was consumed, Unix milliseconds.
    pub consumed_at: i64,
    pub(crate) discovery: Option<Discovery>,
}

impl ConsumedFlow {
    /// The SDK's discovery state recorded at promote
    /// ([`Promotion::discovery`]), if any. The consume wiped it from the row: this is its
    /// only copy now.
    pub fn discovery(&self) -> Option<&str> {
        self.discovery.as_ref().map(|d| d.0.as_str())
    }
}

/// Which of a server's flows [`Store::invalidate`](crate::Store::invalidate) deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidateScope {
    /// Only verifiers saved but not yet bound to a state.
    Unbound,
    /// Every flow still alive: unbound, pending, completed and failed (not tombstones).
    Live,
    /// Every row, tombstones included.
    All,
}

impl InvalidateScope {
    pub(crate) fn statuses(self) -> &'static [Status] {
        match self {
            InvalidateScope::Unbound => &[Status::Unbound],
            InvalidateScope::Live => &[
                Status::Unbound,
                Status::Pending,
                Status::Completed,
                Status::Failed,
            ],
            InvalidateScope::All => &Status::ALL,
        }
    }
}

/// Row counts, one a status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StatusCounts {
    /// Unbound verifiers.
    pub unbound: u64,
    /// Pending flows.
    pub pending: u64,
    /// Completed flows (code recorded, not yet consumed).
    pub completed: u64,
    /// Failed flows.
    pub failed: u64,
    /// Tombstones.
    pub consumed: u64,
}

impl StatusCounts {
    /// The count for one status.
    pub fn get(&self, status: Status) -> u64 {
        match status {
            Status::Unbound => self.unbound,
            Status::Pending => self.pending,
            Status::Completed => self.completed,
            Status::Failed => self.failed,
            Status::Consumed => self.consumed,
        }
    }

    pub(crate) fn add(&mut self, status: Status, n: u64) {
        let slot = match status {
            Status::Unbound => &mut self.unbound,
            Status::Pending => &mut self.pending,
            Status::Completed => &mut self.completed,
            Status::Failed => &mut self.failed,
            Status::Consumed => &mut self.consumed,
        };
        *slot += n;
    }

    /// All rows.
    pub fn total(&self) -> u64 {
        Status::ALL.iter().map(|s| self.get(*s)).sum()
    }
}

/// What [`Store::sweep`](crate::Store::sweep) removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SweepReport {
    /// Rows removed, by the status they had.
    pub removed: StatusCounts,
    /// How many write transactions it took.
    pub batches: u64,
    /// The longest of those transactions, from `BEGIN IMMEDIATE` to the end of its commit:
    /// the longest that other writers had to wait behind the sweep.
    #[serde(rename = "longest_batch_ms", serialize_with = "millis")]
    pub longest_batch: std::time::Duration,
}

fn millis<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// What [`Store::stats`](crate::Store::stats) reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Rows by status.
    pub counts: StatusCounts,
    /// Rows whose expiry has passed (a sweep would remove them).
    pub expired: u64,
    /// The earliest expiry of any row, Unix milliseconds.
    pub oldest_expiry: Option<i64>,
    /// The latest expiry of any row, Unix milliseconds.
    pub newest_expiry: Option<i64>,
}
