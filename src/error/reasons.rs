//! The values an error carries besides its text: why a flow ended, and what holds a port.

use std::fmt;
#[cfg(feature = "listener")]
use std::time::Duration;

/// Why a flow was ended without a login ([`Error::FlowEnded`](super::Error::FlowEnded)). Carries no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndReason {
    /// A consume expected another server (or client) than the flow's
    /// ([`Error::ServerMismatch`](super::Error::ServerMismatch)): the flow was ended then.
    ServerMismatch,
    /// The authorization server redirected back with an error, and the flow was then consumed
    /// ([`Error::AuthorizationFailed`](super::Error::AuthorizationFailed)).
    AuthorizationFailed,
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndReason::ServerMismatch => {
                "a consume for a different server or client ended it (possible \
                 authorization-server mix-up)"
            }
            EndReason::AuthorizationFailed => "the authorization server refused the login",
        })
    }
}

/// Whole seconds, rounded up: "about 3 s" for 2.1 s, never "0 s" for a wait still ahead.
#[cfg(feature = "listener")]
pub(crate) fn whole_seconds(d: &Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(feature = "listener")]
/// What holds a loopback callback port that a listener could not bind
/// ([`Error::PortInUse`](super::Error::PortInUse)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortHolder {
    /// A callback listener serving this same store file: its flows complete through the file,
    /// so a second listener is not needed (share it instead of binding).
    SameStore,
    /// A callback listener of this crate serving a different store file.
    OtherStore,
    /// Another program (it did not answer the listener's probe).
    Other,
}

#[cfg(feature = "listener")]
impl std::fmt::Display for PortHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PortHolder::SameStore => {
                "a callback listener on this same store file (share it instead of binding a \
                 second one)"
            }
            PortHolder::OtherStore => "a callback listener serving a different store file",
            PortHolder::Other => "another program",
        })
    }
}
