//! The waiting side: [`LoopbackCallback`] claims or shares the callback port, and waits for a
//! flow's row to be completed or failed, cheaply, then consumes it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::port::{self, Probe};
use super::server::CallbackListener;
use super::{ListenerOptions, MAX_DURATION};
use crate::error::{Error, Result};
use crate::flow::{ConsumedFlow, Status};
use crate::pkce;
use crate::store::Store;

/// Open waits of this process, by port: a listener does not stop while one is open.
static OPEN_WAITS: Mutex<BTreeMap<u16, usize>> = Mutex::new(BTreeMap::new());

/// Bumped whenever a listener of this process records a callback, so that waits in this process
/// wake at once instead of at their next poll.
static RECORDED: Mutex<u64> = Mutex::new(0);
static RECORDED_CHANGED: Condvar = Condvar::new();

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How many waits of this process are open on `port`.
pub(crate) fn open_waits(port: u16) -> usize {
    lock(&OPEN_WAITS).get(&port).copied().unwrap_or(0)
}

/// Wakes this process's waits: a callback was just recorded.
pub(crate) fn notify_recorded() {
    *lock(&RECORDED) += 1;
    RECORDED_CHANGED.notify_all();
}

fn recorded() -> u64 {
    *lock(&RECORDED)
}

/// Sleeps for `pause`, or less if a callback is recorded in this process meanwhile.
fn sleep_unless_recorded(seen: u64, pause: Duration) {
    let guard = lock(&RECORDED);
    let _ = RECORDED_CHANGED
        .wait_timeout_while(guard, pause, |g| *g == seen)
        .unwrap_or_else(|p| p.into_inner());
}

/// Registers an open wait on a port for as long as it lives.
pub(super) struct OpenWait(u16);

impl OpenWait {
    pub(super) fn new(port: u16) -> Self {
        *lock(&OPEN_WAITS).entry(port).or_insert(0) += 1;
        OpenWait(port)
    }
}

impl Drop for OpenWait {
    fn drop(&mut self) {
        let mut waits = lock(&OPEN_WAITS);
        if let Some(n) = waits.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                waits.remove(&self.0);
            }
        }
    }
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
    store: Store,
    options: ListenerOptions,
    held: Mutex<Option<CallbackListener>>,
}

impl fmt::Debug for LoopbackCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopbackCallback")
            .field("port", &self.options.port)
            .field("holds_port", &self.holds_port())
            .finish_non_exhaustive()
    }
}

impl LoopbackCallback {
    /// Makes sure someone serves the callback port for `store`: binds it (starting a
    /// [`CallbackListener`]), or, when a listener on the same store file already holds it,
    /// shares that one. With port 0 it binds a free port.
    ///
    /// # Errors
    /// [`Error::PortInUse`] at once when the port is held by anything else (a listener on
    /// another store file, or another program); [`Error::InvalidInput`] (`callback_path`);
    /// [`Error::Listener`].
    pub fn attach(store: &Store, mut options: ListenerOptions) -> Result<LoopbackCallback> {
        options.validate()?;
        let held = if options.port == 0 {
            let socket = port::try_bind(0)?.ok_or_else(|| Error::Listener {
                port: 0,
                action: "bind a free port",
                source: std::io::ErrorKind::AddrInUse.into(),
            })?;
            let listener = CallbackListener::serve(store, options.clone(), socket)?;
            options.port = listener.port();
            Some(listener)
        } else {
            claim(store, &options)?
        };
        Ok(LoopbackCallback {
            store: store.clone(),
            options,
            held: Mutex::new(held),
        })
    }

    /// The port callbacks arrive on.
    pub fn port(&self) -> u16 {
        self.options.port
    }

    /// The redirect URI to begin flows with: `http://127.0.0.1:<port><path>`.
    pub fn redirect_uri(&self) -> String {
        self.options.redirect_uri_for(self.options.port)
    }

    /// Whether this process's own listener serves the port right now (`false`: another
    /// process's listener on the same store does, or nobody until the next wait takes it).
    pub fn holds_port(&self) -> bool {
        lock(&self.held)
            .as_ref()
            .is_some_and(CallbackListener::is_running)
    }

    /// Waits until the flow named by `state` has received its callback (in any process's
    /// listener), then [`Store::consume`]s it and returns the code and verifier. While it
    /// waits it re-checks the port, and takes it over if the process that held it went away.
    ///
    /// Waiting is cheap: the row is read with a backoff up to
    /// [`ListenerOptions::poll_max`], and a callback recorded by this process wakes it at once.
    ///
    /// # Errors
    /// [`Error::CallbackTimeout`] (the flow stays pending; wait again),
    /// [`Error::AuthorizationFailed`] (the callback carried an error; the flow is consumed),
    /// [`Error::PortInUse`] (another program took the port meanwhile), and those of
    /// [`Store::consume`]: [`Error::UnknownState`], [`Error::Expired`],
    /// [`Error::AlreadyConsumed`], storage errors.
    pub fn wait(&self, state: &str, timeout: Duration) -> Result<ConsumedFlow> {
        pkce::validate_state(state)?;
        let _open = OpenWait::new(self.options.port);
        let start = Instant::now();
        // A flow lives at most a day; a longer wait cannot succeed later than that.
        let deadline = start + timeout.min(MAX_DURATION);
        let mut backoff = Backoff::new(self.options.poll_max);
        let mut recheck_at = start;
        loop {
            let seen = recorded();
            let info = self.store.check(state)?;
            if matches!(info.status, Status::Completed | Status::Failed) {
                return self.store.consume(state);
            }
            if Instant::now() >= recheck_at {
                self.ensure_served()?;
                recheck_at = Instant::now() + self.options.recheck;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::CallbackTimeout { waited: timeout });
            }
            let pause = backoff
                .pause()
                .min(deadline - now)
                .min(recheck_at.saturating_duration_since(now));
            sleep_unless_recorded(seen, pause);
        }
    }

    /// Someone must serve the port: our running listener, or a listener on the same store.
    /// Otherwise claim it.
    fn ensure_served(&self) -> Result<()> {
        let mut held = lock(&self.held);
        if held.as_ref().is_some_and(CallbackListener::is_running) {
            return Ok(());
        }
        // Ours stopped (idle) or never was: drop it first, which frees the port.
        *held = None;
        *held = claim(&self.store, &self.options)?;
        Ok(())
    }
}

/// Binds the port, or shares it with a listener on the same store; anything else holding it
/// is [`Error::PortInUse`].
fn claim(store: &Store, options: &ListenerOptions) -> Result<Option<CallbackListener>> {
    let port = options.port;
    match port::bind_or_probe(port, store.store_id(), options.probe_timeout)? {
        Ok(socket) => CallbackListener::serve(store, options.clone(), socket).map(Some),
        Err(Probe::SameStore) => Ok(None),
        Err(other) => Err(Error::PortInUse {
            port,
            holder: other.holder(),
        }),
    }
}

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

    #[test]
    fn open_waits_are_counted_per_port() {
        let port = 1;
        assert_eq!(open_waits(port), 0);
        let a = OpenWait::new(port);
        let b = OpenWait::new(port);
        assert_eq!(open_waits(port), 2);
        drop(a);
        assert_eq!(open_waits(port), 1);
        drop(b);
        assert_eq!(open_waits(port), 0);
    }
}
