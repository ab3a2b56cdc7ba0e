//! Shared fixtures for the integration tests: each owns its `TempDir`. The command line's
//! tests (`cli/tests/`) include this file by path, so each fixture is written once.
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

/// The environment variable that hands [`killed_writer`]'s child its database.
const WRITER_DB: &str = "OSS_TEST_WRITER_DB";

/// Leaves `path` as an application killed mid-work leaves it: a real child process (the
/// `#[ignore]`d test `child`, which calls [`writer_child`]) opens the store, begins `flows`
/// flows, says so, and is killed (SIGKILL) while it holds the file open: its commits are in
/// the `-wal`, which nobody merged into the file.
pub fn killed_writer(child: &str, path: &std::path::Path, flows: usize) {
    use std::io::BufRead;
    let mut c = spawn_child(
        child,
        &[
            (WRITER_DB, path.to_str().expect("a UTF-8 path")),
            ("OSS_TEST_WRITER_FLOWS", &flows.to_string()),
        ],
    );
    let stdout = c.stdout.take().expect("stdout");
    let ready = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("WRITER READY"));
    assert!(ready, "the writer never got ready");
    c.kill().expect("kill the writer");
    c.wait().expect("reap the writer");
    let wal = std::fs::metadata(format!("{}-wal", path.display())).expect("a -wal left");
    assert!(wal.len() > 0, "the killed writer left an empty -wal");
}

/// The child of [`killed_writer`]: begins the flows, says `WRITER READY`, and waits to be
/// killed. Does nothing outside such a child.
pub fn writer_child() {
    let Some(path) = std::env::var_os(WRITER_DB) else {
        println!("a child of killed_writer only");
        return;
    };
    let flows: usize = std::env::var("OSS_TEST_WRITER_FLOWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let store = Store::open(PathBuf::from(path)).expect("open");
    for _ in 0..flows {
        store
            .begin(oauth_state_store::BeginRequest::new(
                "https://mcp.example.com",
            ))
            .expect("begin");
    }
    println!("WRITER READY");
    std::thread::sleep(std::time::Duration::from_secs(120));
}

/// The bytes and modification time of `path` (and of its `-wal`), and the names of the files
/// beside it: what a look must leave as it found it. The `-shm` is SQLite's shared index of
/// the `-wal`, which every reader writes its read mark into: only its presence is compared.
pub fn file_state(path: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut state = Vec::new();
    for entry in std::fs::read_dir(path.parent().expect("a directory")).expect("read dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with("-shm") {
            state.push(name);
            continue;
        }
        let meta = entry.metadata().expect("metadata");
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        let sum: u64 = bytes
            .iter()
            .enumerate()
            .fold(0xcbf2_9ce4_8422_2325, |h, (i, b)| {
                (h ^ u64::from(*b) ^ i as u64).wrapping_mul(0x100_0000_01b3)
            });
        state.push(format!(
            "{name} {} bytes, sum {sum:x}, mtime {}.{}",
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec()
        ));
    }
    state.sort();
    state
}
