//! Callbacks recorded on a flow: a code or an error, from the listener, a pasted URL or the
//! caller; the recorded code read back, and the SDK's look at a flow before it consumes it.

use crate::error::{Error, Result};
use crate::flow::ops::{self, CodeAndIssuer, Looked, Peeked};
use crate::flow::row::CallbackResult;
use crate::flow::rules::Expectations;
use crate::flow::tx::Wipe;
use crate::flow::FlowInfo;
use crate::pkce;
use crate::store::Store;
use crate::validate;

impl Store {
    /// Records the `code` a callback delivered on a pending flow (`completed`), for the process
    /// that began it to [`consume`](Store::consume). The callback listener's half of a flow.
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, Status};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(BeginRequest::new("srv"))?;
    /// let info = store.complete(flow.state().secret(), "code-from-the-server")?;
    /// assert_eq!(info.status, Status::Completed);
    /// let consumed = store.consume(flow.state().secret())?;
    /// assert_eq!(consumed.code.unwrap().secret(), "code-from-the-server");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`, `code`), [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyCompleted`], [`Error::AlreadyConsumed`], storage errors. A forged or
    /// unknown state changes nothing.
    pub fn complete(&self, state: &str, code: &str) -> Result<FlowInfo> {
        self.record_callback(state, CallbackResult::Code(code), &Expectations::default())
    }

    /// Ends a pending flow as `failed` with the error a callback delivered
    /// (`?error=access_denied&error_description=...`). The state is validated first: a forged
    /// or unknown state changes nothing. The verifier is wiped.
    ///
    /// ```
    /// use oauth_state_store::{BeginRequest, Error, Status};
    /// # use oauth_state_store::Store;
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path().join("flows.db"))?;
    /// let flow = store.begin(BeginRequest::new("srv"))?;
    /// let info = store.reject(flow.state().secret(), "access_denied", Some("The user said no"))?;
    /// assert_eq!(info.status, Status::Failed);
    /// let consumed = store.consume(flow.state().secret());
    /// assert!(matches!(consumed, Err(Error::AuthorizationFailed { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`, `error`, `error_description`), and those of
    /// [`Store::complete`].
    pub fn reject(&self, state: &str, error: &str, description: Option<&str>) -> Result<FlowInfo> {
        let result = CallbackResult::Error { error, description };
        self.record_callback(state, result, &Expectations::default())
    }

    /// The one rule for what a callback does to a flow, in one transaction: the state must
    /// name a pending, unexpired flow that expects a callback where this one arrived and from
    /// this issuer (`expect`); then the code is recorded (`completed`) or the error
    /// (`failed`, the verifier wiped). The loopback listener, [`Store::complete`] and
    /// [`Store::reject`] all come here. A refused callback changes nothing (an expired flow is
    /// removed).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`, `code`, `error`, `error_description`),
    /// [`Error::UnknownState`], [`Error::Expired`], [`Error::AlreadyCompleted`],
    /// [`Error::AlreadyConsumed`], [`Error::ServerMismatch`] (`redirect_uri`: the flow expects
    /// its callback elsewhere; `iss`: from another issuer), storage errors.
    pub(crate) fn record_callback(
        &self,
        state: &str,
        result: CallbackResult<'_>,
        expect: &Expectations<'_>,
    ) -> Result<FlowInfo> {
        pkce::validate_state(state)?;
        match result {
            CallbackResult::Code(code) => pkce::validate_code(code)?,
            CallbackResult::Error { error, description } => {
                validate::error_code("error", error, validate::MAX_ERROR_LEN)?;
                if let Some(d) = description {
                    validate::error_code(
                        "error_description",
                        d,
                        validate::MAX_ERROR_DESCRIPTION_LEN,
                    )?;
                }
            }
        }
        let key = pkce::state_key(state);
        // A failure wipes the verifier; a code recorded wipes nothing.
        let wipe = match result {
            CallbackResult::Code(_) => Wipe::Nothing,
            CallbackResult::Error { .. } => Wipe::Secret,
        };
        ops::record_callback(
            &mut |step| self.engine().step(wipe, step),
            &key,
            &result,
            expect,
        )
    }

    /// The code a callback listener recorded on the flow of `state`, **without** consuming
    /// it: `Some` once the flow is `completed`, `None` while it is pending or when it failed.
    /// With the code, the issuer the callback's `iss` was checked against, when the flow
    /// requires one (`require_issuer`).
    /// The flow stays as it is, for a later [`Store::consume`] (or an SDK's `delete`) to take.
    /// An expired flow is removed and reported expired.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`), [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyConsumed`], [`Error::Corrupt`], storage errors.
    #[cfg_attr(not(feature = "listener"), allow(dead_code))]
    pub(crate) fn recorded_code(&self, state: &str) -> Result<Option<CodeAndIssuer>> {
        pkce::validate_state(state)?;
        let key = pkce::state_key(state);
        match ops::recorded_code(self.engine().by_state(&key)?, &key)? {
            Looked::Found(code) => Ok(code),
            Looked::Expired => self
                .engine()
                .write(Wipe::Secret, |tx| ops::remove_expired(tx, &key))
                .map(|_| None),
        }
    }

    /// An SDK's `load`: the live flow of `state` for `server_id` with its verifier, without
    /// consuming it; `None` when a consume for that server would not hand the verifier out.
    /// An expired flow is removed. The damage checks are those of a consume.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`state`), [`Error::Corrupt`], storage errors.
    #[cfg_attr(not(feature = "rmcp"), allow(dead_code))]
    pub(crate) fn peek(&self, state: &str, server_id: &str) -> Result<Option<Peeked>> {
        pkce::validate_state(state)?;
        let key = pkce::state_key(state);
        match ops::peek(self.engine().by_state(&key)?, &key, server_id)? {
            Looked::Found(found) => Ok(found),
            Looked::Expired => match self
                .engine()
                .write(Wipe::Secret, |tx| ops::remove_expired(tx, &key))
            {
                Ok(_) => Ok(None),
                Err(
                    Error::Expired
                    | Error::UnknownState
                    | Error::AlreadyConsumed
                    | Error::FlowEnded { .. }
                    | Error::ServerMismatch { .. },
                ) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }
}
