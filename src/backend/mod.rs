//! The storage seam: what an engine supplies, and the one enum that picks the engine.
//!
//! Every operation's transaction body is written once, in [`crate::flow::ops`], over the
//! per-transaction row interface [`FlowTx`]; every verdict comes from [`crate::flow::rules`].
//! An engine supplies no rule, only storage.
//!
//! # Adding an engine
//!
//! A second engine (PostgreSQL, say, in `backend/postgres/`) implements:
//!
//! 1. **[`FlowTx`]** on its transaction type: one method a statement, each statement a named
//!    `const` beside the method that runs it. The methods take values the operation computed
//!    (an id, a state key, the bounds of "live" from [`rules`](crate::flow::rules)); none
//!    decides anything. Guarded updates (`bind`, `set_callback`, `mark_consumed`) are
//!    conditional on the status the operation read and return the number of rows they changed;
//!    the operation checks it. `insert` maps a unique violation to
//!    [`Error::DuplicateState`] or [`Error::DuplicateChallenge`], never a prior read.
//! 2. **A transaction** around a closure: `write` (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: READ
//!    COMMITTED with the rows read `FOR UPDATE`) commits on `Ok`, rolls back on `Err`, and
//!    turns an [`Outcome::CommitThenFail`] into its error after the commit; `read` gives a
//!    consistent snapshot. Each supplies [`FlowTx::now`] for its transaction: SQLite the
//!    injectable client clock, PostgreSQL the server's clock read in the transaction unless a
//!    test injected a clock.
//! 3. **A batch session** for sweeps ([`Session`]): a held connection on which several short
//!    write transactions run, with whatever the engine wants between batches.
//! 4. **Its migrations, its file or connection checks, and its error mapping**: storage
//!    failures become [`Error::Busy`], [`Error::StorageFull`], [`Error::ReadOnly`],
//!    [`Error::Corrupt`] or [`Error::Storage`], with the engine's own error as an opaque
//!    [`StorageError`](crate::error::StorageError) source.
//! 5. **A variant of [`Engine`] and of [`Session`]**, and its arm in each of their `match`es.
//!    Then the conformance suite (`tests/conformance/`) gets a factory for it and must pass
//!    unchanged.

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod sqlite;
pub(crate) mod tokens;

use std::fmt;
use std::path::Path;

use crate::admin::{CompactReport, FileInfo};
use crate::backend::sqlite::migrate::MigrationReport;
use crate::error::{Error, Result};
use crate::flow::promotion::Length;
use crate::flow::{FlowInfo, Status};

/// Whether `s` names a PostgreSQL database (`postgres://` or `postgresql://`) rather than a
/// file: [`Store::open`](crate::Store::open) picks the engine by it.
pub(crate) fn is_postgres_url(s: &str) -> bool {
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// A flows row as an operation reads it inside its transaction. Its `Debug` leaves the
/// secrets out (see [`redacted`]).
pub(crate) struct FlowRow {
    /// The engine's row id (what the guarded updates name).
    pub id: i64,
    pub status: Status,
    pub expires_at: i64,
    pub created_at: i64,
    pub server_id: String,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub issuer: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
    /// A secret; `None` once wiped.
    pub verifier: Option<String>,
    /// A secret; `None` once wiped.
    pub auth_code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub state_key: Option<Vec<u8>>,
    pub code_challenge: String,
    pub require_issuer: bool,
    pub client_created_at: Option<i64>,
    /// An SDK's discovery state (column `discovery`); `None` once consumed.
    pub discovery: Option<String>,
}

impl FlowRow {
    /// The row's non-secret description.
    pub(crate) fn info(&self) -> FlowInfo {
        FlowInfo {
            server_id: self.server_id.clone(),
            client_id: self.client_id.clone(),
            status: self.status,
            redirect_uri: self.redirect_uri.clone(),
            issuer: self.issuer.clone(),
            resource: self.resource.clone(),
            scope: self.scope.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

/// A row to insert. Its `Debug` leaves the verifier and the state key out.
pub(crate) struct NewFlow<'a> {
    /// `None` for an unbound verifier.
    pub state_key: Option<&'a [u8; 32]>,
    pub code_challenge: &'a str,
    pub verifier: &'a str,
    pub server_id: &'a str,
    pub client_id: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub issuer: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub status: Status,
    pub require_issuer: bool,
    pub client_created_at: Option<i64>,
    /// The store generated the verifier (32 random bytes): its challenge cannot repeat and is
    /// never looked up, so an engine may leave it out of its challenge index (SQLite's
    /// `flows.generated_verifier`). `false` for an unbound row and a caller's verifier.
    pub generated_verifier: bool,
}

/// What `bind` writes on an unbound row: its state key, and the URL's fields where given
/// (`None` keeps the stored value). Its `Debug` prints the discovery state's length only.
pub(crate) struct Binding<'a> {
    pub state_key: &'a [u8; 32],
    pub redirect_uri: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub scope: Option<&'a str>,
    /// The authorization server's issuer (RFC 9207), when the caller knows it at promote.
    pub issuer: Option<&'a str>,
    /// The callback must carry `iss` equal to the issuer (an unbound row never requires it).
    pub require_issuer: bool,
    /// An SDK's discovery state, when the caller gives it at promote.
    pub discovery: Option<&'a str>,
}

/// What a callback delivered, as recorded on a pending row. Its `Debug` leaves the code out.
#[derive(Clone, Copy)]
pub(crate) enum CallbackResult<'a> {
    /// `?code=...`: the row becomes `completed` and keeps the code.
    Code(&'a str),
    /// `?error=...`: the row becomes `failed`; its verifier is wiped.
    Error {
        error: &'a str,
        description: Option<&'a str>,
    },
}

impl CallbackResult<'_> {
    /// The status the row gets.
    pub(crate) fn status(&self) -> Status {
        match self {
            CallbackResult::Code(_) => Status::Completed,
            CallbackResult::Error { .. } => Status::Failed,
        }
    }
}

/// A stored verifier with the challenge it must hash to. Its `Debug` leaves the verifier out.
pub(crate) struct StoredVerifier {
    pub verifier: String,
    pub challenge: String,
}

/// What the `Debug` of a row type prints in place of a secret that is there (`None` stays
/// `None`, so a wiped verifier is still told apart from a present one).
fn redacted<T>(secret: &Option<T>) -> Option<&'static str> {
    secret.as_ref().map(|_| "[redacted]")
}

impl fmt::Debug for FlowRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowRow")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .field("server_id", &self.server_id)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("issuer", &self.issuer)
            .field("resource", &self.resource)
            .field("scope", &self.scope)
            .field("verifier", &redacted(&self.verifier))
            .field("auth_code", &redacted(&self.auth_code))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("state_key", &redacted(&self.state_key))
            .field("code_challenge", &self.code_challenge)
            .field("require_issuer", &self.require_issuer)
            .field("client_created_at", &self.client_created_at)
            .field("discovery", &self.discovery.as_deref().map(Length))
            .finish()
    }
}

impl fmt::Debug for Binding<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Binding")
            .field("state_key", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .field("resource", &self.resource)
            .field("scope", &self.scope)
            .field("issuer", &self.issuer)
            .field("require_issuer", &self.require_issuer)
            .field("discovery", &self.discovery.map(Length))
            .finish()
    }
}

impl fmt::Debug for NewFlow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewFlow")
            .field("state_key", &redacted(&self.state_key))
            .field("code_challenge", &self.code_challenge)
            .field("verifier", &"[redacted]")
            .field("server_id", &self.server_id)
            .field("client_id", &self.client_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for CallbackResult<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallbackResult::Code(_) => f.write_str("Code([redacted])"),
            CallbackResult::Error { error, description } => f
                .debug_struct("Error")
                .field("error", error)
                .field("description", description)
                .finish(),
        }
    }
}

impl fmt::Debug for StoredVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredVerifier")
            .field("verifier", &"[redacted]")
            .field("challenge", &self.challenge)
            .finish()
    }
}

/// One status's line of the statistics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatusStats {
    pub status: Status,
    pub count: u64,
    pub min_expiry: Option<i64>,
    pub max_expiry: Option<i64>,
    pub expired: u64,
}

/// One row as `list` returns it: no secret.
#[derive(Debug)]
pub(crate) struct ListedRow {
    pub state_key: Option<Vec<u8>>,
    pub server_id: String,
    pub client_id: Option<String>,
    pub status: Status,
    pub created_at: i64,
    pub expires_at: i64,
    /// The `error` column: on a tombstone, why the flow ended (see
    /// [`rules::end_reason`](crate::flow::rules::end_reason)).
    pub error: Option<String>,
}

/// One chunk of a walk in id order: the statuses of the rows it deleted, and the last id it
/// walked (`None` when it reached the end of the table: the walk is over).
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub deleted: Vec<Status>,
    pub last: Option<i64>,
}

/// "Live at a time", as [`rules::live_at`](crate::flow::rules::live_at) defines it, in the
/// bounds a many-row statement compares columns with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Live {
    /// Live rows expire strictly after this.
    pub expires_after: i64,
    /// Live rows were created at or before this.
    pub created_by: i64,
}

/// The per-transaction row interface: one method a statement, no decisions.
///
/// Every method runs inside the transaction the engine opened for the operation. Methods that
/// change a row by id return the number of rows changed, for the operation to check.
pub(crate) trait FlowTx {
    /// This transaction's time, Unix milliseconds.
    fn now(&self) -> i64;

    /// The same transaction's token-set statements ([`tokens::TokenTx`]).
    fn tokens(&mut self) -> &mut dyn tokens::TokenTx;

    /// The row whose state key is `key` (read for update in a write transaction).
    fn by_state(&mut self, key: &[u8; 32]) -> Result<Option<FlowRow>>;

    /// The row whose code challenge is `challenge` (read for update in a write transaction).
    fn by_challenge(&mut self, challenge: &str) -> Result<Option<FlowRow>>;

    /// Inserts a row; a unique violation is [`Error::DuplicateState`] or
    /// [`Error::DuplicateChallenge`].
    fn insert(&mut self, flow: &NewFlow<'_>, created_at: i64, expires_at: i64) -> Result<()>;

    /// Binds the row `id`, if it is still `unbound`, to a state.
    ///
    /// # Errors
    /// [`Error::DuplicateState`] when another row has the state key.
    fn bind(&mut self, id: i64, binding: &Binding<'_>) -> Result<u64>;

    /// Records a callback's result on the row `id`, if it is still `pending`.
    fn set_callback(&mut self, id: i64, result: &CallbackResult<'_>) -> Result<u64>;

    /// Makes the row `id`, if its status is still `was`, a tombstone consumed at `now`: wipes
    /// its verifier and code, and keeps `ended` (the reason a flow was ended) when given.
    fn mark_consumed(&mut self, id: i64, was: Status, ended: Option<&str>) -> Result<u64>;

    /// Deletes the row `id` if its status is still `was`.
    fn delete(&mut self, id: i64, was: Status) -> Result<u64>;

    /// Up to `limit` verifiers of live rows of `server_id` and exactly `client_id` in one of
    /// `statuses`.
    fn live_verifiers(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
        live: Live,
        limit: u32,
    ) -> Result<Vec<StoredVerifier>>;

    /// How many rows [`FlowTx::live_verifiers`] would find without its limit.
    fn count_live(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
        live: Live,
    ) -> Result<u64>;

    /// Is any live row in one of `statuses` waiting at one of `redirect_uris`?
    fn any_live_for_redirect(
        &mut self,
        statuses: &[Status],
        live: Live,
        redirect_uris: &[&str; 2],
    ) -> Result<bool>;

    /// Deletes the rows of `server_id` (of `client_id` only, when given) in `statuses`.
    fn delete_of_server(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
    ) -> Result<u64>;

    /// Deletes up to `limit` rows expiring at or before `expired_by`, soonest first; returns
    /// the status each had.
    fn delete_expired_batch(&mut self, expired_by: i64, limit: u32) -> Result<Vec<Status>>;

    /// Walks at most `walk` rows after the id `after`, in id order, and deletes the first
    /// `limit` of them in `statuses` that ended (consumed, or were created when never consumed)
    /// at or before `ended_by`: one bounded chunk of `sweep --older-than`, which searches no
    /// index. [`Chunk::last`] is the last row deleted when `limit` were, else the last row
    /// walked, else `None` (the walk reached the end of the table).
    fn delete_ended_chunk(
        &mut self,
        statuses: &[Status],
        ended_by: i64,
        after: i64,
        walk: u32,
        limit: u32,
    ) -> Result<Chunk>;

    /// Counts by status of the rows [`FlowTx::delete_expired_batch`] and, with `ended`,
    /// [`FlowTx::delete_ended_chunk`] would delete (then reading the whole table).
    fn count_removable(
        &mut self,
        expired_by: i64,
        ended: Option<(&[Status], i64)>,
    ) -> Result<Vec<(Status, u64)>>;

    /// One line a status present: counts, expiry range, how many expired at or before
    /// `expired_by`.
    fn stats(&mut self, expired_by: i64) -> Result<Vec<StatusStats>>;

    /// Rows soonest expiry first, optionally of one server and one status, at most `limit`.
    fn list(
        &mut self,
        server_id: Option<&str>,
        status: Option<Status>,
        limit: Option<u32>,
    ) -> Result<Vec<ListedRow>>;
}

/// What a write transaction's body decided, when it did not fail outright (an `Err` rolls the
/// transaction back).
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    /// Commit and return the value.
    Done(T),
    /// Commit the change made (an expired row deleted, a flow ended), then report this error.
    CommitThenFail(Error),
}

impl<T> Outcome<T> {
    /// The same outcome with its value mapped.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Done(v) => Outcome::Done(f(v)),
            Outcome::CommitThenFail(e) => Outcome::CommitThenFail(e),
        }
    }

    /// The result the caller sees once the transaction has committed.
    pub(crate) fn into_result(self) -> Result<T> {
        match self {
            Outcome::Done(v) => Ok(v),
            Outcome::CommitThenFail(e) => Err(e),
        }
    }
}

/// Whether a write wipes a secret (a verifier or code set to NULL, a row deleted): an engine
/// that keeps old page images (SQLite's WAL) may scrub them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wipe {
    /// The write removes no secret.
    Nothing,
    /// The write removes a secret.
    Secret,
}

/// The engine a [`Store`](crate::Store) runs on, chosen at open.
pub(crate) enum Engine {
    /// The embedded default: one SQLite file (or a private in-memory database).
    Sqlite(sqlite::Sqlite),
    /// A PostgreSQL database named by a URL (feature `postgres`).
    #[cfg(feature = "postgres")]
    Postgres(self::postgres::Postgres),
}

impl Engine {
    /// Runs `body` in one write transaction; see [`Outcome`].
    pub(crate) fn write<T: Send>(
        &self,
        wipe: Wipe,
        body: impl FnOnce(&mut dyn FlowTx) -> Result<Outcome<T>> + Send,
    ) -> Result<T> {
        match self {
            Engine::Sqlite(e) => e.write(wipe, body),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.write(body),
        }
    }

    /// Runs `body` in one read transaction (a consistent snapshot).
    pub(crate) fn read<T: Send>(
        &self,
        body: impl FnOnce(&mut dyn FlowTx) -> Result<T> + Send,
    ) -> Result<T> {
        match self {
            Engine::Sqlite(e) => e.read(body),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.read(body),
        }
    }

    /// A held connection for a run of short write transactions (a sweep).
    pub(crate) fn session(&self) -> Result<Session<'_>> {
        match self {
            Engine::Sqlite(e) => Ok(Session::Sqlite(e.session()?)),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => Ok(Session::Postgres(e.session()?)),
        }
    }

    /// After a bulk wipe (sweep, invalidate): let the engine clear old copies of what was
    /// wiped.
    pub(crate) fn after_bulk_wipe(&self) -> Result<()> {
        match self {
            Engine::Sqlite(e) => e.scrub_wal(),
            // Dead row versions wait for (auto)vacuum; `sweep --vacuum` runs one.
            #[cfg(feature = "postgres")]
            Engine::Postgres(_) => Ok(()),
        }
    }

    /// The store's permanent identity, read when it was opened.
    pub(crate) fn store_id(&self) -> &str {
        match self {
            Engine::Sqlite(e) => e.store_id(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.store_id(),
        }
    }

    /// The database file, for an engine that has one.
    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Engine::Sqlite(e) => e.path(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(_) => None,
        }
    }

    /// What migrating at open did.
    pub(crate) fn migration(&self) -> MigrationReport {
        match self {
            Engine::Sqlite(e) => e.migration(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.migration(),
        }
    }

    /// Facts about the database.
    pub(crate) fn file_info(&self) -> Result<FileInfo> {
        match self {
            Engine::Sqlite(e) => e.file_info(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.file_info(),
        }
    }

    /// Reclaims space.
    pub(crate) fn compact(&self) -> Result<CompactReport> {
        match self {
            Engine::Sqlite(e) => e.compact(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.compact(),
        }
    }
}

/// A held connection on which a sweep runs its batches.
pub(crate) enum Session<'e> {
    /// SQLite: the automatic checkpoint is off for the session, a passive one runs between
    /// batches.
    Sqlite(sqlite::Session<'e>),
    /// PostgreSQL: a held connection; batches skip rows that live operations hold.
    #[cfg(feature = "postgres")]
    Postgres(self::postgres::Session<'e>),
}

impl Session<'_> {
    /// Runs `body` in one write transaction on the held connection; see [`Outcome`].
    pub(crate) fn write<T: Send>(
        &mut self,
        body: impl FnOnce(&mut dyn FlowTx) -> Result<Outcome<T>> + Send,
    ) -> Result<T> {
        match self {
            Session::Sqlite(s) => s.write(body),
            #[cfg(feature = "postgres")]
            Session::Postgres(s) => s.write(body),
        }
    }

    /// Between two batches: whatever keeps the engine's log short.
    pub(crate) fn between_batches(&mut self) {
        match self {
            Session::Sqlite(s) => s.between_batches(),
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => {}
        }
    }

    /// Ends the session, restoring the connection's settings.
    pub(crate) fn finish(self) -> Result<()> {
        match self {
            Session::Sqlite(s) => s.finish(),
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_types_never_print_a_secret() {
        let row = FlowRow {
            id: 1,
            status: Status::Completed,
            expires_at: 2,
            created_at: 1,
            server_id: "srv".into(),
            client_id: None,
            redirect_uri: None,
            issuer: None,
            resource: None,
            scope: None,
            verifier: Some("VERIFIER-SECRET".into()),
            auth_code: Some("CODE-SECRET".into()),
            error: None,
            error_description: None,
            state_key: Some(b"STATEKEY-SECRET".to_vec()),
            code_challenge: "challenge".into(),
            require_issuer: false,
            client_created_at: None,
            discovery: Some("DISCOVERY-TEXT".into()),
        };
        let key = [7u8; 32];
        let new = NewFlow {
            state_key: Some(&key),
            code_challenge: "challenge",
            verifier: "VERIFIER-SECRET",
            server_id: "srv",
            client_id: None,
            redirect_uri: None,
            issuer: None,
            resource: None,
            scope: None,
            status: Status::Pending,
            require_issuer: false,
            client_created_at: None,
            generated_verifier: true,
        };
        let stored = StoredVerifier {
            verifier: "VERIFIER-SECRET".into(),
            challenge: "challenge".into(),
        };
        let binding = Binding {
            state_key: &key,
            redirect_uri: None,
            resource: None,
            scope: None,
            issuer: None,
            require_issuer: false,
            discovery: Some("DISCOVERY-TEXT"),
        };
        let printed = format!(
            "{row:?} {new:?} {stored:?} {binding:?} {:?}",
            CallbackResult::Code("CODE-SECRET")
        );
        for secret in [
            "VERIFIER-SECRET",
            "CODE-SECRET",
            "83, 84, 65",
            "7, 7, 7",
            "DISCOVERY-TEXT",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("[redacted]"));
        // The discovery state is no secret, but shows its length only.
        assert_eq!(printed.matches("[14 bytes]").count(), 2, "{printed}");
    }
}
