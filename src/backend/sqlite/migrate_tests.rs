//! The schema of a new file, telling files apart, and the migration machinery, proven by a
//! test-only version 2 applied to a version-1 file while another process runs flows on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;
use crate::{BeginRequest, Store, StoreOptions};

/// The test-only version 2: a column and an index, as a next version might add them. Never
/// shipped: only `StoreOptions::test_version_2`, which exists in the crate's tests alone,
/// opens a file with it.
pub(crate) const FIXTURE_V2: &str = "ALTER TABLE flows ADD COLUMN label TEXT \
     CHECK (label IS NULL OR length(label) <= 64); \
     CREATE INDEX flows_by_label ON flows (label, created_at);";

pub(crate) const TEST_VERSION_2: Plan = Plan {
    version: 2,
    schema: &[SCHEMA, FIXTURE_V2],
    migrations: &[Migration {
        version: 2,
        name: "test_label",
        sql: FIXTURE_V2,
    }],
};

fn schema_of(conn: &Connection) -> Vec<(String, String, String)> {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, sql FROM sqlite_schema \
             WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        )
        .unwrap();
    stmt.query_map([], |r| {
        let sql: String = r.get(2)?;
        Ok((
            r.get(0)?,
            r.get(1)?,
            sql.split_whitespace().collect::<Vec<_>>().join(" "),
        ))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

fn declared(plan: &Plan) -> Vec<(String, String, String)> {
    let declared = Connection::open_in_memory().unwrap();
    for sql in plan.schema {
        declared.execute_batch(sql).unwrap();
    }
    schema_of(&declared)
}

#[test]
fn a_new_file_gets_schema_sql_at_version_1() {
    let mut new = Connection::open_in_memory().unwrap();
    let report = migrate(&mut new, &CURRENT).unwrap();
    assert_eq!((report.from, report.to), (0, SCHEMA_VERSION));
    assert_eq!(SCHEMA_VERSION, 1);
    assert!(CURRENT.migrations.is_empty());
    let schema = schema_of(&new);
    assert_eq!(schema, declared(&CURRENT));
    let names: Vec<&str> = schema.iter().map(|(_, n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"flows") && names.contains(&"meta"),
        "{names:?}"
    );
    assert!(!schema.iter().any(|(kind, _, _)| kind == "trigger"));
    assert_eq!(user_version(&new).unwrap(), SCHEMA_VERSION);
    assert!(store_id(&new).is_ok());
}

/// The plans' own rule: a new file at a plan's version has what an older file migrated to it
/// has.
#[test]
fn the_test_version_2_makes_the_same_schema_whether_new_or_migrated() {
    let mut migrated = Connection::open_in_memory().unwrap();
    migrate(&mut migrated, &CURRENT).unwrap();
    let report = migrate(&mut migrated, &TEST_VERSION_2).unwrap();
    assert_eq!((report.from, report.to), (1, 2));
    assert_eq!(schema_of(&migrated), declared(&TEST_VERSION_2));
    assert_eq!(user_version(&migrated).unwrap(), 2);
    let mut new = Connection::open_in_memory().unwrap();
    assert_eq!(migrate(&mut new, &TEST_VERSION_2).unwrap().from, 0);
    assert_eq!(schema_of(&new), schema_of(&migrated));
    // A version-1 program refuses the file now.
    assert!(matches!(
        migrate(&mut migrated, &CURRENT),
        Err(MigrateError::TooNew(2))
    ));
}

#[test]
fn migrating_twice_is_a_no_op_and_keeps_the_store_id() {
    let mut c = Connection::open_in_memory().unwrap();
    let first = migrate(&mut c, &CURRENT).unwrap();
    assert_eq!((first.from, first.to), (0, SCHEMA_VERSION));
    let id = store_id(&c).unwrap();
    let second = migrate(&mut c, &CURRENT).unwrap();
    assert_eq!((second.from, second.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    assert_eq!(store_id(&c).unwrap(), id);
}

/// The look at the header is taken without a lock: inside the write transaction, a file
/// that is not a new one and lacks the store's application id is refused, unchanged.
#[test]
fn the_transaction_that_creates_a_store_refuses_a_file_with_a_schema_of_its_own() {
    for setup in [
        "CREATE TABLE users (id INTEGER); CREATE TABLE meta (k, v);",
        "PRAGMA user_version = 3;",
    ] {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(setup).unwrap();
        match migrate(&mut c, &CURRENT) {
            Err(MigrateError::Foreign(what)) => {
                assert!(what.contains("probably another application's"), "{what}")
            }
            other => panic!("{setup}: expected Foreign, got {other:?}"),
        }
        let objects: i64 = c.query_row(COUNT_SCHEMA_OBJECTS, [], |r| r.get(0)).unwrap();
        assert!(objects == 2 || user_version(&c).unwrap() == 3, "{setup}");
        let id: i32 = c
            .query_row(SELECT_APPLICATION_ID, [], |r| r.get(0))
            .unwrap();
        assert_eq!(id, 0);
    }
    // A store's own id with no version is damage.
    let mut c = Connection::open_in_memory().unwrap();
    c.pragma_update(None, "application_id", APPLICATION_ID as i32)
        .unwrap();
    assert!(matches!(
        migrate(&mut c, &CURRENT),
        Err(MigrateError::Damaged(_))
    ));
    // A new file gets the id with its schema.
    let mut new = Connection::open_in_memory().unwrap();
    migrate(&mut new, &CURRENT).unwrap();
    let id: i32 = new
        .query_row(SELECT_APPLICATION_ID, [], |r| r.get(0))
        .unwrap();
    assert_eq!(id as u32, APPLICATION_ID);
}

#[test]
fn a_newer_file_is_refused() {
    let mut c = Connection::open_in_memory().unwrap();
    c.pragma_update(None, "application_id", APPLICATION_ID as i32)
        .unwrap();
    c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    match migrate(&mut c, &CURRENT) {
        Err(MigrateError::TooNew(v)) => assert_eq!(v, SCHEMA_VERSION + 1),
        other => panic!("expected TooNew, got {other:?}"),
    }
}

const CHILD: &str = "backend::sqlite::migrate::tests::child_runs_flows";
const DB_VAR: &str = "OSS_TEST_MIGRATE_DB";

/// `dir/name` once it exists, or a panic after 60 s.
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn side(path: &Path, name: &str) -> PathBuf {
    path.with_file_name(name)
}

/// A version-1 file with pending flows and 20k other rows (so that the migration's index
/// holds the write lock a while) is migrated to the test-only version 2 by a store opened
/// with it, while a child process of version 1 runs flows on the file: the child sees no
/// error, goes on after the migration, and every flow left pending, before or during it, is
/// consumed afterwards.
#[test]
fn version_2_migrates_a_version_1_file_while_another_process_runs_flows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flows.db");
    let v1 = Store::open(&path).unwrap();
    assert_eq!(v1.migration().to, 1);
    let mut pending: Vec<String> = (0..20)
        .map(|_| {
            let flow = v1.begin(BeginRequest::new("srv")).unwrap();
            flow.state().secret().to_owned()
        })
        .collect();
    drop(v1);
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             INSERT INTO flows (id, state_key, code_challenge, code_verifier, server_id, \
             status, created_at, expires_at) SELECT 1000000 * 1048576 + i, \
             randomblob(32), substr(hex(randomblob(32)), 1, 43), 'v', 'other', 'pending', \
             1, 1000000 FROM n",
        )
        .unwrap();
    }
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            CHILD,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_VAR, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&side(&path, "ready"));
    let options = StoreOptions {
        test_version_2: true,
        ..StoreOptions::default()
    };
    let v2 = options.open(&path).unwrap();
    assert_eq!(v2.migration(), MigrationReport { from: 1, to: 2 });
    // The child runs on the migrated file a while, then stops.
    wait_for(&side(&path, "saw-2"));
    std::fs::write(side(&path, "stop"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("FLOWS ").map(|(_, rest)| rest.to_owned()))
        .unwrap_or_else(|| panic!("{stdout}"));
    let counts: Vec<u64> = line
        .split_whitespace()
        .map(|w| w.split_once('=').unwrap().1.parse().unwrap())
        .collect();
    let [at_1, at_2, errors] = counts[..] else {
        panic!("{line}")
    };
    assert_eq!(errors, 0, "{stdout}");
    assert!(at_1 > 0 && at_2 > 0, "{line}");
    pending.extend(
        stdout
            .lines()
            .filter_map(|l| l.split_once("PENDING ").map(|(_, s)| s.to_owned())),
    );
    assert!(pending.len() > 20, "the child left no flow pending");
    for state in &pending {
        v2.consume(state).unwrap();
    }
    // The file is at version 2, which a version-1 store refuses.
    let c = Connection::open(&path).unwrap();
    assert_eq!(user_version(&c).unwrap(), 2);
    assert_eq!(schema_of(&c), declared(&TEST_VERSION_2));
    assert!(matches!(
        Store::open(&path),
        Err(crate::Error::DatabaseTooNew {
            found: 2,
            supported: 1
        })
    ));
}

/// Child of `version_2_migrates_a_version_1_file_while_another_process_runs_flows`: a
/// version-1 store runs flows (one in eight left pending, printed) until told to stop, and
/// counts its errors and its flows at each version.
#[test]
#[ignore = "child process of version_2_migrates_a_version_1_file_while_another_process_runs_flows"]
fn child_runs_flows() {
    let Some(path) = std::env::var_os(DB_VAR).map(PathBuf::from) else {
        println!("child_runs_flows runs as a child of its parent test only");
        return;
    };
    let store = Store::open(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut at, mut errors) = ([0u64; 2], 0u64);
    for i in 0u64.. {
        if side(&path, "stop").exists() || Instant::now() > deadline {
            break;
        }
        let version = store
            .file_info()
            .ok()
            .flatten()
            .map_or(0, |f| f.schema_version);
        let flow = store.begin(BeginRequest::new("srv"));
        let done = flow.and_then(|flow| {
            if i % 8 == 0 {
                println!("PENDING {}", flow.state().secret());
                Ok(())
            } else {
                store.consume(flow.state().secret()).map(drop)
            }
        });
        match done {
            Ok(()) if version == 2 => at[1] += 1,
            Ok(()) => at[0] += 1,
            Err(e) => {
                eprintln!("child: {e}");
                errors += 1;
            }
        }
        if i == 10 {
            std::fs::write(side(&path, "ready"), "").unwrap();
        }
        if at[1] == 50 {
            std::fs::write(side(&path, "saw-2"), "").unwrap();
        }
    }
    println!("FLOWS at_1={} at_2={} errors={errors}", at[0], at[1]);
}
