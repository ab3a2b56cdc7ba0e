//! A flow ended without a login (a consume for another server, a failed callback consumed) is
//! reported by every later lookup as ended with its reason, never as a replay of a completed
//! login.

use super::Fixture;
use oauth_state_store::{BeginRequest, EndReason, Error, FlowFilter, Status, Store};

fn begin(store: &Store, server: &str) -> String {
    let flow = store
        .begin(BeginRequest::new(server).client_id("cli"))
        .unwrap();
    flow.state().secret().to_owned()
}

fn ended(reason: EndReason) -> impl Fn(&Error) -> bool {
    move |e| matches!(e, Error::FlowEnded { reason: r } if *r == reason)
}

#[test]
fn a_flow_ended_by_a_server_mismatch_is_reported_ended_not_replayed() {
    let fx = Fixture::new();
    let store = fx.store();
    let state = begin(&store, "right");
    let e = store.consume_for(&state, "wrong").unwrap_err();
    assert!(matches!(e, Error::ServerMismatch { field: "server_id" }));
    assert!(
        !e.to_string().contains("not used"),
        "the flow was ended, so the message must not say it was not used: {e}"
    );
    let is_mismatch = ended(EndReason::ServerMismatch);
    for e in [
        store.consume_for(&state, "right").unwrap_err(),
        store.consume(&state).unwrap_err(),
        store.check(&state).unwrap_err(),
    ] {
        assert!(is_mismatch(&e), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("start the login again"), "{text}");
        assert!(!text.contains("completed the login"), "{text}");
        assert!(!text.contains(&state), "{text}");
    }
}

#[test]
fn a_failed_flow_once_consumed_is_reported_ended_by_the_refusal() {
    let fx = Fixture::new();
    let store = fx.store();
    let state = begin(&store, "srv");
    store.reject(&state, "access_denied", None).unwrap();
    assert!(matches!(
        store.consume(&state),
        Err(Error::AuthorizationFailed { .. })
    ));
    let is_failed = ended(EndReason::AuthorizationFailed);
    assert!(is_failed(&store.consume(&state).unwrap_err()));
    assert!(is_failed(&store.consume_for(&state, "srv").unwrap_err()));
    assert!(is_failed(&store.check(&state).unwrap_err()));
}

#[test]
fn a_completed_login_replayed_is_still_already_consumed() {
    let fx = Fixture::new();
    let store = fx.store();
    let state = begin(&store, "srv");
    store.complete(&state, "the-code").unwrap();
    store.consume_for(&state, "srv").unwrap();
    assert!(matches!(
        store.consume_for(&state, "srv"),
        Err(Error::AlreadyConsumed)
    ));
    assert!(matches!(store.check(&state), Err(Error::AlreadyConsumed)));
}

#[test]
fn list_flows_shows_why_a_tombstone_ended() {
    let fx = Fixture::new();
    let store = fx.store();
    let mismatched = begin(&store, "a");
    let _ = store.consume_for(&mismatched, "b");
    let failed = begin(&store, "b");
    store.reject(&failed, "access_denied", None).unwrap();
    let _ = store.consume(&failed);
    let login = begin(&store, "c");
    store.consume(&login).unwrap();
    let still_failed = begin(&store, "d");
    store.reject(&still_failed, "access_denied", None).unwrap();
    let mut seen: Vec<_> = store
        .list_flows(&FlowFilter::new())
        .unwrap()
        .into_iter()
        .map(|f| (f.server_id, f.status, f.ended))
        .collect();
    seen.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        seen,
        [
            (
                "a".into(),
                Status::Consumed,
                Some(EndReason::ServerMismatch)
            ),
            (
                "b".into(),
                Status::Consumed,
                Some(EndReason::AuthorizationFailed)
            ),
            ("c".into(), Status::Consumed, None),
            ("d".into(), Status::Failed, None),
        ]
    );
}
