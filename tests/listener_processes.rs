//! Two processes, one store file, one callback port: whichever holds the port completes the
//! other's flow, and a waiter takes the port over when its holder dies. Real OS processes
//! (this test binary re-run through `common::spawn_child`), real sockets on 127.0.0.1. And a
//! port that another program left in TIME_WAIT is taken once the system frees it.

mod common;
mod http_client;
mod listener_children;

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{spawn_child, Fixture};
use http_client::{enc, free_port, get, Reply};
use listener_children::{next_with, open_shared, ENV_DB, ENV_PORT};
use oauth_state_store::{CallbackListener, Error, ListenerOptions, LoopbackCallback, PROBE_PATH};

/// Short timeouts so that the suite stays fast.
fn fast() -> ListenerOptions {
    ListenerOptions::default()
        .idle_stop(None)
        .request_timeout(Duration::from_millis(300))
        .probe_timeout(Duration::from_millis(300))
        .recheck(Duration::from_millis(50))
        .poll_max(Duration::from_millis(20))
}

/// Child A: holds the port until its stdin closes (or it is killed).
#[test]
#[ignore = "child process of the two-process tests"]
fn child_holder() {
    listener_children::hold(fast());
}

/// Child B: begins a flow on the shared port, prints the authorization URL for the "browser",
/// waits, consumes, and checks the code against the one the parent sends on stdin.
#[test]
#[ignore = "child process of the two-process tests"]
fn child_waiter() {
    listener_children::begin_and_wait(fast(), Duration::from_secs(30));
}

/// The "browser": follows the authorization URL's redirect_uri with a code and its state.
fn deliver(url: &str, code: &str) -> (String, Reply) {
    let url = url::Url::parse(url).unwrap();
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let state = param("state");
    let redirect = url::Url::parse(&param("redirect_uri")).unwrap();
    let target = format!(
        "{}?code={}&state={}",
        redirect.path(),
        enc(code),
        enc(&state)
    );
    let reply = get(redirect.port().unwrap(), &target);
    (state, reply)
}

#[test]
fn two_processes_one_port_the_holder_completes_the_other_s_flow() {
    let fx = Fixture::new();
    let port = free_port();
    let port_s = port.to_string();
    let db = fx.path.to_str().unwrap().to_owned();
    let env = [(ENV_DB, db.as_str()), (ENV_PORT, port_s.as_str())];
    let mut a = spawn_child("child_holder", &env);
    let mut a_out = BufReader::new(a.stdout.take().unwrap());
    assert_eq!(next_with(&mut a_out, "HOLDS "), "true");
    let mut b = spawn_child("child_waiter", &env);
    let mut b_out = BufReader::new(b.stdout.take().unwrap());
    assert_eq!(
        next_with(&mut b_out, "HOLDS "),
        "false",
        "B needs no listener"
    );
    let url = next_with(&mut b_out, "AUTH_URL ");
    let (state, page) = deliver(&url, "code-for-b");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("You can close this tab"));
    b.stdin.take().unwrap().write_all(b"code-for-b\n").unwrap();
    assert_eq!(next_with(&mut b_out, "CODE_MATCH "), "true");
    assert_eq!(next_with(&mut b_out, "VERIFIER_MATCH "), "true");
    assert!(b.wait().unwrap().success());
    // A replay reaches A again: "already used", and B's consumed flow is left as it is.
    let (_, replay) = deliver(&url, "code-for-b");
    assert_eq!(replay.status, 409);
    assert!(replay.body.contains("already used"));
    let store = open_shared(&fx.path);
    assert!(matches!(store.check(&state), Err(Error::AlreadyConsumed)));
    assert_eq!(store.stats().unwrap().counts.consumed, 1);
    drop(a.stdin.take());
    assert!(a.wait().unwrap().success());
}

#[test]
fn a_holder_that_dies_mid_flow_is_replaced_by_the_waiter() {
    let fx = Fixture::new();
    let port = free_port();
    let port_s = port.to_string();
    let db = fx.path.to_str().unwrap().to_owned();
    let env = [(ENV_DB, db.as_str()), (ENV_PORT, port_s.as_str())];
    let mut a = spawn_child("child_holder", &env);
    let mut a_out = BufReader::new(a.stdout.take().unwrap());
    assert_eq!(next_with(&mut a_out, "HOLDS "), "true");
    let mut b = spawn_child("child_waiter", &env);
    let mut b_out = BufReader::new(b.stdout.take().unwrap());
    assert_eq!(next_with(&mut b_out, "HOLDS "), "false");
    let url = next_with(&mut b_out, "AUTH_URL ");
    a.kill().unwrap();
    a.wait().unwrap();
    // B notices and binds the port; the browser's callback then reaches B itself.
    let store = open_shared(&fx.path);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let probe = std::net::TcpStream::connect(http_client::addr(port))
            .ok()
            .map(|_| get(port, PROBE_PATH));
        if probe.is_some_and(|p| p.body.lines().nth(1) == Some(store.store_id())) {
            break;
        }
        assert!(Instant::now() < deadline, "nobody took port {port} over");
        thread::sleep(Duration::from_millis(20));
    }
    let (_, page) = deliver(&url, "late-code");
    assert_eq!(page.status, 200, "{}", page.body);
    b.stdin.take().unwrap().write_all(b"late-code\n").unwrap();
    assert_eq!(next_with(&mut b_out, "CODE_MATCH "), "true");
    assert_eq!(next_with(&mut b_out, "HOLDS_AFTER "), "true");
    assert!(b.wait().unwrap().success());
}

#[test]
fn two_waiters_race_for_a_dead_holder_s_port_and_both_flows_complete() {
    let fx = Fixture::new();
    let port = free_port();
    let port_s = port.to_string();
    let db = fx.path.to_str().unwrap().to_owned();
    let env = [(ENV_DB, db.as_str()), (ENV_PORT, port_s.as_str())];
    let mut a = spawn_child("child_holder", &env);
    let mut a_out = BufReader::new(a.stdout.take().unwrap());
    assert_eq!(next_with(&mut a_out, "HOLDS "), "true");
    let mut waiters = Vec::new();
    for _ in 0..2 {
        let mut w = spawn_child("child_waiter", &env);
        let mut out = BufReader::new(w.stdout.take().unwrap());
        assert_eq!(next_with(&mut out, "HOLDS "), "false");
        let url = next_with(&mut out, "AUTH_URL ");
        waiters.push((w, out, url));
    }
    a.kill().unwrap();
    a.wait().unwrap();
    let store = open_shared(&fx.path);
    let deadline = Instant::now() + Duration::from_secs(20);
    for (i, (_, _, url)) in waiters.iter().enumerate() {
        // Until one of the waiters has taken the port over, the callback cannot land.
        let code = format!("code-{i}");
        loop {
            let served = std::net::TcpStream::connect(http_client::addr(port))
                .ok()
                .map(|_| get(port, PROBE_PATH))
                .is_some_and(|p| p.body.lines().nth(1) == Some(store.store_id()));
            if served {
                break;
            }
            assert!(Instant::now() < deadline, "nobody took port {port} over");
            thread::sleep(Duration::from_millis(20));
        }
        let (_, page) = deliver(url, &code);
        assert_eq!(page.status, 200, "{}", page.body);
    }
    let mut holders = 0;
    for (i, (mut w, mut out, _)) in waiters.into_iter().enumerate() {
        writeln!(w.stdin.take().unwrap(), "code-{i}").unwrap();
        assert_eq!(next_with(&mut out, "CODE_MATCH "), "true");
        if next_with(&mut out, "HOLDS_AFTER ") == "true" {
            holders += 1;
        }
        assert!(w.wait().unwrap().success());
    }
    assert_eq!(holders, 1, "exactly one waiter took the port over");
}

// ---- a port another program left in TIME_WAIT ----

/// Set for the child that leaves a TIME_WAIT behind.
const ENV_TIME_WAIT: &str = "LISTENER_CHILD_TIME_WAIT";

/// Child: a program that listens without `SO_REUSEADDR` (as a plain C or Python server does;
/// Rust's std sets it), serves one connection, closes it first and exits. Closing first leaves
/// the connection in TIME_WAIT on the listening port, for 60 s on Linux, and no `SO_REUSEADDR`
/// means the kernel refuses every bind of that port meanwhile, whatever flags the binder sets.
#[test]
#[ignore = "child process of a_port_left_in_time_wait_by_an_exited_program_is_taken_once_free"]
fn child_leaves_time_wait() {
    use rustix::net::{self as sys, AddressFamily, SocketType};
    if std::env::var_os(ENV_TIME_WAIT).is_none() {
        eprintln!("child_leaves_time_wait runs only as a child of the TIME_WAIT test");
        return;
    }
    let fd = sys::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    let addr = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0);
    sys::bind(&fd, &addr).unwrap();
    sys::listen(&fd, 1).unwrap();
    let listener = TcpListener::from(fd);
    println!("PORT {}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.write_all(b"bye").unwrap();
    // This side's FIN goes first; the peer's FIN then puts this side in TIME_WAIT.
    conn.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
}

/// The kernel's TCP states (hex, as `/proc/net/tcp` spells them) of the sockets whose local
/// address is 127.0.0.1:`port`.
fn kernel_states(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1) == Some(&local.as_str())).then(|| fields[3].to_owned())
        })
        .collect()
}

const TIME_WAIT: &str = "06";
const LISTEN: &str = "0A";

/// Runs `child_leaves_time_wait` and connects to it as its one client; returns the port it
/// listened on, now in TIME_WAIT with no listener, and the client's own port.
fn port_left_in_time_wait() -> (u16, u16) {
    let mut child = spawn_child("child_leaves_time_wait", &[(ENV_TIME_WAIT, "1")]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let port: u16 = next_with(&mut out, "PORT ").parse().unwrap();
    let mut conn = connect_from_a_port_of_our_own(port);
    let client_port = conn.local_addr().unwrap().port();
    let mut said = Vec::new();
    conn.read_to_end(&mut said).unwrap();
    assert_eq!(said, b"bye");
    drop(conn);
    assert!(child.wait().unwrap().success());
    let states = kernel_states(port);
    assert!(
        states.iter().any(|s| s == TIME_WAIT) && !states.iter().any(|s| s == LISTEN),
        "expected TIME_WAIT and no LISTEN on {port}: {states:?}"
    );
    (port, client_port)
}

/// A connection to `port` from a local port below the system's ephemeral range: the test later
/// binds that port again to end the TIME_WAIT early, and an ephemeral one may meanwhile be
/// handed to another connection of a test running beside it (the bind then fails).
fn connect_from_a_port_of_our_own(port: u16) -> TcpStream {
    use rustix::net::{self as sys, AddressFamily, SocketType};
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let low: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    let start = 10_000 + (std::process::id() % 10_000) as u16;
    for from in (start..low).chain(10_000..start) {
        let fd = sys::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
        let local = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, from);
        if sys::bind(&fd, &local).is_err() {
            continue;
        }
        let to = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port);
        sys::connect(&fd, &to).unwrap();
        return TcpStream::from(fd);
    }
    panic!("no free local port below the ephemeral range {range}");
}

/// Options for the TIME_WAIT tests: short probe and waits.
fn lingering_options(port: u16) -> ListenerOptions {
    ListenerOptions::default()
        .port(port)
        .idle_stop(None)
        .probe_timeout(Duration::from_millis(300))
        .recheck(Duration::from_millis(50))
        .poll_max(Duration::from_millis(20))
}

/// Waits until something accepts connections on `port`; returns how long after the port's
/// TIME_WAIT was last seen that happened.
fn served_after_time_wait(port: u16, within: Duration) -> Duration {
    let deadline = Instant::now() + within;
    let mut time_wait_seen = Instant::now();
    while TcpStream::connect(http_client::addr(port)).is_err() {
        if kernel_states(port).iter().any(|s| s == TIME_WAIT) {
            time_wait_seen = Instant::now();
        }
        assert!(Instant::now() < deadline, "port {port} was never taken");
        thread::sleep(Duration::from_millis(20));
    }
    time_wait_seen.elapsed()
}

#[cfg(target_os = "linux")]
#[test]
fn a_port_left_in_time_wait_by_an_exited_program_is_taken_once_free() {
    let fx = Fixture::new();
    let (port, _) = port_left_in_time_wait();
    let store = fx.store();
    let options = lingering_options(port);

    // Nothing listens there: not "in use by another program".
    let cb = LoopbackCallback::attach(&store, options.clone())
        .expect("a port nobody listens on is not in use");
    assert!(!cb.holds_port());
    let delay = cb
        .port_delay()
        .expect("the caller is told the port comes later");
    assert_eq!(delay.port(), port);
    assert!(
        delay.free_in() > Duration::ZERO && delay.free_in() <= Duration::from_secs(60),
        "{delay:?}"
    );
    let line = delay.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.contains("oauth-state-store deliver -"), "{line}");
    assert!(!line.contains("in use"), "{line}");
    assert!(format!("{cb:?}").contains("port_delay"), "{cb:?}");

    // A listener that must bind now cannot: its own error, with the time left.
    match CallbackListener::bind(&store, options) {
        Err(e @ Error::PortNotYetFree { .. }) => {
            let Error::PortNotYetFree { port: p, free_in } = e else {
                unreachable!()
            };
            assert_eq!(p, port);
            assert!(free_in <= Duration::from_secs(60));
            let message = e.to_string();
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
            assert!(!message.contains("stop the program"), "{message}");
        }
        other => panic!("expected PortNotYetFree, got {other:?}"),
    }

    let flow = listener_children::begin_printing_url(&store, &cb);
    let state = flow.state().secret().to_owned();
    // A wait meanwhile is an ordinary wait: it times out, it does not report the port in use.
    match cb.wait(&state, Duration::from_millis(600)) {
        Err(Error::CallbackTimeout { .. }) => {}
        other => panic!("expected CallbackTimeout, got {other:?}"),
    }
    // A browser that comes this early finds nobody: its reload (or paste-back) comes later.
    assert!(TcpStream::connect(http_client::addr(port)).is_err());

    // No wait is open now: the listener takes the port by itself once the kernel lets it.
    let late = served_after_time_wait(port, Duration::from_secs(90));
    eprintln!("port {port} served {late:?} after its TIME_WAIT was last seen");
    assert!(
        late < Duration::from_secs(3),
        "served {late:?} after the kernel freed the port"
    );
    assert!(cb.holds_port());
    assert!(cb.port_delay().is_none());
    let target = format!("/callback?code=late&state={}", enc(&state));
    let page = get(port, &target);
    assert_eq!(page.status, 200, "{}", page.body);
    let done = cb.wait(&state, Duration::from_secs(5)).unwrap();
    assert_eq!(done.code.unwrap().secret(), "late");
}

/// A TIME_WAIT also ends before its timer: a new SYN from its peer's port (as a reload may
/// send) ends it at once. The listener must take the port then, not at the kernel's estimate.
#[cfg(target_os = "linux")]
#[test]
fn a_time_wait_that_ends_early_lets_the_listener_take_the_port_at_once() {
    use rustix::net::{self as sys, AddressFamily, SocketType};
    let fx = Fixture::new();
    let (port, client_port) = port_left_in_time_wait();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, lingering_options(port)).unwrap();
    let delay = cb.port_delay().expect("lingering");
    assert!(delay.free_in() > Duration::from_secs(30), "{delay:?}");

    // The peer's port connects again: the TIME_WAIT answers, the peer resets it, it ends.
    let fd = sys::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    sys::sockopt::set_socket_reuseaddr(&fd, true).unwrap();
    let from = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, client_port);
    sys::bind(&fd, &from).unwrap();
    let to = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port);
    let _ = sys::connect(&fd, &to);
    drop(fd);

    let late = served_after_time_wait(port, Duration::from_secs(20));
    assert!(
        late < Duration::from_secs(3),
        "served {late:?} after the TIME_WAIT ended"
    );
    assert!(cb.holds_port());
    assert!(cb.port_delay().is_none());
}
