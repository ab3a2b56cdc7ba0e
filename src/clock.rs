//! Time, injectable so that tests can move it.
//!
//! All times in the database are Unix milliseconds computed here and bound as parameters,
//! never SQL `now`.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let now = time::OffsetDateTime::now_utc();
        i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// ```
/// use oauth_state_store::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// clock.advance(time::Duration::seconds(2));
/// assert_eq!(clock.now_ms(), 3_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `now_ms` milliseconds since the Unix epoch.
    pub fn new(now_ms: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(now_ms)))
    }

    /// A clock standing at the system's current time.
    pub fn at_system_time() -> Self {
        Self::new(SystemClock.now_ms())
    }

    /// Sets the time.
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time by `by` (negative moves it back), saturating at the `i64` range.
    pub fn advance(&self, by: time::Duration) {
        let delta = i64::try_from(by.whole_milliseconds()).unwrap_or(if by.is_negative() {
            i64::MIN
        } else {
            i64::MAX
        });
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(delta))
            });
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
