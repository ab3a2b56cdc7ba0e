//! A loopback TCP proxy between a store and the test PostgreSQL that can lose a connection at
//! a commit: either after the server has committed (its reply is swallowed) or before the
//! commit reaches the server (the server then rolls the transaction back). A commit is a
//! simple-query `COMMIT`, or the `Sync` that ends an autocommit statement run with the
//! extended protocol (`Bind`/`Execute`/`Sync`: the server commits at the `Sync`).
//!
//! It reads the client's side of the wire protocol message by message (the startup message,
//! then a type byte and a length per message; `sslmode=disable`, so no TLS) and copies the
//! server's side through untouched until a fault fires. A fault is armed once and fires at the
//! next commit on any connection. It also counts the round trips the clients started (each
//! simple `Query` and each `Sync`).
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

/// What the proxy does at the next commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Nothing: every byte passes.
    None = 0,
    /// Forward the COMMIT, wait for the server's whole reply (it has committed), then close
    /// the client's connection without passing the reply on.
    DropAfterCommit = 1,
    /// Close both connections instead of forwarding the COMMIT: the server never sees it.
    DropBeforeCommit = 2,
}

/// A running proxy on 127.0.0.1; its threads end with the test process.
pub struct Proxy {
    port: u16,
    armed: Arc<AtomicU8>,
    fired: Arc<AtomicUsize>,
    round_trips: Arc<AtomicUsize>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to
    /// `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicU8::new(Fault::None as u8));
        let fired = Arc::new(AtomicUsize::new(0));
        let round_trips = Arc::new(AtomicUsize::new(0));
        let (a, f, rt) = (armed.clone(), fired.clone(), round_trips.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let (a, f, rt) = (a.clone(), f.clone(), rt.clone());
                thread::spawn(move || relay(client, server, a, f, rt));
            }
        });
        Proxy {
            port,
            armed,
            fired,
            round_trips,
        }
    }

    /// The port the store connects to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `url` (a URL of the test cluster) pointed at the proxy instead.
    pub fn url(&self, url: &str, server_port: u16) -> String {
        url.replacen(
            &format!("127.0.0.1:{server_port}/"),
            &format!("127.0.0.1:{}/", self.port),
            1,
        )
    }

    /// How many round trips clients started through the proxy so far (simple queries and
    /// `Sync`s).
    pub fn round_trips(&self) -> usize {
        self.round_trips.load(Ordering::SeqCst)
    }

    /// Arms `fault` for the next commit.
    pub fn arm(&self, fault: Fault) {
        self.armed.store(fault as u8, Ordering::SeqCst);
    }

    /// How many faults have fired so far.
    pub fn fired(&self) -> usize {
        self.fired.load(Ordering::SeqCst)
    }
}

/// Reads exactly `n` bytes.
fn read_n(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; n];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Is this simple-query body (SQL text, NUL-terminated) a COMMIT statement?
fn is_commit(body: &[u8]) -> bool {
    let sql = String::from_utf8_lossy(body);
    sql.trim_end_matches('\0')
        .split(';')
        .any(|s| s.trim().eq_ignore_ascii_case("COMMIT"))
}

fn relay(
    mut client: TcpStream,
    server: TcpStream,
    armed: Arc<AtomicU8>,
    fired: Arc<AtomicUsize>,
    round_trips: Arc<AtomicUsize>,
) {
    let swallow = Arc::new(AtomicBool::new(false));
    // Server to client: a plain copy until `swallow`; then read to the ReadyForQuery that
    // ends the COMMIT's reply and close the client's side.
    {
        let (mut from, mut to) = (server.try_clone().unwrap(), client.try_clone().unwrap());
        let swallow = swallow.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                if swallow.load(Ordering::SeqCst) {
                    // Message by message: the reply starts at a boundary, since the client
                    // sent the COMMIT only after it had read every earlier reply.
                    while let Ok(head) = read_n(&mut from, 5) {
                        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
                        if read_n(&mut from, (len as usize).saturating_sub(4)).is_err()
                            || head[0] == b'Z'
                        {
                            break;
                        }
                    }
                    let _ = to.shutdown(Shutdown::Both);
                    let _ = from.shutdown(Shutdown::Both);
                    return;
                }
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if swallow.load(Ordering::SeqCst) {
                            // Set while this read waited: these bytes are the reply.
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                            return;
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Both);
        });
    }
    // Client to server, message by message.
    let mut server = server;
    let close = |c: &TcpStream, s: &TcpStream| {
        let _ = c.shutdown(Shutdown::Both);
        let _ = s.shutdown(Shutdown::Both);
    };
    let Ok(len) = read_n(&mut client, 4) else {
        return close(&client, &server);
    };
    let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let Ok(startup) = read_n(&mut client, n.saturating_sub(4)) else {
        return close(&client, &server);
    };
    if server
        .write_all(&len)
        .and_then(|()| server.write_all(&startup))
        .is_err()
    {
        return close(&client, &server);
    }
    // An `Execute` since the last `Sync`: that `Sync` commits an autocommit statement.
    let mut executed = false;
    while let Ok(head) = read_n(&mut client, 5) {
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let Ok(body) = read_n(&mut client, len.saturating_sub(4)) else {
            break;
        };
        if head[0] == b'Q' || head[0] == b'S' {
            round_trips.fetch_add(1, Ordering::SeqCst);
        }
        let commits = match head[0] {
            b'Q' => is_commit(&body),
            b'S' => std::mem::take(&mut executed),
            b'E' => {
                executed = true;
                false
            }
            _ => false,
        };
        if commits {
            match armed.swap(Fault::None as u8, Ordering::SeqCst) {
                x if x == Fault::DropBeforeCommit as u8 => {
                    fired.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                x if x == Fault::DropAfterCommit as u8 => {
                    fired.fetch_add(1, Ordering::SeqCst);
                    swallow.store(true, Ordering::SeqCst);
                }
                _ => {}
            }
        }
        if server
            .write_all(&head)
            .and_then(|()| server.write_all(&body))
            .is_err()
        {
            break;
        }
    }
    if !swallow.load(Ordering::SeqCst) {
        close(&client, &server);
    }
}
