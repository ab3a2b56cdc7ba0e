//! Claiming the callback port for a [`LoopbackCallback`](super::LoopbackCallback): bind it,
//! share a listener on the same store, listen beside one, or learn that the port comes later.

use std::time::Duration;

use super::local;
use super::options::ListenerOptions;
use super::port::{self, Claim};
use super::probe::Probe;
use super::server::{CallbackListener, Role};
use crate::error::{Error, PortHolder, Result};
use crate::store::Store;

/// What a claim of the port is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    /// Serve the port if nobody does, else share a listener on the same store; retry while
    /// the port is unsettled.
    Share,
    /// The same, but listen beside another process's listener on the same store too; one
    /// attempt (`last_resort`: see [`port::claim_once`]).
    Standby { last_resort: bool },
}

/// What a claim of the port came to.
#[derive(Debug)]
pub(super) enum Claimed {
    /// This process listens on the port now.
    Listening(CallbackListener),
    /// Another listener on the same store serves it (in this process or another).
    Shared,
    /// Its holder is going away, or another process is taking it: ask again shortly.
    Unsettled,
    /// Nobody listens, but connections another program left behind keep the system from
    /// letting anyone bind the port for about this long.
    Lingering(Duration),
}

/// Binds the port, or shares it with a listener on the same store (listening beside it for
/// [`Want::Standby`]); anything else holding it is [`Error::PortInUse`].
pub(super) fn claim(store: &Store, options: &ListenerOptions, want: Want) -> Result<Claimed> {
    let port = options.port;
    if port != 0 {
        if let Some(id) = local::served(port) {
            if id == store.store_id() {
                return Ok(Claimed::Shared);
            }
            return Err(Error::PortInUse {
                port,
                holder: PortHolder::OtherStore,
            });
        }
    }
    let (id, timeout) = (store.store_id(), options.probe_timeout);
    let found = match want {
        Want::Share => port::claim(port, id, timeout)?,
        Want::Standby { last_resort } => match port::claim_once(port, id, timeout, last_resort)? {
            Some(found) => found,
            None => return Ok(Claimed::Unsettled),
        },
    };
    let serve = |bound, role| CallbackListener::serve(store, options.clone(), bound, role);
    let started = match found {
        Claim::Alone(bound, primary) => serve(bound, Role::Primary { _token: primary }),
        Claim::Joinable(..) if want == Want::Share => return Ok(Claimed::Shared),
        Claim::Joinable(bound, Some(primary)) => serve(
            bound,
            Role::Primary {
                _token: Some(primary),
            },
        ),
        Claim::Joinable(bound, None) => serve(bound, Role::Standby),
        Claim::Held(Probe::SameStore) => return Ok(Claimed::Shared),
        Claim::Held(other) => {
            return Err(Error::PortInUse {
                port,
                holder: other.holder(),
            })
        }
        Claim::Lingering(free_in) => return Ok(Claimed::Lingering(free_in)),
    };
    match started {
        Ok(listener) => Ok(Claimed::Listening(listener)),
        // Another thread of this process started one meanwhile: share it.
        Err(Error::PortInUse {
            holder: PortHolder::SameStore,
            ..
        }) => Ok(Claimed::Shared),
        Err(e) => Err(e),
    }
}
