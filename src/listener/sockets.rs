//! What the kernel's socket table says about a port that cannot be bound though nothing
//! answers on it (Linux: `/proc/net/tcp` and `/proc/net/tcp6`).
//!
//! A program that listened without `SO_REUSEADDR` and closed its connections first leaves
//! them in TIME_WAIT, for 60 s on Linux, and until they end the kernel refuses every bind of
//! its port, whatever flags the new socket sets. Such connections belong to no process any
//! more (their inode is 0), and the table says when each one ends. A socket that is still
//! some process's (a listener, or a connection it keeps open) holds the port for as long as
//! that process wants: that is a program holding it, not one that left.
//!
//! A socket that is bound but does not listen is not in the table at all: the caller treats
//! a port the table says nothing about as unsettled, as before.

use std::time::Duration;

/// How long a closed connection whose end the table does not give (one still sending its
/// last segments) may keep the port: the length of TIME_WAIT on Linux, which it still has
/// ahead of it. An estimate for the caller's message; the bind is retried either way.
const LINGER_MAX: Duration = Duration::from_secs(60);

/// `st` of a listening socket.
const LISTEN: u8 = 0x0A;
/// `tr` of a connection in TIME_WAIT (or FIN_WAIT2 without its process): `tm->when` is
/// the time until it ends.
const TIMEWAIT_TIMER: u8 = 3;

/// When nothing but connections left by a program that closed or exited keeps
/// `127.0.0.1:<port>` from being bound: about how long until the last of them ends. `None`
/// when a live socket holds the port, when the table shows nothing on it, or off Linux.
pub(crate) fn lingering(port: u16) -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        let ticks = rustix::param::clock_ticks_per_second();
        let mut found = Found::default();
        for (path, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
            // A missing tcp6 (IPv6 off) says nothing; a missing tcp says nothing either.
            if let Ok(table) = std::fs::read_to_string(path) {
                found.scan(&table, v6, port, ticks);
            }
        }
        found.lingering()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = port;
        None
    }
}

/// What the sockets on one port came to.
#[derive(Debug, Default)]
struct Found {
    /// A listener, or a socket some process still owns.
    held: bool,
    /// The latest end among the ownerless ones, if there are any.
    ends_in: Option<Duration>,
}

impl Found {
    fn lingering(&self) -> Option<Duration> {
        if self.held {
            None
        } else {
            self.ends_in
        }
    }

    /// Reads one table (`v6`: the tcp6 one), keeping the sockets whose local address would
    /// stop a bind of `127.0.0.1:<port>`; `ticks`: the clock ticks a second of `tm->when`.
    fn scan(&mut self, table: &str, v6: bool, port: u16, ticks: u64) {
        for line in table.lines().skip(1) {
            let Some(entry) = Entry::parse(line, v6) else {
                continue;
            };
            if entry.port != port || !entry.stops_loopback_bind {
                continue;
            }
            if entry.state == LISTEN || entry.inode != 0 {
                self.held = true;
                continue;
            }
            let left = if entry.timer == TIMEWAIT_TIMER && ticks > 0 {
                Duration::from_millis(entry.when.saturating_mul(1000) / ticks)
            } else {
                LINGER_MAX
            };
            self.ends_in = Some(self.ends_in.map_or(left, |d| d.max(left)));
        }
    }
}

/// The fields of one table line that matter here.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    port: u16,
    /// Its local address is 127.0.0.1 or a wildcard (IPv4, or IPv6 and v4-mapped).
    stops_loopback_bind: bool,
    state: u8,
    timer: u8,
    when: u64,
    inode: u64,
}

impl Entry {
    /// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout
    /// inode ...`; addresses are hex words in the kernel's byte order, ports hex.
    fn parse(line: &str, v6: bool) -> Option<Entry> {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        let state = fields.nth(1)?;
        let timer = fields.nth(1)?;
        let inode = fields.nth(3)?;
        let (addr, port) = local.split_once(':')?;
        let (timer, when) = timer.split_once(':')?;
        Some(Entry {
            port: u16::from_str_radix(port, 16).ok()?,
            stops_loopback_bind: stops_loopback_bind(&address_bytes(addr)?, v6),
            state: u8::from_str_radix(state, 16).ok()?,
            timer: u8::from_str_radix(timer, 16).ok()?,
            when: u64::from_str_radix(when, 16).ok()?,
            inode: inode.parse().ok()?,
        })
    }
}

/// The address's bytes in network order: each 32-bit word is printed as the kernel holds it
/// in memory, so its native-endian bytes are the address's.
fn address_bytes(hex: &str) -> Option<Vec<u8>> {
    if !matches!(hex.len(), 8 | 32) || !hex.is_ascii() {
        return None;
    }
    let mut bytes = Vec::with_capacity(hex.len() / 2);
    for word in hex.as_bytes().chunks(8) {
        let word = std::str::from_utf8(word).ok()?;
        bytes.extend(u32::from_str_radix(word, 16).ok()?.to_ne_bytes());
    }
    Some(bytes)
}

/// Whether a socket on this local address keeps `127.0.0.1` from being bound on its port.
fn stops_loopback_bind(addr: &[u8], v6: bool) -> bool {
    const LOOPBACK: [u8; 4] = [127, 0, 0, 1];
    const ANY: [u8; 4] = [0; 4];
    match (v6, addr.len()) {
        (false, 4) => addr == LOOPBACK || addr == ANY,
        (true, 16) => {
            let (prefix, v4) = addr.split_at(12);
            let mapped = prefix[..10].iter().all(|&b| b == 0) && prefix[10..] == [0xff, 0xff];
            addr.iter().all(|&b| b == 0) || (mapped && (v4 == LOOPBACK || v4 == ANY))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when \
                          retrnsmt   uid  timeout inode\n";

    /// A table line for 127.0.0.1:`port` in the kernel's spelling on this machine.
    fn v4_line(port: u16, state: u8, timer: u8, when: u64, inode: u64) -> String {
        let addr = u32::from_ne_bytes([127, 0, 0, 1]);
        format!(
            "   0: {addr:08X}:{port:04X} {addr:08X}:D9BE {state:02X} 00000000:00000000 \
             {timer:02X}:{when:08X} 00000000     0        0 {inode} 1 0000000000000000 20 4 \
             30 10 -1\n"
        )
    }

    fn scan(table: &str, v6: bool, port: u16) -> Option<Duration> {
        let mut found = Found::default();
        found.scan(table, v6, port, 100);
        found.lingering()
    }

    #[test]
    fn time_wait_without_an_owner_lingers_for_its_timer() {
        let table = format!(
            "{HEADER}{}{}",
            v4_line(33418, 0x06, 3, 0x175B, 0),
            v4_line(33418, 0x06, 3, 0x0100, 0)
        );
        // 0x175B ticks at 100 a second: 59.79 s, the later of the two.
        assert_eq!(
            scan(&table, false, 33418),
            Some(Duration::from_millis(59_790))
        );
        assert_eq!(scan(&table, false, 33419), None, "another port");
    }

    #[test]
    fn a_listener_or_an_owned_socket_holds_the_port() {
        let tw = v4_line(33418, 0x06, 3, 0x100, 0);
        let listen = format!("{HEADER}{tw}{}", v4_line(33418, 0x0A, 0, 0, 123456));
        assert_eq!(scan(&listen, false, 33418), None);
        let owned = format!("{HEADER}{tw}{}", v4_line(33418, 0x01, 2, 0x100, 99));
        assert_eq!(scan(&owned, false, 33418), None);
    }

    #[test]
    fn an_orphan_still_closing_counts_as_a_whole_time_wait() {
        let table = format!("{HEADER}{}", v4_line(33418, 0x04, 1, 0x20, 0));
        assert_eq!(scan(&table, false, 33418), Some(LINGER_MAX));
    }

    #[test]
    fn only_addresses_that_stop_a_loopback_bind_count() {
        let elsewhere = u32::from_ne_bytes([10, 0, 0, 5]);
        let line = format!(
            "   0: {elsewhere:08X}:828A 0100007F:D9BE 01 00000000:00000000 02:00000100 \
             00000000     0        0 4242 1\n"
        );
        // A live connection on 10.0.0.5:33418 does not stop 127.0.0.1:33418.
        assert_eq!(scan(&format!("{HEADER}{line}"), false, 33418), None);
        assert!(!Entry::parse(&line, false).unwrap().stops_loopback_bind);
        let mapped = |a: [u8; 4]| {
            let mut b = [0u8; 16];
            b[10] = 0xff;
            b[11] = 0xff;
            b[12..].copy_from_slice(&a);
            b
        };
        assert!(stops_loopback_bind(&mapped([127, 0, 0, 1]), true));
        assert!(stops_loopback_bind(&[0; 16], true));
        assert!(!stops_loopback_bind(&mapped([127, 0, 0, 2]), true));
        let mut v6_loopback = [0u8; 16];
        v6_loopback[15] = 1;
        assert!(!stops_loopback_bind(&v6_loopback, true));
        assert!(stops_loopback_bind(&[0; 4], false));
    }

    #[test]
    fn a_v6_line_parses_with_its_words_in_kernel_order() {
        let mut addr = String::new();
        for word in [
            [0u8, 0, 0, 0],
            [0, 0, 0, 0],
            [0, 0, 0xff, 0xff],
            [127, 0, 0, 1],
        ] {
            addr.push_str(&format!("{:08X}", u32::from_ne_bytes(word)));
        }
        let line = format!(
            "   0: {addr}:828A {addr}:D9BE 06 00000000:00000000 03:00000BB8 00000000     0 \
                    0 0 3\n"
        );
        let entry = Entry::parse(&line, true).unwrap();
        assert_eq!(entry.port, 33418);
        assert!(entry.stops_loopback_bind);
        assert_eq!(
            (entry.state, entry.timer, entry.when, entry.inode),
            (6, 3, 3000, 0)
        );
        assert_eq!(
            scan(&format!("{HEADER}{line}"), true, 33418),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn garbage_is_skipped() {
        for line in [
            "",
            "x",
            "   0: zz:828A",
            "   0: 0100007F:828A 0100007F:1 06 0:0 03:x",
        ] {
            assert!(Entry::parse(line, false).is_none(), "{line:?}");
        }
        assert_eq!(scan("only a header\nnonsense line\n", false, 1), None);
    }

    /// A listener bound the way plain C and Python servers bind (no `SO_REUSEADDR`).
    #[cfg(target_os = "linux")]
    fn plain_listener() -> std::net::TcpListener {
        use rustix::net::{self as sys, AddressFamily, SocketType};
        let fd = sys::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
        let any_port = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0);
        sys::bind(&fd, &any_port).unwrap();
        sys::listen(&fd, 1).unwrap();
        std::net::TcpListener::from(fd)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_live_table_tells_a_closed_program_s_connections_from_a_held_port() {
        use std::io::Read;
        use std::net::{Shutdown, TcpStream};

        let listener = plain_listener();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(lingering(port), None, "listening");
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (served, _) = listener.accept().unwrap();
        drop(listener);
        assert_eq!(lingering(port), None, "a connection its program keeps open");
        // The server side closes first, then the client: the server's end lingers.
        served.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        drop(client);
        drop(served);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let left = loop {
            if let Some(left) = lingering(port) {
                break left;
            }
            assert!(std::time::Instant::now() < deadline, "no TIME_WAIT seen");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(
            left > Duration::from_secs(50) && left <= LINGER_MAX,
            "{left:?}"
        );
    }
}
