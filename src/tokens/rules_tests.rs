//! The token rules, one verdict at a time.

use super::*;

fn snap(generation: i64) -> Snapshot<'static> {
    Snapshot {
        generation,
        revoked: None,
        has_refresh_token: true,
        lease: None,
    }
}

fn row(access: &str, refresh: Option<&str>) -> TokenRow {
    TokenRow {
        id: 1,
        server_id: "srv".into(),
        client_id: "cli".into(),
        generation: 5,
        access_token: Some(access.into()),
        refresh_token: refresh.map(str::to_owned),
        token_type: Some("Bearer".into()),
        scope: None,
        issuer: None,
        extra: None,
        received_at: 0,
        expires_at: None,
        replaced: None,
        revoked_at: None,
        revoked_reason: None,
        lease_holder: None,
        lease_owner: None,
        lease_expires_at: None,
    }
}

fn new<'a>(access: &'a str, refresh: Option<&'a str>) -> NewTokens<'a> {
    NewTokens {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer",
        scope: None,
        issuer: None,
        extra: None,
        expires_at: None,
    }
}

#[test]
fn begin_hands_out_a_newer_set_even_while_a_lease_runs() {
    let leased = Snapshot {
        lease: Some(("holder", 2_000)),
        ..snap(4)
    };
    assert!(matches!(
        begin_refresh(Some(&leased), Some(3), 1_000),
        Begin::Newer
    ));
    assert!(matches!(
        begin_refresh(Some(&leased), Some(4), 1_000),
        Begin::Wait { until: 2_000 }
    ));
    assert!(matches!(
        begin_refresh(Some(&leased), None, 1_000),
        Begin::Wait { .. }
    ));
    // The lease's last millisecond is over at `until`: taken over then.
    assert!(matches!(
        begin_refresh(Some(&leased), Some(4), 2_000),
        Begin::Lease { took_over: true }
    ));
    assert!(matches!(
        begin_refresh(Some(&snap(4)), Some(4), 0),
        Begin::Lease { took_over: false }
    ));
    // Forgotten and saved again: the row's generation restarted below what was seen.
    assert!(matches!(
        begin_refresh(Some(&snap(1)), Some(9), 0),
        Begin::Lease { .. }
    ));
}

#[test]
fn begin_refuses_a_missing_revoked_or_unrefreshable_set() {
    assert!(matches!(
        begin_refresh(None, None, 0),
        Begin::Refuse(Error::NoTokens)
    ));
    let revoked = Snapshot {
        revoked: Some("invalid_grant"),
        ..snap(3)
    };
    // Revoked beats newer: a waiter whose holder was refused must not get an empty set.
    assert!(matches!(
        begin_refresh(Some(&revoked), Some(2), 0),
        Begin::Refuse(Error::TokensRevoked { ref reason, .. }) if reason == "invalid_grant"
    ));
    let no_refresh = Snapshot {
        has_refresh_token: false,
        ..snap(3)
    };
    assert!(matches!(
        begin_refresh(Some(&no_refresh), Some(3), 0),
        Begin::Refuse(Error::NoRefreshToken)
    ));
    assert!(matches!(
        begin_refresh(Some(&no_refresh), Some(2), 0),
        Begin::Newer
    ));
}

#[test]
fn a_refusal_clears_only_the_generation_it_was_for() {
    assert_eq!(reject(Some(&snap(7)), 7), Reject::Revoke);
    assert_eq!(reject(Some(&snap(8)), 7), Reject::Stale);
    assert_eq!(reject(None, 7), Reject::Gone);
    let revoked = Snapshot {
        revoked: Some("invalid_grant"),
        ..snap(8)
    };
    assert_eq!(reject(Some(&revoked), 8), Reject::Gone);
}

#[test]
fn finish_saves_over_the_leased_generation_only() {
    assert!(matches!(finish(Some(&snap(3)), 3), Finish::Save));
    assert!(matches!(finish(Some(&snap(4)), 3), Finish::Superseded));
    assert!(matches!(finish(None, 3), Finish::Gone(Error::NoTokens)));
    let revoked = Snapshot {
        revoked: Some("invalid_grant"),
        ..snap(4)
    };
    assert!(matches!(
        finish(Some(&revoked), 3),
        Finish::Gone(Error::TokensRevoked { .. })
    ));
}

#[test]
fn saves_tell_same_replaced_and_stale_tokens_apart() {
    let mut stored = row("at-2", Some("rt-2"));
    stored.replaced = replaced_after(None, Some("rt-1"), Some("rt-2"));
    assert_eq!(
        save(&stored, &new("at-2", Some("rt-2"))),
        Save::Same { set_issuer: false }
    );
    let mut with_issuer = new("at-2", Some("rt-2"));
    with_issuer.issuer = Some("https://as.example");
    assert_eq!(save(&stored, &with_issuer), Save::Same { set_issuer: true });
    assert_eq!(save(&stored, &new("at-3", Some("rt-3"))), Save::Replace);
    assert_eq!(save(&stored, &new("at-1", Some("rt-1"))), Save::Stale);
    // A server that does not rotate: a new access token with the same refresh token.
    assert_eq!(save(&stored, &new("at-3", Some("rt-2"))), Save::Replace);
    assert_eq!(save(&stored, &new("at-3", None)), Save::Replace);
}

#[test]
fn the_replaced_list_keeps_the_last_four_and_never_the_kept_token() {
    let mut replaced = None;
    for i in 0..6 {
        replaced = replaced_after(
            replaced.as_deref(),
            Some(&format!("rt-{i}")),
            Some(&format!("rt-{}", i + 1)),
        );
    }
    let replaced = replaced.unwrap();
    assert_eq!(replaced.len(), 32 * REPLACED_KEPT);
    let mut stored = row("at", Some("rt-6"));
    stored.replaced = Some(replaced.clone());
    for i in 2..6 {
        assert_eq!(
            save(&stored, &new("x", Some(&format!("rt-{i}")))),
            Save::Stale
        );
    }
    assert_eq!(save(&stored, &new("x", Some("rt-1"))), Save::Replace);
    // Not rotated: nothing is added.
    let kept = replaced_after(Some(&replaced), Some("rt-6"), Some("rt-6"));
    assert_eq!(kept.as_deref(), Some(&replaced[..]));
    assert_eq!(replaced_after(None, None, Some("rt")), None);
}

#[test]
fn a_holder_request_ends_before_its_lease() {
    assert_eq!(
        holder_deadline(Duration::from_secs(30)),
        Duration::from_secs(28)
    );
    assert_eq!(
        holder_deadline(Duration::from_secs(3)),
        Duration::from_millis(1500)
    );
    assert_eq!(lease_expiry(1_000, Duration::from_secs(3)).unwrap(), 4_000);
    assert!(lease_expiry(i64::MAX - 1, Duration::from_secs(1)).is_err());
    assert_eq!(expires_at(1_000, Some(Duration::from_secs(2))), Some(3_000));
    assert_eq!(expires_at(1_000, None), None);
}

#[test]
fn a_waiter_wakes_on_any_change_or_an_expired_lease() {
    let before = TokenWatch {
        generation: 3,
        revoked: false,
        lease_holder: Some("a".into()),
        lease_expires_at: Some(2_000),
    };
    assert!(!changed(&before, Some(&before), 1_000));
    assert!(changed(&before, Some(&before), 2_000));
    assert!(changed(&before, None, 1_000));
    for after in [
        TokenWatch {
            generation: 4,
            ..before.clone()
        },
        TokenWatch {
            revoked: true,
            ..before.clone()
        },
        TokenWatch {
            lease_holder: Some("b".into()),
            ..before.clone()
        },
        TokenWatch {
            lease_holder: None,
            lease_expires_at: None,
            ..before.clone()
        },
    ] {
        assert!(changed(&before, Some(&after), 1_000), "{after:?}");
    }
    assert!(holds_lease(
        Some(&Snapshot {
            lease: Some(("a", 5)),
            ..snap(1)
        }),
        "a"
    ));
    assert!(!holds_lease(Some(&snap(1)), "a"));
    assert!(secret_eq("abc", "abc") && !secret_eq("abc", "abd") && !secret_eq("ab", "abc"));
}
