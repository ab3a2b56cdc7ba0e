//! The PostgreSQL statements against a real server where they differ from a plain mapping of
//! the row interface.

use crate::backend::postgres::test_cluster as pg;
use crate::{CodeVerifier, State, Store};

#[test]
fn promote_with_issuer_keeps_the_issuer_on_postgres() {
    let Some(cluster) = pg::cluster("promote_with_issuer") else {
        return;
    };
    let store = Store::open(cluster.fresh_database("promote_with_issuer")).unwrap();
    let (server, client, issuer) = ("https://mcp.example.com", "c1", "https://as.example.com");
    let verifier = CodeVerifier::generate();
    let challenge = store
        .save_code_verifier(server, Some(client), verifier.secret())
        .unwrap();
    let state = State::generate();
    let url = format!(
        "https://as.example.com/authorize?response_type=code&client_id={client}&state={}\
         &code_challenge={}&code_challenge_method=S256",
        state.secret(),
        challenge.as_str()
    );
    let info = store
        .promote_with_issuer(server, Some(client), &url, issuer)
        .unwrap();
    assert_eq!(info.issuer.as_deref(), Some(issuer));
    // Read back from the row, not from what promote computed.
    assert_eq!(
        store.check(state.secret()).unwrap().issuer.as_deref(),
        Some(issuer)
    );
    let consumed = store.consume(state.secret()).unwrap();
    assert_eq!(consumed.info.issuer.as_deref(), Some(issuer));
}
