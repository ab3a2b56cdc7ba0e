//! The loopback callback (the core's `LoopbackCallback`): `attach`, `redirectUri`, `wait`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::{AsyncTask, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use oauth_state_store as core;

use crate::error::to_js;
use crate::options::AttachOptions;
use crate::run::{long, short, Job};
use crate::store::Store;
use crate::values::ConsumedFlow;

/// How long one core wait runs before the cancel flag is looked at again: the longest a
/// cancelled wait keeps its thread.
const SLICE: Duration = Duration::from_millis(500);

/// Serves (or shares) the callback port for a store, and waits for flows' callbacks.
#[napi]
pub struct LoopbackCallback {
    inner: Arc<core::LoopbackCallback>,
    /// The store the callback was attached to: `wait` consumes the flow on it.
    store: core::Store,
}

/// A flag that stops a pending `wait` (the package sets it from an `AbortSignal`).
#[napi]
pub struct WaitCancel {
    flag: Arc<AtomicBool>,
}

#[napi]
impl WaitCancel {
    /// A flag not set yet.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        WaitCancel {
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Stops the waits that were given this flag, within half a second.
    #[napi]
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }
}

/// The port is not free yet: the system keeps connections another program left on it.
#[napi(object)]
pub struct PortDelay {
    /// The callback port.
    pub port: u32,
    /// About how long until the system frees it, in milliseconds (0 once that time has
    /// passed; the listener keeps trying until it has the port).
    pub free_in_ms: u32,
    /// One line for the user: what is going on and what to do if the browser gets there first.
    pub message: String,
}

/// What a `wait` ended with: the consumed flow, or nothing when it was cancelled first.
#[napi(object)]
pub struct WaitOutcome {
    /// The consumed flow; absent when the wait was cancelled before a callback came.
    pub flow: Option<ConsumedFlow>,
}

#[napi]
impl LoopbackCallback {
    /// Binds the port, or shares it with a listener on the same store file; anything else on
    /// the port rejects at once with `PORT_IN_USE`.
    #[napi(ts_return_type = "Promise<LoopbackCallback>")]
    pub fn attach(
        store: &Store,
        options: Option<AttachOptions>,
    ) -> napi::Result<AsyncTask<Job<LoopbackCallback>>> {
        let options = options.unwrap_or_default().to_core()?;
        let store = store.inner.clone();
        Ok(short(move || {
            core::LoopbackCallback::attach(&store, options)
                .map(|c| LoopbackCallback {
                    inner: Arc::new(c),
                    store,
                })
                .map_err(|e| to_js(&e))
        }))
    }

    /// The port callbacks arrive on.
    #[napi(getter)]
    pub fn port(&self) -> u32 {
        u32::from(self.inner.port())
    }

    /// The redirect URI to begin flows with.
    #[napi(getter)]
    pub fn redirect_uri(&self) -> String {
        self.inner.redirect_uri()
    }

    /// What to print next to "open this URL" for a browser that cannot reach this machine
    /// (the core's `LoopbackCallback::paste_hint`).
    #[napi(getter)]
    pub fn paste_hint(&self) -> String {
        core::LoopbackCallback::paste_hint().to_owned()
    }

    /// Whether this process's own listener serves the port right now.
    #[napi(getter)]
    pub fn holds_port(&self) -> bool {
        self.inner.holds_port()
    }

    /// While the port is kept only by connections another program left behind (the core's
    /// `LoopbackCallback::port_delay`): the port, about how long until the system frees it,
    /// and the one line to show the user; `null` otherwise.
    #[napi(getter)]
    pub fn port_delay(&self) -> Option<PortDelay> {
        self.inner.port_delay().map(|d| PortDelay {
            port: u32::from(d.port()),
            free_in_ms: u32::try_from(d.free_in().as_millis()).unwrap_or(u32::MAX),
            message: d.to_string(),
        })
    }

    /// Waits (off the JavaScript thread) for the callback of the flow `state` names, in any
    /// process's listener, then consumes it; the flow's `iss` is the issuer the listener
    /// checked the callback's `iss` against, when the flow requires one. `cancel` stops it
    /// between two half-second slices.
    #[napi(ts_return_type = "Promise<WaitOutcome>")]
    pub fn wait<'env>(
        &self,
        env: &'env Env,
        state: String,
        timeout_ms: u32,
        cancel: &WaitCancel,
    ) -> napi::Result<PromiseRaw<'env, WaitOutcome>> {
        let callback = Arc::clone(&self.inner);
        let store = self.store.clone();
        let flag = Arc::clone(&cancel.flag);
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        long(env, move || {
            let flow = match wait_sliced(&callback, &state, timeout, &flag) {
                Ok(Some(recorded)) => {
                    // The code is recorded and the flow still whole: one consume, exactly
                    // once across processes, takes it with its verifier and discovery state.
                    store.consume(&state).map(|consumed| {
                        let mut flow = ConsumedFlow::from(consumed);
                        flow.iss = recorded.issuer;
                        Some(flow)
                    })
                }
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            flow.map(|flow| WaitOutcome { flow }).map_err(|e| to_js(&e))
        })
    }
}

/// The core's wait for the recorded code in slices, so that a cancel is seen. `Ok(None)`:
/// cancelled first.
fn wait_sliced(
    callback: &core::LoopbackCallback,
    state: &str,
    timeout: Duration,
    cancel: &AtomicBool,
) -> core::Result<Option<core::RecordedCode>> {
    let deadline = Instant::now() + timeout;
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match callback.wait_for_code(state, left.min(SLICE)) {
            Err(core::Error::CallbackTimeout { .. }) if Instant::now() < deadline => continue,
            Err(core::Error::CallbackTimeout { .. }) => {
                return Err(core::Error::CallbackTimeout { waited: timeout })
            }
            other => return other.map(Some),
        }
    }
}
