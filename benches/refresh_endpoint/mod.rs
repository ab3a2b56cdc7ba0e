//! A rotating token endpoint in the bench process (tiny_http on 127.0.0.1), so that the
//! request's own cost is small and steady: each refresh with the current refresh token gets a
//! new access and refresh token; any other token is `invalid_grant` (counted: a single-flight
//! refresh must never cause one). An optional delay holds each answer, for the waiters' bench.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oauth_state_store::{AccessToken, Exchange, RefreshToken, TokenResponse};

pub struct Endpoint {
    pub url: String,
    current: Arc<Mutex<(u64, String)>>,
    pub refused: Arc<AtomicU64>,
    pub served: Arc<AtomicU64>,
    delay_ms: Arc<AtomicU64>,
    server: Arc<tiny_http::Server>,
}

impl Endpoint {
    /// Starts the endpoint; `first` is the refresh token it accepts first.
    pub fn start(first: &str) -> Endpoint {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().unwrap().port();
        let current = Arc::new(Mutex::new((0, first.to_owned())));
        let refused = Arc::new(AtomicU64::new(0));
        let served = Arc::new(AtomicU64::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (s, c, r, n, d) = (
            server.clone(),
            current.clone(),
            refused.clone(),
            served.clone(),
            delay_ms.clone(),
        );
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
                let presented = url::form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "refresh_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let delay = d.load(Ordering::SeqCst);
                if delay > 0 {
                    std::thread::sleep(Duration::from_millis(delay));
                }
                let reply = {
                    let mut cur = c.lock().unwrap();
                    if presented == cur.1 {
                        cur.0 += 1;
                        cur.1 = format!("bench-rt-{}-{}", cur.0, random());
                        n.fetch_add(1, Ordering::SeqCst);
                        (
                            200,
                            format!(
                                r#"{{"access_token":"bench-at-{}-{}","token_type":"Bearer","expires_in":3600,"refresh_token":"{}"}}"#,
                                cur.0,
                                random(),
                                cur.1
                            ),
                        )
                    } else {
                        r.fetch_add(1, Ordering::SeqCst);
                        (400, r#"{"error":"invalid_grant"}"#.to_owned())
                    }
                };
                let response = tiny_http::Response::from_string(reply.1)
                    .with_status_code(reply.0)
                    .with_header(
                        tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap(),
                    );
                let _ = request.respond(response);
            }
        });
        Endpoint {
            url: format!("http://127.0.0.1:{port}/token"),
            current,
            refused,
            served,
            delay_ms,
            server,
        }
    }

    /// Holds each answer for `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The refresh token it accepts now (for the bare requests, which keep no store).
    pub fn current(&self) -> String {
        self.current.lock().unwrap().1.clone()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn random() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// One refresh request: the response's tokens, the refused token's error, or the failure.
pub fn request(url: &str, refresh_token: &str) -> Exchange<String> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token)
        .finish();
    match crate::oidc::http("POST", url, Some(&form)) {
        Ok((200, body)) => {
            let json: serde_json::Value = serde_json::from_str(&body).expect("token JSON");
            let text = |k: &str| json[k].as_str().expect("a token").to_owned();
            Exchange::Tokens(
                TokenResponse::new(AccessToken::new(text("access_token")).unwrap(), "Bearer")
                    .refresh_token(RefreshToken::new(text("refresh_token")).unwrap())
                    .expires_in(Duration::from_secs(3600)),
            )
        }
        Ok((_, body)) if body.contains("invalid_grant") => {
            Exchange::Rejected("invalid_grant".into())
        }
        Ok((status, _)) => Exchange::Failed(format!("status {status}")),
        Err(e) => Exchange::Failed(e),
    }
}
