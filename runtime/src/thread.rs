//! What the runtime keeps per calling thread, in one thread-local the call path reaches
//! once per call: the thread's shard (of every module's admission slots and figures),
//! its idle arenas, and when to time its next call.
//!
//! A thread owns one of [`SHARDS`] - 1 shards for its lifetime, and threads beyond those
//! share the last: a thread calling steadily touches only cache lines of its own.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::pool::ArenaCache;
use crate::shard::{SHARDS, SHARED};

/// Which owned shards a live thread holds.
static CLAIMED: [AtomicBool; SHARED] = [const { AtomicBool::new(false) }; SHARED];

/// A thread's state. Only `Cell`s and a `RefCell` borrowed briefly: a nested call on the
/// same thread reaches the same state while its caller's call is running.
#[derive(Debug)]
pub(crate) struct ThreadState {
    /// This thread's shard; [`SHARED`] when it owns none.
    pub(crate) shard: usize,
    /// Calls left before the next one whose latency is timed.
    countdown: Cell<u32>,
    /// Idle arenas, one per pool.
    pub(crate) arenas: ArenaCache,
}

impl ThreadState {
    fn new() -> ThreadState {
        let claimed = CLAIMED.iter().position(|c| {
            // Acquire: the shard's last owner's stores happen before ours.
            c.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        let shard = claimed.unwrap_or(SHARED);
        ThreadState {
            shard,
            // Threads start at different points of the sampling cycle, so that threads
            // started together do not all time the same calls.
            countdown: Cell::new(1 + shard as u32),
            arenas: ArenaCache::default(),
        }
    }

    /// Whether this call is one to time, when one call in `every` is: counts down, and
    /// starts again at `every` each time it says yes.
    #[inline]
    pub(crate) fn time_this_call(&self, every: u32) -> bool {
        let left = self.countdown.get();
        if left > 1 {
            self.countdown.set(left - 1);
            false
        } else {
            self.countdown.set(every.max(1));
            true
        }
    }
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        if let Some(claim) = CLAIMED.get(self.shard) {
            // Release: the next owner sees every figure this thread stored.
            claim.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static STATE: ThreadState = ThreadState::new();
}

/// Runs `f` with this thread's state; while the thread is tearing down its locals, with
/// a state of its own that owns no shard and caches nothing.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&ThreadState) -> R) -> R {
    let mut f = Some(f);
    match STATE.try_with(|s| f.take().map(|f| f(s))) {
        Ok(Some(r)) => r,
        _ => {
            let passing = ThreadState {
                shard: SHARED,
                countdown: Cell::new(1),
                arenas: ArenaCache::default(),
            };
            f.map_or_else(|| unreachable!("the state ran `f`"), |f| f(&passing))
        }
    }
}

const _: () = assert!(SHARED + 1 == SHARDS);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_in_every_is_timed() {
        let state = ThreadState {
            shard: SHARED,
            countdown: Cell::new(1),
            arenas: ArenaCache::default(),
        };
        let timed: Vec<bool> = (0..9).map(|_| state.time_this_call(4)).collect();
        assert_eq!(
            timed,
            [true, false, false, false, true, false, false, false, true]
        );
        let every_call = ThreadState {
            shard: SHARED,
            countdown: Cell::new(1),
            arenas: ArenaCache::default(),
        };
        assert!(
            (0..3).all(|_| every_call.time_this_call(1)),
            "every call when every is 1"
        );
    }

    #[test]
    fn threads_own_shards_of_their_own() {
        let mine = with(|t| t.shard);
        let other = std::thread::spawn(|| with(|t| t.shard)).join().unwrap();
        assert!(mine < SHARDS && other < SHARDS);
        if mine != SHARED {
            assert_ne!(mine, other, "a live thread's shard is its own");
        }
    }
}
