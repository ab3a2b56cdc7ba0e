//! The [`CallbackListener`]: accepts connections on `127.0.0.1:<port>`, routes the callback
//! and the probe, and stops itself when no flow in the file needs it.

use std::fmt;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::callback;
use super::http::{self, ReadFailure};
use super::pages;
use super::port;
use super::wait;
use super::ListenerOptions;
use crate::error::{Error, Result};
use crate::store::Store;

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
    wake: (Mutex<()>, Condvar),
    active: AtomicUsize,
}

impl fmt::Debug for CallbackListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackListener")
            .field("port", &self.shared.port)
            .field("path", &self.shared.options.path)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl CallbackListener {
    /// Binds `127.0.0.1:<options.port>` and starts serving callbacks for `store`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`callback_path`), [`Error::PortInUse`] when the port is taken
    /// (its [`PortHolder`](crate::PortHolder) says by what, after asking it),
    /// [`Error::Listener`] when the socket cannot be bound or the threads cannot start.
    pub fn bind(store: &Store, options: ListenerOptions) -> Result<CallbackListener> {
        options.validate()?;
        match port::bind_or_probe(options.port, store.store_id(), options.probe_timeout)? {
            Ok(socket) => Self::serve(store, options, socket),
            Err(probe) => Err(Error::PortInUse {
                port: options.port,
                holder: probe.holder(),
            }),
        }
    }

    /// Starts serving on an already bound socket.
    pub(crate) fn serve(
        store: &Store,
        options: ListenerOptions,
        socket: TcpListener,
    ) -> Result<CallbackListener> {
        let port = socket
            .local_addr()
            .map_err(|source| Error::Listener {
                port: options.port,
                action: "read its bound address",
                source,
            })?
            .port();
        let shared = Arc::new(Shared {
            store: store.clone(),
            port,
            redirect_uris: [
                options.redirect_uri_for(port),
                options.localhost_uri_for(port),
            ],
            options,
            stopping: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
            active: AtomicUsize::new(0),
        });
        let spawn_failed = |source| Error::Listener {
            port,
            action: "start its threads",
            source,
        };
        let accept = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("oauth-callback-accept".into())
                .spawn(move || accept_loop(&shared, &socket))
                .map_err(spawn_failed)?
        };
        let mut listener = CallbackListener {
            shared: Arc::clone(&shared),
            threads: vec![accept],
        };
        let janitor = thread::Builder::new()
            .name("oauth-callback-idle".into())
            .spawn(move || idle_loop(&shared))
            .map_err(spawn_failed)?;
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

    /// Stops serving and frees the port before returning. Requests being answered finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.request_stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for CallbackListener {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
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
        // The accept thread sleeps in accept(); a connection of our own wakes it.
        let _ = TcpStream::connect_timeout(&port::loopback(self.port), Duration::from_secs(1));
    }

    /// Idle: nothing pending in the file expects our redirect URI, and no wait of this process
    /// is open on our port. A storage error counts as "not idle".
    fn idle(&self) -> bool {
        if wait::open_waits(self.port) > 0 {
            return false;
        }
        let [a, b] = &self.redirect_uris;
        let pending = self.store.waiting_at(&[a, b]);
        matches!(pending, Ok(false))
    }
}

fn accept_loop(shared: &Arc<Shared>, socket: &TcpListener) {
    for conn in socket.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut stream) = conn else {
            // Out of descriptors or similar: do not spin.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let limit = shared.options.max_connections;
        if shared.active.fetch_add(1, Ordering::SeqCst) >= limit {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            let busy = pages::plain(503, "Too many connections; retry.");
            http::respond(&mut stream, &busy, Duration::from_millis(100));
            continue;
        }
        let worker = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name("oauth-callback-conn".into())
            .spawn(move || {
                serve_connection(&worker, stream);
                worker.active.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
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

fn serve_connection(shared: &Shared, mut stream: TcpStream) {
    let opts = &shared.options;
    let response = match http::read_head(&mut stream, opts.max_request_bytes, opts.request_timeout)
    {
        Ok(head) => callback::route(&shared.store, shared.port, opts, &head),
        Err(ReadFailure::Answer(r)) => r,
        Err(ReadFailure::Gone) => return,
    };
    http::respond(&mut stream, &response, opts.request_timeout);
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
        let open = wait::OpenWait::new(port);
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
