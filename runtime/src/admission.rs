//! Admission: how many calls a module runs at once, what happens to the next one when
//! it is full, and the backpressure value each call is told.
//!
//! The fast path is one compare-and-swap on the module's in-flight count. Only a call
//! that has to wait touches the lock and condition variable, and a finishing call
//! touches them only when someone is waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// What to do with a call that finds its module at its concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Saturation {
    /// Refuse it at once (`RuntimeError::Saturated`; a nested call gets
    /// `ModuleError::CallFailed` saying so).
    #[default]
    Reject,
    /// Let it wait for a free slot until its deadline (`ModuleError::Timeout` then); a call
    /// without a deadline waits as long as it takes.
    Wait,
}

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Saturated,
    DeadlinePassed,
}

/// The in-flight count of one module, with a waiting room.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    in_flight: AtomicUsize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
}

impl Gate {
    /// Calls running now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Takes a slot, returning how many calls run with this one.
    pub(crate) fn enter(
        &self,
        limit: usize,
        policy: Saturation,
        deadline: Option<Instant>,
    ) -> Result<usize, Refused> {
        if let Some(n) = self.try_enter(limit) {
            return Ok(n);
        }
        match policy {
            Saturation::Reject => Err(Refused::Saturated),
            Saturation::Wait => self.wait(limit, deadline),
        }
    }

    fn try_enter(&self, limit: usize) -> Option<usize> {
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|before| before + 1)
    }

    fn wait(&self, limit: usize, deadline: Option<Instant>) -> Result<usize, Refused> {
        // Announce the waiter before looking, so a call that leaves after our look sees
        // it and wakes us (both sides use SeqCst, see `leave`).
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = loop {
            if let Some(n) = self.try_enter(limit) {
                break Ok(n);
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

    /// Gives the slot back and wakes one waiter, if any.
    pub(crate) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.freed.notify_one();
        }
    }
}

/// Load as a value in `[0, 1]`: 0 when a call is alone, 1 when it took the last slot.
///
/// `running` counts the call itself, so `(running - 1) / (limit - 1)`.
pub(crate) fn load(running: usize, limit: usize) -> f32 {
    let others = running.saturating_sub(1) as f32;
    let room = limit.saturating_sub(1).max(1) as f32;
    (others / room).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn load_goes_from_zero_alone_to_one_full() {
        assert_eq!(load(1, 8), 0.0);
        assert_eq!(load(8, 8), 1.0);
        assert!((load(4, 8) - 3.0 / 7.0).abs() < 1e-6);
        assert_eq!(load(1, 1), 0.0);
        assert_eq!(load(50, 8), 1.0);
    }

    #[test]
    fn reject_refuses_past_the_limit() {
        let g = Gate::default();
        assert_eq!(g.enter(2, Saturation::Reject, None), Ok(1));
        assert_eq!(g.enter(2, Saturation::Reject, None), Ok(2));
        assert_eq!(
            g.enter(2, Saturation::Reject, None),
            Err(Refused::Saturated)
        );
        g.leave();
        assert_eq!(g.enter(2, Saturation::Reject, None), Ok(2));
    }

    #[test]
    fn wait_times_out_at_the_deadline_or_gets_the_freed_slot() {
        let g = Arc::new(Gate::default());
        g.enter(1, Saturation::Wait, None).unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            g.enter(1, Saturation::Wait, Some(soon)),
            Err(Refused::DeadlinePassed)
        );
        let g2 = Arc::clone(&g);
        let waiter = std::thread::spawn(move || g2.enter(1, Saturation::Wait, None));
        std::thread::sleep(Duration::from_millis(20));
        g.leave();
        assert_eq!(waiter.join().unwrap(), Ok(1));
        assert_eq!(g.in_flight(), 1);
    }
}
