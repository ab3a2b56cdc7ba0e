//! [`check_file`]: is a store file healthy and safe? Read-only; never creates, migrates or
//! repairs anything.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use super::admin::SELECT_JOURNAL_MODE;
use super::error::classify;
use super::migrate::{SELECT_STORE_ID, SELECT_USER_VERSION};
use crate::backend::sqlite::migrate::SCHEMA_VERSION;
use crate::backend::sqlite::permissions::{self, FileChecks};
use crate::error::{Error, Result};

/// How long [`check_file`] waits for another connection's lock.
const CHECK_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Integrity messages kept at most (SQLite may report thousands for one bad page).
const MAX_INTEGRITY_MESSAGES: usize = 20;

pub(crate) const INTEGRITY_CHECK: &str = "PRAGMA integrity_check(20)";

/// What kind of problem [`check_file`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The file, a side file or the directory breaks the rules that
    /// [`Store::open`](crate::Store::open) enforces.
    Permissions,
    /// The file is not an SQLite database or fails `PRAGMA integrity_check`.
    Corrupt,
    /// The schema version differs from this code's, or the store's metadata is missing.
    Schema,
    /// The journal mode is not WAL.
    JournalMode,
}

/// One problem [`check_file`] found: what is wrong and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// Which check failed.
    pub kind: ProblemKind,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl Problem {
    fn new(kind: ProblemKind, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem {
            kind,
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// What [`check_file`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// The file checked.
    pub path: PathBuf,
    /// Every problem found; empty when the file is healthy.
    pub problems: Vec<Problem>,
    /// The file's schema version, when it could be read.
    pub schema_version: Option<i64>,
    /// The schema version this code writes.
    pub supported_schema_version: i64,
    /// The journal mode, when it could be read.
    pub journal_mode: Option<String>,
    /// The SQLite library version in use.
    pub sqlite_version: &'static str,
}

impl CheckReport {
    /// No problem found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a store file without changing it: the permission rules of
/// [`Store::open`](crate::Store::open), that it is an undamaged SQLite database (`PRAGMA
/// integrity_check`), its schema version against this code's, and WAL mode. The file is opened
/// read-only and is never created, migrated or repaired. A damaged file is a [`Problem`], not an
/// error.
///
/// # Errors
/// [`Error::DatabaseMissing`], [`Error::Io`] (the directory cannot be read),
/// [`Error::Busy`] (another connection held the file for more than 5 seconds), other SQLite
/// errors that are not damage.
pub fn check_file(path: impl AsRef<Path>) -> Result<CheckReport> {
    let path = path.as_ref();
    let busy_timeout = CHECK_BUSY_TIMEOUT;
    let mut report = CheckReport {
        path: path.to_path_buf(),
        problems: Vec::new(),
        schema_version: None,
        supported_schema_version: SCHEMA_VERSION,
        journal_mode: None,
        sqlite_version: rusqlite::version(),
    };
    match permissions::prepare(path, false, FileChecks::Enforce) {
        Ok(()) => {}
        Err(e @ Error::InsecureFile { .. }) => report.problems.push(Problem::new(
            ProblemKind::Permissions,
            e.to_string(),
            "do what the message says; until then every application refuses to open the store",
        )),
        Err(e) => return Err(e),
    }
    // A symlink or a special file is only reported: nothing is opened through it.
    let regular = fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    if !regular.file_type().is_file() {
        return Ok(report);
    }
    let sql = |e| classify(e, busy_timeout);
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_EXRESCODE;
    let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
    conn.busy_timeout(busy_timeout).map_err(sql)?;
    match inspect(&conn, &mut report) {
        Ok(()) => Ok(report),
        Err(e) => match classify(e, busy_timeout) {
            Error::Corrupt {
                source: Some(source),
                ..
            } => {
                report.problems.push(Problem::new(
                    ProblemKind::Corrupt,
                    format!("the file is damaged or is not an SQLite database ({source})"),
                    CORRUPT_FIX,
                ));
                Ok(report)
            }
            other => Err(other),
        },
    }
}

const CORRUPT_FIX: &str = "stop the applications using it, move the file (and its -wal and \
     -shm files) aside and run `oauth-state-store migrate`; logins in progress must be started \
     again";

fn inspect(conn: &Connection, report: &mut CheckReport) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row(SELECT_USER_VERSION, [], |r| r.get(0))?;
    report.schema_version = Some(version);
    let mut messages = Vec::new();
    {
        let mut stmt = conn.prepare(INTEGRITY_CHECK)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let m: String = r.get(0)?;
            if m != "ok" && messages.len() < MAX_INTEGRITY_MESSAGES {
                messages.push(m);
            }
        }
    }
    for m in messages {
        report.problems.push(Problem::new(
            ProblemKind::Corrupt,
            format!("integrity check: {m}"),
            CORRUPT_FIX,
        ));
    }
    let mode: String = conn.query_row(SELECT_JOURNAL_MODE, [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        report.problems.push(Problem::new(
            ProblemKind::JournalMode,
            format!("the journal mode is {mode}, not wal, so processes block each other"),
            "run `oauth-state-store migrate`, which switches the file to WAL",
        ));
    }
    report.journal_mode = Some(mode);
    if version < SCHEMA_VERSION {
        report.problems.push(Problem::new(
            ProblemKind::Schema,
            format!("the schema is version {version}, older than this program's {SCHEMA_VERSION}"),
            "run `oauth-state-store migrate`",
        ));
    } else if version > SCHEMA_VERSION {
        report.problems.push(Problem::new(
            ProblemKind::Schema,
            format!("the schema is version {version}, newer than this program's {SCHEMA_VERSION}"),
            "upgrade oauth-state-store; files are never downgraded",
        ));
    } else {
        let id: Option<String> = conn
            .query_row(SELECT_STORE_ID, [], |r| r.get(0))
            .optional()?;
        if id.is_none() {
            report.problems.push(Problem::new(
                ProblemKind::Schema,
                "the store has no store_id in its meta table",
                "run `oauth-state-store migrate`, which restores it",
            ));
        }
    }
    Ok(())
}
