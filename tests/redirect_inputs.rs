//! Redirect URIs and authorization URLs as RFC 8252 and RFC 6749 want them: each mistake is a
//! precise `InvalidInput` that stores nothing.

mod common;

use common::{dump_flows, Fixture};
use oauth_state_store::{BeginRequest, CodeVerifier, Error};

fn invalid<T: std::fmt::Debug>(r: Result<T, Error>) -> (&'static str, &'static str) {
    match r {
        Err(Error::InvalidInput { field, reason }) => (field, reason),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn begin_refuses_plain_http_off_loopback_and_bad_ports() {
    let fx = Fixture::new();
    let store = fx.store();
    let before = dump_flows(&fx.path);
    for (uri, needle) in [
        ("http://example.com/callback", "loopback"),
        ("http://192.168.1.10:8080/cb", "loopback"),
        ("http://localhost:99999/cb", "port"),
        ("http://127.0.0.1:0/cb", "port 0"),
        ("javascript:alert(1)", "hierarchical"),
    ] {
        let (field, reason) = invalid(store.begin(BeginRequest::new("srv").redirect_uri(uri)));
        assert_eq!(field, "redirect_uri", "{uri}");
        assert!(reason.contains(needle), "{uri}: {reason}");
        assert!(!reason.contains(uri), "the message never echoes the value");
    }
    assert_eq!(
        dump_flows(&fx.path),
        before,
        "a refused begin stores nothing"
    );
    for ok in [
        "http://127.0.0.1:33418/callback",
        "http://[::1]:33418/callback",
        "http://localhost:33418/callback",
        "https://app.example.com/oauth/callback",
        "com.example.app:/oauth2redirect",
    ] {
        store
            .begin(BeginRequest::new("srv").redirect_uri(ok))
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn promote_applies_the_same_redirect_rule() {
    let fx = Fixture::new();
    let store = fx.store();
    let verifier = CodeVerifier::generate();
    let challenge = verifier.challenge();
    store
        .save_code_verifier("srv", None, verifier.secret())
        .unwrap();
    let url = format!(
        "https://as.example/authorize?response_type=code&client_id=c&state=abc\
         &code_challenge={}&code_challenge_method=S256&redirect_uri=http%3A%2F%2Fexample.com%2Fcb",
        challenge.as_str()
    );
    let before = dump_flows(&fx.path);
    let (field, reason) = invalid(store.promote("srv", None, &url));
    assert_eq!(field, "redirect_uri");
    assert!(reason.contains("loopback"), "{reason}");
    assert_eq!(dump_flows(&fx.path), before, "nothing bound");

    let (field, reason) = invalid(store.promote("srv", None, "as.example/authorize?state=abc"));
    assert_eq!(field, "authorization_url");
    assert!(reason.contains("scheme"), "{reason}");
}

#[test]
fn authorization_url_needs_a_client_id() {
    let fx = Fixture::new();
    let store = fx.store();
    let flow = store
        .begin(BeginRequest::new("srv").redirect_uri("http://127.0.0.1:9/cb"))
        .unwrap();
    let (field, reason) = invalid(flow.authorization_url("https://as.example/authorize"));
    assert_eq!(field, "client_id");
    assert!(reason.contains("BeginRequest::client_id"), "{reason}");

    let flow = store
        .begin(
            BeginRequest::new("srv")
                .client_id("cli")
                .redirect_uri("http://127.0.0.1:9/cb"),
        )
        .unwrap();
    let url = flow
        .authorization_url("https://as.example/authorize")
        .unwrap();
    assert!(url
        .query_pairs()
        .any(|(k, v)| k == "client_id" && v == "cli"));
}
