//! Wiring `RmcpStateStore` into rmcp's `AuthorizationManager`, so that any process sharing the
//! file can finish the login this one starts.
//!
//! `OAUTH_STATE_DB=/path/flows.db cargo run --example rmcp_client --features rmcp -- https://mcp.example.com/mcp`
//! (a remote `https` server also needs one of rmcp's TLS features, such as `reqwest`).

use oauth_state_store::{RmcpStateStore, Store};
use rmcp::transport::auth::AuthorizationManager;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::args()
        .nth(1)
        .ok_or("usage: rmcp_client MCP_SERVER_URL")?;
    let db = std::env::var_os("OAUTH_STATE_DB").unwrap_or_else(|| "flows.db".into());

    let mut manager = AuthorizationManager::new(server.as_str()).await?;
    let metadata = manager.resolve_metadata().await?.metadata;
    manager.set_metadata(metadata);
    manager.set_state_store(RmcpStateStore::new(Store::open(db)?, &server)?);
    manager
        .register_client("my-agent", "http://127.0.0.1:33418/callback", &[])
        .await?;
    let url = manager.get_authorization_url(&[]).await?;

    // The authorization URL is for the user's browser. Whichever process gets the callback
    // (same file, same server id) then calls
    // `manager.exchange_code_for_token_with_issuer(code, state, iss)`; exactly one succeeds.
    println!("Open this URL in your browser to log in:\n{url}");
    Ok(())
}
