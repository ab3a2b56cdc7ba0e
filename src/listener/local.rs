//! What this process's listeners and waits on one port tell each other: whether a listener of
//! this process serves the port, how many waits are open on it, whether a callback was just
//! recorded and answered, and how many answers are still being written.
//!
//! This is the listener's only process-wide state. It depends on nothing else in the module:
//! the server reports into it, the waiting side reads it.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One port's state in this process.
#[derive(Debug, Default)]
struct Port {
    /// The store id of this process's listener on the port, if one serves it.
    serving: Option<String>,
    open_waits: usize,
    answering: usize,
    /// Bumped each time a callback was recorded and its page written.
    recorded: u64,
}

impl Port {
    fn unused(&self) -> bool {
        self.serving.is_none() && self.open_waits == 0 && self.answering == 0
    }
}

static PORTS: Mutex<BTreeMap<u16, Port>> = Mutex::new(BTreeMap::new());
static CHANGED: Condvar = Condvar::new();

fn ports() -> MutexGuard<'static, BTreeMap<u16, Port>> {
    PORTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Changes one port's state and wakes whoever waits for a change.
fn update<R>(port: u16, change: impl FnOnce(&mut Port) -> R) -> R {
    let mut all = ports();
    let entry = all.entry(port).or_default();
    let result = change(entry);
    if entry.unused() {
        all.remove(&port);
    }
    CHANGED.notify_all();
    result
}

fn read<R>(port: u16, look: impl FnOnce(&Port) -> R) -> R {
    let all = ports();
    match all.get(&port) {
        Some(p) => look(p),
        None => look(&Port::default()),
    }
}

/// A listener of this process serves `port` for as long as this lives.
#[derive(Debug)]
pub(super) struct Serving(u16);

impl Serving {
    /// Marks `port` served by this process for `store_id`; `None` when a listener of this
    /// process already serves it (one per process and port is enough: they would die
    /// together).
    pub(super) fn claim(port: u16, store_id: &str) -> Option<Serving> {
        let claimed = update(port, |p| {
            if p.serving.is_some() {
                return false;
            }
            p.serving = Some(store_id.to_owned());
            true
        });
        // Not `then_some`: a `Serving` made and dropped would unmark the port.
        claimed.then(|| Serving(port))
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        update(self.0, |p| p.serving = None);
    }
}

/// The store id of the listener of this process that serves `port`, if one does.
pub(super) fn served(port: u16) -> Option<String> {
    read(port, |p| p.serving.clone())
}

/// An open wait on a port, for as long as it lives: a listener does not stop while one is open.
#[derive(Debug)]
pub(super) struct OpenWait(u16);

impl OpenWait {
    pub(super) fn new(port: u16) -> Self {
        update(port, |p| p.open_waits += 1);
        OpenWait(port)
    }
}

impl Drop for OpenWait {
    fn drop(&mut self) {
        update(self.0, |p| p.open_waits = p.open_waits.saturating_sub(1));
    }
}

/// How many waits of this process are open on `port`.
pub(super) fn open_waits(port: u16) -> usize {
    read(port, |p| p.open_waits)
}

/// A request on `port` is being answered, from its complete head until its response is
/// written, for as long as this lives.
#[derive(Debug)]
pub(super) struct Answering(u16);

impl Answering {
    pub(super) fn begin(port: u16) -> Self {
        update(port, |p| p.answering += 1);
        Answering(port)
    }

    /// The answer was a recorded callback, and it is written: wake this process's waits.
    pub(super) fn recorded(&self) {
        update(self.0, |p| p.recorded = p.recorded.wrapping_add(1));
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        update(self.0, |p| p.answering = p.answering.saturating_sub(1));
    }
}

/// How many recorded-and-answered callbacks this process has seen on `port` (a generation).
pub(super) fn recorded(port: u16) -> u64 {
    read(port, |p| p.recorded)
}

/// Sleeps for `pause`, or less if a callback is recorded on `port` in this process meanwhile.
pub(super) fn sleep_unless_recorded(port: u16, seen: u64, pause: Duration) {
    let all = ports();
    let _ = CHANGED
        .wait_timeout_while(all, pause, |all| {
            all.get(&port).map_or(0, |p| p.recorded) == seen
        })
        .unwrap_or_else(|p| p.into_inner());
}

/// Waits, at most `limit`, until no answer of this process on `port` is being written, so
/// that a program that exits when its wait returns does not cut the browser's page off.
/// Returns whether they all finished.
pub(super) fn await_answers(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut all = ports();
    loop {
        if all.get(&port).map_or(0, |p| p.answering) == 0 {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        all = CHANGED
            .wait_timeout(all, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test uses its own port number: the state is process-wide.

    #[test]
    fn open_waits_are_counted_per_port() {
        let port = 1;
        assert_eq!(open_waits(port), 0);
        let a = OpenWait::new(port);
        let b = OpenWait::new(port);
        assert_eq!(open_waits(port), 2);
        assert_eq!(open_waits(port + 1), 0);
        drop(a);
        assert_eq!(open_waits(port), 1);
        drop(b);
        assert_eq!(open_waits(port), 0);
    }

    #[test]
    fn one_serving_listener_per_port() {
        let port = 2;
        let first = Serving::claim(port, "a").expect("free");
        assert_eq!(served(port).as_deref(), Some("a"));
        assert!(Serving::claim(port, "a").is_none());
        assert!(Serving::claim(port, "b").is_none());
        drop(first);
        assert_eq!(served(port), None);
        assert!(Serving::claim(port, "b").is_some());
    }

    #[test]
    fn answers_are_awaited_and_recorded_ones_wake_waits() {
        let port = 3;
        let _open = OpenWait::new(port);
        assert!(await_answers(port, Duration::ZERO));
        let answering = Answering::begin(port);
        assert!(!await_answers(port, Duration::from_millis(10)));
        let seen = recorded(port);
        let t = std::thread::spawn(move || {
            answering.recorded();
            drop(answering);
        });
        sleep_unless_recorded(port, seen, Duration::from_secs(20));
        assert!(await_answers(port, Duration::from_secs(20)));
        t.join().unwrap();
    }
}
