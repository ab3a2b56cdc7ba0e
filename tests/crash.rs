//! A writer process killed with SIGKILL at random moments: the file stays intact, every write
//! it reported as committed is there, and no write is half applied.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use common::{count, spawn_child, Fixture};
use oauth_state_store::{BeginRequest, CodeVerifier, Store};
use rusqlite::{Connection, OptionalExtension};

/// Child: loops forever over begin, save + promote, and consume on the file named by `OSS_DB`,
/// printing `<OP> <challenge>` after each commit returns (flushed), until it is killed.
#[test]
#[ignore = "run as a child process by the tests in this file"]
fn child_writer() {
    let path = std::env::var("OSS_DB").expect("OSS_DB");
    let store = Store::open(&path).unwrap();
    let mut out = std::io::stdout().lock();
    let mut say = |op: &str, challenge: &str| {
        writeln!(out, "{op} {challenge}").unwrap();
        out.flush().unwrap();
    };
    loop {
        let begun = store.begin(BeginRequest::new("srv")).unwrap();
        say("BEGUN", begun.code_challenge().as_str());

        let verifier = CodeVerifier::generate();
        let challenge = store
            .save_code_verifier("srv", None, verifier.secret())
            .unwrap();
        say("SAVED", challenge.as_str());
        let state = oauth_state_store::State::generate();
        let url = format!(
            "https://as.example/authorize?state={}&code_challenge={}&code_challenge_method=S256",
            state.secret(),
            challenge
        );
        store.promote("srv", None, &url).unwrap();
        say("PROMOTED", challenge.as_str());

        let got = store.consume(begun.state().secret()).unwrap();
        assert_eq!(&got.verifier.challenge(), begun.code_challenge());
        say("CONSUMED", begun.code_challenge().as_str());
        if rand::random_bool(0.5) {
            store.consume(state.secret()).unwrap();
            say("CONSUMED", challenge.as_str());
        }
    }
}

/// A row as the crash checker sees it.
#[derive(Debug)]
struct RawRow {
    status: String,
    has_key: bool,
    has_verifier: bool,
    consumed_at: Option<i64>,
}

fn row(conn: &Connection, challenge: &str) -> Option<RawRow> {
    conn.query_row(
        "SELECT status, state_key IS NOT NULL, code_verifier IS NOT NULL, consumed_at \
         FROM flows WHERE code_challenge = ?1",
        [challenge],
        |r| {
            Ok(RawRow {
                status: r.get(0)?,
                has_key: r.get(1)?,
                has_verifier: r.get(2)?,
                consumed_at: r.get(3)?,
            })
        },
    )
    .optional()
    .unwrap()
}

/// Case 4: a writer killed with SIGKILL at random moments, again and again on one file.
#[test]
fn a_writer_killed_at_random_moments_loses_nothing_it_reported_and_half_applies_nothing() {
    let kills = count(20, 50);
    let fx = Fixture::new();
    let db = fx.path.to_str().unwrap();
    // The last operation each challenge reached, as reported by the writers.
    let mut reported: HashMap<String, &'static str> = HashMap::new();
    let mut total_lines = 0;
    for kill in 0..kills {
        let mut child = spawn_child("child_writer", &[("OSS_DB", db)]);
        // Sometimes during start-up or the first open, mostly in the middle of the loop.
        let delay = rand::random_range(5..250);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "kill {kill}: the writer exited by itself"
        );
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        // Only whole lines count: a line cut by the kill was not reported.
        let whole = out
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(&out[..0], |i| &out[..=i]);
        for line in String::from_utf8_lossy(whole).lines() {
            let Some((op, challenge)) = line.split_once(' ') else {
                continue;
            };
            let op = match op {
                "BEGUN" => "BEGUN",
                "SAVED" => "SAVED",
                "PROMOTED" => "PROMOTED",
                "CONSUMED" => "CONSUMED",
                _ => continue,
            };
            total_lines += 1;
            reported.insert(challenge.to_owned(), op);
        }
    }
    assert!(total_lines > 0, "no writer ever committed anything");
    eprintln!("{total_lines} operations reported over {kills} kills");

    let conn = Connection::open(&fx.path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");

    for (challenge, op) in &reported {
        let r = row(&conn, challenge)
            .unwrap_or_else(|| panic!("a reported {op} is missing from the file"));
        let ok = match *op {
            "BEGUN" => r.status == "pending" || r.status == "consumed",
            "SAVED" => ["unbound", "pending", "consumed"].contains(&r.status.as_str()),
            "PROMOTED" => r.has_key && (r.status == "pending" || r.status == "consumed"),
            "CONSUMED" => r.status == "consumed",
            _ => unreachable!(),
        };
        assert!(ok, "a reported {op} is not what the file holds: {r:?}");
    }

    // Every row, reported or not (the kill may come between commit and report), is whole.
    let mut stmt = conn
        .prepare(
            "SELECT status, state_key IS NOT NULL, code_verifier IS NOT NULL, consumed_at, \
             auth_code IS NULL, length(state_key) FROM flows",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                RawRow {
                    status: r.get(0)?,
                    has_key: r.get(1)?,
                    has_verifier: r.get(2)?,
                    consumed_at: r.get(3)?,
                },
                r.get::<_, bool>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    assert!(rows.len() >= reported.len());
    for (r, no_code, key_len) in &rows {
        let whole = match r.status.as_str() {
            "unbound" => !r.has_key && r.has_verifier && r.consumed_at.is_none(),
            "pending" => {
                r.has_key && key_len == &Some(32) && r.has_verifier && r.consumed_at.is_none()
            }
            "consumed" => r.has_key && !r.has_verifier && r.consumed_at.is_some() && *no_code,
            _ => false,
        };
        assert!(whole, "a half-applied row: {r:?}");
    }

    // And the library opens the file and carries on.
    let store = Store::open(&fx.path).unwrap();
    let flow = store.begin(BeginRequest::new("srv")).unwrap();
    store.consume(flow.state().secret()).unwrap();
}

/// Case 4 at the first open: a process killed while it creates a fresh file (permissions,
/// WAL switch, migrations) leaves a file that the next process opens and uses.
#[test]
fn a_process_killed_while_creating_a_fresh_file_leaves_it_usable() {
    for attempt in 0..count(10, 40) {
        let fx = Fixture::new();
        let db = fx.path.to_str().unwrap();
        let mut child = spawn_child("child_writer", &[("OSS_DB", db)]);
        std::thread::sleep(Duration::from_millis(rand::random_range(0..40)));
        child.kill().unwrap();
        child.wait().unwrap();
        if fx.path.exists() {
            let conn = Connection::open(&fx.path).unwrap();
            let integrity: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(integrity, "ok", "attempt {attempt}");
        }
        let store = Store::open(&fx.path)
            .unwrap_or_else(|e| panic!("attempt {attempt}: reopening failed: {e}"));
        let flow = store.begin(BeginRequest::new("srv")).unwrap();
        store.consume(flow.state().secret()).unwrap();
    }
}
