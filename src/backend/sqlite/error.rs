//! SQLite's errors as the crate's: the variants a caller acts on, SQLite's own error kept as
//! the opaque source.

use std::time::Duration;

use crate::error::{Error, StorageError};

/// Classifies a raw SQLite error into the variants a caller acts on.
pub(crate) fn classify(e: rusqlite::Error, busy_timeout: Duration) -> Error {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => Error::Busy {
            timeout: busy_timeout,
            source: StorageError::new(e),
        },
        Some(C::DiskFull) => Error::StorageFull {
            source: StorageError::new(e),
        },
        Some(C::ReadOnly) => Error::ReadOnly {
            source: StorageError::new(e),
        },
        Some(C::DatabaseCorrupt | C::NotADatabase) => Error::Corrupt {
            what: "the file is damaged or is not an SQLite database",
            source: Some(StorageError::new(e)),
        },
        _ => Error::Storage(StorageError::new(e)),
    }
}

/// Whether SQLite gave up waiting for another connection's lock.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
