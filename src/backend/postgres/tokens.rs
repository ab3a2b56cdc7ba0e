//! The PostgreSQL statements of the token sets' row interface, each beside the method that
//! runs it. In a write transaction the row is read `FOR UPDATE`, so two processes beginning
//! a refresh of one set queue on the row and the second reads the first one's lease.

use postgres::types::ToSql;
use postgres::Row;

use std::time::Duration;

use super::connect::Conn;
use super::error::classify;
use super::flows::Rows;
use super::look::{clock_row, read_statement};
use crate::backend::tx::Tx;
use crate::error::Result;
use crate::tokens::tx::{LeaseRow, NewTokens, TokenListed, TokenRow, TokenTx, TokenWatch};

impl Rows<'_> {
    /// Runs `sql` (prepared once a connection) and returns its rows.
    fn token_query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let conn = &mut *self.conn;
        conn.prepared(sql)
            .and_then(|statement| conn.query(&statement, params))
            .map_err(|e| classify(e, self.busy_timeout))
    }

    /// Runs `sql` (prepared once a connection) and returns how many rows it changed.
    fn token_execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let conn = &mut *self.conn;
        conn.prepared(sql)
            .and_then(|statement| conn.execute(&statement, params))
            .map_err(|e| classify(e, self.busy_timeout))
    }
}

/// The columns [`token_row`] reads, in order.
macro_rules! token_columns {
    () => {
        "id, server_id, client_id, generation, access_token, refresh_token, token_type, scope, \
         issuer, extra, received_at, expires_at, replaced, revoked_at, revoked_reason, \
         lease_holder, lease_owner, lease_expires_at"
    };
}

pub(crate) const SELECT_TOKEN_ROW: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM token_sets WHERE server_id = $1 AND client_id = $2"
);

pub(crate) const SELECT_TOKEN_ROW_FOR_UPDATE: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM token_sets WHERE server_id = $1 AND client_id = $2 FOR UPDATE"
);

/// `tokens`' read as one autocommit statement: the clock (read inside it, as the flows' one
/// statement operations do) and the row. `$1` server, `$2` client, `$3` injected now. Always
/// one row: the time, then the columns of [`token_row`] (all NULL when there is no set).
pub(crate) const TOKEN_ROW_NOW: &str = concat!(
    "WITH ",
    clock!(3),
    " SELECT t.now, ",
    token_columns!(),
    " FROM t LEFT JOIN token_sets ON server_id = $1 AND client_id = $2"
);

/// The clock and the row of a server and client, in one round trip.
pub(crate) fn row_now(
    conn: &mut Conn,
    server_id: &str,
    client_id: &str,
    now: Option<i64>,
    busy_timeout: Duration,
) -> Result<(i64, Option<TokenRow>)> {
    let params: [&(dyn ToSql + Sync); 3] = [&server_id, &client_id, &now];
    let rows = read_statement(conn, TOKEN_ROW_NOW, &params, busy_timeout)?;
    let row = clock_row(&rows)?;
    // `id` NULL: the LEFT JOIN found no set.
    let found = row.get::<_, Option<i64>>(1).map(|_| token_row_at(row, 1));
    Ok((row.get(0), found))
}

fn token_row(r: &Row) -> TokenRow {
    token_row_at(r, 0)
}

/// The columns of [`token_columns`] starting at column `at`.
fn token_row_at(r: &Row, at: usize) -> TokenRow {
    TokenRow {
        id: r.get(at),
        server_id: r.get(at + 1),
        client_id: r.get(at + 2),
        generation: r.get(at + 3),
        access_token: r.get(at + 4),
        refresh_token: r.get(at + 5),
        token_type: r.get(at + 6),
        scope: r.get(at + 7),
        issuer: r.get(at + 8),
        extra: r.get(at + 9),
        received_at: r.get(at + 10),
        expires_at: r.get(at + 11),
        replaced: r.get(at + 12),
        revoked_at: r.get(at + 13),
        revoked_reason: r.get(at + 14),
        lease_holder: r.get(at + 15),
        lease_owner: r.get(at + 16),
        lease_expires_at: r.get(at + 17),
    }
}

/// No secret column.
pub(crate) const SELECT_TOKEN_WATCH: &str = "SELECT generation, revoked_at IS NOT NULL, \
     lease_holder, lease_expires_at FROM token_sets WHERE server_id = $1 AND client_id = $2";

/// The unique key says "exists": no row is inserted then, and no error raised.
pub(crate) const INSERT_TOKENS: &str = "INSERT INTO token_sets (server_id, client_id, \
     generation, access_token, refresh_token, token_type, scope, issuer, extra, received_at, \
     expires_at) VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT ON CONSTRAINT token_sets_key DO NOTHING";

pub(crate) const REPLACE_TOKENS: &str = "UPDATE token_sets SET generation = generation + 1, \
     access_token = $3, refresh_token = $4, token_type = $5, scope = $6, issuer = $7, \
     extra = $8, received_at = $9, expires_at = $10, replaced = $11, revoked_at = NULL, \
     revoked_reason = NULL, lease_holder = NULL, lease_owner = NULL, lease_expires_at = NULL \
     WHERE id = $1 AND generation = $2";

pub(crate) const SET_TOKEN_ISSUER: &str =
    "UPDATE token_sets SET issuer = $3 WHERE id = $1 AND generation = $2";

/// The rule's "may lease": this generation, live, refreshable, no lease running at `$6`.
pub(crate) const TAKE_LEASE: &str = "UPDATE token_sets SET lease_holder = $3, \
     lease_owner = $4, lease_expires_at = $5 WHERE id = $1 AND generation = $2 \
     AND revoked_at IS NULL AND refresh_token IS NOT NULL \
     AND (lease_holder IS NULL OR lease_expires_at <= $6)";

pub(crate) const CLEAR_LEASE: &str = "UPDATE token_sets SET lease_holder = NULL, \
     lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_holder = $2";

pub(crate) const REVOKE_TOKENS: &str = "UPDATE token_sets SET generation = generation + 1, \
     access_token = NULL, refresh_token = NULL, token_type = NULL, extra = NULL, \
     revoked_at = $3, revoked_reason = $4, lease_holder = NULL, lease_owner = NULL, \
     lease_expires_at = NULL WHERE id = $1 AND generation = $2 AND revoked_at IS NULL";

pub(crate) const DELETE_TOKENS: &str = "DELETE FROM token_sets WHERE server_id = $1";

pub(crate) const DELETE_TOKENS_OF_CLIENT: &str =
    "DELETE FROM token_sets WHERE server_id = $1 AND client_id = $2";

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

pub(crate) const LIST_TOKENS: &str = listed!("");

pub(crate) const LIST_TOKENS_OF_SERVER: &str = listed!("WHERE server_id = $1");

fn listed(r: &Row) -> TokenListed {
    TokenListed {
        server_id: r.get(0),
        client_id: r.get(1),
        generation: r.get(2),
        received_at: r.get(3),
        expires_at: r.get(4),
        has_refresh_token: r.get(5),
        token_type: r.get(6),
        scope: r.get(7),
        issuer: r.get(8),
        revoked_at: r.get(9),
        revoked_reason: r.get(10),
        lease_owner: r.get(11),
        lease_expires_at: r.get(12),
    }
}

impl TokenTx for Rows<'_> {
    fn now(&self) -> i64 {
        self.now
    }

    fn token_row(&mut self, server_id: &str, client_id: &str) -> Result<Option<TokenRow>> {
        let sql = if self.write {
            SELECT_TOKEN_ROW_FOR_UPDATE
        } else {
            SELECT_TOKEN_ROW
        };
        Ok(self
            .token_query(sql, &[&server_id, &client_id])?
            .first()
            .map(token_row))
    }

    fn token_watch(&mut self, server_id: &str, client_id: &str) -> Result<Option<TokenWatch>> {
        Ok(self
            .token_query(SELECT_TOKEN_WATCH, &[&server_id, &client_id])?
            .first()
            .map(|r| TokenWatch {
                generation: r.get(0),
                revoked: r.get(1),
                lease_holder: r.get(2),
                lease_expires_at: r.get(3),
            }))
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
            &[
                &server_id,
                &client_id,
                &new.access_token,
                &new.refresh_token,
                &new.token_type,
                &new.scope,
                &new.issuer,
                &new.extra,
                &received_at,
                &new.expires_at,
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
            &[
                &id,
                &was,
                &new.access_token,
                &new.refresh_token,
                &new.token_type,
                &new.scope,
                &new.issuer,
                &new.extra,
                &received_at,
                &new.expires_at,
                &replaced,
            ],
        )
    }

    fn set_token_issuer(&mut self, id: i64, was: i64, issuer: &str) -> Result<u64> {
        self.token_execute(SET_TOKEN_ISSUER, &[&id, &was, &issuer])
    }

    fn take_lease(&mut self, id: i64, was: i64, lease: &LeaseRow<'_>, now: i64) -> Result<u64> {
        self.token_execute(
            TAKE_LEASE,
            &[
                &id,
                &was,
                &lease.holder,
                &lease.owner,
                &lease.expires_at,
                &now,
            ],
        )
    }

    fn clear_lease(&mut self, id: i64, holder: &str) -> Result<u64> {
        self.token_execute(CLEAR_LEASE, &[&id, &holder])
    }

    fn revoke_tokens(&mut self, id: i64, was: i64, reason: &str, now: i64) -> Result<u64> {
        self.token_execute(REVOKE_TOKENS, &[&id, &was, &now, &reason])
    }

    fn delete_tokens(&mut self, server_id: &str, client_id: Option<&str>) -> Result<u64> {
        match client_id {
            None => self.token_execute(DELETE_TOKENS, &[&server_id]),
            Some(client_id) => {
                self.token_execute(DELETE_TOKENS_OF_CLIENT, &[&server_id, &client_id])
            }
        }
    }

    fn list_tokens(&mut self, server_id: Option<&str>) -> Result<Vec<TokenListed>> {
        let rows = match server_id {
            None => self.token_query(LIST_TOKENS, &[])?,
            Some(server) => self.token_query(LIST_TOKENS_OF_SERVER, &[&server])?,
        };
        Ok(rows.iter().map(listed).collect())
    }
}

impl Tx for Rows<'_> {
    fn tokens(&mut self) -> &mut dyn TokenTx {
        self
    }
}
