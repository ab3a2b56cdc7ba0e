//! `refresh_with` and the waits: one exchange for many callers, a failed exchange released,
//! a refusal by rule 3, a panicking exchange, the wait limit. Across threads of one process
//! here; across processes and against a real authorization server in
//! tests/refresh_processes.rs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::tokens::{lease_of, response, CLI, SRV};
use super::Fixture;
use oauth_state_store::{Error, Exchange, RefreshOptions, Refreshed, Seen, Store, TryBegun};

fn quick() -> RefreshOptions {
    RefreshOptions::default().poll_max(Duration::from_millis(5))
}

#[test]
fn eight_threads_that_saw_one_generation_make_one_exchange_and_all_get_its_set() {
    let fx = Fixture::new();
    let store = fx.store();
    store.save_tokens(SRV, CLI, response(1)).unwrap();
    let seen = Seen::from(&store.tokens(SRV, CLI).unwrap().unwrap());
    let exchanges = Arc::new(AtomicU32::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (store, exchanges, barrier) = (store.clone(), exchanges.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let refreshed = store
                    .refresh_with(SRV, CLI, seen, &quick(), |lease| {
                        assert_eq!(lease.refresh_token().secret(), "rt-1");
                        exchanges.fetch_add(1, Ordering::SeqCst);
                        // Long enough for every other thread to find the lease running.
                        std::thread::sleep(Duration::from_millis(100));
                        Exchange::<()>::Tokens(response(2))
                    })
                    .unwrap();
                let set = refreshed.into_result().unwrap();
                (
                    set.generation().get(),
                    set.access_token().secret().to_owned(),
                )
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), (2, "at-2".to_owned()));
    }
    assert_eq!(exchanges.load(Ordering::SeqCst), 1);
}

#[test]
fn a_caller_that_saw_no_generation_takes_the_running_refresh_instead_of_a_second() {
    let fx = Fixture::new();
    let store = fx.store();
    store.save_tokens(SRV, CLI, response(1)).unwrap();
    let lease = lease_of(&store, Seen::Current);
    let finisher = {
        let store = store.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            store.finish_refresh(lease, response(2)).unwrap();
        })
    };
    let refreshed = store
        .refresh_with(SRV, CLI, Seen::Current, &quick(), |_| -> Exchange<()> {
            panic!("the running refresh's result is taken")
        })
        .unwrap();
    assert!(matches!(refreshed, Refreshed::Newer(s) if s.generation().get() == 2));
    finisher.join().unwrap();
}

#[test]
fn a_failed_exchange_releases_the_lease_and_keeps_the_set() {
    let fx = Fixture::new();
    let store = fx.store();
    store.save_tokens(SRV, CLI, response(1)).unwrap();
    let refreshed = store
        .refresh_with(SRV, CLI, Seen::Current, &quick(), |_| {
            Exchange::Failed("connection refused")
        })
        .unwrap();
    assert!(matches!(refreshed, Refreshed::Failed("connection refused")));
    // Released at once: the next caller leases without waiting for the lease's expiry, and
    // sends the same refresh token.
    assert_eq!(
        lease_of(&store, Seen::Current).refresh_token().secret(),
        "rt-1"
    );
}

#[test]
fn a_panicking_exchange_releases_its_lease() {
    let fx = Fixture::new();
    let store = fx.store();
    store.save_tokens(SRV, CLI, response(1)).unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = store.refresh_with(SRV, CLI, Seen::Current, &quick(), |_| -> Exchange<()> {
            panic!("the exchange fails badly")
        });
    }));
    assert!(panicked.is_err());
    assert!(matches!(
        store
            .try_begin_refresh(SRV, CLI, Seen::Current, &quick())
            .unwrap(),
        TryBegun::Lease(_)
    ));
}

#[test]
fn a_refusal_of_the_current_generation_revokes_and_a_stale_one_hands_out_the_newer_set() {
    let fx = Fixture::new();
    let store = fx.store();
    store.save_tokens(SRV, CLI, response(1)).unwrap();
    let old = Seen::from(&store.tokens(SRV, CLI).unwrap().unwrap());
    // Another login lands while this refresh's request is out: its refusal is stale.
    let refreshed = store
        .refresh_with(SRV, CLI, old, &quick(), |_| {
            store.save_tokens(SRV, CLI, response(2)).unwrap();
            Exchange::<()>::Rejected("invalid_grant".into())
        })
        .unwrap();
    assert!(matches!(refreshed, Refreshed::Newer(s) if s.access_token().secret() == "at-2"));
    let e = store
        .refresh_with(SRV, CLI, Seen::Current, &quick(), |_| {
            Exchange::<()>::Rejected("invalid_grant".into())
        })
        .unwrap_err();
    assert!(matches!(
        e,
        Error::TokensRevoked {
            after_lost_holder: false,
            ..
        }
    ));
    assert!(store.tokens(SRV, CLI).unwrap().is_none());
}

#[test]
fn a_taken_over_lease_says_so_when_its_refresh_token_is_refused() {
    let fx = Fixture::new();
    let store = fx.store();
    store.save_tokens(SRV, CLI, response(1)).unwrap();
    let lost = lease_of(&store, Seen::Current);
    std::mem::forget(lost); // its process died with it
    fx.clock.advance(Duration::from_secs(31));
    let e = store
        .refresh_with(SRV, CLI, Seen::Current, &quick(), |lease| {
            assert!(lease.took_over());
            Exchange::<()>::Rejected("invalid_grant".into())
        })
        .unwrap_err();
    assert!(matches!(
        e,
        Error::TokensRevoked {
            after_lost_holder: true,
            ..
        }
    ));
    assert!(e.to_string().contains("stopped after sending"), "{e}");
}

#[test]
fn waiting_past_the_limit_is_its_own_error_and_a_lease_ends_the_wait() {
    let fx = Fixture::new();
    let store = fx.store();
    store.save_tokens(SRV, CLI, response(1)).unwrap();
    let held = lease_of(&store, Seen::Current);
    let short = quick().wait(Duration::from_millis(150));
    let started = Instant::now();
    let e = store
        .begin_refresh(SRV, CLI, Seen::Current, &short)
        .unwrap_err();
    assert!(matches!(e, Error::RefreshWaitTimeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A waiter blocked on the lease returns as soon as it is released.
    let TryBegun::Wait(wait) = store
        .try_begin_refresh(SRV, CLI, Seen::Current, &quick())
        .unwrap()
    else {
        panic!("the lease runs");
    };
    let releaser = {
        let store = store.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            store.release_refresh(held).unwrap();
        })
    };
    let started = Instant::now();
    store
        .wait_for_refresh(&wait, &RefreshOptions::default())
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    releaser.join().unwrap();
    assert!(matches!(
        store
            .try_begin_refresh(SRV, CLI, wait.seen(), &quick())
            .unwrap(),
        TryBegun::Lease(_)
    ));
}

/// `Store` is shared by every thread of a process.
#[test]
fn stores_and_leases_cross_threads() {
    fn send<T: Send>() {}
    send::<Store>();
    send::<oauth_state_store::RefreshLease>();
    send::<oauth_state_store::TokenSet>();
}
