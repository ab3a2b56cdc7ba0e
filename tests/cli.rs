//! The `oauth-state-store` binary on real files populated through the library.
//!
//! The binary reads the system clock, so rows are made with a [`ManualClock`] set relative to
//! it: "expired" rows expired an hour ago, "live" rows expire in an hour.

mod common;

#[path = "cli/open_path.rs"]
mod open_path;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::{spawn_child, Fixture};
use oauth_state_store::{
    BeginRequest, Clock, CodeVerifier, ManualClock, State, Status, Store, StoreOptions,
    SystemClock, SCHEMA_VERSION,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

const HOUR_MS: i64 = 3_600_000;
const SERVERS: [&str; 2] = ["https://a.example.com", "https://b.example.com"];

/// Runs the binary with `args`, `--db path` appended, and no database variables inherited.
fn cli(path: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oauth-state-store"))
        .args(args)
        .arg("--db")
        .arg(path)
        .env_remove("OAUTH_STATE_DB")
        .env_remove("XDG_STATE_HOME")
        .output()
        .expect("run oauth-state-store")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("one JSON document on stdout")
}

/// The secrets of the flows a test made, to prove that no output contains them.
#[derive(Default)]
struct Secrets(Vec<String>);

/// A store on the fixture's file whose clock the test sets relative to real time.
struct Populator {
    store: Store,
    clock: ManualClock,
    secrets: Secrets,
    /// Pending flows' state keys, to find their fingerprints in `list`.
    state_keys: Vec<[u8; 32]>,
}

impl Populator {
    fn new(fx: &Fixture) -> Self {
        let clock = ManualClock::at_system_time();
        let store = StoreOptions::default()
            .clock(clock.clone())
            .ttl(std::time::Duration::from_secs(3600))
            .open(&fx.path)
            .expect("open store");
        Populator {
            store,
            clock,
            secrets: Secrets::default(),
            state_keys: Vec::new(),
        }
    }

    /// Moves the clock to real time plus `offset_ms`: rows made now expire an hour later.
    fn at(&self, offset_ms: i64) -> &Self {
        self.clock.set(SystemClock.now_ms() + offset_ms);
        self
    }

    /// Makes one row in `status` for `server`.
    fn make(&mut self, status: Status, server: &str) {
        let verifier = CodeVerifier::generate();
        self.secrets.0.push(verifier.secret().to_owned());
        if status == Status::Unbound {
            self.store
                .save_code_verifier(server, Some("cli"), verifier.secret())
                .expect("save verifier");
            return;
        }
        let request = BeginRequest::new(server)
            .client_id("cli")
            .verifier(CodeVerifier::new(verifier.secret()).expect("verifier"));
        let flow = self.store.begin(request).expect("begin");
        let state = flow.state().secret().to_owned();
        self.secrets.0.push(state.clone());
        match status {
            Status::Pending => self.state_keys.push(Sha256::digest(&state).into()),
            Status::Completed => {
                let code = State::generate().secret().to_owned();
                self.store.complete(&state, &code).expect("complete");
                self.secrets.0.push(code);
            }
            Status::Failed => {
                self.store
                    .reject(&state, "access_denied", None)
                    .expect("reject");
            }
            Status::Consumed => {
                self.store.consume(&state).expect("consume");
            }
            Status::Unbound => unreachable!(),
        }
    }
}

/// Expired rows: 1 unbound, 2 pending, 3 completed, 4 failed, 5 consumed. Live rows: one of
/// each status per server.
fn populate(fx: &Fixture) -> (Populator, HashMap<Status, u64>) {
    let mut p = Populator::new(fx);
    let mut expired = HashMap::new();
    p.at(-2 * HOUR_MS);
    for (i, status) in Status::ALL.into_iter().enumerate() {
        for _ in 0..=i {
            p.make(status, SERVERS[i % 2]);
        }
        expired.insert(status, i as u64 + 1);
    }
    p.at(0);
    for status in Status::ALL {
        for server in SERVERS {
            p.make(status, server);
        }
    }
    (p, expired)
}

/// Counts by status, read through the library with the system clock.
fn counts(path: &Path) -> HashMap<Status, u64> {
    let stats = Store::open(path).expect("open").stats().expect("stats");
    Status::ALL
        .into_iter()
        .map(|s| (s, stats.counts.get(s)))
        .collect()
}

fn removed_of(doc: &Value) -> HashMap<Status, u64> {
    Status::ALL
        .into_iter()
        .map(|s| (s, doc["removed"][s.as_str()].as_u64().expect("count")))
        .collect()
}

#[test]
fn sweep_removes_exactly_the_expired_rows_of_each_status() {
    let fx = Fixture::new();
    let (p, expired) = populate(&fx);
    drop(p);
    let out = cli(&fx.path, &["sweep", "--json", "--batch-size", "4"]);
    let doc = json(&out);
    assert_eq!(removed_of(&doc), expired);
    assert_eq!(doc["total"], 15);
    assert_eq!(doc["dry_run"], false);
    assert!(doc["batches"].as_u64().unwrap() >= 4, "{doc}");
    let left = counts(&fx.path);
    for status in Status::ALL {
        assert_eq!(left[&status], 2, "live {status} rows must stay");
    }
    let again = cli(&fx.path, &["sweep"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).starts_with("removed 0 rows"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn dry_run_counts_and_removes_nothing() {
    let fx = Fixture::new();
    let (p, expired) = populate(&fx);
    drop(p);
    let before = counts(&fx.path);
    let doc = json(&cli(&fx.path, &["sweep", "--dry-run", "--json"]));
    assert_eq!(removed_of(&doc), expired);
    assert_eq!(doc["dry_run"], true);
    let human = cli(&fx.path, &["sweep", "--dry-run"]);
    assert!(
        stdout(&human).starts_with("would remove 15 rows"),
        "{}",
        stdout(&human)
    );
    assert_eq!(counts(&fx.path), before);
}

#[test]
fn older_than_removes_finished_rows_before_they_expire() {
    let fx = Fixture::new();
    let mut p = Populator::new(&fx);
    p.at(-30 * 60_000);
    for status in [
        Status::Pending,
        Status::Completed,
        Status::Failed,
        Status::Consumed,
    ] {
        p.make(status, SERVERS[0]);
    }
    p.at(0);
    p.make(Status::Consumed, SERVERS[0]);
    p.make(Status::Failed, SERVERS[0]);
    drop(p);
    let preview = json(&cli(
        &fx.path,
        &["sweep", "--dry-run", "--older-than", "20m", "--json"],
    ));
    let doc = json(&cli(&fx.path, &["sweep", "--older-than", "20m", "--json"]));
    for d in [&preview, &doc] {
        assert_eq!(d["total"], 2, "{d}");
        assert_eq!(
            (
                d["removed"]["consumed"].as_u64(),
                d["removed"]["failed"].as_u64()
            ),
            (Some(1), Some(1))
        );
    }
    let left = counts(&fx.path);
    assert_eq!(
        (
            left[&Status::Pending],
            left[&Status::Completed],
            left[&Status::Failed],
            left[&Status::Consumed]
        ),
        (1, 1, 1, 1)
    );
}

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
    let header = damaged_copy(&fx, "header.db", 0, 100);
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
}

#[test]
fn check_and_the_other_commands_refuse_an_insecure_mode() {
    // As root the owner test passes, so the mode rule is what refuses the file here.
    let fx = Fixture::new();
    drop(fx.store());
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli(&fx.path, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("problem (permissions)"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("chmod 600"));
    for cmd in ["stats", "list", "sweep"] {
        let out = cli(&fx.path, &[cmd]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        assert!(
            stderr(&out).contains("refusing to use"),
            "{cmd}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_missing_file_is_a_clear_error_and_only_migrate_creates_it() {
    let fx = Fixture::new();
    let nested = fx.dir.path().join("state/oauth-state-store/flows.db");
    for path in [&fx.path, &nested] {
        for cmd in ["stats", "list", "check", "sweep"] {
            let out = cli(path, &[cmd]);
            // 3: the command could not run (was 1 before exit statuses were split).
            assert_eq!(out.status.code(), Some(3), "{cmd}");
            let err = stderr(&out);
            assert!(err.contains("does not exist"), "{cmd}: {err}");
            assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
            assert!(!path.exists(), "{cmd} created the file");
        }
    }
    let out = cli(&nested, &["migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("schema version {SCHEMA_VERSION}")));
    let dir_mode = fs::metadata(nested.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    assert_eq!(
        fs::metadata(&nested).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = cli(&nested, &["migrate"]);
    assert!(
        stdout(&again).contains("nothing to do"),
        "{}",
        stdout(&again)
    );
    assert_eq!(cli(&nested, &["check"]).status.code(), Some(0));
}

#[test]
fn help_shows_an_example_and_usage_errors_exit_2() {
    let fx = Fixture::new();
    for cmd in ["sweep", "stats", "list", "check", "migrate"] {
        let out = cli(&fx.path, &[cmd, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(stdout(&out).contains("Example"), "{cmd}");
    }
    assert_eq!(cli(&fx.path, &["sweep", "--bogus"]).status.code(), Some(2));
    assert_eq!(
        cli(&fx.path, &["sweep", "--older-than", "soon"])
            .status
            .code(),
        Some(2)
    );
}

const CHILD_DB: &str = "OAUTH_STATE_STORE_CLI_TEST_DB";

/// Child process: begins and consumes flows on the file until told to stop on stdin.
#[test]
#[ignore = "run by sweep_runs_while_another_process_consumes_flows"]
fn child_consumes_flows() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let store = Store::open(path).expect("child open");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let mut consumed = 0u64;
    while consumed < 50 || !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let flow = store
            .begin(BeginRequest::new(SERVERS[0]))
            .unwrap_or_else(|e| panic!("child begin: {e}"));
        store
            .consume(flow.state().secret())
            .unwrap_or_else(|e| panic!("child consume: {e}"));
        consumed += 1;
        if consumed == 1 {
            println!("ready");
            std::io::stdout().flush().unwrap();
        }
    }
    println!("consumed {consumed}");
}

#[test]
fn sweep_runs_while_another_process_consumes_flows() {
    const EXPIRED: u64 = 600;
    let fx = Fixture::new();
    {
        let store = StoreOptions::default()
            .clock(ManualClock::new(SystemClock.now_ms() - 2 * HOUR_MS))
            .open(&fx.path)
            .unwrap();
        for i in 0..EXPIRED {
            store
                .begin(BeginRequest::new(SERVERS[(i % 2) as usize]))
                .unwrap();
        }
    }
    let db = fx.path.to_str().unwrap();
    let mut child = spawn_child("child_consumes_flows", &[(CHILD_DB, db)]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "ready" {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "child ended before it was ready"
        );
    }
    let sweep = cli(&fx.path, &["sweep", "--json", "--batch-size", "10"]);
    child.stdin.take().unwrap().write_all(b"stop\n").unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "the consuming process failed: {rest}{err}"
    );
    let consumed: u64 = rest
        .lines()
        .find_map(|l| l.strip_prefix("consumed "))
        .and_then(|n| n.trim().parse().ok())
        .expect("child reports its count");
    assert!(consumed >= 50);
    let doc = json(&sweep);
    assert_eq!(doc["total"], EXPIRED, "exactly the expired rows");
    assert!(doc["batches"].as_u64().unwrap() >= EXPIRED / 10);
    assert_eq!(counts(&fx.path)[&Status::Consumed], consumed);
}

#[test]
fn vacuum_reclaims_space_and_says_when_another_process_holds_the_file() {
    let fx = Fixture::new();
    {
        let store = StoreOptions::default()
            .clock(ManualClock::new(SystemClock.now_ms() - 2 * HOUR_MS))
            .open(&fx.path)
            .unwrap();
        for i in 0..400 {
            store.begin(BeginRequest::new(SERVERS[i % 2])).unwrap();
        }
    }
    let doc = json(&cli(&fx.path, &["sweep", "--vacuum", "--json"]));
    assert_eq!(doc["total"], 400);
    let v = &doc["vacuum"];
    assert_eq!(
        (v["vacuumed"].as_bool(), v["wal_truncated"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(
        v["file_bytes_after"].as_u64() < v["file_bytes_before"].as_u64(),
        "{v}"
    );
    assert_eq!(v["wal_bytes_after"], 0);

    // A reader that keeps an old snapshot open keeps the WAL from being truncated.
    let store = Store::open(&fx.path).unwrap();
    store.begin(BeginRequest::new(SERVERS[0])).unwrap();
    let reader = rusqlite::Connection::open(&fx.path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM flows", [], |r| r.get(0))
        .unwrap();
    store.begin(BeginRequest::new(SERVERS[1])).unwrap();
    let out = cli(&fx.path, &["sweep", "--vacuum"]);
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("another process kept the database busy"),
        "{err}"
    );
    assert!(err.contains("sweep --vacuum"), "{err}");
    assert_eq!(err.lines().count(), 1);
    assert_eq!(counts(&fx.path)[&Status::Pending], 2, "live rows untouched");
}

/// Runs the binary with exactly `args`, no database variables inherited, `env` set.
fn cli_raw(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oauth-state-store"));
    cmd.args(args)
        .env_remove("OAUTH_STATE_DB")
        .env_remove("XDG_STATE_HOME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run oauth-state-store")
}

/// The one JSON error object on stdout, with its exit status.
fn json_error(o: &Output) -> Value {
    let doc: Value = serde_json::from_slice(&o.stdout).expect("one JSON object on stdout");
    assert_eq!(doc["ok"], false, "{doc}");
    assert_eq!(
        doc["exit_status"].as_i64(),
        o.status.code().map(i64::from),
        "{doc}"
    );
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err}");
    assert!(err.contains(doc["message"].as_str().unwrap()), "{err}");
    doc
}

#[test]
fn exit_statuses_are_ok_problem_usage_and_could_not_run_and_json_errors_are_objects() {
    let fx = Fixture::new();
    let missing = cli(&fx.path, &["stats", "--json"]);
    assert_eq!(missing.status.code(), Some(3));
    assert_eq!(json_error(&missing)["error"], "database_missing");
    assert!(!stderr(&missing).contains("os error"));

    drop(fx.store());
    assert_eq!(cli(&fx.path, &["stats"]).status.code(), Some(0));
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o644)).unwrap();
    for cmd in ["stats", "list", "sweep", "migrate"] {
        let refused = cli(&fx.path, &[cmd, "--json"]);
        assert_eq!(refused.status.code(), Some(1), "{cmd}");
        assert_eq!(json_error(&refused)["error"], "insecure_file", "{cmd}");
    }
    fs::set_permissions(&fx.path, fs::Permissions::from_mode(0o600)).unwrap();

    let usage = cli(&fx.path, &["sweep", "--bogus", "--json"]);
    assert_eq!(usage.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&usage.stdout).expect("JSON usage error");
    assert_eq!(
        (doc["error"].as_str(), doc["exit_status"].as_i64()),
        (Some("usage"), Some(2))
    );
    // Without --json, nothing on stdout.
    assert!(cli(&fx.path, &["sweep", "--bogus"]).stdout.is_empty());
}

#[test]
fn a_missing_file_in_a_shared_directory_is_does_not_exist_not_an_os_error() {
    let fx = Fixture::new();
    let shared = fx.dir.path().join("tmp");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let out = cli(&shared.join("x.db"), &["check"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!err.contains("os error"), "{err}");
    assert!(!shared.join("x.db").exists());
}

#[test]
fn busy_timeout_is_used_and_the_busy_message_names_the_flag() {
    let fx = Fixture::new();
    drop(fx.store());
    let holder = rusqlite::Connection::open(&fx.path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = cli(&fx.path, &["sweep", "--busy-timeout", "200ms", "--json"]);
    holder.execute_batch("COMMIT").unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(json_error(&out)["error"], "busy");
    let err = stderr(&out);
    assert!(err.contains("(200ms)"), "{err}");
    assert!(err.contains("--busy-timeout"), "{err}");
    let bad = cli(&fx.path, &["stats", "--busy-timeout", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        cli(&fx.path, &["check", "--busy-timeout", "1s"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = cli_raw(&["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for word in ["oauth-state-store", "sweep", "older-than", "busy-timeout"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    assert_eq!(cli_raw(&["completions", "cmd"], &[]).status.code(), Some(2));
}

#[test]
fn help_names_the_variable_the_resolved_default_and_the_exit_statuses() {
    let home = "/home/someone";
    let out = cli_raw(&["--help"], &[("HOME", home)]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    assert!(help.contains("[env: OAUTH_STATE_DB]"), "{help}");
    assert!(
        help.contains("[default: /home/someone/.local/state/oauth-state-store/flows.db]"),
        "{help}"
    );
    for status in [
        "0  success",
        "1  a problem found",
        "2  a usage error",
        "3  the command could not run",
    ] {
        assert!(help.contains(status), "{status}: {help}");
    }
    let env = cli_raw(&["sweep", "--help"], &[("OAUTH_STATE_DB", "/srv/flows.db")]);
    assert!(
        stdout(&env).contains("[default: /srv/flows.db]"),
        "{}",
        stdout(&env)
    );
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

#[test]
fn durations_take_weeks_refuse_zero_and_json_times_are_integers() {
    let fx = Fixture::new();
    drop(fx.store());
    let zero = cli(&fx.path, &["sweep", "--older-than", "0s"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(
        stderr(&zero).contains("must be positive"),
        "{}",
        stderr(&zero)
    );
    let doc = json(&cli(&fx.path, &["sweep", "--older-than", "2w", "--json"]));
    assert_eq!(doc["older_than_ms"], 14 * 24 * HOUR_MS);
    // Nothing to remove: no batch, and so no batch time either.
    assert_eq!(
        (&doc["batches"], &doc["longest_batch_us"]),
        (&Value::from(0), &Value::from(0))
    );
    assert!(doc.get("longest_batch_ms").is_none());

    let (p, _) = populate(&fx);
    drop(p);
    let doc = json(&cli(&fx.path, &["sweep", "--json"]));
    assert!(doc["batches"].as_u64().unwrap() > 0);
    assert!(doc["longest_batch_us"].is_u64(), "{doc}");
}

#[test]
fn a_long_sweep_prints_no_progress_when_stderr_is_not_a_terminal() {
    const EXPIRED: u64 = 1_000;
    let fx = Fixture::new();
    {
        let store = StoreOptions::default()
            .clock(ManualClock::new(SystemClock.now_ms() - 2 * HOUR_MS))
            .open(&fx.path)
            .unwrap();
        for _ in 0..EXPIRED {
            store.begin(BeginRequest::new(SERVERS[0])).unwrap();
        }
    }
    // One row a batch: the sweep lasts far longer than the moment before progress is drawn.
    let human = cli(&fx.path, &["sweep", "--batch-size", "1", "--vacuum"]);
    assert_eq!(human.status.code(), Some(0), "{}", stderr(&human));
    assert!(human.stderr.is_empty(), "{}", stderr(&human));
    assert!(stdout(&human).starts_with(&format!("removed {EXPIRED} rows in {EXPIRED} batches")));
    let store = StoreOptions::default()
        .clock(ManualClock::new(SystemClock.now_ms() - 2 * HOUR_MS))
        .open(&fx.path)
        .unwrap();
    for _ in 0..EXPIRED {
        store.begin(BeginRequest::new(SERVERS[1])).unwrap();
    }
    drop(store);
    let out = cli(&fx.path, &["sweep", "--batch-size", "1", "--json"]);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    assert_eq!(json(&out)["total"], EXPIRED);
}
