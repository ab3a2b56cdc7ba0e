//! The minimal floor: the least a multi-process flow store on SQLite can write. The raw state
//! is the primary key, `begin` is one INSERT transaction and `consume` one `DELETE ...
//! RETURNING` transaction; the SDK path keeps unbound verifiers keyed by challenge and moves
//! one into the flows table at `promote`. No hashing of the state, no tombstone, no damage
//! check, no other index: the same SQLite and the same pragmas as the store.

use std::path::Path;

use oauth_state_store::Durability;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{challenge_of, now_ms, random_token, SERVER, TTL_MS};

const SCHEMA: &str = "CREATE TABLE flows (state TEXT PRIMARY KEY, verifier TEXT NOT NULL, \
     server_id TEXT NOT NULL, expires_at INTEGER NOT NULL) STRICT; \
     CREATE TABLE verifiers (challenge TEXT PRIMARY KEY, verifier TEXT NOT NULL, \
     server_id TEXT NOT NULL, expires_at INTEGER NOT NULL) STRICT;";
const INSERT_FLOW: &str =
    "INSERT INTO flows (state, verifier, server_id, expires_at) VALUES (?1, ?2, ?3, ?4)";
const INSERT_VERIFIER: &str =
    "INSERT INTO verifiers (challenge, verifier, server_id, expires_at) VALUES (?1, ?2, ?3, ?4)";
const TAKE_VERIFIER: &str =
    "DELETE FROM verifiers WHERE challenge = ?1 RETURNING verifier, server_id, expires_at";
const TAKE_FLOW: &str =
    "DELETE FROM flows WHERE state = ?1 RETURNING verifier, server_id, expires_at";

/// One connection on a file of the minimal schema.
pub struct Minimal {
    conn: Connection,
}

impl Minimal {
    /// A new file (or, with `rows > 0`, one holding that many live flows, a third of them
    /// unbound verifiers).
    pub fn open(path: &Path, durability: Durability, rows: usize) -> Minimal {
        let conn = super::bench_connection(path, durability);
        conn.execute_batch(SCHEMA).unwrap();
        let mut m = Minimal { conn };
        m.fill(rows);
        m
    }

    fn fill(&mut self, rows: usize) {
        let tx = self.conn.transaction().unwrap();
        let expires = now_ms() + 3_600_000;
        for i in 0..rows {
            let verifier = random_token();
            if i % 3 == 0 {
                tx.prepare_cached(INSERT_VERIFIER)
                    .unwrap()
                    .execute(params![challenge_of(&verifier), verifier, SERVER, expires])
                    .unwrap();
            } else {
                tx.prepare_cached(INSERT_FLOW)
                    .unwrap()
                    .execute(params![random_token(), verifier, SERVER, expires])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        self.conn
            .pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .unwrap();
    }

    fn write<T>(&mut self, f: impl FnOnce(&Connection) -> T) -> T {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let out = f(&tx);
        tx.commit().unwrap();
        out
    }

    /// `begin`: a fresh state and verifier, one INSERT transaction.
    pub fn begin(&mut self) -> String {
        let state = random_token();
        let verifier = random_token();
        // The caller sends the challenge; the minimal store computes it like the others.
        let _challenge = challenge_of(&verifier);
        self.write(|tx| {
            tx.prepare_cached(INSERT_FLOW)
                .unwrap()
                .execute(params![state, verifier, SERVER, now_ms() + TTL_MS])
                .unwrap()
        });
        state
    }

    /// `consume`: one `DELETE ... RETURNING` transaction; the expiry checked in Rust.
    pub fn consume(&mut self, state: &str) -> String {
        let (verifier, server, expires) = self.write(|tx| {
            tx.prepare_cached(TAKE_FLOW)
                .unwrap()
                .query_row([state], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .optional()
                .unwrap()
                .unwrap()
        });
        assert!(server == SERVER && expires > now_ms());
        verifier
    }

    /// `save_code_verifier`: one INSERT transaction keyed by challenge.
    pub fn save(&mut self, verifier: &str) -> String {
        let challenge = challenge_of(verifier);
        self.write(|tx| {
            tx.prepare_cached(INSERT_VERIFIER)
                .unwrap()
                .execute(params![challenge, verifier, SERVER, now_ms() + TTL_MS])
                .unwrap()
        });
        challenge
    }

    /// `promote`: moves the verifier into the flows table under the state, one transaction.
    pub fn promote(&mut self, state: &str, challenge: &str) {
        self.write(|tx| {
            let (verifier, server, expires): (String, String, i64) = tx
                .prepare_cached(TAKE_VERIFIER)
                .unwrap()
                .query_row([challenge], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap();
            assert!(server == SERVER && expires > now_ms());
            tx.prepare_cached(INSERT_FLOW)
                .unwrap()
                .execute(params![state, verifier, server, expires])
                .unwrap();
        });
    }

    /// The native path: `begin` + `consume`.
    pub fn native_flow(&mut self) -> String {
        let state = self.begin();
        self.consume(&state)
    }

    /// The SDK path: `save` + `promote` + `consume`, building the URL as the others do.
    pub fn sdk_flow(&mut self) -> String {
        let verifier = random_token();
        let state = random_token();
        let challenge = self.save(&verifier);
        let url = super::authorization_url(&state, &challenge);
        self.promote(&state, &challenge);
        drop(url);
        self.consume(&state)
    }
}
