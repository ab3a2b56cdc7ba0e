//! rmcp's `AuthorizationManager` with `RmcpCredentialStore` in several real processes, against
//! a real authorization server that rotates refresh tokens (oidc-provider), on an SQLite file
//! and on PostgreSQL: with the adapter's HTTP client, one token request for all of them; without
//! it, one request per process, serialized, each valid. In-process: the refresh guard is
//! released after a transport error, and a stale refusal leaves the newer set.

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
#[path = "rmcp_refresh_support/mod.rs"]
mod support;

use std::time::Duration;

use kids::{all_loaded, go, results, Kid};
use oauth_state_store::{Exchange, RefreshOptions, Refreshed, Seen, Store};
use oidc::{refresh_request, RotatingServer, TokenReply};
use refresh_children::{hash, token_response, SERVER_ID};

/// Processes of one scenario.
const PROCESSES: usize = 8;

fn rmcp_processes(test: &str, target: Option<String>, wrapped: bool) {
    let Some(target) = target else { return };
    // Access tokens of 2 minutes: a refreshed one is far from rmcp's 30 s refresh margin.
    let Some(server) = RotatingServer::start(test, 120) else {
        return;
    };
    let store = Store::open(&target).expect("open the store");
    let client = server.client_id.clone();
    // The login's set, saved as one whose access token has expired for rmcp.
    let login = token_response(&server.login)
        .unwrap()
        .expires_in(Duration::from_secs(1));
    store.save_tokens(SERVER_ID, &client, login).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let env = [
        (support::TARGET, target.clone()),
        (support::ISSUER, server.issuer.clone()),
        (support::CLIENT, client.clone()),
        (support::WRAPPED, wrapped.to_string()),
    ];
    let mut kids: Vec<Kid> = (0..PROCESSES)
        .map(|_| Kid::spawn("child_rmcp", &env))
        .collect();
    all_loaded(&kids);
    go(&mut kids);
    let results = results(kids, Duration::from_secs(90));
    let stats = server.stats();
    assert!(
        stats.refresh_errors.is_empty() && stats.revoked == 0,
        "{stats:?}"
    );
    let stored = store.tokens(SERVER_ID, &client).unwrap().unwrap();
    if wrapped {
        // One request, and every process got its access token.
        assert_eq!(stats.refresh_requests, 1, "{stats:?}");
        let want = format!("ok {}", hash(stored.access_token().secret()));
        for r in &results {
            assert_eq!(r.as_deref(), Some(want.as_str()), "{results:?}");
        }
        assert_eq!(stored.generation().get(), 2);
    } else {
        // Serialized under the lease, each with the stored token: every one succeeds.
        assert!(
            (1..=PROCESSES as u64).contains(&stats.refresh_requests),
            "{stats:?}"
        );
        for r in &results {
            assert!(
                r.as_deref().is_some_and(|r| r.starts_with("ok ")),
                "{results:?}"
            );
        }
        println!(
            "without the adapter's HTTP client: {} token requests for {PROCESSES} processes",
            stats.refresh_requests
        );
    }
    // The grant lives: one more refresh through the store succeeds.
    let more = store
        .refresh_with(
            SERVER_ID,
            &client,
            Seen::Current,
            &RefreshOptions::default(),
            |lease| match refresh_request(
                &server.token_endpoint,
                &client,
                lease.refresh_token().secret(),
            ) {
                Ok(TokenReply::Tokens(json)) => Exchange::Tokens(token_response(&json).unwrap()),
                other => Exchange::Failed(format!("{other:?}")),
            },
        )
        .unwrap();
    assert!(matches!(more, Refreshed::Refreshed(_)), "{more:?}");
}

fn file() -> Option<(tempfile::TempDir, String)> {
    let dir = common::Fixture::new().dir;
    let path = dir.path().join("flows.db").to_str().unwrap().to_owned();
    Some((dir, path))
}

#[test]
fn rmcp_in_eight_processes_makes_one_token_request_on_a_file() {
    let (_dir, path) = file().unwrap();
    rmcp_processes("rmcp_one_request_file", Some(path), true);
}

#[cfg(feature = "postgres")]
#[test]
fn rmcp_in_eight_processes_makes_one_token_request_on_postgres() {
    let url = pg::cluster("rmcp_one_request_pg").map(|c| c.fresh_database("rmcp_one"));
    rmcp_processes("rmcp_one_request_pg", url, true);
}

#[test]
fn rmcp_without_the_adapters_http_client_refreshes_in_turn_and_keeps_the_grant() {
    let (_dir, path) = file().unwrap();
    rmcp_processes("rmcp_unwrapped_file", Some(path), false);
}

#[test]
#[ignore = "a child process of the tests above"]
fn child_rmcp() {
    support::run_child();
}

mod in_process {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use oauth_state_store::{
        AccessToken, RefreshOptions, RefreshToken, RmcpCredentialStore, Seen, Store, TokenResponse,
        TryBegun,
    };
    use rmcp::transport::auth::{
        AuthError, AuthorizationManager, AuthorizationMetadata, CredentialStore, OAuthClientConfig,
        OAuthHttpClient, OAuthHttpClientFuture, OAuthHttpRequest,
    };

    const SRV: &str = "https://mcp.example.com/mcp";
    const CLIENT: &str = "in-process-client";

    /// A token endpoint in memory: each refresh answers `at-N`/`rt-N`, or fails on the wire.
    struct FakeEndpoint {
        refreshes: AtomicU32,
        fail: bool,
    }

    impl OAuthHttpClient for FakeEndpoint {
        fn execute(&self, _request: OAuthHttpRequest) -> OAuthHttpClientFuture<'_> {
            let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 100;
            let fail = self.fail;
            Box::pin(async move {
                if fail {
                    return Err("connection reset".into());
                }
                let body = serde_json::json!({
                    "access_token": format!("at-{n}"), "token_type": "Bearer",
                    "expires_in": 3600, "refresh_token": format!("rt-{n}"),
                });
                Ok(http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(body.to_string().into_bytes())
                    .unwrap())
            })
        }
    }

    fn tokens(n: u32) -> TokenResponse {
        TokenResponse::new(AccessToken::new(format!("at-{n}")).unwrap(), "Bearer")
            .refresh_token(RefreshToken::new(format!("rt-{n}")).unwrap())
            .expires_in(Duration::from_secs(3600))
    }

    async fn manager(
        adapter: &RmcpCredentialStore,
        endpoint: Arc<FakeEndpoint>,
    ) -> AuthorizationManager {
        let http = adapter.http_client(endpoint);
        let mut manager = AuthorizationManager::new_with_oauth_http_client(SRV, http)
            .await
            .unwrap();
        manager.set_credential_store(adapter.clone());
        let metadata: AuthorizationMetadata = serde_json::from_value(serde_json::json!({
            "authorization_endpoint": "http://127.0.0.1:9/authorize",
            "token_endpoint": "http://127.0.0.1:9/token",
            "issuer": "http://127.0.0.1:9",
        }))
        .unwrap();
        manager.set_metadata(metadata);
        manager
            .configure_client(OAuthClientConfig::new(CLIENT, "http://127.0.0.1/callback"))
            .unwrap();
        manager
    }

    #[tokio::test]
    async fn a_newer_set_stored_by_another_process_is_handed_out_without_a_request() {
        let fx = crate::common::Fixture::new();
        let store = fx.store();
        store.save_tokens(SRV, CLIENT, tokens(1)).unwrap();
        let adapter = RmcpCredentialStore::new(store.clone(), SRV).unwrap();
        let endpoint = Arc::new(FakeEndpoint {
            refreshes: AtomicU32::new(0),
            fail: false,
        });
        let manager = manager(&adapter, endpoint.clone()).await;
        adapter.load().await.unwrap().expect("the stored set");
        let refreshed = manager.refresh_token().await.unwrap();
        assert_eq!(endpoint.refreshes.load(Ordering::SeqCst), 1);
        let stored = store.tokens(SRV, CLIENT).unwrap().unwrap();
        assert_eq!(stored.generation().get(), 2);
        assert_eq!(stored.access_token().secret(), "at-100");
        drop(refreshed);
        // Another process refreshes generation 2 meanwhile.
        let lease = match store
            .try_begin_refresh(SRV, CLIENT, Seen::Current, &RefreshOptions::default())
            .unwrap()
        {
            TryBegun::Lease(lease) => lease,
            other => panic!("{other:?}"),
        };
        store.finish_refresh(lease, tokens(7)).unwrap();
        // This manager saw generation 2: it gets generation 3, and nothing is sent.
        manager.refresh_token().await.unwrap();
        assert_eq!(endpoint.refreshes.load(Ordering::SeqCst), 1);
        assert_eq!(manager.get_access_token().await.unwrap(), "at-7");
        assert_eq!(
            store
                .tokens(SRV, CLIENT)
                .unwrap()
                .unwrap()
                .generation()
                .get(),
            3
        );
    }

    #[tokio::test]
    async fn a_transport_error_gives_the_lease_back_at_once() {
        let fx = crate::common::Fixture::new();
        let store = fx.store();
        store.save_tokens(SRV, CLIENT, tokens(1)).unwrap();
        let adapter = RmcpCredentialStore::new(store.clone(), SRV).unwrap();
        let endpoint = Arc::new(FakeEndpoint {
            refreshes: AtomicU32::new(0),
            fail: true,
        });
        let manager = manager(&adapter, endpoint).await;
        let e = manager.refresh_token().await.unwrap_err();
        assert!(matches!(e, AuthError::TokenRefreshFailed(_)), "{e:?}");
        // Released, not left to expire: the next refresher leases now, with the same token.
        match store
            .try_begin_refresh(SRV, CLIENT, Seen::Current, &RefreshOptions::default())
            .unwrap()
        {
            TryBegun::Lease(lease) => assert_eq!(lease.refresh_token().secret(), "rt-1"),
            other => panic!("the lease was kept: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_stale_refusal_leaves_the_newer_set_and_a_current_one_clears_it() {
        let fx = crate::common::Fixture::new();
        let store: Store = fx.store();
        store.save_tokens(SRV, CLIENT, tokens(1)).unwrap();
        let adapter = RmcpCredentialStore::new(store.clone(), SRV).unwrap();
        let old = adapter.load().await.unwrap().unwrap();
        store.save_tokens(SRV, CLIENT, tokens(2)).unwrap();
        adapter.on_refresh_token_rejected(&old).await.unwrap();
        assert_eq!(
            store
                .tokens(SRV, CLIENT)
                .unwrap()
                .unwrap()
                .access_token()
                .secret(),
            "at-2"
        );
        let current = adapter.load().await.unwrap().unwrap();
        adapter.on_refresh_token_rejected(&current).await.unwrap();
        assert!(store.tokens(SRV, CLIENT).unwrap().is_none());
        assert!(adapter.load().await.unwrap().is_none());
    }
}
