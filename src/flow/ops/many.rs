//! Operations over many rows: the listener's idle test, `invalidate`, the sweeps, `stats` and
//! `list_flows`. Each asks [`rules`] for its cut-off and leaves the rows to the engine.

use super::*;

/// The listener's idle test: does a live flow still wait for a callback at one of these
/// redirect URIs?
pub(crate) fn waiting_at(tx: &mut dyn FlowTx, redirect_uris: &[&str; 2]) -> Result<bool> {
    let live = rules::live_at(tx.now());
    tx.any_live_for_redirect(&rules::WAITING_FOR_CALLBACK, live, redirect_uris)
}

/// `invalidate`: deletes the rows of a server (and client) that `scope` names.
pub(crate) fn invalidate(
    tx: &mut dyn FlowTx,
    server_id: &str,
    client_id: Option<&str>,
    scope: InvalidateScope,
) -> Result<Outcome<u64>> {
    let n = tx.delete_of_server(server_id, client_id, scope.statuses())?;
    Ok(Outcome::Done(n))
}

/// One batch of `sweep`: up to `size` expired rows.
pub(crate) fn sweep_batch(tx: &mut dyn FlowTx, size: u32) -> Result<Outcome<Vec<Status>>> {
    let cut = rules::sweep_cutoff(tx.now());
    Ok(Outcome::Done(tx.delete_expired_batch(cut, size)?))
}

/// Rows `sweep_finished` walks in a transaction per row it may delete in it: reading a row
/// that stays costs a fraction of deleting one.
const WALK_PER_ROW: u32 = 32;

/// One chunk of `sweep_finished`: of the `rows * WALK_PER_ROW` rows after the id `after`, at
/// most `rows` of those that ended more than `older_than` ago.
pub(crate) fn finished_chunk(
    tx: &mut dyn FlowTx,
    older_than: std::time::Duration,
    after: i64,
    rows: u32,
) -> Result<Outcome<Chunk>> {
    let cut = rules::finished_cutoff(tx.now(), older_than)?;
    Ok(Outcome::Done(tx.delete_ended_chunk(
        &rules::FINISHED,
        cut,
        after,
        rows.saturating_mul(WALK_PER_ROW),
        rows,
    )?))
}

/// `sweep_preview`: what a sweep (and, with `finished_older_than`, a `sweep_finished`) would
/// remove now.
pub(crate) fn removable(
    tx: &mut dyn FlowTx,
    finished_older_than: Option<std::time::Duration>,
) -> Result<Vec<(Status, u64)>> {
    let now = tx.now();
    let ended = finished_older_than
        .map(|d| rules::finished_cutoff(now, d))
        .transpose()?;
    tx.count_removable(
        rules::sweep_cutoff(now),
        ended.map(|cut| (&rules::FINISHED[..], cut)),
    )
}

/// `stats`.
pub(crate) fn stats(tx: &mut dyn FlowTx) -> Result<Vec<StatusStats>> {
    let cut = rules::sweep_cutoff(tx.now());
    tx.stats(cut)
}

/// `list_flows`.
pub(crate) fn list(
    tx: &mut dyn FlowTx,
    server_id: Option<&str>,
    status: Option<Status>,
    limit: Option<u32>,
) -> Result<Vec<ListedRow>> {
    tx.list(server_id, status, limit)
}
