//! Each operation's transaction body, written once over the row interface
//! ([`FlowTx`](crate::flow::tx::FlowTx)): look the row up, ask [`rules`] for a verdict, carry
//! it out. The public methods in `store/` validate their input and hand one of these to the
//! engine's `write` or `read`; no body here knows which engine runs it.

use crate::error::StorageError;
use crate::error::{Error, Result};
use crate::flow::row::{Binding, CallbackResult, Chunk, FlowRow, ListedRow, NewFlow, StatusStats};
use crate::flow::rules::{self, Action, Choice, Expectations, Snapshot, Verdict};
use crate::flow::tx::{FlowTx, Outcome, Step, Stepped};
use crate::flow::{ConsumedFlow, Discovery, FlowInfo, InvalidateScope, Status};
use crate::pkce::{AuthorizationCode, CodeVerifier};
use crate::validate;

impl FlowRow {
    /// The columns the rules look at.
    pub(crate) fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            status: self.status,
            expires_at: self.expires_at,
            server_id: &self.server_id,
            client_id: self.client_id.as_deref(),
            created_at: self.created_at,
            redirect_uri: self.redirect_uri.as_deref(),
            issuer: self.issuer.as_deref(),
            error: self.error.as_deref(),
            require_issuer: self.require_issuer,
        }
    }

    /// A stored verifier must hash to the stored challenge (it did when it was written).
    fn check_verifier(&self) -> Result<()> {
        match &self.verifier {
            Some(v) if !verifier_matches(v, &self.code_challenge) => Err(Error::corrupt(
                "a flows row's code_verifier no longer matches its code_challenge",
            )),
            _ => Ok(()),
        }
    }
}

fn snapshot(row: &Option<FlowRow>) -> Option<Snapshot<'_>> {
    row.as_ref().map(FlowRow::snapshot)
}

/// Whether a stored verifier still hashes to the stored challenge.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    CodeVerifier::from_stored(verifier.to_owned())
        .challenge()
        .as_str()
        == challenge
}

/// The flow whose state key is `key`. The row must really carry that key and a verifier that
/// matches its challenge: a storage engine follows a damaged index entry to whatever row it
/// names, and cannot see a changed byte inside a value, so without these checks a damaged
/// file could hand out another flow's verifier or a wrong one.
fn find_by_state(tx: &mut dyn FlowTx, key: &[u8; 32]) -> Result<Option<FlowRow>> {
    let row = tx.by_state(key)?;
    check_by_state(&row, key)?;
    Ok(row)
}

/// [`find_by_state`]'s checks on a row found by `key`.
fn check_by_state(row: &Option<FlowRow>, key: &[u8; 32]) -> Result<()> {
    if let Some(r) = row {
        if r.state_key.as_deref() != Some(&key[..]) {
            return Err(Error::corrupt(
                "the flows state-key index points at another flow",
            ));
        }
        r.check_verifier()?;
    }
    Ok(())
}

/// The flow whose code challenge is `challenge`, checked like [`find_by_state`]'s.
fn find_by_challenge(tx: &mut dyn FlowTx, challenge: &str) -> Result<Option<FlowRow>> {
    let row = tx.by_challenge(challenge)?;
    check_by_challenge(&row, challenge)?;
    Ok(row)
}

/// [`find_by_challenge`]'s checks on a row found by `challenge`.
fn check_by_challenge(row: &Option<FlowRow>, challenge: &str) -> Result<()> {
    if let Some(r) = row {
        if r.code_challenge != challenge {
            return Err(Error::corrupt(
                "the flows code-challenge index points at another flow",
            ));
        }
        r.check_verifier()?;
    }
    Ok(())
}

/// The rules' verdict on the row a [`Step`] found, at the time it judged it: the one function
/// both the engine's step (inside SQLite's transaction, [`step_in_tx`]) and the operation
/// (on the row the step returned, any engine) ask.
pub(crate) fn judge(step: &Step<'_>, row: Option<&FlowRow>, now: i64) -> Verdict {
    let snap = row.map(FlowRow::snapshot);
    let snap = snap.as_ref();
    match *step {
        Step::Promote {
            server_id,
            client_id,
            binding,
            ..
        } => {
            let same_state =
                row.is_some_and(|r| r.state_key.as_deref() == Some(&binding.state_key[..]));
            rules::promote(snap, now, server_id, client_id, same_state)
        }
        Step::Record { expect, .. } => rules::record_callback(snap, now, expect),
        Step::Consume { expect_server, .. } => rules::consume(snap, now, expect_server),
    }
}

/// A [`Step`] in one write transaction, for an engine with transactions (SQLite): look the row
/// up with its damage checks, ask the rules, carry the verdict's [`Action`] out with the
/// guarded statements, and return the row as it was. Every outcome commits; the operation
/// reports the verdict's error.
pub(crate) fn step_in_tx(tx: &mut dyn FlowTx, step: &Step<'_>) -> Result<Outcome<Stepped>> {
    let now = tx.now();
    let row = match *step {
        Step::Promote { challenge, .. } => find_by_challenge(tx, challenge)?,
        Step::Record { key, .. } | Step::Consume { key, .. } => find_by_state(tx, key)?,
    };
    let verdict = judge(step, row.as_ref(), now);
    let did = verdict.action();
    if let Some(r) = &row {
        match did {
            Action::Changed => {
                let changed = match *step {
                    Step::Promote { binding, .. } => tx.bind(r.id, binding)?,
                    Step::Record { result, .. } => tx.set_callback(r.id, result)?,
                    Step::Consume { .. } => {
                        let ended = matches!(verdict, Verdict::Burn(_))
                            .then_some(rules::SERVER_MISMATCH_REASON);
                        tx.mark_consumed(r.id, r.status, ended)?
                    }
                };
                changed_one(changed, "guarded update")?;
            }
            Action::Deleted => changed_one(tx.delete(r.id, r.status)?, "expired-row delete")?,
            Action::Nothing => {}
        }
    }
    Ok(Outcome::Done(Stepped { now, did, row }))
}

/// Runs one [`Step`] on the store's engine.
pub(crate) type RunStep<'r> = &'r mut dyn FnMut(&Step<'_>) -> Result<Stepped>;

/// The tripwire between an engine's step and the rules: what the step wrote must be what the
/// verdict on the row it returned asks for. A statement that drifted from the rules is caught
/// here (after its commit: the guarantee is the model test of each engine's statements).
fn agrees(verdict: &Verdict, did: Action, what: &'static str) -> Result<()> {
    let wanted = verdict.action();
    if wanted == did {
        return Ok(());
    }
    Err(Error::Storage(StorageError::message(format!(
        "the {what} step wrote {did:?} where the flow rules ask for {wanted:?}"
    ))))
}

/// A guarded update or delete must change exactly the one row it names: the row was read in
/// this transaction, so anything else means the engine let another writer change it.
fn changed_one(n: u64, what: &'static str) -> Result<()> {
    if n == 1 {
        Ok(())
    } else {
        Err(Error::row_changed(what))
    }
}

/// Deletes an expired row read in this transaction; the caller commits and reports
/// [`Error::Expired`].
fn expire<T>(tx: &mut dyn FlowTx, row: Option<FlowRow>) -> Result<Outcome<T>> {
    if let Some(row) = row {
        changed_one(tx.delete(row.id, row.status)?, "expired-row delete")?;
    }
    Ok(Outcome::CommitThenFail(Error::Expired))
}

/// `begin` and `save_code_verifier`: inserts the row; returns its creation and expiry times.
pub(crate) fn insert(
    tx: &mut dyn FlowTx,
    flow: &NewFlow<'_>,
    ttl_ms: i64,
) -> Result<Outcome<(i64, i64)>> {
    let now = tx.now();
    let expires_at = validate::expiry(now, ttl_ms)?;
    tx.insert(flow, now, expires_at)?;
    Ok(Outcome::Done((now, expires_at)))
}

/// `promote`: binds the unbound row found by its challenge to `binding`'s state, in one
/// [`Step`].
pub(crate) fn promote(
    run: RunStep<'_>,
    server_id: &str,
    client_id: Option<&str>,
    challenge: &str,
    binding: &Binding<'_>,
) -> Result<FlowInfo> {
    let step = Step::Promote {
        challenge,
        server_id,
        client_id,
        binding,
    };
    let s = run(&step)?;
    check_by_challenge(&s.row, challenge)?;
    let verdict = judge(&step, s.row.as_ref(), s.now);
    agrees(&verdict, s.did, "promote")?;
    match verdict {
        Verdict::Proceed | Verdict::AlreadyDone => {}
        Verdict::Expire => return Err(Error::Expired),
        Verdict::Refuse(e) | Verdict::Burn(e) => return Err(e),
    }
    let Some(mut row) = s.row else {
        return Err(Error::UnknownChallenge);
    };
    if s.did == Action::Nothing {
        // Already bound to this state: the row as it is.
        return Ok(row.info());
    }
    row.status = Status::Pending;
    let keep = |new: Option<&str>, old: &mut Option<String>| {
        if let Some(v) = new {
            *old = Some(v.to_owned());
        }
    };
    keep(binding.redirect_uri, &mut row.redirect_uri);
    keep(binding.resource, &mut row.resource);
    keep(binding.scope, &mut row.scope);
    keep(binding.issuer, &mut row.issuer);
    row.require_issuer = binding.require_issuer;
    Ok(row.info())
}

/// What a read-only look at a flow found.
pub(crate) enum Looked<T> {
    /// The flow, as the rule allows it to be seen.
    Found(T),
    /// The flow has expired: remove it with [`remove_expired`] in a write transaction.
    Expired,
}

/// `check`, read-only: would a consume succeed now? `looked` is the clock and the row of `key`
/// as the engine read them (`Engine::by_state`), as for [`recorded_code`] and [`peek`].
pub(crate) fn check(looked: (i64, Option<FlowRow>), key: &[u8; 32]) -> Result<Looked<FlowInfo>> {
    let (now, row) = looked;
    check_by_state(&row, key)?;
    match rules::check(snapshot(&row).as_ref(), now) {
        Verdict::Proceed | Verdict::AlreadyDone => row
            .map(|r| Looked::Found(r.info()))
            .ok_or(Error::UnknownState),
        Verdict::Expire => Ok(Looked::Expired),
        Verdict::Refuse(e) | Verdict::Burn(e) => Err(e),
    }
}

/// After a read found the flow of `key` expired: in a write transaction, looks again, and
/// deletes it if the rule still says expired (then reports [`Error::Expired`]); otherwise
/// reports what the rule says now.
pub(crate) fn remove_expired(tx: &mut dyn FlowTx, key: &[u8; 32]) -> Result<Outcome<FlowInfo>> {
    let now = tx.now();
    let row = find_by_state(tx, key)?;
    match rules::check(snapshot(&row).as_ref(), now) {
        Verdict::Expire => expire(tx, row),
        Verdict::Proceed | Verdict::AlreadyDone => row
            .map(|r| Outcome::Done(r.info()))
            .ok_or(Error::UnknownState),
        Verdict::Refuse(e) | Verdict::Burn(e) => Err(e),
    }
}

/// A recorded code, and the issuer its callback's `iss` was checked against (if required).
pub(crate) type CodeAndIssuer = (AuthorizationCode, Option<String>);

/// `recorded_code`, read-only: the code a callback listener recorded on the live flow of
/// `key`, without consuming it (`None` while it is pending, or when it failed), with the
/// issuer its callback's `iss` was checked against when the flow requires one. The flow must
/// be one a consume would take, by the same rule as [`check`].
#[cfg_attr(not(feature = "listener"), allow(dead_code))]
pub(crate) fn recorded_code(
    looked: (i64, Option<FlowRow>),
    key: &[u8; 32],
) -> Result<Looked<Option<CodeAndIssuer>>> {
    let (now, row) = looked;
    check_by_state(&row, key)?;
    match rules::check(snapshot(&row).as_ref(), now) {
        Verdict::Proceed | Verdict::AlreadyDone => {
            let row = row.ok_or(Error::UnknownState)?;
            // With `require_issuer` a listener recorded the code only from a callback whose
            // `iss` equalled the flow's issuer.
            let checked = row.issuer.filter(|_| row.require_issuer);
            Ok(Looked::Found(row.auth_code.map(|code| {
                (AuthorizationCode::from_stored(code), checked)
            })))
        }
        Verdict::Expire => Ok(Looked::Expired),
        Verdict::Refuse(e) | Verdict::Burn(e) => Err(e),
    }
}

/// A live flow of one server as an SDK's `load` sees it, without consuming it.
#[cfg_attr(not(feature = "rmcp"), allow(dead_code))]
pub(crate) struct Peeked {
    pub info: FlowInfo,
    pub verifier: CodeVerifier,
    pub require_issuer: bool,
    pub client_created_at: Option<i64>,
}

/// `peek`, read-only: the flow of `key` while a consume for `server_id` would hand out its
/// verifier; `None` when it would not (unknown, consumed, failed, another server's).
pub(crate) fn peek(
    looked: (i64, Option<FlowRow>),
    key: &[u8; 32],
    server_id: &str,
) -> Result<Looked<Option<Peeked>>> {
    let (now, row) = looked;
    check_by_state(&row, key)?;
    match rules::peek(snapshot(&row).as_ref(), now, server_id) {
        Verdict::Expire => return Ok(Looked::Expired),
        Verdict::Proceed | Verdict::AlreadyDone => {}
        Verdict::Refuse(_) | Verdict::Burn(_) => return Ok(Looked::Found(None)),
    }
    let Some(row) = row else {
        return Ok(Looked::Found(None));
    };
    let info = row.info();
    Ok(Looked::Found(row.verifier.map(|v| Peeked {
        info,
        verifier: CodeVerifier::from_stored(v),
        require_issuer: row.require_issuer,
        client_created_at: row.client_created_at,
    })))
}

/// `consume` / `consume_for`: validates the flow of `key`, wipes its secrets and its
/// discovery state, leaves a tombstone and hands them out, in one [`Step`].
pub(crate) fn consume(
    run: RunStep<'_>,
    key: &[u8; 32],
    expect_server: Option<&str>,
) -> Result<ConsumedFlow> {
    let step = Step::Consume { key, expect_server };
    let s = run(&step)?;
    check_by_state(&s.row, key)?;
    let verdict = judge(&step, s.row.as_ref(), s.now);
    agrees(&verdict, s.did, "consume")?;
    consumed(verdict, s.row, s.now)
}

/// What a consume hands out once the verdict on `row` was carried out.
fn consumed(verdict: Verdict, row: Option<FlowRow>, now: i64) -> Result<ConsumedFlow> {
    match verdict {
        Verdict::Refuse(e) | Verdict::Burn(e) => return Err(e),
        Verdict::Expire => return Err(Error::Expired),
        Verdict::Proceed | Verdict::AlreadyDone => {}
    }
    let Some(row) = row else {
        return Err(Error::UnknownState);
    };
    if row.status == Status::Failed {
        return Err(Error::AuthorizationFailed {
            error: row.error.clone().unwrap_or_default(),
            description: row.error_description.clone(),
        });
    }
    let info = row.info();
    let verifier = row
        .verifier
        .map(CodeVerifier::from_stored)
        .ok_or_else(|| Error::corrupt("a live flows row has no code_verifier"))?;
    Ok(ConsumedFlow {
        verifier,
        code: row.auth_code.map(AuthorizationCode::from_stored),
        info,
        consumed_at: now,
        discovery: row.discovery.map(Discovery),
    })
}

/// `record_callback`: the one rule for what a callback does to a flow, carried out in one
/// [`Step`] (two when the flow's redirect URI is spelled in a way the engine's list of
/// accepted spellings missed).
pub(crate) fn record_callback(
    run: RunStep<'_>,
    key: &[u8; 32],
    result: &CallbackResult<'_>,
    expect: &Expectations<'_>,
) -> Result<FlowInfo> {
    let spellings = rules::redirect_spellings(expect);
    let mut s = run(&Step::Record {
        key,
        result,
        expect,
        redirects: spellings.as_deref(),
    })?;
    check_by_state(&s.row, key)?;
    let mut verdict = rules::record_callback(snapshot(&s.row).as_ref(), s.now, expect);
    if spellings.is_some() && s.did == Action::Nothing && verdict.action() == Action::Changed {
        // The rule accepts the stored spelling that the list missed: the same step again,
        // accepting exactly that spelling (the step re-checks everything else).
        if let Some(stored) = s.row.as_ref().and_then(|r| r.redirect_uri.clone()) {
            let exact = [stored];
            s = run(&Step::Record {
                key,
                result,
                expect,
                redirects: Some(&exact),
            })?;
            check_by_state(&s.row, key)?;
            verdict = rules::record_callback(snapshot(&s.row).as_ref(), s.now, expect);
        }
    }
    agrees(&verdict, s.did, "callback")?;
    match verdict {
        Verdict::Proceed | Verdict::AlreadyDone => {}
        Verdict::Expire => return Err(Error::Expired),
        Verdict::Refuse(e) | Verdict::Burn(e) => return Err(e),
    }
    let Some(row) = s.row else {
        return Err(Error::UnknownState);
    };
    let mut info = row.info();
    info.status = result.status();
    Ok(info)
}

mod many;
mod pending;

pub(crate) use many::{
    finished_chunk, invalidate, list, removable, stats, sweep_batch, waiting_at,
};
pub(crate) use pending::{consume_pending, pending_discovery, pending_verifier, read_pending};

#[cfg(test)]
mod tests;
