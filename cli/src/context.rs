//! What every subcommand gets from the global arguments.

use std::time::Duration;

use oauth_state_store::{LockWait, StoreOptions};

/// What every subcommand gets from the global arguments.
pub struct Context {
    pub busy_timeout: Duration,
    pub lock_wait: LockWait,
    pub json: bool,
}

impl Context {
    /// Store options with the command line's busy timeout and lock wait.
    pub fn options(&self) -> StoreOptions {
        StoreOptions::default()
            .busy_timeout(self.busy_timeout)
            .lock_wait(self.lock_wait)
    }
}
