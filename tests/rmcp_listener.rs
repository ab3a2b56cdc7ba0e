//! The loopback listener and the rmcp adapter together, over real processes: process A holds
//! the callback listener; process B runs rmcp's `AuthorizationManager` over `RmcpStateStore`
//! (given the listener's redirect URI), waits for the code without consuming the flow, and
//! lets rmcp's own exchange consume it and fetch the token from an authorization server on
//! 127.0.0.1 that checks PKCE. A replay gets no second token.

mod auth_server;
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use auth_server::{http, s256, AuthServer};
use common::{spawn_child, Fixture};
use oauth_state_store::{Error, ListenerOptions, LoopbackCallback, RmcpStateStore, StoreOptions};
use rmcp::transport::auth::{AuthorizationManager, StateStore, StoredAuthorizationState};

const DB: &str = "OSS_RMCP_LISTENER_DB";
const BASE: &str = "OSS_RMCP_LISTENER_BASE";
const PORT: &str = "OSS_RMCP_LISTENER_PORT";
/// The children's HTTP client must reach the test's server directly, whatever proxy is set.
const NO_PROXY: (&str, &str) = ("NO_PROXY", "127.0.0.1");
/// The holder's idle grace: short, so that a listener that does not know the flow waits for
/// it would have stopped long before the browser arrives.
const IDLE: Duration = Duration::from_millis(500);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn options(port: u16) -> ListenerOptions {
    ListenerOptions::default()
        .port(port)
        .idle_stop(Some(IDLE))
        .idle_check(Duration::from_millis(50))
}

/// Child A: holds the listener until its stdin closes, then says whether it still held it.
#[test]
#[ignore = "child process of rmcp_login_through_another_process_listener"]
fn rmcp_listener_child_holder() {
    let store = StoreOptions::default().open(env(DB)).unwrap();
    let port: u16 = env(PORT).parse().unwrap();
    let callback = LoopbackCallback::attach(&store, options(port)).unwrap();
    println!("HOLDING={}", callback.holds_port());
    let mut rest = String::new();
    std::io::stdin().read_to_string(&mut rest).unwrap();
    println!("STILL_HOLDING={}", callback.holds_port());
}

/// Child B: the MCP client. Begins the login through rmcp, prints the authorization URL,
/// waits for "go" on stdin, then waits for the code (recorded by A's listener), exchanges it
/// through rmcp, and tries the same exchange again.
#[tokio::test]
#[ignore = "child process of rmcp_login_through_another_process_listener"]
async fn rmcp_listener_child_client() {
    let base = env(BASE);
    let port: u16 = env(PORT).parse().unwrap();
    let redirect = options(port).redirect_uri_for(port);
    let store = StoreOptions::default().open(env(DB)).unwrap();
    let mut manager = AuthorizationManager::new(base.as_str()).await.unwrap();
    let resolution = manager.resolve_metadata().await.unwrap();
    manager.set_metadata(resolution.metadata);
    let adapter = RmcpStateStore::new(store.clone(), base)
        .unwrap()
        .with_redirect_uri(redirect.clone())
        .unwrap();
    manager.set_state_store(adapter);
    manager
        .register_client("oauth-state-store test", &redirect, &[])
        .await
        .unwrap();
    let url = manager.get_authorization_url(&["mcp:tools"]).await.unwrap();
    println!("AUTH_URL={url}");
    let mut go = String::new();
    std::io::stdin().lock().read_line(&mut go).unwrap();
    let state = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();

    let callback = LoopbackCallback::attach(&store, options(port)).unwrap();
    // Blocking here is fine: nothing else runs on this test's runtime meanwhile.
    let recorded = callback
        .wait_for_code(&state, Duration::from_secs(30))
        .unwrap();
    // Not consumed: the flow is still there for rmcp's own load and delete.
    println!(
        "STATUS_BEFORE_EXCHANGE={}",
        store.check(&state).unwrap().status
    );
    let exchange = |()| {
        manager.exchange_code_for_token_with_issuer(
            recorded.code.secret(),
            &state,
            recorded.issuer.as_deref(),
        )
    };
    let token = exchange(()).await.unwrap();
    let token = serde_json::to_value(&token).unwrap();
    println!(
        "TOKEN_SHA256={}",
        s256(token["access_token"].as_str().expect("an access token"))
    );
    match exchange(()).await {
        Ok(_) => println!("REPLAY=accepted"),
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains(&state), "{message}");
            println!("REPLAY=refused {message}");
        }
    }
}

#[test]
fn rmcp_login_through_another_process_listener() {
    let server = AuthServer::start();
    let fx = Fixture::new();
    let base = format!("{}/mcp", server.origin);
    let path = fx.path.to_str().unwrap().to_owned();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port().to_string()
    };
    let vars = [
        (DB, path.as_str()),
        (BASE, base.as_str()),
        (PORT, port.as_str()),
        NO_PROXY,
    ];

    // B begins the login through rmcp; the row names the listener's redirect URI.
    let mut client = spawn_child("rmcp_listener_child_client", &vars);
    let mut client_out = BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    let auth_url = loop {
        line.clear();
        let n = client_out.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "the client exited early: {:?}",
            client.wait_with_output()
        );
        if let Some(url) = line.trim_end().strip_prefix("AUTH_URL=") {
            break url.to_owned();
        }
    };

    // A takes the port. It must not stop for idleness while B's flow waits for it.
    let mut holder = spawn_child("rmcp_listener_child_holder", &vars);
    let mut holder_out = BufReader::new(holder.stdout.take().unwrap());
    let held = loop {
        line.clear();
        let n = holder_out.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "the holder exited early: {:?}",
            holder.wait_with_output()
        );
        if let Some(held) = line.trim_end().strip_prefix("HOLDING=") {
            break held.to_owned();
        }
    };
    assert_eq!(held, "true");
    std::thread::sleep(IDLE * 4);

    // The browser: approve, then follow the redirect to A's listener, which records the code.
    let (status, headers, _) = http("GET", &auth_url, None);
    assert_eq!(status, 302);
    let callback_url = headers["location"].clone();
    let (status, _, page) = http("GET", &callback_url, None);
    assert_eq!(
        status, 200,
        "A's listener did not record the callback: {page}"
    );

    // B: the code without consuming, then rmcp's exchange (load, delete = consume, token).
    client.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    client_out.read_to_string(&mut rest).unwrap();
    let client = client.wait_with_output().unwrap();
    assert!(
        client.status.success(),
        "{}",
        String::from_utf8_lossy(&client.stderr)
    );
    let printed = |prefix: &str| -> Vec<String> {
        rest.lines()
            .filter_map(|l| l.strip_prefix(prefix).map(str::to_owned))
            .collect()
    };
    assert_eq!(printed("STATUS_BEFORE_EXCHANGE="), ["completed"]);
    assert_eq!(
        printed("TOKEN_SHA256="),
        server.state.lock().unwrap().issued,
        "no token received in B"
    );
    let replay = printed("REPLAY=").pop().expect("a replay outcome");
    assert!(replay.starts_with("refused"), "{replay}");
    assert_eq!(
        server.token_requests(),
        1,
        "the replay reached the token endpoint"
    );
    let store = StoreOptions::default().open(&fx.path).unwrap();
    let counts = store.stats().unwrap().counts;
    assert_eq!((counts.consumed, counts.total()), (1, 1));

    // The browser's replayed callback reaches A again and is refused.
    let (status, _, _) = http("GET", &callback_url, None);
    assert!((400..500).contains(&status), "{status}");
    assert_eq!(server.token_requests(), 1);

    drop(holder.stdin.take());
    let mut rest = String::new();
    holder_out.read_to_string(&mut rest).unwrap();
    let holder = holder.wait_with_output().unwrap();
    assert!(
        holder.status.success(),
        "{}",
        String::from_utf8_lossy(&holder.stderr)
    );
    // Its flow is consumed now, so the holder may idle-stop; it served every callback above.
    assert!(rest.contains("STILL_HOLDING="), "{rest}");
}

/// A state as rmcp builds it for a server that promises `iss`.
fn sdk_state(csrf: &str) -> StoredAuthorizationState {
    serde_json::from_value(serde_json::json!({
        "pkce_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        "csrf_token": csrf,
        "expected_issuer": "https://auth.example.com",
        "require_issuer": true,
        "created_at": 1,
    }))
    .expect("rmcp's StoredAuthorizationState deserializes")
}

/// A callback to the listener on `port`: its HTTP status.
fn deliver(port: u16, query: &str) -> u16 {
    http(
        "GET",
        &format!("http://127.0.0.1:{port}/callback?{query}"),
        None,
    )
    .0
}

#[tokio::test]
async fn a_listener_stays_while_an_rmcp_flow_with_its_redirect_uri_is_pending() {
    let fx = Fixture::new();
    let store = fx.store();
    let callback = LoopbackCallback::attach(&store, options(0)).unwrap();
    assert!(callback.holds_port());
    let adapter = RmcpStateStore::new(store.clone(), "https://mcp.example.com/mcp")
        .unwrap()
        .with_redirect_uri(callback.redirect_uri())
        .unwrap();
    assert_eq!(
        adapter.redirect_uri(),
        Some(callback.redirect_uri().as_str())
    );
    let csrf = "csrf-token-of-an-rmcp-login";
    adapter.save(csrf, sdk_state(csrf)).await.unwrap();
    assert_eq!(
        store.check(csrf).unwrap().redirect_uri.as_deref(),
        Some(callback.redirect_uri().as_str())
    );
    std::thread::sleep(IDLE * 6);
    assert!(
        callback.holds_port(),
        "the listener stopped while an rmcp flow waited for it"
    );
    // Once the flow is gone, it stops as before.
    adapter.delete(csrf).await.unwrap();
    let start = std::time::Instant::now();
    while callback.holds_port() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!callback.holds_port(), "an idle listener kept the port");
}

#[tokio::test]
async fn wait_for_code_leaves_the_flow_for_rmcps_one_consume() {
    let fx = Fixture::new();
    let store = fx.store();
    let callback = LoopbackCallback::attach(&store, options(0)).unwrap();
    let port = callback.port();
    let adapter = RmcpStateStore::new(store.clone(), "https://mcp.example.com/mcp")
        .unwrap()
        .with_redirect_uri(callback.redirect_uri())
        .unwrap();
    let csrf = "csrf-token-of-an-rmcp-login";
    adapter.save(csrf, sdk_state(csrf)).await.unwrap();

    // The server promised `iss`: a callback without it, or with another, is refused and
    // changes nothing.
    assert_eq!(deliver(port, &format!("code=the-code&state={csrf}")), 400);
    let other = "code=the-code&state=csrf-token-of-an-rmcp-login&iss=https%3A%2F%2Fevil.example";
    assert_eq!(deliver(port, other), 400);
    assert_eq!(store.check(csrf).unwrap().status.as_str(), "pending");

    let browser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let query =
            "code=the-code&state=csrf-token-of-an-rmcp-login&iss=https%3A%2F%2Fauth.example.com";
        deliver(port, query)
    });
    let recorded = callback
        .wait_for_code(csrf, Duration::from_secs(30))
        .unwrap();
    assert_eq!(browser.join().unwrap(), 200);
    assert_eq!(recorded.code.secret(), "the-code");
    assert_eq!(recorded.issuer.as_deref(), Some("https://auth.example.com"));
    assert!(!format!("{recorded:?}").contains("the-code"));

    // Not consumed: a second wait sees the same code, rmcp's load still finds the flow.
    assert_eq!(store.check(csrf).unwrap().status.as_str(), "completed");
    let again = callback
        .wait_for_code(csrf, Duration::from_secs(5))
        .unwrap();
    assert_eq!(again.code.secret(), "the-code");
    assert!(adapter.load(csrf).await.unwrap().is_some());

    // rmcp's delete is the one consume; after it every wait and delete is refused.
    adapter.delete(csrf).await.unwrap();
    assert!(adapter.delete(csrf).await.is_err());
    assert!(matches!(
        callback.wait_for_code(csrf, Duration::from_secs(5)),
        Err(Error::AlreadyConsumed)
    ));
}

#[test]
fn a_bad_redirect_uri_is_refused() {
    let store = Fixture::new().store();
    let adapter = RmcpStateStore::new(store, "srv").unwrap();
    for bad in [
        "http://example.com/cb",
        "not a url",
        "http://127.0.0.1:0/cb",
    ] {
        let e = adapter.clone().with_redirect_uri(bad).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidInput {
                    field: "redirect_uri",
                    ..
                }
            ),
            "{bad}: {e:?}"
        );
    }
}
