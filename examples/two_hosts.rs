//! Two "hosts" on one PostgreSQL: this process begins a login with its own `Store`, a second
//! process (this example run again, as if behind a load balancer on another machine) opens
//! its own `Store` on the same URL and consumes the callback's state.
//!
//! ```text
//! cargo run --example two_hosts --features postgres -- 'postgresql://USER@HOST:PORT/DB?sslmode=disable'
//! ```
//!
//! The state travels to the second process on stdin, never in its arguments.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

use oauth_state_store::{BeginRequest, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: two_hosts postgresql://USER@HOST:PORT/DB[?sslmode=...]")?;
    if args.next().as_deref() == Some("--callback-host") {
        // The second host: its own Store, the state from the browser's callback.
        let store = Store::open(&url)?;
        let mut state = String::new();
        std::io::stdin().lock().read_line(&mut state)?;
        let flow = store.consume(state.trim())?;
        println!(
            "callback host: consumed the flow of {} begun elsewhere; verifier ready for the \
             token request ({} characters)",
            flow.info.server_id,
            flow.verifier.secret().len()
        );
        // A replayed callback, on any host, is told apart from a forged one.
        match store.consume(state.trim()) {
            Err(e) => println!("callback host: a replay is refused: {e}"),
            Ok(_) => return Err("a replayed callback was accepted".into()),
        }
        return Ok(());
    }

    // The first host: begins the login (the user would now be sent to the authorization URL).
    let store = Store::open(&url)?;
    let flow = store.begin(
        BeginRequest::new("https://mcp.example.com").redirect_uri("https://app.example.com/cb"),
    )?;
    println!(
        "login host: began a flow, store {}, authorization URL ready",
        store.store_id()
    );
    let mut other = Command::new(std::env::current_exe()?)
        .args([url.as_str(), "--callback-host"])
        .stdin(Stdio::piped())
        .spawn()?;
    writeln!(
        other.stdin.take().ok_or("stdin")?,
        "{}",
        flow.state().secret()
    )?;
    if !other.wait()?.success() {
        return Err("the callback host failed".into());
    }
    Ok(())
}
