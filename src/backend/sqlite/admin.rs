//! Facts about the SQLite file and its compaction, for [`Store::file_info`] and
//! [`Store::compact`].
//!
//! [`Store::file_info`]: crate::Store::file_info
//! [`Store::compact`]: crate::Store::compact

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::error::is_busy;
use super::files::side_path;
use super::migrate::{SCHEMA_VERSION, SELECT_STORE_ID, SELECT_USER_VERSION};
use super::Sqlite;
use crate::error::{Error, Result};
use crate::report::{CompactReport, FileInfo};

pub(crate) const SELECT_JOURNAL_MODE: &str = "PRAGMA journal_mode";
pub(crate) const VACUUM: &str = "VACUUM";
pub(crate) const CHECKPOINT_TRUNCATE: &str = "PRAGMA wal_checkpoint(TRUNCATE)";

/// Size of a file, `None` when it does not exist.
fn size_of(path: &Path) -> Result<Option<u64>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn wal_path(path: &Path) -> PathBuf {
    side_path(path, "-wal")
}

impl Sqlite {
    /// The sizes of the file and its `-wal` (zero when absent or in memory).
    fn sizes(&self) -> Result<(u64, u64)> {
        match self.path() {
            Some(p) => Ok((
                size_of(p)?.unwrap_or(0),
                size_of(&wal_path(p))?.unwrap_or(0),
            )),
            None => Ok((0, 0)),
        }
    }

    pub(crate) fn file_info(&self) -> Result<FileInfo> {
        let (schema_version, journal_mode, store_id) = self.with_connection(|conn| {
            Ok((
                conn.query_row(SELECT_USER_VERSION, [], |r| r.get(0))?,
                conn.query_row(SELECT_JOURNAL_MODE, [], |r| r.get(0))?,
                conn.query_row(SELECT_STORE_ID, [], |r| r.get(0))?,
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

    pub(crate) fn compact(&self) -> Result<CompactReport> {
        let (file_bytes_before, wal_bytes_before) = self.sizes()?;
        let (vacuumed, wal_truncated) = self.with_connection(|conn| {
            let vacuumed = match conn.execute_batch(VACUUM) {
                Ok(()) => true,
                Err(e) if is_busy(&e) => false,
                Err(e) => return Err(e),
            };
            let truncated = match conn.query_row(CHECKPOINT_TRUNCATE, [], |r| r.get::<_, i64>(0)) {
                Ok(busy) => busy == 0,
                Err(e) if is_busy(&e) => false,
                Err(e) => return Err(e),
            };
            Ok((vacuumed, truncated))
        })?;
        let (file_bytes_after, wal_bytes_after) = self.sizes()?;
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
