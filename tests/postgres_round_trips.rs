//! Round trips per operation on PostgreSQL, counted from the server's own statement log: every
//! success path of begin, save_code_verifier, promote, a callback (complete, reject, deliver)
//! and consume takes one round trip, and so does each refusal (unknown, duplicate, replay,
//! ended, expired, mismatch). The SDK's finish without the state takes one round trip to
//! choose the flow (`pending_verifier`, `pending_discovery`, and every refusal of
//! `consume_pending`) and one more to consume it.
//!
//! The database logs every statement of its sessions (`log_min_duration_statement = 0`, never
//! a parameter's value: `log_parameter_max_length = 0`). A round trip is one simple query
//! (one `statement:` line, however many statements it holds) or one run of a prepared
//! statement (one `bind` line: `Bind`/`Execute`/`Sync` go in one flush), or one `parse` (a
//! prepare, once per connection and statement: the store is warmed first, so a parse in a
//! measured window is a failure too). A loopback proxy counts the same round trips on the
//! wire (`Query` and `Sync` messages), as a cross-check.

#[path = "common/pg.rs"]
mod pg;
#[path = "common/pg_proxy.rs"]
mod pg_proxy;

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use oauth_state_store::{
    AccessToken, BeginRequest, CodeVerifier, Error, RefreshToken, State, Status, Store,
    StoreOptions, TokenResponse,
};

const SERVER: &str = "https://mcp.example.com";
const CLIENT: &str = "c1";
const APP: &str = "oauth-state-store";

struct Counter<'a> {
    cluster: &'a pg::Cluster,
    database: String,
    proxy: pg_proxy::Proxy,
    store: Store,
}

/// The lines of one measured window.
struct Window {
    lines: Vec<String>,
    wire: usize,
}

impl Window {
    fn round_trips(&self) -> usize {
        self.lines.len()
    }
}

impl Counter<'_> {
    fn log_len(&self) -> u64 {
        std::fs::metadata(self.cluster.log_path()).map_or(0, |m| m.len())
    }

    /// Runs `f` and returns the store's round trips it took, from the server's log.
    fn count<T>(&self, f: impl FnOnce(&Store) -> T) -> (T, Window) {
        let start = self.log_len();
        let wire = self.proxy.round_trips();
        let value = f(&self.store);
        let wire = self.proxy.round_trips() - wire;
        // The backend writes its line before it answers; a little slack for the file.
        std::thread::sleep(Duration::from_millis(30));
        let mut file = std::fs::File::open(self.cluster.log_path()).unwrap();
        file.seek(SeekFrom::Start(start)).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        let ours = format!(" db={} app={APP} ", self.database);
        let lines = text
            .lines()
            .filter(|l| l.contains(&ours))
            .filter(|l| {
                l.contains("duration: ")
                    && (l.contains(" statement: ") || l.contains(" bind ") || l.contains(" parse "))
            })
            .map(|l| {
                // The statement's first words only (never a parameter: none is logged).
                let at = l.find("duration: ").unwrap_or(0);
                l[at..].chars().take(120).collect()
            })
            .collect();
        (value, Window { lines, wire })
    }

    /// Asserts that `f` took exactly `expected` round trips.
    fn expect<T: std::fmt::Debug>(
        &self,
        what: &str,
        expected: usize,
        f: impl FnOnce(&Store) -> T,
    ) -> T {
        let (value, w) = self.count(f);
        assert_eq!(
            w.round_trips(),
            expected,
            "{what}: {} round trips, expected {expected} (result {value:?}):\n{}",
            w.round_trips(),
            w.lines.join("\n")
        );
        assert_eq!(
            w.wire,
            expected,
            "{what}: the proxy counted {} round trips, the log {}",
            w.wire,
            w.round_trips()
        );
        value
    }
}

fn authorize_url(state: &State, challenge: &str) -> String {
    format!(
        "https://as.example.com/authorize?response_type=code&client_id={CLIENT}&state={}\
         &code_challenge={challenge}&code_challenge_method=S256\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A33418%2Fcallback",
        state.secret()
    )
}

/// Saves a verifier and promotes it: an SDK's flow up to the redirect.
fn sdk_flow(store: &Store) -> State {
    let verifier = CodeVerifier::generate();
    let challenge = store
        .save_code_verifier(SERVER, Some(CLIENT), verifier.secret())
        .unwrap();
    let state = State::generate();
    store
        .promote(
            SERVER,
            Some(CLIENT),
            &authorize_url(&state, challenge.as_str()),
        )
        .unwrap();
    state
}

/// Every path once, so that every statement is prepared on the pool's one connection.
fn warm(store: &Store) {
    for _ in 0..2 {
        let f = store.begin(BeginRequest::new(SERVER)).unwrap();
        store.complete(f.state().secret(), "code").unwrap();
        store.consume(f.state().secret()).unwrap();
        let s = sdk_flow(store);
        store.reject(s.secret(), "access_denied", None).unwrap();
        let _ = store.consume_for(s.secret(), SERVER);
        let s = sdk_flow(store);
        let _ = store.deliver(&format!(
            "http://127.0.0.1:33418/callback?code=c&state={}",
            s.secret()
        ));
        let _ = store.consume_for(s.secret(), "https://other.example.com");
        sdk_flow(store);
        store.pending_verifier(SERVER, Some(CLIENT)).unwrap();
        store.pending_discovery(SERVER, Some(CLIENT)).unwrap();
        store.consume_pending(SERVER, Some(CLIENT)).unwrap();
        let _ = store.consume_pending(SERVER, Some(CLIENT));
        let _ = store.pending_verifier(SERVER, Some(CLIENT));
        let _ = store.pending_discovery(SERVER, Some(CLIENT));
        let _ = store.check(State::generate().secret());
        store.tokens(SERVER, "warm-up").unwrap();
    }
}

/// A fresh database logging every statement, a store with one connection behind a counting
/// proxy, warmed.
fn counter<'a>(cluster: &'a pg::Cluster, test: &str) -> Counter<'a> {
    let url = cluster.fresh_database(test);
    let database = url
        .rsplit('/')
        .next()
        .and_then(|s| s.split('?').next())
        .unwrap()
        .to_owned();
    let mut admin = cluster.client(&database);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{database}\" SET log_min_duration_statement = 0; \
             ALTER DATABASE \"{database}\" SET log_parameter_max_length = 0"
        ))
        .unwrap();
    let proxy = pg_proxy::Proxy::start(cluster.port());
    let store = StoreOptions::default()
        .pool_size(1)
        .open(proxy.url(&url, cluster.port()))
        .unwrap();
    warm(&store);
    Counter {
        cluster,
        database,
        proxy,
        store,
    }
}

#[test]
fn every_flow_operation_takes_one_round_trip_on_success_and_refusal() {
    let Some(cluster) = pg::cluster("round_trips") else {
        return;
    };
    let c = counter(cluster, "round_trips");

    // A native flow: begin, a callback, consume.
    let flow = c.expect("begin", 1, |s| s.begin(BeginRequest::new(SERVER)).unwrap());
    let state = flow.state().secret().to_owned();
    c.expect("complete", 1, |s| s.complete(&state, "code-1").unwrap());
    let err = c.expect("complete again", 1, |s| {
        s.complete(&state, "code-2").unwrap_err()
    });
    assert!(matches!(err, Error::AlreadyCompleted), "{err:?}");
    let consumed = c.expect("consume", 1, |s| s.consume(&state).unwrap());
    assert_eq!(
        consumed.code.as_ref().map(|c| c.secret().to_owned()),
        Some("code-1".to_owned())
    );
    let err = c.expect("consume again (replay)", 1, |s| {
        s.consume(&state).unwrap_err()
    });
    assert!(matches!(err, Error::AlreadyConsumed), "{err:?}");
    let unknown = State::generate();
    let err = c.expect("consume of an unknown state", 1, |s| {
        s.consume(unknown.secret()).unwrap_err()
    });
    assert!(matches!(err, Error::UnknownState), "{err:?}");
    let err = c.expect("complete of an unknown state", 1, |s| {
        s.complete(unknown.secret(), "c").unwrap_err()
    });
    assert!(matches!(err, Error::UnknownState), "{err:?}");

    // A state already in use, a challenge already saved.
    let err = c.expect("begin with a state in use", 1, |s| {
        s.begin(BeginRequest::new(SERVER).state(State::new(state.clone()).unwrap()))
            .unwrap_err()
    });
    assert!(matches!(err, Error::DuplicateState), "{err:?}");
    let verifier = CodeVerifier::generate();
    let challenge = c.expect("save_code_verifier", 1, |s| {
        s.save_code_verifier(SERVER, Some(CLIENT), verifier.secret())
            .unwrap()
    });
    let err = c.expect("save_code_verifier again", 1, |s| {
        s.save_code_verifier(SERVER, Some(CLIENT), verifier.secret())
            .unwrap_err()
    });
    assert!(matches!(err, Error::DuplicateChallenge), "{err:?}");

    // An SDK's flow: promote, the callback delivered at its redirect URI, consume_for.
    let sdk_state = State::generate();
    let url = authorize_url(&sdk_state, challenge.as_str());
    c.expect("promote", 1, |s| {
        s.promote(SERVER, Some(CLIENT), &url).unwrap()
    });
    c.expect("promote of the same URL again", 1, |s| {
        s.promote(SERVER, Some(CLIENT), &url).unwrap()
    });
    let err = c.expect("promote for another server", 1, |s| {
        s.promote("https://other.example.com", Some(CLIENT), &url)
            .unwrap_err()
    });
    assert!(matches!(err, Error::ServerMismatch { .. }), "{err:?}");
    let other = CodeVerifier::generate();
    let err = c.expect("promote of an unknown challenge", 1, |s| {
        s.promote(
            SERVER,
            Some(CLIENT),
            &authorize_url(&State::generate(), other.challenge().as_str()),
        )
        .unwrap_err()
    });
    assert!(matches!(err, Error::UnknownChallenge), "{err:?}");
    let callback = format!(
        "http://127.0.0.1:33418/callback?code=code-2&state={}",
        sdk_state.secret()
    );
    let err = c.expect("deliver at another redirect URI", 1, |s| {
        s.deliver(&callback.replace("33418", "33419")).unwrap_err()
    });
    assert!(matches!(err, Error::ServerMismatch { .. }), "{err:?}");
    c.expect("deliver", 1, |s| s.deliver(&callback).unwrap());
    let consumed = c.expect("consume_for", 1, |s| {
        s.consume_for(sdk_state.secret(), SERVER).unwrap()
    });
    assert_eq!(consumed.verifier.secret(), verifier.secret());

    // A consume for another server ends the flow; the flow's end is told in one round trip.
    let ended = c.store.begin(BeginRequest::new(SERVER)).unwrap();
    let err = c.expect("consume_for another server", 1, |s| {
        s.consume_for(ended.state().secret(), "https://other.example.com")
            .unwrap_err()
    });
    assert!(matches!(err, Error::ServerMismatch { .. }), "{err:?}");
    let err = c.expect("consume of an ended flow", 1, |s| {
        s.consume(ended.state().secret()).unwrap_err()
    });
    assert!(matches!(err, Error::FlowEnded { .. }), "{err:?}");

    // A failed flow: reject, then its consume reports the failure.
    let failed = c.store.begin(BeginRequest::new(SERVER)).unwrap();
    c.expect("reject", 1, |s| {
        s.reject(failed.state().secret(), "access_denied", None)
            .unwrap()
    });
    let err = c.expect("consume of a failed flow", 1, |s| {
        s.consume(failed.state().secret()).unwrap_err()
    });
    assert!(matches!(err, Error::AuthorizationFailed { .. }), "{err:?}");

    // An expired flow is deleted by the statement that finds it.
    let short = c
        .store
        .begin(BeginRequest::new(SERVER).ttl(Duration::from_millis(1)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let err = c.expect("consume of an expired flow", 1, |s| {
        s.consume(short.state().secret()).unwrap_err()
    });
    assert!(matches!(err, Error::Expired), "{err:?}");
    let err = c.expect("consume after the expired flow was deleted", 1, |s| {
        s.consume(short.state().secret()).unwrap_err()
    });
    assert!(matches!(err, Error::UnknownState), "{err:?}");
}

#[test]
fn the_reads_by_state_take_one_round_trip() {
    let Some(cluster) = pg::cluster("look_round_trips") else {
        return;
    };
    let c = counter(cluster, "look_round_trips");
    let flow = c.store.begin(BeginRequest::new(SERVER)).unwrap();
    let state = flow.state().secret().to_owned();

    // Pending, then completed: check and the listener's read of the recorded code.
    let info = c.expect("check of a pending flow", 1, |s| s.check(&state).unwrap());
    assert_eq!(info.status, Status::Pending);
    let code = c.expect("check of an unknown state", 1, |s| {
        s.check(State::generate().secret()).unwrap_err()
    });
    assert!(matches!(code, Error::UnknownState), "{code:?}");
    c.store.complete(&state, "the-code").unwrap();
    let info = c.expect("check of a completed flow", 1, |s| s.check(&state).unwrap());
    assert_eq!(info.status, Status::Completed);
    c.store.consume(&state).unwrap();
    let err = c.expect("check of a consumed flow", 1, |s| {
        s.check(&state).unwrap_err()
    });
    assert!(matches!(err, Error::AlreadyConsumed), "{err:?}");
}

/// `tokens` (what rmcp's credential store and the Node binding read before each request).
#[test]
fn reading_the_token_set_takes_one_round_trip() {
    let Some(cluster) = pg::cluster("token_round_trips") else {
        return;
    };
    let c = counter(cluster, "token_round_trips");
    let none = c.expect("tokens with no set", 1, |s| {
        s.tokens(SERVER, CLIENT).unwrap()
    });
    assert!(none.is_none());
    let login = TokenResponse::new(AccessToken::new("at-1").unwrap(), "Bearer")
        .refresh_token(RefreshToken::new("rt-1").unwrap());
    c.store.save_tokens(SERVER, CLIENT, login).unwrap();
    let set = c.expect("tokens", 1, |s| s.tokens(SERVER, CLIENT).unwrap());
    assert_eq!(set.expect("saved").access_token().secret(), "at-1");
}

/// rmcp's `load` is the store's `peek`: its flow's second call, between `save` and `delete`.
#[cfg(feature = "rmcp")]
#[test]
fn rmcps_load_takes_one_round_trip() {
    use rmcp::transport::auth::StateStore;
    let Some(cluster) = pg::cluster("peek_round_trips") else {
        return;
    };
    let c = counter(cluster, "peek_round_trips");
    let rmcp = oauth_state_store::RmcpStateStore::new(c.store.clone(), SERVER).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let flow = c.store.begin(BeginRequest::new(SERVER)).unwrap();
    let state = flow.state().secret().to_owned();
    let loaded = c.expect("peek (rmcp's load) of a pending flow", 1, |_| {
        runtime.block_on(rmcp.load(&state)).unwrap().is_some()
    });
    assert!(loaded);
    let loaded = c.expect("peek (rmcp's load) of an unknown state", 1, |_| {
        runtime
            .block_on(rmcp.load(State::generate().secret()))
            .unwrap()
            .is_some()
    });
    assert!(!loaded);
    c.store.consume(&state).unwrap();
    let loaded = c.expect("peek (rmcp's load) of a consumed flow", 1, |_| {
        runtime.block_on(rmcp.load(&state)).unwrap().is_some()
    });
    assert!(!loaded);
}

#[test]
fn the_finish_without_the_state_chooses_in_one_round_trip_and_consumes_in_one_more() {
    let Some(cluster) = pg::cluster("pending_round_trips") else {
        return;
    };
    let c = counter(cluster, "pending_round_trips");

    // None.
    let err = c.expect("pending_verifier with none", 1, |s| {
        s.pending_verifier(SERVER, Some(CLIENT)).unwrap_err()
    });
    assert!(matches!(err, Error::NoPendingVerifier), "{err:?}");
    let err = c.expect("pending_discovery with none", 1, |s| {
        s.pending_discovery(SERVER, Some(CLIENT)).unwrap_err()
    });
    assert!(matches!(err, Error::NoPendingVerifier), "{err:?}");
    let err = c.expect("consume_pending with none", 1, |s| {
        s.consume_pending(SERVER, Some(CLIENT)).unwrap_err()
    });
    assert!(matches!(err, Error::NoPendingVerifier), "{err:?}");

    // One: read, then consumed.
    let state = sdk_flow(&c.store);
    let verifier = c.expect("pending_verifier", 1, |s| {
        s.pending_verifier(SERVER, Some(CLIENT)).unwrap()
    });
    let discovery = c.expect("pending_discovery", 1, |s| {
        s.pending_discovery(SERVER, Some(CLIENT)).unwrap()
    });
    assert_eq!(discovery, None);
    let done = c.expect("consume_pending", 2, |s| {
        s.consume_pending(SERVER, Some(CLIENT)).unwrap()
    });
    assert_eq!(done.verifier.secret(), verifier.secret());
    assert!(matches!(
        c.store.consume(state.secret()),
        Err(Error::AlreadyConsumed)
    ));

    // Several: refused with the count, nothing consumed.
    let (a, b) = (sdk_flow(&c.store), sdk_flow(&c.store));
    let err = c.expect("pending_verifier with several", 1, |s| {
        s.pending_verifier(SERVER, Some(CLIENT)).unwrap_err()
    });
    assert!(
        matches!(err, Error::AmbiguousPendingVerifier { count: 2 }),
        "{err:?}"
    );
    let err = c.expect("pending_discovery with several", 1, |s| {
        s.pending_discovery(SERVER, Some(CLIENT)).unwrap_err()
    });
    assert!(
        matches!(err, Error::AmbiguousPendingVerifier { count: 2 }),
        "{err:?}"
    );
    sdk_flow(&c.store);
    let err = c.expect("consume_pending with several", 1, |s| {
        s.consume_pending(SERVER, Some(CLIENT)).unwrap_err()
    });
    assert!(
        matches!(err, Error::AmbiguousPendingVerifier { count: 3 }),
        "{err:?}"
    );
    c.store.consume(a.secret()).unwrap();
    c.store.consume(b.secret()).unwrap();
    c.store.consume_pending(SERVER, Some(CLIENT)).unwrap();

    // A flow whose verifier the store generated counts, but is finished by its state only.
    let native = c
        .store
        .begin(BeginRequest::new(SERVER).client_id(CLIENT))
        .unwrap();
    let err = c.expect("consume_pending of a generated verifier's flow", 1, |s| {
        s.consume_pending(SERVER, Some(CLIENT)).unwrap_err()
    });
    assert!(matches!(err, Error::NoPendingVerifier), "{err:?}");
    let err = c.expect("pending_discovery of a generated verifier's flow", 1, |s| {
        s.pending_discovery(SERVER, Some(CLIENT)).unwrap_err()
    });
    assert!(matches!(err, Error::NoPendingVerifier), "{err:?}");
    c.store.consume(native.state().secret()).unwrap();
}
