//! The PostgreSQL migrator across real processes: many hosts migrating one fresh database at
//! once, a migration while another process runs flows, and the cluster harness's skip rule.
//! Children are this test binary run again with one `#[ignore]`d test.

use std::process::{Command, Output, Stdio};

use super::*;

const URL_VAR: &str = "OSS_TEST_PG_URL";
const CHILD_MIGRATE: &str = "backend::postgres::migrate::tests::processes::child_migrates";
const CHILD_SKIP: &str = "backend::postgres::migrate::tests::processes::child_asks_for_a_cluster";
const CHILD_FLOWS: &str = "backend::postgres::migrate::tests::processes::child_runs_flows";

fn spawn(test: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args([
        test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child")
}

/// What a child printed after `prefix`, one item a line (the test runner may have printed the
/// test's name earlier on the same line).
fn stdout_lines(out: &Output, prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.find(prefix).map(|i| l[i + prefix.len()..].to_owned()))
        .collect()
}

#[test]
fn many_processes_migrating_a_fresh_database_make_one_schema() {
    const PROCESSES: usize = 8;
    let Some(cluster) = pg::cluster("many_processes_migrate") else {
        return;
    };
    let url = cluster.fresh_database("many_migrate");
    // Everyone starts at the same instant, a moment after the last child is spawned.
    let go = (SystemClock.now_ms() + 1500).to_string();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| spawn(CHILD_MIGRATE, &[(URL_VAR, &url), ("OSS_TEST_GO_MS", &go)]))
        .collect();
    let mut froms = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("child output");
        assert!(
            out.status.success(),
            "a migrating process failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = stdout_lines(&out, "MIGRATED ");
        assert_eq!(lines.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
        froms.push(lines[0].clone());
    }
    froms.sort();
    let mut expected = vec![format!("{SCHEMA_VERSION} -> {SCHEMA_VERSION}"); PROCESSES - 1];
    expected.insert(0, format!("0 -> {SCHEMA_VERSION}"));
    assert_eq!(
        froms, expected,
        "exactly one process applies the migrations"
    );

    let mut c = client(&url);
    let Some((mut declared, _)) = fresh("many_migrate_declared") else {
        return;
    };
    declared
        .batch_execute(include_str!("../../../schema_postgres.sql"))
        .unwrap();
    assert_eq!(catalog(&mut c), catalog(&mut declared), "one schema");
    let (recorded, ids): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM oauth_state_store_migrations), \
                 (SELECT count(*) FROM meta WHERE key = 'store_id')",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((recorded, ids), (1, 1));
}

/// Child of `many_processes_migrating_a_fresh_database_make_one_schema`: waits for the common
/// start instant, migrates, prints `MIGRATED from -> to`.
#[test]
#[ignore = "child process of many_processes_migrating_a_fresh_database_make_one_schema"]
fn child_migrates() {
    let (Ok(url), Ok(go)) = (std::env::var(URL_VAR), std::env::var("OSS_TEST_GO_MS")) else {
        println!("child_migrates runs as a child of its parent test only");
        return;
    };
    let go: i64 = go.parse().unwrap();
    let wait = go - SystemClock.now_ms();
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
    let mut c = client(&url);
    let report = migrate(&mut c, &CURRENT).expect("migrate");
    println!("MIGRATED {} -> {}", report.from, report.to);
}

#[test]
fn missing_binaries_skip_the_tests_unless_they_are_required() {
    let skip = spawn(
        CHILD_SKIP,
        &[(pg::BIN_VAR, "/nonexistent"), (pg::REQUIRE_VAR, "0")],
    )
    .wait_with_output()
    .unwrap();
    assert!(skip.status.success(), "{skip:?}");
    assert_eq!(
        stdout_lines(&skip, "SKIPPED: ").len(),
        1,
        "{}",
        String::from_utf8_lossy(&skip.stdout)
    );
    let required = spawn(
        CHILD_SKIP,
        &[(pg::BIN_VAR, "/nonexistent"), (pg::REQUIRE_VAR, "1")],
    )
    .wait_with_output()
    .unwrap();
    assert!(
        !required.status.success(),
        "a required PostgreSQL was skipped"
    );
    assert!(String::from_utf8_lossy(&required.stderr).contains(pg::REQUIRE_VAR));
}

/// Child of `missing_binaries_skip_the_tests_unless_they_are_required`.
#[test]
#[ignore = "child process of missing_binaries_skip_the_tests_unless_they_are_required"]
fn child_asks_for_a_cluster() {
    if let Some(c) = pg::cluster("child_asks_for_a_cluster") {
        println!("STARTED on port {}", c.port());
    }
}

/// A version-1 database with pending flows is migrated to the test-only version 2 by a store
/// opened with it, while a child process of version 1 runs flows on it: the child sees no
/// error, goes on after the migration, and every flow left pending, before or during it, is
/// consumed afterwards.
#[test]
fn version_2_migrates_a_version_1_database_while_another_process_runs_flows() {
    let Some(cluster) = pg::cluster("version_2_migrates") else {
        return;
    };
    let url = cluster.fresh_database("version_2_migrates");
    let v1 = Store::open(&url).unwrap();
    assert_eq!(v1.migration().to, 1);
    let mut pending: Vec<String> = (0..20)
        .map(|_| {
            let flow = v1.begin(BeginRequest::new("srv")).unwrap();
            flow.state().secret().to_owned()
        })
        .collect();
    drop(v1);
    // 20k other rows, so that the migration's index holds its lock a while.
    client(&url)
        .batch_execute(
            "INSERT INTO flows (state_key, code_challenge, code_verifier, server_id, status, \
             created_at, expires_at) SELECT sha256(i::text::bytea), rpad(i::text, 43, 'x'), \
             'v', 'other', 'pending', 1, 10000000000000 FROM generate_series(1, 20000) AS i",
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mark = |name: &str| dir.path().join(name);
    let mut child = spawn(
        CHILD_FLOWS,
        &[
            (URL_VAR, &url),
            ("OSS_TEST_MARKS", dir.path().to_str().unwrap()),
        ],
    );
    let wait_for = |name: &str, child: &mut std::process::Child| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !mark(name).exists() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the child exited before {name}"
            );
            assert!(std::time::Instant::now() < deadline, "no {name}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for("ready", &mut child);
    let options = StoreOptions {
        test_version_2: true,
        ..StoreOptions::default()
    };
    let v2 = options.open(&url).unwrap();
    assert_eq!(v2.migration(), MigrationReport { from: 1, to: 2 });
    wait_for("saw-2", &mut child);
    std::fs::write(mark("stop"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout_lines(&out, "FLOWS ");
    let counts: Vec<u64> = line[0]
        .split_whitespace()
        .map(|w| w.split_once('=').unwrap().1.parse().unwrap())
        .collect();
    let [at_1, at_2, errors] = counts[..] else {
        panic!("{line:?}")
    };
    assert_eq!(errors, 0, "{stdout}");
    assert!(at_1 > 0 && at_2 > 0, "{line:?}");
    pending.extend(stdout_lines(&out, "PENDING "));
    assert!(pending.len() > 20, "the child left no flow pending");
    for state in &pending {
        v2.consume(state).unwrap();
    }
    let mut c = client(&url);
    assert_eq!(schema_version(&mut c).unwrap(), 2);
    assert!(matches!(
        Store::open(&url),
        Err(Error::DatabaseTooNew {
            found: 2,
            supported: 1
        })
    ));
}

/// Child of `version_2_migrates_a_version_1_database_while_another_process_runs_flows`: a
/// version-1 store runs flows (one in eight left pending, printed) until told to stop, and
/// counts its errors and its flows at each version.
#[test]
#[ignore = "child process of version_2_migrates_a_version_1_database_while_another_process_runs_flows"]
fn child_runs_flows() {
    let (Ok(url), Ok(marks)) = (std::env::var(URL_VAR), std::env::var("OSS_TEST_MARKS")) else {
        println!("child_runs_flows runs as a child of its parent test only");
        return;
    };
    let mark = |name: &str| std::path::Path::new(&marks).join(name);
    let store = Store::open(&url).unwrap();
    let mut version_client = client(&url);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (mut at, mut errors) = ([0u64; 2], 0u64);
    for i in 0u64.. {
        if mark("stop").exists() || std::time::Instant::now() > deadline {
            break;
        }
        let version = schema_version(&mut version_client).unwrap_or(0);
        let done = store.begin(BeginRequest::new("srv")).and_then(|flow| {
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
            std::fs::write(mark("ready"), "").unwrap();
        }
        if at[1] == 50 {
            std::fs::write(mark("saw-2"), "").unwrap();
        }
    }
    println!("FLOWS at_1={} at_2={} errors={errors}", at[0], at[1]);
}
