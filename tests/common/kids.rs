//! Child processes that report by lines: each is the current test binary re-run as one of its
//! `#[ignore]`d tests, prints `LOADED` when it is ready, waits for `go` on stdin, and prints a
//! `RESULT` line. The parent starts them together and says go to all at once.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// One child process and the lines it printed.
pub struct Kid {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Kid {
    /// Starts the `#[ignore]`d test `name` of this binary with `env`.
    pub fn spawn(name: &str, env: &[(&str, String)]) -> Kid {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([name, "--exact", "--ignored", "--nocapture", "-q"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn a child");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Kid {
            child,
            stdin,
            lines,
        }
    }

    /// The next line starting with `prefix` (the prefix removed), within `limit`.
    pub fn line(&self, prefix: &str, limit: Duration) -> Option<String> {
        let until = Instant::now() + limit;
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Some(rest.trim().to_owned());
            }
        }
    }

    /// Writes a line to the child's stdin (a secret travels this way, never in argv).
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap();
    }
}

/// Waits until every child printed `LOADED`.
pub fn all_loaded(kids: &[Kid]) {
    for kid in kids {
        assert!(
            kid.line("LOADED", Duration::from_secs(60)).is_some(),
            "a child did not load"
        );
    }
}

/// Says go to every child at once; returns when it was said.
pub fn go(kids: &mut [Kid]) -> Instant {
    let at = Instant::now();
    for kid in kids.iter_mut() {
        kid.send("go");
    }
    at
}

/// Every child's `RESULT` line (`None` for one that died first), then waits for their exits.
pub fn results(kids: Vec<Kid>, limit: Duration) -> Vec<Option<String>> {
    let out = kids
        .iter()
        .map(|k| k.line("RESULT ", limit))
        .collect::<Vec<_>>();
    for mut kid in kids {
        drop(kid.stdin.take());
        let _ = kid.child.kill();
        let _ = kid.child.wait();
    }
    out
}

/// In a child: prints `LOADED`, then waits for the parent's `go`.
pub fn wait_for_go(lines: &mut impl Iterator<Item = String>) {
    println!("LOADED");
    let go = lines.next().expect("the parent's go");
    assert_eq!(go, "go");
}
