//! `stats`, `list`, `check` and `migrate` on populated, damaged and unwritable files.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use oauth_state_store::{BeginRequest, Status, SCHEMA_VERSION};
use serde_json::Value;

use super::{cli, json, json_error, populate, stderr, stdout, Populator, SERVERS};
use crate::common::Fixture;

#[test]
fn stats_json_matches_the_database() {
    let fx = Fixture::new();
    let (p, _) = populate(&fx);
    let stats = p.store.stats().unwrap();
    drop(p);
    let doc = json(&cli(&fx.path, &["stats", "--json"]));
    for status in Status::ALL {
        assert_eq!(
            doc["counts"][status.as_str()].as_u64(),
            Some(stats.counts.get(status))
        );
    }
    assert_eq!(doc["total"], 25);
    assert_eq!(doc["expired"], 15);
    assert_eq!(doc["schema_version"], SCHEMA_VERSION);
    assert_eq!(doc["journal_mode"], "wal");
    assert_eq!(doc["oldest_expiry"].as_i64(), stats.oldest_expiry);
    assert!(doc["file_bytes"].as_u64().unwrap() > 0);
    assert!(!doc["sqlite_version"].as_str().unwrap().is_empty());
    let human = stdout(&cli(&fx.path, &["stats"]));
    assert!(human.contains("ago") && human.contains("in "), "{human}");
}

#[test]
fn list_prints_fingerprints_and_never_a_secret() {
    let fx = Fixture::new();
    let (p, _) = populate(&fx);
    let Populator {
        store,
        secrets,
        state_keys: keys,
        ..
    } = p;
    drop(store);
    let secrets = secrets.0;
    assert_eq!(secrets.len(), 52);
    let all = cli(&fx.path, &["list"]);
    let as_json = cli(&fx.path, &["list", "--json"]);
    for out in [&all, &as_json] {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
        let text = format!("{}{}", stdout(out), stderr(out));
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "list printed a secret");
        }
        for key in &keys {
            let hex: String = key[..6].iter().map(|b| format!("{b:02x}")).collect();
            assert!(text.contains(&hex), "fingerprint {hex} missing");
        }
    }
    let lines = stdout(&all).lines().count();
    assert_eq!(lines, 26, "a header and one line a flow");
    let doc = json(&as_json);
    assert_eq!(doc["flows"].as_array().unwrap().len(), 25);

    let filtered = cli(
        &fx.path,
        &["list", "--server", SERVERS[1], "--status", "pending"],
    );
    let body: Vec<String> = stdout(&filtered)
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    assert!(!body.is_empty());
    assert!(
        body.iter()
            .all(|l| l.contains(SERVERS[1]) && l.contains("pending")),
        "{body:?}"
    );
    let bad = cli(&fx.path, &["list", "--status", "done"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn list_marks_expired_rows_and_refuses_limit_zero() {
    let fx = Fixture::new();
    let (p, expired) = populate(&fx);
    drop(p);
    let text = stdout(&cli(&fx.path, &["list"]));
    let marked = text.lines().filter(|l| l.contains("expired ")).count() as u64;
    assert_eq!(marked, expired.values().sum::<u64>(), "{text}");
    let doc = json(&cli(&fx.path, &["list", "--json"]));
    let flagged = doc["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["expired"] == true)
        .count() as u64;
    assert_eq!(flagged, marked);
    let zero = cli(&fx.path, &["list", "--limit", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(stderr(&zero).contains("at least 1"), "{}", stderr(&zero));
    assert_eq!(
        stdout(&cli(&fx.path, &["list", "--limit", "1"]))
            .lines()
            .count(),
        2
    );
}

/// Overwrites `len` bytes at `offset` of a copy of the database.
fn damaged_copy(fx: &Fixture, name: &str, offset: u64, len: usize) -> std::path::PathBuf {
    let copy = fx.dir.path().join(name);
    fs::copy(&fx.path, &copy).unwrap();
    let mut f = fs::OpenOptions::new().write(true).open(&copy).unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset)).unwrap();
    f.write_all(&vec![0xA5; len]).unwrap();
    copy
}

#[test]
fn check_passes_a_healthy_file_and_fails_damaged_copies() {
    let fx = Fixture::new();
    let (p, _) = populate(&fx);
    drop(p);
    let healthy = cli(&fx.path, &["check"]);
    assert_eq!(
        healthy.status.code(),
        Some(0),
        "{}{}",
        stdout(&healthy),
        stderr(&healthy)
    );
    assert!(stdout(&healthy).starts_with("ok"));
    let len = fs::metadata(&fx.path).unwrap().len();
    assert!(
        len > 3 * 4096,
        "the file has pages beyond the first ({len} bytes)"
    );

    let page = damaged_copy(&fx, "page.db", 4096, 4096);
    // The magic string overwritten; the application id at offset 68 still says it is a store.
    let header = damaged_copy(&fx, "header.db", 0, 16);
    for copy in [&page, &header] {
        let out = cli(copy, &["check"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stdout(&out).contains("problem (corrupt)"),
            "{}",
            stdout(&out)
        );
        assert!(stdout(&out).contains("to fix:"));
        assert!(!stderr(&out).contains("panicked"));
        let out = cli(copy, &["check", "--json"]);
        assert_eq!(out.status.code(), Some(1));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["problems"][0]["kind"], "corrupt");
    }
    let stats = cli(&header, &["stats"]);
    assert_eq!(stats.status.code(), Some(1));
    assert!(stderr(&stats).contains("corrupt"), "{}", stderr(&stats));
    assert_eq!(stderr(&stats).lines().count(), 1);
    // A header overwritten whole no longer says whose file it is.
    let whole = damaged_copy(&fx, "whole-header.db", 0, 100);
    let out = cli(&whole, &["check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"], "not_a_store");
}

#[test]
fn check_prints_one_line_a_problem_and_the_full_findings_in_json() {
    let fx = Fixture::new();
    let (p, _) = populate(&fx);
    drop(p);
    let damaged = damaged_copy(&fx, "page.db", 4096, 3 * 4096);
    let out = cli(&damaged, &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.lines().all(|l| l.starts_with("problem (")), "{text}");
    assert_eq!(text.matches("problem (corrupt)").count(), 1, "{text}");
    let doc: Value = serde_json::from_slice(&cli(&damaged, &["check", "--json"]).stdout).unwrap();
    let corrupt: Vec<&Value> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "corrupt")
        .collect();
    assert_eq!(corrupt.len(), 1, "{doc}");
    let details = corrupt[0]["details"].as_array().expect("details");
    assert!(!details.is_empty(), "{doc}");
    let first = details[0].as_str().unwrap();
    assert!(
        text.contains(first),
        "the line quotes the first finding: {text}"
    );
    if details.len() > 3 {
        assert!(
            text.contains(&format!("and {} more", details.len() - 3)),
            "{text}"
        );
    }
}

#[test]
fn check_reports_a_file_that_applications_cannot_write() {
    // The mode bits are what is checked: root's own bypass does not hide it.
    let fx = Fixture::new();
    drop(fx.store());
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o400)).unwrap();
    let out = cli(&fx.path, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("problem (permissions)"), "{text}");
    assert!(text.contains("read-only (mode 0400)"), "{text}");
    assert!(text.contains("chmod 600"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(cli(&fx.path, &["check"]).status.code(), Some(0));
}

#[test]
fn migrate_reports_in_json_and_refuses_a_damaged_file_unchanged() {
    let fx = Fixture::new();
    let created = json(&cli(&fx.path, &["migrate", "--json"]));
    assert_eq!(
        (
            &created["from"],
            &created["to"],
            &created["created"],
            &created["migrated"]
        ),
        (
            &Value::from(0),
            &Value::from(SCHEMA_VERSION),
            &Value::Bool(true),
            &Value::Bool(true)
        )
    );
    let again = json(&cli(&fx.path, &["migrate", "--json"]));
    assert_eq!(
        (&again["created"], &again["migrated"]),
        (&Value::Bool(false), &Value::Bool(false))
    );

    let (p, _) = populate(&fx);
    drop(p);
    let damaged = damaged_copy(&fx, "page.db", 4096, 4096);
    let before = fs::read(&damaged).unwrap();
    let out = cli(&damaged, &["migrate"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("not migrated") && err.contains("damaged"),
        "{err}"
    );
    assert_eq!(
        fs::read(&damaged).unwrap(),
        before,
        "migrate changed a damaged file"
    );
    let out = cli(&damaged, &["migrate", "--json"]);
    assert_eq!(json_error(&out)["error"], "corrupt");
}

#[test]
fn list_says_why_a_tombstone_ended_without_a_login() {
    let fx = Fixture::new();
    let store = Populator::new(&fx).store;
    let begin = || store.begin(BeginRequest::new(SERVERS[0])).unwrap();
    let refused = begin();
    let state = refused.state().secret();
    store.reject(state, "access_denied", None).unwrap();
    assert!(store.consume(state).is_err());
    let mixed_up = begin();
    assert!(store
        .consume_for(mixed_up.state().secret(), SERVERS[1])
        .is_err());
    store.consume(begin().state().secret()).unwrap();
    drop(store);
    let text = stdout(&cli(&fx.path, &["list", "--status", "consumed"]));
    let statuses: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| {
            l.split("  ")
                .filter(|c| !c.is_empty())
                .nth(3)
                .unwrap()
                .trim()
        })
        .collect();
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "consumed",
            "consumed (refused)",
            "consumed (server mismatch)"
        ],
        "{text}"
    );
    let doc = json(&cli(&fx.path, &["list", "--status", "consumed", "--json"]));
    let mut ended: Vec<String> = doc["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["ended"].to_string())
        .collect();
    ended.sort_unstable();
    assert_eq!(
        ended,
        ["\"authorization_failed\"", "\"server_mismatch\"", "null"],
        "{doc}"
    );
}
