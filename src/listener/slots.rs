//! The listener's connection table. At most `cap` connections are served at once; when the
//! table is full, the oldest connection that has waited at least `min_age` for its request
//! head is closed to make room, so idle connections cannot keep the probe or a callback out
//! for long (every connection still gets `min_age` to send its head). When no slot can be
//! freed, a new connection is turned away (with a `503` that names the listener). Stopping
//! closes the connections still waiting for a head and waits, boundedly, for the answers
//! being written.

use std::collections::VecDeque;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The table of one listener's connections.
#[derive(Debug)]
pub(super) struct Slots {
    cap: usize,
    min_age: Duration,
    table: Mutex<Table>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    /// In accept order, oldest first.
    entries: VecDeque<Entry>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    accepted: Instant,
    /// A handle on the connection while it may still be closed to make room: it has not sent
    /// its request head yet.
    waiting_for_head: Option<TcpStream>,
    /// Closed to make room; its thread is on its way out and holds no slot.
    evicted: bool,
}

impl Table {
    fn live(&self) -> usize {
        self.entries.iter().filter(|e| !e.evicted).count()
    }

    /// Closes the oldest connection that has waited at least `min_age` for its head.
    /// `false`: there is none.
    fn evict_oldest_waiting(&mut self, min_age: Duration) -> bool {
        let Some(entry) = self.entries.iter_mut().find(|e| {
            !e.evicted && e.waiting_for_head.is_some() && e.accepted.elapsed() >= min_age
        }) else {
            return false;
        };
        evict(entry);
        true
    }
}

fn evict(entry: &mut Entry) {
    if let Some(stream) = entry.waiting_for_head.take() {
        // Its thread's read returns at once; the client sees the connection closed.
        let _ = stream.shutdown(Shutdown::Both);
    }
    entry.evicted = true;
}

/// A connection's slot, held by its thread; dropping it frees the slot.
#[derive(Debug)]
pub(super) struct Ticket {
    slots: Arc<Slots>,
    id: u64,
}

impl Slots {
    pub(super) fn new(cap: usize, min_age: Duration) -> Arc<Slots> {
        Arc::new(Slots {
            cap: cap.max(1),
            min_age,
            table: Mutex::new(Table::default()),
            changed: Condvar::new(),
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a just-accepted connection, making room if needed. `None`: no slot could
    /// be freed (answer `503`).
    pub(super) fn admit(self: &Arc<Self>, stream: &TcpStream) -> Option<Ticket> {
        let mut table = self.table();
        if table.live() >= self.cap && !table.evict_oldest_waiting(self.min_age) {
            return None;
        }
        // Evicted threads leave within moments; never more than twice the cap in all.
        if table.entries.len() >= 2 * self.cap {
            return None;
        }
        let id = table.next_id;
        table.next_id += 1;
        table.entries.push_back(Entry {
            id,
            accepted: Instant::now(),
            // Without a second handle it cannot be closed from here; it then keeps its slot
            // until its own read deadline.
            waiting_for_head: stream.try_clone().ok(),
            evicted: false,
        });
        Some(Ticket {
            slots: Arc::clone(self),
            id,
        })
    }

    /// Closes every connection still waiting for its request head (the listener is stopping).
    pub(super) fn close_waiting(&self) {
        let mut table = self.table();
        for entry in table.entries.iter_mut() {
            if entry.waiting_for_head.is_some() {
                evict(entry);
            }
        }
    }

    /// Waits, at most `limit`, until no connection holds a slot. Returns whether none does.
    pub(super) fn wait_empty(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut table = self.table();
        loop {
            if table.entries.is_empty() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            table = self
                .changed
                .wait_timeout(table, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// How many connections hold a slot (evicted ones not counted).
    #[cfg(test)]
    pub(super) fn live(&self) -> usize {
        self.table().live()
    }
}

impl Ticket {
    /// The request head arrived: from now on the connection is answered, never closed to make
    /// room. `false`: it was closed meanwhile (nothing to answer).
    pub(super) fn answering(&self) -> bool {
        let mut table = self.slots.table();
        match table.entries.iter_mut().find(|e| e.id == self.id) {
            Some(entry) if !entry.evicted => {
                entry.waiting_for_head = None;
                true
            }
            _ => false,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut table = self.slots.table();
        table.entries.retain(|e| e.id != self.id);
        self.slots.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{Ipv4Addr, TcpListener};

    fn pair(server: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let (accepted, _) = server.accept().unwrap();
        (client, accepted)
    }

    #[test]
    fn a_full_table_closes_the_oldest_connection_still_waiting_for_its_head() {
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let slots = Slots::new(2, Duration::ZERO);
        let (mut c1, s1) = pair(&server);
        let (_c2, s2) = pair(&server);
        let (_c3, s3) = pair(&server);
        let t1 = slots.admit(&s1).unwrap();
        let t2 = slots.admit(&s2).unwrap();
        assert!(t2.answering(), "the second one sent its head");
        let t3 = slots.admit(&s3).expect("room made");
        assert_eq!(slots.live(), 2);
        assert!(!t1.answering(), "the first one was closed");
        let mut buf = [0u8; 1];
        assert_eq!(
            c1.read(&mut buf).unwrap_or(0),
            0,
            "its client sees the close"
        );
        assert!(t3.answering());
        // Both slots answer now: a fourth is turned away.
        let (_c4, s4) = pair(&server);
        assert!(slots.admit(&s4).is_none());
        drop((t1, t2));
        assert!(!slots.wait_empty(Duration::from_millis(10)));
        drop(t3);
        assert!(slots.wait_empty(Duration::ZERO));
    }

    #[test]
    fn a_connection_gets_its_minimum_age_before_it_can_be_closed() {
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let slots = Slots::new(1, Duration::from_secs(3600));
        let (_c1, s1) = pair(&server);
        let (_c2, s2) = pair(&server);
        let young = slots.admit(&s1).unwrap();
        assert!(
            slots.admit(&s2).is_none(),
            "too young to be closed: the new one waits"
        );
        assert!(young.answering());
    }

    #[test]
    fn stopping_closes_the_waiting_and_keeps_the_answering() {
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let slots = Slots::new(4, Duration::ZERO);
        let (_c1, s1) = pair(&server);
        let (_c2, s2) = pair(&server);
        let waiting = slots.admit(&s1).unwrap();
        let answering = slots.admit(&s2).unwrap();
        assert!(answering.answering());
        slots.close_waiting();
        assert!(!waiting.answering());
        assert_eq!(slots.live(), 1);
    }
}
