//! A tiny HTTP/1.1 client on `std::net::TcpStream` for the listener tests (the "browser"); the
//! command line's tests include it by path.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// A parsed answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// `GET target` with a correct Host header.
pub fn get(port: u16, target: &str) -> Reply {
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: test\r\nConnection: close\r\n\r\n"
    );
    raw(port, req.as_bytes())
}

/// Sends `bytes` as they are and reads the whole answer.
pub fn raw(port: u16, bytes: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr(port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(bytes).expect("send");
    read_reply(&mut s)
}

/// Reads an answer until the server closes.
pub fn read_reply(s: &mut TcpStream) -> Reply {
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read answer");
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let at = match resp.parse(&buf).expect("HTTP answer") {
        httparse::Status::Complete(at) => at,
        httparse::Status::Partial => panic!("partial answer: {:?}", String::from_utf8_lossy(&buf)),
    };
    Reply {
        status: resp.code.expect("status"),
        headers: resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&buf[at..]).into_owned(),
    }
}

/// Percent-encodes a query value.
pub fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind(addr(0)).unwrap();
    l.local_addr().unwrap().port()
}

/// Why a request got no complete answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Nobody listened: the connection was refused.
    Refused,
    /// Connected, but the answer was reset, cut short or never came.
    Lost(String),
}

/// `GET target` like [`get`], but a refused connection or a broken answer is a value, not a
/// panic (for the tests that count them).
pub fn try_get(port: u16, target: &str) -> Result<Reply, Failure> {
    let mut s = match TcpStream::connect_timeout(&addr(port), Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(Failure::Refused)
        }
        Err(e) => return Err(Failure::Lost(format!("connect: {e}"))),
    };
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: test\r\nConnection: close\r\n\r\n"
    );
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes())
        .map_err(|e| Failure::Lost(format!("send: {e}")))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .map_err(|e| Failure::Lost(format!("read after {} bytes: {e}", buf.len())))?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let at = match resp.parse(&buf) {
        Ok(httparse::Status::Complete(at)) => at,
        _ => {
            return Err(Failure::Lost(format!(
                "{} bytes, no complete head",
                buf.len()
            )))
        }
    };
    let reply = Reply {
        status: resp.code.unwrap_or(0),
        headers: resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&buf[at..]).into_owned(),
    };
    let announced = reply.header("Content-Length").and_then(|v| v.parse().ok());
    if announced != Some(buf.len() - at) {
        return Err(Failure::Lost(format!(
            "body of {} bytes, {announced:?} announced",
            buf.len() - at
        )));
    }
    Ok(reply)
}
