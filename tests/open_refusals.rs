//! The library's `Store::open` refuses another application's SQLite file unchanged, and
//! `StoreOptions::migrate(false)` refuses an older store unchanged.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::Fixture;
use oauth_state_store::{Error, Store, StoreOptions, SCHEMA_VERSION};

#[test]
fn a_foreign_database_is_not_a_store_and_is_left_unchanged() {
    let fx = Fixture::new();
    let c = rusqlite::Connection::open(&fx.path).unwrap();
    c.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY); INSERT INTO users VALUES (1);")
        .unwrap();
    drop(c);
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o600)).unwrap();
    let before = fs::read(&fx.path).unwrap();
    match Store::open(&fx.path) {
        Err(e @ Error::NotAStore { .. }) => {
            assert!(e.to_string().contains("the table users"), "{e}")
        }
        other => panic!("expected NotAStore, got {other:?}"),
    }
    assert!(fs::read(&fx.path).unwrap() == before);
    assert!(!fx.path.with_extension("db-wal").exists());
}

#[test]
fn migrate_false_refuses_a_new_or_older_file_and_true_migrates_it() {
    let fx = Fixture::new();
    fs::File::create(&fx.path).unwrap();
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o600)).unwrap();
    match StoreOptions::default().migrate(false).open(&fx.path) {
        Err(Error::MigrationNeeded { found: 0, expected }) => {
            assert_eq!(expected, SCHEMA_VERSION)
        }
        other => panic!("expected MigrationNeeded, got {other:?}"),
    }
    assert_eq!(
        fs::metadata(&fx.path).unwrap().len(),
        0,
        "the file was written"
    );
    let store = Store::open(&fx.path).unwrap();
    assert_eq!(store.migration().to, SCHEMA_VERSION);
    drop(store);
    let again = StoreOptions::default()
        .migrate(false)
        .open(&fx.path)
        .unwrap();
    assert_eq!(again.migration().from, SCHEMA_VERSION);
}
