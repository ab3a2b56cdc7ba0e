//! End to end through rmcp's own `AuthorizationManager`, against an authorization server on
//! 127.0.0.1 in this test: one process builds the authorization URL and exits, another
//! delivers the callback and exchanges the code, and a replayed callback fails without ever
//! reaching the token endpoint.

mod auth_server;
mod common;

use std::io::{Read, Write};

use auth_server::{http, s256, AuthServer};
use common::{lines_with, run_child, spawn_child, Fixture};
use oauth_state_store::{RmcpStateStore, StoreOptions};
use rmcp::transport::auth::{AuthorizationManager, OAuthClientConfig};

// ---- the flow, split over processes ----

const DB: &str = "OSS_RMCP_E2E_DB";
const BASE: &str = "OSS_RMCP_E2E_BASE";
const CLIENT: &str = "OSS_RMCP_E2E_CLIENT";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
/// The children's HTTP client must reach the test's server directly, whatever proxy is set.
const NO_PROXY: (&str, &str) = ("NO_PROXY", "127.0.0.1");

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// A manager for the test's MCP server with its metadata discovered and `RmcpStateStore` on the
/// shared file.
async fn manager() -> AuthorizationManager {
    let base = env(BASE);
    let mut manager = AuthorizationManager::new(base.as_str()).await.unwrap();
    let resolution = manager.resolve_metadata().await.unwrap();
    assert!(resolution.source.is_discovered());
    manager.set_metadata(resolution.metadata);
    let store = StoreOptions::default().open(env(DB)).unwrap();
    manager.set_state_store(RmcpStateStore::new(store, base).unwrap());
    manager
}

/// Child: registers a client, builds the authorization URL, exits.
#[tokio::test]
#[ignore = "child process of rmcp_authorization_code_flow_across_processes"]
async fn rmcp_e2e_child_begin() {
    let mut manager = manager().await;
    let config = manager
        .register_client("oauth-state-store test", REDIRECT, &[])
        .await
        .unwrap();
    let url = manager
        .get_authorization_url(&["mcp:tools", "read"])
        .await
        .unwrap();
    println!("CLIENT_ID={}", config.client_id);
    println!("AUTH_URL={url}");
}

/// Child: reads `code state iss` from stdin and exchanges the code. With `forged_iss_first`,
/// first tries a callback whose `iss` is wrong, which must fail and leave the flow usable.
async fn finish(forged_iss_first: bool) {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).unwrap();
    let [code, state, iss] = input.lines().collect::<Vec<_>>()[..] else {
        panic!("expected code, state and iss on stdin");
    };
    let mut manager = manager().await;
    manager
        .configure_client(OAuthClientConfig::new(env(CLIENT), REDIRECT))
        .unwrap();
    if forged_iss_first {
        let forged = manager
            .exchange_code_for_token_with_issuer(code, state, Some("http://127.0.0.1:1"))
            .await;
        println!("FORGED_ISS_REFUSED={}", forged.is_err());
    }
    match manager
        .exchange_code_for_token_with_issuer(code, state, Some(iss))
        .await
    {
        Ok(token) => {
            let token = serde_json::to_value(&token).unwrap();
            let access = token["access_token"].as_str().expect("an access token");
            println!("TOKEN_SHA256={}", s256(access));
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.contains(state) && !message.contains(code),
                "{message}"
            );
            println!("EXCHANGE_ERROR={message}");
        }
    }
}

#[tokio::test]
#[ignore = "child process of rmcp_authorization_code_flow_across_processes"]
async fn rmcp_e2e_child_finish() {
    finish(true).await;
}

#[tokio::test]
#[ignore = "child process of rmcp_authorization_code_flow_across_processes"]
async fn rmcp_e2e_child_replay() {
    finish(false).await;
}

#[test]
fn rmcp_authorization_code_flow_across_processes() {
    let server = AuthServer::start();
    let fx = Fixture::new();
    let base = format!("{}/mcp", server.origin);
    let path = fx.path.to_str().unwrap();
    let run = |name: &str, client: &str, stdin: &str| {
        let vars = [
            (DB, path),
            (BASE, base.as_str()),
            (CLIENT, client),
            NO_PROXY,
        ];
        let out = run_child(name, &vars, stdin);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };

    // Process 1 starts the login and exits; only the file remembers the verifier.
    let begun = run("rmcp_e2e_child_begin", "", "");
    let client_id = lines_with(&begun, "CLIENT_ID=").pop().expect("client id");
    let auth_url = lines_with(&begun, "AUTH_URL=")
        .pop()
        .expect("authorization URL");
    assert!(
        auth_url.contains("code_challenge_method=S256"),
        "{auth_url}"
    );
    let store = StoreOptions::default().open(&fx.path).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.counts.pending, stats.counts.total()), (1, 1));

    // The browser: the authorization server approves and redirects with code, state, iss.
    let (status, headers, _) = http("GET", &auth_url, None);
    assert_eq!(status, 302);
    let callback = url::Url::parse(&headers["location"]).unwrap();
    let param = |name: &str| {
        callback
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let stdin = format!("{}\n{}\n{}\n", param("code"), param("state"), param("iss"));
    let info = store.check(&param("state")).unwrap();
    assert_eq!(info.server_id, base);
    assert_eq!(info.scope.as_deref(), Some("mcp:tools read"));
    assert_eq!(info.issuer.as_deref(), Some(server.origin.as_str()));

    // Process 2 receives the callback: a forged `iss` is refused without burning the flow,
    // then the real one is exchanged with the verifier process 1 saved.
    let finished = run("rmcp_e2e_child_finish", &client_id, &stdin);
    assert_eq!(lines_with(&finished, "FORGED_ISS_REFUSED="), ["true"]);
    let token = lines_with(&finished, "TOKEN_SHA256=");
    assert_eq!(
        token,
        server.state.lock().unwrap().issued,
        "no token received"
    );
    assert_eq!(server.token_requests(), 1);
    assert_eq!(store.stats().unwrap().counts.consumed, 1);

    // Process 3 replays the same callback: refused before any token request is made.
    let replayed = run("rmcp_e2e_child_replay", &client_id, &stdin);
    assert!(lines_with(&replayed, "TOKEN_SHA256=").is_empty());
    let error = lines_with(&replayed, "EXCHANGE_ERROR=")
        .pop()
        .expect("an error");
    assert!(error.contains("not found"), "{error}");
    assert_eq!(
        server.token_requests(),
        1,
        "the replay reached the token endpoint"
    );
}

#[test]
fn two_processes_racing_one_callback_make_one_token_request() {
    let server = AuthServer::start();
    let fx = Fixture::new();
    let base = format!("{}/mcp", server.origin);
    let path = fx.path.to_str().unwrap();
    let begun = run_child(
        "rmcp_e2e_child_begin",
        &[(DB, path), (BASE, &base), NO_PROXY],
        "",
    );
    assert!(
        begun.status.success(),
        "{}",
        String::from_utf8_lossy(&begun.stderr)
    );
    let client_id = lines_with(&begun, "CLIENT_ID=").pop().expect("client id");
    let auth_url = lines_with(&begun, "AUTH_URL=")
        .pop()
        .expect("authorization URL");
    let (status, headers, _) = http("GET", &auth_url, None);
    assert_eq!(status, 302);
    let callback = url::Url::parse(&headers["location"]).unwrap();
    let stdin: String = ["code", "state", "iss"]
        .iter()
        .map(|name| {
            let value = callback.query_pairs().find(|(k, _)| k == name).unwrap().1;
            format!("{value}\n")
        })
        .collect();

    // The same callback reaches two processes at once (a double-delivered redirect).
    let vars = [
        (DB, path),
        (BASE, base.as_str()),
        (CLIENT, client_id.as_str()),
        NO_PROXY,
    ];
    let mut children: Vec<_> = (0..2)
        .map(|_| spawn_child("rmcp_e2e_child_replay", &vars))
        .collect();
    for child in &mut children {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
    }
    let mut tokens = 0;
    let mut errors = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokens += lines_with(&out, "TOKEN_SHA256=").len();
        errors += lines_with(&out, "EXCHANGE_ERROR=").len();
    }
    assert_eq!(
        (tokens, errors),
        (1, 1),
        "exactly one process may get the token"
    );
    assert_eq!(server.token_requests(), 1, "the loser sent its verifier");
}

#[test]
fn the_token_endpoint_checks_pkce() {
    let server = AuthServer::start();
    let origin = &server.origin;
    let (status, _, body) = http(
        "POST",
        &format!("{origin}/register"),
        Some(r#"{"redirect_uris":["http://127.0.0.1:9/cb"]}"#),
    );
    assert_eq!(status, 201, "{body}");
    let right = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let wrong = "Wrong-verifier-0000000000000000000000000000";
    let authorize = format!(
        "{origin}/authorize?response_type=code&client_id=client-1&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=s&code_challenge={}&code_challenge_method=S256",
        s256(right)
    );
    let code = |()| {
        let (status, headers, _) = http("GET", &authorize, None);
        assert_eq!(status, 302);
        let location = url::Url::parse(&headers["location"]).unwrap();
        let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1;
        code.into_owned()
    };
    let token = |code: &str, verifier: &str| {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("client_id", "client-1")
            .append_pair("redirect_uri", "http://127.0.0.1:9/cb")
            .append_pair("code_verifier", verifier)
            .finish();
        http("POST", &format!("{origin}/token"), Some(&form))
    };
    let (status, _, body) = token(&code(()), wrong);
    assert_eq!(
        (status, body.contains("invalid_grant")),
        (400, true),
        "{body}"
    );
    let (status, _, body) = token(&code(()), right);
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.token_requests(), 2);
}
