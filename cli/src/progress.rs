//! Progress of long work on stderr, drawn only when stderr is a terminal (never under cron or
//! in a pipe) and only once the work has lasted a moment, so that short runs stay silent.

use std::io::IsTerminal;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Nothing is drawn before the work has lasted this long.
const DELAY: Duration = Duration::from_millis(300);

/// How often a row count is read again, at most.
const POLL: Duration = Duration::from_millis(250);

/// A count that took this long waits this many times as long before the next one, so that
/// counting (a scan of the file) takes at most a tenth of a core from the work it watches.
const POLL_FACTOR: u32 = 10;

/// How often the spinner turns.
const TICK: Duration = Duration::from_millis(120);

/// Whether progress would be seen: stderr is a terminal.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// A progress display running on its own thread; dropping it clears the line.
pub struct Progress {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// No display.
    pub fn none() -> Self {
        Progress {
            stop: None,
            thread: None,
        }
    }

    /// A bar of `total` rows; `remaining` says how many are left (`None`: unknown this time).
    pub fn rows(
        label: &'static str,
        total: u64,
        mut remaining: impl FnMut() -> Option<u64> + Send + 'static,
    ) -> Self {
        Self::start(move |stop| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix} [{bar:30}] {pos}/{len} rows, {elapsed}",
                )
                .expect("a valid progress template")
                .progress_chars("=> "),
            );
            bar.set_prefix(label);
            bar.enable_steady_tick(TICK);
            loop {
                let began = Instant::now();
                if let Some(left) = remaining() {
                    bar.set_position(total.saturating_sub(left));
                }
                let pause = POLL.max(began.elapsed() * POLL_FACTOR);
                if stop.recv_timeout(pause) != Err(RecvTimeoutError::Timeout) {
                    break;
                }
            }
            bar.finish_and_clear();
        })
    }

    /// A spinner with `message` and the time elapsed, for work whose size is unknown.
    pub fn spinner(message: &'static str) -> Self {
        Self::start(move |stop| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}, {elapsed}")
                    .expect("a valid progress template"),
            );
            bar.set_message(message);
            bar.enable_steady_tick(TICK);
            let _ = stop.recv();
            bar.finish_and_clear();
        })
    }

    fn start(draw: impl FnOnce(mpsc::Receiver<()>) + Send + 'static) -> Self {
        if !wanted() {
            return Self::none();
        }
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            if rx.recv_timeout(DELAY) == Err(RecvTimeoutError::Timeout) {
                draw(rx);
            }
        });
        Progress {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Closing the channel stops the thread whichever way it waits.
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
