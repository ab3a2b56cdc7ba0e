//! The Rust half of `npm run bench` (bench/sdk-flow.mjs): the SDK-path flow
//! (`save_code_verifier` + `promote` + `consume`) called from Rust, timed flow by flow exactly
//! as the script times the same flow through the binding. Prints one JSON line of
//! per-flow times in microseconds.
//!
//! `cargo run --release -p oauth-state-store-node --example sdk_flow -- DB_PATH FLOWS WARMUP`

use std::time::Instant;

use oauth_state_store::{CodeVerifier, State, Store};

const SERVER: &str = "https://mcp.example.com/mcp";
const CLIENT: &str = "bench-client";

fn flow(store: &Store) -> oauth_state_store::Result<()> {
    let verifier = CodeVerifier::generate();
    let state = State::generate();
    let challenge = store.save_code_verifier(SERVER, Some(CLIENT), verifier.secret())?;
    let url = format!(
        "https://auth.example.com/authorize?response_type=code&client_id={CLIENT}\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A33418%2Fcallback&state={}\
         &code_challenge={}&code_challenge_method=S256",
        state.secret(),
        challenge.as_str()
    );
    store.promote(SERVER, Some(CLIENT), &url)?;
    store.consume(state.secret())?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: sdk_flow DB_PATH FLOWS WARMUP")?;
    let flows: usize = args.next().ok_or("FLOWS missing")?.parse()?;
    let warmup: usize = args.next().ok_or("WARMUP missing")?.parse()?;
    let store = Store::open(path)?;
    for _ in 0..warmup {
        flow(&store)?;
    }
    let mut micros = Vec::with_capacity(flows);
    for _ in 0..flows {
        let start = Instant::now();
        flow(&store)?;
        micros.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let list: Vec<String> = micros.iter().map(|m| format!("{m:.2}")).collect();
    println!("{{\"micros\":[{}]}}", list.join(","));
    Ok(())
}
