//! The probe: asking whoever answers on a port whether it is a listener on the same store.
//!
//! Every listener answers `GET` [`PROBE_PATH`] with three lines: [`PROBE_MARKER`], its store's
//! `store_id`, and `pid <its process id>`. A listener whose every slot is busy answering says
//! the same in its `503`, so a busy listener is never taken for another program.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::error::PortHolder;

/// The path on which every callback listener answers its store's `store_id`, so that another
/// process can tell that a busy port is held by a listener on the same file.
pub const PROBE_PATH: &str = "/.well-known/oauth-state-store";

/// The first line of the probe's answer; the second is the `store_id`.
pub(crate) const PROBE_MARKER: &str = "oauth-state-store callback listener";

/// The probe's answer body for `store_id`: the marker, the store id, this process's id.
pub(crate) fn probe_body(store_id: &str) -> String {
    let mut body = String::from(PROBE_MARKER);
    body.push('\n');
    body.push_str(store_id);
    body.push_str("\npid ");
    body.push_str(&std::process::id().to_string());
    body
}

pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
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
            // Reset after (part of) an answer: judge what arrived.
            Err(_) => break,
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
    // 200: the probe's answer; 503: a listener too busy to serve, saying who it is.
    if !matches!(resp.code, Some(200 | 503)) {
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
        let busy = format!(
            "HTTP/1.1 503 Service Unavailable\r\n\r\n{}",
            probe_body("abc")
        );
        assert_eq!(classify(busy.as_bytes(), "abc"), Probe::SameStore);
        assert_eq!(
            classify(b"HTTP/1.1 503 Service Unavailable\r\n\r\nbusy", "abc"),
            Probe::Other,
            "a foreign server's 503 is another program"
        );
    }

    #[test]
    fn refused_port_is_free() {
        let l = std::net::TcpListener::bind(loopback(0)).unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        assert_eq!(probe(port, "abc", Duration::from_millis(200)), Probe::Free);
    }
}
