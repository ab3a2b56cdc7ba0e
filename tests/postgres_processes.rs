//! PostgreSQL across real OS processes and connection faults: 16 processes racing consume on
//! one state over TCP, processes racing the SDK's finish without the state, and a connection
//! killed in the middle of a consume.

#[path = "common/mod.rs"]
mod common;
#[path = "common/pg.rs"]
mod pg;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use oauth_state_store::{BeginRequest, CodeVerifier, Error, Status, Store};

const URL_VAR: &str = "OSS_TEST_PG_URL";
const SERVER: &str = "https://mcp.example.com";
const CLIENT: &str = "c1";

fn store(url: &str) -> Store {
    Store::open(url).expect("open the store on PostgreSQL")
}

/// Consumer processes, each with its own store on `url`: a line written to one is a state to
/// consume, or `pending` (`consume_pending` of [`SERVER`] and [`CLIENT`]); each answers a line
/// with its result.
struct Consumers {
    children: Vec<std::process::Child>,
    inputs: Vec<std::process::ChildStdin>,
    outputs: Vec<std::io::Lines<BufReader<std::process::ChildStdout>>>,
}

impl Consumers {
    fn start(url: &str, processes: usize) -> Consumers {
        let mut children: Vec<_> = (0..processes)
            .map(|_| {
                let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
                cmd.args([
                    "child_consumes",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "-q",
                ])
                .env(URL_VAR, url)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
                cmd.spawn().expect("spawn a consumer")
            })
            .collect();
        let inputs = children
            .iter_mut()
            .map(|c| c.stdin.take().unwrap())
            .collect();
        let outputs = children
            .iter_mut()
            .map(|c| BufReader::new(c.stdout.take().unwrap()).lines())
            .collect();
        Consumers {
            children,
            inputs,
            outputs,
        }
    }

    /// Sends `line` to every process at once; returns their results.
    fn round(&mut self, line: &str) -> Vec<String> {
        for input in &mut self.inputs {
            writeln!(input, "{line}").unwrap();
            input.flush().unwrap();
        }
        self.outputs
            .iter_mut()
            .map(|out| loop {
                let line = out.next().expect("a consumer exited").unwrap();
                if let Some((_, rest)) = line.split_once("RESULT ") {
                    break rest.to_owned();
                }
            })
            .collect()
    }

    fn finish(self) {
        drop(self.inputs);
        for mut c in self.children {
            assert!(c.wait().unwrap().success());
        }
    }
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
    let mut consumers = Consumers::start(&url, PROCESSES);
    let (mut wins, mut already, mut other) = (0usize, 0usize, Vec::new());
    for round in 0..rounds {
        let flow = begin.begin(BeginRequest::new(SERVER)).unwrap();
        let mut round_wins = 0;
        for result in consumers.round(flow.state().secret()) {
            match result.as_str() {
                "won" => round_wins += 1,
                "already" => already += 1,
                e => other.push(format!("round {round}: {e}")),
            }
        }
        assert_eq!(round_wins, 1, "round {round}: {round_wins} winners");
        wins += round_wins;
    }
    consumers.finish();
    assert!(
        other.is_empty(),
        "errors other than AlreadyConsumed: {other:?}"
    );
    assert_eq!((wins, already), (rounds, rounds * (PROCESSES - 1)));
}

/// The SDK's finish without the state, raced: every process calls `consume_pending` for the
/// one flow in progress at once. One gets the verifier; every other either chose the flow
/// before the winner consumed it and then finds it consumed (`AlreadyConsumed`, as a consume
/// of that state does), or chose after (`NoPendingVerifier`); the flow is consumed once.
#[test]
fn processes_racing_consume_pending_have_one_winner_a_round() {
    const PROCESSES: usize = 4;
    let rounds = common::count(100, 500);
    let Some(cluster) = pg::cluster("processes_racing_consume_pending") else {
        return;
    };
    let url = cluster.fresh_database("race_pending");
    let begin = store(&url);
    let mut consumers = Consumers::start(&url, PROCESSES);
    let (mut already, mut none, mut other) = (0usize, 0usize, Vec::new());
    for round in 0..rounds {
        let verifier = CodeVerifier::generate();
        let challenge = begin
            .save_code_verifier(SERVER, Some(CLIENT), verifier.secret())
            .unwrap();
        let state = format!("race-{round}");
        let url = format!(
            "https://as.example.com/authorize?state={state}&code_challenge={}",
            challenge.as_str()
        );
        begin.promote(SERVER, Some(CLIENT), &url).unwrap();
        let mut round_wins = 0;
        for result in consumers.round("pending") {
            match result.as_str() {
                r if r.starts_with("won ") => {
                    assert_eq!(
                        &r[4..],
                        verifier.secret(),
                        "round {round}: another verifier"
                    );
                    round_wins += 1;
                }
                "already" => already += 1,
                "none" => none += 1,
                e => other.push(format!("round {round}: {e}")),
            }
        }
        assert_eq!(round_wins, 1, "round {round}: {round_wins} winners");
        assert!(
            matches!(begin.consume(&state), Err(Error::AlreadyConsumed)),
            "round {round}: the flow is not consumed"
        );
        assert_eq!(begin.stats().unwrap().counts.consumed, round as u64 + 1);
    }
    consumers.finish();
    assert!(
        other.is_empty(),
        "errors other than AlreadyConsumed and NoPendingVerifier: {other:?}"
    );
    assert_eq!(already + none, rounds * (PROCESSES - 1));
    println!("losers: {already} AlreadyConsumed, {none} NoPendingVerifier");
}

/// Child of the races above: one store, consumes every state read from stdin (`pending`:
/// `consume_pending`), prints `RESULT won|already|none|<error>` (`won <verifier>` for
/// `consume_pending`).
#[test]
#[ignore = "child process of the consume races"]
fn child_consumes() {
    let Ok(url) = std::env::var(URL_VAR) else {
        return;
    };
    let store = store(&url);
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let result = match line.trim() {
            "pending" => store
                .consume_pending(SERVER, Some(CLIENT))
                .map(|f| format!("won {}", f.verifier.secret())),
            state => store.consume(state).map(|_| "won".to_owned()),
        };
        let result = match result {
            Ok(won) => won,
            Err(Error::AlreadyConsumed) => "already".to_owned(),
            Err(Error::NoPendingVerifier) => "none".to_owned(),
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
