//! Several processes run random operations on shared flows with short TTLs under the real
//! clock and log what each returned; the parent checks the merged history: each flow consumed
//! at most once, with the verifier saved for it, nothing succeeding after expiry, nothing
//! succeeding on a state never begun.

use super::Fixture;
use crate::common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::time::Duration;

use crate::common::{count, spawn_child};
use oauth_state_store::{
    BeginRequest, Clock, CodeVerifier, State, Store, StoreOptions, SystemClock,
};

const TTL_MS: i64 = 200;
const PROCESSES: usize = 4;
/// Slots `0..BEGIN` start by `begin`, `BEGIN..PROMOTE` by `save_code_verifier` + `promote`,
/// `PROMOTE..SLOTS` are never started.
const BEGIN: usize = 8;
const PROMOTE: usize = 16;
const SLOTS: usize = 20;

fn options() -> StoreOptions {
    StoreOptions::default().ttl(std::time::Duration::from_millis(TTL_MS as u64))
}

/// Child: reads `slot state verifier` lines from stdin, then runs `OSS_OPS` random operations
/// on the file named by `OSS_DB` and prints one line per operation:
/// `H <start ms> <op> <slot> OK ...` or `H <start ms> <op> <slot> ERR <variant>`.
#[test]
#[ignore = "run as a child process by the tests in this file"]
fn child_history() {
    let path = std::env::var("OSS_DB").expect("OSS_DB");
    let ops: usize = std::env::var("OSS_OPS").unwrap().parse().unwrap();
    let mut slots = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut f = line.split(' ');
        let (_, state, verifier) = (f.next(), f.next().unwrap(), f.next().unwrap());
        slots.push((state.to_owned(), verifier.to_owned()));
    }
    assert_eq!(slots.len(), SLOTS);
    let store = Fixture::open_target(&path, options());
    let mut out = std::io::stdout().lock();
    for _ in 0..ops {
        let slot = rand::random_range(0..SLOTS);
        let (state, verifier) = &slots[slot];
        let start = SystemClock.now_ms();
        let (op, result) = match rand::random_range(0..11) {
            0..=1 if slot < BEGIN => {
                let req = BeginRequest::new("srv")
                    .state(State::new(state.clone()).unwrap())
                    .verifier(CodeVerifier::new(verifier.clone()).unwrap());
                let r = store
                    .begin(req)
                    .map(|f| format!("{} {}", f.info().created_at, f.info().expires_at));
                ("begin", r)
            }
            0..=1 if slot < PROMOTE => {
                let r = store.save_code_verifier("srv", None, verifier).map(|c| {
                    assert_eq!(c, CodeVerifier::new(verifier.clone()).unwrap().challenge());
                    String::new()
                });
                writeln!(out, "H {start} save {slot} {}", fmt(r)).unwrap();
                let start = SystemClock.now_ms();
                let url = format!(
                    "https://as.example/authorize?state={state}&code_challenge={}",
                    CodeVerifier::new(verifier.clone()).unwrap().challenge()
                );
                let r = store
                    .promote("srv", None, &url)
                    .map(|i| format!("{} {}", i.created_at, i.expires_at));
                writeln!(out, "H {start} promote {slot} {}", fmt(r)).unwrap();
                continue;
            }
            2..=3 => {
                let r = store
                    .check(state)
                    .map(|i| format!("{} {} {}", i.status, i.created_at, i.expires_at));
                ("check", r)
            }
            4..=6 => {
                let r = store.consume(state).map(|c| {
                    let code = match c.code {
                        None => "-",
                        Some(code) if code.secret() == "history-code" => "code",
                        Some(_) => "wrong-code",
                    };
                    format!(
                        "{} {} {} {} {code}",
                        c.verifier.challenge(),
                        c.info.created_at,
                        c.info.expires_at,
                        c.consumed_at,
                    )
                });
                ("consume", r)
            }
            7 => {
                let r = store
                    .reject(state, "access_denied", None)
                    .map(|i| format!("{} {}", i.created_at, i.expires_at));
                ("reject", r)
            }
            8 => (
                "sweep",
                store.sweep().map(|r| r.removed.total().to_string()),
            ),
            9 => {
                let r = store
                    .complete(state, "history-code")
                    .map(|i| format!("{} {}", i.created_at, i.expires_at));
                ("complete", r)
            }
            _ => {
                std::thread::sleep(Duration::from_millis(rand::random_range(1..20)));
                continue;
            }
        };
        writeln!(out, "H {start} {op} {slot} {}", fmt(result)).unwrap();
    }
    out.flush().unwrap();
}

fn fmt(r: oauth_state_store::Result<String>) -> String {
    match r {
        Ok(s) => format!("OK {s}"),
        Err(e) => {
            let name = format!("{e:?}");
            let name = name.split([' ', '(', '{']).next().unwrap_or_default();
            format!("ERR {name}")
        }
    }
}

/// One logged operation.
#[derive(Debug)]
struct Event {
    start: i64,
    op: String,
    slot: usize,
    ok: bool,
    fields: Vec<String>,
}

fn parse(line: &str) -> Event {
    let f: Vec<&str> = line.split(' ').collect();
    Event {
        start: f[0].parse().unwrap(),
        op: f[1].to_owned(),
        slot: f[2].parse().unwrap(),
        ok: f[3] == "OK",
        fields: f[4..].iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn num(e: &Event, i: usize) -> i64 {
    e.fields[i].parse().unwrap()
}

/// Case 2: the merged history of several processes obeys the flow rules.
#[test]
fn concurrent_random_histories_consume_each_flow_at_most_once() {
    let ops = count(800, 5000);
    let fx = Fixture::new();
    // Create the file (and its schema) before the children race on it.
    fx.open(options());
    let slots: Vec<(String, String)> = (0..SLOTS)
        .map(|_| {
            (
                State::generate().secret().to_owned(),
                CodeVerifier::generate().secret().to_owned(),
            )
        })
        .collect();
    let challenges: Vec<String> = slots
        .iter()
        .map(|(_, v)| {
            CodeVerifier::new(v.clone())
                .unwrap()
                .challenge()
                .to_string()
        })
        .collect();
    let input: String = slots
        .iter()
        .enumerate()
        .map(|(i, (s, v))| format!("{i} {s} {v}\n"))
        .collect();
    let target = fx.target();
    let db = target.as_str();
    let child = crate::child_name(module_path!(), "child_history");
    let ops_s = ops.to_string();
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|_| spawn_child(&child, &[("OSS_DB", db), ("OSS_OPS", &ops_s)]))
        .collect();
    for c in &mut children {
        let mut stdin = c.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    let mut events = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a history child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        events.extend(common::lines_with(&out, "H ").iter().map(|l| parse(l)));
    }
    assert!(
        events.len() >= PROCESSES * ops / 2,
        "too few operations ran"
    );

    let allowed: HashMap<&str, &[&str]> = HashMap::from([
        ("begin", &["DuplicateState", "DuplicateChallenge"][..]),
        ("save", &["DuplicateChallenge"][..]),
        (
            "promote",
            &["UnknownChallenge", "Expired", "ChallengeAlreadyBound"][..],
        ),
        (
            "check",
            &["UnknownState", "Expired", "AlreadyConsumed", "FlowEnded"][..],
        ),
        (
            "consume",
            &[
                "UnknownState",
                "Expired",
                "AlreadyConsumed",
                "FlowEnded",
                "AuthorizationFailed",
            ][..],
        ),
        (
            "reject",
            &[
                "UnknownState",
                "Expired",
                "AlreadyConsumed",
                "FlowEnded",
                "AlreadyCompleted",
            ][..],
        ),
        (
            "complete",
            &[
                "UnknownState",
                "Expired",
                "AlreadyConsumed",
                "FlowEnded",
                "AlreadyCompleted",
            ][..],
        ),
        ("sweep", &[][..]),
    ]);
    // Flows that were created, by (slot, created_at), as begin and promote reported them.
    let mut created: HashSet<(usize, i64)> = HashSet::new();
    for e in &events {
        if !e.ok {
            let name = e.fields[0].as_str();
            assert!(
                allowed[e.op.as_str()].contains(&name),
                "{} on slot {} failed with {name}",
                e.op,
                e.slot
            );
        }
        if e.slot >= PROMOTE && e.op != "sweep" {
            assert!(
                !e.ok && e.fields[0] == "UnknownState",
                "{} on a state never begun: {e:?}",
                e.op
            );
        }
        if e.ok && (e.op == "begin" || e.op == "promote") {
            let (c, x) = (num(e, 0), num(e, 1));
            assert_eq!(x - c, TTL_MS, "{e:?}");
            assert!(e.start < x, "{} succeeded after expiry: {e:?}", e.op);
            created.insert((e.slot, c));
        }
    }
    let mut consumed: HashSet<(usize, i64)> = HashSet::new();
    let mut rejected: HashSet<(usize, i64)> = HashSet::new();
    let mut completed: HashSet<(usize, i64)> = HashSet::new();
    for e in events.iter().filter(|e| e.ok && e.op == "complete") {
        let (c, x) = (num(e, 0), num(e, 1));
        assert!(created.contains(&(e.slot, c)), "completed an unknown flow");
        assert!(e.start < x, "complete succeeded after expiry: {e:?}");
        assert!(completed.insert((e.slot, c)), "completed twice: {e:?}");
    }
    let mut wins = 0;
    for e in events.iter().filter(|e| e.ok) {
        match e.op.as_str() {
            "consume" => {
                wins += 1;
                assert_eq!(
                    e.fields[0], challenges[e.slot],
                    "a consume returned another flow's verifier"
                );
                let (c, x, at) = (num(e, 1), num(e, 2), num(e, 3));
                assert!(created.contains(&(e.slot, c)), "consumed an unknown flow");
                assert!(
                    at < x && at >= c && at >= e.start,
                    "consumed out of time: {e:?}"
                );
                assert!(
                    consumed.insert((e.slot, c)),
                    "a flow was consumed twice: slot {} created {c}",
                    e.slot
                );
                assert_eq!(
                    e.fields[4] == "code",
                    completed.contains(&(e.slot, c)),
                    "the code handed out does not match the callbacks recorded: {e:?}"
                );
            }
            "check" => {
                let (c, x) = (num(e, 1), num(e, 2));
                assert!(created.contains(&(e.slot, c)), "checked an unknown flow");
                assert!(e.start < x, "check succeeded after expiry: {e:?}");
            }
            "reject" => {
                let (c, x) = (num(e, 0), num(e, 1));
                assert!(created.contains(&(e.slot, c)), "rejected an unknown flow");
                assert!(e.start < x, "reject succeeded after expiry: {e:?}");
                assert!(rejected.insert((e.slot, c)), "rejected twice: {e:?}");
            }
            _ => {}
        }
    }
    assert!(
        consumed.is_disjoint(&rejected),
        "a rejected flow handed out its verifier"
    );
    assert!(
        completed.is_disjoint(&rejected),
        "a flow both completed and rejected"
    );
    assert!(
        wins > 0,
        "no consume ever succeeded; the history tests nothing"
    );
    let expired = events
        .iter()
        .filter(|e| !e.ok && e.fields[0] == "Expired")
        .count();
    eprintln!(
        "{} events, {} flows created, {wins} consumed, {} rejected, {expired} found expired",
        events.len(),
        created.len(),
        rejected.len()
    );
    // Nothing is left that a sweep after the last expiry would not remove.
    std::thread::sleep(Duration::from_millis(TTL_MS as u64 + 10));
    let store: Store = fx.open(options());
    store.sweep().unwrap();
    assert_eq!(store.stats().unwrap().counts.total(), 0);
}
