//! The [`CallbackListener`]: accepts connections on `127.0.0.1:<port>`, routes the callback
//! and the probe, and stops itself when no flow in the file needs it.

use std::fmt;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusqlite::params;

use super::http::{self, Head, ReadFailure};
use super::pages::{self, Response};
use super::port::{self, PROBE_PATH};
use super::wait;
use super::ListenerOptions;
use crate::error::{Error, Result};
use crate::flow::Status;
use crate::store::Store;

/// Is any live pending flow waiting for a callback at one of these redirect URIs?
const PENDING_FOR_REDIRECT: &str = "SELECT EXISTS (SELECT 1 FROM flows \
     WHERE status = 'pending' AND expires_at > ?1 AND redirect_uri IN (?2, ?3))";

/// A running callback listener on `127.0.0.1:<port>`.
///
/// It answers `GET <path>?state=..&code=..` (or `&error=..`) for any flow in the store's file,
/// whichever process began it, and `GET` [`PROBE_PATH`] with the file's `store_id`. It stops
/// when dropped, when [`stop`](Self::stop) is called, or by itself once idle (see
/// [`ListenerOptions::idle_stop`]). Most callers want [`LoopbackCallback`](super::LoopbackCallback),
/// which also shares a port held by another process's listener on the same file.
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
        let pending = self.store.read(|tx, now| {
            Ok(tx
                .prepare_cached(PENDING_FOR_REDIRECT)?
                .query_row(params![now, a, b], |r| r.get::<_, bool>(0))?)
        });
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
        Ok(head) => route(shared, &head),
        Err(ReadFailure::Answer(r)) => r,
        Err(ReadFailure::Gone) => return,
    };
    http::respond(&mut stream, &response, opts.request_timeout);
}

/// Everything but a well-formed callback is answered without touching the store.
fn route(shared: &Shared, head: &Head) -> Response {
    let (path, query) = match head.target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (head.target.as_str(), ""),
    };
    let is_probe = path == PROBE_PATH;
    if path != shared.options.path && !is_probe {
        return pages::plain(404, "Not found.");
    }
    if head.method != "GET" {
        let mut r = pages::plain(405, "Only GET is served here.");
        r.extra.push(("Allow", "GET".to_owned()));
        return r;
    }
    if !host_is_ours(head.host.as_deref(), shared.port) {
        return pages::plain(
            421,
            "This listener only answers requests addressed to 127.0.0.1 or localhost.",
        );
    }
    if head.has_body {
        return pages::plain(400, "A callback has no request body.");
    }
    if is_probe {
        return pages::plain(200, &port::probe_body(shared.store.store_id()));
    }
    callback(shared, query)
}

/// `127.0.0.1:<port>` or `localhost:<port>` (any case).
fn host_is_ours(host: Option<&str>, port: u16) -> bool {
    let Some(host) = host else {
        return false;
    };
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    (name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost")) && p == port.to_string()
}

/// The callback's parameters; each may appear at most once.
#[derive(Default)]
struct Params {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

fn parse_params(query: &str) -> std::result::Result<Params, &'static str> {
    let mut p = Params::default();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let (slot, name) = match k.as_ref() {
            "state" => (&mut p.state, "state"),
            "code" => (&mut p.code, "code"),
            "error" => (&mut p.error, "error"),
            "error_description" => (&mut p.error_description, "error_description"),
            "iss" => (&mut p.iss, "iss"),
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(name);
        }
    }
    Ok(p)
}

fn callback(shared: &Shared, query: &str) -> Response {
    let params = match parse_params(query) {
        Ok(p) => p,
        Err(name) => {
            let mut s = String::from("The parameter <code>");
            s.push_str(name);
            s.push_str("</code> appears more than once.");
            return pages::bad_request("Malformed callback", &s);
        }
    };
    let Some(state) = params.state.as_deref() else {
        return pages::bad_request(
            "Malformed callback",
            "The callback has no <code>state</code> parameter, so it cannot be matched to a \
             login.",
        );
    };
    let result = match (params.code.as_deref(), params.error.as_deref()) {
        (Some(_), Some(_)) => {
            return pages::bad_request(
                "Malformed callback",
                "The callback carries both a <code>code</code> and an <code>error</code>.",
            )
        }
        (None, None) => {
            return pages::bad_request(
                "Malformed callback",
                "The callback carries neither a <code>code</code> nor an <code>error</code>.",
            )
        }
        (code, error) => (code, error),
    };
    let store = &shared.store;
    let info = match store.check(state) {
        Ok(info) => info,
        Err(e) => return pages::for_error(&e),
    };
    if matches!(info.status, Status::Completed | Status::Failed) {
        return pages::for_error(&Error::AlreadyCompleted);
    }
    if let Some(uri) = info.redirect_uri.as_deref() {
        if !redirect_is_ours(uri, shared) {
            return pages::bad_request(
                "Wrong callback address",
                "This login expects its callback at another address than this one; the \
                 callback was not used.",
            );
        }
    }
    if let (Some(expected), Some(got)) = (info.issuer.as_deref(), params.iss.as_deref()) {
        if expected != got {
            return pages::bad_request(
                "Wrong authorization server",
                "The callback says it comes from another authorization server than the one this \
                 login was started with (a possible mix-up attack); the callback was not used.",
            );
        }
    }
    let outcome = match result {
        (Some(code), _) => store.complete(state, code).map(|_| pages::completed()),
        (None, error) => {
            // Exactly one of the two is present (checked above).
            let error = error.unwrap_or_default();
            let desc = params.error_description.as_deref();
            let desc_ok = desc.is_some_and(store_accepts_description);
            let kept = if desc_ok { desc } else { None };
            store
                .reject(state, error, kept)
                .map(|_| pages::refused(error, kept, desc.is_some() && !desc_ok))
        }
    };
    match outcome {
        Ok(page) => {
            wait::notify_recorded();
            page
        }
        Err(e) => pages::for_error(&e),
    }
}

/// Whether `reject` would take this description (RFC 6749 characters, at most 1024).
fn store_accepts_description(d: &str) -> bool {
    crate::validate::error_code("error_description", d, 1024).is_ok()
}

/// The flow's redirect URI names this listener (`127.0.0.1` or `localhost`, our port, path).
fn redirect_is_ours(uri: &str, shared: &Shared) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    let host_ok = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        _ => false,
    };
    url.scheme() == "http"
        && host_ok
        && url.port() == Some(shared.port)
        && url.path() == shared.options.path
}
