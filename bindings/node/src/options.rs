//! The JavaScript option objects and their mapping onto the core's builders.

use std::time::Duration;

use napi_derive::napi;
use oauth_state_store::{
    Durability, FileChecks, ListenerOptions, LockWait, Promotion, Store, StoreOptions,
};

/// `Store.open(path, options)`. Every field is optional; the defaults are the core's.
#[napi(object)]
#[derive(Default)]
pub struct OpenOptions {
    /// How long a flow lives, in seconds (default 600).
    pub ttl_seconds: Option<u32>,
    /// How long a write waits for another process's lock, in milliseconds (default 5000).
    pub busy_timeout_ms: Option<u32>,
    /// Connections in this process's pool.
    pub pool_size: Option<u32>,
    /// `"normal"` (default: survives any process crash) or `"full"` (also power loss).
    pub durability: Option<String>,
    /// How a write waits for another process's lock: `"backoff"` (default, SQLite's schedule)
    /// or `"aging"` (short tries after 10 ms: a far shorter worst wait under heavy contention,
    /// a longer typical one).
    pub lock_wait: Option<String>,
    /// Skip the owner and mode checks of the file (containers, tests). Symlinks stay refused.
    pub relaxed_file_checks: Option<bool>,
    /// Create the file when it is missing (default true).
    pub create_if_missing: Option<bool>,
    /// Open read-only.
    pub read_only: Option<bool>,
}

impl OpenOptions {
    /// The core's options for these fields.
    pub(crate) fn to_core(&self) -> napi::Result<StoreOptions> {
        let mut o = Store::options();
        if let Some(s) = self.ttl_seconds {
            o = o.ttl(Duration::from_secs(u64::from(s)));
        }
        if let Some(ms) = self.busy_timeout_ms {
            o = o.busy_timeout(Duration::from_millis(u64::from(ms)));
        }
        if let Some(n) = self.pool_size {
            o = o.pool_size(n);
        }
        match self.durability.as_deref() {
            None | Some("normal") => {}
            Some("full") => o = o.durability(Durability::Full),
            Some(_) => return Err(invalid("durability", "must be \"normal\" or \"full\"")),
        }
        match self.lock_wait.as_deref() {
            None | Some("backoff") => {}
            Some("aging") => o = o.lock_wait(LockWait::Aging),
            Some(_) => return Err(invalid("lockWait", "must be \"backoff\" or \"aging\"")),
        }
        if self.relaxed_file_checks == Some(true) {
            o = o.file_checks(FileChecks::Relaxed);
        }
        if let Some(c) = self.create_if_missing {
            o = o.create_if_missing(c);
        }
        if let Some(r) = self.read_only {
            o = o.read_only(r);
        }
        Ok(o)
    }
}

/// `attach(store, options)`: the loopback callback port and path.
#[napi(object)]
#[derive(Default)]
pub struct AttachOptions {
    /// The port (0 or absent: a free one; set a fixed one to share it between processes).
    pub port: Option<u32>,
    /// The callback path (default `/callback`).
    pub path: Option<String>,
    /// Seconds a listener keeps running with no pending flow for it (default 10).
    pub idle_stop_seconds: Option<u32>,
}

impl AttachOptions {
    /// The core's listener options for these fields.
    pub(crate) fn to_core(&self) -> napi::Result<ListenerOptions> {
        let mut o = ListenerOptions::default();
        if let Some(p) = self.port {
            let port = u16::try_from(p).map_err(|_| invalid("port", "must be 0 to 65535"))?;
            o = o.port(port);
        }
        if let Some(path) = &self.path {
            o = o.path(path.clone());
        }
        if let Some(s) = self.idle_stop_seconds {
            o = o.idle_stop(Some(Duration::from_secs(u64::from(s))));
        }
        Ok(o)
    }
}

/// `store.promote(serverId, clientId, url, options)`: what the flow records besides the URL's
/// fields (the core's `Promotion`). Every field is optional.
#[napi(object)]
#[derive(Default)]
pub struct PromoteOptions {
    /// The authorization server's issuer (RFC 9207): a callback from another is refused.
    pub issuer: Option<String>,
    /// The callback must carry `iss` equal to `issuer` (the server advertises
    /// `authorization_response_iss_parameter_supported`); `wait` then hands it on.
    pub require_issuer: Option<bool>,
    /// The SDK's discovery state, as text (at most 64 KiB): `consume` hands it back.
    pub discovery: Option<String>,
}

impl PromoteOptions {
    /// The core's promotion for these fields (checked by the core's promote).
    pub(crate) fn into_core(self) -> Promotion {
        let mut p = Promotion::new();
        if let Some(i) = self.issuer {
            p = p.issuer(i);
        }
        if let Some(r) = self.require_issuer {
            p = p.require_issuer(r);
        }
        if let Some(d) = self.discovery {
            p = p.discovery(d);
        }
        p
    }
}

/// An `INVALID_INPUT` error for an option the core has no builder check for.
pub(crate) fn invalid(field: &'static str, reason: &'static str) -> napi::Error {
    crate::error::to_js(&oauth_state_store::Error::InvalidInput { field, reason })
}
