//! The child processes of tests/refresh_processes.rs and what they report. Each child prints
//! `LOADED` once it holds what it will refresh, waits for `go` on stdin, refreshes, and prints
//! one `RESULT` line. No line carries a token, only a hash of one (a winner of the control
//! scenario hands its new refresh token to the parent on its own line, to prove the grant
//! dead).
#![allow(dead_code)]

use std::io::BufRead;
use std::time::{Duration, Instant};

use oauth_state_store::{
    AccessToken, Error, Exchange, Generation, RefreshOptions, RefreshToken, Refreshed, Rejected,
    Seen, Store, TokenResponse,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::kids::wait_for_go;
use crate::oidc::{refresh_request, TokenReply};

pub const SERVER_ID: &str = "https://mcp.example.com/mcp";
pub const TARGET: &str = "OSS_REFRESH_TARGET";
pub const MODE: &str = "OSS_REFRESH_MODE";
pub const TOKEN_URL: &str = "OSS_REFRESH_TOKEN_URL";
pub const CLIENT: &str = "OSS_REFRESH_CLIENT";
pub const LEASE_MS: &str = "OSS_REFRESH_LEASE_MS";
/// `before`: the first lease holder stops before it sends; `after`: after its request was
/// answered, before it saves. It prints `HOLDING` and waits for the parent's SIGKILL.
pub const HALT: &str = "OSS_REFRESH_HALT";
/// The generation a `stale` child reports refused.
pub const GENERATION: &str = "OSS_REFRESH_GENERATION";

/// A short hash of a token, to compare tokens across processes without printing one.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// The token response of a 200, as the store takes it.
pub fn token_response(json: &Value) -> Result<TokenResponse, String> {
    let text = |k: &str| json[k].as_str().map(str::to_owned);
    let access = AccessToken::new(text("access_token").ok_or("no access_token")?)
        .map_err(|e| e.to_string())?;
    let mut response = TokenResponse::new(access, text("token_type").unwrap_or("Bearer".into()));
    if let Some(rt) = text("refresh_token") {
        response = response.refresh_token(RefreshToken::new(rt).map_err(|e| e.to_string())?);
    }
    if let Some(secs) = json["expires_in"].as_u64() {
        response = response.expires_in(Duration::from_secs(secs));
    }
    if let Some(scope) = text("scope") {
        response = response.scope(scope);
    }
    Ok(response)
}

/// Waits for the parent's SIGKILL (a holder that dies).
fn halt() -> ! {
    println!("HOLDING");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// The child's body, by its mode.
pub fn run_child() {
    let mut stdin = std::io::stdin().lock().lines().map(|l| l.expect("stdin"));
    let (url, client) = (env(TOKEN_URL), env(CLIENT));
    match env(MODE).as_str() {
        "store" => store_child(&url, &client, &mut stdin),
        "alone" => alone_child(&url, &client, &mut stdin),
        "stale" => stale_child(&url, &client, &mut stdin),
        other => panic!("unknown mode {other}"),
    }
}

/// Refreshes through the store: one `refresh_with` against the generation it loaded.
fn store_child(url: &str, client: &str, stdin: &mut impl Iterator<Item = String>) {
    let store = Store::open(env(TARGET)).expect("open the store");
    let set = store
        .tokens(SERVER_ID, client)
        .unwrap()
        .expect("a stored set");
    assert!(
        set.expires_within(Duration::ZERO),
        "the access token expired"
    );
    let lease_ms: u64 = env(LEASE_MS).parse().unwrap();
    let options = RefreshOptions::default()
        .lease(Duration::from_millis(lease_ms))
        .owner("refresh test child");
    let halt_at = std::env::var(HALT).ok();
    wait_for_go(stdin);
    let started = Instant::now();
    let refreshed = store.refresh_with(SERVER_ID, client, Seen::from(&set), &options, |lease| {
        let first_holder = !lease.took_over();
        if first_holder && halt_at.as_deref() == Some("before") {
            halt();
        }
        let reply = refresh_request(url, client, lease.refresh_token().secret());
        if first_holder && halt_at.as_deref() == Some("after") {
            halt();
        }
        match reply {
            Ok(TokenReply::Tokens(json)) => match token_response(&json) {
                Ok(response) => Exchange::Tokens(response),
                Err(e) => Exchange::Failed(e),
            },
            Ok(TokenReply::Refused {
                error: Some(error), ..
            }) => Exchange::Rejected(error),
            Ok(TokenReply::Refused { status, .. }) => Exchange::Failed(format!("status {status}")),
            Err(e) => Exchange::Failed(e),
        }
    });
    let ms = started.elapsed().as_millis();
    match refreshed {
        Ok(Refreshed::Refreshed(s)) => println!(
            "RESULT refreshed {} {} {ms}",
            s.generation(),
            hash(s.access_token().secret())
        ),
        Ok(Refreshed::Newer(s)) => println!(
            "RESULT newer {} {} {ms}",
            s.generation(),
            hash(s.access_token().secret())
        ),
        Ok(Refreshed::Failed(e)) => println!("RESULT failed {e} {ms}"),
        Err(Error::TokensRevoked {
            after_lost_holder, ..
        }) => println!("RESULT revoked {after_lost_holder} - {ms}"),
        Err(e) => println!("RESULT error {e:?} - {ms}"),
    }
}

/// Refreshes on its own, as a client without the store does: the refresh token it was given
/// goes straight to the server.
fn alone_child(url: &str, client: &str, stdin: &mut impl Iterator<Item = String>) {
    let token = stdin.next().expect("the refresh token");
    wait_for_go(stdin);
    match refresh_request(url, client, &token) {
        Ok(TokenReply::Tokens(json)) => {
            let rt = json["refresh_token"].as_str().expect("a rotated token");
            println!("NEWRT {rt}");
            println!("RESULT ok");
        }
        Ok(TokenReply::Refused { error, .. }) => {
            println!("RESULT refused {}", error.unwrap_or_default())
        }
        Err(e) => println!("RESULT failed {e}"),
    }
}

/// Presents an old refresh token outside the store, then reports its refusal to the store
/// for the generation it came from, as a process that refreshed on its own would.
fn stale_child(url: &str, client: &str, stdin: &mut impl Iterator<Item = String>) {
    let token = stdin.next().expect("the refresh token");
    let store = Store::open(env(TARGET)).expect("open the store");
    let generation = Generation::new(env(GENERATION).parse().unwrap());
    wait_for_go(stdin);
    let error = match refresh_request(url, client, &token) {
        Ok(TokenReply::Refused {
            error: Some(error), ..
        }) => error,
        other => panic!("the old refresh token was not refused: {other:?}"),
    };
    match store
        .reject_tokens(SERVER_ID, client, generation, &error)
        .unwrap()
    {
        Rejected::Stale(set) => println!(
            "RESULT stale {error} {} {}",
            set.generation(),
            hash(set.access_token().secret())
        ),
        Rejected::Revoked => println!("RESULT revoked {error}"),
        Rejected::Gone => println!("RESULT gone {error}"),
    }
}
