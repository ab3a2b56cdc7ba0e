//! The SQLite statements of the token sets' row interface, each beside the method that runs
//! it. Every one finds its row through `token_sets_by_key` or by id.

use rusqlite::{params, OptionalExtension, Row, ToSql, Transaction};

use super::flows::Rows;
use crate::backend::tx::Tx;
use crate::error::Result;
use crate::tokens::tx::{LeaseRow, NewTokens, TokenListed, TokenRow, TokenTx, TokenWatch};

impl Rows<'_> {
    /// Runs `f` on the transaction, with SQLite's error as the crate's.
    fn token_run<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> Result<T> {
        f(self.tx).map_err(|e| super::error::classify(e, self.busy_timeout))
    }

    /// Runs `sql` and returns how many rows it changed.
    fn token_execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<u64> {
        self.token_run(|tx| Ok(tx.prepare_cached(sql)?.execute(params)? as u64))
    }
}

/// Finds the id through the key index and reads the row by id: read straight through the
/// index, the key columns would come from the index itself and could not contradict it (see
/// the damage check in `tokens::ops`).
pub(crate) const SELECT_TOKEN_ROW: &str = "SELECT id, server_id, client_id, generation, \
     access_token, refresh_token, token_type, scope, issuer, extra, received_at, expires_at, \
     replaced, revoked_at, revoked_reason, lease_holder, lease_owner, lease_expires_at \
     FROM token_sets WHERE id = (SELECT id FROM token_sets \
     WHERE server_id = ?1 AND client_id = ?2)";

fn token_row(r: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        server_id: r.get(1)?,
        client_id: r.get(2)?,
        generation: r.get(3)?,
        access_token: r.get(4)?,
        refresh_token: r.get(5)?,
        token_type: r.get(6)?,
        scope: r.get(7)?,
        issuer: r.get(8)?,
        extra: r.get(9)?,
        received_at: r.get(10)?,
        expires_at: r.get(11)?,
        replaced: r.get(12)?,
        revoked_at: r.get(13)?,
        revoked_reason: r.get(14)?,
        lease_holder: r.get(15)?,
        lease_owner: r.get(16)?,
        lease_expires_at: r.get(17)?,
    })
}

/// No secret column.
pub(crate) const SELECT_TOKEN_WATCH: &str = "SELECT generation, revoked_at IS NOT NULL, \
     lease_holder, lease_expires_at FROM token_sets WHERE server_id = ?1 AND client_id = ?2";

/// The unique key says "exists": no row is inserted then, and no error raised.
pub(crate) const INSERT_TOKENS: &str = "INSERT INTO token_sets (server_id, client_id, \
     generation, access_token, refresh_token, token_type, scope, issuer, extra, received_at, \
     expires_at) VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT (server_id, client_id) DO NOTHING";

pub(crate) const REPLACE_TOKENS: &str = "UPDATE token_sets SET generation = generation + 1, \
     access_token = ?3, refresh_token = ?4, token_type = ?5, scope = ?6, issuer = ?7, \
     extra = ?8, received_at = ?9, expires_at = ?10, replaced = ?11, revoked_at = NULL, \
     revoked_reason = NULL, lease_holder = NULL, lease_owner = NULL, lease_expires_at = NULL \
     WHERE id = ?1 AND generation = ?2";

pub(crate) const SET_TOKEN_ISSUER: &str =
    "UPDATE token_sets SET issuer = ?3 WHERE id = ?1 AND generation = ?2";

/// The rule's "may lease": this generation, live, refreshable, no lease running at `?6`.
pub(crate) const TAKE_LEASE: &str = "UPDATE token_sets SET lease_holder = ?3, \
     lease_owner = ?4, lease_expires_at = ?5 WHERE id = ?1 AND generation = ?2 \
     AND revoked_at IS NULL AND refresh_token IS NOT NULL \
     AND (lease_holder IS NULL OR lease_expires_at <= ?6)";

pub(crate) const CLEAR_LEASE: &str = "UPDATE token_sets SET lease_holder = NULL, \
     lease_owner = NULL, lease_expires_at = NULL WHERE id = ?1 AND lease_holder = ?2";

pub(crate) const REVOKE_TOKENS: &str = "UPDATE token_sets SET generation = generation + 1, \
     access_token = NULL, refresh_token = NULL, token_type = NULL, extra = NULL, \
     revoked_at = ?3, revoked_reason = ?4, lease_holder = NULL, lease_owner = NULL, \
     lease_expires_at = NULL WHERE id = ?1 AND generation = ?2 AND revoked_at IS NULL";

/// `?2` NULL: every client of the server.
pub(crate) const DELETE_TOKENS: &str =
    "DELETE FROM token_sets WHERE server_id = ?1 AND (?2 IS NULL OR client_id = ?2)";

/// The columns of a listed set: no secret.
macro_rules! listed {
    ($where:literal) => {
        concat!(
            "SELECT server_id, client_id, generation, received_at, expires_at, \
             refresh_token IS NOT NULL, token_type, scope, issuer, revoked_at, revoked_reason, \
             lease_owner, lease_expires_at FROM token_sets ",
            $where,
            " ORDER BY server_id, client_id"
        )
    };
}

/// Every set: reads the whole table by design.
pub(crate) const LIST_TOKENS: &str = listed!("");

pub(crate) const LIST_TOKENS_OF_SERVER: &str = listed!("WHERE server_id = ?1");

fn listed(r: &Row<'_>) -> rusqlite::Result<TokenListed> {
    Ok(TokenListed {
        server_id: r.get(0)?,
        client_id: r.get(1)?,
        generation: r.get(2)?,
        received_at: r.get(3)?,
        expires_at: r.get(4)?,
        has_refresh_token: r.get(5)?,
        token_type: r.get(6)?,
        scope: r.get(7)?,
        issuer: r.get(8)?,
        revoked_at: r.get(9)?,
        revoked_reason: r.get(10)?,
        lease_owner: r.get(11)?,
        lease_expires_at: r.get(12)?,
    })
}

impl TokenTx for Rows<'_> {
    fn now(&self) -> i64 {
        self.now
    }

    fn token_row(&mut self, server_id: &str, client_id: &str) -> Result<Option<TokenRow>> {
        self.token_run(|tx| {
            tx.prepare_cached(SELECT_TOKEN_ROW)?
                .query_row(params![server_id, client_id], token_row)
                .optional()
        })
    }

    fn token_watch(&mut self, server_id: &str, client_id: &str) -> Result<Option<TokenWatch>> {
        self.token_run(|tx| {
            tx.prepare_cached(SELECT_TOKEN_WATCH)?
                .query_row(params![server_id, client_id], |r| {
                    Ok(TokenWatch {
                        generation: r.get(0)?,
                        revoked: r.get(1)?,
                        lease_holder: r.get(2)?,
                        lease_expires_at: r.get(3)?,
                    })
                })
                .optional()
        })
    }

    fn insert_tokens(
        &mut self,
        server_id: &str,
        client_id: &str,
        new: &NewTokens<'_>,
        received_at: i64,
    ) -> Result<bool> {
        let n = self.token_execute(
            INSERT_TOKENS,
            params![
                server_id,
                client_id,
                new.access_token,
                new.refresh_token,
                new.token_type,
                new.scope,
                new.issuer,
                new.extra,
                received_at,
                new.expires_at
            ],
        )?;
        Ok(n == 1)
    }

    fn replace_tokens(
        &mut self,
        id: i64,
        was: i64,
        new: &NewTokens<'_>,
        replaced: Option<&[u8]>,
        received_at: i64,
    ) -> Result<u64> {
        self.token_execute(
            REPLACE_TOKENS,
            params![
                id,
                was,
                new.access_token,
                new.refresh_token,
                new.token_type,
                new.scope,
                new.issuer,
                new.extra,
                received_at,
                new.expires_at,
                replaced
            ],
        )
    }

    fn set_token_issuer(&mut self, id: i64, was: i64, issuer: &str) -> Result<u64> {
        self.token_execute(SET_TOKEN_ISSUER, params![id, was, issuer])
    }

    fn take_lease(&mut self, id: i64, was: i64, lease: &LeaseRow<'_>, now: i64) -> Result<u64> {
        self.token_execute(
            TAKE_LEASE,
            params![id, was, lease.holder, lease.owner, lease.expires_at, now],
        )
    }

    fn clear_lease(&mut self, id: i64, holder: &str) -> Result<u64> {
        self.token_execute(CLEAR_LEASE, params![id, holder])
    }

    fn revoke_tokens(&mut self, id: i64, was: i64, reason: &str, now: i64) -> Result<u64> {
        self.token_execute(REVOKE_TOKENS, params![id, was, now, reason])
    }

    fn delete_tokens(&mut self, server_id: &str, client_id: Option<&str>) -> Result<u64> {
        self.token_execute(DELETE_TOKENS, params![server_id, client_id])
    }

    fn list_tokens(&mut self, server_id: Option<&str>) -> Result<Vec<TokenListed>> {
        self.token_run(|tx| match server_id {
            None => tx
                .prepare_cached(LIST_TOKENS)?
                .query_map([], listed)?
                .collect(),
            Some(server) => tx
                .prepare_cached(LIST_TOKENS_OF_SERVER)?
                .query_map([server], listed)?
                .collect(),
        })
    }
}

impl Tx for Rows<'_> {
    fn tokens(&mut self) -> &mut dyn TokenTx {
        self
    }
}
