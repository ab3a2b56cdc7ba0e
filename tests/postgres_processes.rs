//! PostgreSQL across real OS processes and connection faults: 16 processes racing consume on
//! one state over TCP, and a connection killed in the middle of a consume.

#[path = "common/mod.rs"]
mod common;
#[path = "common/pg.rs"]
mod pg;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use oauth_state_store::{BeginRequest, Error, Status, Store};

const URL_VAR: &str = "OSS_TEST_PG_URL";
const SERVER: &str = "https://mcp.example.com";

fn store(url: &str) -> Store {
    Store::open(url).expect("open the store on PostgreSQL")
}

#[test]
fn sixteen_processes_racing_consume_have_one_winner_a_round() {
    const PROCESSES: usize = 16;
    let rounds = common::count(200, 1000);
    let Some(cluster) = pg::cluster("sixteen_processes_racing_consume") else {
        return;
    };
    let url = cluster.fresh_database("race");
    let begin = store(&url);
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
            cmd.args([
                "child_consumes",
                "--exact",
                "--ignored",
                "--nocapture",
                "-q",
            ])
            .env(URL_VAR, &url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
            cmd.spawn().expect("spawn a consumer")
        })
        .collect();
    let mut inputs: Vec<_> = children
        .iter_mut()
        .map(|c| c.stdin.take().unwrap())
        .collect();
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()).lines())
        .collect();
    let (mut wins, mut already, mut other) = (0usize, 0usize, Vec::new());
    for round in 0..rounds {
        let flow = begin.begin(BeginRequest::new(SERVER)).unwrap();
        for input in &mut inputs {
            writeln!(input, "{}", flow.state().secret()).unwrap();
            input.flush().unwrap();
        }
        let mut round_wins = 0;
        for out in &mut outputs {
            let line = loop {
                let line = out.next().expect("a consumer exited").unwrap();
                if let Some(rest) = line.split_once("RESULT ").map(|(_, r)| r.to_owned()) {
                    break rest;
                }
            };
            match line.as_str() {
                "won" => round_wins += 1,
                "already" => already += 1,
                e => other.push(format!("round {round}: {e}")),
            }
        }
        assert_eq!(round_wins, 1, "round {round}: {round_wins} winners");
        wins += round_wins;
    }
    drop(inputs);
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert!(
        other.is_empty(),
        "errors other than AlreadyConsumed: {other:?}"
    );
    assert_eq!((wins, already), (rounds, rounds * (PROCESSES - 1)));
}

/// Child of `sixteen_processes_racing_consume_have_one_winner_a_round`: one store, consumes
/// every state read from stdin, prints `RESULT won|already|<error>`.
#[test]
#[ignore = "child process of sixteen_processes_racing_consume_have_one_winner_a_round"]
fn child_consumes() {
    let Ok(url) = std::env::var(URL_VAR) else {
        return;
    };
    let store = store(&url);
    for line in std::io::stdin().lock().lines() {
        let state = line.unwrap();
        let result = match store.consume(state.trim()) {
            Ok(_) => "won".to_owned(),
            Err(Error::AlreadyConsumed) => "already".to_owned(),
            Err(e) => format!("error {e}"),
        };
        println!("RESULT {result}");
    }
}

#[test]
fn a_connection_killed_mid_consume_is_an_unknown_outcome_and_changes_nothing() {
    let Some(cluster) = pg::cluster("connection_killed_mid_consume") else {
        return;
    };
    let url = cluster.fresh_database("terminate");
    let store = store(&url);
    let flow = store.begin(BeginRequest::new(SERVER)).unwrap();
    let state = flow.state().secret().to_owned();

    // Another session holds the row, so the consume waits inside its transaction.
    let mut holder = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut tx = holder.transaction().unwrap();
    tx.execute("SELECT id FROM flows FOR UPDATE", &[]).unwrap();
    let consumer = {
        let (store, state) = (store.clone(), state.clone());
        std::thread::spawn(move || store.consume(&state))
    };
    let until = Instant::now() + Duration::from_secs(20);
    let pid: i32 = loop {
        let rows = admin
            .query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'oauth-state-store' \
                 AND wait_event_type = 'Lock' AND datname = current_database()",
                &[],
            )
            .unwrap();
        if let Some(r) = rows.first() {
            break r.get(0);
        }
        assert!(
            Instant::now() < until,
            "the consume never waited on the row"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    let result = consumer.join().unwrap();
    assert!(
        matches!(result, Err(Error::CommitOutcomeUnknown { .. })),
        "expected CommitOutcomeUnknown (a session the server ends may end after the commit of \
         its one statement), got {result:?}"
    );
    tx.rollback().unwrap();

    // The row is as it was: pending, its verifier in place; the store recovers by itself.
    let row = admin
        .query_one("SELECT status, code_verifier IS NOT NULL FROM flows", &[])
        .unwrap();
    let (status, has_verifier): (String, bool) = (row.get(0), row.get(1));
    assert_eq!(
        (status.as_str(), has_verifier),
        (Status::Pending.as_str(), true)
    );
    let consumed = store
        .consume(&state)
        .expect("the same store consumes after the fault");
    use base64::Engine as _;
    use sha2::Digest as _;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(consumed.verifier.secret().as_bytes()));
    assert_eq!(
        challenge,
        flow.code_challenge().as_str(),
        "the flow's own verifier"
    );
}
