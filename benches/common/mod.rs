//! What the benches share: the flows through the store, the raw-rusqlite floor and the
//! in-memory reference. The command line's bench (`cli/benches/stats.rs`) includes it by path.
#![allow(dead_code)] // each bench uses its own part

use std::collections::HashMap;
use std::hash::Hash;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use oauth_state_store::{BeginRequest, ConsumedFlow, Durability, Store};
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use sha2::{Digest, Sha256};

pub mod child;
pub mod minimal;

pub const SCHEMA: &str = include_str!("../../schema.sql");
pub const SERVER: &str = "https://mcp.example.com";
pub const CLIENT: &str = "bench-client";
pub const REDIRECT: &str = "http://127.0.0.1:33418/callback";
pub const TTL_MS: i64 = 600_000;

pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn state_key(state: &str) -> [u8; 32] {
    Sha256::digest(state.as_bytes()).into()
}

/// The median of per-round values (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Latencies in microseconds: p50, p99, max, in milliseconds (NaN when there are none).
pub fn summary(mut us: Vec<u64>) -> (f64, f64, f64) {
    if us.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    us.sort_unstable();
    let at = |p: f64| us[((us.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    (at(0.50), at(0.99), *us.last().unwrap() as f64 / 1000.0)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The authorization URL an SDK builds; the store's `promote` reads it back.
pub fn authorization_url(state: &str, challenge: &str) -> String {
    format!(
        "https://auth.example.com/authorize?response_type=code&client_id={CLIENT}\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A33418%2Fcallback&state={state}\
         &code_challenge={challenge}&code_challenge_method=S256"
    )
}

// ---- the store's flows -------------------------------------------------------------------

/// The native path through the store: `begin` + `consume`.
pub fn store_native_flow(store: &Store) -> ConsumedFlow {
    let flow = store
        .begin(
            BeginRequest::new(SERVER)
                .client_id(CLIENT)
                .redirect_uri(REDIRECT),
        )
        .unwrap();
    store.consume(flow.state().secret()).unwrap()
}

/// The SDK path through the store: `save_code_verifier` + `promote` + `consume`.
pub fn store_sdk_flow(store: &Store) -> ConsumedFlow {
    let verifier = random_token();
    let state = random_token();
    let challenge = store
        .save_code_verifier(SERVER, Some(CLIENT), &verifier)
        .unwrap();
    let url = authorization_url(&state, challenge.as_str());
    store.promote(SERVER, Some(CLIENT), &url).unwrap();
    store.consume(&state).unwrap()
}

// ---- the floor: raw rusqlite --------------------------------------------------------------

// The store's own statements (src/backend/sqlite/flows.rs), as it runs them.
const INSERT: &str = "INSERT INTO flows (id, state_key, code_challenge, \
     code_verifier, server_id, client_id, redirect_uri, issuer, resource, scope, status, \
     created_at, expires_at, require_issuer, client_created_at, generated_verifier) \
     VALUES (coalesce((SELECT max(id) + 1 FROM flows \
     WHERE id BETWEEN ?12 * 1048576 AND ?12 * 1048576 + 1048575), ?12 * 1048576), \
     ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const BIND: &str = "UPDATE flows SET state_key = ?2, status = 'pending', \
     redirect_uri = coalesce(?3, redirect_uri), resource = coalesce(?4, resource), \
     scope = coalesce(?5, scope), issuer = coalesce(?6, issuer), \
     discovery = coalesce(?7, discovery), require_issuer = ?8 \
     WHERE id = ?1 AND status = 'unbound'";
const CONSUME: &str = "UPDATE flows SET status = 'consumed', code_verifier = NULL, \
     auth_code = NULL, discovery = NULL, consumed_at = ?2, error = coalesce(?3, error) \
     WHERE id = ?1 AND status = ?4";

/// The lookups by state key and by challenge, as the store runs them.
const SELECT_BY_STATE: &str = "SELECT id, status, expires_at, created_at, server_id, \
     client_id, redirect_uri, issuer, resource, scope, code_verifier, auth_code, error, \
     error_description, state_key, code_challenge, require_issuer, client_created_at, \
     discovery FROM flows WHERE id = (SELECT id FROM flows WHERE state_key = ?1)";
const SELECT_BY_CHALLENGE: &str = "SELECT id, status, expires_at, created_at, server_id, \
     client_id, redirect_uri, issuer, resource, scope, code_verifier, auth_code, error, \
     error_description, state_key, code_challenge, require_issuer, client_created_at, \
     discovery FROM flows WHERE id = (SELECT id FROM flows \
     WHERE code_challenge = ?1 AND generated_verifier = 0)";

/// The fields the store reads back in a lookup.
pub struct RawRow {
    id: i64,
    status: String,
    expires_at: i64,
    verifier: Option<String>,
}

/// One connection, the store's pragmas, no checks beyond what the SQL itself needs.
pub struct Floor {
    conn: Connection,
}

impl Floor {
    pub fn open(path: &Path, durability: Durability) -> Floor {
        Floor::open_with_schema(path, durability, SCHEMA)
    }

    /// On a new file of another schema (`benches/layouts.rs`: the store's statements over
    /// other index sets).
    pub fn open_with_schema(path: &Path, durability: Durability, schema: &str) -> Floor {
        let conn = bench_connection(path, durability);
        conn.execute_batch(schema).unwrap();
        Floor::new(conn)
    }

    fn new(conn: Connection) -> Floor {
        Floor { conn }
    }

    /// On a store file that already exists (a copy of a filled one).
    pub fn open_existing(path: &Path, durability: Durability) -> Floor {
        Floor::new(bench_connection(path, durability))
    }

    /// The row a key finds.
    fn find(tx: &Connection, sql: &str, key: &dyn rusqlite::ToSql) -> Option<RawRow> {
        let mut stmt = tx.prepare_cached(sql).unwrap();
        let mut rows: Vec<RawRow> = stmt
            .query_map([key], |r| {
                Ok(RawRow {
                    id: r.get(0)?,
                    status: r.get(1)?,
                    expires_at: r.get(2)?,
                    verifier: r.get(10)?,
                })
            })
            .unwrap()
            .take(1)
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        rows.pop()
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
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let now = now_ms();
        let redirect = key.map(|_| REDIRECT);
        tx.prepare_cached(INSERT)
            .unwrap()
            .execute(params![
                key,
                challenge,
                verifier,
                SERVER,
                CLIENT,
                redirect,
                None::<&str>,
                None::<&str>,
                None::<&str>,
                status,
                now,
                now + TTL_MS,
                false,
                None::<i64>,
                generated
            ])
            .unwrap();
        tx.commit().unwrap();
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

    /// `promote`: look the row up by challenge, bind the state, in one transaction.
    pub fn promote(&mut self, state: &str, challenge: &str) {
        let key = state_key(state);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let now = now_ms();
        let row = Self::find(&tx, SELECT_BY_CHALLENGE, &challenge).unwrap();
        assert!(row.status == "unbound" && row.expires_at > now);
        let n = tx
            .prepare_cached(BIND)
            .unwrap()
            .execute(params![
                row.id,
                &key[..],
                REDIRECT,
                None::<&str>,
                None::<&str>,
                None::<&str>,
                None::<&str>,
                false
            ])
            .unwrap();
        assert_eq!(n, 1);
        tx.commit().unwrap();
    }

    /// `consume`: look the row up by state key, wipe and tombstone it, in one transaction.
    pub fn consume(&mut self, state: &str) -> String {
        let key = state_key(state);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let now = now_ms();
        let row = Self::find(&tx, SELECT_BY_STATE, &&key[..]).unwrap();
        assert!(row.status == "pending" && row.expires_at > now);
        tx.prepare_cached(CONSUME)
            .unwrap()
            .execute(params![row.id, now, None::<&str>, "pending"])
            .unwrap();
        tx.commit().unwrap();
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
        let url = authorization_url(&state, &challenge);
        self.promote(&state, &challenge);
        drop(url);
        self.consume(&state)
    }
}

/// One connection with the store's pragmas (WAL, `secure_delete`, the durability's
/// `synchronous`), as both floors use it.
pub fn bench_connection(path: &Path, durability: Durability) -> Connection {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_EXRESCODE;
    let conn = Connection::open_with_flags(path, flags).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
        .unwrap();
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)
        .unwrap();
    conn.set_prepared_statement_cache_capacity(32);
    conn.pragma_update(None, "secure_delete", "ON").unwrap();
    conn.pragma_update(None, "cell_size_check", "ON").unwrap();
    let sync = match durability {
        Durability::Full => "FULL",
        _ => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync).unwrap();
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn
}

/// Fills the store file at `path` with `rows` live flows through the store itself (so the
/// rows are what the current layout writes): a third unbound verifiers, a third pending, a
/// third consumed tombstones.
pub fn fill_store(path: &Path, rows: usize) {
    let store = Store::open(path).unwrap();
    for i in 0..rows {
        match i % 3 {
            0 => drop(
                store
                    .save_code_verifier(SERVER, Some(CLIENT), &random_token())
                    .unwrap(),
            ),
            1 => drop(
                store
                    .begin(BeginRequest::new(SERVER).client_id(CLIENT))
                    .unwrap(),
            ),
            _ => drop(store_native_flow(&store)),
        }
    }
}

// ---- expired rows written straight into the schema, for the sweep benches ---------------

/// The id as the store numbers it: the next free one of the expiry's millisecond.
const POPULATE: &str = "INSERT INTO flows (id, state_key, code_challenge, code_verifier, \
     server_id, client_id, status, created_at, expires_at, generated_verifier) \
     VALUES (coalesce((SELECT max(id) + 1 FROM flows \
     WHERE id BETWEEN ?8 * 1048576 AND ?8 * 1048576 + 1048575), ?8 * 1048576), \
     ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?1 IS NOT NULL)";
/// The one raw statement a sweep is compared against: the expired rows are the front of the
/// table (ids below `(?1 + 1) * 2^20`), found by rowid as the store's sweep finds them.
pub const RAW_DELETE: &str = "DELETE FROM flows WHERE id < (?1 + 1) * 1048576 AND expires_at <= ?1";

/// A store file with `expired` expired rows (unbound, pending and consumed alike) and
/// `live` pending ones, interleaved, written straight into the schema.
pub fn populate(path: &Path, expired: usize, live: usize) {
    drop(Store::open(path).unwrap());
    let mut conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx.prepare(POPULATE).unwrap();
        let now = now_ms();
        let every = (expired + live) / live.max(1);
        let (mut e, mut l) = (0, 0);
        let mut i = 0usize;
        while e < expired || l < live {
            i += 1;
            let is_live = l < live && (i.is_multiple_of(every) || e == expired);
            let verifier = random_token();
            let challenge = challenge_of(&verifier);
            let key: [u8; 32] = rand::random();
            let (status, expires) = if is_live {
                l += 1;
                ("pending", now + 3_600_000)
            } else {
                e += 1;
                let s = ["unbound", "pending", "consumed"][i % 3];
                (s, now - 3_600_000 + (i % 100_000) as i64)
            };
            let key = (status != "unbound").then_some(&key[..]);
            let verifier = (status != "consumed").then_some(verifier);
            insert
                .execute(params![
                    key,
                    challenge,
                    verifier,
                    SERVER,
                    CLIENT,
                    status,
                    expires - 600_000,
                    expires
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
}

// ---- the in-memory reference --------------------------------------------------------------

pub struct Entry {
    challenge: String,
    verifier: Option<String>,
    expires_at: i64,
    consumed: bool,
}

impl Entry {
    /// A fresh entry for `verifier`, expiring after the TTL.
    fn new(verifier: String) -> Entry {
        Entry {
            challenge: challenge_of(&verifier),
            verifier: Some(verifier),
            expires_at: now_ms() + TTL_MS,
            consumed: false,
        }
    }
}

/// Inserts `entry` under `key`, which must not be there yet.
fn insert_new<K: Eq + Hash>(map: &Mutex<HashMap<K, Entry>>, key: K, entry: Entry) {
    let old = map.lock().unwrap().insert(key, entry);
    assert!(old.is_none());
}

/// Flows in process memory: what a client keeps today, lost with the process.
#[derive(Default)]
pub struct MemStore {
    pending: Mutex<HashMap<[u8; 32], Entry>>,
    unbound: Mutex<HashMap<String, Entry>>,
}

impl MemStore {
    pub fn begin(&self) -> String {
        let state = random_token();
        let verifier = random_token();
        insert_new(&self.pending, state_key(&state), Entry::new(verifier));
        state
    }

    pub fn save(&self, verifier: &str) -> String {
        let entry = Entry::new(verifier.to_owned());
        let challenge = entry.challenge.clone();
        insert_new(&self.unbound, challenge.clone(), entry);
        challenge
    }

    pub fn promote(&self, state: &str, challenge: &str) {
        let entry = self.unbound.lock().unwrap().remove(challenge).unwrap();
        assert!(entry.expires_at > now_ms() && entry.challenge == challenge);
        self.pending.lock().unwrap().insert(state_key(state), entry);
    }

    pub fn consume(&self, state: &str) -> String {
        let now = now_ms();
        let mut pending = self.pending.lock().unwrap();
        let entry = pending.get_mut(&state_key(state)).unwrap();
        assert!(!entry.consumed && entry.expires_at > now);
        entry.consumed = true;
        entry.verifier.take().unwrap()
    }

    /// The native path: `begin` + `consume`.
    pub fn native_flow(&self) -> String {
        let state = self.begin();
        self.consume(&state)
    }

    /// The SDK path: `save` + `promote` + `consume`, building the URL as the floor does.
    pub fn sdk_flow(&self) -> String {
        let verifier = random_token();
        let state = random_token();
        let challenge = self.save(&verifier);
        let url = authorization_url(&state, &challenge);
        self.promote(&state, &challenge);
        drop(url);
        self.consume(&state)
    }
}

/// A private temp dir (removed on drop) and a database path in it.
pub fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("oauth-state-store-bench")
        .tempdir()
        .expect("temp dir");
    let path = dir.path().join("flows.db");
    (dir, path)
}
