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
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path())
            .field("store_id", &self.store_id())
            .finish_non_exhaustive()
    }
}
