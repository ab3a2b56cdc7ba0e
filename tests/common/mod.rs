//! Shared fixtures for the integration tests: each owns its `TempDir`.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use oauth_state_store::{ManualClock, Store, StoreOptions};
use tempfile::TempDir;

/// A private directory (0700) with a database path in it and a manual clock.
pub struct Fixture {
    pub dir: TempDir,
    pub path: PathBuf,
    pub clock: ManualClock,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("oauth-state-store-test")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("flows.db");
        Fixture {
            dir,
            path,
            clock: ManualClock::new(1_700_000_000_000),
        }
    }

    /// Options with this fixture's clock.
    pub fn options(&self) -> StoreOptions {
        StoreOptions::default().clock(self.clock.clone())
    }

    /// A store on this fixture's file with its clock.
    pub fn store(&self) -> Store {
        self.options().open(&self.path).expect("open store")
    }
}

/// Runs the `#[ignore]`d test `name` of the current test binary as a child process, with
/// `env` set and `stdin` written to it (secrets travel on stdin, never in argv).
pub fn run_child(name: &str, env: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = spawn_child(name, env);
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("child output")
}

/// Spawns the `#[ignore]`d test `name` of the current test binary with piped stdio.
pub fn spawn_child(name: &str, env: &[(&str, &str)]) -> std::process::Child {
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child")
}

/// The lines a child printed that start with `prefix`, with the prefix removed.
pub fn lines_with(output: &Output, prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(prefix).map(str::to_owned))
        .collect()
}

/// Whether the heavy variants of the reliability tests run (`OSS_HEAVY=1`).
pub fn heavy() -> bool {
    std::env::var("OSS_HEAVY").is_ok_and(|v| v == "1")
}

/// `heavy` when `OSS_HEAVY=1`, else `light`.
pub fn count(light: usize, heavy_count: usize) -> usize {
    if heavy() {
        heavy_count
    } else {
        light
    }
}

/// Forwards every line `child` prints on stdout to `tx` as `(id, line)`, from a thread, until
/// the child closes its stdout.
pub fn forward_lines(
    id: usize,
    child: &mut std::process::Child,
    tx: std::sync::mpsc::Sender<(usize, String)>,
) -> std::thread::JoinHandle<()> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("child stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((id, line)).is_err() {
                break;
            }
        }
    })
}
