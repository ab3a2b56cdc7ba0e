//! Taking the port later: while connections a program left behind keep the system from
//! letting anyone bind the callback port, [`Retry`] tries again in the background until the
//! port is taken or the [`LoopbackCallback`](super::LoopbackCallback) is dropped, and
//! [`PortDelay`] tells the caller, in one line for its user, what is going on.

use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::whole_seconds;

/// Why a [`LoopbackCallback`](super::LoopbackCallback) does not serve its port yet, and about
/// when it will: nothing listens on the port, but a program that listened there without
/// `SO_REUSEADDR` left closed connections behind (TIME_WAIT, 60 s on Linux), and the system
/// lets nobody bind the port until they end. The callback's listener takes the port as soon
/// as the system allows; a browser that arrives before that finds nobody and shows its own
/// error page, which a reload fixes once the port is served (or paste-back, see
/// [`LoopbackCallback::paste_hint`](super::LoopbackCallback::paste_hint)).
///
/// Its `Display` is one line for the tool to show its user (the library prints nothing).
#[derive(Clone, PartialEq, Eq)]
pub struct PortDelay {
    port: u16,
    free_at: Instant,
}

impl PortDelay {
    pub(crate) fn new(port: u16, free_at: Instant) -> Self {
        PortDelay { port, free_at }
    }

    /// The callback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// About how long until the system frees the port, by the kernel's own timers (zero once
    /// that time has passed; the listener keeps trying until it has the port).
    pub fn free_in(&self) -> Duration {
        self.free_at.saturating_duration_since(Instant::now())
    }
}

impl fmt::Debug for PortDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortDelay")
            .field("port", &self.port)
            .field("free_in", &self.free_in())
            .finish()
    }
}

impl fmt::Display for PortDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the callback port 127.0.0.1:{} is not free yet: nothing listens on it, but the \
             system keeps connections a program left there for about {} s more, and this \
             program takes the port then; if the browser gets there first and shows an error, \
             reload that page after that, or paste its address into \
             `oauth-state-store deliver -`",
            self.port,
            whole_seconds(&self.free_in()).max(1)
        )
    }
}

/// The pause between two attempts. The kernel's estimate is not slept through: a connection
/// in TIME_WAIT also ends early, when its peer's port sends it a new SYN or a reset (a
/// browser's reload may), so the bind is tried all along; a bind costs microseconds.
pub(super) const PAUSE: Duration = Duration::from_millis(100);

/// How long past the kernel's estimate a refused bind is still taken for "not yet" without
/// reading the socket table again (a timer fires a little late; reading the table walks the
/// kernel's whole connection hash, milliseconds of CPU where a bind costs microseconds).
pub(super) const TRUST_ESTIMATE: Duration = Duration::from_secs(1);

/// A background thread that runs an attempt after each pause until the attempt says it is
/// done (`false`) or the `Retry` is dropped, which stops it and waits for it.
#[derive(Debug)]
pub(super) struct Retry {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Retry {
    /// Starts the thread: `attempt` runs after each `pause` for as long as it returns `true`.
    pub(super) fn spawn(
        pause: Duration,
        mut attempt: impl FnMut() -> bool + Send + 'static,
    ) -> io::Result<Retry> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("oauth-callback-take".into())
            .spawn(move || {
                let (lock, cvar) = &*flag;
                loop {
                    let stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                    let (stopped, _) = cvar
                        .wait_timeout_while(stopped, pause, |stopped| !*stopped)
                        .unwrap_or_else(|p| p.into_inner());
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    if !attempt() {
                        return;
                    }
                }
            })?;
        Ok(Retry {
            stop,
            thread: Some(thread),
        })
    }

    /// Whether it is still trying.
    pub(super) fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Retry {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cvar.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn retries_until_done() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let retry = Retry::spawn(Duration::from_millis(1), move || {
            counted.fetch_add(1, Ordering::SeqCst) + 1 < 3
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while retry.is_running() {
            assert!(Instant::now() < deadline);
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn dropping_stops_it_in_its_pause() {
        let retry = Retry::spawn(Duration::from_secs(3600), || false).unwrap();
        let start = Instant::now();
        drop(retry);
        assert!(start.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn the_line_names_the_port_and_a_whole_number_of_seconds() {
        let delay = PortDelay::new(33418, Instant::now() + Duration::from_millis(41_500));
        let line = delay.to_string();
        assert!(line.contains("127.0.0.1:33418"), "{line}");
        assert!(line.contains("about 42 s"), "{line}");
        assert!(!line.contains('\n'));
        let passed = PortDelay::new(33418, Instant::now());
        assert!(passed.to_string().contains("about 1 s"));
        assert_eq!(passed.free_in(), Duration::ZERO);
    }
}
