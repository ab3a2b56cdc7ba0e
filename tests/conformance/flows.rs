//! The flow lifecycle on a file: begin, promote, check, consume, reject, replay, expiry.

use super::Fixture;
use oauth_state_store::{BeginRequest, CodeVerifier, EndReason, Error, State, Status};

#[test]
fn begin_then_consume_then_replay() {
    let fx = Fixture::new();
    let store = fx.store();
    let flow = store
        .begin(
            BeginRequest::new("https://mcp.example.com")
                .client_id("cli")
                .redirect_uri("http://127.0.0.1:33418/callback")
                .issuer("https://auth.example.com")
                .resource("https://mcp.example.com/mcp")
                .scope("mcp:tools"),
        )
        .unwrap();
    let url = flow
        .authorization_url("https://auth.example.com/authorize")
        .unwrap();
    let state = flow.state().secret().to_owned();
    assert!(url.as_str().contains("code_challenge_method=S256"));
    let info = store.check(&state).unwrap();
    assert_eq!(info.status, Status::Pending);
    let consumed = store.consume(&state).unwrap();
    assert_eq!(
        consumed.verifier.challenge().as_str(),
        flow.code_challenge().as_str()
    );
    assert!(!url.as_str().contains(consumed.verifier.secret()));
    assert_eq!(
        consumed.info.issuer.as_deref(),
        Some("https://auth.example.com")
    );
    assert!(matches!(store.consume(&state), Err(Error::AlreadyConsumed)));
    assert!(matches!(
        store.consume("forged-state"),
        Err(Error::UnknownState)
    ));
}

#[test]
fn sdk_path_save_promote_consume() {
    let fx = Fixture::new();
    let store = fx.store();
    let verifier = CodeVerifier::generate();
    let challenge = store
        .save_code_verifier("srv", Some("cli"), verifier.secret())
        .unwrap();
    let url = format!(
        "https://auth.example.com/authorize?response_type=code&client_id=cli&state=abc123&code_challenge={challenge}&code_challenge_method=S256"
    );
    store.promote("srv", Some("cli"), &url).unwrap();
    store.promote("srv", Some("cli"), &url).unwrap();
    assert_eq!(
        store.pending_verifier("srv", Some("cli")).unwrap().secret(),
        verifier.secret()
    );
    let consumed = store.consume("abc123").unwrap();
    assert_eq!(consumed.verifier.secret(), verifier.secret());
    fx.clock.advance(std::time::Duration::from_secs(3600));
    let report = store.sweep().unwrap();
    assert_eq!(report.removed.consumed, 1);
}

fn begin(store: &oauth_state_store::Store, server: &str, client: &str) -> oauth_state_store::Flow {
    store
        .begin(BeginRequest::new(server).client_id(client))
        .unwrap()
}

fn total_rows(store: &oauth_state_store::Store) -> u64 {
    store.stats().unwrap().counts.total()
}

#[test]
fn overlapping_flows_each_consume_their_own_verifier_in_any_order() {
    let fx = Fixture::new();
    let store = fx.store();
    let flows: Vec<_> = (0..4).map(|_| begin(&store, "srv", "cli")).collect();
    // Consume in a shuffled order: last, first, third, second.
    for i in [3, 0, 2, 1] {
        let got = store.consume(flows[i].state().secret()).unwrap();
        assert_eq!(
            got.verifier.challenge(),
            *flows[i].code_challenge(),
            "flow {i} got another flow's verifier"
        );
    }
    assert!(matches!(
        store.pending_verifier("srv", Some("cli")),
        Err(Error::NoPendingVerifier)
    ));
}

#[test]
fn expired_flow_is_reported_expired_and_removed() {
    let fx = Fixture::new();
    let store = fx.store();
    let flow = store
        .begin(BeginRequest::new("srv").ttl(std::time::Duration::from_secs(60)))
        .unwrap();
    fx.clock.advance(std::time::Duration::from_secs(59));
    store.check(flow.state().secret()).unwrap();
    fx.clock.advance(std::time::Duration::from_secs(1));
    assert!(matches!(
        store.consume(flow.state().secret()),
        Err(Error::Expired)
    ));
    // The expired row is gone: the state is now simply unknown.
    assert!(matches!(
        store.check(flow.state().secret()),
        Err(Error::UnknownState)
    ));
    assert_eq!(total_rows(&store), 0);
}

#[test]
fn check_reports_expiry_and_removes_the_row() {
    let fx = Fixture::new();
    let store = fx.store();
    let flow = begin(&store, "srv", "cli");
    fx.clock.advance(std::time::Duration::from_secs(10 * 60));
    assert!(matches!(
        store.check(flow.state().secret()),
        Err(Error::Expired)
    ));
    assert_eq!(total_rows(&store), 0);
}

#[test]
fn consume_for_the_wrong_server_is_a_mismatch_and_burns_the_flow() {
    let fx = Fixture::new();
    let store = fx.store();
    let flow = begin(&store, "server-a", "cli");
    let state = flow.state().secret();
    assert!(matches!(
        store.consume_for(state, "server-b"),
        Err(Error::ServerMismatch { field: "server_id" })
    ));
    // Nothing usable is left: the verifier was wiped with the attempt, and the flow is
    // reported as ended for its reason, not as a completed login.
    assert!(matches!(
        store.consume_for(state, "server-a"),
        Err(Error::FlowEnded {
            reason: EndReason::ServerMismatch
        })
    ));
    let ok = begin(&store, "server-a", "cli");
    assert!(store.consume_for(ok.state().secret(), "server-a").is_ok());
}

#[test]
fn promote_for_another_server_or_client_binds_nothing() {
    let fx = Fixture::new();
    let store = fx.store();
    let v = CodeVerifier::generate();
    let challenge = store
        .save_code_verifier("server-a", Some("cli"), v.secret())
        .unwrap();
    let url = format!("https://as.example/authorize?state=s1&code_challenge={challenge}");
    assert!(matches!(
        store.promote("server-b", Some("cli"), &url),
        Err(Error::ServerMismatch { field: "server_id" })
    ));
    assert!(matches!(
        store.promote("server-a", Some("other"), &url),
        Err(Error::ServerMismatch { field: "client_id" })
    ));
    assert!(matches!(store.check("s1"), Err(Error::UnknownState)));
    assert_eq!(store.stats().unwrap().counts.unbound, 1);
    // The rightful owner can still bind it.
    store.promote("server-a", Some("cli"), &url).unwrap();
    assert_eq!(store.consume("s1").unwrap().verifier.secret(), v.secret());
}

#[test]
fn promote_errors_are_distinct() {
    let fx = Fixture::new();
    let store = fx.store();
    let v = CodeVerifier::generate();
    let challenge = store.save_code_verifier("srv", None, v.secret()).unwrap();
    let base = "https://as.example/authorize";
    assert!(matches!(
        store.promote("srv", None, &format!("{base}?code_challenge={challenge}")),
        Err(Error::MissingParameter { name: "state" })
    ));
    assert!(matches!(
        store.promote("srv", None, &format!("{base}?state=x")),
        Err(Error::MissingParameter {
            name: "code_challenge"
        })
    ));
    let unknown = CodeVerifier::generate().challenge();
    assert!(matches!(
        store.promote(
            "srv",
            None,
            &format!("{base}?state=x&code_challenge={unknown}")
        ),
        Err(Error::UnknownChallenge)
    ));
    assert!(matches!(
        store.promote(
            "srv",
            None,
            &format!("{base}?state=x&state=y&code_challenge={challenge}")
        ),
        Err(Error::InvalidInput { field: "state", .. })
    ));
    assert!(matches!(
        store.promote(
            "srv",
            None,
            &format!("{base}?state=x&code_challenge={challenge}&code_challenge_method=plain")
        ),
        Err(Error::InvalidInput {
            field: "code_challenge_method",
            ..
        })
    ));
    // A state already in use by another flow.
    let other = store.begin(BeginRequest::new("srv")).unwrap();
    let taken = other.state().secret();
    assert!(matches!(
        store.promote(
            "srv",
            None,
            &format!("{base}?state={taken}&code_challenge={challenge}")
        ),
        Err(Error::DuplicateState)
    ));
    // Bound to one state, it cannot be bound to another.
    store
        .promote(
            "srv",
            None,
            &format!("{base}?state=first&code_challenge={challenge}"),
        )
        .unwrap();
    assert!(matches!(
        store.promote(
            "srv",
            None,
            &format!("{base}?state=second&code_challenge={challenge}")
        ),
        Err(Error::ChallengeAlreadyBound)
    ));
    // Expired before it was bound.
    let late = CodeVerifier::generate();
    let late_challenge = store
        .save_code_verifier("srv", None, late.secret())
        .unwrap();
    fx.clock.advance(std::time::Duration::from_secs(11 * 60));
    assert!(matches!(
        store.promote(
            "srv",
            None,
            &format!("{base}?state=late&code_challenge={late_challenge}")
        ),
        Err(Error::Expired)
    ));
}

/// A verifier the store generated for `begin` (32 random bytes) is never looked up by its
/// challenge, on either engine (`docs/file-format.md`): `promote` does not find its flow,
/// and a caller that hands it back is not refused, while a verifier that came from outside
/// stays unique.
#[test]
fn a_generated_verifier_is_not_found_by_its_challenge_and_an_outside_one_stays_unique() {
    let fx = Fixture::new();
    let store = fx.store();
    let base = "https://as.example/authorize";
    let native = store.begin(BeginRequest::new("srv")).unwrap();
    let challenge = native.code_challenge().as_str().to_owned();
    assert!(matches!(
        store.promote(
            "srv",
            None,
            &format!("{base}?state=other&code_challenge={challenge}")
        ),
        Err(Error::UnknownChallenge)
    ));
    // Handed back, for a second flow of each shape: each keeps its own row.
    let consumed = store.consume(native.state().secret()).unwrap();
    let handed_back = consumed.verifier.secret().to_owned();
    assert_eq!(
        store
            .save_code_verifier("srv", None, &handed_back)
            .unwrap()
            .as_str(),
        challenge
    );
    store
        .promote(
            "srv",
            None,
            &format!("{base}?state=second&code_challenge={challenge}"),
        )
        .unwrap();
    assert_eq!(
        store.consume("second").unwrap().verifier.secret(),
        handed_back
    );
    assert!(matches!(
        store.consume(native.state().secret()),
        Err(Error::AlreadyConsumed)
    ));
    // A verifier from outside: unique against unbound rows and against other outside ones.
    let outside = CodeVerifier::generate().secret().to_owned();
    let verifier = || CodeVerifier::new(outside.as_str()).unwrap();
    store
        .begin(BeginRequest::new("srv").verifier(verifier()))
        .unwrap();
    assert!(matches!(
        store.save_code_verifier("srv", None, &outside),
        Err(Error::DuplicateChallenge)
    ));
    assert!(matches!(
        store.begin(BeginRequest::new("srv").verifier(verifier())),
        Err(Error::DuplicateChallenge)
    ));
    // Both its challenge and a state in use: the challenge is the one reported.
    let taken = store.begin(BeginRequest::new("srv")).unwrap();
    let state = State::new(taken.state().secret()).unwrap();
    assert!(matches!(
        store.begin(BeginRequest::new("srv").state(state).verifier(verifier())),
        Err(Error::DuplicateChallenge)
    ));
}

#[test]
fn orphaned_unbound_verifier_expires_and_is_swept() {
    let fx = Fixture::new();
    let store = fx.store();
    store
        .save_code_verifier("srv", Some("cli"), CodeVerifier::generate().secret())
        .unwrap();
    let live = begin(&store, "srv", "cli");
    assert_eq!(store.sweep().unwrap().removed.total(), 0);
    fx.clock.advance(std::time::Duration::from_secs(5 * 60));
    let live2 = begin(&store, "srv", "cli");
    fx.clock.advance(std::time::Duration::from_secs(6 * 60));
    let report = store.sweep().unwrap();
    assert_eq!(report.removed.unbound, 1);
    assert_eq!(report.removed.pending, 1);
    assert!(matches!(
        store.check(live.state().secret()),
        Err(Error::UnknownState)
    ));
    store.check(live2.state().secret()).unwrap();
}

#[test]
fn sweep_removes_every_status_in_small_batches() {
    let fx = Fixture::new();
    // A time target no batch misses: the sizes depend on the row counts alone.
    let store = fx.open(
        fx.options()
            .sweep_batch_size(7)
            .sweep_batch_time(std::time::Duration::from_secs(3600)),
    );
    let mut states = Vec::new();
    for i in 0..50 {
        let flow = begin(&store, "srv", "cli");
        let s = flow.state().secret().to_owned();
        match i % 4 {
            0 => drop(store.consume(&s).unwrap()),
            1 => drop(store.reject(&s, "access_denied", None).unwrap()),
            2 => drop(store.complete(&s, "code-xyz").unwrap()),
            _ => {}
        }
        states.push(s);
    }
    for _ in 0..10 {
        store
            .save_code_verifier("srv", None, CodeVerifier::generate().secret())
            .unwrap();
    }
    fx.clock.advance(std::time::Duration::from_secs(10 * 60));
    let report = store.sweep().unwrap();
    assert_eq!(report.removed.total(), 60);
    assert_eq!(report.removed.consumed, 13);
    assert_eq!(report.removed.failed, 13);
    assert_eq!(report.removed.completed, 12);
    assert_eq!(report.removed.pending, 12);
    assert_eq!(report.removed.unbound, 10);
    assert_eq!(report.batches, 9);
    assert_eq!(total_rows(&store), 0);
}

/// `sweep_finished` walks the whole table in chunks (no index of ended rows): with a limit of 3
/// rows deleted a transaction (96 walked), it removes every ended row older than the cut, among
/// live ones and newer ended ones, skipping none where a chunk stopped at its limit, and agrees
/// with the preview.
#[test]
fn sweep_finished_walks_the_table_in_chunks_and_misses_no_ended_row() {
    let fx = Fixture::new();
    let store = fx.open(
        fx.options()
            .sweep_batch_size(3)
            .sweep_batch_time(std::time::Duration::from_secs(3600)),
    );
    let mut kept = Vec::new();
    for i in 0..400 {
        let flow = begin(&store, "srv", "cli");
        let s = flow.state().secret().to_owned();
        match i % 5 {
            0 | 1 => drop(store.consume(&s).unwrap()),
            2 => drop(store.reject(&s, "access_denied", None).unwrap()),
            _ => kept.push(s),
        }
    }
    fx.clock.advance(std::time::Duration::from_secs(120));
    // Ended after the cut: kept.
    let late = begin(&store, "srv", "cli").state().secret().to_owned();
    store.consume(&late).unwrap();
    let minute = std::time::Duration::from_secs(60);
    let preview = store.sweep_preview(Some(minute)).unwrap();
    assert_eq!((preview.consumed, preview.failed), (160, 80));
    let report = store.sweep_finished(minute).unwrap();
    assert_eq!(report.removed, preview);
    assert!(report.batches >= 80, "{report:?}");
    assert_eq!(total_rows(&store), 161);
    for s in &kept {
        assert_eq!(store.check(s).unwrap().status, Status::Pending);
    }
    assert!(matches!(store.consume(&late), Err(Error::AlreadyConsumed)));
    assert_eq!(store.sweep_finished(minute).unwrap().removed.total(), 0);
}

/// Begins `n` flows for `srv` on `store` and moves its clock past their expiry.
fn expired_flows(fx: &Fixture, store: &oauth_state_store::Store, n: usize) {
    for _ in 0..n {
        begin(store, "srv", "cli");
    }
    fx.clock.advance(std::time::Duration::from_secs(11 * 60));
}

#[test]
fn sweep_batches_grow_while_fast_up_to_the_size_limit() {
    let fx = Fixture::new();
    let store = fx.open(
        fx.options()
            .sweep_batch_size(500)
            .sweep_batch_time(std::time::Duration::from_secs(3600)),
    );
    expired_flows(&fx, &store, 2000);
    let report = store.sweep().unwrap();
    assert_eq!(report.removed.total(), 2000);
    // 64, 128, 256, then 500 three times, then the last 52.
    assert_eq!(report.batches, 7);
    assert!(report.longest_batch > std::time::Duration::ZERO);
    assert_eq!(total_rows(&store), 0);
}

#[test]
fn sweep_batches_shrink_to_one_row_when_every_batch_is_too_slow() {
    let fx = Fixture::new();
    let store = fx.open(fx.options().sweep_batch_time(std::time::Duration::ZERO));
    expired_flows(&fx, &store, 300);
    let report = store.sweep().unwrap();
    assert_eq!(report.removed.total(), 300);
    // 64, 32, 16, 8, 4, 2 (126 rows), then one row a batch.
    assert_eq!(report.batches, 6 + 174);
    assert_eq!(total_rows(&store), 0);
}

#[test]
fn reject_validates_the_state_first_and_ends_the_flow() {
    let fx = Fixture::new();
    let store = fx.store();
    let flow = begin(&store, "srv", "cli");
    let before = store.stats().unwrap();
    assert!(matches!(
        store.reject("forged", "access_denied", None),
        Err(Error::UnknownState)
    ));
    assert_eq!(store.stats().unwrap(), before);
    let state = flow.state().secret();
    store
        .reject(state, "access_denied", Some("The user said no"))
        .unwrap();
    assert!(matches!(
        store.complete(state, "late-code"),
        Err(Error::AlreadyCompleted)
    ));
    match store.consume(state) {
        Err(Error::AuthorizationFailed { error, description }) => {
            assert_eq!(error, "access_denied");
            assert_eq!(description.as_deref(), Some("The user said no"));
        }
        other => panic!("expected AuthorizationFailed, got {other:?}"),
    }
    assert!(matches!(
        store.consume(state),
        Err(Error::FlowEnded {
            reason: EndReason::AuthorizationFailed
        })
    ));
}

#[test]
fn a_completed_flow_hands_back_its_code_once() {
    let fx = Fixture::new();
    let store = fx.store();
    let flow = begin(&store, "srv", "cli");
    let state = flow.state().secret();
    store.complete(state, "the-code").unwrap();
    assert!(matches!(
        store.complete(state, "again"),
        Err(Error::AlreadyCompleted)
    ));
    let got = store.consume(state).unwrap();
    assert_eq!(got.code.as_ref().map(|c| c.secret()), Some("the-code"));
    assert!(matches!(
        store.complete(state, "x"),
        Err(Error::AlreadyConsumed)
    ));
}

#[test]
fn pending_verifier_is_ambiguous_with_overlapping_attempts() {
    let fx = Fixture::new();
    let store = fx.store();
    assert!(matches!(
        store.pending_verifier("srv", Some("cli")),
        Err(Error::NoPendingVerifier)
    ));
    let one = begin(&store, "srv", "cli");
    assert_eq!(
        store
            .pending_verifier("srv", Some("cli"))
            .unwrap()
            .challenge(),
        *one.code_challenge()
    );
    let _two = begin(&store, "srv", "cli");
    let _three = begin(&store, "srv", "cli");
    assert!(matches!(
        store.pending_verifier("srv", Some("cli")),
        Err(Error::AmbiguousPendingVerifier { count: 3 })
    ));
    // Other clients' flows do not count.
    assert!(matches!(
        store.pending_verifier("srv", Some("other")),
        Err(Error::NoPendingVerifier)
    ));
}

#[test]
fn invalidate_touches_exactly_the_named_server_and_client() {
    let fx = Fixture::new();
    let store = fx.store();
    // Servers whose ids share prefixes: a prefix scan would match several of them.
    let servers = ["srv", "srv-2", "srv%", "srv_", "sr"];
    let clients = ["cli", "cli-2"];
    for s in servers {
        for c in clients {
            begin(&store, s, c);
            store
                .save_code_verifier(s, Some(c), CodeVerifier::generate().secret())
                .unwrap();
            let done = begin(&store, s, c);
            store.consume(done.state().secret()).unwrap();
        }
    }
    let all = total_rows(&store);
    assert_eq!(all, 30);
    use oauth_state_store::InvalidateScope;
    assert_eq!(
        store
            .invalidate("srv", Some("cli"), InvalidateScope::Unbound)
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .invalidate("srv", Some("cli"), InvalidateScope::Live)
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .invalidate("srv", Some("cli"), InvalidateScope::All)
            .unwrap(),
        1
    );
    assert_eq!(total_rows(&store), all - 3);
    assert_eq!(
        store.invalidate("srv", None, InvalidateScope::All).unwrap(),
        3
    );
    assert_eq!(total_rows(&store), all - 6);
    // Every other server's rows, unbound ones included, are untouched.
    for s in &servers[1..] {
        for c in clients {
            assert!(
                store.pending_verifier(s, Some(c)).is_ok(),
                "{s}/{c} lost its flow"
            );
        }
    }
    assert_eq!(store.stats().unwrap().counts.unbound, 8);
}

#[test]
fn bad_input_is_invalid_input_naming_the_field_and_changes_no_row() {
    let fx = Fixture::new();
    let store = fx.store();
    let flow = begin(&store, "srv", "cli");
    let before = store.stats().unwrap();
    let long = "a".repeat(600);
    for state in [
        "",
        "a\0b",
        "état",
        long.as_str(),
        "x'; DROP TABLE flows; DROP TABLE meta; --",
    ] {
        for result in [
            store.check(state).map(|_| ()),
            store.consume(state).map(|_| ()),
            store.reject(state, "access_denied", None).map(|_| ()),
        ] {
            match result {
                Err(Error::InvalidInput { field: "state", .. }) | Err(Error::UnknownState) => {}
                other => panic!("state input gave {other:?}"),
            }
        }
    }
    for v in [
        "short",
        "x".repeat(129).as_str(),
        "%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%",
    ] {
        assert!(matches!(
            store.save_code_verifier("srv", None, v),
            Err(Error::InvalidInput {
                field: "code_verifier",
                ..
            })
        ));
    }
    assert!(matches!(
        store.promote(
            "srv",
            None,
            "https://as.example/a?state=s&code_challenge=tooshort"
        ),
        Err(Error::InvalidInput {
            field: "code_challenge",
            ..
        })
    ));
    for ttl in [
        std::time::Duration::ZERO,
        std::time::Duration::from_micros(999),
        std::time::Duration::MAX,
        std::time::Duration::from_secs(2 * 86_400),
    ] {
        assert!(matches!(
            store.begin(BeginRequest::new("srv").ttl(ttl)),
            Err(Error::InvalidInput { field: "ttl", .. })
        ));
    }
    assert!(matches!(
        store.begin(BeginRequest::new("")),
        Err(Error::InvalidInput {
            field: "server_id",
            ..
        })
    ));
    assert!(matches!(
        store.begin(BeginRequest::new("srv").issuer("http://not-loopback.example")),
        Err(Error::InvalidInput {
            field: "issuer",
            ..
        })
    ));
    assert!(matches!(
        store.reject(flow.state().secret(), "bad\"code", None),
        Err(Error::InvalidInput { field: "error", .. })
    ));
    assert_eq!(store.stats().unwrap(), before, "bad input changed a row");
    store.check(flow.state().secret()).unwrap();
}

#[test]
fn a_clock_far_in_the_future_is_refused_not_overflowed() {
    let fx = Fixture::new();
    fx.clock.set(i64::MAX - 10);
    let store = fx.store();
    assert!(matches!(
        store.begin(BeginRequest::new("srv")),
        Err(Error::InvalidInput { field: "ttl", .. })
    ));
    assert_eq!(total_rows(&store), 0);
}

#[test]
fn authorization_url_carries_every_parameter_but_never_the_verifier() {
    let fx = Fixture::new();
    let store = fx.store();
    let flow = store
        .begin(
            BeginRequest::new("srv")
                .client_id("cli")
                .redirect_uri("http://127.0.0.1:9/cb")
                .resource("https://mcp.example.com/")
                .scope("a b"),
        )
        .unwrap();
    let url = flow
        .authorization_url("https://as.example/authorize?tenant=1")
        .unwrap();
    let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs["tenant"], "1");
    assert_eq!(pairs["response_type"], "code");
    assert_eq!(pairs["client_id"], "cli");
    assert_eq!(pairs["redirect_uri"], "http://127.0.0.1:9/cb");
    assert_eq!(pairs["scope"], "a b");
    assert_eq!(pairs["state"], flow.state().secret());
    assert_eq!(pairs["code_challenge"], flow.code_challenge().as_str());
    assert_eq!(pairs["code_challenge_method"], "S256");
    assert_eq!(pairs["resource"], "https://mcp.example.com/");
    let verifier = store.consume(flow.state().secret()).unwrap().verifier;
    assert!(!url.as_str().contains(verifier.secret()));
    assert!(flow
        .authorization_url("http://as.example/authorize")
        .is_err());
    assert!(flow
        .authorization_url("https://as.example/authorize?state=x")
        .is_err());
}

#[test]
fn store_is_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<oauth_state_store::Store>();
    let store = Fixture::scratch(oauth_state_store::StoreOptions::default());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                let flow = store.begin(BeginRequest::new("srv")).unwrap();
                store.consume(flow.state().secret()).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(store.stats().unwrap().counts.consumed, 4);
}
