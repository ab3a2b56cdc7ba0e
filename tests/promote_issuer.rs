//! `Store::promote_with_issuer`: the SDK path records the authorization server's issuer on
//! the flow (RFC 9207), as `begin` does on the native path, so a callback from another issuer
//! is refused and the callback leg can read the issuer back.

mod common;
mod http_client;

use std::time::Duration;

use common::Fixture;
use http_client::{enc, get};
use oauth_state_store::{CodeVerifier, Error, ListenerOptions, LoopbackCallback, State, Status};

const SERVER: &str = "https://mcp.example.com/mcp";
const CLIENT: &str = "client-1";
const ISSUER: &str = "https://as.example.com";

/// An SDK-built authorization URL for a saved verifier; returns it and its state.
fn sdk_url(store: &oauth_state_store::Store, redirect_uri: &str) -> (String, State) {
    let verifier = CodeVerifier::generate();
    let challenge = store
        .save_code_verifier(SERVER, Some(CLIENT), verifier.secret())
        .unwrap();
    let state = State::generate();
    let url = format!(
        "https://as.example.com/authorize?response_type=code&client_id={CLIENT}&state={}\
         &code_challenge={}&code_challenge_method=S256&redirect_uri={}",
        state.secret(),
        challenge.as_str(),
        enc(redirect_uri)
    );
    (url, state)
}

#[test]
fn the_issuer_is_kept_on_the_promoted_flow() {
    let fx = Fixture::new();
    let store = fx.store();
    let (url, state) = sdk_url(&store, "http://127.0.0.1:33418/callback");
    let info = store
        .promote_with_issuer(SERVER, Some(CLIENT), &url, ISSUER)
        .unwrap();
    assert_eq!(info.issuer.as_deref(), Some(ISSUER));
    assert_eq!(info.status, Status::Pending);
    let checked = store.check(state.secret()).unwrap();
    assert_eq!(checked.issuer.as_deref(), Some(ISSUER));
    // Promoting the same URL again is a no-op that keeps the first issuer.
    let again = store
        .promote_with_issuer(SERVER, Some(CLIENT), &url, "https://other.example.com")
        .unwrap();
    assert_eq!(again.issuer.as_deref(), Some(ISSUER));
    let consumed = store.consume(state.secret()).unwrap();
    assert_eq!(consumed.info.issuer.as_deref(), Some(ISSUER));
}

#[test]
fn a_bad_issuer_is_refused_before_anything_is_bound() {
    let fx = Fixture::new();
    let store = fx.store();
    let (url, state) = sdk_url(&store, "http://127.0.0.1:33418/callback");
    for bad in [
        "http://evil.example",
        "not a url",
        "https://as.example#frag",
    ] {
        match store.promote_with_issuer(SERVER, Some(CLIENT), &url, bad) {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "issuer"),
            other => panic!("expected InvalidInput(issuer), got {other:?}"),
        }
    }
    assert!(matches!(
        store.check(state.secret()),
        Err(Error::UnknownState)
    ));
    // The saved verifier is still unbound and can be promoted.
    assert_eq!(
        store.promote(SERVER, Some(CLIENT), &url).unwrap().issuer,
        None
    );
}

#[test]
fn a_callback_from_another_issuer_is_refused_by_the_listener() {
    let fx = Fixture::new();
    let store = fx.store();
    let callback =
        LoopbackCallback::attach(&store, ListenerOptions::default().idle_stop(None)).unwrap();
    let redirect = callback.redirect_uri();
    let (url, state) = sdk_url(&store, &redirect);
    store
        .promote_with_issuer(SERVER, Some(CLIENT), &url, ISSUER)
        .unwrap();
    let path = |iss: &str| {
        format!(
            "/callback?state={}&code=the-code&iss={}",
            enc(state.secret()),
            enc(iss)
        )
    };
    let refused = get(callback.port(), &path("https://evil.example.com"));
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(store.check(state.secret()).unwrap().status, Status::Pending);
    let accepted = get(callback.port(), &path(ISSUER));
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let done = callback
        .wait(state.secret(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(done.code.unwrap().secret(), "the-code");
    assert_eq!(done.info.issuer.as_deref(), Some(ISSUER));
}
