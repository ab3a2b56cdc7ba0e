//! How a callback listener binds, answers and stops: [`ListenerOptions`].

use std::time::Duration;

use super::probe::PROBE_PATH;
use crate::error::{Error, Result};

/// How a callback listener binds, answers and stops. `Default`:
///
/// | option | default |
/// |---|---|
/// | [`port`](Self::port) | 0 (an ephemeral port; set a fixed one to share it between processes) |
/// | [`path`](Self::path) | `/callback` |
/// | [`idle_stop`](Self::idle_stop) | after 10 s with no pending flow for it and no open wait |
/// | [`idle_check`](Self::idle_check) | every 1 s |
/// | [`request_timeout`](Self::request_timeout) | 5 s to send a request head |
/// | [`max_request_bytes`](Self::max_request_bytes) | 8 KiB |
/// | [`max_connections`](Self::max_connections) | 16 at once |
/// | [`probe_timeout`](Self::probe_timeout) | 500 ms |
/// | [`recheck`](Self::recheck) | a waiting process re-checks the port every 1 s |
/// | [`poll_max`](Self::poll_max) | a waiting process reads its row at least every 250 ms |
///
/// ```
/// use std::time::Duration;
/// use oauth_state_store::ListenerOptions;
/// let options = ListenerOptions::default()
///     .port(33418)
///     .path("/oauth/callback")
///     .idle_stop(Some(Duration::from_secs(30)));
/// assert_eq!(options.redirect_uri_for(33418), "http://127.0.0.1:33418/oauth/callback");
/// ```
#[derive(Debug, Clone)]
pub struct ListenerOptions {
    pub(crate) port: u16,
    pub(crate) path: String,
    pub(crate) idle_stop: Option<Duration>,
    pub(crate) idle_check: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_request_bytes: usize,
    pub(crate) max_connections: usize,
    pub(crate) probe_timeout: Duration,
    pub(crate) recheck: Duration,
    pub(crate) poll_max: Duration,
}

/// Durations given to the options are kept between 1 ms and one day, so that no deadline
/// computed from them can overflow.
fn bounded(d: Duration) -> Duration {
    d.clamp(Duration::from_millis(1), MAX_DURATION)
}

/// The longest duration an option or a wait takes: one day, the longest a flow lives.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            port: 0,
            path: "/callback".to_owned(),
            idle_stop: Some(Duration::from_secs(10)),
            idle_check: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            max_request_bytes: 8 * 1024,
            max_connections: 16,
            probe_timeout: Duration::from_millis(500),
            recheck: Duration::from_secs(1),
            poll_max: Duration::from_millis(250),
        }
    }
}

impl ListenerOptions {
    /// The loopback port (0 picks a free one; the chosen port is reported by the listener).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// The one path callbacks are served on (absolute, without query or fragment).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }
    /// How long (at most a day) a listener keeps serving once no live pending flow in the file expects its
    /// redirect URI and none of its process's waits are open; `None` serves until dropped.
    pub fn idle_stop(mut self, grace: Option<Duration>) -> Self {
        self.idle_stop = grace.map(bounded);
        self
    }
    /// How often the listener asks the file whether it is still needed.
    pub fn idle_check(mut self, every: Duration) -> Self {
        self.idle_check = bounded(every);
        self
    }
    /// How long a client may take to send its request head before it gets `408`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = bounded(timeout);
        self
    }
    /// The largest request head accepted (at least 1 KiB); a larger one gets `431`/`414`.
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes.max(1024);
        self
    }
    /// How many connections are served at once (at least 1). When all are taken, the oldest
    /// one that has sent nothing for a second (or `request_timeout`, if shorter) is closed to
    /// make room; only when none can be is a new one answered `503`.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }
    /// How long to wait for the holder of a busy port to answer the probe.
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = bounded(timeout);
        self
    }
    /// How often a waiting process that does not hold the port checks that someone does.
    pub fn recheck(mut self, every: Duration) -> Self {
        self.recheck = bounded(every);
        self
    }
    /// The longest pause between two reads of a waited-for row (reads back off up to it).
    pub fn poll_max(mut self, pause: Duration) -> Self {
        self.poll_max = bounded(pause);
        self
    }

    /// The redirect URI a listener with these options serves on `port`.
    pub fn redirect_uri_for(&self, port: u16) -> String {
        let mut uri = String::from("http://127.0.0.1:");
        uri.push_str(&port.to_string());
        uri.push_str(&self.path);
        uri
    }

    /// The same URI spelled with `localhost`, which the listener also answers to.
    pub(crate) fn localhost_uri_for(&self, port: u16) -> String {
        let mut uri = String::from("http://localhost:");
        uri.push_str(&port.to_string());
        uri.push_str(&self.path);
        uri
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let p = &self.path;
        if !p.starts_with('/') || p.len() > 256 {
            return Err(Error::invalid(
                "callback_path",
                "must start with / and be at most 256 characters",
            ));
        }
        if !p
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
        {
            return Err(Error::invalid(
                "callback_path",
                "must be visible ASCII without ? or #",
            ));
        }
        if p == PROBE_PATH {
            return Err(Error::invalid(
                "callback_path",
                "is the listener's probe path",
            ));
        }
        Ok(())
    }
}
