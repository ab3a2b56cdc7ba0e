//! The command line never damages a file it was only asked to look at: refused opens and
//! read-only commands create nothing, only `migrate` migrates, another application's SQLite
//! file is refused unchanged, and "permission denied" is not "does not exist".

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use super::{cli, stderr, stdout};
use crate::common::Fixture;

/// Every entry of `dir`: name, mode, owner, size, modification time. Equal before and after
/// means nothing was created, removed, re-owned, re-moded or written.
fn listing(dir: &Path) -> BTreeMap<String, (u32, u32, u64, i64, i64)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (m.mode(), m.uid(), m.len(), m.mtime(), m.mtime_nsec()),
            )
        })
        .collect()
}

/// Runs `args` on `path` and asserts that the directory and the file's bytes did not change.
fn unchanged(path: &Path, args: &[&str]) -> Output {
    let dir = path.parent().unwrap();
    let (before, bytes) = (listing(dir), fs::read(path).unwrap());
    let out = cli(path, args);
    assert_eq!(
        listing(dir),
        before,
        "{args:?} changed the directory: {}",
        stderr(&out)
    );
    assert!(
        fs::read(path).unwrap() == bytes,
        "{args:?} changed the file"
    );
    out
}

#[test]
fn refused_opens_and_read_only_commands_create_no_file() {
    let fx = Fixture::new();
    drop(fx.store());
    // A healthy store: the read commands leave the directory and the file as they found them.
    for args in [&["check"][..], &["check", "--json"], &["stats"], &["list"]] {
        let out = unchanged(&fx.path, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    // A file others can read, then one owned by another user: reported, nothing created.
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o644)).unwrap();
    for args in [&["check"][..], &["stats"], &["list"], &["sweep"]] {
        let out = unchanged(&fx.path, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
    }
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o600)).unwrap();
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(&fx.path, Some(65534), Some(65534)).unwrap();
        for args in [&["check"][..], &["stats"], &["list"], &["sweep"]] {
            let out = unchanged(&fx.path, args);
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            let text = stdout(&out) + &stderr(&out);
            assert!(text.contains("belongs to uid 65534"), "{args:?}: {text}");
        }
    }
}

#[test]
fn only_migrate_makes_an_empty_file_a_store() {
    let fx = Fixture::new();
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&fx.path)
        .unwrap();
    for cmd in ["stats", "list", "sweep"] {
        let out = unchanged(&fx.path, &[cmd]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = stderr(&out);
        assert!(
            err.contains("run `oauth-state-store migrate`"),
            "{cmd}: {err}"
        );
    }
    let json = unchanged(&fx.path, &["stats", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["error"], "migration_needed");
    assert_eq!(fs::metadata(&fx.path).unwrap().len(), 0);
    let out = cli(&fx.path, &["migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("created the store at schema version 1"),
        "{}",
        stdout(&out)
    );
    let stats = cli(&fx.path, &["stats", "--json"]);
    assert_eq!(stats.status.code(), Some(0), "{}", stderr(&stats));
}

#[test]
fn another_applications_database_is_refused_by_every_command_unchanged() {
    // Tables of the store's own names, at any user_version, in either journal mode.
    for wal in [false, true] {
        for version in [0, 1, 3, 6, 7, 99] {
            let fx = Fixture::new();
            let c = rusqlite::Connection::open(&fx.path).unwrap();
            if wal {
                c.pragma_update(None, "journal_mode", "WAL").unwrap();
            }
            c.execute_batch(
                "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL); \
                 CREATE TABLE flows(id INTEGER PRIMARY KEY, name TEXT, steps TEXT); \
                 INSERT INTO flows (name) VALUES ('theirs');",
            )
            .unwrap();
            c.pragma_update(None, "user_version", version).unwrap();
            drop(c);
            fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o600)).unwrap();
            for cmd in [
                &["check"][..],
                &["stats"],
                &["list"],
                &["sweep", "--dry-run"],
                &["migrate"],
            ] {
                let out = unchanged(&fx.path, cmd);
                let err = stderr(&out);
                let case = format!("{cmd:?} on user_version {version}, wal {wal}");
                assert_eq!(out.status.code(), Some(1), "{case}: {err}");
                assert!(
                    err.contains("not an oauth-state-store database"),
                    "{case}: {err}"
                );
                assert_eq!(err.lines().count(), 1, "{case}: {err}");
            }
            let out = unchanged(&fx.path, &["stats", "--json"]);
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(doc["error"], "not_a_store");
        }
    }
    // A text file too.
    let fx = Fixture::new();
    fs::write(
        &fx.path,
        b"# a configuration file\nkey = value\n".repeat(50),
    )
    .unwrap();
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o600)).unwrap();
    for cmd in ["check", "stats", "list", "migrate"] {
        let out = unchanged(&fx.path, &[cmd]);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("not an SQLite database"),
            "{cmd}: {}",
            stderr(&out)
        );
    }
}

/// The tool that runs a command as another uid, when there is one and we may use it.
fn as_other_user() -> Option<Command> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: running as another user needs root (CI runs as root)");
        return None;
    }
    for tool in ["/usr/bin/setpriv", "/bin/setpriv"] {
        if Path::new(tool).exists() {
            let mut cmd = Command::new(tool);
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
            return Some(cmd);
        }
    }
    for tool in ["/usr/sbin/runuser", "/sbin/runuser"] {
        if Path::new(tool).exists() {
            let mut cmd = Command::new(tool);
            cmd.args(["-u", "nobody", "--"]);
            return Some(cmd);
        }
    }
    eprintln!("SKIPPED: neither setpriv nor runuser exists to run as another user");
    None
}

#[test]
fn permission_denied_is_not_does_not_exist() {
    let fx = Fixture::new();
    drop(fx.store());
    // A private directory of root's: another user cannot even see what is in it.
    fs::set_permissions(fx.dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let nested = fx.dir.path().join("sub/flows.db");
    fs::create_dir(nested.parent().unwrap()).unwrap();
    drop(fx.options().open(&nested).unwrap());
    for path in [&fx.path, &nested] {
        let Some(mut cmd) = as_other_user() else {
            return;
        };
        let before = fs::read(path).unwrap();
        let out = cmd
            .arg(env!("CARGO_BIN_EXE_oauth-state-store"))
            .args(["sweep", "--db"])
            .arg(path)
            .env_remove("OAUTH_STATE_DB")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{}: {err}", path.display());
        assert!(err.contains("permission denied"), "{err}");
        assert!(err.contains("belongs to uid 0"), "{err}");
        assert!(
            err.contains("run the command as the user who owns it"),
            "{err}"
        );
        assert!(!err.contains("does not exist"), "{err}");
        assert!(!err.contains("migrate"), "{err}");
        assert!(fs::read(path).unwrap() == before);
    }
}

/// The names and modes in `dir`.
fn names(dir: &Path) -> BTreeMap<String, u32> {
    listing(dir)
        .into_iter()
        .map(|(n, (mode, ..))| (n, mode))
        .collect()
}

#[test]
fn read_commands_on_a_healthy_store_leave_no_wal_or_shm_behind() {
    let fx = Fixture::new();
    let store = fx.store();
    store
        .begin(oauth_state_store::BeginRequest::new(
            "https://a.example.com",
        ))
        .unwrap();
    // Dropping the last handle closes its connections on this thread, at once.
    drop(store);
    let dir = fx.dir.path();
    let before = names(dir);
    assert_eq!(before.len(), 1, "{before:?}");
    // Each read command, on success and on an error found after the store was open.
    let runs: [(&[&str], i32); 5] = [
        (&["stats"], 0),
        (&["list"], 0),
        (&["sweep"], 0),
        (&["stats", "--json"], 0),
        (&["list", "--server", "\u{7}"], 2),
    ];
    for (args, status) in runs {
        for round in 0..20 {
            let out = cli(&fx.path, args);
            assert_eq!(
                out.status.code(),
                Some(status),
                "{args:?}: {}",
                stderr(&out)
            );
            assert_eq!(names(dir), before, "{args:?}, round {round}");
        }
    }
}

#[test]
fn a_file_its_owner_cannot_write_is_refused_before_anything_is_created() {
    let fx = Fixture::new();
    // The owner is uid 65534, who must reach its directory through the fixture's.
    fs::set_permissions(fx.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = fx.dir.path().join("nobody");
    fs::create_dir(&dir).unwrap();
    let path = dir.join("flows.db");
    drop(fx.options().open(&path).unwrap());
    if as_other_user().is_none() {
        return;
    }
    for p in [&dir, &path] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    for cmd in ["stats", "list", "sweep", "migrate", "check"] {
        let before = (listing(&dir), fs::read(&path).unwrap());
        let out = as_other_user()
            .unwrap()
            .arg(env!("CARGO_BIN_EXE_oauth-state-store"))
            .args([cmd, "--db"])
            .arg(&path)
            .env_remove("OAUTH_STATE_DB")
            .output()
            .unwrap();
        let text = stdout(&out) + &stderr(&out);
        assert_eq!(
            (listing(&dir), fs::read(&path).unwrap()),
            before,
            "{cmd} changed the directory or the file: {text}"
        );
        let expected = if cmd == "check" { 1 } else { 3 };
        assert_eq!(out.status.code(), Some(expected), "{cmd}: {text}");
        assert!(text.contains("read-only (mode 0400)"), "{cmd}: {text}");
        assert!(text.contains("run `chmod 600` on it"), "{cmd}: {text}");
    }
}

/// After an application was killed and left a `-wal`, the commands that only look read it
/// where it is: the database file and the `-wal` keep their bytes, and `stats` reports the
/// `-wal`'s real size.
#[test]
fn read_commands_leave_a_killed_applications_wal_where_it_is() {
    let fx = Fixture::new();
    drop(fx.store());
    crate::common::killed_writer("open_path::child_writer", &fx.path, 20);
    let wal = fs::metadata(format!("{}-wal", fx.path.display()))
        .unwrap()
        .len();
    let before = crate::common::file_state(&fx.path);
    for args in [
        &["stats", "--json"][..],
        &["stats"],
        &["list"],
        &["sweep", "--dry-run"],
        &["check"],
    ] {
        let out = cli(&fx.path, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(
            crate::common::file_state(&fx.path),
            before,
            "{args:?} changed the file or its -wal"
        );
        if args == ["stats", "--json"] {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(doc["wal_bytes"], wal, "{doc}");
            assert_eq!(doc["counts"]["pending"], 20, "{doc}");
        }
    }
}

#[test]
#[ignore = "child process of killed_writer"]
fn child_writer() {
    crate::common::writer_child();
}
