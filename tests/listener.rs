//! The loopback callback listener in one process, on real sockets (127.0.0.1 only): pages,
//! status codes, port ownership, idle stop. Several processes: `listener_processes.rs`.

mod common;
mod http_client;

use std::io::Write;
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use common::Fixture;
use http_client::{enc, free_port, get, raw, Reply};
use oauth_state_store::{
    BeginRequest, CallbackListener, Error, ListenerOptions, LoopbackCallback, PortHolder, Status,
    Store, PROBE_PATH,
};

/// Short timeouts so that the suite stays fast.
fn fast() -> ListenerOptions {
    ListenerOptions::default()
        .idle_stop(None)
        .idle_check(Duration::from_millis(20))
        .request_timeout(Duration::from_millis(300))
        .probe_timeout(Duration::from_millis(300))
        .recheck(Duration::from_millis(50))
        .poll_max(Duration::from_millis(20))
}

/// Begins a flow that expects its callback at `redirect`; returns its state.
fn begin(store: &Store, redirect: &str) -> String {
    let flow = store
        .begin(BeginRequest::new("https://mcp.example.com").redirect_uri(redirect))
        .unwrap();
    flow.state().secret().to_owned()
}

fn callback_target(state: &str, code: &str) -> String {
    format!("/callback?code={}&state={}", enc(code), enc(state))
}

fn status_of(store: &Store, state: &str) -> Status {
    store.check(state).expect("flow still there").status
}

fn assert_page_headers(r: &Reply) {
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
    let csp = r.header("Content-Security-Policy").expect("CSP");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(!r.body.contains("http://") && !r.body.contains("https://"));
}

#[test]
fn code_callback_completes_and_the_wait_consumes_it() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    assert!(cb.holds_port());
    let state = begin(&store, &cb.redirect_uri());
    let waiter = {
        let (cb_state, cb) = (state.clone(), &cb);
        thread::scope(|s| {
            let h = s.spawn(move || cb.wait(&cb_state, Duration::from_secs(20)));
            let page = get(cb.port(), &callback_target(&state, "the-code"));
            assert_eq!(page.status, 200, "{}", page.body);
            assert!(page.body.contains("You can close this tab"));
            assert!(!page.body.contains("the-code") && !page.body.contains(&state));
            assert_page_headers(&page);
            h.join().unwrap()
        })
    };
    let done = waiter.unwrap();
    assert_eq!(done.code.unwrap().secret(), "the-code");
    // A replay after the consume: the "already used" page, and the tombstone is unchanged.
    let replay = get(cb.port(), &callback_target(&state, "the-code"));
    assert_eq!(replay.status, 409);
    assert!(replay.body.contains("already used"), "{}", replay.body);
    assert!(!replay.body.contains("CSRF"));
    assert!(matches!(store.check(&state), Err(Error::AlreadyConsumed)));
}

#[test]
fn a_second_callback_before_the_consume_does_not_replace_the_code() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let state = begin(&store, &cb.redirect_uri());
    assert_eq!(
        get(cb.port(), &callback_target(&state, "first")).status,
        200
    );
    let second = get(cb.port(), &callback_target(&state, "second"));
    assert_eq!(second.status, 409);
    assert!(second.body.contains("already received"), "{}", second.body);
    let done = cb.wait(&state, Duration::from_secs(5)).unwrap();
    assert_eq!(done.code.unwrap().secret(), "first");
}

#[test]
fn error_callback_fails_the_flow_and_escapes_the_description() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let state = begin(&store, &cb.redirect_uri());
    let hostile = "<script>alert('pwned')</script><img src=x onerror=alert(1)>";
    let target = format!(
        "/callback?error=access_denied&error_description={}&state={}",
        enc(hostile),
        enc(&state)
    );
    let page = get(cb.port(), &target);
    assert_eq!(page.status, 200);
    assert_page_headers(&page);
    assert!(page.body.contains("access_denied"));
    assert!(page
        .body
        .contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"));
    assert!(!page.body.contains("<script"));
    assert!(!page.body.contains("<img"));
    assert_eq!(status_of(&store, &state), Status::Failed);
    match cb.wait(&state, Duration::from_secs(5)) {
        Err(Error::AuthorizationFailed { error, description }) => {
            assert_eq!(error, "access_denied");
            assert_eq!(description.as_deref(), Some(hostile));
        }
        other => panic!("expected AuthorizationFailed, got {other:?}"),
    }
}

#[test]
fn a_description_oauth_forbids_is_dropped_not_stored() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let state = begin(&store, &cb.redirect_uri());
    let target = format!(
        "/callback?error=access_denied&error_description={}&state={}",
        enc("a \"quoted\" \\ text"),
        enc(&state)
    );
    let page = get(cb.port(), &target);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("not shown"));
    assert!(!page.body.contains("quoted"));
    match cb.wait(&state, Duration::from_secs(5)) {
        Err(Error::AuthorizationFailed { description, .. }) => assert_eq!(description, None),
        other => panic!("expected AuthorizationFailed, got {other:?}"),
    }
}

#[test]
fn unknown_state_is_404_and_changes_nothing() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let state = begin(&store, &cb.redirect_uri());
    let page = get(cb.port(), &callback_target("forged-state", "evil-code"));
    assert_eq!(page.status, 404);
    assert!(page.body.contains("potential CSRF attack"), "{}", page.body);
    assert_page_headers(&page);
    assert_eq!(status_of(&store, &state), Status::Pending);
}

#[test]
fn expired_state_is_410_without_csrf_words() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let state = begin(&store, &cb.redirect_uri());
    fx.clock.advance(std::time::Duration::from_secs(3600));
    let page = get(cb.port(), &callback_target(&state, "late"));
    assert_eq!(page.status, 410);
    assert!(page.body.contains("expired"));
    assert!(!page.body.contains("CSRF"));
    assert!(matches!(store.check(&state), Err(Error::UnknownState)));
}

#[test]
fn missing_or_repeated_parameters_are_400_and_change_nothing() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let state = begin(&store, &cb.redirect_uri());
    let s = enc(&state);
    let targets = [
        "/callback?code=abc".to_owned(),
        "/callback".to_owned(),
        format!("/callback?state={s}"),
        format!("/callback?state={s}&state={s}&code=abc"),
        format!("/callback?state={s}&code=abc&code=def"),
        format!("/callback?state={s}&code=abc&error=access_denied"),
        format!("/callback?state={s}&code=%01bad"),
        "/callback?state=%01&code=abc".to_owned(),
    ];
    for t in &targets {
        let page = get(cb.port(), t);
        assert_eq!(page.status, 400, "{t}: {}", page.body);
        assert!(!page.body.contains("CSRF"), "{t}");
        assert_page_headers(&page);
    }
    assert_eq!(status_of(&store, &state), Status::Pending);
}

#[test]
fn other_paths_methods_hosts_and_bodies_do_not_touch_the_store() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let port = cb.port();
    let state = begin(&store, &cb.redirect_uri());
    let good = callback_target(&state, "abc");
    let wrong_path = get(port, &good.replace("/callback", "/other"));
    assert_eq!(wrong_path.status, 404);
    let post = raw(
        port,
        format!("POST {good} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("Allow"), Some("GET"));
    let rebound = raw(
        port,
        format!("GET {good} HTTP/1.1\r\nHost: evil.example:{port}\r\n\r\n").as_bytes(),
    );
    assert_eq!(rebound.status, 421);
    let no_host = raw(port, format!("GET {good} HTTP/1.0\r\n\r\n").as_bytes());
    assert_eq!(no_host.status, 400);
    let body = raw(
        port,
        format!("GET {good} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 3\r\n\r\nabc")
            .as_bytes(),
    );
    assert_eq!(body.status, 400);
    let garbage = raw(port, b"\x16\x03\x01 not http at all\r\n\r\n");
    assert_eq!(garbage.status, 400);
    assert_eq!(status_of(&store, &state), Status::Pending);
}

#[test]
fn oversized_and_slow_requests_are_cut_off() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let port = cb.port();
    let state = begin(&store, &cb.redirect_uri());
    let long_target = format!(
        "{}&pad={}",
        callback_target(&state, "abc"),
        "x".repeat(20_000)
    );
    assert_eq!(get(port, &long_target).status, 414);
    let big_header = format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Pad: {}\r\n\r\n",
        callback_target(&state, "abc"),
        "y".repeat(20_000)
    );
    assert_eq!(raw(port, big_header.as_bytes()).status, 431);
    let many_headers = format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{}\r\n",
        callback_target(&state, "abc"),
        "X-A: b\r\n".repeat(100)
    );
    assert_eq!(raw(port, many_headers.as_bytes()).status, 431);
    // Slow: half a request line, then silence. The listener gives up on its own.
    let mut slow = std::net::TcpStream::connect(http_client::addr(port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    slow.write_all(format!("GET {}", callback_target(&state, "abc")).as_bytes())
        .unwrap();
    let answer = http_client::read_reply(&mut slow);
    assert_eq!(answer.status, 408);
    // Trickling a byte at a time does not reset the clock: the deadline is for the whole head.
    let mut trickle = std::net::TcpStream::connect(http_client::addr(port)).unwrap();
    trickle
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = trickle.try_clone().unwrap();
    let head = format!(
        "GET {} HTTP/1.1\r\nX-Slow: ",
        callback_target(&state, "abc")
    );
    let feeder = thread::spawn(move || {
        for b in head.bytes().chain(std::iter::repeat(b'z')).take(2_000) {
            if writer.write_all(&[b]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
    });
    assert_eq!(http_client::read_reply(&mut trickle).status, 408);
    drop(trickle);
    feeder.join().unwrap();
    assert_eq!(status_of(&store, &state), Status::Pending);
}

#[test]
fn a_callback_for_another_redirect_uri_is_not_used() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let state = begin(&store, "http://127.0.0.1:1/elsewhere");
    let page = get(cb.port(), &callback_target(&state, "abc"));
    assert_eq!(page.status, 400);
    assert!(page.body.contains("another address"));
    assert_eq!(status_of(&store, &state), Status::Pending);
}

#[test]
fn probe_answers_the_store_id() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let probe = get(cb.port(), PROBE_PATH);
    assert_eq!(probe.status, 200);
    assert_eq!(probe.body.lines().nth(1), Some(store.store_id()));
}

#[test]
fn a_port_held_by_another_program_is_a_clear_error_at_once() {
    let fx = Fixture::new();
    let store = fx.store();
    let squatter = TcpListener::bind(http_client::addr(0)).unwrap();
    let port = squatter.local_addr().unwrap().port();
    for result in [
        LoopbackCallback::attach(&store, fast().port(port)).map(drop),
        CallbackListener::bind(&store, fast().port(port)).map(drop),
    ] {
        match result {
            Err(e @ Error::PortInUse { .. }) => {
                assert!(
                    matches!(e, Error::PortInUse { port: p, holder: PortHolder::Other } if p == port)
                );
                let msg = e.to_string();
                assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
                assert!(
                    msg.contains("callback port") && msg.contains("redirect URI"),
                    "{msg}"
                );
                assert!(!msg.contains("CSRF"));
            }
            other => panic!("expected PortInUse, got {other:?}"),
        }
    }
}

/// A program that stopped listening but keeps a connection on the port open still holds it:
/// that is not a connection left behind (it ends when that program wants), so the error is
/// `PortInUse` at once, not a wait for the port.
#[cfg(target_os = "linux")]
#[test]
fn a_port_kept_by_a_live_connection_of_another_program_is_in_use() {
    use rustix::net::{self as sys, AddressFamily, SocketType};
    let fx = Fixture::new();
    let store = fx.store();
    // Bound as plain C and Python servers bind: without SO_REUSEADDR (Rust's std sets it).
    let fd = sys::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    let any_port = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0);
    sys::bind(&fd, &any_port).unwrap();
    sys::listen(&fd, 1).unwrap();
    let program = TcpListener::from(fd);
    let port = program.local_addr().unwrap().port();
    let client = std::net::TcpStream::connect(http_client::addr(port)).unwrap();
    let (kept, _) = program.accept().unwrap();
    drop(program);
    let start = Instant::now();
    for result in [
        LoopbackCallback::attach(&store, fast().port(port)).map(drop),
        CallbackListener::bind(&store, fast().port(port)).map(drop),
    ] {
        match result {
            Err(Error::PortInUse {
                port: p,
                holder: PortHolder::Other,
            }) => assert_eq!(p, port),
            other => panic!("expected PortInUse by another program, got {other:?}"),
        }
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(client);
    drop(kept);
}

#[test]
fn a_port_held_by_a_listener_on_another_file_is_told_apart() {
    let fx = Fixture::new();
    let other = Fixture::new();
    let theirs = LoopbackCallback::attach(&other.store(), fast()).unwrap();
    let ours = LoopbackCallback::attach(&fx.store(), fast().port(theirs.port()));
    assert!(matches!(
        ours,
        Err(Error::PortInUse {
            holder: PortHolder::OtherStore,
            ..
        })
    ));
}

#[test]
fn a_second_handle_on_the_same_store_shares_the_port() {
    let fx = Fixture::new();
    let port = free_port();
    let a = LoopbackCallback::attach(&fx.store(), fast().port(port)).unwrap();
    let b_store = fx.store();
    let b = LoopbackCallback::attach(&b_store, fast().port(port)).unwrap();
    assert!(a.holds_port());
    assert!(!b.holds_port());
    assert!(matches!(
        CallbackListener::bind(&b_store, fast().port(port)),
        Err(Error::PortInUse {
            holder: PortHolder::SameStore,
            ..
        })
    ));
    let state = begin(&b_store, &b.redirect_uri());
    assert_eq!(get(port, &callback_target(&state, "shared")).status, 200);
    let done = b.wait(&state, Duration::from_secs(5)).unwrap();
    assert_eq!(done.code.unwrap().secret(), "shared");
}

#[test]
fn an_idle_listener_frees_its_port_and_a_needed_one_stays() {
    let fx = Fixture::new();
    let store = fx.store();
    let opts = fast().idle_stop(Some(Duration::from_millis(100)));
    let cb = LoopbackCallback::attach(&store, opts).unwrap();
    let port = cb.port();
    let state = begin(&store, &cb.redirect_uri());
    // A pending flow expects this listener: it keeps serving well past its grace period.
    thread::sleep(Duration::from_millis(400));
    assert!(cb.holds_port());
    assert_eq!(get(port, PROBE_PATH).status, 200);
    assert_eq!(get(port, &callback_target(&state, "abc")).status, 200);
    cb.wait(&state, Duration::from_secs(5)).unwrap();
    // Nothing expects it any more: the port comes free (bounded generously; no timing claim).
    let deadline = Instant::now() + Duration::from_secs(20);
    let rebound = loop {
        if let Ok(l) = TcpListener::bind(http_client::addr(port)) {
            break Some(l);
        }
        if Instant::now() > deadline {
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert!(rebound.is_some(), "port {port} still held");
    assert!(!cb.holds_port());
}

#[test]
fn wait_times_out_and_leaves_the_flow_pending() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let state = begin(&store, &cb.redirect_uri());
    assert!(matches!(
        cb.wait(&state, Duration::from_millis(50)),
        Err(Error::CallbackTimeout { .. })
    ));
    assert_eq!(status_of(&store, &state), Status::Pending);
    assert!(matches!(
        cb.wait("never-begun", Duration::from_secs(5)),
        Err(Error::UnknownState)
    ));
    assert!(matches!(
        cb.wait("bad\nstate", Duration::from_secs(5)),
        Err(Error::InvalidInput { field: "state", .. })
    ));
}

#[test]
fn extreme_durations_do_not_panic() {
    let fx = Fixture::new();
    let store = fx.store();
    let huge = ListenerOptions::default()
        .idle_stop(Some(Duration::MAX))
        .idle_check(Duration::MAX)
        .request_timeout(Duration::MAX)
        .probe_timeout(Duration::MAX)
        .recheck(Duration::MAX)
        .poll_max(Duration::MAX);
    let cb = LoopbackCallback::attach(&store, huge).unwrap();
    assert!(matches!(
        cb.wait("never-begun", Duration::MAX),
        Err(Error::UnknownState)
    ));
    let state = begin(&store, &cb.redirect_uri());
    assert_eq!(get(cb.port(), &callback_target(&state, "abc")).status, 200);
    assert!(cb.wait(&state, Duration::MAX).is_ok());
}

#[test]
fn a_callback_from_another_issuer_is_not_used() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let flow = store
        .begin(
            BeginRequest::new("https://mcp.example.com")
                .redirect_uri(cb.redirect_uri())
                .issuer("https://auth.example.com"),
        )
        .unwrap();
    let state = flow.state().secret();
    let mixed_up = format!(
        "{}&iss={}",
        callback_target(state, "abc"),
        enc("https://evil.example")
    );
    let page = get(cb.port(), &mixed_up);
    assert_eq!(page.status, 400);
    assert!(page.body.contains("another authorization server"));
    assert_eq!(status_of(&store, state), Status::Pending);
    let right = format!(
        "{}&iss={}",
        callback_target(state, "abc"),
        enc("https://auth.example.com")
    );
    assert_eq!(get(cb.port(), &right).status, 200);
}

#[test]
fn connections_past_the_cap_get_503() {
    let fx = Fixture::new();
    let store = fx.store();
    let opts = fast()
        .max_connections(1)
        .request_timeout(Duration::from_secs(20));
    let cb = LoopbackCallback::attach(&store, opts).unwrap();
    let port = cb.port();
    // One connection that sends nothing occupies the only slot.
    let mut hog = std::net::TcpStream::connect(http_client::addr(port)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let r = get(port, PROBE_PATH);
        if r.status == 503 || Instant::now() > deadline {
            break r;
        }
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(refused.status, 503);
    hog.write_all(
        format!("GET {PROBE_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(http_client::read_reply(&mut hog).status, 200);
}

/// Answers every connection with `answer`, like some unrelated web server, until an empty
/// connection tells it to stop.
fn unrelated_server(answer: &'static [u8]) -> (u16, thread::JoinHandle<()>) {
    let server = TcpListener::bind(http_client::addr(0)).unwrap();
    let port = server.local_addr().unwrap().port();
    let answering = thread::spawn(move || {
        for conn in server.incoming() {
            let Ok(mut conn) = conn else { break };
            let mut buf = [0u8; 1024];
            let n = std::io::Read::read(&mut conn, &mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            let _ = conn.write_all(answer);
        }
    });
    (port, answering)
}

#[test]
fn a_port_held_by_another_http_server_is_another_program() {
    let fx = Fixture::new();
    let store = fx.store();
    // A plain answer, and a busy one: a foreign server's 503 is not a busy listener of ours.
    for answer in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..],
        &b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 5\r\n\r\nbusy\n"[..],
    ] {
        let (port, answering) = unrelated_server(answer);
        let result = LoopbackCallback::attach(&store, fast().port(port));
        assert!(
            matches!(
                result,
                Err(Error::PortInUse {
                    holder: PortHolder::Other,
                    ..
                })
            ),
            "{result:?}"
        );
        // An empty connection tells the fake server to stop.
        drop(std::net::TcpStream::connect(http_client::addr(port)).unwrap());
        answering.join().unwrap();
    }
}

#[test]
fn listener_handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<LoopbackCallback>();
    send_sync::<CallbackListener>();
    send_sync::<ListenerOptions>();
    send_sync::<oauth_state_store::PortDelay>();
}

#[test]
fn the_same_callback_twice_at_once_completes_once() {
    let fx = Fixture::new();
    let store = fx.store();
    let cb = LoopbackCallback::attach(&store, fast()).unwrap();
    let state = begin(&store, &cb.redirect_uri());
    let target = callback_target(&state, "once");
    let port = cb.port();
    let mut statuses: Vec<u16> = thread::scope(|s| {
        let a = s.spawn(|| get(port, &target).status);
        let b = s.spawn(|| get(port, &target).status);
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409]);
    assert_eq!(
        cb.wait(&state, Duration::from_secs(5))
            .unwrap()
            .code
            .unwrap()
            .secret(),
        "once"
    );
}
