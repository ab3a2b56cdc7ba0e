//! File security on a shared host, beyond tests/file_security.rs: files
//! and directories owned by another uid, symlinked and planted `-wal`/`-shm`/`-journal`
//! files. Each is refused before SQLite reads anything, with a message that says why and
//! how to fix it, and the flows already in the file are untouched.
//!
//! Giving a file to another uid needs root (CI runs as root); as another user those cases
//! print SKIPPED and the mode and symlink cases still run.

mod common;

use std::fs;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{assert_error_clean, dump_flows, running_as_root, Fixture};
use oauth_state_store::{BeginRequest, CodeVerifier, Error, FileChecks, State, Store};

const STATE: &str = "shared-host-STATE-secret-c0ffee";
const VERIFIER: &str = "sharedHostVERIFIERsecret-0123456789-abcdefghijk";
const SECRETS: [&str; 2] = [STATE, VERIFIER];
const NOBODY: u32 = 65534;

fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// A closed store with one pending flow whose secrets the test knows, and no -wal/-shm left.
/// The dump of its rows is taken here: opening the file with SQLite while a culprit is in
/// place would change the culprit (SQLite deletes a -wal on close, and as root gives new
/// -wal/-shm files the database's owner).
fn with_flow() -> (Fixture, Vec<String>) {
    let fx = Fixture::new();
    let store = fx.store();
    store
        .begin(
            BeginRequest::new("srv")
                .state(State::new(STATE).unwrap())
                .verifier(CodeVerifier::new(VERIFIER).unwrap()),
        )
        .unwrap();
    // Dumped while the store is open, so that its close removes the -wal and -shm.
    let rows = dump_flows(&fx.path);
    assert_eq!(rows.len(), 1);
    drop(store);
    for suffix in ["-wal", "-shm"] {
        assert!(!side(&fx.path, suffix).exists(), "{suffix} left behind");
    }
    (fx, rows)
}

/// Opening must fail with `InsecureFile` about `culprit`, saying `why` and `fix`.
fn assert_refused(fx: &Fixture, culprit: &Path, why: &str, fix: &str) -> Error {
    let e = match fx.options().open(&fx.path) {
        Err(e) => e,
        Ok(_) => panic!("{culprit:?} was accepted"),
    };
    match &e {
        Error::InsecureFile { path, reason } => {
            assert_eq!(path, culprit, "{e}");
            assert!(reason.contains(why), "does not say why ({why}): {reason}");
            assert!(
                reason.contains(fix),
                "does not say how to fix ({fix}): {reason}"
            );
        }
        other => panic!("expected InsecureFile about {culprit:?}, got {other:?}"),
    }
    assert!(e.to_string().contains(&culprit.display().to_string()));
    assert_error_clean(&e, &SECRETS);
    e
}

/// Once the culprit is gone: the rows are as they were, and the flow consumes.
fn consumable(fx: &Fixture, before: &[String]) {
    assert_eq!(dump_flows(&fx.path), before, "a refused open changed rows");
    let consumed = fx.store().consume(STATE).unwrap();
    assert_eq!(consumed.verifier.secret(), VERIFIER);
}

fn skip_unless_root(test: &str) -> bool {
    if running_as_root() {
        return false;
    }
    eprintln!("SKIPPED: {test} needs root to give a file to uid {NOBODY}");
    true
}

#[test]
fn a_database_owned_by_another_uid_is_refused_even_with_mode_0600() {
    if skip_unless_root("a_database_owned_by_another_uid_is_refused_even_with_mode_0600") {
        return;
    }
    let (fx, before) = with_flow();
    chown(&fx.path, Some(NOBODY), Some(NOBODY)).unwrap();
    assert_eq!(
        fs::metadata(&fx.path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_refused(&fx, &fx.path, "belongs to uid 65534", "chown");
    chown(&fx.path, Some(0), Some(0)).unwrap();
    consumable(&fx, &before);
}

#[test]
fn a_wal_or_shm_planted_by_another_uid_is_refused() {
    if skip_unless_root("a_wal_or_shm_planted_by_another_uid_is_refused") {
        return;
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        let (fx, before) = with_flow();
        let planted = side(&fx.path, suffix);
        // Mode 0600 and a private directory: only the owner gives it away.
        fs::write(&planted, b"").unwrap();
        fs::set_permissions(&planted, fs::Permissions::from_mode(0o600)).unwrap();
        chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
        assert_refused(&fx, &planted, "belongs to uid 65534", "remove the");
        fs::remove_file(&planted).unwrap();
        consumable(&fx, &before);
    }
}

#[test]
fn a_wal_or_shm_with_a_loose_mode_is_refused() {
    for (suffix, mode) in [("-shm", 0o666), ("-shm", 0o640), ("-wal", 0o602)] {
        let (fx, before) = with_flow();
        let planted = side(&fx.path, suffix);
        fs::write(&planted, b"").unwrap();
        fs::set_permissions(&planted, fs::Permissions::from_mode(mode)).unwrap();
        assert_refused(&fx, &planted, "group or others", "remove the");
        fs::remove_file(&planted).unwrap();
        consumable(&fx, &before);
    }
}

#[test]
fn a_symlinked_wal_or_shm_is_refused_even_with_relaxed_checks() {
    for suffix in ["-wal", "-shm"] {
        let (fx, before) = with_flow();
        let target = fx.dir.path().join(format!("elsewhere{suffix}"));
        fs::write(&target, b"").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
        let planted = side(&fx.path, suffix);
        symlink(&target, &planted).unwrap();
        assert_refused(&fx, &planted, "symbolic link", "remove the");
        let relaxed = fx.options().file_checks(FileChecks::Relaxed).open(&fx.path);
        assert!(
            matches!(relaxed, Err(Error::InsecureFile { .. })),
            "{relaxed:?}"
        );
        fs::remove_file(&planted).unwrap();
        consumable(&fx, &before);
    }
}

#[test]
fn a_symlinked_or_dangling_database_path_is_refused() {
    // The link itself is the problem, whoever owns its target (here: our own good file).
    let (fx, before) = with_flow();
    let link = fx.dir.path().join("link.db");
    symlink(&fx.path, &link).unwrap();
    let e = Store::open(&link).unwrap_err();
    match &e {
        Error::InsecureFile { path, reason } => {
            assert_eq!(path, &link);
            assert!(reason.contains("symbolic link"), "{reason}");
            assert!(
                reason.contains("point the store at the real file"),
                "{reason}"
            );
        }
        other => panic!("expected InsecureFile, got {other:?}"),
    }
    assert_error_clean(&e, &SECRETS);
    // A dangling link is refused too, and nothing is created at its target.
    let dangling = fx.dir.path().join("dangling.db");
    let target = fx.dir.path().join("target.db");
    symlink(&target, &dangling).unwrap();
    assert!(matches!(
        Store::open(&dangling),
        Err(Error::InsecureFile { .. })
    ));
    assert!(!target.exists(), "the store created a file through a link");
    consumable(&fx, &before);
}

#[test]
fn a_directory_owned_by_another_uid_is_refused() {
    if skip_unless_root("a_directory_owned_by_another_uid_is_refused") {
        return;
    }
    let (fx, before) = with_flow();
    chown(fx.dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let e = fx.options().open(&fx.path).unwrap_err();
    match &e {
        Error::InsecureFile { path, reason } => {
            assert_eq!(path, fx.dir.path());
            assert!(reason.contains("belongs to uid 65534"), "{reason}");
            assert!(reason.contains("directory you own"), "{reason}");
        }
        other => panic!("expected InsecureFile, got {other:?}"),
    }
    assert_error_clean(&e, &SECRETS);
    chown(fx.dir.path(), Some(0), Some(0)).unwrap();
    consumable(&fx, &before);
}

#[test]
fn a_wal_in_place_of_a_directory_or_fifo_is_refused() {
    let (fx, before) = with_flow();
    let planted = side(&fx.path, "-wal");
    fs::create_dir(&planted).unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o700)).unwrap();
    assert_refused(&fx, &planted, "not a regular file", "remove the");
    fs::remove_dir(&planted).unwrap();
    consumable(&fx, &before);
}

#[test]
fn a_new_database_next_to_a_planted_wal_is_refused_before_it_is_created() {
    // A stale or planted -wal waiting for a database that does not exist yet: SQLite would
    // replay its frames into the new file.
    if skip_unless_root("a_new_database_next_to_a_planted_wal_is_refused_before_it_is_created") {
        return;
    }
    let fx = Fixture::new();
    let planted = side(&fx.path, "-wal");
    fs::write(&planted, b"").unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o600)).unwrap();
    chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    let e = fx.options().open(&fx.path).unwrap_err();
    assert!(
        matches!(&e, Error::InsecureFile { path, .. } if path == &planted),
        "{e:?}"
    );
}
