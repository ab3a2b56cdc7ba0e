//! A file that is not a store is `NotAStore` through every open, and stays as it was: the same
//! bytes, the same modification time, and nothing beside it (no `-wal`, `-shm` or `-journal`),
//! whatever tables or `user_version` it has. Only a store of ours that is damaged is `Corrupt`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::Fixture;
use oauth_state_store::{Error, Store, StoreOptions};

/// Every entry of the file's directory, with its size and modification time, and the file's
/// bytes.
fn snapshot(path: &Path) -> (BTreeMap<String, (u64, i128)>, Vec<u8>) {
    let listing = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            let mtime = m
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as i128;
            (
                e.file_name().to_string_lossy().into_owned(),
                (m.len(), mtime),
            )
        })
        .collect();
    (listing, fs::read(path).unwrap())
}

/// The ways a library user opens a file.
fn opens() -> [(&'static str, StoreOptions); 3] {
    [
        ("Store::open", StoreOptions::default()),
        ("read_only(true)", StoreOptions::default().read_only(true)),
        ("migrate(false)", StoreOptions::default().migrate(false)),
    ]
}

/// Each open of `path` is `NotAStore` and leaves the file and its directory as they were.
fn refused_unchanged(path: &Path, case: &str) {
    let before = snapshot(path);
    for (how, options) in opens() {
        match options.open(path) {
            Err(e @ Error::NotAStore { .. }) => {
                let text = e.to_string();
                assert!(text.contains("not an oauth-state-store database"), "{text}");
            }
            other => panic!("{case}, {how}: expected NotAStore, got {other:?}"),
        }
        assert!(
            snapshot(path) == before,
            "{case}, {how}: the file or its directory changed"
        );
    }
}

/// Another program's file whose tables bear the store's names.
const LOOKALIKE: &str = "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL); \
     CREATE TABLE flows(id INTEGER PRIMARY KEY, name TEXT, steps TEXT);";

/// Makes `path` another program's database: `sql`, `user_version`, WAL mode or not, closed
/// cleanly, mode 0600.
fn foreign(path: &Path, sql: &str, user_version: i64, wal: bool) {
    let c = rusqlite::Connection::open(path).unwrap();
    if wal {
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
    }
    c.execute_batch(sql).unwrap();
    c.execute("INSERT INTO meta (key, value) VALUES ('owner', 'them')", [])
        .ok();
    c.pragma_update(None, "user_version", user_version).unwrap();
    drop(c);
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(!Path::new(&format!("{}-wal", path.display())).exists());
}

#[test]
fn a_lookalike_of_any_user_version_in_either_journal_mode_is_not_a_store_and_unchanged() {
    for wal in [false, true] {
        for version in [0, 1, 3, 6, 7, 99] {
            let fx = Fixture::new();
            foreign(&fx.path, LOOKALIKE, version, wal);
            refused_unchanged(&fx.path, &format!("user_version {version}, wal {wal}"));
        }
    }
}

#[test]
fn another_programs_wal_database_is_not_a_store_and_nothing_is_left_beside_it() {
    let fx = Fixture::new();
    foreign(
        &fx.path,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); \
         INSERT INTO users (name) VALUES ('alice');",
        0,
        true,
    );
    refused_unchanged(&fx.path, "a WAL database");
    // In rollback mode the refusal names the tables it read without changing anything.
    let fx = Fixture::new();
    foreign(&fx.path, "CREATE TABLE users (id INTEGER);", 7, false);
    let e = Store::open(&fx.path).unwrap_err().to_string();
    assert!(e.contains("the table users (user_version 7)"), "{e}");
}

#[test]
fn a_text_file_and_random_bytes_are_not_a_store_and_unchanged() {
    for content in [
        b"# not a database\nthis is a configuration file\n".repeat(200),
        b"SQLite format 3\0".to_vec(),
        (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect(),
    ] {
        let fx = Fixture::new();
        fs::write(&fx.path, &content).unwrap();
        fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o600)).unwrap();
        refused_unchanged(&fx.path, "a file that is not a database");
    }
}

#[test]
fn an_empty_file_is_a_new_store_for_open_and_unchanged_for_a_read_only_open() {
    let fx = Fixture::new();
    fs::write(&fx.path, b"").unwrap();
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o600)).unwrap();
    let before = snapshot(&fx.path);
    for options in [
        StoreOptions::default().read_only(true),
        StoreOptions::default().migrate(false),
    ] {
        assert!(matches!(
            options.open(&fx.path),
            Err(Error::MigrationNeeded { found: 0, .. })
        ));
        assert!(snapshot(&fx.path) == before);
    }
    let store = Store::open(&fx.path).unwrap();
    assert_eq!(store.migration().from, 0);
    drop(store);
    assert_eq!(&fs::read(&fx.path).unwrap()[68..72], b"OASS");
}

#[test]
fn only_a_store_of_ours_that_is_damaged_is_corrupt() {
    let fx = Fixture::new();
    drop(fx.store());
    // The magic string destroyed, the application id intact: a damaged store.
    let mut bytes = fs::read(&fx.path).unwrap();
    bytes[..16].copy_from_slice(b"garbage garbage!");
    fs::write(&fx.path, &bytes).unwrap();
    let before = snapshot(&fx.path);
    for (how, options) in opens() {
        match options.open(&fx.path) {
            Err(Error::Corrupt { .. }) => {}
            other => panic!("{how}: expected Corrupt, got {other:?}"),
        }
        assert!(snapshot(&fx.path) == before, "{how} changed the file");
    }
}
