//! Secrets at rest, token sets: once a set is refreshed, revoked or forgotten, its old access
//! token, refresh token and `extra` are in neither the database file nor its `-wal`, under
//! the same rules as verifiers (tests/secrets_at_rest.rs): with `immediate_wal_scrub` they go
//! with the write that replaces them; by default at the next checkpoint and WAL restart (a
//! sweep, `Store::scrub`), and at once for a forget (a bulk wipe).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{file_contains, Fixture};
use oauth_state_store::{
    AccessToken, RefreshOptions, RefreshToken, Rejected, Seen, Store, TokenResponse, TryBegun,
};

const SRV: &str = "https://mcp.example.com";

/// Generation `n` of client `c`'s set: its three secrets.
fn secrets(c: usize, n: usize) -> [String; 3] {
    [
        format!("atRest-ACCESS-secret-{c}-{n:03}-0123456789abcdef"),
        format!("atRest-REFRESH-secret-{c}-{n:03}-0123456789abcdef"),
        format!("atRest-EXTRA-secret-{c}-{n:03}"),
    ]
}

fn client(c: usize) -> String {
    format!("client-{c}")
}

fn response(c: usize, n: usize) -> TokenResponse {
    let [access, refresh, extra] = secrets(c, n);
    TokenResponse::new(AccessToken::new(access).unwrap(), "Bearer")
        .refresh_token(RefreshToken::new(refresh).unwrap())
        .expires_in(Duration::from_secs(3600))
        .extra(format!(r#"{{"id_token":"{extra}"}}"#))
}

fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Where each secret of generation `n` of client `c` is found on disk, as readable labels.
fn found(path: &Path, c: usize, n: usize) -> Vec<String> {
    let mut hits = Vec::new();
    let [access, refresh, extra] = secrets(c, n);
    for (what, secret) in [("access", access), ("refresh", refresh), ("extra", extra)] {
        for (file, p) in [("db", path.to_path_buf()), ("-wal", side(path, "-wal"))] {
            if file_contains(&p, secret.as_bytes()) {
                hits.push(format!("{what} in {file}"));
            }
        }
    }
    hits
}

fn checkpoint(path: &Path) {
    let raw = rusqlite::Connection::open(path).unwrap();
    let busy: i64 = raw
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint could not finish");
}

/// Clients 0 to 3 with their first set: neighbours on the same page.
fn four_sets(store: &Store) {
    for c in 0..4 {
        store.save_tokens(SRV, &client(c), response(c, 1)).unwrap();
    }
}

fn refresh(store: &Store, c: usize, to: usize) {
    let lease = match store
        .try_begin_refresh(SRV, &client(c), Seen::Current, &RefreshOptions::default())
        .unwrap()
    {
        TryBegun::Lease(lease) => lease,
        other => panic!("{other:?}"),
    };
    store.finish_refresh(lease, response(c, to)).unwrap();
}

fn scrubbing(fx: &Fixture) -> Store {
    fx.options()
        .immediate_wal_scrub(true)
        .open(&fx.path)
        .unwrap()
}

#[test]
fn a_stored_token_set_is_on_disk_so_the_scan_can_see_it() {
    let fx = Fixture::new();
    let store = fx.store();
    four_sets(&store);
    checkpoint(&fx.path);
    assert_eq!(
        found(&fx.path, 1, 1),
        ["access in db", "refresh in db", "extra in db"]
    );
}

#[test]
fn a_refresh_wipes_the_replaced_tokens_from_the_db_and_the_wal() {
    let fx = Fixture::new();
    let store = scrubbing(&fx);
    four_sets(&store);
    refresh(&store, 1, 2);
    assert_eq!(
        found(&fx.path, 1, 1),
        Vec::<String>::new(),
        "before checkpoint"
    );
    checkpoint(&fx.path);
    assert_eq!(
        found(&fx.path, 1, 1),
        Vec::<String>::new(),
        "after checkpoint"
    );
    // The new set and the neighbours are there.
    assert!(found(&fx.path, 1, 2).contains(&"refresh in db".to_string()));
    assert!(found(&fx.path, 2, 1).contains(&"refresh in db".to_string()));
}

#[test]
fn a_set_checkpointed_before_its_refresh_is_gone_after_it() {
    let fx = Fixture::new();
    let store = scrubbing(&fx);
    four_sets(&store);
    checkpoint(&fx.path);
    refresh(&store, 2, 2);
    // The login saved over it too: no copy of either old set survives.
    store.save_tokens(SRV, &client(2), response(2, 3)).unwrap();
    for n in [1, 2] {
        assert_eq!(
            found(&fx.path, 2, n),
            Vec::<String>::new(),
            "generation {n}"
        );
    }
}

#[test]
fn a_revocation_wipes_the_refused_set() {
    let fx = Fixture::new();
    let store = scrubbing(&fx);
    four_sets(&store);
    let set = store.tokens(SRV, &client(3)).unwrap().unwrap();
    let rejected = store
        .reject_tokens(SRV, &client(3), set.generation(), "invalid_grant")
        .unwrap();
    assert!(matches!(rejected, Rejected::Revoked));
    assert_eq!(found(&fx.path, 3, 1), Vec::<String>::new());
    checkpoint(&fx.path);
    assert_eq!(found(&fx.path, 3, 1), Vec::<String>::new());
}

#[test]
fn by_default_a_replaced_set_leaves_the_wal_at_the_next_scrub() {
    let fx = Fixture::new();
    let store = fx.store();
    four_sets(&store);
    refresh(&store, 0, 2);
    // The default promise, stated exactly: the row no longer holds them, the old page image
    // of the first save stays in the -wal until a checkpoint and WAL restart.
    assert_eq!(
        found(&fx.path, 0, 1),
        ["access in -wal", "refresh in -wal", "extra in -wal"]
    );
    store.scrub().unwrap();
    assert_eq!(found(&fx.path, 0, 1), Vec::<String>::new());
    checkpoint(&fx.path);
    assert_eq!(found(&fx.path, 0, 1), Vec::<String>::new());
}

#[test]
fn by_default_forgetting_sets_scrubs_them_at_once() {
    let fx = Fixture::new();
    let store = fx.store();
    four_sets(&store);
    refresh(&store, 1, 2);
    assert_eq!(store.forget_tokens(SRV, None).unwrap(), 4);
    for c in 0..4 {
        assert_eq!(found(&fx.path, c, 1), Vec::<String>::new(), "client {c}");
    }
    assert_eq!(found(&fx.path, 1, 2), Vec::<String>::new());
}
