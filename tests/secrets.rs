//! No secret (state, verifier, code) in any `Debug` or `Display` output of a full flow.

mod common;

use common::{assert_error_clean, Fixture};
use oauth_state_store::{BeginRequest, CodeVerifier, State};

const STATE: &str = "STATE-secret-4f1c9a7e2b";
const VERIFIER: &str = "VERIFIERsecretVERIFIERsecretVERIFIERsecret0123";
const CODE: &str = "CODE-secret-77aa31";
const SECRETS: [&str; 3] = [STATE, VERIFIER, CODE];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} leaks a secret: {text}");
    }
}

#[test]
fn a_full_flow_never_prints_a_secret() {
    let fx = Fixture::new();
    let store = fx.store();
    assert_clean("Store", &format!("{store:?}"));

    let request = BeginRequest::new("srv")
        .client_id("cli")
        .state(State::new(STATE).unwrap())
        .verifier(CodeVerifier::new(VERIFIER).unwrap());
    assert_clean("BeginRequest", &format!("{request:?}"));
    let flow = store.begin(request).unwrap();
    assert_clean("Flow", &format!("{flow:?}"));
    assert_clean("FlowInfo", &format!("{:?}", flow.info()));

    let mut errors = Vec::new();
    // Duplicate state and verifier.
    errors.push(
        store
            .begin(BeginRequest::new("srv").state(State::new(STATE).unwrap()))
            .unwrap_err(),
    );
    errors.push(
        store
            .save_code_verifier("srv", Some("cli"), VERIFIER)
            .unwrap_err(),
    );
    // Bad inputs carrying secrets-shaped values.
    errors.push(store.check(&format!("{STATE}\0")).unwrap_err());
    errors.push(
        store
            .save_code_verifier("srv", None, &format!("{VERIFIER}!"))
            .unwrap_err(),
    );
    errors.push(store.complete(STATE, &format!("{CODE}\n")).unwrap_err());
    errors.push(
        store
            .promote(
                "srv",
                None,
                &format!("https://as.example/?state={STATE}&code_challenge=short"),
            )
            .unwrap_err(),
    );
    let pending = store.pending_verifier("srv", Some("cli")).unwrap();
    assert_clean("CodeVerifier", &format!("{pending:?}"));
    errors.push(store.pending_verifier("srv", None).unwrap_err());

    let info = store.complete(STATE, CODE).unwrap();
    assert_clean("FlowInfo after complete", &format!("{info:?}"));
    errors.push(store.complete(STATE, CODE).unwrap_err());
    errors.push(store.consume_for(STATE, "other").unwrap_err());
    errors.push(store.consume(STATE).unwrap_err());
    errors.push(store.consume("unknown-state").unwrap_err());

    let second = store
        .begin(BeginRequest::new("srv").state(State::new(format!("{STATE}-2")).unwrap()))
        .unwrap();
    store
        .complete(second.state().secret(), &format!("{CODE}-2"))
        .unwrap();
    let consumed = store.consume(second.state().secret()).unwrap();
    assert_clean("ConsumedFlow", &format!("{consumed:?}"));
    assert_clean("Stats", &format!("{:?}", store.stats().unwrap()));

    let third = store
        .begin(BeginRequest::new("srv").state(State::new(format!("{STATE}-3")).unwrap()))
        .unwrap();
    store
        .reject(third.state().secret(), "access_denied", None)
        .unwrap();
    errors.push(store.consume(third.state().secret()).unwrap_err());
    fx.clock.advance(std::time::Duration::from_secs(3600));
    let fourth_state = format!("{STATE}-4");
    fx.clock.rewind(std::time::Duration::from_secs(3600));
    store
        .begin(BeginRequest::new("srv").state(State::new(fourth_state.clone()).unwrap()))
        .unwrap();
    fx.clock.advance(std::time::Duration::from_secs(3600));
    errors.push(store.consume(&fourth_state).unwrap_err());

    assert!(errors.len() >= 12);
    for e in &errors {
        assert_error_clean(e, &SECRETS);
    }
}
