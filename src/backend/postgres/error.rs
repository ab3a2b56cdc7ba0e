//! PostgreSQL's errors as the crate's: a connection TLS refused is `Tls`, a lost or refused
//! connection `Unavailable`, a lock or serialization conflict `Busy`, a lost COMMIT
//! `CommitOutcomeUnknown`; the driver's own error is kept as the opaque source.

use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::Row;

use super::connect::Conn;

use crate::error::{Error, StorageError};

/// Whether `e` means the server is gone or not reachable (rather than refusing the statement).
pub(crate) fn is_connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                ]
                .contains(code)
        }
        // No server error: the socket, TLS or the protocol failed.
        None => true,
    }
}

/// Classifies a driver error into the variants a caller acts on.
pub(crate) fn classify(e: postgres::Error, busy_timeout: Duration) -> Error {
    if let Some(reason) = super::tls::failure(&e) {
        return Error::Tls {
            reason,
            source: StorageError::new(e),
        };
    }
    if is_connection_lost(&e) {
        return Error::Unavailable {
            source: StorageError::new(e),
        };
    }
    let code = e.code().cloned();
    let source = StorageError::new(e);
    match code {
        Some(c)
            if c == SqlState::LOCK_NOT_AVAILABLE
                || c == SqlState::T_R_DEADLOCK_DETECTED
                || c == SqlState::T_R_SERIALIZATION_FAILURE
                || c == SqlState::QUERY_CANCELED =>
        {
            Error::Busy {
                timeout: busy_timeout,
                source,
            }
        }
        Some(c) if c == SqlState::DISK_FULL || c == SqlState::OUT_OF_MEMORY => {
            Error::StorageFull { source }
        }
        Some(c) if c == SqlState::READ_ONLY_SQL_TRANSACTION => Error::ReadOnly { source },
        Some(c) if c == SqlState::DATA_CORRUPTED || c == SqlState::INDEX_CORRUPTED => {
            Error::Corrupt {
                what: "PostgreSQL reports damaged data or a damaged index",
                source: Some(source),
            }
        }
        _ => Error::Storage(source),
    }
}

/// A unique violation as the duplicate it means; anything else classified as usual.
pub(crate) fn unique_violation(e: postgres::Error, busy_timeout: Duration) -> Error {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        match e.as_db_error().and_then(|d| d.constraint()) {
            Some("flows_state_key_key") => return Error::DuplicateState,
            Some("flows_code_challenge_key") => return Error::DuplicateChallenge,
            _ => {}
        }
    }
    classify(e, busy_timeout)
}

/// A failed COMMIT: when the connection was lost, whether it committed is unknown.
pub(crate) fn commit_failed(e: postgres::Error, busy_timeout: Duration) -> Error {
    if is_connection_lost(&e) {
        Error::CommitOutcomeUnknown {
            source: StorageError::new(e),
        }
    } else {
        classify(e, busy_timeout)
    }
}

/// Runs `sql` (prepared once a connection) as a statement of its own, outside any
/// transaction, and returns its rows. A failed prepare sent nothing that runs ([`classify`]);
/// a failed run is what `failed` makes of it, and a lost connection is marked broken so that
/// the pool drops it.
pub(crate) fn run_alone(
    conn: &mut Conn,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
    busy_timeout: Duration,
    failed: fn(postgres::Error, Duration) -> Error,
) -> crate::error::Result<Vec<Row>> {
    let statement = conn.prepared(sql).map_err(|e| classify(e, busy_timeout))?;
    conn.query(&statement, params).map_err(|e| {
        if is_connection_lost(&e) {
            conn.mark_broken();
        }
        failed(e, busy_timeout)
    })
}
