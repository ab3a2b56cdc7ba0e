//! A tiny OAuth authorization server on 127.0.0.1 for the rmcp end-to-end tests: metadata
//! (RFC 8414), dynamic registration (RFC 7591), an authorization endpoint that approves at
//! once, and a token endpoint that checks S256 PKCE; plus a minimal HTTP client.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use oauth_state_store::State;
use serde_json::json;
use sha2::{Digest, Sha256};

pub struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
}

#[derive(Default)]
pub struct AsState {
    /// client_id -> registered redirect URI.
    pub clients: HashMap<String, String>,
    /// Issued, unused codes.
    pub codes: HashMap<String, Grant>,
    /// Every request that reached the token endpoint.
    pub token_requests: u32,
    /// SHA-256 (base64url) of each access token issued.
    pub issued: Vec<String>,
}

/// Metadata (RFC 8414), dynamic registration (RFC 7591), an authorization endpoint that
/// approves at once, and a token endpoint that checks S256 PKCE. Loopback only; stopped on drop.
pub struct AuthServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    pub state: Arc<Mutex<AsState>>,
    pub origin: String,
}

type Reply = (u16, Vec<(&'static str, String)>, String);

impl AuthServer {
    pub fn start() -> AuthServer {
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

    pub fn token_requests(&self) -> u32 {
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

pub fn s256(verifier: &str) -> String {
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
pub fn http(method: &str, url: &str, form: Option<&str>) -> (u16, HashMap<String, String>, String) {
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
