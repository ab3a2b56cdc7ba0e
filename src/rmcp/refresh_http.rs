//! rmcp's OAuth HTTP client, wrapped so that the credential store arbitrates its refresh
//! requests.
//!
//! rmcp 3.9's `refresh_token` loads the credentials under the refresh guard and always sends
//! a token request with them: a process that waited for another's refresh would refresh the
//! newer set once more. This wrapper sees the request (`POST`, `grant_type=refresh_token`) and
//! answers it from the store when a newer set than the manager saw is stored; otherwise it
//! sends it with the leased refresh token only, within the lease's deadline, and saves the
//! response before rmcp reads it. Every other request passes through untouched.

use std::sync::Arc;
use std::time::Instant;

use ::rmcp::transport::auth::{
    OAuthHttpClient, OAuthHttpClientError, OAuthHttpClientFuture, OAuthHttpRequest,
};
use serde_json::{json, Value};

use super::convert::{token_json, token_response_of_json};
use super::credentials::{lock, Pending, RmcpCredentialStore};
use super::{blocking_with, credential_error};
use crate::error::{Error, Result};
use crate::tokens::{Finished, RefreshLease, TokenSet};

type HttpResponse = ::http::Response<Vec<u8>>;

/// The refresh arbiter in front of the manager's OAuth HTTP client (see the module docs).
pub(super) struct RmcpRefreshHttpClient {
    adapter: RmcpCredentialStore,
    inner: Arc<dyn OAuthHttpClient>,
}

impl RmcpCredentialStore {
    /// `inner` (the client the manager would use) wrapped so that this adapter arbitrates the
    /// manager's refresh requests: pass the result to
    /// `AuthorizationManager::new_with_oauth_http_client`. Every other request passes through
    /// untouched.
    pub fn http_client(&self, inner: Arc<dyn OAuthHttpClient>) -> Arc<dyn OAuthHttpClient> {
        Arc::new(RmcpRefreshHttpClient {
            adapter: self.clone(),
            inner,
        })
    }
}

/// The refresh token of a refresh request (`POST`, form body with
/// `grant_type=refresh_token`); `None` for any other request.
fn refresh_token_of(request: &OAuthHttpRequest) -> Option<String> {
    if request.request.method() != ::http::Method::POST {
        return None;
    }
    let mut refresh = None;
    let mut grant = None;
    for (k, v) in url::form_urlencoded::parse(request.request.body()) {
        match k.as_ref() {
            "grant_type" => grant = Some(v.into_owned()),
            "refresh_token" => refresh = Some(v.into_owned()),
            _ => {}
        }
    }
    (grant.as_deref() == Some("refresh_token")).then_some(refresh)?
}

/// A JSON answer with `status`.
fn answer(status: u16, body: &Value) -> Result<HttpResponse, OAuthHttpClientError> {
    ::http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(body.to_string().into_bytes())
        .map_err(|e| Box::new(e) as OAuthHttpClientError)
}

/// The stored set as a token response; a cleared set as the refusal rmcp turns into
/// "authorization required".
fn answer_with(set: Option<TokenSet>) -> Result<HttpResponse, OAuthHttpClientError> {
    match set {
        Some(set) => answer(200, &token_json(&set)),
        None => answer(
            400,
            &json!({
                "error": "invalid_grant",
                "error_description": "the stored tokens were cleared or replaced; sign in again",
            }),
        ),
    }
}

/// What a refresh request may do.
enum Taken {
    /// Be sent, with this lease, for a manager that saw this generation.
    Lease(RefreshLease, Option<crate::tokens::Generation>),
    /// Be answered from the store.
    Answer,
    /// Go out untouched.
    PassThrough,
}

fn store_error(e: impl std::fmt::Display) -> OAuthHttpClientError {
    e.to_string().into()
}

impl RmcpRefreshHttpClient {
    /// The stored set of the slot.
    async fn stored(&self) -> Result<Option<TokenSet>, OAuthHttpClientError> {
        let adapter = self.adapter.clone();
        let read = move || match adapter.client_id() {
            Some(client) => adapter.store.tokens(&adapter.server_id, &client),
            None => Ok(None),
        };
        blocking_with(read, credential_error)
            .await
            .map_err(store_error)
    }

    /// What the pending refresh lets this request do; takes the lease when it may be sent.
    fn take_lease(&self) -> Taken {
        let mut state = lock(&self.adapter.state);
        match std::mem::replace(&mut state.pending, Pending::InFlight) {
            Pending::Lease { lease, seen } => Taken::Lease(lease, seen),
            Pending::Answer => {
                state.pending = Pending::Answer;
                Taken::Answer
            }
            other => {
                state.pending = other;
                Taken::PassThrough
            }
        }
    }

    /// Gives the lease back now, before rmcp goes on (and before this process may exit).
    async fn release(&self, lease: RefreshLease) {
        let store = self.adapter.store.clone();
        let _ = blocking_with(move || store.release_refresh(lease), |e| e).await;
    }

    async fn refresh(
        &self,
        request: OAuthHttpRequest,
        presented: String,
    ) -> Result<HttpResponse, OAuthHttpClientError> {
        let (lease, seen) = match self.take_lease() {
            Taken::Lease(lease, seen) => (lease, seen),
            Taken::Answer => return answer_with(self.stored().await?),
            // A refresh without the guard (not one rmcp 3.9 makes): not arbitrated.
            Taken::PassThrough => return self.inner.execute(request).await,
        };
        let same_token =
            crate::tokens::rules::secret_eq(lease.refresh_token().secret(), &presented);
        if seen.is_some_and(|g| g < lease.generation()) || !same_token {
            // The manager saw an older set than the leased one (it leased the current
            // generation without the wrapper's help), or it would send another token than the
            // stored one: answer with the stored set, send nothing.
            self.release(lease).await;
            lock(&self.adapter.state).pending = Pending::Answer;
            return answer_with(self.stored().await?);
        }
        let left = lease.deadline().saturating_duration_since(Instant::now());
        let sent = tokio::time::timeout(left, self.inner.execute(request)).await;
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                self.release(lease).await;
                lock(&self.adapter.state).pending = Pending::None;
                return Err(e);
            }
            Err(_) => {
                self.release(lease).await;
                lock(&self.adapter.state).pending = Pending::None;
                return Err("the token request outlived the refresh lease's deadline".into());
            }
        };
        if response.status() == 200 {
            return self.finish(lease, response).await;
        }
        if is_invalid_grant(&response) {
            // rmcp reads the refusal and calls `on_refresh_token_rejected`, which applies
            // rule 3 to this lease.
            lock(&self.adapter.state).pending = Pending::Lease { lease, seen };
        } else {
            // Any other answer says nothing about the refresh token: the set is kept.
            self.release(lease).await;
            lock(&self.adapter.state).pending = Pending::None;
        }
        Ok(response)
    }

    /// Saves a 200's tokens over the leased generation before rmcp sees them: the rotated
    /// refresh token is durable as soon as it arrives.
    async fn finish(
        &self,
        lease: RefreshLease,
        response: HttpResponse,
    ) -> Result<HttpResponse, OAuthHttpClientError> {
        // No issuer or scope of its own: the set keeps the ones it has.
        let tokens = serde_json::from_slice::<Value>(response.body())
            .map_err(store_error)
            .and_then(|json| token_response_of_json(&json, None, &[]).map_err(store_error));
        let tokens = match tokens {
            Ok(tokens) => tokens,
            Err(e) => {
                self.release(lease).await;
                lock(&self.adapter.state).pending = Pending::None;
                return Err(e);
            }
        };
        let store = self.adapter.store.clone();
        let finished = blocking_with(move || store.finish_refresh(lease, tokens), |e| e).await;
        let set = {
            let mut state = lock(&self.adapter.state);
            state.pending = Pending::Finished;
            match finished {
                Ok(Finished::Saved(set)) => {
                    state.last_loaded = Some(set.generation());
                    None
                }
                Ok(Finished::Superseded(set)) => {
                    state.last_loaded = Some(set.generation());
                    Some(Some(set))
                }
                // Forgotten or refused meanwhile: the user signs in again.
                Err(Error::NoTokens | Error::TokensRevoked { .. }) => Some(None),
                Err(e) => return Err(store_error(e)),
            }
        };
        match set {
            None => Ok(response),
            Some(set) => answer_with(set),
        }
    }
}

/// Whether an error response is `invalid_grant` (RFC 6749, section 5.2).
fn is_invalid_grant(response: &HttpResponse) -> bool {
    serde_json::from_slice::<Value>(response.body())
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(|e| e == "invalid_grant"))
        .unwrap_or(false)
}

impl OAuthHttpClient for RmcpRefreshHttpClient {
    fn execute(&self, request: OAuthHttpRequest) -> OAuthHttpClientFuture<'_> {
        lock(&self.adapter.state).attached = true;
        Box::pin(async move {
            match refresh_token_of(&request) {
                Some(presented) => self.refresh(request, presented).await,
                None => self.inner.execute(request).await,
            }
        })
    }
}
