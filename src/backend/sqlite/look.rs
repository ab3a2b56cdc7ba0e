//! Opening a store's file only to look at it (a read-only store, `check_file`, the command
//! line's `stats`, `list` and `sweep --dry-run`), so that the look creates and changes nothing.
//!
//! What SQLite does with a file in WAL mode:
//! - a read-only connection needs a `-wal` and a `-shm`: it creates them when they are missing
//!   and, being read-only, cannot remove them when it closes;
//! - a read-write connection that is the last to close checkpoints the `-wal` into the
//!   database file and removes both side files: a `-wal` that a killed program left behind is
//!   merged into the file (same rows, other bytes).
//!
//! So a look takes the connection that leaves the file as it found it:
//! - a `-wal` is there (a program has the file open, or was killed): read-only, reading the
//!   `-wal` where it is and never merging it;
//! - no `-wal` (the file was closed cleanly): read-write with `query_only`, so that the last
//!   connection to close removes the `-wal` and `-shm` it had to make; with no frame in the
//!   `-wal` its checkpoint writes nothing to the database file.
//!
//! What SQLite does not let a look avoid (the command line's manual, `cli/README.md`):
//! a `-wal` without its `-shm` gets a new `-shm`; a WAL-mode file this user may not write,
//! closed cleanly, gets a `-wal` and `-shm` that the read-only connection cannot remove
//! ([`check_file`](crate::check_file) skips the content check in both cases instead); and an
//! application that writes while a look is open and closes first leaves its `-wal` to the look,
//! whose close then checkpoints it as the application itself would have.

use std::path::Path;

use rusqlite::OpenFlags;

use super::files::side_path;

/// How a look opens the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// `SQLITE_OPEN_READONLY`: the `-wal` is there, or this user may not write the file.
    ReadOnly,
    /// `SQLITE_OPEN_READWRITE` with `PRAGMA query_only`: no `-wal` yet.
    QueryOnly,
}

impl Look {
    /// The look that leaves the file at `path` as it is.
    pub(crate) fn of(path: &Path) -> Look {
        let wal = std::fs::symlink_metadata(side_path(path, "-wal")).is_ok();
        let writable = rustix::fs::access(path, rustix::fs::Access::WRITE_OK).is_ok();
        if wal || !writable {
            Look::ReadOnly
        } else {
            Look::QueryOnly
        }
    }

    /// The access flag of its connections.
    pub(crate) fn access(self) -> OpenFlags {
        match self {
            Look::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
            Look::QueryOnly => OpenFlags::SQLITE_OPEN_READ_WRITE,
        }
    }

    /// Whether its connections refuse every write themselves (`PRAGMA query_only`).
    pub(crate) fn query_only(self) -> bool {
        self == Look::QueryOnly
    }
}
