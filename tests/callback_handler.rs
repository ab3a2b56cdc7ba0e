//! The framework-neutral handler answers exactly as the loopback listener does: the same
//! status, security headers and page bytes for the same outcome.

mod common;
mod http_client;

use common::Fixture;
use http_client::{enc, get, Reply};
use oauth_state_store::{BeginRequest, CallbackHandler, ListenerOptions, LoopbackCallback, Store};

fn begin(store: &Store, redirect: &str) -> String {
    store
        .begin(
            BeginRequest::new("https://mcp.example.com")
                .redirect_uri(redirect)
                .ttl(std::time::Duration::from_secs(60)),
        )
        .unwrap()
        .state()
        .secret()
        .to_owned()
}

/// The listener's answer and the handler's, for two flows in the same situation.
fn both(
    store: &Store,
    port: u16,
    handler: &CallbackHandler,
    q: &str,
    q2: &str,
) -> (Reply, oauth_state_store::CallbackResponse) {
    let r = get(port, &format!("/callback?{q}"));
    let h = handler.handle(store, q2, Some(&format!("127.0.0.1:{port}")));
    (r, h)
}

fn assert_same(r: &Reply, h: &oauth_state_store::CallbackResponse, case: &str) {
    assert_eq!(r.status, h.status, "{case}");
    assert_eq!(r.body, h.body, "{case}: page bytes");
    for (name, value) in &h.headers {
        assert_eq!(r.header(name), Some(value.as_str()), "{case}: {name}");
    }
}

#[test]
fn the_handler_s_pages_are_the_listener_s() {
    let fx = Fixture::new();
    let store = fx.store();
    let options = ListenerOptions::default().idle_stop(None);
    let cb = LoopbackCallback::attach(&store, options).unwrap();
    let port = cb.port();
    let handler = CallbackHandler::new(&cb.redirect_uri()).unwrap();

    // success, then replayed
    let (s1, s2) = (
        begin(&store, &cb.redirect_uri()),
        begin(&store, &cb.redirect_uri()),
    );
    let q = |s: &str| format!("code=abc&state={}", enc(s));
    let (r, h) = both(&store, port, &handler, &q(&s1), &q(&s2));
    assert!(h.recorded);
    assert_same(&r, &h, "success");
    let (r, h) = both(&store, port, &handler, &q(&s1), &q(&s2));
    assert!(!h.recorded);
    assert_same(&r, &h, "replayed");

    // error callback
    let (e1, e2) = (
        begin(&store, &cb.redirect_uri()),
        begin(&store, &cb.redirect_uri()),
    );
    let eq = |s: &str| {
        format!(
            "error=access_denied&error_description=No+thanks&state={}",
            enc(s)
        )
    };
    let (r, h) = both(&store, port, &handler, &eq(&e1), &eq(&e2));
    assert_same(&r, &h, "error");

    // unknown
    let unknown = q("never-begun-state-0123456789abcdefghijklmnop");
    let (r, h) = both(&store, port, &handler, &unknown, &unknown);
    assert_eq!(h.status, 404);
    assert_same(&r, &h, "unknown");

    // malformed
    let (r, h) = both(
        &store,
        port,
        &handler,
        "state=a&state=b&code=c",
        "state=a&state=b&code=c",
    );
    assert_same(&r, &h, "malformed");

    // expired
    let (x1, x2) = (
        begin(&store, &cb.redirect_uri()),
        begin(&store, &cb.redirect_uri()),
    );
    fx.clock.advance(std::time::Duration::from_secs(120));
    let (r, h) = both(&store, port, &handler, &q(&x1), &q(&x2));
    assert_eq!(h.status, 410);
    assert_same(&r, &h, "expired");

    // another host is refused before the store is touched
    let h = handler.handle(&store, &q(&x2), Some("evil.example"));
    assert_eq!(h.status, 421);
}
