//! Admission: how many calls a module runs at once, what happens to the next one when
//! it is full, and how loaded it is.
//!
//! How loaded a module is, for backpressure, is the `backpressure` module's to say from
//! the gate's calls in flight.
//!
//! A module has `limit` slots. Free slots sit either in a shared count or in one of the
//! per-thread shards (`shard::shard_index`, as the built-in metrics use): a call
//! takes a slot from its thread's shard when it holds one, else from the shared count,
//! else from any other shard, and gives it back to its thread's shard. A thread calling
//! steadily therefore touches only its own cache line, and threads calling at once do
//! not contend (one shared count made two threads slower than one, see
//! benches/README.md). A slot is taken or given back with one atomic operation, so no
//! more than `limit` calls ever run. Only a call that has to wait touches the lock and
//! condition variable, and a finishing call touches them only when someone is waiting.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::shard::{shard_index, SHARDS};

/// What to do with a call that finds its module at its concurrency limit.
///
/// Either way, a call a module makes into itself, directly or through other modules
/// (`A` calls `B` calls `A`), runs within the slot its chain already holds: it takes no
/// second slot and never waits for one, so re-entrancy cannot deadlock a module however
/// low its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Saturation {
    /// Refuse it at once (`RuntimeError::Saturated`; a nested call gets
    /// `ModuleError::CallFailed` saying so).
    #[default]
    Reject,
    /// Let it wait for a free slot until its deadline (`ModuleError::Timeout` then); a call
    /// without a deadline waits as long as it takes. A module being unloaded refuses its
    /// waiters at once.
    ///
    /// Two chains can still wait on each other: with limits of one, `A` calling `B` while
    /// `B` calls `A` from another thread leaves each waiting for the slot the other holds.
    /// Give such calls a deadline (`RuntimeConfig::default_timeout`), or use `Reject`.
    Wait,
}

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Saturated,
    DeadlinePassed,
    /// The gate is closed: the module is being retired.
    Closed,
}

/// A count of free slots on a cache line of its own.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Slots(AtomicUsize);

impl Slots {
    /// Takes one slot if there is one. A shard found empty costs a load, not a write.
    fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn take_all(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// The slots of one module, with a waiting room.
#[derive(Debug)]
pub(crate) struct Gate {
    limit: usize,
    /// Free slots no thread's shard holds.
    free: Slots,
    /// Free slots held by the threads of each shard.
    held: Box<[Slots]>,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
    /// Set once, when the module is retired: no call is admitted after it.
    closed: AtomicBool,
}

impl Gate {
    /// A gate of `limit` slots, all free.
    pub(crate) fn new(limit: usize) -> Gate {
        Gate {
            limit,
            free: Slots(AtomicUsize::new(limit)),
            held: (0..SHARDS).map(|_| Slots::default()).collect(),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Admits no call from now on and wakes every waiter, which gives up. Calls that
    /// hold a slot run on; [`drain`](Gate::drain) waits for them.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake(true);
    }

    /// Whether [`close`](Gate::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Calls running now, as of a moment during this read (slots moving between counts
    /// while it sums may make it off by the few that moved).
    pub(crate) fn in_flight(&self) -> usize {
        let free = self.free.get() + self.held.iter().map(Slots::get).sum::<usize>();
        self.limit.saturating_sub(free)
    }

    /// Most calls running at once.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Takes a slot for a call.
    pub(crate) fn enter(
        &self,
        policy: Saturation,
        deadline: Option<Instant>,
    ) -> Result<(), Refused> {
        if self.try_enter() {
            return Ok(());
        }
        match policy {
            Saturation::Reject => Err(Refused::Saturated),
            Saturation::Wait => self.wait(deadline),
        }
    }

    fn try_enter(&self) -> bool {
        self.held[shard_index()].take() || self.free.take() || self.held.iter().any(Slots::take)
    }

    fn wait(&self, deadline: Option<Instant>) -> Result<(), Refused> {
        // Announce the waiter before looking, so a call that leaves after our look sees
        // it and wakes us (both sides use SeqCst, see `leave`).
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = loop {
            if self.is_closed() {
                break Err(Refused::Closed);
            }
            if self.try_enter() {
                break Ok(());
            }
            guard = match deadline {
                None => self.freed.wait(guard).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break Err(Refused::DeadlinePassed);
                    }
                    self.freed
                        .wait_timeout(guard, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        };
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        outcome
    }

    /// Gives the slot back (to this thread's shard) and wakes one waiter, if any.
    pub(crate) fn leave(&self) {
        self.held[shard_index()].0.fetch_add(1, Ordering::SeqCst);
        self.wake(false);
    }

    fn wake(&self, all: bool) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            if all {
                self.freed.notify_all();
            } else {
                self.freed.notify_one();
            }
        }
    }

    /// Returns once no call holds a slot. Calls that start meanwhile must give theirs
    /// back at once (the caller has made sure they will, by closing the gate first).
    /// Calls re-entering the module from a chain that holds a slot take none (see
    /// [`Saturation`]), so nothing a running call does waits on the drain.
    ///
    /// It gathers every free slot until it holds all `limit` of them, then frees them
    /// again: holding them all is the one proof that no call runs, where summing the
    /// counts could miss a slot moving between two of them.
    pub(crate) fn drain(&self) {
        let mut gathered = 0;
        loop {
            gathered += self.free.take_all();
            gathered += self.held.iter().map(Slots::take_all).sum::<usize>();
            if gathered >= self.limit {
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        self.free.0.fetch_add(gathered, Ordering::SeqCst);
        self.wake(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn reject_refuses_past_the_limit() {
        let g = Gate::new(2);
        assert_eq!(g.enter(Saturation::Reject, None), Ok(()));
        assert_eq!(g.enter(Saturation::Reject, None), Ok(()));
        assert_eq!(g.in_flight(), 2);
        assert_eq!(g.enter(Saturation::Reject, None), Err(Refused::Saturated));
        g.leave();
        assert_eq!(g.enter(Saturation::Reject, None), Ok(()));
        assert_eq!(g.in_flight(), g.limit());
    }

    #[test]
    fn slots_held_by_one_thread_are_taken_by_another() {
        let g = Gate::new(3);
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..3 {
                    g.enter(Saturation::Reject, None).unwrap();
                }
                for _ in 0..3 {
                    g.leave();
                }
            });
        });
        assert_eq!(g.free.get(), 0, "the first thread's shard holds every slot");
        assert_eq!(g.in_flight(), 0);
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..3 {
                    assert_eq!(g.enter(Saturation::Reject, None), Ok(()));
                }
                assert_eq!(g.enter(Saturation::Reject, None), Err(Refused::Saturated));
            });
        });
    }

    #[test]
    fn wait_times_out_at_the_deadline_or_gets_the_freed_slot() {
        let g = Arc::new(Gate::new(1));
        g.enter(Saturation::Wait, None).unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            g.enter(Saturation::Wait, Some(soon)),
            Err(Refused::DeadlinePassed)
        );
        let g2 = Arc::clone(&g);
        let waiter = std::thread::spawn(move || g2.enter(Saturation::Wait, None));
        std::thread::sleep(Duration::from_millis(20));
        g.leave();
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(g.in_flight(), 1);
    }

    #[test]
    fn closing_turns_away_waiters_at_once() {
        let g = Arc::new(Gate::new(1));
        g.enter(Saturation::Wait, None).unwrap();
        let g2 = Arc::clone(&g);
        let waiter = std::thread::spawn(move || g2.enter(Saturation::Wait, None));
        while g.waiters.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        g.close();
        assert_eq!(waiter.join().unwrap(), Err(Refused::Closed));
        assert!(g.is_closed());
        g.leave();
        g.drain();
    }

    #[test]
    fn drain_returns_once_every_call_has_left() {
        let g = Arc::new(Gate::new(4));
        g.enter(Saturation::Reject, None).unwrap();
        let g2 = Arc::clone(&g);
        let left = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let left2 = Arc::clone(&left);
        let caller = std::thread::spawn(move || {
            g2.enter(Saturation::Reject, None).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            left2.store(true, Ordering::SeqCst);
            g2.leave();
        });
        std::thread::sleep(Duration::from_millis(5));
        g.leave();
        g.drain();
        assert!(
            left.load(Ordering::SeqCst),
            "drain returned with a call running"
        );
        caller.join().unwrap();
        assert_eq!(g.in_flight(), 0);
        assert_eq!(g.free.get(), 4, "every slot is free again");
    }
}
