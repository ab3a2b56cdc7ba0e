//! The flow operations: begin, save a verifier, promote, check, record a callback, consume.
//!
//! Each write is one `BEGIN IMMEDIATE` transaction that looks the row up, asks
//! [`rules`](crate::rules) what to do, and does it. Constraints, not prior reads, decide
//! "duplicate".

use rusqlite::{params, OptionalExtension, Row, Transaction};

use crate::error::{Error, Result};
use crate::flow::{BeginRequest, ConsumedFlow, Flow, FlowInfo, Status};
use crate::pkce::{self, AuthorizationCode, CodeChallenge, CodeVerifier, State};
use crate::rules::{self, Snapshot, Verdict};
use crate::store::Store;
use crate::validate;

pub(crate) const INSERT_FLOW: &str =
    "INSERT INTO flows (state_key, code_challenge, code_verifier, \
     server_id, client_id, redirect_uri, issuer, resource, scope, status, created_at, expires_at, \
     require_issuer, client_created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// The columns [`FlowRow::from_row`] reads, in order.
const FLOW_COLUMNS: &str = "id, status, expires_at, server_id, client_id, redirect_uri, issuer, \
     resource, scope, created_at, code_verifier, auth_code, error, error_description, state_key, \
     code_challenge";

pub(crate) const SELECT_BY_STATE: &str =
    "SELECT id, status, expires_at, server_id, client_id, redirect_uri, \
     issuer, resource, scope, created_at, code_verifier, auth_code, error, error_description, \
     state_key, code_challenge FROM flows \
     WHERE id = (SELECT id FROM flows WHERE state_key = ?1)";

pub(crate) const SELECT_BY_CHALLENGE: &str =
    "SELECT id, status, expires_at, server_id, client_id, \
     redirect_uri, issuer, resource, scope, created_at, code_verifier, auth_code, error, \
     error_description, state_key, code_challenge FROM flows \
     WHERE id = (SELECT id FROM flows WHERE code_challenge = ?1)";

/// Expired as [`rules`] says: past its expiry, or created after `?2` (the clock went back).
pub(crate) const DELETE_EXPIRED_BY_ID: &str =
    "DELETE FROM flows WHERE id = ?1 AND (expires_at <= ?2 OR created_at > ?2)";

pub(crate) const BIND: &str = "UPDATE flows SET state_key = ?2, status = 'pending', \
     redirect_uri = coalesce(?3, redirect_uri), resource = coalesce(?4, resource), \
     scope = coalesce(?5, scope) WHERE id = ?1 AND status = 'unbound'";

pub(crate) const CONSUME: &str = "UPDATE flows SET status = 'consumed', code_verifier = NULL, \
     auth_code = NULL, consumed_at = ?2, error = coalesce(?3, error) WHERE id = ?1";

pub(crate) const COMPLETE: &str =
    "UPDATE flows SET status = 'completed', auth_code = ?2 WHERE id = ?1 AND status = 'pending'";

pub(crate) const FAIL: &str =
    "UPDATE flows SET status = 'failed', code_verifier = NULL, error = ?2, \
     error_description = ?3 WHERE id = ?1 AND status = 'pending'";

/// A whole row as read inside a transaction.
struct FlowRow {
    id: i64,
    status: Status,
    expires_at: i64,
    server_id: String,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    issuer: Option<String>,
    resource: Option<String>,
    scope: Option<String>,
    created_at: i64,
    verifier: Option<String>,
    auth_code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    state_key: Option<Vec<u8>>,
    code_challenge: String,
}

impl FlowRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<FlowRow> {
        let status: String = r.get(1)?;
        let status = Status::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                "unknown status".into(),
            )
        })?;
        Ok(FlowRow {
            id: r.get(0)?,
            status,
            expires_at: r.get(2)?,
            server_id: r.get(3)?,
            client_id: r.get(4)?,
            redirect_uri: r.get(5)?,
            issuer: r.get(6)?,
            resource: r.get(7)?,
            scope: r.get(8)?,
            created_at: r.get(9)?,
            verifier: r.get(10)?,
            auth_code: r.get(11)?,
            error: r.get(12)?,
            error_description: r.get(13)?,
            state_key: r.get(14)?,
            code_challenge: r.get(15)?,
        })
    }

    fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            status: self.status,
            expires_at: self.expires_at,
            server_id: &self.server_id,
            client_id: self.client_id.as_deref(),
            created_at: self.created_at,
        }
    }

    /// A stored verifier must hash to the stored challenge (it did when it was written).
    fn check_verifier(&self) -> Result<()> {
        match &self.verifier {
            Some(v) if !verifier_matches(v, &self.code_challenge) => Err(corrupt_row(
                "the code_verifier no longer matches its code_challenge",
            )),
            _ => Ok(()),
        }
    }

    fn info(&self) -> FlowInfo {
        FlowInfo {
            server_id: self.server_id.clone(),
            client_id: self.client_id.clone(),
            status: self.status,
            redirect_uri: self.redirect_uri.clone(),
            issuer: self.issuer.clone(),
            resource: self.resource.clone(),
            scope: self.scope.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

fn find(tx: &Transaction<'_>, sql: &str, key: &dyn rusqlite::ToSql) -> Result<Option<FlowRow>> {
    debug_assert!(sql.contains(FLOW_COLUMNS));
    Ok(tx
        .prepare_cached(sql)?
        .query_row([key], FlowRow::from_row)
        .optional()?)
}

/// The flow whose state key is `key`. The row must really carry that key and a verifier that
/// matches its challenge: SQLite follows a damaged index entry to whatever row it names, and
/// cannot see a changed byte inside a value, so without these checks a damaged file could
/// hand out another flow's verifier or a wrong one. (The statement finds the id through the
/// index and reads the row by id: read straight through the index, `state_key` would come
/// from the index itself and could not contradict it.)
fn find_by_state(tx: &Transaction<'_>, key: &[u8; 32]) -> Result<Option<FlowRow>> {
    let row = find(tx, SELECT_BY_STATE, &&key[..])?;
    if let Some(r) = &row {
        if r.state_key.as_deref() != Some(&key[..]) {
            return Err(corrupt_row("the state-key index points at another flow"));
        }
        r.check_verifier()?;
    }
    Ok(row)
}

/// The flow whose code challenge is `challenge`, checked like [`find_by_state`]'s.
fn find_by_challenge(tx: &Transaction<'_>, challenge: &str) -> Result<Option<FlowRow>> {
    let row = find(tx, SELECT_BY_CHALLENGE, &challenge)?;
    if let Some(r) = &row {
        if r.code_challenge != challenge {
            return Err(corrupt_row(
                "the code-challenge index points at another flow",
            ));
        }
        r.check_verifier()?;
    }
    Ok(row)
}

/// [`Error::Corrupt`] for a row that contradicts itself or its index; `what` never holds a
/// value from the row.
pub(crate) fn corrupt_row(what: &'static str) -> Error {
    Error::Corrupt {
        source: rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!("flows row damaged: {what}")),
        ),
    }
}

/// Whether a stored verifier still hashes to the stored challenge.
pub(crate) fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    CodeVerifier::from_stored(verifier.to_owned())
        .challenge()
        .as_str()
        == challenge
}

/// Deletes an expired row; the caller commits and reports [`Error::Expired`].
fn delete_expired(tx: &Transaction<'_>, id: i64, now: i64) -> Result<()> {
    tx.prepare_cached(DELETE_EXPIRED_BY_ID)?
        .execute(params![id, now])?;
    Ok(())
}

/// Maps a UNIQUE violation to the duplicate it means; anything else stays as it is.
fn unique_violation(e: rusqlite::Error) -> Error {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
        let msg = e.to_string();
        if msg.contains("flows.state_key") {
            return Error::DuplicateState;
        }
        if msg.contains("flows.code_challenge") {
            return Error::DuplicateChallenge;
        }
    }
    Error::Sqlite(e)
}

/// The first and only value of a query parameter; a repeated one is refused.
fn single_param(url: &url::Url, name: &'static str) -> Result<Option<String>> {
    let mut values = url
        .query_pairs()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned());
    let first = values.next();
    if values.next().is_some() {
        return Err(Error::InvalidInput {
            field: name,
            reason: "appears more than once in the authorization URL",
        });
    }
    Ok(first)
}

impl Store {
    /// Begins a flow: one transaction stores a `pending` row with a fresh state and S256 PKCE
    /// pair (or the ones the request carries).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad field (nothing stored), [`Error::DuplicateState`] or
    /// [`Error::DuplicateChallenge`] for a caller-supplied state or verifier already in use,
    /// and the storage errors ([`Error::Busy`], [`Error::StorageFull`], ...).
    pub fn begin(&self, request: BeginRequest) -> Result<Flow> {
        request.validate()?;
        let ttl = validate::ttl(request.ttl.unwrap_or(self.default_ttl()))?;
        let BeginRequest {
            server_id,
            client_id,
            redirect_uri,
            issuer,
            resource,
            scope,
            state,
            verifier,
            require_issuer,
            client_created_at,
            ..
        } = request;
        let state = state.unwrap_or_else(State::generate);
        let verifier = verifier.unwrap_or_else(CodeVerifier::generate);
        let challenge = verifier.challenge();
        let (created_at, expires_at) = self.write(|tx, now| {
            let expires_at = validate::expiry(now, ttl)?;
            tx.prepare_cached(INSERT_FLOW)?
                .execute(params![
                    &state.key()[..],
                    challenge.as_str(),
                    verifier.secret(),
                    server_id,
                    client_id,
                    redirect_uri,
                    issuer,
                    resource,
                    scope,
                    Status::Pending.as_str(),
                    now,
                    expires_at,
                    require_issuer,
                    client_created_at
                ])
                .map_err(unique_violation)?;
            Ok(Ok((now, expires_at)))
        })?;
        Ok(Flow {
            state,
            challenge,
            info: FlowInfo {
                server_id,
                client_id,
                status: Status::Pending,
                redirect_uri,
                issuer,
                resource,
                scope,
                created_at,
                expires_at,
            },
        })
    }

    /// The MCP SDK path: stores an `unbound` verifier, found later by its challenge, before the
    /// state is known. Returns the S256 challenge. Bind it with [`Store::promote`]; if it never
    /// is, it expires after the store's TTL and [`Store::sweep`] removes it.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`server_id`, `client_id`, `code_verifier`),
    /// [`Error::DuplicateChallenge`] if this verifier was already saved, storage errors.
    pub fn save_code_verifier(
        &self,
        server_id: &str,
        client_id: Option<&str>,
        verifier: &str,
    ) -> Result<CodeChallenge> {
        validate::server_and_client(server_id, client_id)?;
        pkce::validate_verifier(verifier)?;
        let ttl = validate::ttl(self.default_ttl())?;
        let challenge = CodeVerifier::new(verifier)?.challenge();
        self.write(|tx, now| {
            let expires_at = validate::expiry(now, ttl)?;
            tx.prepare_cached(INSERT_FLOW)?
                .execute(params![
                    None::<&[u8]>,
                    challenge.as_str(),
                    verifier,
                    server_id,
                    client_id,
                    None::<&str>,
                    None::<&str>,
                    None::<&str>,
                    None::<&str>,
                    Status::Unbound.as_str(),
                    now,
                    expires_at,
                    false,
                    None::<i64>
                ])
                .map_err(unique_violation)?;
            Ok(Ok(()))
        })?;
        Ok(challenge)
    }

    /// Binds a saved verifier to the state of the authorization URL built from it: reads
    /// `state` and `code_challenge` (and `redirect_uri`, `resource`, `scope`) from the URL, and
    /// in one transaction checks the server and client and makes the row `pending`. Promoting
    /// the same URL twice is a no-op.
    ///
    /// # Errors
    /// [`Error::MissingParameter`] (the unbound row stays and later expires),
    /// [`Error::InvalidInput`] (bad URL, repeated parameter, `code_challenge_method` other
    /// than S256, `client_id` in the URL differing from the argument),
    /// [`Error::UnknownChallenge`], [`Error::ServerMismatch`] (saved for another server or
    /// client; nothing bound), [`Error::Expired`] (the row is removed),
    /// [`Error::ChallengeAlreadyBound`], [`Error::DuplicateState`], storage errors.
    pub fn promote(
        &self,
        server_id: &str,
        client_id: Option<&str>,
        authorization_url: &str,
    ) -> Result<FlowInfo> {
        validate::server_and_client(server_id, client_id)?;
        if authorization_url.len() > 16 * 1024 {
            return Err(Error::invalid("authorization_url", "is longer than 16 KiB"));
        }
        let url = url::Url::parse(authorization_url)
            .map_err(|e| Error::invalid("authorization_url", validate::parse_reason(e)))?;
        let state =
            single_param(&url, "state")?.ok_or(Error::MissingParameter { name: "state" })?;
        let challenge = single_param(&url, "code_challenge")?.ok_or(Error::MissingParameter {
            name: "code_challenge",
        })?;
        pkce::validate_state(&state)?;
        pkce::validate_challenge(&challenge)?;
        if single_param(&url, "code_challenge_method")?.is_some_and(|m| m != "S256") {
            return Err(Error::invalid("code_challenge_method", "must be S256"));
        }
        if let (Some(url_client), Some(c)) = (single_param(&url, "client_id")?, client_id) {
            if url_client != c {
                return Err(Error::invalid(
                    "client_id",
                    "differs from the client_id in the authorization URL",
                ));
            }
        }
        let redirect_uri = single_param(&url, "redirect_uri")?;
        if let Some(r) = &redirect_uri {
            validate::redirect_uri(r)?;
        }
        let resource = single_param(&url, "resource")?;
        if let Some(r) = &resource {
            validate::url("resource", r, false)?;
        }
        let scope = single_param(&url, "scope")?;
        if let Some(s) = &scope {
            validate::scope(s)?;
        }
        let key = pkce::state_key(&state);
        self.write(|tx, now| {
            let Some(mut row) = find_by_challenge(tx, &challenge)? else {
                return Err(Error::UnknownChallenge);
            };
            let same_state = row.state_key.as_deref() == Some(&key[..]);
            match rules::promote(Some(&row.snapshot()), now, server_id, client_id, same_state) {
                Verdict::Proceed => {}
                Verdict::AlreadyDone => return Ok(Ok(row.info())),
                Verdict::Expire => {
                    delete_expired(tx, row.id, now)?;
                    return Ok(Err(Error::Expired));
                }
                Verdict::Refuse(e) | Verdict::Burn(e) => return Err(e),
            }
            tx.prepare_cached(BIND)?
                .execute(params![row.id, &key[..], redirect_uri, resource, scope])
                .map_err(unique_violation)?;
            row.status = Status::Pending;
            row.redirect_uri = redirect_uri.or(row.redirect_uri.take());
            row.resource = resource.or(row.resource.take());
            row.scope = scope.or(row.scope.take());
            Ok(Ok(row.info()))
        })
    }

    /// Validates a state without consuming it: would [`Store::consume`] succeed now? An expired
    /// flow is removed and reported expired.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`), [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyConsumed`], storage errors.
    pub fn check(&self, state: &str) -> Result<FlowInfo> {
        pkce::validate_state(state)?;
        let key = pkce::state_key(state);
        let found = self.read(|tx, now| {
            let row = find_by_state(tx, &key)?;
            Ok(
                match rules::check(row.as_ref().map(FlowRow::snapshot).as_ref(), now) {
                    Verdict::Proceed | Verdict::AlreadyDone => Ok(row.map(|r| r.info())),
                    Verdict::Expire => Err(row.map_or(-1, |r| r.id)),
                    Verdict::Refuse(e) | Verdict::Burn(e) => return Err(e),
                },
            )
        })?;
        match found {
            Ok(Some(info)) => Ok(info),
            Ok(None) => Err(Error::UnknownState),
            // The delete re-checks the expiry, so running it in its own transaction is safe.
            Err(id) => self.write_wiping(|tx, now| {
                delete_expired(tx, id, now)?;
                Ok(Err(Error::Expired))
            }),
        }
    }

    /// Consumes the flow a callback's `state` names: in one transaction validates it, wipes the
    /// verifier and code from the row, leaves a tombstone, and returns them. Exactly one caller
    /// across all processes gets `Ok` for a state.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`), [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyConsumed`] (a replay, distinct from unknown),
    /// [`Error::AuthorizationFailed`] (the callback carried an error; the flow is now consumed),
    /// storage errors.
    pub fn consume(&self, state: &str) -> Result<ConsumedFlow> {
        self.consume_inner(state, None)
    }

    /// [`Store::consume`], but only for a flow begun for `server_id`. For another server's
    /// flow the flow is ended (verifier wiped, nothing returned): a callback for the wrong
    /// server means the response cannot be trusted (mix-up).
    ///
    /// # Errors
    /// Those of [`Store::consume`], plus [`Error::ServerMismatch`] and
    /// [`Error::InvalidInput`] (`server_id`).
    pub fn consume_for(&self, state: &str, server_id: &str) -> Result<ConsumedFlow> {
        validate::id("server_id", server_id)?;
        self.consume_inner(state, Some(server_id))
    }

    fn consume_inner(&self, state: &str, expect: Option<&str>) -> Result<ConsumedFlow> {
        pkce::validate_state(state)?;
        let key = pkce::state_key(state);
        self.write_wiping(|tx, now| {
            let row = find_by_state(tx, &key)?;
            let (burn, result) =
                match rules::consume(row.as_ref().map(FlowRow::snapshot).as_ref(), now, expect) {
                    Verdict::Refuse(e) => return Err(e),
                    Verdict::Expire => {
                        delete_expired(tx, row.map_or(-1, |r| r.id), now)?;
                        return Ok(Err(Error::Expired));
                    }
                    Verdict::Burn(e) => (Some("server_mismatch"), Err(e)),
                    Verdict::Proceed | Verdict::AlreadyDone => (None, Ok(())),
                };
            let Some(row) = row else {
                return Err(Error::UnknownState);
            };
            tx.prepare_cached(CONSUME)?
                .execute(params![row.id, now, burn])?;
            if let Err(e) = result {
                return Ok(Err(e));
            }
            if row.status == Status::Failed {
                return Ok(Err(Error::AuthorizationFailed {
                    error: row.error.clone().unwrap_or_default(),
                    description: row.error_description.clone(),
                }));
            }
            let info = row.info();
            let verifier = row
                .verifier
                .map(CodeVerifier::from_stored)
                .ok_or_else(missing_verifier)?;
            Ok(Ok(ConsumedFlow {
                verifier,
                code: row.auth_code.map(AuthorizationCode::from_stored),
                info,
                consumed_at: now,
            }))
        })
    }

    /// Records the `code` a callback delivered on a pending flow (`completed`), for the process
    /// that began it to [`consume`](Store::consume). The callback listener's half of a flow.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`, `code`), [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyCompleted`], [`Error::AlreadyConsumed`], storage errors. A forged or
    /// unknown state changes nothing.
    pub fn complete(&self, state: &str, code: &str) -> Result<FlowInfo> {
        pkce::validate_state(state)?;
        pkce::validate_code(code)?;
        self.record(state, Status::Completed, |tx, id| {
            tx.prepare_cached(COMPLETE)?.execute(params![id, code])?;
            Ok(())
        })
    }

    /// Ends a pending flow as `failed` with the error a callback delivered
    /// (`?error=access_denied&error_description=...`). The state is validated first: a forged
    /// or unknown state changes nothing. The verifier is wiped.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`, `error`, `error_description`), and those of
    /// [`Store::complete`].
    pub fn reject(&self, state: &str, error: &str, description: Option<&str>) -> Result<FlowInfo> {
        pkce::validate_state(state)?;
        validate::error_code("error", error, 256)?;
        if let Some(d) = description {
            validate::error_code("error_description", d, 1024)?;
        }
        self.record(state, Status::Failed, |tx, id| {
            tx.prepare_cached(FAIL)?
                .execute(params![id, error, description])?;
            Ok(())
        })
    }

    fn record(
        &self,
        state: &str,
        to: Status,
        update: impl FnOnce(&Transaction<'_>, i64) -> Result<()>,
    ) -> Result<FlowInfo> {
        let key = pkce::state_key(state);
        let write = |tx: &Transaction<'_>, now| {
            let row = find_by_state(tx, &key)?;
            match rules::record_callback(row.as_ref().map(FlowRow::snapshot).as_ref(), now) {
                Verdict::Proceed | Verdict::AlreadyDone => {}
                Verdict::Expire => {
                    delete_expired(tx, row.map_or(-1, |r| r.id), now)?;
                    return Ok(Err(Error::Expired));
                }
                Verdict::Refuse(e) | Verdict::Burn(e) => return Err(e),
            }
            let Some(row) = row else {
                return Err(Error::UnknownState);
            };
            update(tx, row.id)?;
            let mut info = row.info();
            info.status = to;
            Ok(Ok(info))
        };
        // A failure wipes the verifier; a code recorded wipes nothing.
        if to == Status::Failed {
            self.write_wiping(write)
        } else {
            self.write(write)
        }
    }
}

fn missing_verifier() -> Error {
    Error::Corrupt {
        source: rusqlite::Error::InvalidColumnType(
            10,
            "code_verifier".into(),
            rusqlite::types::Type::Null,
        ),
    }
}
