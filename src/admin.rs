//! Administration of a store file: flows listed without their secrets, what a sweep would
//! remove, early removal of finished rows, facts about the file, an integrity check and
//! compaction. The `oauth-state-store` command line is built on these; a library user may call
//! them too. Nothing here prints.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use rusqlite::params;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::flow::{Status, StatusCounts, SweepReport};
use crate::migrate::SCHEMA_VERSION;
use crate::store::Store;
use crate::validate;

mod check;

pub use check::{check_file, check_file_with_timeout, CheckReport, Problem, ProblemKind};

/// Hex digits of the state key shown as a flow's fingerprint.
const FINGERPRINT_HEX: usize = 12;

/// The default database path: `$OAUTH_STATE_DB`, else
/// `$XDG_STATE_HOME/oauth-state-store/flows.db`, else
/// `~/.local/state/oauth-state-store/flows.db`. Empty and relative `XDG_STATE_HOME` values are
/// ignored, as the XDG specification asks. `None` when not even `$HOME` is set.
pub fn default_database_path() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = var("OAUTH_STATE_DB") {
        return Some(PathBuf::from(p));
    }
    let state_home = var("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state_home.join("oauth-state-store").join("flows.db"))
}

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

const LIST_FLOWS: &str = "SELECT state_key, server_id, client_id, status, created_at, \
     expires_at FROM flows WHERE (?1 IS NULL OR status = ?1) ORDER BY expires_at, id LIMIT ?2";

const LIST_FLOWS_OF_SERVER: &str = "SELECT state_key, server_id, client_id, status, \
     created_at, expires_at FROM flows WHERE server_id = ?3 AND (?1 IS NULL OR status = ?1) \
     ORDER BY expires_at, id LIMIT ?2";

/// `?1` now; `?2` the cutoff for finished rows (NULL: expired rows only).
const COUNT_SWEEPABLE: &str = "SELECT status, count(*) FROM flows WHERE expires_at <= ?1 \
     OR (?2 IS NOT NULL AND status IN ('consumed', 'failed') \
     AND coalesce(consumed_at, created_at) <= ?2) GROUP BY status";

const DELETE_FINISHED_BATCH: &str = "DELETE FROM flows WHERE id IN (SELECT id FROM flows \
     WHERE status IN ('consumed', 'failed') AND coalesce(consumed_at, created_at) <= ?1 \
     LIMIT ?2) RETURNING status";

pub(crate) const SELECT_USER_VERSION: &str = "PRAGMA user_version";
pub(crate) const SELECT_JOURNAL_MODE: &str = "PRAGMA journal_mode";
pub(crate) const SELECT_STORE_ID: &str = "SELECT value FROM meta WHERE key = 'store_id'";
const VACUUM: &str = "VACUUM";
const CHECKPOINT_TRUNCATE: &str = "PRAGMA wal_checkpoint(TRUNCATE)";

fn status_of(s: &str) -> rusqlite::Result<Status> {
    Status::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            "unknown status".into(),
        )
    })
}

fn fingerprint(key: &[u8]) -> String {
    key.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(FINGERPRINT_HEX)
        .collect()
}

/// `now - older_than`, for a positive duration.
fn cutoff(now: i64, older_than: time::Duration) -> Result<i64> {
    if !older_than.is_positive() {
        return Err(Error::invalid("older_than", "must be positive"));
    }
    i64::try_from(older_than.whole_milliseconds())
        .ok()
        .and_then(|ms| now.checked_sub(ms))
        .ok_or(Error::invalid("older_than", "is out of range"))
}

/// Size of a file, `None` when it does not exist.
fn size_of(path: &Path) -> Result<Option<u64>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Facts about a store's file, from [`Store::file_info`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FileInfo {
    /// The database path (`None` in memory).
    pub path: Option<PathBuf>,
    /// Size of the database file in bytes (`None` in memory).
    pub file_bytes: Option<u64>,
    /// Size of its `-wal` file in bytes (`None` when there is none).
    pub wal_bytes: Option<u64>,
    /// The file's schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    /// The schema version this code writes.
    pub supported_schema_version: i64,
    /// `PRAGMA journal_mode` (`wal` for a file).
    pub journal_mode: String,
    /// The SQLite library version in use.
    pub sqlite_version: &'static str,
    /// The file's permanent identity.
    pub store_id: String,
}

/// What [`Store::compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CompactReport {
    /// `VACUUM` rebuilt the file. `false` when another connection kept the write lock past the
    /// busy timeout.
    pub vacuumed: bool,
    /// The WAL was checkpointed into the database and truncated. `false` when another
    /// connection's open read or write kept the checkpoint from finishing.
    pub wal_truncated: bool,
    /// Database file size before, in bytes.
    pub file_bytes_before: u64,
    /// Database file size after, in bytes.
    pub file_bytes_after: u64,
    /// `-wal` size before, in bytes (0 when there was none).
    pub wal_bytes_before: u64,
    /// `-wal` size after, in bytes (0 when there is none).
    pub wal_bytes_after: u64,
}

impl CompactReport {
    /// Both steps finished.
    pub fn is_complete(&self) -> bool {
        self.vacuumed && self.wal_truncated
    }
}

impl Store {
    /// The flows that `filter` selects, soonest expiry first, without any secret: a
    /// fingerprint of the state key stands for the state.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`server_id`), storage errors.
    pub fn list_flows(&self, filter: &FlowFilter) -> Result<Vec<FlowSummary>> {
        if let Some(s) = &filter.server_id {
            validate::id("server_id", s)?;
        }
        let status = filter.status.map(Status::as_str);
        let limit = filter.limit.map_or(-1, i64::from);
        self.read(|tx, _now| {
            let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<FlowSummary> {
                let key: Option<Vec<u8>> = r.get(0)?;
                Ok(FlowSummary {
                    fingerprint: key.as_deref().map(fingerprint),
                    server_id: r.get(1)?,
                    client_id: r.get(2)?,
                    status: status_of(&r.get::<_, String>(3)?)?,
                    created_at: r.get(4)?,
                    expires_at: r.get(5)?,
                })
            };
            let flows = match &filter.server_id {
                None => tx
                    .prepare_cached(LIST_FLOWS)?
                    .query_map(params![status, limit], map)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
                Some(server) => tx
                    .prepare_cached(LIST_FLOWS_OF_SERVER)?
                    .query_map(params![status, limit, server], map)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
            };
            Ok(flows)
        })
    }

    /// What a sweep would remove now, by status, without removing anything: every expired
    /// row, plus, with `finished_older_than`, the tombstones and failed rows that
    /// [`Store::sweep_finished`] would remove.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`older_than` not positive), storage errors.
    pub fn sweep_preview(
        &self,
        finished_older_than: Option<time::Duration>,
    ) -> Result<StatusCounts> {
        self.read(|tx, now| {
            let cut = finished_older_than.map(|d| cutoff(now, d)).transpose()?;
            let mut counts = StatusCounts::default();
            let mut stmt = tx.prepare_cached(COUNT_SWEEPABLE)?;
            let mut rows = stmt.query(params![now, cut])?;
            while let Some(r) = rows.next()? {
                let n: i64 = r.get(1)?;
                counts.add(status_of(&r.get::<_, String>(0)?)?, n.max(0) as u64);
            }
            Ok(counts)
        })
    }

    /// Removes tombstones consumed, and failed flows begun, more than `older_than` ago, before
    /// their expiry, in the same short batches as [`Store::sweep`]. A removed failed flow's
    /// owner gets [`Error::UnknownState`] instead of [`Error::AuthorizationFailed`], and a
    /// replayed callback of a removed tombstone looks unknown rather than replayed.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`older_than` not positive), storage errors; batches already
    /// committed stay removed.
    pub fn sweep_finished(&self, older_than: time::Duration) -> Result<SweepReport> {
        cutoff(self.now_ms(), older_than)?;
        self.delete_in_batches(DELETE_FINISHED_BATCH, |now| cutoff(now, older_than))
    }

    /// Sizes, versions and journal mode of the store's file.
    ///
    /// # Errors
    /// Storage errors, [`Error::Io`] if a size cannot be read.
    pub fn file_info(&self) -> Result<FileInfo> {
        let (schema_version, journal_mode, store_id) = self.read(|tx, _now| {
            Ok((
                tx.query_row(SELECT_USER_VERSION, [], |r| r.get(0))?,
                tx.query_row(SELECT_JOURNAL_MODE, [], |r| r.get(0))?,
                tx.query_row(SELECT_STORE_ID, [], |r| r.get(0))?,
            ))
        })?;
        let (file_bytes, wal_bytes) = match self.path() {
            Some(p) => (size_of(p)?, size_of(&wal_path(p))?),
            None => (None, None),
        };
        Ok(FileInfo {
            path: self.path().map(Path::to_path_buf),
            file_bytes,
            wal_bytes,
            schema_version,
            supported_schema_version: SCHEMA_VERSION,
            journal_mode,
            sqlite_version: rusqlite::version(),
            store_id,
        })
    }

    /// Reclaims space: `VACUUM`, then `PRAGMA wal_checkpoint(TRUNCATE)`. Safe while other
    /// processes use the file; if one of them keeps it busy past the busy timeout, the step it
    /// blocked is reported as not done (see [`CompactReport`]) instead of failing.
    ///
    /// # Errors
    /// Storage errors other than busy, [`Error::Io`] if a size cannot be read.
    pub fn compact(&self) -> Result<CompactReport> {
        let sizes = || -> Result<(u64, u64)> {
            match self.path() {
                Some(p) => Ok((
                    size_of(p)?.unwrap_or(0),
                    size_of(&wal_path(p))?.unwrap_or(0),
                )),
                None => Ok((0, 0)),
            }
        };
        let (file_bytes_before, wal_bytes_before) = sizes()?;
        let (vacuumed, wal_truncated) = self.with_connection(|conn| {
            let vacuumed = match conn.execute_batch(VACUUM) {
                Ok(()) => true,
                Err(e) if is_busy(&e) => false,
                Err(e) => return Err(e.into()),
            };
            let truncated = match conn.query_row(CHECKPOINT_TRUNCATE, [], |r| r.get::<_, i64>(0)) {
                Ok(busy) => busy == 0,
                Err(e) if is_busy(&e) => false,
                Err(e) => return Err(e.into()),
            };
            Ok((vacuumed, truncated))
        })?;
        let (file_bytes_after, wal_bytes_after) = sizes()?;
        Ok(CompactReport {
            vacuumed,
            wal_truncated,
            file_bytes_before,
            file_bytes_after,
            wal_bytes_before,
            wal_bytes_after,
        })
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BeginRequest, ManualClock, StoreOptions};

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
        clock.advance(time::Duration::minutes(2));
        let fresh = s.begin(BeginRequest::new("srv")).unwrap();
        s.consume(fresh.state().secret()).unwrap();

        let minute = time::Duration::minutes(1);
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
            s.sweep_finished(time::Duration::ZERO),
            Err(Error::InvalidInput {
                field: "older_than",
                ..
            })
        ));
    }

    #[test]
    fn listing_one_server_uses_its_index() {
        let s = store(&ManualClock::new(0));
        let plan: Vec<String> = s
            .read(|tx, _| {
                let sql = format!("EXPLAIN QUERY PLAN {LIST_FLOWS_OF_SERVER}");
                let mut stmt = tx.prepare(&sql)?;
                let rows = stmt
                    .query_map(params![None::<&str>, -1, "srv"], |r| r.get::<_, String>(3))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.contains("USING INDEX flows_by_server")),
            "{plan:?}"
        );
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
