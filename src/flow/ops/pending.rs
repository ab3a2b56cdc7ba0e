//! The SDK's finish without the state: the one live bound flow of a server and client, chosen
//! by the same rule for reading its verifier, its discovery state, and consuming it.
//!
//! An engine reads the choice ([`PendingFlows`]): in a transaction by [`read_pending`]
//! (SQLite), or in one statement of its own over the same condition (PostgreSQL). The
//! operations below make it with [`rules::pending_verifier`] whatever read it.

use super::*;
use crate::flow::row::{PendingFlow, PendingFlows};

/// The choice, read in a transaction: up to [`rules::TO_TELL_ONE_FROM_MANY`] live bound flows
/// of a server and client, and how many there are (counted only when that many were found).
pub(crate) fn read_pending(
    tx: &mut dyn FlowTx,
    server_id: &str,
    client_id: Option<&str>,
) -> Result<PendingFlows> {
    let live = rules::live_at(tx.now());
    let limit = rules::TO_TELL_ONE_FROM_MANY;
    let found = tx.live_verifiers(server_id, client_id, &rules::LIVE_BOUND, live, limit)?;
    let count = if found.len() < limit as usize {
        found.len() as u64
    } else {
        tx.count_live(server_id, client_id, &rules::LIVE_BOUND, live)?
    };
    Ok(PendingFlows { found, count })
}

/// The one flow of the choice: none is [`Error::NoPendingVerifier`], several
/// [`Error::AmbiguousPendingVerifier`] with the count. Its verifier must still hash to its
/// challenge.
fn the_one(choice: PendingFlows) -> Result<PendingFlow> {
    let flow = match rules::pending_verifier(choice.found) {
        Choice::None => return Err(Error::NoPendingVerifier),
        Choice::One(flow) => flow,
        Choice::Several => {
            return Err(Error::AmbiguousPendingVerifier {
                count: choice.count,
            })
        }
    };
    if !verifier_matches(&flow.verifier, &flow.challenge) {
        return Err(Error::corrupt(
            "a flows row's code_verifier no longer matches its code_challenge",
        ));
    }
    Ok(flow)
}

/// The one flow of the choice, to be finished without its state. A flow whose verifier the
/// store generated is finished by its state: it counts toward the choice but is never taken
/// here ([`Error::NoPendingVerifier`]).
fn the_one_to_take(choice: PendingFlows) -> Result<PendingFlow> {
    let flow = the_one(choice)?;
    if flow.generated {
        return Err(Error::NoPendingVerifier);
    }
    Ok(flow)
}

/// `pending_verifier`: the verifier of the one live bound flow of a server and client.
pub(crate) fn pending_verifier(choice: PendingFlows) -> Result<CodeVerifier> {
    Ok(CodeVerifier::from_stored(the_one(choice)?.verifier))
}

/// `pending_discovery`: the discovery state recorded on the flow [`consume_pending`] would
/// take (`None` when it has none).
pub(crate) fn pending_discovery(choice: PendingFlows) -> Result<Option<String>> {
    Ok(the_one_to_take(choice)?.discovery)
}

/// `consume_pending`: consumes the one live bound flow of a server and client by its state,
/// as a consume for that server does ([`consume`], in one [`Step`]). The state key is unique
/// and set once, at promote, so the flow consumed is the flow chosen; a flow another process
/// consumed since the choice is what that consume says ([`Error::AlreadyConsumed`]).
pub(crate) fn consume_pending(
    choice: PendingFlows,
    run: RunStep<'_>,
    server_id: &str,
) -> Result<ConsumedFlow> {
    let flow = the_one_to_take(choice)?;
    let key: [u8; 32] = flow
        .state_key
        .as_deref()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| Error::corrupt("a bound flows row has no state key"))?;
    consume(run, &key, Some(server_id))
}
