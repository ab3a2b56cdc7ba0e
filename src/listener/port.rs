//! Port ownership: binding `127.0.0.1:<port>`, the one-per-port primary token, and claiming a
//! port (bind, then ask whoever already listens there, before listening ourselves).
//!
//! On Linux the socket is bound with `SO_REUSEPORT`, so every process *of the same user* with
//! an open wait can listen on the port at once and the kernel spreads connections over them:
//! when one exits, the others are already listening and no callback is refused. The kernel
//! lets only sockets of the same user share a port, and a program that bound without
//! `SO_REUSEPORT` still makes our bind fail, so a port held by anything else stays an error.
//! A socket that is bound but not listening receives no connections, which lets a claim ask
//! the current listeners who they are before it joins them.
//!
//! A bind can also fail where nobody listens: a program that listened without `SO_REUSEADDR`
//! and exited leaves its closed connections in TIME_WAIT, and the kernel refuses the port to
//! everyone until they end (60 s on Linux). The kernel's socket table tells that apart from a
//! port a program holds ([`sockets`]), and the claim reports it as [`Claim::Lingering`].

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::{self as sys, AddressFamily, SocketFlags, SocketType};

use super::probe::{self, Probe};
use super::sockets;
use crate::error::{Error, Result};

/// How many connections the kernel queues for a listener before it accepts them.
const BACKLOG: i32 = 128;

/// A socket bound to `127.0.0.1:<port>` that does not listen yet.
#[derive(Debug)]
pub(crate) struct Bound {
    fd: OwnedFd,
    port: u16,
}

impl Bound {
    /// The bound port (the one the system chose, when asked for port 0).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Starts listening: from now on the kernel hands this socket its share of connections.
    ///
    /// # Errors
    /// [`Error::Listener`].
    pub(crate) fn listen(self) -> Result<TcpListener> {
        sys::listen(&self.fd, BACKLOG).map_err(|e| Error::Listener {
            port: self.port,
            action: "listen on the port",
            source: e.into(),
        })?;
        Ok(TcpListener::from(self.fd))
    }
}

/// Binds `127.0.0.1:port` without listening. `Ok(None)`: the port is held by a socket we may
/// not share it with.
///
/// # Errors
/// [`Error::Listener`] for any other failure.
pub(crate) fn bind(port: u16) -> Result<Option<Bound>> {
    let failed = |action, e: rustix::io::Errno| Error::Listener {
        port,
        action,
        source: e.into(),
    };
    let fd = sys::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| failed("open a socket", e))?;
    sys::sockopt::set_socket_reuseaddr(&fd, true).map_err(|e| failed("set SO_REUSEADDR", e))?;
    #[cfg(target_os = "linux")]
    sys::sockopt::set_socket_reuseport(&fd, true).map_err(|e| failed("set SO_REUSEPORT", e))?;
    match sys::bind(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)) {
        Ok(()) => {}
        Err(rustix::io::Errno::ADDRINUSE) => return Ok(None),
        Err(e) => return Err(failed("bind the port", e)),
    }
    let port = match sys::getsockname(&fd).map(SocketAddrV4::try_from) {
        Ok(Ok(addr)) => addr.port(),
        _ => {
            return Err(Error::Listener {
                port,
                action: "read its bound address",
                source: io::ErrorKind::InvalidData.into(),
            })
        }
    };
    Ok(Some(Bound { fd, port }))
}

/// Whether a bind of `127.0.0.1:port` is refused right now (`EADDRINUSE`): a cheap look, the
/// socket closed again at once. Any other failure is not a refusal.
pub(crate) fn bind_refused(port: u16) -> bool {
    matches!(bind(port), Ok(None))
}

/// The primary's token for a port: at most one process on the host holds it, and the kernel
/// frees it when that process exits, however it exits. The primary is the listener that keeps
/// serving after its own waits end (until idle); the others serve only while they wait.
#[derive(Debug)]
pub(crate) struct Primary {
    #[cfg(target_os = "linux")]
    _token: Option<std::os::unix::net::UnixListener>,
}

impl Primary {
    /// Takes the token for `port`; `None` when another process holds it.
    ///
    /// On Linux it is an abstract Unix socket named for the port (no file, gone with its
    /// process). Where that cannot be made, or on other systems (where the port itself cannot
    /// be shared, so it decides), every claim gets the token.
    pub(crate) fn take(port: u16) -> Option<Primary> {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            use std::os::unix::net::{SocketAddr, UnixListener};

            let mut name = String::from("oauth-state-store/callback-port/");
            name.push_str(&port.to_string());
            let token = SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| UnixListener::bind_addr(&addr));
            match token {
                Ok(socket) => Some(Primary {
                    _token: Some(socket),
                }),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => None,
                Err(_) => Some(Primary { _token: None }),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = port;
            Some(Primary {})
        }
    }
}

/// What a claim of a port found.
#[derive(Debug)]
pub(crate) enum Claim {
    /// Nobody listens: the port is ours, as its primary when we got the token.
    Alone(Bound, Option<Primary>),
    /// A listener on the same store listens, and we may listen beside it.
    Joinable(Bound, Option<Primary>),
    /// Held by something we cannot listen beside; the probe says what.
    Held(Probe),
    /// Nobody listens, but connections left by a program that closed or exited keep the
    /// kernel from letting anyone bind the port for about this long.
    Lingering(Duration),
}

/// Claims the port, retrying a few times while it is unsettled (see [`claim_once`]); still
/// unsettled after that, the port counts as held by another program.
///
/// # Errors
/// [`Error::Listener`].
pub(crate) fn claim(port: u16, store_id: &str, timeout: Duration) -> Result<Claim> {
    const ATTEMPTS: usize = 5;
    for attempt in 1..=ATTEMPTS {
        if let Some(settled) = claim_once(port, store_id, timeout, attempt == ATTEMPTS)? {
            return Ok(settled);
        }
        std::thread::sleep(UNSETTLED_PAUSE);
    }
    Ok(Claim::Held(Probe::Other))
}

/// How long to let an unsettled port settle before claiming it again.
pub(crate) const UNSETTLED_PAUSE: Duration = Duration::from_millis(20);

/// Binds the port (port 0: a free one) and asks whoever listens there already; or, when the
/// bind fails, asks the holder, and when nobody answers, the kernel's socket table. `Ok(None)`:
/// unsettled, try again shortly. The holder may be going away (the probe finds the port free,
/// or its connection dropped unanswered), or another process may be becoming the primary (the
/// port is free but the token taken); with `last_resort` the latter serves the port without
/// the token.
///
/// # Errors
/// [`Error::Listener`].
pub(crate) fn claim_once(
    port: u16,
    store_id: &str,
    timeout: Duration,
    last_resort: bool,
) -> Result<Option<Claim>> {
    if port == 0 {
        // A port the system picks is nobody else's yet.
        let bound = bind(0)?.ok_or_else(|| Error::Listener {
            port,
            action: "bind a free port",
            source: io::ErrorKind::AddrInUse.into(),
        })?;
        let primary = Primary::take(bound.port());
        return Ok(Some(Claim::Alone(bound, primary)));
    }
    let primary = Primary::take(port);
    let claim = match bind(port)? {
        None => match probe::probe(port, store_id, timeout) {
            Probe::Free => sockets::lingering(port).map(Claim::Lingering),
            Probe::NoAnswer => None,
            settled => Some(Claim::Held(settled)),
        },
        Some(bound) => match probe::probe(port, store_id, timeout) {
            Probe::Free if primary.is_some() || last_resort => Some(Claim::Alone(bound, primary)),
            Probe::Free | Probe::NoAnswer => None,
            Probe::SameStore => Some(Claim::Joinable(bound, primary)),
            settled => Some(Claim::Held(settled)),
        },
    };
    Ok(claim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_socket_gets_no_connection_until_it_listens() {
        let bound = bind(0).unwrap().unwrap();
        let port = bound.port();
        let addr = probe::loopback(port);
        assert!(std::net::TcpStream::connect(addr).is_err());
        let listener = bound.listen().unwrap();
        assert!(std::net::TcpStream::connect(addr).is_ok());
        drop(listener);
    }

    #[test]
    fn a_port_bound_without_sharing_cannot_be_joined() {
        let exclusive = TcpListener::bind(probe::loopback(0)).unwrap();
        let port = exclusive.local_addr().unwrap().port();
        assert!(bind(port).unwrap().is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn one_primary_per_port() {
        let port = bind(0).unwrap().unwrap().port();
        let first = Primary::take(port).expect("nobody holds it");
        assert!(Primary::take(port).is_none());
        drop(first);
        assert!(Primary::take(port).is_some());
    }
}
