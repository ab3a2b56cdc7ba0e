//! A real authorization server that rotates refresh tokens and revokes the grant when a rotated
//! one is presented again: oidc-provider, run by Node.js from `bindings/node/node_modules`
//! (`bindings/node/test/support/rotating-server.mjs`), one process per scenario. It counts the
//! token requests itself (`GET /stats`), so what reached it is counted there, not in a client.
//!
//! Where Node.js or the package is missing, [`RotatingServer::start`] prints `SKIPPED: ...` and
//! returns `None`, unless `OSS_REQUIRE_NODE=1` (CI sets it, after `npm ci`): then it panics.
//! Also a minimal HTTP/1.1 client for the refresh request, so that the tests need no HTTP
//! crate.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The variable that turns a missing Node.js or oidc-provider into a failure.
pub const REQUIRE_VAR: &str = "OSS_REQUIRE_NODE";

/// A running server, stopped (its stdin closed, then killed) on drop.
pub struct RotatingServer {
    child: Child,
    pub issuer: String,
    pub token_endpoint: String,
    pub client_id: String,
    /// The login's token response (a secret of this test only).
    pub login: Value,
}

/// What the server counted.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Token requests with `grant_type=refresh_token`.
    pub refresh_requests: u64,
    pub refresh_successes: u64,
    /// Refresh errors by OAuth error code.
    pub refresh_errors: HashMap<String, u64>,
    /// Grants revoked (oidc-provider revokes the grant of a reused refresh token).
    pub revoked: u64,
}

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bindings/node")
}

fn skip_or_fail(test: &str, why: &str) -> Option<RotatingServer> {
    assert!(
        !std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1"),
        "{REQUIRE_VAR}=1 but the authorization server cannot run: {why}"
    );
    println!("SKIPPED: {test}: {why} (run `npm ci` in bindings/node)");
    None
}

impl RotatingServer {
    /// Starts a fresh server whose access tokens live `access_ttl` seconds (at least 2), and
    /// signs its test account in; `None` where Node.js or oidc-provider is missing.
    pub fn start(test: &str, access_ttl: u32) -> Option<RotatingServer> {
        let dir = package_dir();
        if !dir
            .join("node_modules/oidc-provider/package.json")
            .is_file()
        {
            return skip_or_fail(test, "bindings/node/node_modules has no oidc-provider");
        }
        let spawned = Command::new("node")
            .arg(dir.join("test/support/rotating-server.mjs"))
            .arg(access_ttl.to_string())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return skip_or_fail(test, &format!("node could not start: {e}")),
        };
        let stdout = child.stdout.take().expect("server stdout");
        let mut first = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read the server's stdout");
            if line.starts_with('{') {
                first = Some(line);
                break;
            }
        }
        let Some(line) = first else {
            let _ = child.kill();
            panic!("the authorization server exited before it was ready");
        };
        let ready: Value = serde_json::from_str(&line).expect("the server's JSON line");
        let text = |k: &str| ready[k].as_str().expect("a string").to_owned();
        Some(RotatingServer {
            issuer: text("issuer"),
            token_endpoint: text("tokenEndpoint"),
            client_id: text("clientId"),
            login: ready["tokens"].clone(),
            child,
        })
    }

    /// The counters, as the server has them now.
    pub fn stats(&self) -> Stats {
        let (status, body) =
            http("GET", &format!("{}/stats", self.issuer), None).expect("GET /stats");
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("stats JSON");
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        let mut refresh_errors = HashMap::new();
        if let Some(errors) = v["errors"].as_object() {
            for (k, count) in errors {
                if let Some(code) = k.strip_prefix("refresh_token:") {
                    refresh_errors.insert(code.to_owned(), n(count));
                }
            }
        }
        Stats {
            refresh_requests: n(&v["requests"]["refresh_token"]),
            refresh_successes: n(&v["success"]["refresh_token"]),
            refresh_errors,
            revoked: n(&v["revoked"]),
        }
    }
}

impl Drop for RotatingServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a token endpoint answered.
#[derive(Debug)]
pub enum TokenReply {
    /// A 200 with a JSON body.
    Tokens(Value),
    /// An error status with the OAuth error code (`invalid_grant`, ...), if any.
    Refused { status: u16, error: Option<String> },
}

/// A `grant_type=refresh_token` request: the reply, or why none arrived.
pub fn refresh_request(
    token_endpoint: &str,
    client_id: &str,
    refresh_token: &str,
) -> Result<TokenReply, String> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token)
        .append_pair("client_id", client_id)
        .finish();
    let (status, body) = http("POST", token_endpoint, Some(&form))?;
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if status == 200 {
        Ok(TokenReply::Tokens(json))
    } else {
        Ok(TokenReply::Refused {
            status,
            error: json["error"].as_str().map(str::to_owned),
        })
    }
}

/// One HTTP/1.1 request on loopback, `Connection: close`: (status, body). Understands a
/// chunked body.
pub fn http(method: &str, url: &str, form: Option<&str>) -> Result<(u16, String), String> {
    let url = url::Url::parse(url).map_err(|e| e.to_string())?;
    let host = url.host_str().ok_or("no host")?;
    let port = url.port_or_known_default().ok_or("no port")?;
    let mut stream = TcpStream::connect((host, port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let body = form.unwrap_or("");
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        url.authority(),
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no response head")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    ))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
