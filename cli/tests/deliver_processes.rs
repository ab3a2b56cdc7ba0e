//! A callback that never reaches the loopback port: process A waits on its flow, a real
//! (loopback, PKCE-checking) authorization server redirects, and `oauth-state-store deliver -`
//! run in process B records the URL the browser ended on. Real OS processes, 127.0.0.1 only.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/http_client/mod.rs"]
mod http_client;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{dump_flows, spawn_child, Fixture};
use http_client::get;
use oauth_state_store::{BeginRequest, ListenerOptions, LoopbackCallback, StoreOptions};
use sha2::{Digest, Sha256};

const ENV_DB: &str = "DELIVER_TEST_DB";
const ENV_AS: &str = "DELIVER_TEST_AS";
const ISSUER: &str = "https://as.example";

/// The authorization server: `/authorize` issues a code for the challenge and redirects to
/// the redirect URI (with `iss`); `/token` hands a token out only for the matching verifier.
struct AuthServer {
    server: Arc<tiny_http::Server>,
    port: u16,
}

impl AuthServer {
    fn start() -> AuthServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let s = Arc::clone(&server);
        let codes: Mutex<HashMap<String, String>> = Mutex::default();
        thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let url = url::Url::parse(&format!("http://as{}", req.url())).unwrap();
                let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let (status, location, text) = match url.path() {
                    "/authorize"
                        if q.get("code_challenge_method").map(String::as_str) == Some("S256") =>
                    {
                        let code = format!("code-{}", codes.lock().unwrap().len() + 1);
                        codes
                            .lock()
                            .unwrap()
                            .insert(code.clone(), q["code_challenge"].clone());
                        let mut to = url::Url::parse(&q["redirect_uri"]).unwrap();
                        to.query_pairs_mut()
                            .append_pair("code", &code)
                            .append_pair("state", &q["state"])
                            .append_pair("iss", ISSUER);
                        (302, Some(to.to_string()), String::new())
                    }
                    "/token" => {
                        let f: HashMap<String, String> =
                            url::form_urlencoded::parse(body.as_bytes())
                                .into_owned()
                                .collect();
                        let challenge = codes.lock().unwrap().remove(&f["code"]);
                        let got =
                            URL_SAFE_NO_PAD.encode(Sha256::digest(f["code_verifier"].as_bytes()));
                        if challenge == Some(got) {
                            (200, None, "{\"access_token\":\"t\"}".to_owned())
                        } else {
                            (400, None, "{\"error\":\"invalid_grant\"}".to_owned())
                        }
                    }
                    _ => (400, None, String::new()),
                };
                let mut r = tiny_http::Response::from_string(text).with_status_code(status);
                if let Some(l) = location {
                    r.add_header(tiny_http::Header::from_bytes("Location", l.as_bytes()).unwrap());
                }
                let _ = req.respond(r);
            }
        });
        AuthServer { server, port }
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// POSTs a form to `127.0.0.1:port/token`; the status.
fn post_token(port: u16, form: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: \
         application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Process A: begins a flow on its own listener, prints the authorization URL, waits (the
/// callback never reaches its port), then redeems the code with its verifier.
#[test]
#[ignore = "child process of the deliver tests"]
fn child_waiter() {
    let (Some(db), Ok(as_port)) = (std::env::var_os(ENV_DB), std::env::var(ENV_AS)) else {
        eprintln!("child_waiter runs only as a child of the deliver tests");
        return;
    };
    let as_port: u16 = as_port.parse().unwrap();
    let store = StoreOptions::default().open(db).unwrap();
    let options = ListenerOptions::default()
        .idle_stop(None)
        .poll_max(Duration::from_millis(20));
    let cb = LoopbackCallback::attach(&store, options).unwrap();
    let flow = store
        .begin(
            BeginRequest::new("https://mcp.example.com")
                .client_id("cli")
                .issuer(ISSUER)
                .redirect_uri(cb.redirect_uri()),
        )
        .unwrap();
    let url = flow
        .authorization_url(&format!("http://127.0.0.1:{as_port}/authorize"))
        .unwrap();
    println!("AUTH_URL {url}");
    std::io::stdout().flush().unwrap();
    let done = cb
        .wait(flow.state().secret(), Duration::from_secs(30))
        .unwrap();
    let code = done.code.expect("a code was recorded");
    let form = format!(
        "grant_type=authorization_code&code={}&code_verifier={}",
        code.secret(),
        done.verifier.secret()
    );
    println!("TOKEN_STATUS {}", post_token(as_port, &form));
}

fn next_with(out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "child ended before {prefix:?}"
        );
        if let Some(rest) = line.trim_end().strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
}

/// Process B: the command line, the URL on stdin.
fn deliver_cli(db: &std::path::Path, url: &str, json: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oauth-state-store"));
    cmd.arg("--db").arg(db).arg("deliver").arg("-");
    if json {
        cmd.arg("--json");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{url}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn a_flow_waited_for_in_one_process_is_completed_by_deliver_in_another() {
    let fx = Fixture::new();
    drop(fx.store());
    let auth = AuthServer::start();
    let db = fx.path.to_str().unwrap().to_owned();
    let mut a = spawn_child(
        "child_waiter",
        &[(ENV_DB, &db), (ENV_AS, &auth.port.to_string())],
    );
    let mut out = BufReader::new(a.stdout.take().unwrap());
    let auth_url = url::Url::parse(&next_with(&mut out, "AUTH_URL ")).unwrap();
    let target = format!("{}?{}", auth_url.path(), auth_url.query().unwrap());
    let redirect = get(auth.port, &target);
    assert_eq!(redirect.status, 302);
    let callback = redirect.header("Location").expect("Location").to_owned();

    // A forged state and a foreign issuer change nothing.
    let before = dump_flows(&fx.path);
    let mut forged = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = forged.query_pairs().into_owned().collect();
    let rebuilt = |f: &dyn Fn(&str, &str) -> String| {
        let mut u = forged.clone();
        u.query_pairs_mut().clear();
        for (k, v) in &pairs {
            u.query_pairs_mut().append_pair(k, &f(k, v));
        }
        u.to_string()
    };
    let wrong_state = rebuilt(&|k, v| {
        if k == "state" {
            format!("{v}x")
        } else {
            v.to_owned()
        }
    });
    let wrong_iss = rebuilt(&|k, v| {
        if k == "iss" {
            "https://evil.example".to_owned()
        } else {
            v.to_owned()
        }
    });
    let o = deliver_cli(&fx.path, &wrong_state, false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("unknown state"), "{}", text(&o));
    let o = deliver_cli(&fx.path, &wrong_iss, false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("wrong authorization server"),
        "{}",
        text(&o)
    );
    assert_eq!(dump_flows(&fx.path), before);
    forged.set_path("/elsewhere");
    let o = deliver_cli(&fx.path, forged.as_str(), false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(dump_flows(&fx.path), before);

    // The real one: recorded; process A's wait returns and the token endpoint accepts it.
    let o = deliver_cli(&fx.path, &callback, true);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["outcome"], "recorded");
    assert_eq!(next_with(&mut out, "TOKEN_STATUS "), "200");
    assert!(a.wait().unwrap().success());
    assert!(!text(&o).contains("code-1"), "no code echoed");

    // Again: already used, nothing changed.
    let after = dump_flows(&fx.path);
    let o = deliver_cli(&fx.path, &callback, false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("already used"), "{}", text(&o));
    assert!(!text(&o).contains("code-1"));
    assert_eq!(dump_flows(&fx.path), after);

    // Usage errors: exit 2, no value echoed.
    let o = deliver_cli(&fx.path, "http://127.0.0.1:1/callback?code=code-9", false);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!text(&o).contains("code-9"));
}
