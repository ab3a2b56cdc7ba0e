//! The child-process roles that the multi-process listener suites (`listener_processes`,
//! `listener_handover`) share: a holder of the callback port and a waiter for one flow's
//! callback, each reading the store file and the port from its environment.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ChildStdout;
use std::time::Duration;

use oauth_state_store::{
    BeginRequest, Flow, ListenerOptions, LoopbackCallback, Store, StoreOptions,
};

/// The store file a child opens.
pub const ENV_DB: &str = "LISTENER_CHILD_DB";
/// The callback port a child attaches to.
pub const ENV_PORT: &str = "LISTENER_CHILD_PORT";

/// A store with the system clock (the processes must agree on time).
pub fn open_shared(path: &Path) -> Store {
    StoreOptions::default().open(path).expect("open store")
}

/// The store file and port a parent gave this child; `None` when not run as a child.
pub fn child_env() -> Option<(PathBuf, u16)> {
    let db = std::env::var_os(ENV_DB)?;
    let port = std::env::var(ENV_PORT).ok()?.parse().ok()?;
    Some((db.into(), port))
}

/// The next line the child prints that starts with `prefix`, without it.
pub fn next_with(out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
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

/// Holder role: attaches to the port with `options`, prints `HOLDS <bool>`, and holds it
/// until its stdin closes (or it is killed).
pub fn hold(options: ListenerOptions) {
    let Some((db, port)) = child_env() else {
        eprintln!("child_holder runs only as a child of the multi-process listener tests");
        return;
    };
    let store = open_shared(&db);
    let cb = LoopbackCallback::attach(&store, options.port(port)).unwrap();
    println!("HOLDS {}", cb.holds_port());
    std::io::stdout().flush().unwrap();
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
}

/// Begins a flow whose redirect URI is `cb`'s and prints its authorization URL
/// (`AUTH_URL ...`) for the parent's "browser".
pub fn begin_printing_url(store: &Store, cb: &LoopbackCallback) -> Flow {
    let flow = store
        .begin(
            BeginRequest::new("https://mcp.example.com")
                .client_id("cli")
                .redirect_uri(cb.redirect_uri()),
        )
        .unwrap();
    let url = flow
        .authorization_url("https://auth.example.com/authorize")
        .unwrap();
    println!("AUTH_URL {url}");
    std::io::stdout().flush().unwrap();
    flow
}

/// Waiter role: attaches with `options`, begins a flow on the port, prints `HOLDS`, the
/// `AUTH_URL` for the "browser", waits up to `timeout` for the callback and consumes it, then
/// checks the code against the one the parent sends on stdin (`CODE_MATCH`), the verifier
/// against the flow's challenge (`VERIFIER_MATCH`), and prints `HOLDS_AFTER`.
pub fn begin_and_wait(options: ListenerOptions, timeout: Duration) {
    let Some((db, port)) = child_env() else {
        eprintln!("child_waiter runs only as a child of the multi-process listener tests");
        return;
    };
    let store = open_shared(&db);
    let cb = LoopbackCallback::attach(&store, options.port(port)).unwrap();
    println!("HOLDS {}", cb.holds_port());
    let flow = begin_printing_url(&store, &cb);
    let done = cb.wait(flow.state().secret(), timeout).unwrap();
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
