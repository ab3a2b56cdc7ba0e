//! The [`CallbackListener`]: accepts connections on `127.0.0.1:<port>`, gives each a slot
//! ([`Slots`]) and a thread, routes the callback and the probe, writes the answer, and only
//! then wakes this process's waits. It stops itself when no flow in the file needs it.

use std::fmt;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use super::callback;
use super::http::{self, ReadFailure};
use super::local;
use super::options::ListenerOptions;
use super::port::{self, Bound, Claim, Primary};
use super::probe;
use super::slots::{Slots, Ticket};
use crate::callback::pages;
use crate::error::{Error, PortHolder, Result};
use crate::store::Store;

/// How long a stopping listener lets connections that have not sent their request head yet
/// finish sending it before it closes them.
const HEAD_GRACE: Duration = Duration::from_millis(100);

/// How long a connection may wait for its request head before a full listener may close it
/// to make room (never longer than the request timeout).
const MIN_HEAD_WAIT: Duration = Duration::from_secs(1);

/// The longest a stopping listener waits for the answers it is writing.
const ANSWER_LIMIT: Duration = Duration::from_secs(5);

/// What a listener is to its port.
#[derive(Debug)]
pub(crate) enum Role {
    /// It serves until idle (see [`ListenerOptions::idle_stop`]); it holds the port's
    /// [`Primary`] token when it could get it.
    Primary {
        /// Held for as long as the listener serves; the kernel frees it with the process.
        _token: Option<Primary>,
    },
    /// It serves beside the primary while this process waits, so that no callback is refused
    /// if the primary exits; it stops once those waits end, unless it became the primary.
    Standby,
}

/// A running callback listener on `127.0.0.1:<port>`.
///
/// It answers `GET <path>?state=..&code=..` (or `&error=..`) for any flow in the store's
/// file, whichever process began it, and `GET` [`PROBE_PATH`](crate::PROBE_PATH) with the
/// file's `store_id`. It stops when dropped, when [`stop`](Self::stop) is called, or by itself
/// once idle (see [`ListenerOptions::idle_stop`]). Most callers want
/// [`LoopbackCallback`](super::LoopbackCallback), which also shares a port held by another
/// process's listener on the same file.
pub struct CallbackListener {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    store: Store,
    port: u16,
    options: ListenerOptions,
    redirect_uris: [String; 2],
    stopping: AtomicBool,
    /// Wakes the idle thread.
    wake: (Mutex<()>, Condvar),
    /// A byte written here wakes the accept thread's `poll`.
    wake_accept: UnixStream,
    slots: Arc<Slots>,
    /// Connections being turned away with a `503`, each on its own short-lived thread.
    turning_away: Arc<Slots>,
    role: Mutex<Role>,
}

impl fmt::Debug for CallbackListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackListener")
            .field("port", &self.shared.port)
            .field("path", &self.shared.options.path)
            .field("running", &self.is_running())
            .field("standby", &self.is_standby())
            .finish_non_exhaustive()
    }
}

impl CallbackListener {
    /// Binds `127.0.0.1:<options.port>` and starts serving callbacks for `store`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`callback_path`), [`Error::PortInUse`] when the port is taken
    /// (its [`PortHolder`](crate::PortHolder) says by what, after asking it; a listener on the
    /// same store is [`PortHolder::SameStore`]: share it with
    /// [`LoopbackCallback`](super::LoopbackCallback) instead), [`Error::PortNotYetFree`] when
    /// nothing listens there but connections a program left behind keep the system from
    /// letting the port be bound yet, [`Error::Listener`] when the socket cannot be bound or
    /// the threads cannot start.
    pub fn bind(store: &Store, options: ListenerOptions) -> Result<CallbackListener> {
        options.validate()?;
        let port = options.port;
        if let Some(holder) = served_here(port, store) {
            return Err(Error::PortInUse { port, holder });
        }
        match port::claim(port, store.store_id(), options.probe_timeout)? {
            Claim::Alone(bound, primary) => {
                Self::serve(store, options, bound, Role::Primary { _token: primary })
            }
            Claim::Joinable(..) => Err(Error::PortInUse {
                port,
                holder: PortHolder::SameStore,
            }),
            Claim::Held(probe) => Err(Error::PortInUse {
                port,
                holder: probe.holder(),
            }),
            Claim::Lingering(free_in) => Err(Error::PortNotYetFree { port, free_in }),
        }
    }

    /// Starts serving on a bound socket.
    ///
    /// # Errors
    /// [`Error::PortInUse`] when a listener of this process already serves the port,
    /// [`Error::Listener`].
    pub(crate) fn serve(
        store: &Store,
        options: ListenerOptions,
        bound: Bound,
        role: Role,
    ) -> Result<CallbackListener> {
        let port = bound.port();
        let failed = |action, source| Error::Listener {
            port,
            action,
            source,
        };
        let Some(serving) = local::Serving::claim(port, store.store_id()) else {
            let holder = served_here(port, store).unwrap_or(PortHolder::SameStore);
            return Err(Error::PortInUse { port, holder });
        };
        let (wake_rx, wake_tx) =
            UnixStream::pair().map_err(|e| failed("make its wake-up pipe", e))?;
        let socket = bound.listen()?;
        socket
            .set_nonblocking(true)
            .map_err(|e| failed("set its socket non-blocking", e))?;
        let shared = Arc::new(Shared {
            store: store.clone(),
            port,
            redirect_uris: [
                options.redirect_uri_for(port),
                options.localhost_uri_for(port),
            ],
            slots: Slots::new(
                options.max_connections,
                options.request_timeout.min(MIN_HEAD_WAIT),
            ),
            turning_away: Slots::new(options.max_connections, Duration::MAX),
            options,
            stopping: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
            wake_accept: wake_tx,
            role: Mutex::new(role),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("oauth-callback-accept".into())
                .spawn(move || {
                    accept_loop(&shared, &socket, &wake_rx);
                    // The port is free (of us) before this process stops counting as serving it.
                    drop(socket);
                    drop(serving);
                })
                .map_err(|e| failed("start its threads", e))?
        };
        let mut listener = CallbackListener {
            shared: Arc::clone(&shared),
            threads: vec![accept],
        };
        let janitor = thread::Builder::new()
            .name("oauth-callback-idle".into())
            .spawn(move || idle_loop(&shared))
            .map_err(|e| failed("start its threads", e))?;
        listener.threads.push(janitor);
        Ok(listener)
    }

    /// The port it listens on (the one chosen, when asked for port 0).
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// The redirect URI to put in flows: `http://127.0.0.1:<port><path>`.
    pub fn redirect_uri(&self) -> &str {
        &self.shared.redirect_uris[0]
    }

    /// Whether it still serves (it stops by itself once idle).
    pub fn is_running(&self) -> bool {
        !self.shared.stopping.load(Ordering::SeqCst)
    }

    /// Stops serving and frees the port before returning. Answers being written finish first
    /// (for at most a few seconds); connections that have not sent a request yet are closed.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Whether it serves only while this process waits ([`Role::Standby`]).
    pub(crate) fn is_standby(&self) -> bool {
        matches!(*self.shared.role(), Role::Standby)
    }

    /// A standby becomes the port's primary when the token is free (the primary exited).
    /// Returns whether it is the primary now.
    pub(crate) fn promote(&self) -> bool {
        self.shared.promote()
    }

    fn shutdown(&mut self) {
        self.shared.request_stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let slots = &self.shared.slots;
        if !slots.wait_empty(HEAD_GRACE) {
            slots.close_waiting();
            let limit = self.shared.options.request_timeout.min(ANSWER_LIMIT);
            slots.wait_empty(limit);
        }
        self.shared.turning_away.wait_empty(HEAD_GRACE);
    }
}

impl Drop for CallbackListener {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What holds `port` for this process already, if a listener of this process serves it.
fn served_here(port: u16, store: &Store) -> Option<PortHolder> {
    let id = local::served(port)?;
    Some(if id == store.store_id() {
        PortHolder::SameStore
    } else {
        PortHolder::OtherStore
    })
}

impl Shared {
    fn role(&self) -> MutexGuard<'_, Role> {
        self.role.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// See [`CallbackListener::promote`].
    fn promote(&self) -> bool {
        let mut role = self.role();
        if matches!(*role, Role::Standby) {
            match Primary::take(self.port) {
                Some(token) => {
                    *role = Role::Primary {
                        _token: Some(token),
                    }
                }
                None => return false,
            }
        }
        true
    }

    /// Marks the listener stopping and wakes both of its threads.
    fn request_stop(&self) {
        {
            // Under the idle thread's lock, so that it cannot miss the wake-up.
            let _guard = self.wake.0.lock().unwrap_or_else(|p| p.into_inner());
            if self.stopping.swap(true, Ordering::SeqCst) {
                return;
            }
            self.wake.1.notify_all();
        }
        let _ = (&self.wake_accept).write(&[1]);
    }

    /// Idle: no wait of this process is open on our port, and (for the primary) nothing
    /// pending in the file expects our redirect URI. A storage error counts as "not idle".
    fn idle(&self) -> bool {
        if local::open_waits(self.port) > 0 {
            return false;
        }
        if matches!(*self.role(), Role::Standby) {
            return true;
        }
        let [a, b] = &self.redirect_uris;
        let pending = self.store.waiting_at(&[a, b]);
        matches!(pending, Ok(false))
    }
}

fn accept_loop(shared: &Arc<Shared>, socket: &TcpListener, wake: &UnixStream) {
    while !shared.stopping.load(Ordering::SeqCst) {
        let mut fds = [
            PollFd::new(socket, PollFlags::IN),
            PollFd::new(wake, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
        accept_ready(shared, socket);
    }
    // The kernel resets connections still queued on a socket when it closes: answer them.
    accept_ready(shared, socket);
}

/// Accepts every connection the kernel has queued.
fn accept_ready(shared: &Arc<Shared>, socket: &TcpListener) {
    loop {
        match socket.accept() {
            Ok((stream, _)) => admit(shared, stream),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => {
                // Out of descriptors or similar: do not spin.
                thread::sleep(Duration::from_millis(10));
                return;
            }
        }
    }
}

/// Gives a connection a slot and a thread, or, when no slot can be freed, a `503` that still
/// says who holds the port.
fn admit(shared: &Arc<Shared>, stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let Some(ticket) = shared.slots.admit(&stream) else {
        turn_away(shared, stream);
        return;
    };
    let worker = Arc::clone(shared);
    // Should the thread not start, the closure is dropped: the slot is freed, the connection
    // closed.
    let _ = thread::Builder::new()
        .name("oauth-callback-conn".into())
        .spawn(move || serve_connection(&worker, stream, &ticket));
}

/// Answers `503` on a short-lived thread of its own, so that the accept thread never waits
/// for a client to read. Past as many of those as there are slots, the answer is written
/// without waiting for the client at all.
fn turn_away(shared: &Arc<Shared>, mut stream: TcpStream) {
    let busy = pages::busy(&probe::probe_body(shared.store.store_id()));
    let Some(ticket) = shared.turning_away.admit(&stream) else {
        http::respond(&mut stream, &busy, Duration::from_millis(1));
        return;
    };
    let _ = thread::Builder::new()
        .name("oauth-callback-busy".into())
        .spawn(move || {
            http::respond(&mut stream, &busy, Duration::from_millis(100));
            drop(ticket);
        });
}

fn idle_loop(shared: &Shared) {
    let Some(grace) = shared.options.idle_stop else {
        let (lock, cvar) = &shared.wake;
        let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        while !shared.stopping.load(Ordering::SeqCst) {
            guard = cvar.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
        return;
    };
    let mut idle_since: Option<Instant> = None;
    loop {
        {
            let (lock, cvar) = &shared.wake;
            let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            if shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            let _ = cvar
                .wait_timeout(guard, shared.options.idle_check)
                .unwrap_or_else(|p| p.into_inner());
        }
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        if shared.idle() {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= grace {
                shared.request_stop();
                return;
            }
        } else {
            idle_since = None;
        }
    }
}

/// Reads the request head, answers it, and only once the answer is written (flushed, the
/// connection half-closed) tells this process's waits that a callback was recorded. While it
/// answers, `local::await_answers` keeps a returning wait from outrunning the page.
fn serve_connection(shared: &Shared, mut stream: TcpStream, ticket: &Ticket) {
    let opts = &shared.options;
    let head = http::read_head(&mut stream, opts.max_request_bytes, opts.request_timeout);
    if matches!(head, Err(ReadFailure::Gone)) || !ticket.answering() {
        return;
    }
    let answering = local::Answering::begin(shared.port);
    let response = match head {
        Ok(head) => callback::route(&shared.store, shared.port, opts, &head),
        Err(ReadFailure::Answer(r)) => r,
        Err(ReadFailure::Gone) => return,
    };
    http::respond(&mut stream, &response, opts.request_timeout);
    if response.recorded {
        // A standby that records a callback while the primary is gone keeps the port after
        // its waits (before the waits are woken, so that they see it).
        shared.promote();
        answering.recorded();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_means_no_pending_flow_for_us_and_no_open_wait() {
        use crate::flow::BeginRequest;
        let store = Store::open_in_memory().unwrap();
        let options = ListenerOptions::default().idle_stop(None);
        let listener = CallbackListener::bind(&store, options.clone()).unwrap();
        let (shared, port) = (&listener.shared, listener.port());
        assert!(shared.idle());
        let open = local::OpenWait::new(port);
        assert!(!shared.idle(), "an open wait of this process keeps it");
        drop(open);
        assert!(shared.idle());
        let elsewhere = BeginRequest::new("s").redirect_uri("http://127.0.0.1:1/callback");
        store.begin(elsewhere).unwrap();
        assert!(shared.idle(), "a flow for another port does not keep it");
        let flow = store
            .begin(BeginRequest::new("s").redirect_uri(options.localhost_uri_for(port)))
            .unwrap();
        assert!(
            !shared.idle(),
            "a pending flow for its redirect URI keeps it"
        );
        store.complete(flow.state().secret(), "code").unwrap();
        assert!(shared.idle(), "a completed flow no longer needs it");
    }
}
