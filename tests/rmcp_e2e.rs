//! End to end through rmcp's own `AuthorizationManager`, against an authorization server on
//! 127.0.0.1 in this test: one process builds the authorization URL and exits, another
//! delivers the callback and exchanges the code, and a replayed callback fails without ever
//! reaching the token endpoint.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{lines_with, run_child, spawn_child, Fixture};
use oauth_state_store::{RmcpStateStore, State, StoreOptions};
use rmcp::transport::auth::{AuthorizationManager, OAuthClientConfig};
use serde_json::json;
use sha2::{Digest, Sha256};

// ---- a tiny authorization server ----

struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
}

#[derive(Default)]
struct AsState {
    /// client_id -> registered redirect URI.
    clients: HashMap<String, String>,
    /// Issued, unused codes.
    codes: HashMap<String, Grant>,
    /// Every request that reached the token endpoint.
    token_requests: u32,
    /// SHA-256 (base64url) of each access token issued.
    issued: Vec<String>,
}

/// Metadata (RFC 8414), dynamic registration (RFC 7591), an authorization endpoint that
/// approves at once, and a token endpoint that checks S256 PKCE. Loopback only; stopped on drop.
struct AuthServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    state: Arc<Mutex<AsState>>,
    origin: String,
}

type Reply = (u16, Vec<(&'static str, String)>, String);

impl AuthServer {
    fn start() -> AuthServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().unwrap().port();
        let origin = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(AsState::default()));
        let thread = {
            let (server, state, origin) = (server.clone(), state.clone(), origin.clone());
            std::thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    let mut body = String::new();
                    let _ = request.as_reader().read_to_string(&mut body);
                    let target = url::Url::parse(&format!("{origin}{}", request.url())).unwrap();
                    let (status, headers, text) =
                        route(&state, &origin, request.method().as_str(), &target, &body);
                    let mut response = tiny_http::Response::from_string(text)
                        .with_status_code(status)
                        .with_header(
                            tiny_http::Header::from_bytes("Content-Type", "application/json")
                                .unwrap(),
                        );
                    for (name, value) in headers {
                        response.add_header(
                            tiny_http::Header::from_bytes(name, value.as_bytes()).unwrap(),
                        );
                    }
                    let _ = request.respond(response);
                }
            })
        };
        AuthServer {
            server,
            thread: Some(thread),
            state,
            origin,
        }
    }

    fn token_requests(&self) -> u32 {
        self.state.lock().unwrap().token_requests
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn error(status: u16, code: &str) -> Reply {
    (status, vec![], json!({ "error": code }).to_string())
}

fn route(state: &Mutex<AsState>, origin: &str, method: &str, url: &url::Url, body: &str) -> Reply {
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let mut st = state.lock().unwrap();
    match (method, url.path()) {
        ("GET", "/.well-known/oauth-authorization-server") => {
            let metadata = json!({
                "issuer": origin,
                "authorization_endpoint": format!("{origin}/authorize"),
                "token_endpoint": format!("{origin}/token"),
                "registration_endpoint": format!("{origin}/register"),
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "authorization_response_iss_parameter_supported": true,
            });
            (200, vec![], metadata.to_string())
        }
        ("POST", "/register") => {
            let request: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            let Some(redirect) = request["redirect_uris"][0].as_str() else {
                return error(400, "invalid_redirect_uri");
            };
            let client_id = format!("client-{}", st.clients.len() + 1);
            st.clients.insert(client_id.clone(), redirect.to_owned());
            let reply = json!({ "client_id": client_id, "redirect_uris": [redirect] });
            (201, vec![], reply.to_string())
        }
        ("GET", "/authorize") => {
            let (Some(client_id), Some(redirect), Some(challenge)) = (
                query.get("client_id"),
                query.get("redirect_uri"),
                query.get("code_challenge"),
            ) else {
                return error(400, "invalid_request");
            };
            if query.get("response_type").map(String::as_str) != Some("code")
                || query.get("code_challenge_method").map(String::as_str) != Some("S256")
                || st.clients.get(client_id) != Some(redirect)
            {
                return error(400, "invalid_request");
            }
            let code = State::generate().secret().to_owned();
            let mut location = url::Url::parse(redirect).unwrap();
            location
                .query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", query.get("state").map_or("", String::as_str))
                .append_pair("iss", origin);
            st.codes.insert(
                code,
                Grant {
                    client_id: client_id.clone(),
                    redirect_uri: redirect.clone(),
                    challenge: challenge.clone(),
                },
            );
            (302, vec![("Location", location.to_string())], String::new())
        }
        ("POST", "/token") => {
            st.token_requests += 1;
            if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
                return error(400, "unsupported_grant_type");
            }
            let Some(grant) = form.get("code").and_then(|c| st.codes.remove(c)) else {
                return error(400, "invalid_grant");
            };
            let verifier = form.get("code_verifier").map_or("", String::as_str);
            if form.get("client_id") != Some(&grant.client_id)
                || form.get("redirect_uri") != Some(&grant.redirect_uri)
                || s256(verifier) != grant.challenge
            {
                return error(400, "invalid_grant");
            }
            let token = State::generate().secret().to_owned();
            st.issued.push(s256(&token));
            let reply =
                json!({ "access_token": token, "token_type": "Bearer", "expires_in": 3600 });
            (200, vec![], reply.to_string())
        }
        _ => error(404, "not_found"),
    }
}

/// A minimal HTTP/1.1 request on loopback: (status, headers, body).
fn http(method: &str, url: &str, form: Option<&str>) -> (u16, HashMap<String, String>, String) {
    let url = url::Url::parse(url).unwrap();
    let mut stream =
        TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).expect("connect");
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let body = form.unwrap_or("");
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        url.authority(),
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

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
