//! The `oauth-state-store` binary on real files populated through the library.
//!
//! The binary reads the system clock, so rows are made with a [`ManualClock`] set relative to
//! it: "expired" rows expired an hour ago, "live" rows expire in an hour.

#[path = "../../tests/common/mod.rs"]
mod common;

#[path = "cli/inspect.rs"]
mod inspect;
#[path = "cli/open_path.rs"]
mod open_path;
#[path = "cli/sweep.rs"]
mod sweep;
#[path = "cli/tokens.rs"]
mod tokens;
#[path = "cli/usage.rs"]
mod usage;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use common::Fixture;
use oauth_state_store::{
    BeginRequest, Clock, CodeVerifier, ManualClock, State, Status, Store, StoreOptions, SystemClock,
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
