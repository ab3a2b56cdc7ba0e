//! Finding and opening the database: the path that applies, an existing store opened to use or
//! only to look at, and the refusals made before the library opens anything.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oauth_state_store::{default_database_path, Error, Store, StoreOptions};

use crate::output::{self, CliResult};

/// The database `--db` names, else the default path.
pub fn database_path(db: Option<PathBuf>) -> CliResult<PathBuf> {
    db.filter(|p| !p.as_os_str().is_empty())
        .or_else(default_database_path)
        .ok_or_else(|| {
            output::Failure::usage(
                "no database path: pass --db PATH, or set OAUTH_STATE_DB (or HOME for the \
                 default)",
            )
            .into()
        })
}

/// Opens an existing store at the current schema version; a missing file (or directory) is
/// an error, never created, and an older store is [`Error::MigrationNeeded`]: only `migrate`
/// changes a schema.
///
/// Dropping the store closes its connections on this thread: each command's store is dropped
/// before `main` returns, whatever the outcome, so the file's own `-wal` and `-shm` go with the
/// last connection instead of staying behind.
pub fn open_existing(path: &Path, options: StoreOptions) -> CliResult<Store> {
    refuse_missing(path)?;
    refuse_read_only(path)?;
    Ok(options.create_if_missing(false).migrate(false).open(path)?)
}

/// Opens an existing store at the current schema version only to look at it
/// ([`StoreOptions::read_only`]): it creates and changes nothing, not even by merging into the
/// file a `-wal` that a killed program left behind, which stays as it was.
pub fn open_to_look(path: &Path, options: StoreOptions) -> CliResult<Store> {
    open_existing(path, options.read_only(true))
}

/// A file that its owner may not write (mode 0400, say), opened by that owner: SQLite would
/// fall back to a read-only connection and leave a `-wal` and a `-shm` with the file's mode
/// next to it, which applications could not write even after a `chmod 600` on the file. So it
/// is refused before anything opens it. (Root writes whatever the mode says; another user's
/// file, and one that others may read, are refused by the library's own checks, unchanged.)
pub fn refuse_read_only(path: &Path) -> CliResult<()> {
    if is_database_url(path) {
        return Ok(());
    }
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let me = rustix::process::geteuid();
    let mode = meta.mode() & 0o7777;
    if !meta.is_file() || me.is_root() || meta.uid() != me.as_raw() || mode & 0o277 != 0 {
        return Ok(());
    }
    Err(output::Failure::could_not_run(
        "read_only",
        format!(
            "refusing to open {}: the file is read-only (mode {mode:04o}), so applications \
             cannot record or consume a login in it, and opening it would leave -wal and -shm \
             files that they could not write either; nothing was changed: run `chmod 600` on it",
            path.display()
        ),
    )
    .into())
}

/// Whether `--db` names a PostgreSQL database (`postgres://` / `postgresql://`), not a file.
pub fn is_database_url(path: &Path) -> bool {
    path.to_str().is_some_and(|p| {
        let lower = p.get(..13).unwrap_or(p).to_ascii_lowercase();
        lower.starts_with("postgres://") || lower.starts_with("postgresql://")
    })
}

/// How messages name the database: the path of a file; a URL never (it may hold a password).
pub fn shown(path: &Path) -> String {
    if is_database_url(path) {
        "the PostgreSQL database".to_owned()
    } else {
        path.display().to_string()
    }
}

/// A missing file, or a missing directory, is [`Error::DatabaseMissing`], wherever it would
/// be (also in a directory the store would refuse, such as `/tmp`); one this user may not look
/// at is [`Error::PermissionDenied`] (naming its owner), never "does not exist".
pub fn refuse_missing(path: &Path) -> Result<(), Error> {
    if is_database_url(path) {
        return Ok(());
    }
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::DatabaseMissing {
            path: path.to_path_buf(),
        }),
        // The library's own checks then say who owns what (permission denied) or what failed.
        Err(_) => Ok(()),
    }
}
