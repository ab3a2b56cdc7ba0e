//! The SDK's finish without the state: the one live bound flow of a server and client, chosen
//! by the same rule for reading its verifier, its discovery state, and consuming it.

use super::*;

/// The one live bound flow of a server and client, as `live_verifiers` reads it: none is
/// [`Error::NoPendingVerifier`], several [`Error::AmbiguousPendingVerifier`] with the count.
fn the_pending_verifier(
    tx: &mut dyn FlowTx,
    server_id: &str,
    client_id: Option<&str>,
) -> Result<StoredVerifier> {
    let live = rules::live_at(tx.now());
    let found = tx.live_verifiers(
        server_id,
        client_id,
        &rules::LIVE_BOUND,
        live,
        rules::TO_TELL_ONE_FROM_MANY,
    )?;
    match rules::pending_verifier(found) {
        Choice::None => Err(Error::NoPendingVerifier),
        Choice::One(stored) => Ok(stored),
        Choice::Several => {
            let count = tx.count_live(server_id, client_id, &rules::LIVE_BOUND, live)?;
            Err(Error::AmbiguousPendingVerifier { count })
        }
    }
}

/// `pending_verifier`: the verifier of the one live bound flow of a server and client.
pub(crate) fn pending_verifier(
    tx: &mut dyn FlowTx,
    server_id: &str,
    client_id: Option<&str>,
) -> Result<CodeVerifier> {
    let stored = the_pending_verifier(tx, server_id, client_id)?;
    if !verifier_matches(&stored.verifier, &stored.challenge) {
        return Err(Error::corrupt(
            "a flows row's code_verifier no longer matches its code_challenge",
        ));
    }
    Ok(CodeVerifier::from_stored(stored.verifier))
}

/// The one live bound flow of a server and client, read whole: the same choice as
/// [`pending_verifier`], then its row found by its challenge. A flow whose verifier the store
/// generated is not found by its challenge: such a flow is finished by its state, so it
/// counts toward the choice but is never taken here ([`Error::NoPendingVerifier`]).
fn the_pending_row(
    tx: &mut dyn FlowTx,
    server_id: &str,
    client_id: Option<&str>,
) -> Result<FlowRow> {
    let stored = the_pending_verifier(tx, server_id, client_id)?;
    // The row found by the challenge must be the one chosen: same server and client, and the
    // same verifier unless a consume that committed meanwhile wiped it (the consume rule then
    // reports that). A generated verifier's row is not found by its challenge, or another row
    // (a caller that saved that verifier again) is.
    match find_by_challenge(tx, &stored.challenge)? {
        Some(row)
            if row.server_id == server_id
                && row.client_id.as_deref() == client_id
                && row.verifier.as_ref().is_none_or(|v| *v == stored.verifier) =>
        {
            Ok(row)
        }
        _ => Err(Error::NoPendingVerifier),
    }
}

/// `consume_pending`: consumes the one live bound flow of a server and client, by the rule of
/// a consume for that server.
pub(crate) fn consume_pending(
    tx: &mut dyn FlowTx,
    server_id: &str,
    client_id: Option<&str>,
) -> Result<Outcome<ConsumedFlow>> {
    let row = the_pending_row(tx, server_id, client_id)?;
    let now = tx.now();
    consume_row(tx, Some(row), now, Some(server_id))
}

/// `pending_discovery`, read-only: the discovery state recorded on the one live bound flow of
/// a server and client (`None` when it has none).
pub(crate) fn pending_discovery(
    tx: &mut dyn FlowTx,
    server_id: &str,
    client_id: Option<&str>,
) -> Result<Option<String>> {
    Ok(the_pending_row(tx, server_id, client_id)?.discovery)
}
