//! The waiting side: [`LoopbackCallback`] claims or shares the callback port, and waits for a
//! flow's row to be completed or failed, cheaply, then consumes it. While it waits, this
//! process listens on the port too where the system allows it (a standby beside the holder),
//! so that the holder's exit refuses no callback. A port that connections left by another
//! program keep from being bound is taken in the background once the system frees it.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::claim::{claim, Claimed, Want};
use super::later::{self, PortDelay, Retry};
use super::local;
use super::options::{ListenerOptions, MAX_DURATION};
use super::port;
use super::server::CallbackListener;
use crate::error::{Error, PortHolder, Result};
use crate::flow::{ConsumedFlow, Status};
use crate::pkce::{self, AuthorizationCode};
use crate::store::Store;

/// The longest a finished wait lets this process's listener finish writing its answers
/// before it returns.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Pauses between reads of a waited-for row: 5 ms, growing by half each time, up to `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Self {
        Backoff {
            next: Duration::from_millis(5).min(max),
            max,
        }
    }

    pub(crate) fn pause(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 3 / 2).min(self.max);
        now
    }
}

/// The callback port for this process: held by its own listener, or shared with another
/// process's listener on the same store file.
///
/// ```no_run
/// use std::time::Duration;
/// use oauth_state_store::{BeginRequest, ListenerOptions, LoopbackCallback, Store};
/// let store = Store::open("/home/me/.local/state/oauth-state-store/flows.db")?;
/// let callback = LoopbackCallback::attach(&store, ListenerOptions::default().port(33418))?;
/// let flow = store.begin(
///     BeginRequest::new("https://mcp.example.com")
///         .client_id("my-client")
///         .redirect_uri(callback.redirect_uri()),
/// )?;
/// let url = flow.authorization_url("https://auth.example.com/authorize")?;
/// // ... open `url` in the browser ...
/// let done = callback.wait(flow.state().secret(), Duration::from_secs(300))?;
/// let code = done.code.expect("recorded by a listener");
/// // exchange `code` and `done.verifier` at the token endpoint
/// # Ok::<(), oauth_state_store::Error>(())
/// ```
pub struct LoopbackCallback {
    /// Tries to take the port in the background while lingering connections keep it from
    /// this process. First, so that it stops before the rest is dropped.
    taker: Mutex<Option<Retry>>,
    attached: Arc<Attached>,
}

/// What the waits and the background taker share.
struct Attached {
    store: Store,
    options: ListenerOptions,
    held: Mutex<Option<CallbackListener>>,
    /// While connections a program left behind keep the port from this process: when the
    /// system should free it.
    free_at: Mutex<Option<Instant>>,
}

impl fmt::Debug for LoopbackCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopbackCallback")
            .field("port", &self.attached.options.port)
            .field("holds_port", &self.holds_port())
            .field("port_delay", &self.port_delay())
            .finish_non_exhaustive()
    }
}

/// See [`LoopbackCallback::paste_hint`].
const PASTE_HINT: &str = "If the browser cannot reach this machine, it ends on a page that \
does not load: copy the address it ends on, run `oauth-state-store deliver -` here, paste the \
address and press Enter.";

impl LoopbackCallback {
    /// Makes sure someone serves the callback port for `store`: binds it (starting a
    /// [`CallbackListener`]), or, when a listener on the same store file already holds it,
    /// shares that one. With port 0 it binds a free port.
    ///
    /// A port that nothing listens on, but that connections left by a program which listened
    /// there keep the system from letting anyone bind (TIME_WAIT, up to 60 s on Linux, after
    /// a program that did not set `SO_REUSEADDR`), is not in use: `attach` succeeds, and the
    /// listener takes the port in the background as soon as the system allows.
    /// [`port_delay`](Self::port_delay) says so meanwhile, in one line for the user.
    ///
    /// # Errors
    /// [`Error::PortInUse`] at once when the port is held by anything else (a listener on
    /// another store file, or another program); [`Error::InvalidInput`] (`callback_path`);
    /// [`Error::Listener`].
    pub fn attach(store: &Store, mut options: ListenerOptions) -> Result<LoopbackCallback> {
        options.validate()?;
        let (held, lingering) = match claim(store, &options, Want::Share)? {
            Claimed::Listening(listener) => (Some(listener), None),
            Claimed::Shared | Claimed::Unsettled => (None, None),
            Claimed::Lingering(free_in) => (None, Some(free_in)),
        };
        if let Some(listener) = &held {
            // Port 0: the one the system chose.
            options.port = listener.port();
        }
        let callback = LoopbackCallback {
            taker: Mutex::new(None),
            attached: Arc::new(Attached {
                store: store.clone(),
                options,
                held: Mutex::new(held),
                free_at: Mutex::new(None),
            }),
        };
        if let Some(free_in) = lingering {
            callback.take_when_free(free_in)?;
        }
        Ok(callback)
    }

    /// The port callbacks arrive on.
    pub fn port(&self) -> u16 {
        self.attached.options.port
    }

    /// The redirect URI to begin flows with: `http://127.0.0.1:<port><path>`.
    pub fn redirect_uri(&self) -> String {
        let options = &self.attached.options;
        options.redirect_uri_for(options.port)
    }

    /// `Some` while nobody serves the port yet because connections a program left behind
    /// keep the system from letting it be bound: the listener takes the port as soon as the
    /// system frees it, and until then a browser that arrives finds nobody (its reload, or
    /// paste-back, delivers the callback later). Show the [`PortDelay`] (its `Display` is one
    /// line) to the user next to the authorization URL. `None` once the port is served, or
    /// when there was no delay.
    ///
    /// ```no_run
    /// use oauth_state_store::{ListenerOptions, LoopbackCallback, Store};
    /// let store = Store::open_default()?;
    /// let callback = LoopbackCallback::attach(&store, ListenerOptions::default().port(33418))?;
    /// if let Some(delay) = callback.port_delay() {
    ///     eprintln!("{delay}");
    /// }
    /// # Ok::<(), oauth_state_store::Error>(())
    /// ```
    pub fn port_delay(&self) -> Option<PortDelay> {
        let free_at = (*lock(&self.attached.free_at))?;
        Some(PortDelay::new(self.port(), free_at))
    }

    /// Notes that lingering connections keep the port from this process for about
    /// `free_in`, and makes sure the background taker runs.
    fn take_when_free(&self, free_in: Duration) -> Result<()> {
        self.attached.lingering(Some(free_in));
        let mut taker = lock(&self.taker);
        if taker.as_ref().is_some_and(Retry::is_running) {
            return Ok(());
        }
        let attached = Arc::clone(&self.attached);
        let retry = Retry::spawn(later::PAUSE, move || attached.take_port());
        *taker = Some(retry.map_err(|source| Error::Listener {
            port: self.port(),
            action: "start its threads",
            source,
        })?);
        Ok(())
    }

    /// A short text for a tool to print next to "open this URL": what its user does when the
    /// browser cannot reach this machine (a remote shell, a container), and so never reaches
    /// this listener. It names no secret.
    ///
    /// ```
    /// let hint = oauth_state_store::LoopbackCallback::paste_hint();
    /// assert!(hint.contains("oauth-state-store deliver -"));
    /// ```
    pub fn paste_hint() -> &'static str {
        PASTE_HINT
    }

    /// Whether this process's own listener serves the port right now (`false`: another
    /// process's listener on the same store does, or nobody until the next wait takes it).
    /// While a wait is open this process may serve the port beside the holder; once its waits
    /// end it keeps doing so only if the holder went away meanwhile.
    pub fn holds_port(&self) -> bool {
        lock(&self.attached.held)
            .as_ref()
            .is_some_and(CallbackListener::is_running)
    }

    /// Waits until the flow named by `state` has received its callback (in any process's
    /// listener), then [`Store::consume`]s it and returns the code and verifier. While it
    /// waits it serves the port too where the system allows it (Linux), or re-checks the port
    /// and takes it over if the process that held it went away. When it returns, the page of
    /// a callback this process answered has been written. A port still kept by connections
    /// another program left behind ([`port_delay`](Self::port_delay)) is not an error: the
    /// wait goes on while the listener takes the port once it is free.
    ///
    /// Waiting is cheap: the row is read with a backoff up to
    /// [`ListenerOptions::poll_max`], and a callback recorded by this process wakes it at once.
    ///
    /// # Errors
    /// [`Error::CallbackTimeout`] (the flow stays pending; wait again),
    /// [`Error::AuthorizationFailed`] (the callback carried an error; the flow is consumed),
    /// [`Error::PortInUse`] (another program took the port meanwhile), [`Error::Listener`],
    /// and those of [`Store::consume`]: [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyConsumed`], storage errors.
    pub fn wait(&self, state: &str, timeout: Duration) -> Result<ConsumedFlow> {
        self.wait_then(state, timeout, |store| store.consume(state))
    }

    /// Waits like [`wait`](Self::wait), but **does not consume** the flow: returns the code a
    /// listener recorded and leaves the flow `completed`, verifier and all, for the one
    /// consume that follows. This is the wait for an SDK that consumes the flow itself, such
    /// as `rmcp`'s `AuthorizationManager` over `RmcpStateStore` (feature `rmcp`):
    /// its `exchange_code_for_token(code, state)` loads the flow, consumes it in `delete`
    /// (exactly once across all processes) and only then sends the token request.
    ///
    /// A flow whose callback carried an error is consumed here (there is nothing left to
    /// exchange) and reported as [`Error::AuthorizationFailed`].
    ///
    /// # Errors
    /// [`Error::CallbackTimeout`] (the flow stays pending; wait again),
    /// [`Error::AuthorizationFailed`], [`Error::PortInUse`], [`Error::Listener`],
    /// [`Error::InvalidInput`] (`state`), [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyConsumed`], [`Error::Corrupt`], storage errors.
    pub fn wait_for_code(&self, state: &str, timeout: Duration) -> Result<RecordedCode> {
        self.wait_then(state, timeout, |store| {
            match store.recorded_code(state)? {
                Some((code, issuer)) => Ok(RecordedCode { code, issuer }),
                // Failed: the consume reports the callback's error and ends the flow.
                None => store.consume(state).and_then(|_| {
                    Err(Error::corrupt(
                        "a flow the listener finished has no recorded code",
                    ))
                }),
            }
        })
    }

    /// Waits until the flow of `state` is finished (completed or failed), then runs `then`.
    fn wait_then<T>(
        &self,
        state: &str,
        timeout: Duration,
        then: impl FnOnce(&Store) -> Result<T>,
    ) -> Result<T> {
        pkce::validate_state(state)?;
        let result = {
            let _open = local::OpenWait::new(self.port());
            self.wait_open(state, timeout)
                .and_then(|()| then(&self.attached.store))
        };
        self.settle();
        result
    }

    /// Waits, with the port served, until the flow of `state` is completed or failed.
    fn wait_open(&self, state: &str, timeout: Duration) -> Result<()> {
        let (store, options) = (&self.attached.store, &self.attached.options);
        let port = options.port;
        let start = Instant::now();
        // A flow lives at most a day; a longer wait cannot succeed later than that.
        let deadline = start + timeout.min(MAX_DURATION);
        let mut backoff = Backoff::new(options.poll_max);
        let mut recheck_at = start;
        // Claims of an unsettled port in a row: retried soon, but the row is read in between,
        // so that a flow completed meanwhile ends the wait instead of a claim.
        let mut unsettled = 0;
        loop {
            let seen = local::recorded(port);
            let info = store.check(state)?;
            if matches!(info.status, Status::Completed | Status::Failed) {
                // This process's listener may still be writing the browser's page: a program
                // that exits once this returns must not cut it off.
                local::await_answers(port, ANSWER_WAIT);
                return Ok(());
            }
            if Instant::now() >= recheck_at {
                let next = if self.ensure_served(unsettled + 1 == CLAIM_ATTEMPTS)? {
                    unsettled = 0;
                    options.recheck
                } else {
                    unsettled += 1;
                    if unsettled == CLAIM_ATTEMPTS {
                        // Accepted and dropped, again and again: not a listener of ours.
                        return Err(Error::PortInUse {
                            port,
                            holder: PortHolder::Other,
                        });
                    }
                    port::UNSETTLED_PAUSE
                };
                recheck_at = Instant::now() + next;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::CallbackTimeout { waited: timeout });
            }
            let pause = backoff
                .pause()
                .min(deadline - now)
                .min(recheck_at.saturating_duration_since(now));
            local::sleep_unless_recorded(port, seen, pause);
        }
    }

    /// Someone must serve the port: our running listener, a listener of this process or of
    /// another on the same store. Where it can, this process listens beside the latter. A
    /// port kept by connections another program left behind is left to the background taker.
    /// `Ok(false)`: the port is unsettled (its holder is going away); ask again shortly.
    fn ensure_served(&self, last_resort: bool) -> Result<bool> {
        let attached = &*self.attached;
        let mut held = lock(&attached.held);
        if let Some(ours) = held.as_ref().filter(|l| l.is_running()) {
            // A standby whose holder exited becomes the holder.
            ours.promote();
            return Ok(true);
        }
        if lock(&self.taker).as_ref().is_some_and(Retry::is_running) {
            // The port comes later: the background taker is on it.
            return Ok(true);
        }
        // Ours stopped (idle) or never was: drop it first, which frees the port.
        *held = None;
        match claim(
            &attached.store,
            &attached.options,
            Want::Standby { last_resort },
        )? {
            Claimed::Listening(listener) => *held = Some(listener),
            Claimed::Shared => {}
            Claimed::Unsettled => return Ok(false),
            Claimed::Lingering(free_in) => {
                drop(held);
                self.take_when_free(free_in)?;
                return Ok(true);
            }
        }
        attached.lingering(None);
        Ok(true)
    }

    /// After a wait: a standby stops once no wait of this process is open on the port. One
    /// that became the holder meanwhile (its holder went away, seen at a re-check or when it
    /// recorded a callback) stays. Not promoted here: a wait that ends after the holder of
    /// the moment exited would take a port no flow of its own needs.
    fn settle(&self) {
        if local::open_waits(self.port()) > 0 {
            return;
        }
        let mut held = lock(&self.attached.held);
        let done = held.as_ref().is_some_and(CallbackListener::is_standby);
        let stopped = if done { held.take() } else { None };
        drop(held);
        drop(stopped);
    }
}

impl Attached {
    /// Records how long lingering connections keep the port from this process (`None`: they
    /// no longer do).
    fn lingering(&self, free_in: Option<Duration>) {
        *lock(&self.free_at) = free_in.map(|d| Instant::now() + d);
    }

    /// One attempt of the background taker: takes the port if the system lets it, or finds
    /// a listener on the same store serving it. Returns whether to try again. Any other
    /// outcome (the port taken by another program meanwhile, a socket error) ends the
    /// attempts too: the next wait meets it and reports it.
    fn take_port(&self) -> bool {
        // Until a little past the kernel's estimate, a refused bind only means "not yet".
        let estimate = *lock(&self.free_at);
        let trusted = estimate.is_some_and(|at| Instant::now() < at + later::TRUST_ESTIMATE);
        if trusted && port::bind_refused(self.options.port) {
            return true;
        }
        let mut held = lock(&self.held);
        if !held.as_ref().is_some_and(CallbackListener::is_running) {
            *held = None;
            match claim(&self.store, &self.options, Want::Share) {
                Ok(Claimed::Listening(listener)) => *held = Some(listener),
                Ok(Claimed::Lingering(free_in)) => {
                    self.lingering(Some(free_in));
                    return true;
                }
                Ok(Claimed::Shared | Claimed::Unsettled) | Err(_) => {}
            }
        }
        self.lingering(None);
        false
    }
}

/// What [`LoopbackCallback::wait_for_code`] returns: the code of a flow a listener completed,
/// which stays `completed` until its one consume. Its `Debug` leaves the code out.
#[derive(Debug)]
#[non_exhaustive]
pub struct RecordedCode {
    /// The code, for the token request.
    pub code: AuthorizationCode,
    /// The issuer the callback's `iss` (RFC 9207) was checked against, when the flow requires
    /// one (`require_issuer`, as `rmcp` sets it for a server that promises `iss`): the listener
    /// refused a callback without it or with another. Hand it to
    /// `exchange_code_for_token_with_issuer`. `None` when the flow requires none.
    pub issuer: Option<String>,
}

/// How many times in a row a port may be unsettled before it counts as held by another
/// program (as in [`port::claim`]).
const CLAIM_ATTEMPTS: usize = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_reads_rarely_once_settled() {
        let mut b = Backoff::new(Duration::from_millis(250));
        let mut slept = Duration::ZERO;
        let mut reads = 0;
        while slept < Duration::from_secs(10) {
            slept += b.pause();
            reads += 1;
        }
        // Ten seconds of waiting cost ~50 reads, not thousands.
        assert!(reads <= 60, "{reads} reads");
        assert_eq!(b.pause(), Duration::from_millis(250));
    }
}
