//! The parent's handle on a bench child process (this bench binary run again with
//! `--child ROLE ...`) and the report a child prints when its stdin closes: one line a value,
//! `KEY n...`, with `LAT` and `LAT2` carrying latencies in µs.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// A running child, its stdin and stdout piped.
pub struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    /// Starts `cmd` with piped stdin and stdout (stderr inherited).
    pub fn start(mut cmd: Command) -> Worker {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Worker {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends one line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write child");
        stdin.flush().expect("flush child");
    }

    /// Sends the payload lines and `END`, then waits for `READY`.
    pub fn load(&mut self, payload: &[String]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let mut buf = String::with_capacity(payload.len() * 45 + 4);
        for line in payload {
            buf.push_str(line);
            buf.push('\n');
        }
        buf.push_str("END\n");
        stdin.write_all(buf.as_bytes()).expect("write child");
        stdin.flush().expect("flush child");
        assert_eq!(self.line(), "READY");
    }

    /// The child's next line, without its line end ("" at the end of its output).
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read child");
        line.trim_end().to_owned()
    }

    /// Closes the child's stdin, reads its report to its end and waits for it.
    pub fn finish(mut self) -> Report {
        drop(self.stdin.take());
        let mut report = Report::default();
        loop {
            let line = self.line();
            if line.is_empty() {
                break;
            }
            let (key, rest) = line.split_once(' ').unwrap_or((&line, ""));
            let nums = rest.split_whitespace().map(|n| n.parse::<u64>().unwrap());
            match key {
                "LAT" => report.lat_us.extend(nums),
                "LAT2" => report.lat2_us.extend(nums),
                _ => report.values.push((key.to_owned(), nums.collect())),
            }
        }
        let status = self.child.wait().expect("wait child");
        assert!(status.success(), "child failed: {status}");
        report
    }
}

/// What a child reported.
#[derive(Default)]
pub struct Report {
    /// Latencies under `LAT`, µs.
    pub lat_us: Vec<u64>,
    /// Latencies under `LAT2`, µs.
    pub lat2_us: Vec<u64>,
    values: Vec<(String, Vec<u64>)>,
}

impl Report {
    /// The first value the child printed under `key` (0 when absent).
    pub fn get(&self, key: &str) -> u64 {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, v)| v[0])
    }
}
