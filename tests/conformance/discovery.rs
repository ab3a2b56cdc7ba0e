//! The per-flow discovery state of the SDK path (`Store::promote_with`, column `discovery`):
//! set when the flow is bound, handed back once by the consume that takes it, wiped in the
//! tombstone; too long a state is refused and changes nothing.

use super::Fixture;
use oauth_state_store::{
    BeginRequest, CodeVerifier, Error, Promotion, Status, Store, MAX_DISCOVERY_LEN,
};

const SERVER: &str = "https://mcp.example.com/mcp";
const CLIENT: &str = "client-1";
const ISSUER: &str = "https://as.example.com";
const DISCOVERY: &str = r#"{"authorizationServerUrl":"https://as.example.com","resourceMetadata":{"resource":"https://mcp.example.com/mcp"}}"#;

/// Saves a verifier and builds the SDK's authorization URL for it; returns the URL and its
/// state.
fn sdk_url(store: &Store, state: &str) -> String {
    let verifier = CodeVerifier::generate();
    let challenge = store
        .save_code_verifier(SERVER, Some(CLIENT), verifier.secret())
        .unwrap();
    format!(
        "https://as.example.com/authorize?response_type=code&client_id={CLIENT}&state={state}\
         &code_challenge={}&code_challenge_method=S256",
        challenge.as_str()
    )
}

fn with_discovery(discovery: &str) -> Promotion {
    Promotion::new().issuer(ISSUER).discovery(discovery)
}

#[test]
fn the_discovery_state_set_at_promote_comes_back_from_the_consume_once() {
    let fx = Fixture::new();
    let store = fx.store();
    let url = sdk_url(&store, "state-1");
    let info = store
        .promote_with(SERVER, Some(CLIENT), &url, &with_discovery(DISCOVERY))
        .unwrap();
    assert_eq!(info.status, Status::Pending);
    assert_eq!(info.issuer.as_deref(), Some(ISSUER));
    assert_eq!(fx.discovery_column(), vec![Some(DISCOVERY.to_owned())]);

    let consumed = store.consume_for("state-1", SERVER).unwrap();
    assert_eq!(consumed.discovery(), Some(DISCOVERY));
    assert_eq!(consumed.info.issuer.as_deref(), Some(ISSUER));
    // The tombstone keeps no discovery state, and a replay gets nothing.
    assert_eq!(fx.discovery_column(), vec![None]);
    assert!(matches!(
        store.consume_for("state-1", SERVER),
        Err(Error::AlreadyConsumed)
    ));
}

#[test]
fn a_code_recorded_by_a_callback_comes_back_with_the_discovery_state() {
    let fx = Fixture::new();
    let store = fx.store();
    let url = sdk_url(&store, "state-2");
    store
        .promote_with(SERVER, Some(CLIENT), &url, &with_discovery(DISCOVERY))
        .unwrap();
    store.complete("state-2", "the-code").unwrap();
    // Recording the code leaves the discovery state for the consume.
    assert_eq!(fx.discovery_column(), vec![Some(DISCOVERY.to_owned())]);
    let consumed = store.consume("state-2").unwrap();
    assert_eq!(consumed.code.as_ref().map(|c| c.secret()), Some("the-code"));
    assert_eq!(consumed.discovery(), Some(DISCOVERY));
    assert_eq!(fx.discovery_column(), vec![None]);
}

#[test]
fn flows_without_a_discovery_state_hand_back_none() {
    let fx = Fixture::new();
    let store = fx.store();
    let url = sdk_url(&store, "plain-promote");
    store.promote(SERVER, Some(CLIENT), &url).unwrap();
    let url = sdk_url(&store, "issuer-only");
    store
        .promote_with_issuer(SERVER, Some(CLIENT), &url, ISSUER)
        .unwrap();
    let native = store.begin(BeginRequest::new(SERVER)).unwrap();
    assert_eq!(fx.discovery_column(), vec![None, None, None]);
    assert_eq!(store.consume("plain-promote").unwrap().discovery(), None);
    let issuer_only = store.consume("issuer-only").unwrap();
    assert_eq!(issuer_only.discovery(), None);
    assert_eq!(issuer_only.info.issuer.as_deref(), Some(ISSUER));
    assert_eq!(
        store.consume(native.state().secret()).unwrap().discovery(),
        None
    );
}

#[test]
fn promoting_again_keeps_the_first_discovery_state() {
    let fx = Fixture::new();
    let store = fx.store();
    let url = sdk_url(&store, "twice");
    store
        .promote_with(SERVER, Some(CLIENT), &url, &with_discovery(DISCOVERY))
        .unwrap();
    store
        .promote_with(SERVER, Some(CLIENT), &url, &with_discovery("{}"))
        .unwrap();
    assert_eq!(store.consume("twice").unwrap().discovery(), Some(DISCOVERY));
}

#[test]
fn the_longest_discovery_state_is_kept_whole() {
    let fx = Fixture::new();
    let store = fx.store();
    // At the limit in bytes: once one byte a character, once two.
    let ascii = "a".repeat(MAX_DISCOVERY_LEN);
    let wide = "é".repeat(MAX_DISCOVERY_LEN / 2);
    for (state, discovery) in [("ascii", &ascii), ("wide", &wide)] {
        let url = sdk_url(&store, state);
        store
            .promote_with(SERVER, Some(CLIENT), &url, &with_discovery(discovery))
            .unwrap();
        let consumed = store.consume(state).unwrap();
        assert_eq!(consumed.discovery(), Some(discovery.as_str()));
    }
}

#[test]
fn too_long_a_discovery_state_is_refused_and_changes_nothing() {
    let fx = Fixture::new();
    let store = fx.store();
    let url = sdk_url(&store, "refused");
    let too_long = "a".repeat(MAX_DISCOVERY_LEN + 1);
    for bad in [too_long.as_str(), "nul\0inside"] {
        let e = store
            .promote_with(SERVER, Some(CLIENT), &url, &with_discovery(bad))
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidInput {
                    field: "discovery",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(!e.to_string().contains("nul\0inside"), "{e}");
    }
    // Nothing was bound: the verifier is still unbound, the state unknown.
    let stats = store.stats().unwrap();
    assert_eq!((stats.counts.unbound, stats.counts.pending), (1, 0));
    assert!(matches!(store.check("refused"), Err(Error::UnknownState)));
    assert_eq!(fx.discovery_column(), vec![None]);
    // The same URL with a valid state binds as usual.
    store
        .promote_with(SERVER, Some(CLIENT), &url, &with_discovery(DISCOVERY))
        .unwrap();
    assert_eq!(
        store.consume("refused").unwrap().discovery(),
        Some(DISCOVERY)
    );
}

#[test]
fn flows_ended_without_a_login_wipe_the_discovery_state() {
    let fx = Fixture::new();
    let store = fx.store();
    let url = sdk_url(&store, "mismatch");
    store
        .promote_with(SERVER, Some(CLIENT), &url, &with_discovery(DISCOVERY))
        .unwrap();
    let url = sdk_url(&store, "denied");
    store
        .promote_with(SERVER, Some(CLIENT), &url, &with_discovery(DISCOVERY))
        .unwrap();
    assert!(matches!(
        store.consume_for("mismatch", "https://other.example.com"),
        Err(Error::ServerMismatch { .. })
    ));
    store.reject("denied", "access_denied", None).unwrap();
    assert!(matches!(
        store.consume("denied"),
        Err(Error::AuthorizationFailed { .. })
    ));
    assert_eq!(fx.discovery_column(), vec![None, None]);
}

#[test]
fn a_consumed_flow_prints_the_length_of_its_discovery_state_only() {
    let fx = Fixture::new();
    let store = fx.store();
    let url = sdk_url(&store, "printed");
    let marker = r#"{"marker":"visible-only-by-reading"}"#;
    let promotion = with_discovery(marker);
    assert!(!format!("{promotion:?}").contains("visible-only"));
    store
        .promote_with(SERVER, Some(CLIENT), &url, &promotion)
        .unwrap();
    let consumed = store.consume("printed").unwrap();
    let printed = format!("{consumed:?}");
    assert!(!printed.contains("visible-only"), "{printed}");
    assert!(
        printed.contains(&format!("[{} bytes]", marker.len())),
        "{printed}"
    );
}

#[test]
fn a_flow_promoted_to_require_the_issuer_refuses_a_callback_without_iss() {
    let fx = Fixture::new();
    let store = fx.store();
    let redirect = "http://127.0.0.1:33418/callback";
    let url = format!(
        "{}&redirect_uri={}",
        sdk_url(&store, "needs-iss"),
        "http%3A%2F%2F127.0.0.1%3A33418%2Fcallback"
    );
    let promotion = with_discovery(DISCOVERY).require_issuer(true);
    store
        .promote_with(SERVER, Some(CLIENT), &url, &promotion)
        .unwrap();
    for refused in [
        format!("{redirect}?state=needs-iss&code=c1"),
        format!("{redirect}?state=needs-iss&code=c1&iss=https%3A%2F%2Fother.example.com"),
    ] {
        assert!(
            matches!(
                store.deliver(&refused),
                Err(Error::ServerMismatch { field: "iss" })
            ),
            "{refused}"
        );
    }
    assert_eq!(store.check("needs-iss").unwrap().status, Status::Pending);
    let info = store
        .deliver(&format!(
            "{redirect}?state=needs-iss&code=c1&iss=https%3A%2F%2Fas.example.com"
        ))
        .unwrap();
    assert_eq!(info.status, Status::Completed);
    let consumed = store.consume("needs-iss").unwrap();
    assert_eq!(consumed.code.as_ref().map(|c| c.secret()), Some("c1"));
    assert_eq!(consumed.discovery(), Some(DISCOVERY));

    // Requiring `iss` without an issuer to compare it with is refused, binding nothing.
    let url = sdk_url(&store, "no-issuer");
    let e = store
        .promote_with(
            SERVER,
            Some(CLIENT),
            &url,
            &Promotion::new().require_issuer(true),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidInput {
                field: "issuer",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(matches!(store.check("no-issuer"), Err(Error::UnknownState)));
}

/// The SDK's finish without the state (`finishAuth(code)`): `pending_discovery` reads the one
/// flow's discovery state without consuming it, `consume_pending` consumes that flow exactly
/// once (pending, or completed by a listener), and several flows in progress are refused
/// with nothing consumed.
#[test]
fn a_finish_without_the_state_takes_the_one_flow_in_progress_exactly_once() {
    let fx = Fixture::new();
    let store = fx.store();
    assert!(matches!(
        store.pending_discovery(SERVER, Some(CLIENT)),
        Err(Error::NoPendingVerifier)
    ));
    let url = sdk_url(&store, "state-5");
    store
        .promote_with(SERVER, Some(CLIENT), &url, &with_discovery(DISCOVERY))
        .unwrap();
    // An unbound verifier of the next attempt is not in progress yet: still one flow.
    sdk_url(&store, "unused");
    assert_eq!(
        store
            .pending_discovery(SERVER, Some(CLIENT))
            .unwrap()
            .as_deref(),
        Some(DISCOVERY)
    );
    assert_eq!(store.check("state-5").unwrap().status, Status::Pending);
    store.complete("state-5", "the-code").unwrap();
    let done = store.consume_pending(SERVER, Some(CLIENT)).unwrap();
    assert_eq!(done.code.as_ref().unwrap().secret(), "the-code");
    assert_eq!(done.discovery(), Some(DISCOVERY));
    assert!(matches!(
        store.consume_pending(SERVER, Some(CLIENT)),
        Err(Error::NoPendingVerifier)
    ));
    assert!(matches!(
        store.consume("state-5"),
        Err(Error::AlreadyConsumed)
    ));
    // Another client's flow of the same server is not this client's.
    assert!(matches!(
        store.consume_pending(SERVER, Some("another-client")),
        Err(Error::NoPendingVerifier)
    ));

    for state in ["state-6", "state-7"] {
        let url = sdk_url(&store, state);
        store.promote(SERVER, Some(CLIENT), &url).unwrap();
    }
    assert!(matches!(
        store.consume_pending(SERVER, Some(CLIENT)),
        Err(Error::AmbiguousPendingVerifier { count: 2 })
    ));
    assert!(matches!(
        store.pending_discovery(SERVER, Some(CLIENT)),
        Err(Error::AmbiguousPendingVerifier { count: 2 })
    ));
    assert_eq!(store.check("state-6").unwrap().status, Status::Pending);
    assert_eq!(store.check("state-7").unwrap().status, Status::Pending);
    // A flow begun with a generated verifier is finished by its state only.
    store.consume("state-6").unwrap();
    store.consume("state-7").unwrap();
    let native = store
        .begin(BeginRequest::new(SERVER).client_id(CLIENT))
        .unwrap();
    assert!(matches!(
        store.consume_pending(SERVER, Some(CLIENT)),
        Err(Error::NoPendingVerifier)
    ));
    assert_eq!(
        store.check(native.state().secret()).unwrap().status,
        Status::Pending
    );
}
