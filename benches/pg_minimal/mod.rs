//! The minimal PostgreSQL floor: the least a flow store on PostgreSQL can send. The raw state
//! is the primary key; `begin` is one autocommit `INSERT` and `consume` one autocommit
//! `DELETE ... RETURNING`; the SDK path keeps unbound verifiers keyed by challenge, and
//! `promote` moves one into the flows table with one statement (a `DELETE ... RETURNING`
//! feeding an `INSERT`). Every statement is prepared once on the connection, reads the
//! server's clock inside itself, and is one round trip: 2 a native flow, 3 an SDK flow. No
//! hashing of the state, no tombstone, no rule, no secondary index, no CHECK constraint.
#![allow(dead_code)]

use postgres::{Client, NoTls, Statement};

use crate::common::{challenge_of, random_token, SERVER, TTL_MS};

/// The floor's two tables.
pub const SCHEMA: &str = "CREATE TABLE mflows (state TEXT PRIMARY KEY, verifier TEXT NOT NULL, \
     server_id TEXT NOT NULL, expires_at BIGINT NOT NULL); \
     CREATE TABLE mverifiers (challenge TEXT PRIMARY KEY, verifier TEXT NOT NULL, \
     server_id TEXT NOT NULL, expires_at BIGINT NOT NULL);";

/// The server's clock in Unix ms, inside a statement.
macro_rules! server_ms {
    () => {
        "floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint"
    };
}

const INSERT_FLOW: &str = concat!(
    "INSERT INTO mflows VALUES ($1, $2, $3, ",
    server_ms!(),
    " + $4)"
);
const INSERT_VERIFIER: &str = concat!(
    "INSERT INTO mverifiers VALUES ($1, $2, $3, ",
    server_ms!(),
    " + $4)"
);
const PROMOTE: &str = "WITH v AS (DELETE FROM mverifiers WHERE challenge = $1 \
     RETURNING verifier, server_id, expires_at) \
     INSERT INTO mflows SELECT $2, verifier, server_id, expires_at FROM v \
     RETURNING server_id, expires_at";
const TAKE: &str = concat!(
    "WITH t AS (DELETE FROM mflows WHERE state = $1 RETURNING verifier, server_id, expires_at) \
     SELECT verifier, server_id, expires_at, expires_at > ",
    server_ms!(),
    " FROM t"
);

/// One connection with the floor's statements prepared.
pub struct Minimal {
    client: Client,
    insert_flow: Statement,
    insert_verifier: Statement,
    promote: Statement,
    take: Statement,
}

impl Minimal {
    /// Creates the floor's tables in the (empty) database at `url`.
    pub fn create_schema(url: &str) {
        let mut c = Client::connect(url, NoTls).expect("connect");
        c.batch_execute(SCHEMA).expect("the minimal floor's schema");
    }

    /// Connects to `url` (no TLS: loopback) and prepares the statements.
    pub fn open(url: &str) -> Minimal {
        let mut client = Client::connect(url, NoTls).expect("connect the minimal floor");
        let mut prepare = |sql: &str| client.prepare(sql).expect("prepare");
        let (insert_flow, insert_verifier) = (prepare(INSERT_FLOW), prepare(INSERT_VERIFIER));
        let (promote, take) = (prepare(PROMOTE), prepare(TAKE));
        Minimal {
            client,
            insert_flow,
            insert_verifier,
            promote,
            take,
        }
    }

    /// A new flow under a random state; returns the state.
    pub fn begin(&mut self) -> String {
        let state = random_token();
        let verifier = random_token();
        let _challenge = challenge_of(&verifier); // what the authorization URL would carry
        let n = self
            .client
            .execute(&self.insert_flow, &[&state, &verifier, &SERVER, &TTL_MS])
            .expect("insert a flow");
        assert_eq!(n, 1);
        state
    }

    /// Takes the flow of `state`: its verifier, or `None` when it is unknown or expired.
    pub fn consume(&mut self, state: &str) -> Option<String> {
        let row = self
            .client
            .query_opt(&self.take, &[&state])
            .expect("take a flow")?;
        let live: bool = row.get(3);
        live.then(|| row.get(0))
    }

    /// begin + consume.
    pub fn native_flow(&mut self) -> String {
        let state = self.begin();
        self.consume(&state).expect("the flow just begun")
    }

    /// save + promote + consume.
    pub fn sdk_flow(&mut self) -> String {
        let verifier = random_token();
        let challenge = challenge_of(&verifier);
        let state = random_token();
        let n = self
            .client
            .execute(
                &self.insert_verifier,
                &[&challenge, &verifier, &SERVER, &TTL_MS],
            )
            .expect("save a verifier");
        assert_eq!(n, 1);
        let promoted = self
            .client
            .query_opt(&self.promote, &[&challenge, &state])
            .expect("promote");
        assert!(promoted.is_some(), "the verifier just saved");
        let taken = self.consume(&state).expect("the flow just promoted");
        assert_eq!(taken, verifier);
        taken
    }
}
