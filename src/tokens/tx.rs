//! The token sets' row interface: what an engine supplies for the refresh operations of
//! [`crate::tokens`], one method a statement, no decisions.
//!
//! The transaction bodies ([`crate::tokens::ops`]) read a row, ask
//! [`crate::tokens::rules`] for a verdict, and carry it out through the guarded updates
//! here: each changes the row named by its id only if its generation (or its lease holder)
//! is still the one the body read, and returns the number of rows it changed. A token is only
//! ever bound as a parameter of an `INSERT` or `UPDATE`, never compared in SQL (a failing
//! statement's parameters can reach a server's log): comparisons of secrets happen in Rust.

use std::fmt;

use crate::error::Result;

/// A `token_sets` row as an operation reads it. Its `Debug` leaves the secrets out.
pub(crate) struct TokenRow {
    /// The engine's row id (what the guarded updates name).
    pub id: i64,
    pub server_id: String,
    pub client_id: String,
    pub generation: i64,
    /// A secret; `None` once revoked.
    pub access_token: Option<String>,
    /// A secret.
    pub refresh_token: Option<String>,
    /// `None` once revoked.
    pub token_type: Option<String>,
    pub scope: Option<String>,
    pub issuer: Option<String>,
    /// The token response's other members: a secret (an `id_token`, say).
    pub extra: Option<String>,
    pub received_at: i64,
    pub expires_at: Option<i64>,
    /// SHA-256 of the refresh tokens this row replaced, 32 bytes each, newest first.
    pub replaced: Option<Vec<u8>>,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    pub lease_holder: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
}

/// What a save or a refresh writes. Its `Debug` leaves the secrets out.
pub(crate) struct NewTokens<'a> {
    pub access_token: &'a str,
    pub refresh_token: Option<&'a str>,
    pub token_type: &'a str,
    pub scope: Option<&'a str>,
    pub issuer: Option<&'a str>,
    pub extra: Option<&'a str>,
    /// `received_at + expires_in`, computed by the operation at the transaction's time.
    pub expires_at: Option<i64>,
}

/// A lease to write: its holder, who that is, until when.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseRow<'a> {
    pub holder: &'a str,
    pub owner: &'a str,
    pub expires_at: i64,
}

/// What a waiter compares, read without any secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenWatch {
    pub generation: i64,
    pub revoked: bool,
    pub lease_holder: Option<String>,
    pub lease_expires_at: Option<i64>,
}

/// One row as a listing shows it: no secret.
#[derive(Debug, Clone)]
pub(crate) struct TokenListed {
    pub server_id: String,
    pub client_id: String,
    pub generation: i64,
    pub received_at: i64,
    pub expires_at: Option<i64>,
    pub has_refresh_token: bool,
    pub token_type: Option<String>,
    pub scope: Option<String>,
    pub issuer: Option<String>,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
}

/// The per-transaction row interface of the token sets.
///
/// Every method runs inside the transaction the engine opened for the operation; in a write
/// transaction [`TokenTx::token_row`] reads the row for update (PostgreSQL: `FOR UPDATE`;
/// SQLite: the write lock is already held).
pub(crate) trait TokenTx {
    /// This transaction's time, Unix milliseconds (the same clock as the flows').
    fn now(&self) -> i64;

    /// The row of (`server_id`, `client_id`).
    fn token_row(&mut self, server_id: &str, client_id: &str) -> Result<Option<TokenRow>>;

    /// What a waiter compares, for (`server_id`, `client_id`).
    fn token_watch(&mut self, server_id: &str, client_id: &str) -> Result<Option<TokenWatch>>;

    /// Inserts the set of a new key at generation 1; `Ok(false)`, changing nothing, when the
    /// key exists (the unique key says so, not a prior read).
    fn insert_tokens(
        &mut self,
        server_id: &str,
        client_id: &str,
        new: &NewTokens<'_>,
        received_at: i64,
    ) -> Result<bool>;

    /// Replaces the tokens of row `id` if its generation is still `was`: generation `was + 1`,
    /// the new tokens, `replaced` as given, the revocation and the lease cleared.
    fn replace_tokens(
        &mut self,
        id: i64,
        was: i64,
        new: &NewTokens<'_>,
        replaced: Option<&[u8]>,
        received_at: i64,
    ) -> Result<u64>;

    /// Sets the issuer of row `id` if its generation is still `was` (no new generation).
    fn set_token_issuer(&mut self, id: i64, was: i64, issuer: &str) -> Result<u64>;

    /// Takes the lease of row `id` if its generation is still `was`, it is not revoked, has a
    /// refresh token, and no lease runs at `now` (none, or one that expired by `now`).
    fn take_lease(&mut self, id: i64, was: i64, lease: &LeaseRow<'_>, now: i64) -> Result<u64>;

    /// Clears the lease of row `id` if `holder` still holds it.
    fn clear_lease(&mut self, id: i64, holder: &str) -> Result<u64>;

    /// Revokes row `id` if its generation is still `was`: tokens and `extra` wiped, generation
    /// `was + 1`, `revoked_at = now`, the reason kept, the lease cleared.
    fn revoke_tokens(&mut self, id: i64, was: i64, reason: &str, now: i64) -> Result<u64>;

    /// Deletes the rows of `server_id` (of `client_id` only, when given).
    fn delete_tokens(&mut self, server_id: &str, client_id: Option<&str>) -> Result<u64>;

    /// Every row (of one server, when given), in key order, without secrets.
    fn list_tokens(&mut self, server_id: Option<&str>) -> Result<Vec<TokenListed>>;
}

/// `Some("[redacted]")` for a secret that is there, `None` for one that is not.
fn redacted<T>(secret: &Option<T>) -> Option<&'static str> {
    secret.as_ref().map(|_| "[redacted]")
}

impl fmt::Debug for TokenRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRow")
            .field("id", &self.id)
            .field("server_id", &self.server_id)
            .field("client_id", &self.client_id)
            .field("generation", &self.generation)
            .field("access_token", &redacted(&self.access_token))
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("issuer", &self.issuer)
            .field("extra", &redacted(&self.extra))
            .field("received_at", &self.received_at)
            .field("expires_at", &self.expires_at)
            .field("replaced", &self.replaced.as_ref().map(|r| r.len() / 32))
            .field("revoked_at", &self.revoked_at)
            .field("revoked_reason", &self.revoked_reason)
            .field("lease_holder", &self.lease_holder)
            .field("lease_owner", &self.lease_owner)
            .field("lease_expires_at", &self.lease_expires_at)
            .finish()
    }
}

impl fmt::Debug for NewTokens<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewTokens")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("issuer", &self.issuer)
            .field("extra", &redacted(&self.extra))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_rows_never_print_a_secret() {
        let row = TokenRow {
            id: 1,
            server_id: "srv".into(),
            client_id: "cli".into(),
            generation: 3,
            access_token: Some("ACCESS-SECRET".into()),
            refresh_token: Some("REFRESH-SECRET".into()),
            token_type: Some("Bearer".into()),
            scope: None,
            issuer: None,
            extra: Some("{\"id_token\":\"EXTRA-SECRET\"}".into()),
            received_at: 1,
            expires_at: None,
            replaced: Some(vec![7; 64]),
            revoked_at: None,
            revoked_reason: None,
            lease_holder: None,
            lease_owner: None,
            lease_expires_at: None,
        };
        let new = NewTokens {
            access_token: "ACCESS-SECRET",
            refresh_token: Some("REFRESH-SECRET"),
            token_type: "Bearer",
            scope: None,
            issuer: None,
            extra: Some("EXTRA-SECRET"),
            expires_at: None,
        };
        let printed = format!("{row:?} {new:?}");
        for secret in ["ACCESS-SECRET", "REFRESH-SECRET", "EXTRA-SECRET", "7, 7"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("[redacted]") && printed.contains("replaced: Some(2)"));
    }
}
