//! Administration of a store file: flows listed without their secrets, what a sweep would
//! remove, early removal of finished rows, facts about the file, an integrity check and
//! compaction. The `oauth-state-store` command line is built on these; a library user may call
//! them too. Nothing here prints.

mod server;

use std::time::Duration;

use serde::Serialize;

#[cfg(doc)]
use crate::error::Error;
use crate::error::{EndReason, Result};
use crate::flow::{ops, rules, Status, StatusCounts, SweepReport};
use crate::report::{CompactReport, FileInfo};
use crate::store::Store;
use crate::validate;

pub use server::check_database;

/// Hex digits of the state key shown as a flow's fingerprint.
const FINGERPRINT_HEX: usize = 12;

/// One flow as an administrator may see it: no state, verifier or code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FlowSummary {
    /// The first 12 hex digits of the stored state key (SHA-256 of the state), to tell flows
    /// apart; it reveals nothing about the state. `None` while the flow is unbound.
    pub fingerprint: Option<String>,
    /// Which authorization server (MCP server) the flow is for.
    pub server_id: String,
    /// The OAuth client id, if the flow has one.
    pub client_id: Option<String>,
    /// Where the flow is in its life.
    pub status: Status,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; the flow is dead from this instant on.
    pub expires_at: i64,
    /// For a tombstone (`consumed`) of a flow that ended without a login, why; `None` for a
    /// login's tombstone and for every other status.
    pub ended: Option<EndReason>,
}

/// Which flows [`Store::list_flows`] returns. The default: every flow.
#[derive(Debug, Clone, Default)]
pub struct FlowFilter {
    server_id: Option<String>,
    status: Option<Status>,
    limit: Option<u32>,
}

impl FlowFilter {
    /// Every flow.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only the flows of this server.
    pub fn server_id(mut self, server_id: impl Into<String>) -> Self {
        self.server_id = Some(server_id.into());
        self
    }
    /// Only the flows in this status.
    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }
    /// At most this many flows (those expiring first).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

fn fingerprint(key: &[u8]) -> String {
    key.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(FINGERPRINT_HEX)
        .collect()
}

impl Store {
    /// The flows that `filter` selects, soonest expiry first, without any secret: a
    /// fingerprint of the state key stands for the state.
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, FlowFilter, Status};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// store.begin(BeginRequest::new("srv").client_id("my-app"))?;
    /// store.begin(BeginRequest::new("another-server"))?;
    /// let listed = store.list_flows(&FlowFilter::new().server_id("srv"))?;
    /// assert_eq!(listed.len(), 1);
    /// assert_eq!(listed[0].status, Status::Pending);
    /// assert_eq!(listed[0].client_id.as_deref(), Some("my-app"));
    /// assert_eq!(listed[0].fingerprint.as_ref().map(String::len), Some(12));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`server_id`), storage errors.
    pub fn list_flows(&self, filter: &FlowFilter) -> Result<Vec<FlowSummary>> {
        if let Some(s) = &filter.server_id {
            validate::id("server_id", s)?;
        }
        let rows = self
            .engine()
            .read(|tx| ops::list(tx, filter.server_id.as_deref(), filter.status, filter.limit))?;
        Ok(rows
            .into_iter()
            .map(|r| FlowSummary {
                fingerprint: r.state_key.as_deref().map(fingerprint),
                server_id: r.server_id,
                client_id: r.client_id,
                status: r.status,
                created_at: r.created_at,
                expires_at: r.expires_at,
                ended: rules::end_reason(r.status, r.error.as_deref()),
            })
            .collect())
    }

    /// What a sweep would remove now, by status, without removing anything: every expired
    /// row, plus, with `finished_older_than`, the tombstones and failed rows that
    /// [`Store::sweep_finished`] would remove.
    ///
    /// ```
    /// use std::time::Duration;
    /// use oauth_state_store::BeginRequest;
    /// # use oauth_state_store::{ManualClock, Store};
    /// # let dir = tempfile::tempdir()?;
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let store = Store::options()
    ///     .clock(clock.clone())
    ///     .open(dir.path().join("flows.db"))?;
    /// store.begin(BeginRequest::new("srv").ttl(Duration::from_secs(60)))?;
    /// let flow = store.begin(BeginRequest::new("srv"))?;
    /// store.consume(flow.state().secret())?;
    /// clock.advance(Duration::from_secs(61));
    /// assert_eq!(store.sweep_preview(None)?.pending, 1);
    /// let with_finished = store.sweep_preview(Some(Duration::from_secs(60)))?;
    /// assert_eq!((with_finished.pending, with_finished.consumed), (1, 1));
    /// assert_eq!(store.stats()?.counts.total(), 2); // nothing was removed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`older_than` not positive), storage errors.
    pub fn sweep_preview(&self, finished_older_than: Option<Duration>) -> Result<StatusCounts> {
        let lines = self
            .engine()
            .read(|tx| ops::removable(tx, finished_older_than))?;
        let mut counts = StatusCounts::default();
        for (status, n) in lines {
            counts.add(status, n);
        }
        Ok(counts)
    }

    /// Removes tombstones consumed, and failed flows begun, more than `older_than` ago, before
    /// their expiry, walking the whole table in id order in short transactions (as
    /// [`Store::sweep`], each holds the write lock about
    /// [`sweep_batch_time`](crate::StoreOptions::sweep_batch_time)). A removed failed flow's
    /// owner gets [`Error::UnknownState`] instead of [`Error::AuthorizationFailed`], and a
    /// replayed callback of a removed tombstone looks unknown rather than replayed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use oauth_state_store::BeginRequest;
    /// # use oauth_state_store::{ManualClock, Store};
    /// # let dir = tempfile::tempdir()?;
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let store = Store::options()
    ///     .clock(clock.clone())
    ///     .open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(BeginRequest::new("srv"))?;
    /// store.consume(flow.state().secret())?;
    /// clock.advance(Duration::from_secs(120));
    /// let report = store.sweep_finished(Duration::from_secs(60))?;
    /// assert_eq!(report.removed.consumed, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`older_than` not positive), storage errors; batches already
    /// committed stay removed.
    pub fn sweep_finished(&self, older_than: Duration) -> Result<SweepReport> {
        rules::finished_cutoff(self.now_ms(), older_than)?;
        // No index finds the ended rows (each would cost every consume a write): the table is
        // walked in id order, each chunk of rows one short transaction.
        let mut after = i64::MIN;
        self.delete_in_batches(
            self.sweep_batch_size(),
            self.sweep_batch_time(),
            |tx, rows| {
                let outcome = ops::finished_chunk(tx, older_than, after, rows)?;
                Ok(outcome.map(|chunk| {
                    if let Some(last) = chunk.last {
                        after = last;
                    }
                    (chunk.deleted, chunk.last.is_some())
                }))
            },
        )
    }

    /// On an SQLite file, its facts: sizes, versions and journal mode. `None` for a store on a
    /// database server, which has no file (see [`Store::server_info`]).
    ///
    /// ```
    /// use oauth_state_store::SCHEMA_VERSION;
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let info = store.file_info()?.expect("a store in a file");
    /// assert_eq!(info.journal_mode, "wal");
    /// assert_eq!(info.schema_version, SCHEMA_VERSION);
    /// assert_eq!(info.store_id, store.store_id());
    /// assert!(info.file_bytes.unwrap() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Storage errors, [`Error::Io`] if a size cannot be read.
    pub fn file_info(&self) -> Result<Option<FileInfo>> {
        self.engine().file_info()
    }

    /// Reclaims space: `VACUUM`, then `PRAGMA wal_checkpoint(TRUNCATE)`. Safe while other
    /// processes use the file; if one of them keeps it busy past the busy timeout, the step it
    /// blocked is reported as not done (see [`CompactReport`]) instead of failing. On
    /// PostgreSQL: `VACUUM flows`, then a `CHECKPOINT` where the role may run one.
    ///
    /// ```
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let report = store.compact()?;
    /// assert!(report.is_complete());
    /// assert_eq!(report.wal_bytes_after, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Storage errors other than busy, [`Error::Io`] if a size cannot be read.
    pub fn compact(&self) -> Result<CompactReport> {
        self.engine().compact()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BeginRequest, Error, ManualClock, StoreOptions};

    fn store(clock: &ManualClock) -> Store {
        StoreOptions::default()
            .clock(clock.clone())
            .sweep_batch_size(2)
            .open_in_memory()
            .unwrap()
    }

    #[test]
    fn fingerprint_is_a_prefix_of_the_state_key_not_the_state() {
        let clock = ManualClock::new(1_000_000);
        let s = store(&clock);
        let flow = s.begin(BeginRequest::new("srv")).unwrap();
        let listed = s.list_flows(&FlowFilter::new()).unwrap();
        let fp = listed[0].fingerprint.clone().unwrap();
        let key = crate::pkce::state_key(flow.state().secret());
        assert_eq!(fp, fingerprint(&key));
        assert_eq!(fp.len(), FINGERPRINT_HEX);
        assert!(!flow.state().secret().contains(&fp));
    }

    #[test]
    fn preview_and_sweep_finished_agree() {
        let clock = ManualClock::new(10_000_000);
        let s = store(&clock);
        for _ in 0..3 {
            let f = s.begin(BeginRequest::new("srv")).unwrap();
            s.consume(f.state().secret()).unwrap();
        }
        let failed = s.begin(BeginRequest::new("srv")).unwrap();
        s.reject(failed.state().secret(), "access_denied", None)
            .unwrap();
        s.begin(BeginRequest::new("srv")).unwrap();
        clock.advance(Duration::from_secs(120));
        let fresh = s.begin(BeginRequest::new("srv")).unwrap();
        s.consume(fresh.state().secret()).unwrap();

        let minute = Duration::from_secs(60);
        assert_eq!(s.sweep_preview(None).unwrap().total(), 0);
        let preview = s.sweep_preview(Some(minute)).unwrap();
        assert_eq!((preview.consumed, preview.failed), (3, 1));
        assert_eq!(preview.total(), 4);
        let report = s.sweep_finished(minute).unwrap();
        assert_eq!(report.removed, preview);
        assert_eq!(report.batches, 2);
        let left = s.list_flows(&FlowFilter::new()).unwrap();
        assert_eq!(left.len(), 2);
        assert!(matches!(
            s.sweep_finished(Duration::ZERO),
            Err(Error::InvalidInput {
                field: "older_than",
                ..
            })
        ));
    }

    #[test]
    fn filters_select_by_server_and_status() {
        let clock = ManualClock::new(10_000_000);
        let s = store(&clock);
        s.begin(BeginRequest::new("a")).unwrap();
        let f = s.begin(BeginRequest::new("b")).unwrap();
        s.begin(BeginRequest::new("b")).unwrap();
        s.consume(f.state().secret()).unwrap();
        let of_b = s.list_flows(&FlowFilter::new().server_id("b")).unwrap();
        assert_eq!(of_b.len(), 2);
        let consumed_b = FlowFilter::new().server_id("b").status(Status::Consumed);
        let listed = s.list_flows(&consumed_b).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, Status::Consumed);
        assert_eq!(s.list_flows(&FlowFilter::new().limit(1)).unwrap().len(), 1);
    }
}
