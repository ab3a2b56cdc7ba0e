//! The PostgreSQL floor: the raw `postgres` crate doing what the store's PostgreSQL engine
//! does for a flow, on one connection with prepared statements, and nothing else.
//!
//! The same statements sent the same way: each transaction opens with the engine's one
//! simple-query round trip (`BEGIN ISOLATION LEVEL READ COMMITTED` and the server's clock),
//! then the engine's statement texts, prepared once on the connection, one round trip each,
//! then `COMMIT` (begin: insert. consume: the row read `FOR UPDATE`, a guarded update whose
//! affected-row count is checked. SDK: insert; read by challenge + bind; consume); the same
//! random generation and SHA-256 + base64 work. None of the library's validation, URL
//! parsing, rules, pool or error mapping.
#![allow(dead_code)]

use postgres::{Client, NoTls, SimpleQueryMessage, Statement};

use crate::common::{challenge_of, random_token, state_key, CLIENT, REDIRECT, SERVER, TTL_MS};

/// The schema the floor writes into: the one the migrations produce.
pub const SCHEMA: &str = include_str!("../../schema_postgres.sql");

/// The engine's transaction opening: the isolation level and the server's clock, one round trip.
const BEGIN_AT_SERVER_TIME: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; \
     SELECT floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint";
const COMMIT: &str = "COMMIT";

/// The engine's column list of a row lookup.
macro_rules! flow_columns {
    () => {
        "id, status, expires_at, created_at, server_id, client_id, redirect_uri, issuer, \
         resource, scope, code_verifier, auth_code, error, error_description, state_key, \
         code_challenge, require_issuer, client_created_at"
    };
}

const INSERT: &str = "INSERT INTO flows (state_key, code_challenge, \
     code_verifier, server_id, client_id, redirect_uri, issuer, resource, scope, status, \
     created_at, expires_at, require_issuer, client_created_at, generated_verifier) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ON CONFLICT (code_challenge) WHERE NOT generated_verifier DO NOTHING";
const SELECT_BY_STATE: &str = concat!(
    "SELECT ",
    flow_columns!(),
    " FROM flows WHERE state_key = $1 FOR UPDATE"
);
const SELECT_BY_CHALLENGE: &str = concat!(
    "SELECT ",
    flow_columns!(),
    " FROM flows WHERE code_challenge = $1 AND NOT generated_verifier FOR UPDATE"
);
const BIND: &str = "UPDATE flows SET state_key = $2, status = 'pending', \
     redirect_uri = coalesce($3, redirect_uri), resource = coalesce($4, resource), \
     scope = coalesce($5, scope), issuer = coalesce($6, issuer) \
     WHERE id = $1 AND status = 'unbound'";
const CONSUME: &str = "UPDATE flows SET status = 'consumed', code_verifier = NULL, \
     auth_code = NULL, consumed_at = $2, error = coalesce($3, error) \
     WHERE id = $1 AND status = $4";

/// What a lookup hands back to the caller's checks.
struct RawRow {
    id: i64,
    status: String,
    expires_at: i64,
    verifier: Option<String>,
}

/// One connection with the floor's statements prepared.
pub struct PgFloor {
    client: Client,
    insert: Statement,
    by_state: Statement,
    by_challenge: Statement,
    bind: Statement,
    consume: Statement,
}

impl PgFloor {
    /// Connects to `url` (no TLS: loopback) and prepares the statements; the schema must exist.
    pub fn open(url: &str) -> PgFloor {
        let mut client = Client::connect(url, NoTls).expect("connect the floor");
        let insert = client.prepare(INSERT).unwrap();
        let by_state = client.prepare(SELECT_BY_STATE).unwrap();
        let by_challenge = client.prepare(SELECT_BY_CHALLENGE).unwrap();
        let bind = client.prepare(BIND).unwrap();
        let consume = client.prepare(CONSUME).unwrap();
        PgFloor {
            client,
            insert,
            by_state,
            by_challenge,
            bind,
            consume,
        }
    }

    /// Creates the schema in the (empty) database at `url`.
    pub fn create_schema(url: &str) {
        let mut c = Client::connect(url, NoTls).expect("connect");
        c.batch_execute(SCHEMA).expect("schema_postgres.sql");
    }

    /// Opens a transaction as the engine does; returns the server's time.
    fn begin_tx(&mut self) -> i64 {
        let messages = self.client.simple_query(BEGIN_AT_SERVER_TIME).unwrap();
        messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
                _ => None,
            })
            .expect("the server's time")
    }

    fn commit(&mut self) {
        self.client.batch_execute(COMMIT).unwrap();
    }

    fn row(r: &postgres::Row) -> RawRow {
        RawRow {
            id: r.get(0),
            status: r.get(1),
            expires_at: r.get(2),
            verifier: r.get(10),
        }
    }

    /// `generated`: the verifier is the store's own (`begin`), not the caller's (`save`).
    fn insert(
        &mut self,
        key: Option<&[u8]>,
        challenge: &str,
        verifier: &str,
        status: &str,
        generated: bool,
    ) {
        let redirect = key.map(|_| REDIRECT);
        let now = self.begin_tx();
        let n = self
            .client
            .execute(
                &self.insert,
                &[
                    &key,
                    &challenge,
                    &verifier,
                    &SERVER,
                    &CLIENT,
                    &redirect,
                    &None::<&str>,
                    &None::<&str>,
                    &None::<&str>,
                    &status,
                    &now,
                    &(now + TTL_MS),
                    &false,
                    &None::<i64>,
                    &generated,
                ],
            )
            .unwrap();
        assert_eq!(n, 1);
        self.commit();
    }

    /// `begin`: fresh state and verifier, one insert transaction; returns the state.
    pub fn begin(&mut self) -> String {
        let state = random_token();
        let verifier = random_token();
        let challenge = challenge_of(&verifier);
        self.insert(
            Some(&state_key(&state)),
            &challenge,
            &verifier,
            "pending",
            true,
        );
        state
    }

    /// `save_code_verifier`: one insert transaction of an unbound row.
    pub fn save(&mut self, verifier: &str) -> String {
        let challenge = challenge_of(verifier);
        self.insert(None, &challenge, verifier, "unbound", false);
        challenge
    }

    /// `promote`: the row read by challenge `FOR UPDATE`, the state bound, one transaction.
    pub fn promote(&mut self, state: &str, challenge: &str) {
        let key = state_key(state);
        let now = self.begin_tx();
        let row = self
            .client
            .query_opt(&self.by_challenge, &[&challenge])
            .unwrap()
            .map(|r| Self::row(&r))
            .unwrap();
        assert!(row.status == "unbound" && row.expires_at > now);
        let n = self
            .client
            .execute(
                &self.bind,
                &[
                    &row.id,
                    &&key[..],
                    &REDIRECT,
                    &None::<&str>,
                    &None::<&str>,
                    &None::<&str>,
                ],
            )
            .unwrap();
        assert_eq!(n, 1);
        self.commit();
    }

    /// `consume`: the row read by state key `FOR UPDATE`, wiped and tombstoned, one transaction.
    pub fn consume(&mut self, state: &str) -> String {
        let key = state_key(state);
        let now = self.begin_tx();
        let row = self
            .client
            .query_opt(&self.by_state, &[&&key[..]])
            .unwrap()
            .map(|r| Self::row(&r))
            .unwrap();
        assert!(row.status == "pending" && row.expires_at > now);
        let n = self
            .client
            .execute(&self.consume, &[&row.id, &now, &None::<&str>, &row.status])
            .unwrap();
        assert_eq!(n, 1);
        self.commit();
        row.verifier.unwrap()
    }

    /// The native path: `begin` + `consume`.
    pub fn native_flow(&mut self) -> String {
        let state = self.begin();
        self.consume(&state)
    }

    /// The SDK path: `save` + `promote` + `consume`.
    pub fn sdk_flow(&mut self) -> String {
        let verifier = random_token();
        let state = random_token();
        let challenge = self.save(&verifier);
        // The caller builds the URL on both paths; only the store parses it.
        let url = crate::common::authorization_url(&state, &challenge);
        self.promote(&state, &challenge);
        drop(url);
        self.consume(&state)
    }
}
