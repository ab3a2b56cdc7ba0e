//! What a file is, told from its first 100 bytes before SQLite opens it: SQLite would create a
//! `-wal` and `-shm` beside a WAL-mode database of another program, and migrating would write
//! into it. A store says it is one with `PRAGMA application_id` ([`APPLICATION_ID`]), written
//! in the transaction that creates its schema, before the file switches to WAL, so the main
//! file's header always holds it.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::denied::io_error;
use super::files::side_path;
use crate::error::{Error, Result};

/// `PRAGMA application_id` of a store file: "OASS" in ASCII (OAuth State Store), at offset 68
/// of the file, big-endian.
pub(crate) const APPLICATION_ID: u32 = 0x4F41_5353;

/// SQLite's magic string, the first 16 bytes of every database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Offsets in the 100-byte database header (sqlite.org/fileformat.html).
const WRITE_VERSION: usize = 18;
const READ_VERSION: usize = 19;
const USER_VERSION: usize = 60;
const APPLICATION_ID_AT: usize = 68;
const HEADER_LEN: usize = 100;

/// What the file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// Zero bytes: what a new store starts from (the store creates it 0600, empty, before SQLite
    /// first writes to it).
    Empty,
    /// A store's file (its header carries [`APPLICATION_ID`]), in WAL mode or not. Its content
    /// may still be damaged: SQLite tells.
    Store,
    /// Anything else; the text says what it seems to be.
    Foreign(String),
}

/// Reads the header of the file at `path` (which exists and is a regular file) without SQLite.
///
/// # Errors
/// [`Error::PermissionDenied`] or [`Error::Io`] when the file cannot be read.
pub(crate) fn file_kind(path: &Path) -> Result<FileKind> {
    let mut file = File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    (&mut file)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut header)
        .map_err(|e| match e.kind() {
            ErrorKind::Interrupted => Error::io(path, e),
            _ => io_error(path, e),
        })?;
    Ok(match classify(&header) {
        FileKind::Foreign(what) if header.len() == HEADER_LEN && header[READ_VERSION] == 1 => {
            FileKind::Foreign(tables(path, &header).unwrap_or(what))
        }
        kind => kind,
    })
}

/// "an SQLite database with the tables flows, meta (user_version 3), probably another
/// application's", for a foreign database in rollback mode: a read-only connection to such a
/// file creates nothing beside it (in WAL mode it would make a `-wal` and `-shm`, so there the
/// header alone describes the file). `None` when the schema cannot be read.
fn tables(path: &Path, header: &[u8]) -> Option<String> {
    let hot_journal = std::fs::symlink_metadata(side_path(path, "-journal")).is_ok();
    if hot_journal {
        return None;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn = Connection::open_with_flags(path, flags).ok()?;
    let user_version = i32::from_be_bytes(header[USER_VERSION..USER_VERSION + 4].try_into().ok()?);
    describe_schema(&conn, i64::from(user_version)).ok()
}

/// The tables of the file, by name (SQLite's own excluded).
pub(crate) const SELECT_TABLES: &str = "SELECT name FROM sqlite_schema \
     WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";
/// What a file that is not a store seems to be, from the tables `conn` reads in its schema
/// (see [`describe`]).
pub(crate) fn describe_schema(conn: &Connection, user_version: i64) -> rusqlite::Result<String> {
    let tables: Vec<String> = conn
        .prepare(SELECT_TABLES)?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(describe(&tables, user_version))
}

/// "an SQLite database with the tables users, sessions (user_version 7), probably another
/// application's": what a file that is not a store seems to be, from its schema's names only.
pub(crate) fn describe(tables: &[String], user_version: i64) -> String {
    const SHOWN: usize = 5;
    let names: Vec<String> = tables
        .iter()
        .take(SHOWN)
        .map(|t| {
            t.chars()
                .take(40)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect()
        })
        .collect();
    let mut text = match tables.len() {
        0 => "an SQLite database without tables".to_string(),
        1 => format!("an SQLite database with the table {}", names[0]),
        _ => format!("an SQLite database with the tables {}", names.join(", ")),
    };
    if tables.len() > SHOWN {
        text.push_str(&format!(" and {} more", tables.len() - SHOWN));
    }
    if user_version != 0 {
        text.push_str(&format!(" (user_version {user_version})"));
    }
    text.push_str(", probably another application's");
    text
}

/// [`file_kind`] of the bytes a header read gave (fewer than 100 for a short file).
fn classify(header: &[u8]) -> FileKind {
    if header.is_empty() {
        return FileKind::Empty;
    }
    if header.len() < HEADER_LEN {
        return FileKind::Foreign(format!(
            "a file of {} bytes, too short for an SQLite database",
            header.len()
        ));
    }
    let be32 = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    // The id alone decides: a store whose magic string was damaged is still a store (a damaged
    // one, which SQLite reports as corrupt).
    if be32(APPLICATION_ID_AT) == APPLICATION_ID {
        return FileKind::Store;
    }
    if &header[..MAGIC.len()] != MAGIC {
        return FileKind::Foreign("a file that is not an SQLite database".into());
    }
    let mut what = String::from("an SQLite database");
    if header[WRITE_VERSION] == 2 && header[READ_VERSION] == 2 {
        what.push_str(" in WAL mode");
    }
    match be32(APPLICATION_ID_AT) {
        0 => what.push_str(" without an application id"),
        id => what.push_str(&format!(" of the application id {id:#010x}")),
    }
    let user_version = be32(USER_VERSION) as i32;
    if user_version != 0 {
        what.push_str(&format!(" (user_version {user_version})"));
    }
    what.push_str(", probably another application's");
    FileKind::Foreign(what)
}

/// Whether the header says WAL mode (its read and write format versions, bytes 18 and 19).
pub(crate) fn says_wal(path: &Path) -> bool {
    let mut header = [0u8; 20];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| header[WRITE_VERSION] == 2 && header[READ_VERSION] == 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: &[u8], app_id: u32, user_version: i32, wal: bool) -> Vec<u8> {
        let mut h = vec![0u8; HEADER_LEN];
        h[..magic.len()].copy_from_slice(magic);
        h[APPLICATION_ID_AT..APPLICATION_ID_AT + 4].copy_from_slice(&app_id.to_be_bytes());
        h[USER_VERSION..USER_VERSION + 4].copy_from_slice(&user_version.to_be_bytes());
        if wal {
            h[WRITE_VERSION] = 2;
            h[READ_VERSION] = 2;
        }
        h
    }

    #[test]
    fn the_application_id_alone_says_a_file_is_a_store() {
        assert_eq!(classify(&[]), FileKind::Empty);
        assert_eq!(
            classify(&header(MAGIC, APPLICATION_ID, 1, true)),
            FileKind::Store
        );
        assert_eq!(
            classify(&header(b"garbage garbage!", APPLICATION_ID, 1, false)),
            FileKind::Store
        );
        let foreign = |h: &[u8]| match classify(h) {
            FileKind::Foreign(what) => what,
            other => panic!("{other:?}"),
        };
        let what = foreign(&header(MAGIC, 0, 7, true));
        assert_eq!(
            what,
            "an SQLite database in WAL mode without an application id (user_version 7), \
             probably another application's"
        );
        assert!(foreign(&header(MAGIC, 0x4750_4B47, 0, false)).contains("0x47504b47"));
        assert!(foreign(b"SQLite format 3\0").contains("16 bytes"));
        assert!(foreign(&[b'#'; 200]).contains("not an SQLite database"));
    }

    #[test]
    fn a_new_store_says_it_is_one_in_the_main_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flows.db");
        let store = crate::Store::open(&path).unwrap();
        // Still open: the header of the main file already carries the id, in WAL mode.
        assert_eq!(file_kind(&path).unwrap(), FileKind::Store);
        assert!(says_wal(&path));
        drop(store);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[68..72], b"OASS");
    }
}
