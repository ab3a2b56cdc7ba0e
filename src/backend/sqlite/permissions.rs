//! File-system safety of the database on a shared host.
//!
//! Before SQLite opens anything, the file is created `0600` (its `-wal` and `-shm` then inherit
//! that mode from it), and an existing file, its `-wal`/`-shm` and its directory are checked:
//! no symlink, owned by this user, not readable or writable by group or others, in a directory
//! that group and others cannot write to.

use std::fs::{self, Metadata, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::denied::io_error;
use crate::error::{Error, Result};
use crate::options::FileChecks;

fn insecure(path: &Path, reason: String) -> Error {
    Error::InsecureFile {
        path: path.to_path_buf(),
        reason,
    }
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Creates the directory that will hold `path` when it is missing, mode 0700 (each directory it
/// creates on the way too), as the CLI's `migrate` and [`Store::open_default`] do. An existing
/// directory is left alone; [`prepare`] checks it afterwards.
///
/// [`Store::open_default`]: crate::Store::open_default
pub(crate) fn create_private_parent(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    match fs::symlink_metadata(dir) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(dir, e)),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Checks the directory, creates the file if allowed, checks the file and its `-wal`/`-shm`.
pub(crate) fn prepare(path: &Path, create: bool, checks: FileChecks) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir_meta = fs::metadata(&dir).map_err(|e| io_error(&dir, e))?;
    if !dir_meta.is_dir() {
        return Err(insecure(
            &dir,
            "is not a directory; give the database a path inside a directory".into(),
        ));
    }
    if checks == FileChecks::Enforce {
        check_dir(&dir, &dir_meta)?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) => check_file(path, &meta, checks)?,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if !create {
                return Err(Error::DatabaseMissing {
                    path: path.to_path_buf(),
                });
            }
            create_private(path, checks)?;
        }
        Err(e) => return Err(io_error(path, e)),
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        match fs::symlink_metadata(&side) {
            Ok(meta) => check_file(&side, &meta, checks).map_err(|e| side_file_fix(e, suffix))?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&side, e)),
        }
    }
    Ok(())
}

/// Creates the file with mode 0600, atomically; if another process won the race, checks theirs.
fn create_private(path: &Path, checks: FileChecks) -> Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => {
            // The umask can only take bits away; make the mode exact anyway.
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io(path, e))?;
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
            check_file(path, &meta, checks)
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Replaces the advice for a bad `-wal`, `-shm` or `-journal` file: SQLite would replay or
/// trust it, so one planted by someone else could inject or hide rows, and the advice for the
/// database itself (change its mode, run as its owner) would adopt it.
fn side_file_fix(e: Error, suffix: &str) -> Error {
    match e {
        Error::InsecureFile { path, reason } => {
            let what = reason
                .split_once("; ")
                .map_or(reason.as_str(), |(what, _)| what);
            Error::InsecureFile {
                reason: format!(
                    "{what}, and this {suffix} file is part of the database: SQLite would read \
                     it as its own, so one planted or changed by someone else could inject or \
                     hide rows; if you did not make it, stop every program using the database, \
                     remove the {suffix} file (and the database too, if you cannot trust it) \
                     and open it again"
                ),
                path,
            }
        }
        other => other,
    }
}

fn check_dir(dir: &Path, meta: &Metadata) -> Result<()> {
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(insecure(
            dir,
            format!(
                "the directory is writable by group or others (mode {mode:04o}), so another user \
                 could plant or replace the database or its -wal file; keep the database in a \
                 private directory of your own instead, such as the default \
                 ~/.local/state/oauth-state-store (`oauth-state-store migrate --db \
                 DIR/flows.db` creates a missing DIR with mode 0700)"
            ),
        ));
    }
    let (owner, me) = (meta.uid(), euid());
    if owner != me && owner != 0 {
        return Err(insecure(
            dir,
            format!(
                "the directory belongs to uid {owner}, not to you (uid {me}); {}",
                if me == 0 {
                    format!(
                        "run the program as the user who owns it (uid {owner}), for example \
                         with `sudo -u '#{owner}'`, or keep the database in a directory you own"
                    )
                } else {
                    "keep the database in a directory you own".to_string()
                }
            ),
        ));
    }
    Ok(())
}

fn check_file(path: &Path, meta: &Metadata, checks: FileChecks) -> Result<()> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(insecure(
            path,
            "is a symbolic link (links are refused so that nobody can redirect the store to a \
             file of their choosing); point the store at the real file"
                .into(),
        ));
    }
    if !kind.is_file() {
        return Err(insecure(
            path,
            "is not a regular file (a directory, device, FIFO or socket); point the store at a \
             regular file or at a path that does not exist yet"
                .into(),
        ));
    }
    if checks == FileChecks::Relaxed {
        return Ok(());
    }
    let (owner, me) = (meta.uid(), euid());
    if owner != me {
        let reason = if me == 0 {
            format!(
                "the file belongs to uid {owner}, not to you (uid 0); run the program as the \
                 user who owns it, for example with `sudo -u '#{owner}'` (do not `chown` it: \
                 that would lock its owner's applications out)"
            )
        } else {
            format!(
                "the file belongs to uid {owner}, not to you (uid {me}), so another user could \
                 read or change your pending logins; use a database of your own, or run the \
                 program as the user who owns it"
            )
        };
        return Err(insecure(path, reason));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(insecure(
            path,
            format!(
                "the file can be read or written by group or others (mode {mode:04o}), and it \
                 holds PKCE verifiers; run `chmod 600` on it"
            ),
        ));
    }
    Ok(())
}
