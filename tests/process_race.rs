//! Many real OS processes on one file at the same instant: the consume race, the first open of
//! a fresh file, and a write lock held by another process past the busy timeout.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::{count, forward_lines, spawn_child, Fixture};
use oauth_state_store::{BeginRequest, Error, LockWait, Store, StoreOptions, SCHEMA_VERSION};

const RACERS: usize = 16;

/// Child: opens the store named by `OSS_DB`, says `READY`, then for every line
/// `ROUND OP STATE` on stdin runs `OP` (`consume`, or `complete` as a callback listener does)
/// on `STATE` and prints `R ROUND OK <challenge of the verifier it got> <code?>` or
/// `R ROUND ERR <error variant>`. It blocks on stdin between rounds, so the parent's writes
/// release all racers at once.
#[test]
#[ignore = "run as a child process by the tests in this file"]
fn child_racer() {
    let path = std::env::var("OSS_DB").expect("OSS_DB");
    let store = Store::open(&path).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut f = line.split(' ');
        let (round, op, state) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let result = match op {
            "consume" => match store.consume(state) {
                Ok(flow) => format!("OK {} {}", flow.verifier.challenge(), flow.code.is_some()),
                Err(e) => format!("ERR {e:?}"),
            },
            _ => match store.complete(state, "race-code") {
                Ok(_) => "OK completed".to_owned(),
                Err(e) => format!("ERR {e:?}"),
            },
        };
        writeln!(out, "R {round} {result}").unwrap();
        out.flush().unwrap();
    }
}

/// `RACERS` children running the `#[ignore]`d test `name` on the file `db`, each child's stdout
/// lines forwarded, tagged with its index, to one channel.
struct Racers {
    children: Vec<Child>,
    readers: Vec<JoinHandle<()>>,
    rx: mpsc::Receiver<(usize, String)>,
}

impl Racers {
    fn spawn(name: &str, db: &str) -> Racers {
        let (tx, rx) = mpsc::channel();
        let mut children = Vec::new();
        let mut readers = Vec::new();
        for id in 0..RACERS {
            let mut child = spawn_child(name, &[("OSS_DB", db)]);
            readers.push(forward_lines(id, &mut child, tx.clone()));
            children.push(child);
        }
        Racers {
            children,
            readers,
            rx,
        }
    }

    /// Each child's stdin, in child order.
    fn stdins(&mut self) -> Vec<ChildStdin> {
        self.children
            .iter_mut()
            .map(|c| c.stdin.take().unwrap())
            .collect()
    }

    /// Waits for every child to exit; one that failed fails the test with its stderr.
    fn finish(self, what: &str) {
        for (id, mut child) in self.children.into_iter().enumerate() {
            let status = child.wait().unwrap();
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            assert!(status.success(), "{what}: child {id} failed: {err}");
        }
        for r in self.readers {
            r.join().unwrap();
        }
    }
}

/// Waits for one line from each of `n` children that satisfies `want`, failing on anything
/// else; returns the lines by child.
fn collect(rx: &mpsc::Receiver<(usize, String)>, n: usize, prefix: &str) -> Vec<String> {
    let mut got: Vec<Option<String>> = vec![None; n];
    while got.iter().any(Option::is_none) {
        let (id, line) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a child stopped answering");
        if let Some(rest) = line.strip_prefix(prefix) {
            assert!(got[id].is_none(), "child {id} answered twice: {rest}");
            got[id] = Some(rest.to_owned());
        }
    }
    got.into_iter().map(Option::unwrap).collect()
}

/// Case 1: 16 processes released together consume the same state, round after round: exactly
/// one wins with the verifier saved for that flow, every other one is told `AlreadyConsumed`.
#[test]
fn sixteen_processes_race_to_consume_each_state_and_exactly_one_wins() {
    let rounds = count(200, 1000);
    let fx = Fixture::new();
    let store = Store::open(&fx.path).unwrap();
    let mut racers = Racers::spawn("child_racer", fx.path.to_str().unwrap());
    collect(&racers.rx, RACERS, "READY");
    let mut stdins = racers.stdins();
    for round in 0..rounds {
        let flow = store.begin(BeginRequest::new("srv")).unwrap();
        let line = format!("{round} consume {}\n", flow.state().secret());
        for stdin in &mut stdins {
            stdin.write_all(line.as_bytes()).unwrap();
            stdin.flush().unwrap();
        }
        let results = collect(&racers.rx, RACERS, &format!("R {round} "));
        let winners: Vec<_> = results.iter().filter(|r| r.starts_with("OK ")).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        assert_eq!(
            winners[0],
            &format!("OK {} false", flow.code_challenge()),
            "round {round}: the winner got another flow's verifier"
        );
        let losers = results.iter().filter(|r| !r.starts_with("OK "));
        for loser in losers {
            assert_eq!(loser, "ERR AlreadyConsumed", "round {round}: {results:?}");
        }
    }
    drop(stdins);
    racers.finish("consume race");
    let stats = store.stats().unwrap();
    assert_eq!(stats.counts.consumed, rounds as u64);
    assert_eq!(stats.counts.total(), rounds as u64);
}

/// Case 1 with the listener's half: in every round half of the 16 processes record a code
/// for the state (`complete`) while the other half consume it. One consume wins; it carries
/// the code exactly when one `complete` got in first; nothing else succeeds.
#[test]
fn processes_racing_to_complete_and_consume_one_state_agree_on_one_outcome() {
    let rounds = count(60, 400);
    let fx = Fixture::new();
    let store = Store::open(&fx.path).unwrap();
    let mut racers = Racers::spawn("child_racer", fx.path.to_str().unwrap());
    collect(&racers.rx, RACERS, "READY");
    let mut stdins = racers.stdins();
    let mut with_code = 0;
    for round in 0..rounds {
        let flow = store.begin(BeginRequest::new("srv")).unwrap();
        for (id, stdin) in stdins.iter_mut().enumerate() {
            let op = if id % 2 == 0 { "complete" } else { "consume" };
            let line = format!("{round} {op} {}\n", flow.state().secret());
            stdin.write_all(line.as_bytes()).unwrap();
            stdin.flush().unwrap();
        }
        let results = collect(&racers.rx, RACERS, &format!("R {round} "));
        let (completes, consumes): (Vec<_>, Vec<_>) =
            results.iter().enumerate().partition(|(id, _)| id % 2 == 0);
        let completed = completes
            .iter()
            .filter(|(_, r)| *r == "OK completed")
            .count();
        assert!(completed <= 1, "round {round}: {results:?}");
        for (_, r) in completes.iter().filter(|(_, r)| *r != "OK completed") {
            assert!(
                *r == "ERR AlreadyCompleted" || *r == "ERR AlreadyConsumed",
                "round {round}: {results:?}"
            );
        }
        let won: Vec<_> = consumes
            .iter()
            .filter(|(_, r)| r.starts_with("OK "))
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        let code = completed == 1;
        with_code += usize::from(code);
        assert_eq!(
            won[0].1,
            &format!("OK {} {code}", flow.code_challenge()),
            "round {round}: {results:?}"
        );
        for (_, r) in consumes.iter().filter(|(_, r)| !r.starts_with("OK ")) {
            assert_eq!(*r, "ERR AlreadyConsumed", "round {round}: {results:?}");
        }
    }
    eprintln!("{with_code} of {rounds} winners carried a code");
    drop(stdins);
    racers.finish("complete/consume race");
}

/// Child: blocks on stdin until released, opens the store named by `OSS_DB`, runs one flow,
/// and prints the store id, the migration it saw, the journal mode and the user version.
#[test]
#[ignore = "run as a child process by the tests in this file"]
fn child_first_open() {
    let path = std::env::var("OSS_DB").expect("OSS_DB");
    let mut go = String::new();
    std::io::stdin().lock().read_line(&mut go).unwrap();
    let store = Store::open(&path).unwrap();
    let flow = store.begin(BeginRequest::new("srv")).unwrap();
    store.consume(flow.state().secret()).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let m = store.migration();
    println!(
        "OPENED {} {} {} {mode} {version}",
        store.store_id(),
        m.from,
        m.to
    );
}

/// Case 6: 16 processes open the same brand-new file at the same moment. All succeed, the
/// file is in WAL mode, and the schema and the store id were made exactly once.
#[test]
fn sixteen_processes_open_the_same_fresh_file_at_once() {
    for attempt in 0..count(2, 10) {
        let fx = Fixture::new();
        let mut racers = Racers::spawn("child_first_open", fx.path.to_str().unwrap());
        // Give every child time to start and block on its stdin, then release them together.
        std::thread::sleep(Duration::from_millis(300));
        let mut stdins = racers.stdins();
        for stdin in &mut stdins {
            stdin.write_all(b"go\n").unwrap();
        }
        drop(stdins);
        let opened = collect(&racers.rx, RACERS, "OPENED ");
        racers.finish(&format!("attempt {attempt}"));
        let fields: Vec<Vec<&str>> = opened.iter().map(|l| l.split(' ').collect()).collect();
        let ids: HashMap<&str, usize> = fields.iter().fold(HashMap::new(), |mut m, f| {
            *m.entry(f[0]).or_default() += 1;
            m
        });
        assert_eq!(
            ids.len(),
            1,
            "attempt {attempt}: several store ids: {ids:?}"
        );
        let migrated_from_zero = fields.iter().filter(|f| f[1] == "0").count();
        assert_eq!(
            migrated_from_zero, 1,
            "attempt {attempt}: the migrations ran more than once: {opened:?}"
        );
        for f in &fields {
            assert_eq!(f[2], SCHEMA_VERSION.to_string(), "{opened:?}");
            assert_eq!(f[3], "wal", "{opened:?}");
            assert_eq!(f[4], SCHEMA_VERSION.to_string(), "{opened:?}");
        }
        let store = Store::open(&fx.path).unwrap();
        assert_eq!(store.store_id(), fields[0][0]);
        assert_eq!(store.stats().unwrap().counts.consumed, RACERS as u64);
        let conn = rusqlite::Connection::open(&fx.path).unwrap();
        let meta_rows: i64 = conn
            .query_row(
                "SELECT count(*) FROM meta WHERE key = 'store_id'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(meta_rows, 1);
    }
}

/// Child: takes the write lock of the file named by `OSS_DB` with `BEGIN IMMEDIATE` on a raw
/// connection, says `LOCKED`, and holds it for `OSS_HOLD_MS` and until a line arrives on stdin
/// (so that a slow machine cannot end the hold before the parent's checks), then rolls back.
#[test]
#[ignore = "run as a child process by the tests in this file"]
fn child_hold_write_lock() {
    let path = std::env::var("OSS_DB").expect("OSS_DB");
    let hold: u64 = std::env::var("OSS_HOLD_MS").unwrap().parse().unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    println!("LOCKED");
    std::io::stdout().flush().unwrap();
    let start = std::time::Instant::now();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    std::thread::sleep(Duration::from_millis(hold).saturating_sub(start.elapsed()));
    conn.execute_batch("ROLLBACK").unwrap();
    println!("RELEASED");
}

fn is_busy<T: std::fmt::Debug>(what: &str, r: oauth_state_store::Result<T>) {
    match r {
        Err(Error::Busy { timeout, .. }) => assert_eq!(timeout, Duration::from_millis(100)),
        other => panic!("{what} under a held lock: expected Busy, got {other:?}"),
    }
}

/// Case 5: another process holds the write lock for 2 s. With a 100 ms busy timeout every
/// write fails with the typed `Busy` (never "unknown state") and changes nothing; with the
/// default 5 s timeout the same consume waits and succeeds. Both ways of waiting.
#[test]
fn a_write_lock_held_by_another_process_is_busy_then_waited_for() {
    busy_then_waited_for(LockWait::Backoff);
}

#[test]
fn a_write_lock_held_by_another_process_is_busy_then_waited_for_when_waits_age() {
    busy_then_waited_for(LockWait::Aging);
}

fn busy_then_waited_for(wait: LockWait) {
    let fx = Fixture::new();
    let patient = StoreOptions::default()
        .lock_wait(wait)
        .open(&fx.path)
        .unwrap();
    let impatient = StoreOptions::default()
        .lock_wait(wait)
        .busy_timeout(Duration::from_millis(100))
        .open(&fx.path)
        .unwrap();
    let flow = patient.begin(BeginRequest::new("srv")).unwrap();
    let other = patient.begin(BeginRequest::new("srv")).unwrap();
    let saved = oauth_state_store::CodeVerifier::generate();
    let url = format!(
        "https://as.example/authorize?state=promoted-state&code_challenge={}",
        saved.challenge()
    );
    patient
        .save_code_verifier("srv", None, saved.secret())
        .unwrap();

    let db = fx.path.to_str().unwrap();
    let mut holder = spawn_child(
        "child_hold_write_lock",
        &[("OSS_DB", db), ("OSS_HOLD_MS", "2000")],
    );
    let mut lines = std::io::BufReader::new(holder.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("holder exited early").unwrap();
        if line == "LOCKED" {
            break;
        }
    }
    // Reads do not need the write lock in WAL mode, and neither does opening the file.
    impatient.check(flow.state().secret()).unwrap();
    let late = StoreOptions::default()
        .lock_wait(wait)
        .busy_timeout(Duration::from_millis(100))
        .open(&fx.path)
        .unwrap();
    assert_eq!(late.store_id(), patient.store_id());
    is_busy(
        "consume on a store opened under the lock",
        late.consume(flow.state().secret()),
    );
    is_busy("consume", impatient.consume(flow.state().secret()));
    is_busy("begin", impatient.begin(BeginRequest::new("srv")));
    is_busy(
        "reject",
        impatient.reject(other.state().secret(), "access_denied", None),
    );
    is_busy("promote", impatient.promote("srv", None, &url));
    is_busy("sweep", impatient.sweep());
    is_busy(
        "save_code_verifier",
        impatient.save_code_verifier("srv", None, &"v".repeat(43)),
    );
    // The default timeout outwaits the holder, which lets go at the earliest 2 s after it
    // took the lock.
    holder
        .stdin
        .take()
        .unwrap()
        .write_all(b"release\n")
        .unwrap();
    let consumed = patient.consume(flow.state().secret()).unwrap();
    assert_eq!(&consumed.verifier.challenge(), flow.code_challenge());
    assert!(holder.wait().unwrap().success());
    // Nothing the busy calls attempted happened: the other flow is still pending and the
    // saved verifier still unbound.
    let stats = impatient.stats().unwrap();
    assert_eq!(stats.counts.pending, 1);
    assert_eq!(stats.counts.unbound, 1);
    assert_eq!(stats.counts.consumed, 1);
    impatient.check(other.state().secret()).unwrap();
    assert!(matches!(
        impatient.consume(flow.state().secret()),
        Err(Error::AlreadyConsumed)
    ));
}
