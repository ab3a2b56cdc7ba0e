//! Options out of range are refused when the store opens, naming the option, before anything
//! is created.

mod common;

use std::time::Duration;

use common::Fixture;
use oauth_state_store::{BeginRequest, Error, StoreOptions, MAX_TTL};

fn refused(options: StoreOptions, fx: &Fixture) -> &'static str {
    match options.open(&fx.path) {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("expected InvalidInput, got {:?}", other.map(|_| "a store")),
    }
}

#[test]
fn a_ttl_out_of_range_is_refused_at_open_not_at_every_begin() {
    let fx = Fixture::new();
    for ttl in [
        Duration::ZERO,
        Duration::from_micros(999),
        Duration::from_secs(365 * 86_400),
        MAX_TTL + Duration::from_millis(1),
        Duration::MAX,
    ] {
        assert_eq!(refused(fx.options().ttl(ttl), &fx), "ttl", "{ttl:?}");
        assert!(!fx.path.exists(), "a refused open created the file");
        assert!(matches!(
            fx.options().ttl(ttl).open_in_memory(),
            Err(Error::InvalidInput { field: "ttl", .. })
        ));
    }
    let store = fx.options().ttl(MAX_TTL).open(&fx.path).unwrap();
    let flow = store.begin(BeginRequest::new("srv")).unwrap();
    assert_eq!(flow.info().expires_at - flow.info().created_at, 86_400_000);
}

#[test]
fn a_busy_timeout_out_of_range_is_refused_at_open() {
    let fx = Fixture::new();
    for timeout in [Duration::MAX, Duration::from_secs(30 * 86_400)] {
        assert_eq!(
            refused(fx.options().busy_timeout(timeout), &fx),
            "busy_timeout"
        );
    }
    assert!(!fx.path.exists());
    fx.options()
        .busy_timeout(Duration::ZERO)
        .open(&fx.path)
        .unwrap();
}
