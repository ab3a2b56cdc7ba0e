//! `tokens list` and `tokens forget` on files with live, revoked and leased token sets.

use std::time::Duration;

use oauth_state_store::{
    AccessToken, RefreshOptions, RefreshToken, Seen, Store, TokenResponse, TryBegun,
};

use super::{cli, json, json_error, stderr, stdout};
use crate::common::Fixture;

const SERVER: &str = "https://a.example.com";
const OTHER: &str = "https://b.example.com";
/// The tokens the tests save: no output may contain any of them.
const SECRETS: [&str; 4] = [
    "at-secret-live-4b1f",
    "rt-secret-live-9c2e",
    "at-secret-revoked-77aa",
    "rt-secret-revoked-13d0",
];

fn response(access: &str, refresh: &str) -> TokenResponse {
    TokenResponse::new(AccessToken::new(access).unwrap(), "Bearer")
        .refresh_token(RefreshToken::new(refresh).unwrap())
        .expires_in(Duration::from_secs(3600))
        .scope("offline_access mcp")
}

/// A live set of (SERVER, "cli-a") with a lease held by this process, a revoked set of
/// (SERVER, "cli-b"), and a live set of (OTHER, "cli-a").
fn populate(fx: &Fixture) -> Store {
    let store = Store::open(&fx.path).unwrap();
    store
        .save_tokens(SERVER, "cli-a", response(SECRETS[0], SECRETS[1]))
        .unwrap();
    store
        .save_tokens(SERVER, "cli-b", response(SECRETS[2], SECRETS[3]))
        .unwrap();
    let set = store.tokens(SERVER, "cli-b").unwrap().unwrap();
    store
        .reject_tokens(SERVER, "cli-b", set.generation(), "invalid_grant")
        .unwrap();
    store
        .save_tokens(OTHER, "cli-a", response("at-other", "rt-other"))
        .unwrap();
    store
}

fn assert_no_secret(text: &str) {
    for s in SECRETS.iter().chain(&["at-other", "rt-other"]) {
        assert!(!text.contains(s), "the output holds a token");
    }
}

#[test]
fn list_describes_every_set_and_never_a_token() {
    let fx = Fixture::new();
    let store = populate(&fx);
    let options = RefreshOptions::default()
        .lease(Duration::from_secs(60))
        .owner("test-holder");
    let seen = Seen::Generation(store.tokens(SERVER, "cli-a").unwrap().unwrap().generation());
    let TryBegun::Lease(lease) = store
        .try_begin_refresh(SERVER, "cli-a", seen, &options)
        .unwrap()
    else {
        panic!("the lease is free")
    };

    let human = cli(&fx.path, &["tokens", "list"]);
    assert_eq!(human.status.code(), Some(0), "{}", stderr(&human));
    let text = stdout(&human);
    assert_no_secret(&format!("{text}{}", stderr(&human)));
    assert!(text.contains("cli-a") && text.contains("cli-b") && text.contains(OTHER));
    assert!(text.contains("revoked (invalid_grant)"), "{text}");
    assert!(
        text.contains("expires in 59m") || text.contains("expires in 1h"),
        "{text}"
    );
    assert!(
        text.contains("test-holder"),
        "the lease's holder is shown: {text}"
    );

    let out = cli(&fx.path, &["tokens", "list", "--json"]);
    assert_no_secret(&stdout(&out));
    let doc = json(&out);
    let sets = doc["token_sets"].as_array().unwrap();
    assert_eq!(sets.len(), 3);
    let a = &sets[0];
    assert_eq!(
        (a["server_id"].as_str(), a["client_id"].as_str()),
        (Some(SERVER), Some("cli-a"))
    );
    assert_eq!(a["generation"], 1);
    assert_eq!(a["state"]["state"], "live");
    assert_eq!(a["state"]["refresh_token"], true);
    assert!(a["lease"]["owner"]
        .as_str()
        .unwrap()
        .contains("test-holder"));
    assert_eq!(sets[1]["state"]["state"], "revoked");
    assert_eq!(sets[1]["state"]["reason"], "invalid_grant");
    assert_eq!(sets[1]["generation"], 2, "a revocation is a generation");

    let only = json(&cli(
        &fx.path,
        &["tokens", "list", "--server", OTHER, "--json"],
    ));
    assert_eq!(only["token_sets"].as_array().unwrap().len(), 1);
    store.release_refresh(lease).unwrap();
}

#[test]
fn list_only_looks() {
    let fx = Fixture::new();
    drop(populate(&fx));
    let before = std::fs::read(&fx.path).unwrap();
    let wal = fx.path.with_extension("db-wal");
    let had_wal = wal.exists();
    assert_eq!(cli(&fx.path, &["tokens", "list"]).status.code(), Some(0));
    assert_eq!(
        std::fs::read(&fx.path).unwrap(),
        before,
        "list changed the file"
    );
    assert_eq!(wal.exists(), had_wal, "list left or removed a -wal");

    let empty = Fixture::new();
    drop(Store::open(&empty.path).unwrap());
    let out = cli(&empty.path, &["tokens", "list"]);
    assert_eq!(stdout(&out), "no token sets\n");
}

#[test]
fn forget_wipes_one_set_and_says_when_none_matched() {
    let fx = Fixture::new();
    drop(populate(&fx));
    let out = cli(
        &fx.path,
        &["tokens", "forget", "--server", SERVER, "--client", "cli-a"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("forgot 1 token set"),
        "{}",
        stdout(&out)
    );
    assert_no_secret(&format!("{}{}", stdout(&out), stderr(&out)));
    let store = Store::open(&fx.path).unwrap();
    assert!(store.tokens(SERVER, "cli-a").unwrap().is_none());
    assert!(
        store.tokens(OTHER, "cli-a").unwrap().is_some(),
        "another server's set stays"
    );
    drop(store);
    // The forgotten tokens are gone from the file and its -wal, not only from the table.
    for file in [fx.path.clone(), fx.path.with_extension("db-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            for s in &SECRETS {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{} still holds a forgotten token",
                    file.display()
                );
            }
        }
    }

    // Nothing matched: exit status 1, nothing changed.
    let again = cli(
        &fx.path,
        &[
            "tokens", "forget", "--server", SERVER, "--client", "cli-a", "--json",
        ],
    );
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(json_error(&again)["error"], "no_tokens");

    let all = json(&cli(
        &fx.path,
        &[
            "tokens",
            "forget",
            "--server",
            SERVER,
            "--all-clients",
            "--json",
        ],
    ));
    assert_eq!(all["forgotten"], 1, "the revoked set of cli-b");
}

#[test]
fn forget_needs_a_client_or_all_clients_and_valid_ids() {
    let fx = Fixture::new();
    drop(populate(&fx));
    let before = std::fs::read(&fx.path).unwrap();
    for args in [
        &["tokens", "forget", "--server", SERVER][..],
        &[
            "tokens",
            "forget",
            "--server",
            SERVER,
            "--client",
            "x",
            "--all-clients",
        ][..],
        &["tokens", "forget", "--client", "cli-a"][..],
        &["tokens", "forget", "--server", "", "--client", "cli-a"][..],
    ] {
        let out = cli(&fx.path, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(std::fs::read(&fx.path).unwrap(), before);
}
