//! Hostile input: every `&str` the API takes gets arbitrary text, lossy
//! UTF-8 from arbitrary bytes, NUL and control characters, SQL and LIKE metacharacters, and
//! sizes up to 1 MiB. Each call returns (no panic, in bounded time), with a typed error naming
//! the field, and changes no row: the whole `flows` table is dumped before and after.
//! Accepted values that are stored (a server id full of `%'; --`) round-trip exactly and
//! touch no other row.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use common::{assert_error_clean, dump_flows, Fixture};
use oauth_state_store::{
    AuthorizationCode, BeginRequest, CodeChallenge, CodeVerifier, Error, FlowFilter,
    InvalidateScope, State, Store,
};
use proptest::prelude::*;

const STATE: &str = "hostile-STATE-secret-1a2b3c";
const VERIFIER: &str = "hostileVERIFIERsecret-0123456789-abcdefghijklmnop";
const UNBOUND_VERIFIER: &str = "hostileUNBOUNDsecret-0123456789-abcdefghijklmnopq";
const CODE: &str = "hostile-CODE-secret-4d5e6f";
const SECRETS: [&str; 4] = [STATE, VERIFIER, UNBOUND_VERIFIER, CODE];
/// The server ids of the flows `populated` makes.
const BASELINE_SERVERS: [&str; 3] = ["srv", "srv-done", "srv_"];
/// A valid state that no flow has.
const UNKNOWN_STATE: &str = "no-such-state-0000";

/// The SQL and LIKE metacharacters, quoting and control characters the strategies mix in.
const NASTY: &[&str] = &[
    "%",
    "_",
    "'",
    "\"",
    ";",
    "--",
    "/*",
    "*/",
    "\\",
    "\0",
    "\n",
    "\r",
    "\t",
    "\u{7f}",
    "\u{202e}",
    "\u{feff}",
    "' OR '1'='1",
    "'; DROP TABLE flows; DROP TABLE meta; --",
    "%' OR server_id LIKE '%",
    "srv",
    "srv%",
    "sr_",
    "?",
    "&",
    "=",
    "#",
    "state=",
    "code_challenge=",
    "https://as.example/authorize?",
    "%00",
    "%27",
    " ",
];

/// A store with one flow of each kind, whose secrets the test knows.
fn populated(fx: &Fixture) -> Store {
    let store = fx.store();
    store
        .begin(
            BeginRequest::new("srv")
                .client_id("cli")
                .state(State::new(STATE).unwrap())
                .verifier(CodeVerifier::new(VERIFIER).unwrap()),
        )
        .unwrap();
    store.complete(STATE, CODE).unwrap();
    store
        .save_code_verifier("srv", Some("cli"), UNBOUND_VERIFIER)
        .unwrap();
    let done = store.begin(BeginRequest::new("srv-done")).unwrap();
    store.consume(done.state().secret()).unwrap();
    store.begin(BeginRequest::new("srv_")).unwrap();
    store
}

fn nasty() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NASTY), 1..6).prop_map(|parts| parts.concat())
}

/// Arbitrary text, lossy UTF-8 from arbitrary bytes, and metacharacter soups.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..600)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        nasty(),
        (nasty(), "[A-Za-z0-9._~-]{0,130}").prop_map(|(a, b)| format!("{b}{a}{b}")),
        // Shapes that pass some validation: a state, a verifier or challenge length.
        "[ -~]{1,600}",
        "[A-Za-z0-9_-]{43}",
        "[A-Za-z0-9._~%'-]{40,130}",
    ]
}

/// Big inputs: a few sizes up to 1 MiB of one repeated byte or metacharacter, via lossy UTF-8.
fn huge() -> impl Strategy<Value = String> {
    let sizes = prop::sample::select(vec![513, 4097, 16 * 1024 + 1, 64 * 1024, 1 << 20]);
    (sizes, any::<u8>(), prop::sample::select(NASTY)).prop_map(|(n, b, s)| {
        if b % 2 == 0 {
            String::from_utf8_lossy(&vec![b; n]).into_owned()
        } else {
            s.repeat(n / s.len().max(1) + 1)
        }
    })
}

/// An authorization URL around `s`: as the state, as the challenge, raw, or percent-encoded.
fn urls(s: &str) -> Vec<String> {
    let enc: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
    vec![
        s.to_owned(),
        format!("https://as.example/authorize?state={enc}&code_challenge={enc}"),
        format!("https://as.example/authorize?state={s}&code_challenge={s}"),
        format!("https://as.example/authorize?state=ok-state&code_challenge={enc}"),
        format!("https://as.example/authorize?{enc}"),
        format!("https://as.example/{s}?state={enc}"),
    ]
}

/// The outcome of an operation that must change nothing: an expected error, never a storage
/// or internal one, naming one of `fields` when it is `InvalidInput`.
fn expect_refusal<T: std::fmt::Debug>(
    op: &str,
    input: &str,
    got: Result<T, Error>,
    fields: &[&str],
) -> Result<(), TestCaseError> {
    let e = match got {
        Ok(v) => return Err(TestCaseError::fail(format!("{op} accepted: {v:?}"))),
        Err(e) => e,
    };
    match &e {
        Error::InvalidInput { field, .. } => prop_assert!(
            fields.contains(field),
            "{op}: InvalidInput names {field}, expected one of {fields:?}"
        ),
        Error::MissingParameter { .. }
        | Error::UnknownState
        | Error::UnknownChallenge
        | Error::NoPendingVerifier => {}
        other => prop_assert!(false, "{op}: unexpected error {other:?}"),
    }
    assert_error_clean(&e, &SECRETS);
    if input.len() >= 32 {
        // Errors never echo the value they refuse.
        assert_error_clean(&e, &[input]);
    }
    Ok(())
}

/// Runs every operation that cannot accept `s` (or cannot find anything for it) and checks
/// that none changed a row.
fn refuse_everywhere(store: &Store, fx: &Fixture, s: &str) -> Result<(), TestCaseError> {
    let before = dump_flows(&fx.path);
    let start = Instant::now();
    let state_fields = ["state"];
    // A state: unknown (valid shape) or refused. Never a known one: STATE is not generated
    // by the strategies, and the dump comparison would catch it.
    if s != STATE {
        expect_refusal("check", s, store.check(s), &state_fields)?;
        expect_refusal("consume", s, store.consume(s), &state_fields)?;
        expect_refusal(
            "consume_for(state)",
            s,
            store.consume_for(s, "srv"),
            &state_fields,
        )?;
        expect_refusal(
            "complete(state)",
            s,
            store.complete(s, "code"),
            &state_fields,
        )?;
        expect_refusal(
            "reject(state)",
            s,
            store.reject(s, "access_denied", None),
            &state_fields,
        )?;
    }
    expect_refusal(
        "consume_for(server)",
        s,
        store.consume_for(UNKNOWN_STATE, s),
        &["server_id"],
    )?;
    expect_refusal(
        "complete(code)",
        s,
        store.complete(UNKNOWN_STATE, s),
        &["code"],
    )?;
    expect_refusal(
        "reject(error)",
        s,
        store.reject(UNKNOWN_STATE, s, None),
        &["error"],
    )?;
    expect_refusal(
        "reject(description)",
        s,
        store.reject(UNKNOWN_STATE, "access_denied", Some(s)),
        &["error_description"],
    )?;
    if !BASELINE_SERVERS.contains(&s) {
        expect_refusal(
            "pending_verifier(server)",
            s,
            store.pending_verifier(s, None),
            &["server_id"],
        )?;
        match store.invalidate(s, None, InvalidateScope::All) {
            Ok(n) => prop_assert_eq!(n, 0, "invalidate({:?}) deleted rows", s),
            Err(e) => expect_refusal::<()>("invalidate", s, Err(e), &["server_id"])?,
        }
        match store.list_flows(&FlowFilter::new().server_id(s)) {
            Ok(rows) => prop_assert!(rows.is_empty(), "list_flows({:?}) found rows", s),
            Err(e) => expect_refusal::<()>("list_flows", s, Err(e), &["server_id"])?,
        }
    }
    expect_refusal(
        "pending_verifier(client)",
        s,
        store.pending_verifier("srv", Some(s)),
        &["client_id"],
    )?;
    let url_fields = [
        "authorization_url",
        "state",
        "code_challenge",
        "code_challenge_method",
        "client_id",
        "redirect_uri",
        "resource",
        "scope",
    ];
    for url in urls(s) {
        expect_refusal("promote", s, store.promote("srv", None, &url), &url_fields)?;
    }
    expect_refusal(
        "promote(server)",
        s,
        store.promote(s, None, "https://as.example/?state=x&code_challenge=y"),
        &["server_id", "code_challenge"],
    )?;
    expect_refusal(
        "save_code_verifier(server)",
        s,
        store.save_code_verifier(s, None, "short"),
        &["server_id", "code_verifier"],
    )?;
    // Value types: a typed refusal or a value, never a panic.
    for got in [
        State::new(s).map(drop),
        CodeVerifier::new(s).map(drop),
        CodeChallenge::new(s).map(drop),
        AuthorizationCode::new(s).map(drop),
    ] {
        if let Err(e) = got {
            prop_assert!(matches!(e, Error::InvalidInput { .. }), "{:?}", e);
            assert_error_clean(&e, &SECRETS);
        }
    }
    prop_assert_eq!(dump_flows(&fx.path), before, "a refused call changed rows");
    prop_assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    Ok(())
}

/// Values the store may accept (ids, URLs, scope, a verifier): either a typed refusal that
/// changes nothing, or a flow that round-trips exactly and touches no other row.
fn accept_or_refuse(store: &Store, fx: &Fixture, s: &str) -> Result<(), TestCaseError> {
    let before = dump_flows(&fx.path);
    let fields = [
        "server_id",
        "client_id",
        "redirect_uri",
        "issuer",
        "resource",
        "scope",
    ];
    let requests = [
        (s, BeginRequest::new(s)),
        ("fuzz", BeginRequest::new("fuzz").client_id(s)),
        ("fuzz", BeginRequest::new("fuzz").redirect_uri(s)),
        ("fuzz", BeginRequest::new("fuzz").issuer(s)),
        ("fuzz", BeginRequest::new("fuzz").resource(s)),
        ("fuzz", BeginRequest::new("fuzz").scope(s)),
    ];
    for (server, request) in requests {
        if BASELINE_SERVERS.contains(&server) {
            // A baseline server: its own rows would be listed and invalidated too.
            continue;
        }
        let server = server.to_owned();
        match store.begin(request) {
            Err(e) => {
                expect_refusal::<()>("begin", s, Err(e), &fields)?;
                prop_assert_eq!(dump_flows(&fx.path), before.clone());
            }
            Ok(flow) => {
                prop_assert_eq!(dump_flows(&fx.path).len(), before.len() + 1);
                let listed = store
                    .list_flows(&FlowFilter::new().server_id(server.clone()))
                    .unwrap();
                prop_assert_eq!(listed.len(), 1, "list_flows matched other rows");
                let _ = flow.authorization_url("https://as.example/authorize");
                let _ = flow.authorization_url(s);
                let consumed = store.consume_for(flow.state().secret(), &server).unwrap();
                prop_assert_eq!(&consumed.verifier.challenge(), flow.code_challenge());
                prop_assert_eq!(consumed.info.server_id.as_str(), server.as_str());
                let n = store
                    .invalidate(&server, None, InvalidateScope::All)
                    .unwrap();
                prop_assert_eq!(n, 1, "invalidate deleted other rows");
                prop_assert_eq!(dump_flows(&fx.path), before.clone());
            }
        }
    }
    match store.save_code_verifier("fuzz", None, s) {
        Err(e) => {
            expect_refusal::<()>("save_code_verifier", s, Err(e), &["code_verifier"])?;
        }
        Ok(challenge) => {
            let v = CodeVerifier::new(s).unwrap();
            prop_assert_eq!(challenge, v.challenge());
            let n = store
                .invalidate("fuzz", None, InvalidateScope::Unbound)
                .unwrap();
            prop_assert_eq!(n, 1);
        }
    }
    prop_assert_eq!(dump_flows(&fx.path), before);
    Ok(())
}

/// `cases` by default; twenty times as many with `OSS_HEAVY=1`.
fn config(cases: u32) -> ProptestConfig {
    let heavy = std::env::var_os("OSS_HEAVY").is_some_and(|v| v == "1");
    ProptestConfig {
        cases: if heavy { cases * 20 } else { cases },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(96))]
    #[test]
    fn hostile_strings_are_refused_and_change_nothing(s in hostile()) {
        let (fx, store) = shared(0);
        refuse_everywhere(&store, fx, &s)?;
    }

    #[test]
    fn hostile_values_that_are_stored_round_trip_and_touch_no_other_row(s in hostile()) {
        let (fx, store) = shared(1);
        accept_or_refuse(&store, fx, &s)?;
    }
}

proptest! {
    #![proptest_config(config(12))]
    #[test]
    fn inputs_up_to_a_mebibyte_are_refused_quickly_and_change_nothing(s in huge()) {
        let (fx, store) = shared(2);
        refuse_everywhere(&store, fx, &s)?;
        accept_or_refuse(&store, fx, &s)?;
    }
}

/// One populated store for all cases of one test (a new one per case would dominate the
/// time); each test its own `slot`, as the tests run in parallel.
fn shared(slot: usize) -> (&'static Fixture, Store) {
    use std::sync::OnceLock;
    static SHARED: [OnceLock<(Fixture, Store)>; 3] = [const { OnceLock::new() }; 3];
    let (fx, store) = SHARED[slot].get_or_init(|| {
        let fx = Fixture::new();
        let store = populated(&fx);
        (fx, store)
    });
    (fx, store.clone())
}

/// The fixed metacharacter strings, each tried everywhere (the strategies may miss some).
#[test]
fn every_metacharacter_string_is_refused_or_round_trips() {
    let fx = Fixture::new();
    let store = populated(&fx);
    for s in NASTY {
        for s in [s.to_string(), s.repeat(43), format!("a{s}b")] {
            refuse_everywhere(&store, &fx, &s).unwrap();
            accept_or_refuse(&store, &fx, &s).unwrap();
        }
    }
}

/// Paths are the one input that is bytes (`OsStr`): invalid UTF-8 names work, a NUL is a
/// typed error, and URI-looking names are plain file names (`SQLITE_OPEN_URI` is off).
#[test]
fn database_paths_of_arbitrary_bytes_are_plain_file_names() {
    let fx = Fixture::new();
    let names: [&[u8]; 8] = [
        b"\xff\xfe-invalid-utf8.db",
        b"fl%_';--.db",
        b"file:x.db?mode=ro",
        b"file:x.db?mode=memory&cache=shared",
        b":memory:",
        b"new\nline.db",
        b"\xc3\x28\xa0\xa1",
        b"x?vfs=unix-none",
    ];
    for name in names {
        let path = fx.dir.path().join(OsStr::from_bytes(name));
        let store = fx.options().open(&path).unwrap();
        store.begin(BeginRequest::new("srv")).unwrap();
        assert!(path.is_file(), "{path:?} is not the database file");
        assert_eq!(dump_flows(&path).len(), 1);
    }
    for name in [&b"a\0b.db"[..], b"\0"] {
        let path = fx.dir.path().join(OsStr::from_bytes(name));
        match fx.options().open(&path) {
            Err(e @ (Error::Io { .. } | Error::InvalidInput { .. })) => {
                assert_error_clean(&e, &SECRETS)
            }
            other => panic!("{path:?}: expected a typed error, got {other:?}"),
        }
    }
}
