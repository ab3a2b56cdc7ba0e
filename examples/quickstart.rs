//! A full flow on a file in a temporary directory: begin, authorization URL, the callback
//! consumed by a second OS process, a replay refused, a sweep.
//!
//! Run it with `cargo run --example quickstart`.

use std::io::{Read, Write};
use std::process::{Command, ExitCode, Stdio};

use oauth_state_store::{BeginRequest, CodeVerifier, Error, ManualClock, Store, StoreOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        // The second process: the callback's state arrives on stdin, never in argv.
        Some("--callback") => callback(&args[2]),
        _ => first_process(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn first_process() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("flows.db");
    // A clock we can move forward, to show expiry without waiting ten minutes.
    let clock = ManualClock::at_system_time();
    let store = StoreOptions::default().clock(clock.clone()).open(&db)?;
    println!("store {} at {}", store.store_id(), db.display());

    let flow = store.begin(
        BeginRequest::new("https://mcp.example.com")
            .client_id("quickstart-client")
            .redirect_uri("http://127.0.0.1:33418/callback")
            .issuer("https://auth.example.com")
            .scope("mcp:tools"),
    )?;
    let url = flow.authorization_url("https://auth.example.com/authorize")?;
    println!(
        "1. began a flow; send the user to:\n   {}",
        redact_state(&url)
    );

    // The browser's callback lands on another process sharing the file.
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["--callback", db.to_str().ok_or("non-UTF-8 temp path")?])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(flow.state().secret().as_bytes())?;
    let out = child.wait_with_output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        return Err("the second process could not consume the flow".into());
    }

    match store.consume(flow.state().secret()) {
        Err(Error::AlreadyConsumed) => {
            println!("3. a replay of the same callback is refused: already consumed")
        }
        other => return Err(format!("a replay was not refused: {other:?}").into()),
    }
    match store.consume("a-forged-state") {
        Err(Error::UnknownState) => println!("4. a forged state is refused: unknown state"),
        other => return Err(format!("a forged state was not refused: {other:?}").into()),
    }

    // An SDK-style attempt that saved its verifier but never redirected: an orphan.
    store.save_code_verifier(
        "https://mcp.example.com",
        None,
        CodeVerifier::generate().secret(),
    )?;

    let stats = store.stats()?;
    println!(
        "5. rows now: {} tombstone(s), {} live",
        stats.counts.consumed,
        stats.counts.total() - stats.counts.consumed
    );
    let swept = store.sweep()?;
    println!(
        "6. sweep now removes {} row(s): nothing has expired yet",
        swept.removed.total()
    );
    clock.advance(std::time::Duration::from_secs(11 * 60));
    let swept = store.sweep()?;
    println!(
        "7. eleven minutes later, sweep removes {} tombstone(s) and {} orphaned verifier(s)",
        swept.removed.consumed, swept.removed.unbound
    );
    if swept.removed.total() != 2 || store.stats()?.counts.total() != 0 {
        return Err("sweep did not empty the store".into());
    }
    Ok(())
}

fn callback(db: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut state = String::new();
    std::io::stdin().read_to_string(&mut state)?;
    let store = Store::open(db)?;
    let flow = store.consume_for(state.trim(), "https://mcp.example.com")?;
    println!(
        "2. process {} consumed the callback: verifier for challenge {} (issuer {}), ready for \
         the token request",
        std::process::id(),
        flow.verifier.challenge(),
        flow.info.issuer.as_deref().unwrap_or("-"),
    );
    Ok(())
}

/// The authorization URL with its state masked, for printing.
fn redact_state(url: &url::Url) -> String {
    let mut shown = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "[redacted]".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    shown.query_pairs_mut().clear().extend_pairs(pairs);
    shown.to_string()
}
