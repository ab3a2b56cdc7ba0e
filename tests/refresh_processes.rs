//! Single-flight refresh across real processes, against a real authorization server that
//! rotates refresh tokens and revokes the grant when a rotated one is presented again
//! (oidc-provider, tests/common/oidc.rs; a fresh server per scenario), on an SQLite file and
//! on PostgreSQL. Requests are counted at the server.
//!
//! - 16 processes whose access token expired refresh at once: one request, all 16 end with
//!   its tokens, and the grant lives on (a further refresh succeeds).
//! - The control: the same 16 processes refreshing on their own lose the grant.
//! - The lease holder killed after its request was answered, and before it sent one.
//! - A stale refusal leaves the newer set; the current one's refusal clears it.

#[path = "common/mod.rs"]
mod common;
#[path = "common/kids.rs"]
mod kids;
#[path = "common/oidc.rs"]
mod oidc;
#[cfg(feature = "postgres")]
#[path = "common/pg.rs"]
mod pg;
#[path = "refresh_children/mod.rs"]
mod refresh_children;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use kids::{all_loaded, go, results, Kid};
use oauth_state_store::{Error, Exchange, RefreshOptions, Refreshed, Seen, Store};
use oidc::{refresh_request, RotatingServer, TokenReply};
use refresh_children::{hash, token_response, SERVER_ID};

/// One scenario at a time: each runs 16 processes and a server on a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// The lease of the scenarios that kill its holder.
const SHORT_LEASE: Duration = Duration::from_secs(3);

/// Where the store is: an SQLite file in a private directory, or a PostgreSQL database.
enum Db {
    File(tempfile::TempDir),
    #[cfg(feature = "postgres")]
    Postgres(String),
}

impl Db {
    fn file() -> Option<Db> {
        Some(Db::File(common::Fixture::new().dir))
    }

    #[cfg(feature = "postgres")]
    fn postgres(test: &str) -> Option<Db> {
        let cluster = pg::cluster(test)?;
        Some(Db::Postgres(cluster.fresh_database(test)))
    }

    fn target(&self) -> String {
        match self {
            Db::File(dir) => dir.path().join("flows.db").to_str().unwrap().to_owned(),
            #[cfg(feature = "postgres")]
            Db::Postgres(url) => url.clone(),
        }
    }
}

/// A server, a store holding its login's tokens, and their access token expired.
struct Scenario {
    server: RotatingServer,
    store: Store,
    db: Db,
}

fn scenario(test: &str, db: Option<Db>) -> Option<Scenario> {
    let db = db?;
    let server = RotatingServer::start(test, 2)?;
    let store = Store::open(db.target()).expect("open the store");
    let login = token_response(&server.login).expect("the login's tokens");
    store
        .save_tokens(SERVER_ID, &server.client_id, login)
        .unwrap();
    // Expired for the store and for the server (whose clock tolerance is 0).
    std::thread::sleep(Duration::from_millis(2300));
    let set = store.tokens(SERVER_ID, &server.client_id).unwrap().unwrap();
    assert!(set.expires_within(Duration::ZERO));
    Some(Scenario { server, store, db })
}

/// Starts `n` children in `mode`, each given `secret` first on stdin when there is one, and
/// waits until every one has loaded what it will refresh.
fn kids(
    sc: &Scenario,
    n: usize,
    mode: &str,
    extra: &[(&str, &str)],
    secret: Option<&str>,
) -> Vec<Kid> {
    let mut env = vec![
        (refresh_children::TARGET, sc.db.target()),
        (refresh_children::MODE, mode.to_owned()),
        (
            refresh_children::TOKEN_URL,
            sc.server.token_endpoint.clone(),
        ),
        (refresh_children::CLIENT, sc.server.client_id.clone()),
        (
            refresh_children::LEASE_MS,
            SHORT_LEASE.as_millis().to_string(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let mut kids: Vec<Kid> = (0..n)
        .map(|_| Kid::spawn("child_refresher", &env))
        .collect();
    if let Some(secret) = secret {
        for kid in &mut kids {
            kid.send(secret);
        }
    }
    all_loaded(&kids);
    kids
}

/// A refresh by the parent, through the store: does the grant still live?
fn refresh_once_more(sc: &Scenario) -> Result<u64, Error> {
    let client = &sc.server.client_id;
    let refreshed = sc.store.refresh_with(
        SERVER_ID,
        client,
        Seen::Current,
        &RefreshOptions::default(),
        |lease| match refresh_request(
            &sc.server.token_endpoint,
            client,
            lease.refresh_token().secret(),
        ) {
            Ok(TokenReply::Tokens(json)) => Exchange::Tokens(token_response(&json).unwrap()),
            Ok(TokenReply::Refused { error, .. }) => Exchange::Rejected(error.unwrap_or_default()),
            Err(e) => Exchange::Failed(e),
        },
    )?;
    match refreshed {
        Refreshed::Refreshed(set) => Ok(set.generation().get()),
        other => panic!("the parent's refresh: {other:?}"),
    }
}

fn sixteen_refresh_once(test: &str, db: Option<Db>) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sc) = scenario(test, db) else { return };
    let mut kids = kids(&sc, 16, "store", &[], None);
    go(&mut kids);
    let results = results(kids, Duration::from_secs(60));
    let stored = sc
        .store
        .tokens(SERVER_ID, &sc.server.client_id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.generation().get(), 2);
    let want = hash(stored.access_token().secret());
    let mut refreshed = 0;
    for r in &results {
        let r = r.as_deref().expect("every child reports");
        let words: Vec<&str> = r.split(' ').collect();
        assert!(matches!(words[0], "refreshed" | "newer"), "{r}");
        assert_eq!((words[1], words[2]), ("2", want.as_str()), "{r}");
        refreshed += usize::from(words[0] == "refreshed");
    }
    assert_eq!(refreshed, 1, "{results:?}");
    let stats = sc.server.stats();
    assert_eq!(stats.refresh_requests, 1, "{stats:?}");
    assert!(
        stats.refresh_errors.is_empty() && stats.revoked == 0,
        "{stats:?}"
    );
    // The grant lives: one more refresh succeeds.
    assert_eq!(refresh_once_more(&sc).unwrap(), 3);
    assert_eq!(sc.server.stats().refresh_successes, 2);
}

#[test]
fn sixteen_processes_make_one_refresh_request_and_keep_the_grant_on_a_file() {
    sixteen_refresh_once("sixteen_processes_file", Db::file());
}

#[cfg(feature = "postgres")]
#[test]
fn sixteen_processes_make_one_refresh_request_and_keep_the_grant_on_postgres() {
    sixteen_refresh_once("sixteen_processes_pg", Db::postgres("sixteen_processes_pg"));
}

/// The control: without the store each process sends the refresh token it has, the server
/// sees it reused, and the grant dies (the winner's new tokens too). Proves the scenario
/// above can fail.
#[test]
fn sixteen_processes_refreshing_on_their_own_lose_the_grant() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sc) = scenario("sixteen_alone", Db::file()) else {
        return;
    };
    let set = sc
        .store
        .tokens(SERVER_ID, &sc.server.client_id)
        .unwrap()
        .unwrap();
    let token = set.refresh_token().unwrap().secret().to_owned();
    let mut kids = kids(&sc, 16, "alone", &[], Some(&token));
    go(&mut kids);
    // A winner prints its new refresh token before its result.
    let mut winners = Vec::new();
    let mut outcomes = Vec::new();
    for kid in &kids {
        let line = kid
            .line("", Duration::from_secs(60))
            .expect("a child's line");
        match line.strip_prefix("NEWRT ") {
            Some(token) => {
                winners.push(token.to_owned());
                outcomes.push(kid.line("RESULT ", Duration::from_secs(60)));
            }
            None => outcomes.push(line.strip_prefix("RESULT ").map(str::to_owned)),
        }
    }
    drop(results(kids, Duration::ZERO));
    let ok = outcomes
        .iter()
        .filter(|r| r.as_deref() == Some("ok"))
        .count();
    let refused = outcomes
        .iter()
        .filter(|r| r.as_deref() == Some("refused invalid_grant"))
        .count();
    assert_eq!(ok, 1, "{outcomes:?}");
    assert!(refused >= 1, "{outcomes:?}");
    let stats = sc.server.stats();
    assert!(
        stats.refresh_requests >= 2 && stats.revoked >= 1,
        "{stats:?}"
    );
    // The winner's rotated token died with the grant.
    let winner = winners.first().expect("the winner's new token");
    let again = refresh_request(&sc.server.token_endpoint, &sc.server.client_id, winner).unwrap();
    assert!(
        matches!(&again, TokenReply::Refused { error: Some(e), .. } if e == "invalid_grant"),
        "{again:?}"
    );
}

/// The holder is killed after the server answered it (the server rotated, the new tokens died
/// with the holder). The others wait out its lease; one takes over and presents the stored
/// refresh token once: the server sees it reused and refuses it (revoking the grant), the set
/// is revoked, and every process is told to sign in again. Two requests, never a third; no
/// process waits much past the lease.
fn holder_killed_after_its_request(test: &str, db: Option<Db>) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sc) = scenario(test, db) else { return };
    let mut kids = kids(&sc, 16, "store", &[(refresh_children::HALT, "after")], None);
    let said = go(&mut kids);
    let holder = kill_the_holder(&mut kids);
    let results = results(kids, SHORT_LEASE + Duration::from_secs(30));
    let waited = said.elapsed();
    let mut lost_holder = 0;
    for (i, r) in results.iter().enumerate() {
        if i == holder {
            assert!(r.is_none(), "the killed holder reported {r:?}");
            continue;
        }
        let r = r.as_deref().expect("every survivor reports");
        assert!(r.starts_with("revoked "), "{r}");
        lost_holder += usize::from(r.starts_with("revoked true"));
    }
    assert_eq!(lost_holder, 1, "the taker-over says why: {results:?}");
    let stats = sc.server.stats();
    assert_eq!(stats.refresh_requests, 2, "{stats:?}");
    assert_eq!(
        stats.refresh_errors.get("invalid_grant"),
        Some(&1),
        "{stats:?}"
    );
    assert!(sc
        .store
        .tokens(SERVER_ID, &sc.server.client_id)
        .unwrap()
        .is_none());
    assert!(matches!(
        refresh_once_more(&sc),
        Err(Error::TokensRevoked { .. })
    ));
    assert_eq!(sc.server.stats().refresh_requests, 2, "no third request");
    println!("holder killed after its request: every survivor returned {waited:?} after go");
    assert!(waited < SHORT_LEASE + Duration::from_secs(10), "{waited:?}");
}

/// The holder is killed before it sent anything: the others wait out its lease, one takes
/// over and refreshes, every survivor gets the new set, the grant lives.
fn holder_killed_before_its_request(test: &str, db: Option<Db>) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sc) = scenario(test, db) else { return };
    let mut kids = kids(
        &sc,
        16,
        "store",
        &[(refresh_children::HALT, "before")],
        None,
    );
    let said = go(&mut kids);
    let holder = kill_the_holder(&mut kids);
    let results = results(kids, SHORT_LEASE + Duration::from_secs(30));
    let waited = said.elapsed();
    let stored = sc
        .store
        .tokens(SERVER_ID, &sc.server.client_id)
        .unwrap()
        .unwrap();
    let want = format!("2 {}", hash(stored.access_token().secret()));
    let mut longest = 0u128;
    for (i, r) in results.iter().enumerate() {
        if i == holder {
            continue;
        }
        let r = r.as_deref().expect("every survivor reports");
        assert!(
            r.starts_with("refreshed ") || r.starts_with("newer "),
            "{r}"
        );
        assert!(r.contains(&want), "{r}");
        longest = longest.max(r.rsplit(' ').next().unwrap().parse().unwrap());
    }
    let stats = sc.server.stats();
    assert_eq!(stats.refresh_requests, 1, "{stats:?}");
    assert_eq!(refresh_once_more(&sc).unwrap(), 3);
    println!("holder killed before its request: longest wait {longest} ms, all back {waited:?}");
    assert!(
        longest >= SHORT_LEASE.as_millis() - 100,
        "the lease was waited out"
    );
    assert!(waited < SHORT_LEASE + Duration::from_secs(10), "{waited:?}");
}

/// Kills the child that says it holds the lease; returns its index.
fn kill_the_holder(kids: &mut [Kid]) -> usize {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        for (i, kid) in kids.iter_mut().enumerate() {
            if kid.line("HOLDING", Duration::from_millis(5)).is_some() {
                kid.child.kill().unwrap(); // SIGKILL
                kid.child.wait().unwrap();
                return i;
            }
        }
    }
    panic!("no child took the lease");
}

#[test]
fn a_holder_killed_after_its_request_costs_the_session_but_no_third_request_on_a_file() {
    holder_killed_after_its_request("killed_after_file", Db::file());
}

#[cfg(feature = "postgres")]
#[test]
fn a_holder_killed_after_its_request_costs_the_session_but_no_third_request_on_postgres() {
    holder_killed_after_its_request("killed_after_pg", Db::postgres("killed_after_pg"));
}

#[test]
fn a_holder_killed_before_its_request_delays_the_others_by_its_lease_on_a_file() {
    holder_killed_before_its_request("killed_before_file", Db::file());
}

#[cfg(feature = "postgres")]
#[test]
fn a_holder_killed_before_its_request_delays_the_others_by_its_lease_on_postgres() {
    holder_killed_before_its_request("killed_before_pg", Db::postgres("killed_before_pg"));
}

/// A process outside the store presents the refresh token of generation 1 after the store
/// refreshed it: the server refuses it (and revokes the grant); its refusal, reported for
/// generation 1, leaves generation 2 stored. A refresh of generation 2 is then refused too,
/// and that refusal clears the set.
fn stale_refusal(test: &str, db: Option<Db>) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sc) = scenario(test, db) else { return };
    let client = sc.server.client_id.clone();
    let old = sc.store.tokens(SERVER_ID, &client).unwrap().unwrap();
    let old_token = old.refresh_token().unwrap().secret().to_owned();
    assert_eq!(refresh_once_more(&sc).unwrap(), 2);
    let newer = hash(
        sc.store
            .tokens(SERVER_ID, &client)
            .unwrap()
            .unwrap()
            .access_token()
            .secret(),
    );
    let mut kids = kids(
        &sc,
        1,
        "stale",
        &[(refresh_children::GENERATION, "1")],
        Some(&old_token),
    );
    go(&mut kids);
    let results = results(kids, Duration::from_secs(60));
    assert_eq!(
        results[0].as_deref(),
        Some(format!("stale invalid_grant 2 {newer}").as_str())
    );
    assert_eq!(
        sc.store
            .tokens(SERVER_ID, &client)
            .unwrap()
            .unwrap()
            .generation()
            .get(),
        2
    );
    assert!(sc.server.stats().revoked >= 1);
    // Generation 2's refresh token died with the grant: its refusal is current and clears.
    assert!(matches!(
        refresh_once_more(&sc),
        Err(Error::TokensRevoked { .. })
    ));
    assert!(sc.store.tokens(SERVER_ID, &client).unwrap().is_none());
}

#[test]
fn a_stale_refusal_leaves_the_newer_set_and_a_current_one_clears_it_on_a_file() {
    stale_refusal("stale_refusal_file", Db::file());
}

#[cfg(feature = "postgres")]
#[test]
fn a_stale_refusal_leaves_the_newer_set_and_a_current_one_clears_it_on_postgres() {
    stale_refusal("stale_refusal_pg", Db::postgres("stale_refusal_pg"));
}

#[test]
#[ignore = "a child process of the tests above"]
fn child_refresher() {
    refresh_children::run_child();
}
