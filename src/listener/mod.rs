//! The loopback callback listener (cargo feature `listener`, on by default).
//!
//! The browser's redirect lands on whichever process holds the callback port. Because flows
//! live in the shared file, that process validates the `state` against the file, whoever began
//! the flow, records the `code` (or `error`) on the row, and answers the browser. The process
//! that began the flow waits for its row to change and then consumes it as usual.
//!
//! - [`LoopbackCallback::attach`] binds the port, or, if a listener on the *same* store already
//!   holds it, shares that one; anything else on the port is [`Error::PortInUse`] at once. A
//!   port that nothing listens on, but that connections left by a program which listened
//!   there keep the system from letting anyone bind (TIME_WAIT), is not in use: the listener
//!   takes it as soon as the system frees it, and
//!   [`LoopbackCallback::port_delay`] says so meanwhile, in one line for the user.
//! - [`LoopbackCallback::wait`] waits for the flow's callback, then [`Store::consume`]s it,
//!   once the browser's page is written. While it waits, on Linux, its process listens on the
//!   port beside the holder (`SO_REUSEPORT`: same user only, and only beside a listener on
//!   the same store), so that the holder's exit refuses no callback; elsewhere it re-checks
//!   the port and takes it over if its holder went away.
//! - [`LoopbackCallback::wait_for_code`] waits the same way but leaves the flow `completed`
//!   and returns only its code, for an SDK that consumes the flow itself (`rmcp`'s exchange,
//!   over an [`RmcpStateStore`](crate::RmcpStateStore) given the listener's redirect URI).
//! - A listener stops by itself when no live pending flow in the file expects its redirect URI
//!   and none of its own process's waits are open.
//!
//! Everything binds `127.0.0.1` only.
//!
//! [`Error::PortInUse`]: crate::Error::PortInUse
//! [`Store::consume`]: crate::Store::consume

// Dependencies point one way: wait -> {claim, later}; claim -> {server, port}; server ->
// {callback, http, slots} -> crate::callback; port -> {probe, sockets}; local (this process's
// waits and listeners, by port) depends on none of them; every one may read `options`.
mod callback;
mod claim;
mod http;
mod later;
mod local;
mod options;
mod port;
mod probe;
mod server;
mod slots;
mod sockets;
mod wait;

pub use later::PortDelay;
pub use options::ListenerOptions;
pub use probe::PROBE_PATH;
pub use server::CallbackListener;
pub use wait::{LoopbackCallback, RecordedCode};
