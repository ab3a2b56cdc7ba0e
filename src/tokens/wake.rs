//! Waking the waiters of this process at once when a set changes here, and pausing between
//! looks at a set another process is refreshing.
//!
//! Other processes' changes are seen by polling (SQLite has no cross-process notification; a
//! pooled PostgreSQL connection cannot hold a `LISTEN`): a waiter looks at the row, then
//! sleeps on this registry for a pause that starts at 5 ms and grows by half up to the
//! caller's `poll_max`, jittered so that many waiters do not look in step. A change committed
//! by this process (a finish, a release, a save) wakes its waiters before the pause ends.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// One set of one store: the store's id, the server id, the client id.
type Key = (String, String, String);

struct Registry {
    changes: Mutex<HashMap<Key, u64>>,
    changed: Condvar,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        changes: Mutex::new(HashMap::new()),
        changed: Condvar::new(),
    })
}

fn lock(m: &Mutex<HashMap<Key, u64>>) -> MutexGuard<'_, HashMap<Key, u64>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(store_id: &str, server_id: &str, client_id: &str) -> Key {
    (
        store_id.to_owned(),
        server_id.to_owned(),
        client_id.to_owned(),
    )
}

/// How many changes of the set this process has committed: take it before looking at the
/// row, and [`sleep_unless_changed`] wakes as soon as it moves.
pub(crate) fn ticket(store_id: &str, server_id: &str, client_id: &str) -> u64 {
    let changes = lock(&registry().changes);
    changes
        .get(&key(store_id, server_id, client_id))
        .copied()
        .unwrap_or(0)
}

/// After this process committed a change of the set: wakes its waiters.
pub(crate) fn changed(store_id: &str, server_id: &str, client_id: &str) {
    let r = registry();
    let mut changes = lock(&r.changes);
    *changes
        .entry(key(store_id, server_id, client_id))
        .or_insert(0) += 1;
    drop(changes);
    r.changed.notify_all();
}

/// After this process removed any number of sets (a forget of every client of a server):
/// wakes every waiter, each of which looks again.
pub(crate) fn changed_all() {
    let r = registry();
    let mut changes = lock(&r.changes);
    for n in changes.values_mut() {
        *n += 1;
    }
    drop(changes);
    r.changed.notify_all();
}

/// Sleeps for `pause`, or less if this process changes the set after `ticket` was taken.
pub(crate) fn sleep_unless_changed(
    store_id: &str,
    server_id: &str,
    client_id: &str,
    ticket: u64,
    pause: Duration,
) {
    let r = registry();
    let key = key(store_id, server_id, client_id);
    let changes = lock(&r.changes);
    let _ = r.changed.wait_timeout_while(changes, pause, |c| {
        c.get(&key).copied().unwrap_or(0) == ticket
    });
}

/// The pauses between looks: 5 ms, growing by half up to `max`, each jittered by up to a
/// fifth either way, and never past the other holder's lease.
#[derive(Debug)]
pub(crate) struct Pauses {
    next: Duration,
    max: Duration,
}

impl Pauses {
    pub(crate) fn new(max: Duration) -> Self {
        Pauses {
            next: Duration::from_millis(5).min(max),
            max,
        }
    }

    /// The next pause, at most `lease_left` (then the lease can be taken over) and at least
    /// a millisecond.
    pub(crate) fn next(&mut self, lease_left: Duration) -> Duration {
        let base = self.next;
        self.next = (self.next * 3 / 2).min(self.max);
        let jitter = rand::random_range(0.8..1.2);
        base.mul_f64(jitter)
            .min(lease_left)
            .max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_change_in_this_process_ends_the_pause_at_once() {
        let t = ticket("store-w", "srv", "cli");
        let waker = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            changed("store-w", "srv", "cli");
        });
        let started = Instant::now();
        sleep_unless_changed("store-w", "srv", "cli", t, Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(10));
        waker.join().unwrap();
        // Another set's change does not end a pause.
        let t = ticket("store-w", "srv", "cli");
        changed("store-w", "srv", "other");
        let started = Instant::now();
        sleep_unless_changed("store-w", "srv", "cli", t, Duration::from_millis(30));
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn pauses_grow_to_the_cap_and_stop_at_the_lease() {
        let mut p = Pauses::new(Duration::from_millis(25));
        let long = Duration::from_secs(60);
        let first = p.next(long);
        assert!(first >= Duration::from_millis(4) && first <= Duration::from_millis(6));
        for _ in 0..20 {
            assert!(p.next(long) <= Duration::from_millis(30));
        }
        assert_eq!(p.next(Duration::from_millis(2)), Duration::from_millis(2));
        assert_eq!(p.next(Duration::ZERO), Duration::from_millis(1));
    }
}
