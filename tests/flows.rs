//! The flow lifecycle on a file: begin, promote, check, consume, reject, replay, expiry.

mod common;

use common::Fixture;
use oauth_state_store::{BeginRequest, CodeVerifier, Error, Status};

#[test]
fn begin_then_consume_then_replay() {
    let fx = Fixture::new();
    let store = fx.store();
    let flow = store
        .begin(
            BeginRequest::new("https://mcp.example.com")
                .client_id("cli")
                .redirect_uri("http://127.0.0.1:33418/callback")
                .issuer("https://auth.example.com")
                .resource("https://mcp.example.com/mcp")
                .scope("mcp:tools"),
        )
        .unwrap();
    let url = flow
        .authorization_url("https://auth.example.com/authorize")
        .unwrap();
    let state = flow.state().secret().to_owned();
    assert!(url.as_str().contains("code_challenge_method=S256"));
    let info = store.check(&state).unwrap();
    assert_eq!(info.status, Status::Pending);
    let consumed = store.consume(&state).unwrap();
    assert_eq!(
        consumed.verifier.challenge().as_str(),
        flow.code_challenge().as_str()
    );
    assert!(!url.as_str().contains(consumed.verifier.secret()));
    assert_eq!(
        consumed.info.issuer.as_deref(),
        Some("https://auth.example.com")
    );
    assert!(matches!(store.consume(&state), Err(Error::AlreadyConsumed)));
    assert!(matches!(
        store.consume("forged-state"),
        Err(Error::UnknownState)
    ));
}

#[test]
fn sdk_path_save_promote_consume() {
    let fx = Fixture::new();
    let store = fx.store();
    let verifier = CodeVerifier::generate();
    let challenge = store
        .save_code_verifier("srv", Some("cli"), verifier.secret())
        .unwrap();
    let url = format!(
        "https://auth.example.com/authorize?response_type=code&client_id=cli&state=abc123&code_challenge={challenge}&code_challenge_method=S256"
    );
    store.promote("srv", Some("cli"), &url).unwrap();
    store.promote("srv", Some("cli"), &url).unwrap();
    assert_eq!(
        store.pending_verifier("srv", Some("cli")).unwrap().secret(),
        verifier.secret()
    );
    let consumed = store.consume("abc123").unwrap();
    assert_eq!(consumed.verifier.secret(), verifier.secret());
    fx.clock.advance(time::Duration::hours(1));
    let report = store.sweep().unwrap();
    assert_eq!(report.removed.consumed, 1);
}
