//! The busy handler of [`LockWait::Aging`](crate::LockWait::Aging): a wait that has lasted
//! gets short sleeps, up to the store's [`busy_timeout`](crate::StoreOptions::busy_timeout).
//!
//! SQLite's own handler (what `sqlite3_busy_timeout` installs) sleeps 1, 2, 5, 10, 15, 20, 25,
//! 25, 25, 50, 50 and then 100 ms between attempts. A transaction here holds the write lock for
//! tens of microseconds, so a writer that has slept a few times wakes long after the lock came
//! free, and often finds that a newer writer took it in the meantime: with 16 processes on one
//! file, one consume in a few thousand waited 1–2 s (BENCHMARKS.md, "Contention").
//!
//! This handler ages a wait instead. For its first [`PATIENT`] it backs off like SQLite's
//! (1, 2, 4 ms), so that new waiters keep out of the way of the lock's holder; after that it
//! tries again every [`POLL`], so that an old waiter wins the next free lock against the new
//! ones, which are still sleeping. Every sleep is jittered, so that processes woken together do
//! not retry together. Polling costs CPU that the holder would use: on 2 cores, the consume
//! p99 with 8 processes rises from about 3.5 to about 12 ms while the worst wait falls from
//! about 1 s to under 50 ms, and a sweep beside a flow loop takes 1.75x as long. That is why
//! it is an option and SQLite's schedule the default.
//!
//! SQLite calls the handler with the number of times it has already been called for this
//! wait; the deadline is measured from the first call. The handler is a plain `fn` (SQLite
//! gives it no context), so the timeout comes from a thread-local set by the engine before it
//! runs statements on a connection ([`set_timeout`]); a connection runs its statements on the
//! thread that holds it.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long a wait backs off before it polls.
const PATIENT: Duration = Duration::from_millis(10);
/// The first back-off pause; it doubles on each call.
const FIRST: Duration = Duration::from_millis(1);
/// The pause of a wait older than [`PATIENT`].
const POLL: Duration = Duration::from_micros(200);
/// A call this long after the previous one starts a new wait, whatever its count says.
const NEW_WAIT_GAP: Duration = Duration::from_millis(100);

thread_local! {
    static TIMEOUT: Cell<Duration> = const { Cell::new(Duration::from_secs(5)) };
    /// The first and the latest call of the current wait.
    static WAIT: Cell<Option<(Instant, Instant)>> = const { Cell::new(None) };
}

/// The total wait allowed to the handler's calls on this thread from now on.
pub(crate) fn set_timeout(timeout: Duration) {
    TIMEOUT.with(|t| t.set(timeout));
}

/// The pause of call `count` of a wait that has lasted `waited`, before jitter.
fn pause(count: i32, waited: Duration) -> Duration {
    match PATIENT.checked_sub(waited) {
        Some(patience) if !patience.is_zero() => {
            let doublings = count.clamp(0, 3) as u32;
            (FIRST * (1 << doublings)).min(patience)
        }
        _ => POLL,
    }
}

/// A pause between half and the whole of `base`.
fn jittered(base: Duration) -> Duration {
    let frac = f64::from(rand::random::<u16>()) / f64::from(u16::MAX);
    base.mul_f64(0.5 + 0.5 * frac)
}

/// What to do at a busy lock after `count` earlier calls in this wait, at `now`: `Some(pause)`
/// to sleep and try again, `None` to give up (the statement fails with `SQLITE_BUSY`).
fn decide(count: i32, now: Instant, timeout: Duration) -> Option<Duration> {
    let start = WAIT.with(|w| {
        let start = match w.get() {
            Some((start, last)) if count > 0 && now.duration_since(last) < NEW_WAIT_GAP => start,
            _ => now,
        };
        w.set(Some((start, now)));
        start
    });
    let waited = now.duration_since(start);
    let left = timeout.checked_sub(waited)?;
    if left.is_zero() {
        return None;
    }
    Some(jittered(pause(count, waited)).min(left))
}

/// The handler installed with `Connection::busy_handler`.
pub(crate) fn handler(count: i32) -> bool {
    let timeout = TIMEOUT.with(Cell::get);
    match decide(count, Instant::now(), timeout) {
        Some(pause) => {
            std::thread::sleep(pause);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_young_wait_backs_off_and_an_old_one_polls() {
        assert_eq!(pause(0, Duration::ZERO), MS);
        assert_eq!(pause(1, MS), 2 * MS);
        assert_eq!(pause(2, 3 * MS), 4 * MS);
        assert_eq!(pause(3, 7 * MS), 3 * MS, "never past the patient phase");
        assert_eq!(pause(-1, Duration::ZERO), MS);
        assert_eq!(pause(4, PATIENT), POLL);
        assert_eq!(pause(i32::MAX, 4 * PATIENT), POLL);
        for _ in 0..1000 {
            let j = jittered(POLL);
            assert!(j >= POLL / 2 && j <= POLL, "{j:?}");
        }
    }

    #[test]
    fn a_wait_gives_up_at_its_timeout_counted_from_its_first_call() {
        let t0 = Instant::now();
        let timeout = 50 * MS;
        assert!(decide(0, t0, timeout).is_some());
        let mut now = t0;
        for count in 1..40 {
            now += MS;
            let pause = decide(count, now, timeout).unwrap();
            assert!(pause <= 8 * MS, "{pause:?}");
        }
        // The last pause never sleeps past the deadline.
        let near = t0 + Duration::from_micros(49_900);
        assert!(decide(40, near, timeout).unwrap() <= Duration::from_micros(100));
        assert_eq!(decide(41, t0 + timeout, timeout), None);
        assert_eq!(decide(42, t0 + timeout * 2, timeout), None);
    }

    #[test]
    fn a_new_wait_starts_a_new_deadline() {
        let t0 = Instant::now();
        let timeout = 50 * MS;
        assert!(decide(0, t0, timeout).is_some());
        assert!(decide(1, t0 + 10 * MS, timeout).is_some());
        // A later wait: count 0 again, long after the first one's deadline.
        let later = t0 + Duration::from_secs(10);
        assert!(decide(0, later, timeout).is_some());
        // A count SQLite did not reset, far from the last call, is a new wait too.
        let much_later = later + Duration::from_secs(10);
        assert!(decide(7, much_later, timeout).is_some());
        assert_eq!(decide(8, much_later + timeout, timeout), None);
    }

    #[test]
    fn a_zero_timeout_never_waits() {
        assert_eq!(decide(0, Instant::now(), Duration::ZERO), None);
    }

    #[test]
    fn a_held_lock_fails_after_the_timeout_and_a_freed_one_is_taken() {
        use rusqlite::{Connection, TransactionBehavior};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let mut holder = Connection::open(&path).unwrap();
        holder.pragma_update(None, "journal_mode", "WAL").unwrap();
        holder.execute_batch("CREATE TABLE t (x)").unwrap();
        let tx = holder
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let waiter = std::thread::spawn(move || {
            let mut c = Connection::open(&path).unwrap();
            c.busy_handler(Some(handler)).unwrap();
            set_timeout(80 * MS);
            let t = Instant::now();
            let refused = c.transaction_with_behavior(TransactionBehavior::Immediate);
            let waited = t.elapsed();
            assert!(refused.is_err());
            drop(refused);
            assert!(waited >= 80 * MS && waited < 2000 * MS, "{waited:?}");
            // The holder lets go at about 200 ms; a 5 s wait takes the lock then.
            set_timeout(5000 * MS);
            c.transaction_with_behavior(TransactionBehavior::Immediate)
                .map(|tx| tx.commit())
                .unwrap()
                .unwrap();
        });
        std::thread::sleep(200 * MS);
        tx.commit().unwrap();
        waiter.join().unwrap();
    }
}
