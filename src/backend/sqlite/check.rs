//! [`check_file`]: is a store file healthy and safe? Read-only; never creates, migrates or
//! repairs anything.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use super::admin::SELECT_JOURNAL_MODE;
use super::error::classify;
use super::files::side_path;
use super::header::{self, FileKind};
use super::look::Look;
use super::migrate::{SCHEMA_VERSION, SELECT_STORE_ID, SELECT_USER_VERSION};
use super::permissions;
use crate::error::{Error, Result};
use crate::options::FileChecks;
use crate::report::{CheckReport, Problem, ProblemKind};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// How long [`check_file`] waits for another connection's lock.
const CHECK_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Integrity messages kept at most (SQLite may report thousands for one bad page).
const MAX_INTEGRITY_MESSAGES: usize = 20;

/// Integrity messages quoted in the one-line summary of a damaged file.
const SUMMARY_MESSAGES: usize = 3;

pub(crate) const INTEGRITY_CHECK: &str = "PRAGMA integrity_check(20)";

/// A refusal of the permission rules as a problem: the error's reason is "what; what to do".
fn permission_problem(e: &Error) -> Problem {
    match e {
        Error::InsecureFile { path, reason } => {
            let (what, fix) = reason.split_once("; ").unwrap_or((reason, ""));
            Problem::new(
                ProblemKind::Permissions,
                format!("{}: {what}", path.display()),
                fix,
            )
        }
        other => Problem::new(ProblemKind::Permissions, other.to_string(), ""),
    }
}

/// Checks a store file without changing it: the permission rules of
/// [`Store::open`](crate::Store::open), that applications (running as the file's owner) can
/// write the file and its directory, that it is an undamaged SQLite database (`PRAGMA
/// integrity_check`), its schema version against this code's, and WAL mode. The file is only
/// looked at: never created, migrated or repaired, a `-wal` a killed program left is read where
/// it is and never merged into the file, and no `-wal` or `-shm` file is left next to it (where
/// SQLite would have to leave one, the content check is skipped and reported). Another
/// program's file is refused from its header, unopened. A damaged file is one [`Problem`]
/// whose `details` hold the integrity check's findings, not an error. Waits up to 5 seconds
/// for another connection's lock ([`check_file_with_timeout`] chooses).
///
/// # Errors
/// [`Error::DatabaseMissing`], [`Error::PermissionDenied`] (this user may not see the file),
/// [`Error::NotAStore`] (a file that is not a store), [`Error::Io`] (the directory
/// cannot be read),
/// [`Error::Busy`] (another connection held the file for more than 5 seconds), other SQLite
/// errors that are not damage.
pub fn check_file(path: impl AsRef<Path>) -> Result<CheckReport> {
    check_file_with_timeout(path, CHECK_BUSY_TIMEOUT)
}

/// [`check_file`], waiting up to `busy_timeout` for another connection's lock.
///
/// # Errors
/// As [`check_file`]; [`Error::Busy`] after `busy_timeout`.
pub fn check_file_with_timeout(
    path: impl AsRef<Path>,
    busy_timeout: Duration,
) -> Result<CheckReport> {
    let path = path.as_ref();
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
        Err(e @ Error::InsecureFile { .. }) => report.problems.push(permission_problem(&e)),
        Err(e) => return Err(e),
    }
    // A symlink or a special file is only reported: nothing is opened through it.
    let regular = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Error::DatabaseMissing {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    if !regular.file_type().is_file() {
        return Ok(report);
    }
    check_writable(path, &regular, &mut report)?;
    // Another program's file is refused from its header, before SQLite opens it.
    if let FileKind::Foreign(what) = header::file_kind(path)? {
        return Err(Error::NotAStore {
            path: path.to_path_buf(),
            what,
        });
    }
    let sql = |e| classify(e, busy_timeout);
    let Some(conn) = open_unchanged(path, &mut report).map_err(sql)? else {
        return Ok(report);
    };
    conn.busy_timeout(busy_timeout).map_err(sql)?;
    match inspect(&conn, &mut report) {
        Ok(()) => Ok(report),
        Err(e) => match classify(e, busy_timeout) {
            Error::Corrupt {
                source: Some(source),
                ..
            } => {
                let mut problem = Problem::new(
                    ProblemKind::Corrupt,
                    format!("the file is damaged or is not an SQLite database ({source})"),
                    CORRUPT_FIX,
                );
                problem.details.push(source.to_string());
                report.problems.push(problem);
                Ok(report)
            }
            other => Err(other),
        },
    }
}

/// A connection that only looks (see [`look`](super::look)): it creates and changes nothing.
/// Where SQLite would have to create a side file it cannot remove, the content is not checked
/// (`None`), and the report says why:
/// - a `-wal` without its `-shm` (a program using the file was killed and the `-shm` removed);
/// - a WAL-mode file this user may not write, without a `-wal`.
fn open_unchanged(path: &Path, report: &mut CheckReport) -> rusqlite::Result<Option<Connection>> {
    let exists = |suffix| fs::symlink_metadata(side_path(path, suffix)).is_ok();
    let look = Look::of(path);
    let unchecked = |report: &mut CheckReport, why: &str, fix: &str| {
        report.problems.push(Problem::new(
            ProblemKind::JournalMode,
            format!(
                "{}: {why}, so its content was not checked: reading it would create a -shm \
                 file next to it",
                path.display()
            ),
            fix,
        ));
        Ok(None)
    };
    if exists("-wal") && !exists("-shm") {
        return unchecked(
            report,
            "it has a -wal file but no -shm file (a program using it stopped without closing \
             it)",
            "run any command that opens the store, such as `oauth-state-store stats`, as the \
             file's owner (it recovers the -wal file), then check again",
        );
    }
    if look == Look::ReadOnly && !exists("-wal") && header::says_wal(path) {
        return unchecked(
            report,
            "this user may not write it",
            "run the check as the file's owner",
        );
    }
    let flags = look.access()
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_EXRESCODE;
    let conn = Connection::open_with_flags(path, flags)?;
    if look.query_only() {
        conn.pragma_update(None, "query_only", true)?;
    }
    Ok(Some(conn))
}

/// The owner's write bits: a file or directory its own applications cannot write fails every
/// login with a read-only error (root's bypass of the bits hides it from a check run as root).
fn check_writable(path: &Path, file: &fs::Metadata, report: &mut CheckReport) -> Result<()> {
    let mode = file.mode() & 0o7777;
    if mode & 0o200 == 0 {
        report.problems.push(Problem::new(
            ProblemKind::Permissions,
            format!(
                "{}: the file is read-only (mode {mode:04o}), so applications cannot record or \
                 consume a login in it",
                path.display()
            ),
            "run `chmod 600` on it, as its owner",
        ));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir_mode = fs::metadata(dir).map_err(|e| Error::io(dir, e))?.mode() & 0o7777;
    if dir_mode & 0o300 != 0o300 {
        report.problems.push(Problem::new(
            ProblemKind::Permissions,
            format!(
                "{}: its owner cannot create files in the directory (mode {dir_mode:04o}), so \
                 applications cannot make the database's -wal and -shm files",
                dir.display()
            ),
            "run `chmod 700` on this private directory, as its owner",
        ));
    }
    Ok(())
}

const CORRUPT_FIX: &str = "stop the applications using it, move the file (and its -wal and \
     -shm files) aside and run `oauth-state-store migrate`; logins in progress must be started \
     again";

/// "the integrity check found 20 problems: a; b; c; and 17 more".
fn integrity_summary(messages: &[String]) -> String {
    let quoted: Vec<&str> = messages
        .iter()
        .take(SUMMARY_MESSAGES)
        .map(String::as_str)
        .collect();
    let more = messages.len().saturating_sub(SUMMARY_MESSAGES);
    let count = if messages.len() >= MAX_INTEGRITY_MESSAGES {
        format!("{MAX_INTEGRITY_MESSAGES} or more problems")
    } else if messages.len() == 1 {
        "1 problem".to_string()
    } else {
        format!("{} problems", messages.len())
    };
    let mut summary = format!(
        "the file is damaged: the integrity check found {count}: {}",
        quoted.join("; ")
    );
    if more > 0 {
        summary.push_str(&format!("; and {more} more"));
    }
    summary
}

/// Fills `report` from the content of a store's file.
fn inspect(conn: &Connection, report: &mut CheckReport) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row(SELECT_USER_VERSION, [], |r| r.get(0))?;
    report.schema_version = Some(version);
    let mut messages = Vec::new();
    {
        let mut stmt = conn.prepare(INTEGRITY_CHECK)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let m: String = r.get(0)?;
            // One row may hold several findings, one a line, under a "*** in database
            // main ***" heading.
            let findings = m
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && *l != "ok" && !l.starts_with("*** "));
            for finding in findings {
                if messages.len() < MAX_INTEGRITY_MESSAGES {
                    messages.push(finding.to_owned());
                }
            }
        }
    }
    if !messages.is_empty() {
        let mut problem = Problem::new(
            ProblemKind::Corrupt,
            integrity_summary(&messages),
            CORRUPT_FIX,
        );
        problem.details = messages;
        report.problems.push(problem);
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
