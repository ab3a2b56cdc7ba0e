//! The rule that decides what a callback does to a flow, apart from any storage.

use super::*;

fn pending<'a>(redirect_uri: Option<&'a str>, issuer: Option<&'a str>) -> Snapshot<'a> {
    Snapshot {
        status: Status::Pending,
        expires_at: 10,
        server_id: "s",
        client_id: None,
        created_at: 0,
        redirect_uri,
        issuer,
        error: None,
        require_issuer: false,
    }
}

#[test]
fn a_listener_callback_without_a_promised_iss_is_refused() {
    let mut row = pending(None, Some("https://as.example"));
    row.require_issuer = true;
    let at = Some((33418, "/oauth/callback"));
    let bare = Expectations {
        arrived_at: at,
        iss: None,
        ..Expectations::default()
    };
    assert!(matches!(
        record_callback(Some(&row), 1, &bare),
        Verdict::Refuse(Error::ServerMismatch { field: "iss" })
    ));
    let with_iss = Expectations {
        arrived_at: at,
        iss: Some("https://as.example"),
        ..Expectations::default()
    };
    assert!(matches!(
        record_callback(Some(&row), 1, &with_iss),
        Verdict::Proceed
    ));
    // A direct `complete` (no listener) is the caller's own decision.
    assert!(matches!(
        record_callback(Some(&row), 1, &Expectations::default()),
        Verdict::Proceed
    ));
    row.require_issuer = false;
    assert!(matches!(
        record_callback(Some(&row), 1, &bare),
        Verdict::Proceed
    ));
}

#[test]
fn a_callback_must_arrive_where_and_from_whom_the_flow_expects() {
    let at = |port, path| Expectations {
        arrived_at: Some((port, path)),
        ..Expectations::default()
    };
    let r = pending(Some("http://127.0.0.1:4000/cb"), Some("https://as.example"));
    assert!(matches!(
        record_callback(Some(&r), 1, &at(4000, "/cb")),
        Verdict::Proceed
    ));
    let localhost = pending(Some("http://localhost:4000/cb"), None);
    assert!(matches!(
        record_callback(Some(&localhost), 1, &at(4000, "/cb")),
        Verdict::Proceed
    ));
    for wrong in [at(4001, "/cb"), at(4000, "/other")] {
        assert!(matches!(
            record_callback(Some(&r), 1, &wrong),
            Verdict::Refuse(Error::ServerMismatch {
                field: "redirect_uri"
            })
        ));
    }
    let iss = |i| Expectations {
        iss: Some(i),
        ..Expectations::default()
    };
    assert!(matches!(
        record_callback(Some(&r), 1, &iss("https://as.example")),
        Verdict::Proceed
    ));
    assert!(matches!(
        record_callback(Some(&r), 1, &iss("https://evil.example")),
        Verdict::Refuse(Error::ServerMismatch { field: "iss" })
    ));
    let mut done = pending(None, None);
    done.status = Status::Completed;
    assert!(matches!(
        record_callback(Some(&done), 1, &Expectations::default()),
        Verdict::Refuse(Error::AlreadyCompleted)
    ));
}

#[test]
fn a_delivered_callback_must_name_the_flow_s_redirect_uri() {
    let to = |u: &str| url::Url::parse(u).unwrap();
    let r = pending(Some("http://127.0.0.1:4000/cb"), None);
    let web = pending(Some("https://app.example/oauth/cb"), None);
    for (row, ok) in [
        (&r, "http://127.0.0.1:4000/cb?state=x"),
        (&r, "http://localhost:4000/cb"),
        (&web, "https://app.example:443/oauth/cb?code=y"),
    ] {
        let at = to(ok);
        let e = Expectations {
            delivered_to: Some(&at),
            ..Expectations::default()
        };
        assert!(
            matches!(record_callback(Some(row), 1, &e), Verdict::Proceed),
            "{ok}"
        );
    }
    for (row, wrong) in [
        (&r, "http://127.0.0.1:4000/other"),
        (&r, "http://127.0.0.1:4001/cb"),
        (&r, "https://127.0.0.1:4000/cb"),
        (&web, "https://evil.example/oauth/cb"),
        (&web, "http://app.example/oauth/cb"),
        (&web, "https://app.example/oauth/cb/"),
    ] {
        let at = to(wrong);
        let e = Expectations {
            delivered_to: Some(&at),
            ..Expectations::default()
        };
        assert!(
            matches!(
                record_callback(Some(row), 1, &e),
                Verdict::Refuse(Error::ServerMismatch {
                    field: "redirect_uri"
                })
            ),
            "{wrong}"
        );
    }
}

#[test]
fn one_verifier_is_an_answer_two_are_a_guess() {
    assert!(matches!(pending_verifier::<u8>(vec![]), Choice::None));
    assert!(matches!(pending_verifier(vec![7]), Choice::One(7)));
    assert!(matches!(pending_verifier(vec![1, 2]), Choice::Several));
}
