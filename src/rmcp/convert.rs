//! Token sets to and from rmcp's types, through their JSON form: rmcp's `StoredCredentials`
//! and `OAuthTokenResponse` (oauth2's `StandardTokenResponse` with vendor fields) are
//! `#[non_exhaustive]` or foreign, and serde builds them without a dependency on oauth2.

use std::time::{SystemTime, UNIX_EPOCH};

use ::rmcp::transport::auth::{OAuthTokenResponse, StoredCredentials};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::tokens::{AccessToken, RefreshToken, TokenResponse, TokenSet};

/// The members a token response has by name; the rest is its `extra`.
const KNOWN: [&str; 5] = [
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
];

/// A stored set as a token endpoint's JSON answer: `expires_in` is what is left of the
/// access token's life by the store's clock, the set's `extra` members beside the others.
pub(super) fn token_json(set: &TokenSet) -> Value {
    let mut out = Map::new();
    if let Some(Value::Object(extra)) = set.extra().and_then(|e| serde_json::from_str(e).ok()) {
        out.extend(
            extra
                .into_iter()
                .filter(|(k, _)| !KNOWN.contains(&k.as_str())),
        );
    }
    out.insert("access_token".into(), set.access_token().secret().into());
    out.insert("token_type".into(), set.token_type().into());
    if let Some(left) = set.expires_in() {
        out.insert("expires_in".into(), left.as_secs().into());
    }
    if let Some(rt) = set.refresh_token() {
        out.insert("refresh_token".into(), rt.secret().into());
    }
    if let Some(scope) = set.scope() {
        out.insert("scope".into(), scope.into());
    }
    Value::Object(out)
}

/// rmcp's credentials for a stored set: received "now" by this host's clock with the time it
/// has left, so that rmcp's own expiry check uses the store's remainder.
pub(super) fn stored_credentials(set: &TokenSet) -> Result<StoredCredentials> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let scopes: Vec<&str> = set.scope().map_or(Vec::new(), |s| s.split(' ').collect());
    serde_json::from_value(json!({
        "client_id": set.client_id(),
        "token_response": token_json(set),
        "granted_scopes": scopes,
        "token_received_at": now,
        "issuer": set.issuer(),
    }))
    .map_err(|_| Error::invalid("token_response", "rmcp's StoredCredentials changed shape"))
}

/// A token endpoint's JSON answer (or rmcp's token response) as the store takes it; `issuer`
/// and `granted_scopes` (when the answer names no scope) come from the caller.
pub(super) fn token_response_of_json(
    json: &Value,
    issuer: Option<&str>,
    granted_scopes: &[String],
) -> Result<TokenResponse> {
    let text = |k: &str| json.get(k).and_then(Value::as_str);
    let access = AccessToken::new(text("access_token").ok_or(Error::invalid(
        "access_token",
        "is missing from the token response",
    ))?)?;
    let mut response = TokenResponse::new(access, text("token_type").unwrap_or("Bearer"));
    if let Some(rt) = text("refresh_token") {
        response = response.refresh_token(RefreshToken::new(rt)?);
    }
    if let Some(secs) = json.get("expires_in").and_then(Value::as_u64) {
        response = response.expires_in(std::time::Duration::from_secs(secs));
    }
    match text("scope") {
        Some(scope) if !scope.is_empty() => response = response.scope(scope),
        _ if !granted_scopes.is_empty() => response = response.scope(granted_scopes.join(" ")),
        _ => {}
    }
    if let Some(issuer) = issuer {
        response = response.issuer(issuer);
    }
    if let Some(all) = json.as_object() {
        let extra: Map<String, Value> = all
            .iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !extra.is_empty() {
            response = response.extra(Value::Object(extra).to_string());
        }
    }
    Ok(response)
}

/// rmcp's token response of `credentials` as the store takes it.
pub(super) fn token_response(
    response: &OAuthTokenResponse,
    credentials: &StoredCredentials,
) -> Result<TokenResponse> {
    let json = serde_json::to_value(response)
        .map_err(|_| Error::invalid("token_response", "cannot be read"))?;
    token_response_of_json(
        &json,
        credentials.issuer.as_deref(),
        &credentials.granted_scopes,
    )
}

/// The refresh token of rmcp's token response, if any.
pub(super) fn refresh_token_of(response: &OAuthTokenResponse) -> Option<String> {
    let json = serde_json::to_value(response).ok()?;
    json.get("refresh_token")?.as_str().map(str::to_owned)
}
