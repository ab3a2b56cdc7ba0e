//! File security on a shared host: modes, symlinks, owners, writable directories.
//!
//! These tests check the store's own mode and owner rules, so they prove something even when
//! run as root (where the kernel's access checks would let everything through).

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

use common::{running_as_root, Fixture};
use oauth_state_store::{BeginRequest, Error, FileChecks, Store, StoreOptions};

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn insecure_reason(result: Result<Store, Error>) -> String {
    match result {
        Err(Error::InsecureFile { reason, .. }) => reason,
        other => panic!("expected InsecureFile, got {other:?}"),
    }
}

#[test]
fn a_new_database_and_its_wal_and_shm_are_0600() {
    let fx = Fixture::new();
    let store = fx.store();
    let flow = store.begin(BeginRequest::new("srv")).unwrap();
    store.check(flow.state().secret()).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", fx.path.display());
        assert_eq!(mode(p.as_ref()), 0o600, "{p} is not 0600");
    }
}

#[test]
fn a_symlinked_database_is_refused() {
    let fx = Fixture::new();
    drop(fx.store());
    let link = fx.dir.path().join("link.db");
    symlink(&fx.path, &link).unwrap();
    let reason = insecure_reason(Store::open(&link));
    assert!(reason.contains("symbolic link"), "{reason}");
    // Relaxed checks still refuse links.
    let relaxed = StoreOptions::default()
        .file_checks(FileChecks::Relaxed)
        .open(&link);
    assert!(matches!(relaxed, Err(Error::InsecureFile { .. })));
}

#[test]
fn a_group_or_world_readable_file_is_refused_with_the_fix() {
    let fx = Fixture::new();
    drop(fx.store());
    for bad in [0o640, 0o604, 0o660, 0o606] {
        fs::set_permissions(&fx.path, fs::Permissions::from_mode(bad)).unwrap();
        let reason = insecure_reason(Store::open(&fx.path));
        assert!(reason.contains("chmod 600"), "{reason}");
    }
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o644)).unwrap();
    StoreOptions::default()
        .file_checks(FileChecks::Relaxed)
        .open(&fx.path)
        .expect("relaxed checks accept the mode");
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o600)).unwrap();
    Store::open(&fx.path).unwrap();
}

#[test]
fn a_world_or_group_writable_directory_is_refused() {
    let fx = Fixture::new();
    for bad in [0o777, 0o770, 0o1777] {
        fs::set_permissions(fx.dir.path(), fs::Permissions::from_mode(bad)).unwrap();
        let reason = insecure_reason(Store::open(&fx.path));
        // A private directory, never `chmod 700` on this one: it may be /tmp (mode 1777).
        assert!(reason.contains("private directory"), "{reason}");
        assert!(!reason.contains("chmod"), "{reason}");
        assert!(
            !fx.path.exists(),
            "a file was created in an insecure directory"
        );
    }
    fs::set_permissions(fx.dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    Store::open(&fx.path).unwrap();
}

#[test]
fn a_planted_wal_with_loose_mode_is_refused() {
    let fx = Fixture::new();
    drop(fx.store());
    let wal = format!("{}-wal", fx.path.display());
    fs::write(&wal, b"").unwrap();
    fs::set_permissions(&wal, fs::Permissions::from_mode(0o666)).unwrap();
    match Store::open(&fx.path) {
        Err(Error::InsecureFile { path, .. }) => assert_eq!(path.to_str(), Some(wal.as_str())),
        other => panic!("expected InsecureFile for the -wal, got {other:?}"),
    }
}

#[test]
fn a_file_owned_by_another_user_is_refused() {
    let fx = Fixture::new();
    drop(fx.store());
    // Only root can give a file away; as another user this case cannot be set up.
    if running_as_root() {
        std::os::unix::fs::chown(&fx.path, Some(65534), Some(65534)).unwrap();
        let reason = insecure_reason(Store::open(&fx.path));
        assert!(reason.contains("uid 65534"), "{reason}");
    } else {
        eprintln!("SKIPPED: a_file_owned_by_another_user_is_refused needs root to chown");
    }
}

#[test]
fn a_missing_file_is_not_created_when_told_not_to() {
    let fx = Fixture::new();
    let got = StoreOptions::default()
        .create_if_missing(false)
        .open(&fx.path);
    assert!(matches!(got, Err(Error::DatabaseMissing { .. })));
    assert!(!fx.path.exists());
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_error() {
    let fx = Fixture::new();
    drop(fx.store());
    let raw = rusqlite::Connection::open(&fx.path).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    match Store::open(&fx.path) {
        Err(e @ Error::DatabaseTooNew { found: 99, .. }) => {
            assert!(e.to_string().contains("upgrade"), "{e}");
        }
        other => panic!("expected DatabaseTooNew, got {other:?}"),
    }
}
