//! The row interface an engine implements, per transaction: one method a statement, no
//! decisions. [`FlowRows`] holds the statements of the flow operations, [`MaintenanceRows`]
//! those of the many-row ones (invalidation, sweeps, statistics, listing); an operation's body
//! takes a [`FlowTx`], which is both. A write's body returns an [`Outcome`]; [`Wipe`] tells the
//! engine whether the write removes a secret.

use super::row::{Binding, CallbackResult, Chunk, ListedRow, Live, NewFlow, StatusStats};
use super::row::{FlowRow, PendingFlow};
use super::Status;
use crate::error::{Error, Result};

/// The row interface as an operation's body sees it: the statements of both parts, run in the
/// transaction the engine opened for the operation.
pub(crate) trait FlowTx: FlowRows + MaintenanceRows {}

impl<T: FlowRows + MaintenanceRows + ?Sized> FlowTx for T {}

/// The statements of the flow operations: one row by its key, an insert, the guarded updates,
/// and the reads over one server's live rows.
///
/// Every method runs inside the transaction the engine opened for the operation. Methods that
/// change a row by id return the number of rows changed, for the operation to check.
pub(crate) trait FlowRows {
    /// This transaction's time, Unix milliseconds.
    fn now(&self) -> i64;

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

    /// Up to `limit` live rows of `server_id` and exactly `client_id` in one of `statuses`, as
    /// the choice of `pending_verifier` reads them.
    fn live_verifiers(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
        live: Live,
        limit: u32,
    ) -> Result<Vec<PendingFlow>>;

    /// How many rows [`FlowRows::live_verifiers`] would find without its limit.
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
}

/// The statements of the many-row operations: invalidation, the sweeps and their preview,
/// statistics and listing. Each runs inside the transaction the engine opened (a sweep's
/// batches each in its own).
pub(crate) trait MaintenanceRows {
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

    /// Counts by status of the rows [`MaintenanceRows::delete_expired_batch`] and, with `ended`,
    /// [`MaintenanceRows::delete_ended_chunk`] would delete (then reading the whole table).
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

/// One guarded step of a flow operation, as an engine carries it out atomically: read the row
/// and the time, write what the rules admit for that row at that time (or delete the row they
/// find expired), and return the row as it was. The operation then asks the same rules for its
/// verdict on the returned row (`ops`), so the verdict never comes from the engine.
///
/// SQLite runs [`step_in_tx`](super::ops::step_in_tx) in one write transaction; PostgreSQL
/// runs one statement per variant, whose condition is the rules' "may proceed" (its status sets
/// and reasons are the rules' constants, passed as parameters), in one round trip.
pub(crate) enum Step<'a> {
    /// `promote`: bind the unbound row of `challenge` to `binding`'s state.
    Promote {
        challenge: &'a str,
        server_id: &'a str,
        client_id: Option<&'a str>,
        binding: &'a Binding<'a>,
    },
    /// Record a callback's result on the pending flow of `key`.
    Record {
        key: &'a [u8; 32],
        result: &'a CallbackResult<'a>,
        expect: &'a crate::flow::rules::Expectations<'a>,
        /// For an engine that compares redirect URIs as strings: the exact spellings accepted
        /// ([`redirect_spellings`](crate::flow::rules::redirect_spellings)); `None`: no check.
        #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
        redirects: Option<&'a [String]>,
    },
    /// `consume` / `consume_for`: tombstone the flow of `key`, handing its secrets out.
    Consume {
        key: &'a [u8; 32],
        expect_server: Option<&'a str>,
    },
}

/// What an engine's [`Step`] did, and the row as it was before (its secrets only when the step
/// handed them out).
pub(crate) struct Stepped {
    /// The time the step judged the row at, Unix milliseconds.
    pub now: i64,
    /// What it wrote.
    pub did: crate::flow::rules::Action,
    /// The row it found, as it was before the write.
    pub row: Option<FlowRow>,
}
