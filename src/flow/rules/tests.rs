//! The flow rules' verdicts, apart from any storage.

use super::*;

fn row(status: Status, expires_at: i64) -> Snapshot<'static> {
    Snapshot {
        status,
        expires_at,
        server_id: "s",
        client_id: Some("c"),
        created_at: 0,
        redirect_uri: None,
        issuer: None,
        error: None,
        require_issuer: false,
    }
}

#[test]
fn consume_rules() {
    assert!(matches!(
        consume(None, 0, None),
        Verdict::Refuse(Error::UnknownState)
    ));
    let r = row(Status::Consumed, 0);
    assert!(matches!(
        consume(Some(&r), 10, None),
        Verdict::Refuse(Error::AlreadyConsumed)
    ));
    let r = row(Status::Pending, 10);
    assert!(matches!(consume(Some(&r), 10, None), Verdict::Expire));
    assert!(matches!(consume(Some(&r), 9, None), Verdict::Proceed));
    assert!(matches!(
        consume(Some(&r), 9, Some("other")),
        Verdict::Burn(_)
    ));
    assert!(matches!(consume(Some(&r), 9, Some("s")), Verdict::Proceed));
}

#[test]
fn a_tombstone_tells_a_replay_from_a_flow_ended_for_a_reason() {
    let mut r = row(Status::Consumed, 10);
    assert!(matches!(
        check(Some(&r), 1),
        Verdict::Refuse(Error::AlreadyConsumed)
    ));
    r.error = Some(SERVER_MISMATCH_REASON);
    assert!(matches!(
        consume(Some(&r), 1, Some("s")),
        Verdict::Refuse(Error::FlowEnded {
            reason: EndReason::ServerMismatch
        })
    ));
    r.error = Some("access_denied");
    assert!(matches!(
        check(Some(&r), 1),
        Verdict::Refuse(Error::FlowEnded {
            reason: EndReason::AuthorizationFailed
        })
    ));
}

#[test]
fn a_clock_reading_before_creation_is_expired() {
    let mut r = row(Status::Pending, 10);
    r.created_at = 5;
    assert!(matches!(consume(Some(&r), 5, None), Verdict::Proceed));
    assert!(matches!(consume(Some(&r), 4, None), Verdict::Expire));
    assert!(matches!(
        record_callback(Some(&r), 4, &Expectations::default()),
        Verdict::Expire
    ));
    r.status = Status::Unbound;
    assert!(matches!(
        promote(Some(&r), 4, "s", Some("c"), false),
        Verdict::Expire
    ));
}

#[test]
fn promote_rules() {
    let r = row(Status::Unbound, 10);
    assert!(matches!(
        promote(Some(&r), 0, "s", Some("c"), false),
        Verdict::Proceed
    ));
    assert!(matches!(
        promote(Some(&r), 0, "x", Some("c"), false),
        Verdict::Refuse(Error::ServerMismatch { field: "server_id" })
    ));
    assert!(matches!(
        promote(Some(&r), 0, "s", None, false),
        Verdict::Refuse(Error::ServerMismatch { field: "client_id" })
    ));
    assert!(matches!(
        promote(Some(&r), 10, "s", Some("c"), false),
        Verdict::Expire
    ));
    assert!(matches!(
        promote(None, 0, "s", None, false),
        Verdict::Refuse(Error::UnknownChallenge)
    ));
}
