//! Token sets: save, read, generations, stale tokens, forget, list, input checks, redaction;
//! the refresh's beginning, compare-and-swap finish, rule 3 and release, with the fixture's
//! clock (leases expire when it moves).

use std::time::Duration;

use super::Fixture;
use oauth_state_store::{
    AccessToken, Error, Finished, Generation, RefreshLease, RefreshOptions, RefreshToken, Rejected,
    Saved, Seen, Store, TokenResponse, TokenState, TryBegun,
};

pub const SRV: &str = "https://mcp.example.com";
pub const CLI: &str = "client-1";

/// A response with access token `at-{n}` and refresh token `rt-{n}`, for an hour.
pub fn response(n: u32) -> TokenResponse {
    TokenResponse::new(AccessToken::new(format!("at-{n}")).unwrap(), "Bearer")
        .refresh_token(RefreshToken::new(format!("rt-{n}")).unwrap())
        .expires_in(Duration::from_secs(3600))
}

pub fn lease_of(store: &Store, seen: Seen) -> RefreshLease {
    match store
        .try_begin_refresh(SRV, CLI, seen, &RefreshOptions::default())
        .unwrap()
    {
        TryBegun::Lease(lease) => lease,
        other => panic!("expected a lease, got {other:?}"),
    }
}

fn generation(saved: Saved) -> u64 {
    match saved {
        Saved::Stored(g) | Saved::Unchanged(g) | Saved::Stale(g) => g.get(),
    }
}

#[test]
fn saves_count_generations_and_never_store_a_replaced_refresh_token() {
    let fx = Fixture::new();
    let store = fx.store();
    assert!(store.tokens(SRV, CLI).unwrap().is_none());
    let first = response(1)
        .scope("mcp:tools offline_access")
        .extra(r#"{"id_token":"id-1"}"#);
    assert_eq!(generation(store.save_tokens(SRV, CLI, first).unwrap()), 1);
    let set = store.tokens(SRV, CLI).unwrap().unwrap();
    assert_eq!(set.generation().get(), 1);
    assert_eq!(set.access_token().secret(), "at-1");
    assert_eq!(set.refresh_token().unwrap().secret(), "rt-1");
    assert_eq!(set.token_type(), "Bearer");
    assert_eq!(set.scope(), Some("mcp:tools offline_access"));
    assert_eq!(set.extra(), Some(r#"{"id_token":"id-1"}"#));
    assert_eq!(set.expires_in(), Some(Duration::from_secs(3600)));
    fx.clock.advance(Duration::from_secs(3590));
    let set = store.tokens(SRV, CLI).unwrap().unwrap();
    assert_eq!(set.expires_in(), Some(Duration::from_secs(10)));
    assert!(set.expires_within(Duration::from_secs(30)));
    // The same tokens again (an SDK saving what it was handed): no new generation, but an
    // issuer the set lacked is kept.
    let again = response(1).issuer("https://as.example.com");
    assert!(matches!(
        store.save_tokens(SRV, CLI, again).unwrap(),
        Saved::Unchanged(g) if g.get() == 1
    ));
    let set = store.tokens(SRV, CLI).unwrap().unwrap();
    assert_eq!(set.issuer(), Some("https://as.example.com"));
    assert_eq!(set.scope(), Some("mcp:tools offline_access"));
    assert!(
        matches!(store.save_tokens(SRV, CLI, response(2)).unwrap(), Saved::Stored(g) if g.get() == 2)
    );
    // rt-1 was replaced: it can never be stored again.
    assert!(
        matches!(store.save_tokens(SRV, CLI, response(1)).unwrap(), Saved::Stale(g) if g.get() == 2)
    );
    assert_eq!(
        store
            .tokens(SRV, CLI)
            .unwrap()
            .unwrap()
            .access_token()
            .secret(),
        "at-2"
    );
    // Other clients and servers are other sets.
    assert_eq!(
        generation(store.save_tokens(SRV, "client-2", response(9)).unwrap()),
        1
    );
    assert_eq!(
        generation(store.save_tokens("other", CLI, response(9)).unwrap()),
        1
    );
    let listed = store.list_token_sets(Some(SRV)).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (listed[0].client_id.as_str(), listed[0].generation.get()),
        (CLI, 2)
    );
    assert!(matches!(
        listed[0].state,
        TokenState::Live {
            refresh_token: true,
            expires_at: Some(_)
        }
    ));
    assert_eq!(store.list_token_sets(None).unwrap().len(), 3);
    let printed = format!("{listed:?} {:?}", store.tokens(SRV, CLI).unwrap());
    for secret in ["at-1", "at-2", "rt-1", "rt-2", "id-1"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
}

#[test]
fn a_server_that_does_not_rotate_keeps_its_refresh_token_usable() {
    let fx = Fixture::new();
    let store = fx.store();
    store.save_tokens(SRV, CLI, response(1)).unwrap();
    let lease = lease_of(&store, Seen::Current);
    // The response has a new access token and no refresh token: the presented one is kept,
    // and it is not "replaced" (saving it again is no stale save).
    let fresh = TokenResponse::new(AccessToken::new("at-2").unwrap(), "Bearer");
    let set = store.finish_refresh(lease, fresh).unwrap().into_set();
    assert_eq!(set.generation().get(), 2);
    assert_eq!(set.refresh_token().unwrap().secret(), "rt-1");
    let resave = TokenResponse::new(AccessToken::new("at-3").unwrap(), "Bearer")
        .refresh_token(RefreshToken::new("rt-1").unwrap());
    assert!(
        matches!(store.save_tokens(SRV, CLI, resave).unwrap(), Saved::Stored(g) if g.get() == 3)
    );
}

#[test]
fn bad_input_names_the_field_and_writes_nothing() {
    let fx = Fixture::new();
    let store = fx.store();
    let field = |r: Result<Saved, Error>| match r {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    assert_eq!(field(store.save_tokens("", CLI, response(1))), "server_id");
    assert_eq!(
        field(store.save_tokens(SRV, "a\nb", response(1))),
        "client_id"
    );
    let bad_type = TokenResponse::new(AccessToken::new("at").unwrap(), "Bear er");
    assert_eq!(field(store.save_tokens(SRV, CLI, bad_type)), "token_type");
    assert_eq!(
        field(store.save_tokens(SRV, CLI, response(1).scope("a  b"))),
        "scope"
    );
    let plain = response(1).issuer("http://as.example.com");
    assert_eq!(field(store.save_tokens(SRV, CLI, plain)), "issuer");
    let nul = response(1).extra("a\0b");
    assert_eq!(field(store.save_tokens(SRV, CLI, nul)), "extra");
    let long = response(1).extra("x".repeat(65537));
    assert_eq!(field(store.save_tokens(SRV, CLI, long)), "extra");
    let forever = response(1).expires_in(Duration::MAX);
    assert_eq!(field(store.save_tokens(SRV, CLI, forever)), "expires_in");
    for bad in ["", "tab\there", "é"] {
        assert!(matches!(
            AccessToken::new(bad),
            Err(Error::InvalidInput {
                field: "access_token",
                ..
            })
        ));
        assert!(matches!(
            RefreshToken::new(bad),
            Err(Error::InvalidInput {
                field: "refresh_token",
                ..
            })
        ));
    }
    assert!(AccessToken::new("x".repeat(65537)).is_err());
    assert!(store.list_token_sets(None).unwrap().is_empty());
    let options = [
        RefreshOptions::default().lease(Duration::from_millis(999)),
        RefreshOptions::default().wait(Duration::from_secs(3601)),
        RefreshOptions::default().poll_max(Duration::ZERO),
        RefreshOptions::default().owner(""),
    ];
    for (options, name) in options.iter().zip(["lease", "wait", "poll_max", "owner"]) {
        assert!(matches!(
            store.try_begin_refresh(SRV, CLI, Seen::Current, options),
            Err(Error::InvalidInput { field, .. }) if field == name
        ));
    }
    store.save_tokens(SRV, CLI, response(1)).unwrap();
    let lease = lease_of(&store, Seen::Current);
    assert!(matches!(
        store.reject_refresh(lease, "bad\"code"),
        Err(Error::InvalidInput { field: "error", .. })
    ));
}

#[test]
fn begin_hands_out_newer_sets_waits_on_a_running_lease_and_takes_over_an_expired_one() {
    let fx = Fixture::new();
    let store = fx.store();
    let options = RefreshOptions::default().lease(Duration::from_secs(5));
    let begin = |seen| store.try_begin_refresh(SRV, CLI, seen, &options);
    assert!(matches!(begin(Seen::Current), Err(Error::NoTokens)));
    let no_refresh = TokenResponse::new(AccessToken::new("at-0").unwrap(), "Bearer");
    store.save_tokens(SRV, CLI, no_refresh).unwrap();
    assert!(matches!(begin(Seen::Current), Err(Error::NoRefreshToken)));
    store.save_tokens(SRV, CLI, response(1)).unwrap(); // generation 2
    let old = store.tokens(SRV, CLI).unwrap().unwrap();
    let TryBegun::Lease(lease) = begin(Seen::from(&old)).unwrap() else {
        panic!("the first caller leases");
    };
    assert_eq!(lease.generation(), old.generation());
    assert_eq!(lease.refresh_token().secret(), "rt-1");
    assert!(!lease.took_over());
    // While it runs: the same generation waits, an older one gets the stored set at once.
    let TryBegun::Wait(wait) = begin(Seen::from(&old)).unwrap() else {
        panic!("a second caller waits");
    };
    assert_eq!(wait.seen(), Seen::from(&old));
    assert_eq!(wait.lease_left(), Duration::from_secs(5));
    assert!(matches!(begin(Seen::Current).unwrap(), TryBegun::Wait(_)));
    let older = Seen::Generation(Generation::new(old.generation().get() - 1));
    assert!(
        matches!(begin(older).unwrap(), TryBegun::Newer(s) if s.generation() == old.generation())
    );
    let listed = &store.list_token_sets(None).unwrap()[0];
    let owner = &listed.lease.as_ref().expect("the lease is listed").owner;
    assert_eq!(owner, &format!("pid {}", std::process::id()));
    // The lease's last moment: still waits; after it, taken over.
    fx.clock.advance(Duration::from_millis(4999));
    assert!(matches!(
        begin(Seen::from(&old)).unwrap(),
        TryBegun::Wait(_)
    ));
    fx.clock.advance(Duration::from_millis(1));
    let TryBegun::Lease(second) = begin(Seen::from(&old)).unwrap() else {
        panic!("an expired lease is taken over");
    };
    assert!(second.took_over());
    // The first holder's late release leaves the new holder's lease alone.
    store.release_refresh(lease).unwrap();
    assert!(matches!(
        begin(Seen::from(&old)).unwrap(),
        TryBegun::Wait(_)
    ));
    // Its own release frees the set at once.
    store.release_refresh(second).unwrap();
    assert!(matches!(begin(Seen::from(&old)).unwrap(), TryBegun::Lease(l) if !l.took_over()));
}

#[test]
fn finish_saves_over_the_leased_generation_only() {
    let fx = Fixture::new();
    let store = fx.store();
    store
        .save_tokens(
            SRV,
            CLI,
            response(1).scope("a b").issuer("https://as.example.com"),
        )
        .unwrap();
    let lease = lease_of(&store, Seen::Current);
    let Finished::Saved(set) = store.finish_refresh(lease, response(2)).unwrap() else {
        panic!("the leased generation is stored: saved");
    };
    assert_eq!(set.generation().get(), 2);
    assert_eq!(set.access_token().secret(), "at-2");
    // The response had no scope or issuer: the set's are kept.
    assert_eq!(set.scope(), Some("a b"));
    assert_eq!(set.issuer(), Some("https://as.example.com"));
    let stored = store.tokens(SRV, CLI).unwrap().unwrap();
    assert_eq!(stored.refresh_token().unwrap().secret(), "rt-2");
    assert!(store.list_token_sets(None).unwrap()[0].lease.is_none());
    assert!(matches!(
        store.save_tokens(SRV, CLI, response(1)).unwrap(),
        Saved::Stale(_)
    ));
    // A login saved while a refresh runs wins: the refresh's response is dropped.
    let lease = lease_of(&store, Seen::Current);
    store.save_tokens(SRV, CLI, response(10)).unwrap();
    let Finished::Superseded(set) = store.finish_refresh(lease, response(3)).unwrap() else {
        panic!("a newer set was saved: superseded");
    };
    assert_eq!(set.access_token().secret(), "at-10");
    assert_eq!(
        store
            .tokens(SRV, CLI)
            .unwrap()
            .unwrap()
            .access_token()
            .secret(),
        "at-10"
    );
    // A set forgotten while a refresh runs stays forgotten.
    let lease = lease_of(&store, Seen::Current);
    assert_eq!(store.forget_tokens(SRV, None).unwrap(), 1);
    assert!(matches!(
        store.finish_refresh(lease, response(4)),
        Err(Error::NoTokens)
    ));
    assert!(store.tokens(SRV, CLI).unwrap().is_none());
}

#[test]
fn a_refusal_clears_the_set_only_while_its_generation_is_stored() {
    let fx = Fixture::new();
    let store = fx.store();
    store.save_tokens(SRV, CLI, response(1)).unwrap();
    let seen = store.tokens(SRV, CLI).unwrap().unwrap().generation();
    store.save_tokens(SRV, CLI, response(2)).unwrap();
    // A stale refusal (generation 1 while 2 is stored) leaves the newer set alone.
    let Rejected::Stale(set) = store
        .reject_tokens(SRV, CLI, seen, "invalid_grant")
        .unwrap()
    else {
        panic!("a stale refusal is stale");
    };
    assert_eq!(set.access_token().secret(), "at-2");
    assert_eq!(
        store
            .tokens(SRV, CLI)
            .unwrap()
            .unwrap()
            .access_token()
            .secret(),
        "at-2"
    );
    // The current generation's refusal revokes it.
    let lease = lease_of(&store, Seen::Current);
    assert!(matches!(
        store.reject_refresh(lease, "invalid_grant").unwrap(),
        Rejected::Revoked
    ));
    assert!(store.tokens(SRV, CLI).unwrap().is_none());
    let listed = &store.list_token_sets(None).unwrap()[0];
    assert_eq!(listed.generation.get(), 3);
    assert!(matches!(
        &listed.state,
        TokenState::Revoked { reason, .. } if reason == "invalid_grant"
    ));
    let e = store
        .try_begin_refresh(SRV, CLI, Seen::Current, &RefreshOptions::default())
        .unwrap_err();
    assert!(
        matches!(&e, Error::TokensRevoked { reason, after_lost_holder: false } if reason == "invalid_grant")
    );
    assert!(e.to_string().contains("sign in again"), "{e}");
    assert!(matches!(
        store
            .reject_tokens(SRV, CLI, listed.generation, "invalid_grant")
            .unwrap(),
        Rejected::Gone
    ));
    // A new login after the revocation is the next generation, and refreshable.
    assert!(
        matches!(store.save_tokens(SRV, CLI, response(5)).unwrap(), Saved::Stored(g) if g.get() == 4)
    );
    assert_eq!(
        lease_of(&store, Seen::Current).refresh_token().secret(),
        "rt-5"
    );
}

#[test]
fn a_lease_belongs_to_its_store_and_nothing_prints_a_token() {
    let fx = Fixture::new();
    let store = fx.store();
    store.save_tokens(SRV, CLI, response(1)).unwrap();
    let other_fx = Fixture::new();
    let other = other_fx.store();
    other.save_tokens(SRV, CLI, response(2)).unwrap();
    let lease = lease_of(&store, Seen::Current);
    let printed = format!("{lease:?} {:?}", response(7).extra("EXTRA-7"));
    for secret in ["rt-1", "at-7", "rt-7", "EXTRA-7"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
    assert!(printed.contains("[redacted]"));
    assert!(matches!(
        other.finish_refresh(lease, response(3)),
        Err(Error::InvalidInput { field: "lease", .. })
    ));
    // The other store's set is untouched, and the lease is still this store's to expire.
    assert_eq!(
        other
            .tokens(SRV, CLI)
            .unwrap()
            .unwrap()
            .access_token()
            .secret(),
        "at-2"
    );
    assert!(store.list_token_sets(None).unwrap()[0].lease.is_some());
}
