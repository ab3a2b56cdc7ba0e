//! A token set described without a secret, for listings (`tokens list`).

use serde::Serialize;

use super::Generation;
use crate::tokens::tx::TokenListed;

/// One stored token set, described without any token: what
/// [`Store::list_token_sets`](crate::Store::list_token_sets) returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TokenSetInfo {
    /// The server id of the set.
    pub server_id: String,
    /// The client id of the set.
    pub client_id: String,
    /// Its generation.
    pub generation: Generation,
    /// When it was saved (or revoked), Unix milliseconds of the store's clock.
    pub received_at: i64,
    /// Live or revoked.
    pub state: TokenState,
    /// The token type (`None` once revoked).
    pub token_type: Option<String>,
    /// The granted scope.
    pub scope: Option<String>,
    /// The issuer of the authorization server.
    pub issuer: Option<String>,
    /// The process refreshing the set now, if any (an expired lease is shown too: its holder
    /// stopped before it ended it).
    pub lease: Option<LeaseInfo>,
}

/// Whether a set can be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
#[non_exhaustive]
pub enum TokenState {
    /// The set holds tokens.
    Live {
        /// When the access token expires, Unix milliseconds of the store's clock.
        expires_at: Option<i64>,
        /// Whether it holds a refresh token.
        refresh_token: bool,
    },
    /// The server refused its refresh token; its tokens are wiped.
    Revoked {
        /// When, Unix milliseconds of the store's clock.
        at: i64,
        /// The server's OAuth error (`invalid_grant`, ...).
        reason: String,
    },
}

/// Who holds a set's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LeaseInfo {
    /// `pid N`, with the holder's label ([`RefreshOptions::owner`](crate::RefreshOptions::owner))
    /// if it gave one.
    pub owner: String,
    /// When the lease expires, Unix milliseconds of the store's clock.
    pub expires_at: i64,
}

impl From<TokenListed> for TokenSetInfo {
    fn from(row: TokenListed) -> Self {
        let state = match (row.revoked_at, row.revoked_reason) {
            (Some(at), reason) => TokenState::Revoked {
                at,
                reason: reason.unwrap_or_default(),
            },
            (None, _) => TokenState::Live {
                expires_at: row.expires_at,
                refresh_token: row.has_refresh_token,
            },
        };
        let lease = match (row.lease_owner, row.lease_expires_at) {
            (Some(owner), Some(expires_at)) => Some(LeaseInfo { owner, expires_at }),
            _ => None,
        };
        TokenSetInfo {
            server_id: row.server_id,
            client_id: row.client_id,
            generation: Generation::from_row(row.generation),
            received_at: row.received_at,
            state,
            token_type: row.token_type,
            scope: row.scope,
            issuer: row.issuer,
            lease,
        }
    }
}
