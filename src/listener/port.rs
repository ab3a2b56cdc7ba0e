//! Port ownership: binding `127.0.0.1:<port>`, and asking whoever holds a busy port whether it
//! is a listener on the same store (the probe).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::error::{Error, PortHolder, Result};

/// The path on which every callback listener answers its store's `store_id`, so that another
/// process can tell that a busy port is held by a listener on the same file.
pub const PROBE_PATH: &str = "/.well-known/oauth-state-store";

/// The first line of the probe's answer; the second is the `store_id`.
pub(crate) const PROBE_MARKER: &str = "oauth-state-store callback listener";

/// The probe's answer body for `store_id`.
pub(crate) fn probe_body(store_id: &str) -> String {
    let mut body = String::from(PROBE_MARKER);
    body.push('\n');
    body.push_str(store_id);
    body
}

pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Binds `127.0.0.1:port`. `Ok(None)`: the port is in use.
pub(crate) fn try_bind(port: u16) -> Result<Option<TcpListener>> {
    match TcpListener::bind(loopback(port)) {
        Ok(l) => Ok(Some(l)),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(None),
        Err(source) => Err(Error::Listener {
            port,
            action: "bind the port",
            source,
        }),
    }
}

/// What answered on a busy port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// A listener on the store with the id we asked about.
    SameStore,
    /// A listener of this crate on another store.
    OtherStore,
    /// Something that answered, but not as a listener of this crate, or not in time.
    Other,
    /// Nothing listens there (any more).
    Free,
    /// The connection was accepted and then closed or reset without an answer: a listener
    /// stopping, most likely. Ask again.
    NoAnswer,
}

impl Probe {
    pub(crate) fn holder(self) -> PortHolder {
        match self {
            Probe::SameStore => PortHolder::SameStore,
            Probe::OtherStore => PortHolder::OtherStore,
            _ => PortHolder::Other,
        }
    }
}

/// Asks `127.0.0.1:port` for its store id, within `timeout`.
pub(crate) fn probe(port: u16, store_id: &str, timeout: Duration) -> Probe {
    let deadline = Instant::now() + timeout;
    let mut stream = match TcpStream::connect_timeout(&loopback(port), timeout) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Probe::Free,
        Err(e) if e.kind() == io::ErrorKind::TimedOut => return Probe::Other,
        Err(_) => return Probe::NoAnswer,
    };
    let mut request = String::from("GET ");
    request.push_str(PROBE_PATH);
    request.push_str(" HTTP/1.1\r\nHost: 127.0.0.1:");
    request.push_str(&port.to_string());
    request.push_str("\r\nConnection: close\r\n\r\n");
    let _ = stream.set_write_timeout(Some(timeout));
    if stream.write_all(request.as_bytes()).is_err() {
        return Probe::NoAnswer;
    }
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Probe::Other;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Probe::Other
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                return if buf.is_empty() {
                    Probe::NoAnswer
                } else {
                    Probe::Other
                }
            }
        }
        if buf.len() > 16 * 1024 {
            return Probe::Other;
        }
    }
    if buf.is_empty() {
        return Probe::NoAnswer;
    }
    classify(&buf, store_id)
}

fn classify(answer: &[u8], store_id: &str) -> Probe {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(at)) = resp.parse(answer) else {
        return Probe::Other;
    };
    if resp.code != Some(200) {
        return Probe::Other;
    }
    let body = String::from_utf8_lossy(&answer[at..]);
    let mut lines = body.lines();
    if lines.next() != Some(PROBE_MARKER) {
        return Probe::Other;
    }
    match lines.next() {
        Some(id) if id == store_id => Probe::SameStore,
        Some(_) => Probe::OtherStore,
        None => Probe::Other,
    }
}

/// Binds the port, or says who holds it. A holder that is going away (the probe finds the
/// port free, or its connection dropped unanswered) gets a few more bind attempts.
pub(crate) fn bind_or_probe(
    port: u16,
    store_id: &str,
    timeout: Duration,
) -> Result<std::result::Result<TcpListener, Probe>> {
    for _ in 0..5 {
        if let Some(socket) = try_bind(port)? {
            return Ok(Ok(socket));
        }
        match probe(port, store_id, timeout) {
            Probe::Free | Probe::NoAnswer => std::thread::sleep(Duration::from_millis(20)),
            settled => return Ok(Err(settled)),
        }
    }
    Ok(Err(Probe::Other))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_answers() {
        let ok = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
            probe_body("abc")
        );
        assert_eq!(classify(ok.as_bytes(), "abc"), Probe::SameStore);
        assert_eq!(classify(ok.as_bytes(), "xyz"), Probe::OtherStore);
        assert_eq!(
            classify(b"HTTP/1.1 200 OK\r\n\r\nhello", "abc"),
            Probe::Other
        );
        assert_eq!(classify(b"SSH-2.0-OpenSSH\r\n", "abc"), Probe::Other);
        assert_eq!(
            classify(b"HTTP/1.1 404 Not Found\r\n\r\n", "abc"),
            Probe::Other
        );
    }

    #[test]
    fn refused_port_is_free() {
        let l = TcpListener::bind(loopback(0)).unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        assert_eq!(probe(port, "abc", Duration::from_millis(200)), Probe::Free);
    }
}
