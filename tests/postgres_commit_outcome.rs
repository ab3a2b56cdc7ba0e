//! `CommitOutcomeUnknown` reached for real: a loopback proxy between the store and the test
//! PostgreSQL loses the connection at the commit of a consume (one autocommit statement: the
//! `Sync` that ends it).
//!
//! - After the server committed (its reply swallowed): the consume reports
//!   `CommitOutcomeUnknown`, the row is a tombstone, and every retry is `AlreadyConsumed`,
//!   never a second success.
//! - Before the commit reached the server: the consume reports `CommitOutcomeUnknown` too (the
//!   client cannot tell the two apart), the row is unchanged, and the retry consumes it once,
//!   with the flow's own verifier.

#[path = "common/pg.rs"]
mod pg;
#[path = "common/pg_proxy.rs"]
mod pg_proxy;

use std::time::{Duration, Instant};

use base64::Engine as _;
use oauth_state_store::{BeginRequest, Error, Flow, Status, Store, StoreOptions};
use pg_proxy::{Fault, Proxy};
use sha2::Digest as _;

const SERVER: &str = "https://mcp.example.com";

/// The row of `flow` as the server has it: status, verifier present, consumed_at set.
fn row(c: &mut postgres::Client, flow: &Flow) -> (String, bool, bool) {
    let key = sha2::Sha256::digest(flow.state().secret().as_bytes()).to_vec();
    let r = c
        .query_one(
            "SELECT status, code_verifier IS NOT NULL, consumed_at IS NOT NULL FROM flows \
             WHERE state_key = $1",
            &[&key],
        )
        .expect("the flow's row");
    (r.get(0), r.get(1), r.get(2))
}

/// Waits until no session of the store is left inside a transaction on the server (the
/// backend whose client vanished has noticed and rolled back).
fn wait_no_open_transaction(c: &mut postgres::Client) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = \
                 'oauth-state-store' AND state LIKE 'idle in transaction%'",
                &[],
            )
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        assert!(Instant::now() < until, "a transaction stayed open");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn challenge_of(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// A cluster, a proxy in front of it, the store opened through the proxy, and a direct
/// connection for looking at rows. `None` where the test cluster cannot start (it printed why).
struct ThroughProxy {
    proxy: Proxy,
    store: Store,
    admin: postgres::Client,
}

fn through_proxy(test: &str, database: &str) -> Option<ThroughProxy> {
    let cluster = pg::cluster(test)?;
    let direct = cluster.fresh_database(database);
    let proxy = Proxy::start(cluster.port());
    let url = proxy.url(&direct, cluster.port());
    assert_ne!(url, direct, "the store must go through the proxy");
    let store = StoreOptions::default()
        .busy_timeout(Duration::from_secs(2))
        .open(&url)
        .expect("open through the proxy");
    let admin = postgres::Client::connect(&direct, postgres::NoTls).unwrap();
    Some(ThroughProxy {
        proxy,
        store,
        admin,
    })
}

/// Consumes `flow` with `fault` armed, and checks that the fault fired at its commit and the
/// consume reported `CommitOutcomeUnknown`.
fn consume_losing_the_commit(t: &ThroughProxy, flow: &Flow, fault: Fault) {
    let fired = t.proxy.fired();
    t.proxy.arm(fault);
    let lost = t.store.consume(flow.state().secret());
    assert_eq!(
        t.proxy.fired(),
        fired + 1,
        "the fault did not fire at the consume's commit"
    );
    assert!(
        matches!(lost, Err(Error::CommitOutcomeUnknown { .. })),
        "expected CommitOutcomeUnknown, got {lost:?}"
    );
}

#[test]
fn a_commit_lost_on_the_way_back_is_unknown_and_its_retry_is_already_consumed() {
    let Some(mut t) = through_proxy("commit_lost_after_commit", "commit_after") else {
        return;
    };
    let flow = t.store.begin(BeginRequest::new(SERVER)).unwrap();
    assert_eq!(t.proxy.fired(), 0);
    consume_losing_the_commit(&t, &flow, Fault::DropAfterCommit);
    // The server did commit: a tombstone without its verifier.
    assert_eq!(
        row(&mut t.admin, &flow),
        (Status::Consumed.as_str().to_owned(), false, true)
    );
    // Retrying (on a new connection through the same proxy) never succeeds a second time.
    for attempt in 0..3 {
        let retry = t.store.consume(flow.state().secret());
        assert!(
            matches!(retry, Err(Error::AlreadyConsumed)),
            "retry {attempt}: {retry:?}"
        );
    }
    assert_eq!(t.proxy.fired(), 1);
}

#[test]
fn a_commit_that_never_reached_the_server_leaves_the_row_and_its_retry_consumes_once() {
    let Some(mut t) = through_proxy("commit_lost_before_commit", "commit_before") else {
        return;
    };
    let flow = t.store.begin(BeginRequest::new(SERVER)).unwrap();
    consume_losing_the_commit(&t, &flow, Fault::DropBeforeCommit);
    wait_no_open_transaction(&mut t.admin);
    // Rolled back: pending, verifier in place, never consumed.
    assert_eq!(
        row(&mut t.admin, &flow),
        (Status::Pending.as_str().to_owned(), true, false)
    );
    let consumed = t
        .store
        .consume(flow.state().secret())
        .expect("the retry consumes the flow");
    assert_eq!(
        challenge_of(consumed.verifier.secret()),
        flow.code_challenge().as_str(),
        "the flow's own verifier"
    );
    let again = t.store.consume(flow.state().secret());
    assert!(matches!(again, Err(Error::AlreadyConsumed)), "{again:?}");
    assert_eq!(
        row(&mut t.admin, &flow),
        (Status::Consumed.as_str().to_owned(), false, true)
    );
}

#[test]
fn statements_other_than_commit_pass_the_proxy_untouched() {
    let Some(cluster) = pg::cluster("proxy_passes") else {
        return;
    };
    let direct = cluster.fresh_database("proxy_passes");
    let proxy = Proxy::start(cluster.port());
    let store = Store::open(proxy.url(&direct, cluster.port())).unwrap();
    for _ in 0..20 {
        let f = store.begin(BeginRequest::new(SERVER)).unwrap();
        store.consume(f.state().secret()).unwrap();
    }
    assert_eq!(proxy.fired(), 0);
    assert_eq!(store.stats().unwrap().counts.consumed, 20);
}
