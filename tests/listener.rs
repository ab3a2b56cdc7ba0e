//! The loopback callback listener on real sockets (127.0.0.1 only) and real processes.

mod common;
mod http_client;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::ChildStdout;
use std::thread;
use std::time::{Duration, Instant};

use common::{spawn_child, Fixture};
use http_client::{enc, free_port, get, raw, Reply};
use oauth_state_store::{
    BeginRequest, CallbackListener, Error, ListenerOptions, LoopbackCallback, PortHolder, Status,
    Store, StoreOptions, PROBE_PATH,
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
    fx.clock.advance(time::Duration::hours(1));
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
    assert_eq!(no_host.status, 421);
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
}

// ---- Two processes, one store file, one port ----------------------------------------------

const ENV_DB: &str = "LISTENER_TEST_DB";
const ENV_PORT: &str = "LISTENER_TEST_PORT";

/// A store with the system clock (the processes must agree on time).
fn open_shared(path: &std::path::Path) -> Store {
    StoreOptions::default().open(path).expect("open store")
}

fn child_env() -> Option<(std::path::PathBuf, u16)> {
    let db = std::env::var_os(ENV_DB)?;
    let port = std::env::var(ENV_PORT).ok()?.parse().ok()?;
    Some((db.into(), port))
}

/// The next line the child prints that starts with `prefix`, without it.
fn next_with(out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read child output");
        assert!(n > 0, "child ended before printing {prefix:?}");
        if let Some(rest) = line.trim_end().strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
}

/// Child A: holds the port until its stdin closes (or it is killed).
#[test]
#[ignore = "child process of the two-process tests"]
fn child_holder() {
    let Some((db, port)) = child_env() else {
        eprintln!("child_holder runs only as a child of the two-process tests");
        return;
    };
    let store = open_shared(&db);
    let cb = LoopbackCallback::attach(&store, fast().port(port)).unwrap();
    println!("HOLDS {}", cb.holds_port());
    std::io::stdout().flush().unwrap();
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
}

/// Child B: begins a flow on the shared port, prints the authorization URL for the "browser",
/// waits, consumes, and checks the code against the one the parent sends on stdin.
#[test]
#[ignore = "child process of the two-process tests"]
fn child_waiter() {
    let Some((db, port)) = child_env() else {
        eprintln!("child_waiter runs only as a child of the two-process tests");
        return;
    };
    let store = open_shared(&db);
    let cb = LoopbackCallback::attach(&store, fast().port(port)).unwrap();
    println!("HOLDS {}", cb.holds_port());
    let flow = store
        .begin(BeginRequest::new("https://mcp.example.com").redirect_uri(cb.redirect_uri()))
        .unwrap();
    let url = flow
        .authorization_url("https://auth.example.com/authorize")
        .unwrap();
    println!("AUTH_URL {url}");
    std::io::stdout().flush().unwrap();
    let done = cb
        .wait(flow.state().secret(), Duration::from_secs(30))
        .unwrap();
    let mut expected = String::new();
    std::io::stdin().read_line(&mut expected).unwrap();
    let code = done.code.expect("a code was recorded");
    println!("CODE_MATCH {}", code.secret() == expected.trim_end());
    println!(
        "VERIFIER_MATCH {}",
        done.verifier.challenge().as_str() == flow.code_challenge().as_str()
    );
    println!("HOLDS_AFTER {}", cb.holds_port());
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
