//! One HTTP/1.x exchange on an accepted connection: read a bounded request head before a
//! deadline, parse it with `httparse`, write one response, close.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::callback::pages::{self, Response};

/// The parts of a request head the listener looks at.
#[derive(Debug)]
pub(crate) struct Head {
    pub method: String,
    pub target: String,
    pub host: Option<String>,
    /// A body was announced (`Content-Length` other than 0, or `Transfer-Encoding`).
    pub has_body: bool,
}

/// Why no request head could be read.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// Answer with this response.
    Answer(Response),
    /// The peer went away or broke the connection: nothing to answer.
    Gone,
}

const MAX_HEADERS: usize = 32;

/// Reads one request head of at most `max` bytes, within `timeout` in total (not per read, so a
/// client trickling a byte at a time is cut off too).
pub(crate) fn read_head(
    stream: &mut TcpStream,
    max: usize,
    timeout: Duration,
) -> Result<Head, ReadFailure> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; max];
    let mut len = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadFailure::Answer(pages::plain(
                408,
                "Request timeout: the request head did not arrive in time.",
            )));
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return Err(ReadFailure::Gone);
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) => return Err(ReadFailure::Gone),
            Ok(n) => len += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(ReadFailure::Gone),
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => return Ok(head_of(&req)),
            Ok(httparse::Status::Partial) if len == max => {
                let line_done = buf[..len].windows(2).any(|w| w == b"\r\n");
                return Err(ReadFailure::Answer(if line_done {
                    pages::plain(431, "Request header fields too large.")
                } else {
                    pages::plain(414, "Request URI too long.")
                }));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ReadFailure::Answer(pages::plain(
                    431,
                    "Too many request header fields.",
                )))
            }
            Err(_) => {
                return Err(ReadFailure::Answer(pages::plain(
                    400,
                    "Malformed HTTP request.",
                )))
            }
        }
    }
}

fn head_of(req: &httparse::Request<'_, '_>) -> Head {
    let mut host = None;
    let mut has_body = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            host = Some(String::from_utf8_lossy(h.value).trim().to_owned());
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            has_body = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            has_body |= String::from_utf8_lossy(h.value).trim() != "0";
        }
    }
    Head {
        method: req.method.unwrap_or_default().to_owned(),
        target: req.path.unwrap_or_default().to_owned(),
        host,
        has_body,
    }
}

/// Writes `response` with the listener's fixed security headers and closes the connection,
/// draining (briefly, boundedly) what the client still sends so the close does not reset it
/// before it has read the answer.
pub(crate) fn respond(stream: &mut TcpStream, response: &Response, write_timeout: Duration) {
    let mut out = String::with_capacity(response.body.len() + 512);
    out.push_str("HTTP/1.1 ");
    out.push_str(&response.status.to_string());
    out.push(' ');
    out.push_str(pages::reason(response.status));
    out.push_str("\r\n");
    for (k, v) in pages::headers(response) {
        push_header(&mut out, k, &v);
    }
    push_header(&mut out, "Connection", "close");
    push_header(&mut out, "Content-Length", &response.body.len().to_string());
    out.push_str("\r\n");
    out.push_str(&response.body);
    let _ = stream.set_write_timeout(Some(write_timeout));
    if stream.write_all(out.as_bytes()).is_err() {
        return;
    }
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    drain(stream, write_timeout.min(Duration::from_millis(250)));
}

fn push_header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.push_str(value);
    out.push_str("\r\n");
}

/// Reads and discards up to 64 KiB for at most `limit`, until the client closes.
fn drain(stream: &mut TcpStream, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut sink = [0u8; 4096];
    let mut total = 0;
    while total < 64 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}
