//! The child process of tests/rmcp_refresh.rs: one rmcp `AuthorizationManager` over an
//! `RmcpCredentialStore`, asked for an access token whose stored set has expired.
#![allow(dead_code)]

use std::io::BufRead;
use std::sync::Arc;

use oauth_state_store::{RmcpCredentialStore, Store};
use rmcp::transport::auth::{
    default_oauth_http_client, AuthorizationManager, AuthorizationMetadata, OAuthClientConfig,
    OAuthHttpClient,
};

use crate::kids::wait_for_go;
use crate::refresh_children::{hash, SERVER_ID};

pub const TARGET: &str = "OSS_RMCP_TARGET";
pub const ISSUER: &str = "OSS_RMCP_ISSUER";
pub const CLIENT: &str = "OSS_RMCP_CLIENT";
/// `true`: the manager's OAuth HTTP client is the adapter's wrapper.
pub const WRAPPED: &str = "OSS_RMCP_WRAPPED";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// The authorization server's metadata, from its discovery document.
pub fn metadata(issuer: &str) -> AuthorizationMetadata {
    let (status, body) = crate::oidc::http(
        "GET",
        &format!("{issuer}/.well-known/openid-configuration"),
        None,
    )
    .expect("discovery");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("metadata")
}

pub fn run_child() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(child());
}

async fn child() {
    let mut stdin = std::io::stdin().lock().lines().map(|l| l.expect("stdin"));
    let issuer = env(ISSUER);
    let store = Store::open(env(TARGET)).expect("open the store");
    let adapter = RmcpCredentialStore::new(store, SERVER_ID).unwrap();
    let inner: Arc<dyn OAuthHttpClient> = Arc::new(default_oauth_http_client().unwrap());
    let http = if env(WRAPPED) == "true" {
        adapter.http_client(inner)
    } else {
        inner
    };
    let mut manager = AuthorizationManager::new_with_oauth_http_client(issuer.as_str(), http)
        .await
        .unwrap();
    manager.set_credential_store(adapter);
    manager.set_metadata(metadata(&issuer));
    manager
        .configure_client(OAuthClientConfig::new(
            env(CLIENT),
            "http://127.0.0.1/callback",
        ))
        .unwrap();
    wait_for_go(&mut stdin);
    match manager.get_access_token().await {
        Ok(token) => println!("RESULT ok {}", hash(&token)),
        Err(e) => println!("RESULT error {e}"),
    }
}
