//! Two processes, one store file, one callback port: whichever holds the port completes the
//! other's flow, and a waiter takes the port over when its holder dies. Real OS processes
//! (this test binary re-run through `common::spawn_child`), real sockets on 127.0.0.1.

mod common;
mod http_client;
mod listener_children;

use std::io::{BufReader, Write};
use std::thread;
use std::time::{Duration, Instant};

use common::{spawn_child, Fixture};
use http_client::{enc, free_port, get, Reply};
use listener_children::{next_with, open_shared, ENV_DB, ENV_PORT};
use oauth_state_store::{Error, ListenerOptions, PROBE_PATH};

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
