//! Token sets and their single-flight refresh: `Store`'s token methods and the lease.
//!
//! Each method converts its arguments, runs the core call off the JavaScript thread, and
//! converts the answer; the rules (generations, compare-and-swap, the refusal rule) are the
//! core's. Tokens cross into JavaScript as plain strings inside [`TokenSetData`], which the
//! package wraps at once in a class that keeps them out of every print (lib/tokens.cjs); the
//! lease's refresh token is read through a method, never a property.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use oauth_state_store as core;
use oauth_state_store::{
    AccessToken, Finished, Generation, RefreshOptions, RefreshToken, Rejected, Saved, Seen,
    TokenResponse, TryBegun,
};

use crate::error::to_js;
use crate::options::invalid;
use crate::run::{short, Job};
use crate::store::Store;

/// A token response to save: what a token endpoint answered (or a login produced).
#[napi(object)]
pub struct TokenInput {
    /// The access token.
    pub access_token: String,
    /// `Bearer`, `DPoP`, ...
    pub token_type: String,
    /// The refresh token, if the server issued one.
    pub refresh_token: Option<String>,
    /// The access token's lifetime in seconds (`expires_in`).
    pub expires_in: Option<f64>,
    /// The granted scope, space-separated.
    pub scope: Option<String>,
    /// The authorization server's issuer.
    pub issuer: Option<String>,
    /// The response's other members, as text (JSON): kept and handed back unread. A secret.
    pub extra: Option<String>,
}

impl TokenInput {
    /// The core's response; a token or a lifetime out of bounds is `INVALID_INPUT` naming it.
    fn into_core(self) -> napi::Result<TokenResponse> {
        let access = AccessToken::new(self.access_token).map_err(|e| to_js(&e))?;
        let mut r = TokenResponse::new(access, self.token_type);
        if let Some(t) = self.refresh_token {
            r = r.refresh_token(RefreshToken::new(t).map_err(|e| to_js(&e))?);
        }
        if let Some(s) = self.expires_in {
            if !s.is_finite() || s < 0.0 || s > f64::from(u32::MAX) {
                return Err(invalid(
                    "expires_in",
                    "must be a number of seconds from 0 to 4294967295",
                ));
            }
            r = r.expires_in(Duration::from_secs_f64(s));
        }
        if let Some(s) = self.scope {
            r = r.scope(s);
        }
        if let Some(i) = self.issuer {
            r = r.issuer(i);
        }
        if let Some(x) = self.extra {
            r = r.extra(x);
        }
        Ok(r)
    }
}

/// A stored token set as read. The package wraps it at once (lib/tokens.cjs) so that the tokens
/// and `extra` never show in a print.
#[napi(object, object_from_js = false)]
pub struct TokenSetData {
    /// The server id the set belongs to.
    pub server_id: String,
    /// The client id the set belongs to.
    pub client_id: String,
    /// Its generation: what a refresh is begun against.
    pub generation: i64,
    /// The access token (a secret).
    pub access_token: String,
    /// The refresh token (a secret).
    pub refresh_token: Option<String>,
    /// `Bearer`, `DPoP`, ...
    pub token_type: String,
    /// The granted scope.
    pub scope: Option<String>,
    /// The issuer.
    pub issuer: Option<String>,
    /// The response's other members as saved (a secret).
    pub extra: Option<String>,
    /// When the store saved the tokens, Unix milliseconds.
    pub received_at: i64,
    /// When the access token expires, Unix milliseconds.
    pub expires_at: Option<i64>,
    /// How long the access token had left when read, milliseconds of the store's clock.
    pub expires_in_ms: Option<i64>,
}

impl From<core::TokenSet> for TokenSetData {
    fn from(s: core::TokenSet) -> Self {
        TokenSetData {
            server_id: s.server_id().to_owned(),
            client_id: s.client_id().to_owned(),
            generation: generation(s.generation()),
            access_token: s.access_token().secret().to_owned(),
            refresh_token: s.refresh_token().map(|t| t.secret().to_owned()),
            token_type: s.token_type().to_owned(),
            scope: s.scope().map(str::to_owned),
            issuer: s.issuer().map(str::to_owned),
            extra: s.extra().map(str::to_owned),
            received_at: s.received_at(),
            expires_at: s.expires_at(),
            expires_in_ms: s
                .expires_in()
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

fn generation(g: Generation) -> i64 {
    i64::try_from(g.get()).unwrap_or(i64::MAX)
}

/// What `saveTokens` did: `outcome` is `"stored"` (a new generation), `"unchanged"` (the same
/// tokens were stored) or `"stale"` (a refresh token the stored set replaced: nothing written).
#[napi(object, object_from_js = false)]
pub struct SavedOutcome {
    /// `stored`, `unchanged` or `stale`.
    pub outcome: String,
    /// The generation stored now.
    pub generation: i64,
}

/// How a refresh waits and holds its lease (the core's `RefreshOptions`).
#[napi(object)]
#[derive(Default)]
pub struct RefreshOptionsInput {
    /// How long the lease lasts, milliseconds (1000 to 600000; default 30000).
    pub lease_ms: Option<u32>,
    /// A label shown with the process id while this process holds a lease.
    pub owner: Option<String>,
}

impl RefreshOptionsInput {
    fn to_core(&self) -> RefreshOptions {
        let mut o = RefreshOptions::default();
        if let Some(ms) = self.lease_ms {
            o = o.lease(Duration::from_millis(u64::from(ms)));
        }
        if let Some(label) = &self.owner {
            o = o.owner(label.clone());
        }
        o
    }
}

/// The right and the duty to refresh one generation of a set. End it once, with
/// `finishRefresh`, `rejectRefresh` or `releaseRefresh`; left alone it lasts until it expires.
#[napi]
pub struct RefreshLease {
    inner: Mutex<Option<core::RefreshLease>>,
    generation: i64,
    took_over: bool,
    server_id: String,
    client_id: String,
    deadline: Instant,
}

impl RefreshLease {
    fn new(lease: core::RefreshLease) -> Self {
        RefreshLease {
            generation: generation(lease.generation()),
            took_over: lease.took_over(),
            server_id: lease.server_id().to_owned(),
            client_id: lease.client_id().to_owned(),
            deadline: lease.deadline(),
            inner: Mutex::new(Some(lease)),
        }
    }

    /// The core lease, taken out: a lease ends once.
    fn take(&self) -> napi::Result<core::RefreshLease> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| invalid("lease", "has already been finished, rejected or released"))
    }
}

#[napi]
impl RefreshLease {
    /// The generation this lease refreshes.
    #[napi(getter)]
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// Whether another process held the lease and let it expire (it stopped while refreshing).
    #[napi(getter)]
    pub fn took_over(&self) -> bool {
        self.took_over
    }

    /// The set's server id.
    #[napi(getter)]
    pub fn server_id(&self) -> String {
        self.server_id.clone()
    }

    /// The set's client id.
    #[napi(getter)]
    pub fn client_id(&self) -> String {
        self.client_id.clone()
    }

    /// Milliseconds left until the request must have ended (the lease minus a margin).
    #[napi]
    pub fn deadline_in_ms(&self) -> f64 {
        self.deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
            * 1000.0
    }

    /// The refresh token to send: the one stored with the leased generation. `null` once the
    /// lease ended.
    #[napi]
    pub fn refresh_token(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|l| l.refresh_token().secret().to_owned())
    }
}

/// What `tryBeginRefresh` found: `kind` is `"newer"` (`set`: use it, send nothing), `"lease"`
/// (`lease`: this process refreshes) or `"wait"` (another process refreshes: try again with
/// `seen` after at most `leaseLeftMs`).
#[napi(object, object_from_js = false)]
pub struct TryBegunData {
    /// `newer`, `lease` or `wait`.
    pub kind: String,
    /// `newer`: the set.
    pub set: Option<TokenSetData>,
    /// `lease`: the lease.
    pub lease: Option<RefreshLease>,
    /// `wait`: how long the other process's lease had left.
    pub lease_left_ms: Option<i64>,
    /// `wait`: the generation to try again with.
    pub seen: Option<i64>,
}

/// How a refresh ended: `outcome` is `"saved"` (the response was saved over the leased
/// generation) or `"superseded"` (a newer set was saved meanwhile; the response was dropped);
/// `set` is the set to use either way.
#[napi(object, object_from_js = false)]
pub struct FinishedData {
    /// `saved` or `superseded`.
    pub outcome: String,
    /// The set to use.
    pub set: TokenSetData,
}

/// What a refused refresh token did: `"revoked"` (the refused generation was the stored one),
/// `"stale"` (a newer set is stored and was left alone: `set`), or `"gone"`.
#[napi(object, object_from_js = false)]
pub struct RejectedData {
    /// `revoked`, `stale` or `gone`.
    pub outcome: String,
    /// `stale`: the newer set.
    pub set: Option<TokenSetData>,
}

impl From<Rejected> for RejectedData {
    fn from(r: Rejected) -> Self {
        match r {
            Rejected::Revoked => RejectedData {
                outcome: "revoked".into(),
                set: None,
            },
            Rejected::Stale(set) => RejectedData {
                outcome: "stale".into(),
                set: Some(set.into()),
            },
            Rejected::Gone => RejectedData {
                outcome: "gone".into(),
                set: None,
            },
        }
    }
}

/// One stored token set described without any token (`listTokenSets`).
#[napi(object, object_from_js = false)]
pub struct TokenSetInfoData {
    /// The server id of the set.
    pub server_id: String,
    /// The client id of the set.
    pub client_id: String,
    /// Its generation.
    pub generation: i64,
    /// When it was saved (or revoked), Unix milliseconds.
    pub received_at: i64,
    /// `live` or `revoked`.
    pub state: String,
    /// `live`: when the access token expires, Unix milliseconds.
    pub expires_at: Option<i64>,
    /// `live`: whether it holds a refresh token.
    pub has_refresh_token: Option<bool>,
    /// `revoked`: when, Unix milliseconds.
    pub revoked_at: Option<i64>,
    /// `revoked`: the server's OAuth error.
    pub revoked_reason: Option<String>,
    /// The token type (none once revoked).
    pub token_type: Option<String>,
    /// The granted scope.
    pub scope: Option<String>,
    /// The issuer.
    pub issuer: Option<String>,
    /// Who holds the lease now (`pid N`, with its label), if anyone.
    pub lease_owner: Option<String>,
    /// When that lease expires, Unix milliseconds.
    pub lease_expires_at: Option<i64>,
}

impl From<core::TokenSetInfo> for TokenSetInfoData {
    fn from(i: core::TokenSetInfo) -> Self {
        let mut out = TokenSetInfoData {
            server_id: i.server_id,
            client_id: i.client_id,
            generation: generation(i.generation),
            received_at: i.received_at,
            state: "live".into(),
            expires_at: None,
            has_refresh_token: None,
            revoked_at: None,
            revoked_reason: None,
            token_type: i.token_type,
            scope: i.scope,
            issuer: i.issuer,
            lease_owner: i.lease.as_ref().map(|l| l.owner.clone()),
            lease_expires_at: i.lease.as_ref().map(|l| l.expires_at),
        };
        match i.state {
            core::TokenState::Live {
                expires_at,
                refresh_token,
            } => {
                out.expires_at = expires_at;
                out.has_refresh_token = Some(refresh_token);
            }
            core::TokenState::Revoked { at, reason } => {
                out.state = "revoked".into();
                out.revoked_at = Some(at);
                out.revoked_reason = Some(reason);
            }
            // A state newer than this mapping: described by its generation and times only.
            _ => out.state = "unknown".into(),
        }
        out
    }
}

/// A generation number from JavaScript (a non-negative safe integer).
fn seen_generation(field: &'static str, n: Option<i64>) -> napi::Result<Seen> {
    match n {
        None => Ok(Seen::Current),
        Some(n) => u64::try_from(n)
            .map(|g| Seen::Generation(Generation::new(g)))
            .map_err(|_| invalid(field, "must be a generation number (0 or more)")),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[napi]
impl Store {
    /// Saves a token response as the set of `serverId` and `clientId`.
    #[napi(ts_return_type = "Promise<SavedOutcome>")]
    pub fn save_tokens(
        &self,
        server_id: String,
        client_id: String,
        tokens: TokenInput,
    ) -> napi::Result<AsyncTask<Job<SavedOutcome>>> {
        let tokens = tokens.into_core()?;
        let store = self.inner.clone();
        Ok(short(move || {
            let saved = store
                .save_tokens(&server_id, &client_id, tokens)
                .map_err(|e| to_js(&e))?;
            let (outcome, g) = match saved {
                Saved::Stored(g) => ("stored", g),
                Saved::Unchanged(g) => ("unchanged", g),
                Saved::Stale(g) => ("stale", g),
            };
            Ok(SavedOutcome {
                outcome: outcome.into(),
                generation: generation(g),
            })
        }))
    }

    /// The live token set of `serverId` and `clientId`, or `null`.
    #[napi(ts_return_type = "Promise<TokenSetData | null>")]
    pub fn tokens(
        &self,
        server_id: String,
        client_id: String,
    ) -> AsyncTask<Job<Option<TokenSetData>>> {
        let store = self.inner.clone();
        short(move || {
            store
                .tokens(&server_id, &client_id)
                .map(|s| s.map(TokenSetData::from))
                .map_err(|e| to_js(&e))
        })
    }

    /// Deletes the token sets of `serverId` (of `clientId` only, when given); how many.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn forget_tokens(
        &self,
        server_id: String,
        client_id: Option<String>,
    ) -> AsyncTask<Job<i64>> {
        let store = self.inner.clone();
        short(move || {
            store
                .forget_tokens(&server_id, client_id.as_deref())
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
                .map_err(|e| to_js(&e))
        })
    }

    /// Every token set (of `serverId`, when given), described without any token.
    #[napi(ts_return_type = "Promise<TokenSetInfoData[]>")]
    pub fn list_token_sets(
        &self,
        server_id: Option<String>,
    ) -> AsyncTask<Job<Vec<TokenSetInfoData>>> {
        let store = self.inner.clone();
        short(move || {
            store
                .list_token_sets(server_id.as_deref())
                .map(|sets| sets.into_iter().map(TokenSetInfoData::from).collect())
                .map_err(|e| to_js(&e))
        })
    }

    /// Begins a refresh against the generation the caller saw (`null`: whatever is stored),
    /// without waiting.
    #[napi(ts_return_type = "Promise<TryBegunData>")]
    pub fn try_begin_refresh(
        &self,
        server_id: String,
        client_id: String,
        seen: Option<i64>,
        options: Option<RefreshOptionsInput>,
    ) -> napi::Result<AsyncTask<Job<TryBegunData>>> {
        let seen = seen_generation("seen", seen)?;
        let options = options.unwrap_or_default().to_core();
        let store = self.inner.clone();
        Ok(short(move || {
            let begun = store
                .try_begin_refresh(&server_id, &client_id, seen, &options)
                .map_err(|e| to_js(&e))?;
            let none = TryBegunData {
                kind: String::new(),
                set: None,
                lease: None,
                lease_left_ms: None,
                seen: None,
            };
            Ok(match begun {
                TryBegun::Newer(set) => TryBegunData {
                    kind: "newer".into(),
                    set: Some(set.into()),
                    ..none
                },
                TryBegun::Lease(lease) => TryBegunData {
                    kind: "lease".into(),
                    lease: Some(RefreshLease::new(lease)),
                    ..none
                },
                TryBegun::Wait(wait) => TryBegunData {
                    kind: "wait".into(),
                    lease_left_ms: Some(millis(wait.lease_left())),
                    seen: match wait.seen() {
                        Seen::Generation(g) => Some(generation(g)),
                        Seen::Current => None,
                    },
                    ..none
                },
            })
        }))
    }

    /// Saves the refresh's response over the leased generation if it is still the stored one
    /// (compare-and-swap). Ends the lease.
    #[napi(ts_return_type = "Promise<FinishedData>")]
    pub fn finish_refresh(
        &self,
        lease: &RefreshLease,
        tokens: TokenInput,
    ) -> napi::Result<AsyncTask<Job<FinishedData>>> {
        let tokens = tokens.into_core()?;
        let lease = lease.take()?;
        let store = self.inner.clone();
        Ok(short(move || {
            let finished = store.finish_refresh(lease, tokens).map_err(|e| to_js(&e))?;
            Ok(match finished {
                Finished::Saved(set) => FinishedData {
                    outcome: "saved".into(),
                    set: set.into(),
                },
                Finished::Superseded(set) => FinishedData {
                    outcome: "superseded".into(),
                    set: set.into(),
                },
            })
        }))
    }

    /// The server refused the lease's refresh token with `error` (`invalid_grant`, ...):
    /// revokes the set only if the leased generation is still the stored one. Ends the lease.
    #[napi(ts_return_type = "Promise<RejectedData>")]
    pub fn reject_refresh(
        &self,
        lease: &RefreshLease,
        error: String,
    ) -> napi::Result<AsyncTask<Job<RejectedData>>> {
        let lease = lease.take()?;
        let store = self.inner.clone();
        Ok(short(move || {
            store
                .reject_refresh(lease, &error)
                .map(RejectedData::from)
                .map_err(|e| to_js(&e))
        }))
    }

    /// A refused refresh token without a lease: revokes the set only if `generation` is still
    /// the stored one.
    #[napi(ts_return_type = "Promise<RejectedData>")]
    pub fn reject_tokens(
        &self,
        server_id: String,
        client_id: String,
        generation: i64,
        error: String,
    ) -> napi::Result<AsyncTask<Job<RejectedData>>> {
        let Seen::Generation(g) = seen_generation("generation", Some(generation))? else {
            return Err(invalid("generation", "must be a generation number"));
        };
        let store = self.inner.clone();
        Ok(short(move || {
            store
                .reject_tokens(&server_id, &client_id, g, &error)
                .map(RejectedData::from)
                .map_err(|e| to_js(&e))
        }))
    }

    /// Gives the lease back without saving (a failure that says nothing about the token).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn release_refresh(&self, lease: &RefreshLease) -> napi::Result<AsyncTask<Job<()>>> {
        let lease = lease.take()?;
        let store = self.inner.clone();
        Ok(short(move || {
            store.release_refresh(lease).map_err(|e| to_js(&e))
        }))
    }
}
