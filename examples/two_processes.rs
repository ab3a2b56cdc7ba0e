//! Two processes, one store file, one callback port: the process that holds the port completes
//! the other process's login, through the file.
//!
//! ```text
//! cargo run --example two_processes
//! ```
//!
//! Process A (this one) opens a store in a temporary directory and holds the callback port.
//! It starts process B (this same program again). B finds the port served by a listener on the
//! same file, so it starts none; it begins a flow and hands the authorization URL to the
//! "browser" (A, over B's stdout pipe; secrets never go in argv). A plays the browser: the
//! authorization server's redirect lands on A's listener, which records the code on B's row.
//! B's wait returns and B consumes the flow. A replays the callback and gets "already used".
//! Finally A shows the error for a port held by another program.
//!
//! It prints what happened, finishes within seconds, and exits non-zero if anything goes wrong.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use oauth_state_store::{
    BeginRequest, Error, ListenerOptions, LoopbackCallback, Store, StoreOptions,
};

const ROLE: &str = "TWO_PROCESSES_ROLE";
const DB: &str = "TWO_PROCESSES_DB";
const PORT: &str = "TWO_PROCESSES_PORT";
/// The code the pretend authorization server puts in the redirect.
const CODE: &str = "demo-authorization-code";
/// How long anything may take before the demo gives up.
const LIMIT: Duration = Duration::from_secs(10);

type Outcome = Result<(), String>;

fn main() -> ExitCode {
    let result = if std::env::var_os(ROLE).is_some() {
        process_b()
    } else {
        process_a()
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("FAILED: {why}");
            ExitCode::FAILURE
        }
    }
}

fn options() -> ListenerOptions {
    ListenerOptions::default().probe_timeout(Duration::from_millis(300))
}

fn process_a() -> Outcome {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let db = dir.path().join("flows.db");
    let store = Store::open(&db).map_err(|e| format!("open store: {e}"))?;
    let callback = LoopbackCallback::attach(&store, options()).map_err(|e| e.to_string())?;
    let port = callback.port();
    println!("A: store {} (id {})", db.display(), store.store_id());
    println!("A: holds the callback port: {}", callback.redirect_uri());

    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let mut b = Command::new(exe)
        .env(ROLE, "b")
        .env(DB, &db)
        .env(PORT, port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("start process B: {e}"))?;
    println!("A: started process B (pid {})", b.id());
    let lines = b.stdout.take().ok_or("no stdout from B")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(lines).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_from_b = |what: &str| -> Result<String, String> {
        loop {
            let line = rx
                .recv_timeout(LIMIT)
                .map_err(|_| format!("process B stopped or stalled before {what}"))?;
            match line.strip_prefix("AUTH_URL ") {
                Some(url) => return Ok(url.to_owned()),
                None if line.starts_with("B: ") => {
                    println!("{line}");
                    if line.starts_with("B: done") {
                        return Ok(line);
                    }
                }
                None => {}
            }
        }
    };

    let result = (|| {
        let auth_url = next_from_b("sending its authorization URL")?;
        println!("A: the user opens B's authorization URL (state and challenge not shown)");
        let (state, target) = redirect_target(&auth_url)?;

        println!("A: the authorization server redirects the browser to 127.0.0.1:{port}");
        let (status, title) = http_get(port, &target)?;
        println!("A: browser got {status} \"{title}\" from A's listener");
        if status != 200 {
            return Err(format!("the callback was answered with {status}"));
        }
        let mut stdin = b.stdin.take().ok_or("no stdin for B")?;
        writeln!(stdin, "{CODE}").map_err(|e| format!("write to B: {e}"))?;
        drop(stdin);
        next_from_b("finishing")?;
        let status = b.wait().map_err(|e| format!("wait for B: {e}"))?;
        if !status.success() {
            return Err(format!("process B failed ({status})"));
        }

        let (status, title) = http_get(port, &target)?;
        println!("A: a replay of the same callback got {status} \"{title}\"");
        if status != 409 {
            return Err(format!("the replay was answered with {status}, not 409"));
        }
        match store.check(&state) {
            Err(Error::AlreadyConsumed) => println!("A: B's flow is consumed and undisturbed"),
            other => return Err(format!("B's flow after the replay: {other:?}")),
        }

        let squatter = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|e| format!("bind: {e}"))?;
        let taken = squatter.local_addr().map_err(|e| e.to_string())?.port();
        match LoopbackCallback::attach(&store, options().port(taken)) {
            Err(e @ Error::PortInUse { .. }) => {
                println!("A: a port held by another program fails at once:\n   {e}")
            }
            other => return Err(format!("a squatted port gave {other:?}")),
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = b.kill();
        let _ = b.wait();
    } else {
        println!("A: all good");
    }
    result
}

fn process_b() -> Outcome {
    let db = std::env::var_os(DB).ok_or("no database path")?;
    let port: u16 = std::env::var(PORT)
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or("no port")?;
    let store = StoreOptions::default()
        .create_if_missing(false)
        .open(&db)
        .map_err(|e| format!("open store: {e}"))?;
    let callback =
        LoopbackCallback::attach(&store, options().port(port)).map_err(|e| e.to_string())?;
    if callback.holds_port() {
        return Err("B bound the port itself; A should have held it".into());
    }
    println!("B: port {port} is served by a listener on this same store file; B starts none");
    let flow = store
        .begin(
            BeginRequest::new("https://mcp.example.com")
                .client_id("two-processes-example")
                .redirect_uri(callback.redirect_uri()),
        )
        .map_err(|e| format!("begin: {e}"))?;
    let url = flow
        .authorization_url("https://auth.example.com/authorize")
        .map_err(|e| e.to_string())?;
    println!("B: began a flow; waiting for its callback");
    println!("AUTH_URL {url}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;

    let done = callback
        .wait(flow.state().secret(), LIMIT)
        .map_err(|e| format!("wait: {e}"))?;
    let mut expected = String::new();
    std::io::stdin()
        .read_line(&mut expected)
        .map_err(|e| format!("read stdin: {e}"))?;
    let code = done.code.ok_or("the flow has no code")?;
    if code.secret() != expected.trim_end() {
        return Err("B got a different code than the browser carried".into());
    }
    if done.verifier.challenge().as_str() != flow.code_challenge().as_str() {
        return Err("the verifier does not match the flow's challenge".into());
    }
    println!(
        "B: wait returned; consumed the flow: the code the browser carried, and a {}-character \
         verifier for the token request (neither shown)",
        done.verifier.secret().len()
    );
    println!("B: done");
    Ok(())
}

/// The callback the authorization server would redirect to: (state, path?code&state).
fn redirect_target(auth_url: &str) -> Result<(String, String), String> {
    let url = url::Url::parse(auth_url).map_err(|e| format!("authorization URL: {e}"))?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .ok_or(format!("the authorization URL has no {name}"))
    };
    let state = param("state")?;
    let redirect = url::Url::parse(&param("redirect_uri")?).map_err(|e| e.to_string())?;
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", CODE)
        .append_pair("state", &state)
        .finish();
    Ok((state, format!("{}?{query}", redirect.path())))
}

/// A minimal browser: `GET target` on 127.0.0.1:port; returns the status and the page title.
fn http_get(port: u16, target: &str) -> Result<(u16, String), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, LIMIT).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(LIMIT)).map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(at)) = resp.parse(&answer) else {
        return Err("not an HTTP answer".into());
    };
    let body = String::from_utf8_lossy(&answer[at..]);
    let title = body
        .split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map(|(t, _)| t.to_owned())
        .unwrap_or_default();
    Ok((resp.code.unwrap_or(0), title))
}
