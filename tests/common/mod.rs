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

/// Every row of the table `flows`, each column `quote()`d, in id order: compare two dumps
/// to prove that nothing changed. Read through a read-only connection of its own.
pub fn dump_flows(path: &std::path::Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open for dump");
    let mut stmt = conn
        .prepare("SELECT * FROM flows ORDER BY id")
        .expect("prepare dump");
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            let mut line = String::new();
            for i in 0..n {
                let v: rusqlite::types::Value = r.get(i)?;
                line.push_str(&format!("{v:?}|"));
            }
            Ok(line)
        })
        .expect("query dump");
    rows.collect::<rusqlite::Result<Vec<_>>>().expect("dump")
}

/// Fails if `e`'s `Display`, `Debug` or any `source()` text contains one of `secrets`.
pub fn assert_error_clean(e: &oauth_state_store::Error, secrets: &[&str]) {
    use std::error::Error as _;
    let mut texts = vec![format!("{e:?}"), e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    for text in &texts {
        for s in secrets {
            assert!(
                !s.is_empty() && !text.contains(s),
                "an error leaks a secret: {text}"
            );
        }
    }
}

/// Whether `needle` occurs anywhere in the file at `path` (false when there is no file).
pub fn file_contains(path: &std::path::Path, needle: &[u8]) -> bool {
    match std::fs::read(path) {
        Ok(bytes) => bytes.windows(needle.len()).any(|w| w == needle),
        Err(_) => false,
    }
}

/// Whether this process runs as root (where the kernel's access checks let everything pass).
pub fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}
