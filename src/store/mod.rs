//! The [`Store`]: one non-generic handle over the engine chosen at open.
//!
//! Its public methods are declared by topic: opening and the store's own facts in [`open`], the
//! flow operations in [`flows`], the many-row ones in [`maintenance`], administration in
//! [`crate::admin`], pasted callbacks in [`crate::callback`]. Each validates its input, then
//! hands one transaction body from [`crate::flow::ops`] to the engine.

// `open` first: rustdoc lists the impl blocks of child modules in the order they are declared
// (before this module's own), and the `Store` page starts with `open`.
pub(crate) mod open;

mod flows;

mod promote;

mod callbacks;
mod maintenance;
mod refresh;
mod tokens;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::Engine;

/// A durable store of pending OAuth flows in one SQLite file.
///
/// Cheap to clone (clones share one connection pool); `Send + Sync`. Every process on the host
/// that opens the same file sees the same flows. Dropping the last clone closes every pooled
/// connection on the dropping thread, so a program may exit right after: SQLite removes the
/// file's `-wal` and `-shm` when the last connection to it in any process closes.
///
/// **The callback can land on another process.** When two instances of a tool run, the
/// browser's redirect reaches whichever holds the callback port, often not the one that began
/// the login. With the flows in this store, any process's [`LoopbackCallback`] (feature
/// `listener`) records the callback and the process that began the login gets it from
/// [`LoopbackCallback::wait`]: that is what ends "Invalid or expired state parameter -
/// potential CSRF attack". A web app does the same in its own route with [`CallbackHandler`].
/// See [the listener guide](crate::guide::listener) and, for every operation below and the
/// errors a caller acts on, [flows, operations and options](crate::guide::flows).
///
/// With the feature `postgres`, [`Store::open`] also takes a `postgres://` URL: the same flows
/// for callbacks that land on other hosts ([the PostgreSQL guide](crate::guide::postgres)).
///
#[cfg_attr(
    feature = "listener",
    doc = "[`LoopbackCallback`]: crate::LoopbackCallback"
)]
#[cfg_attr(
    feature = "listener",
    doc = "[`LoopbackCallback::wait`]: crate::LoopbackCallback::wait"
)]
#[cfg_attr(
    not(feature = "listener"),
    doc = concat!("[`LoopbackCallback`]: https://docs.rs/oauth-state-store/", env!("CARGO_PKG_VERSION"), "/oauth_state_store/struct.LoopbackCallback.html")
)]
#[cfg_attr(
    not(feature = "listener"),
    doc = concat!("[`LoopbackCallback::wait`]: https://docs.rs/oauth-state-store/", env!("CARGO_PKG_VERSION"), "/oauth_state_store/struct.LoopbackCallback.html#method.wait")
)]
/// [`CallbackHandler`]: crate::CallbackHandler
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    clock: Arc<dyn crate::clock::Clock>,
    ttl: std::time::Duration,
    sweep_batch_size: u32,
    sweep_batch_time: Duration,
    /// The caller set a sweep batch option (else the engine may supply its own for `sweep`).
    sweep_batch_set: bool,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path())
            .field("store_id", &self.store_id())
            .finish_non_exhaustive()
    }
}
