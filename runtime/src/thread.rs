//! What the runtime keeps per calling thread, in one thread-local the call path reaches
//! once per call: the thread's shard (of every module's admission slots and figures),
//! its idle arenas, when to time its next call, where its nested calls went and where its
//! stack ends. (The calls the thread runs are kept apart, in `crate::chain`, which
//! outlives this state.)
//!
//! A thread owns one of [`SHARDS`] - 1 shards for its lifetime, and threads beyond those
//! share the last: a thread calling steadily touches only cache lines of its own. The
//! state is built without running code (a constant), so reaching it costs a load and a
//! compare; the shard is claimed on the thread's first call.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::pool::ArenaCache;
use crate::shard::{SHARDS, SHARED};
use crate::stack::StackFloor;
use crate::targets::TargetCache;

/// Which owned shards a live thread holds.
static CLAIMED: [AtomicBool; SHARED] = [const { AtomicBool::new(false) }; SHARED];

/// `ThreadState::shard` before the thread's first call claims one.
const UNCLAIMED: usize = usize::MAX;

/// A thread's state. Only `Cell`s and a `RefCell` borrowed briefly: a nested call on the
/// same thread reaches the same state while its caller's call is running.
#[derive(Debug)]
pub(crate) struct ThreadState {
    /// This thread's shard: [`SHARED`] when it owns none, [`UNCLAIMED`] before its first
    /// call.
    shard: Cell<usize>,
    /// Calls left before the next one whose latency is timed.
    countdown: Cell<u32>,
    /// The generator that spaces the timed calls (xorshift32: never 0).
    spacing: Cell<u32>,
    /// Idle arenas, up to two per pool.
    pub(crate) arenas: ArenaCache,
    /// Where this thread's nested calls went last.
    pub(crate) targets: TargetCache,
    /// The lowest address of this thread's stack, for the calls that nest on it.
    pub(crate) stack: StackFloor,
}

impl ThreadState {
    const fn new() -> ThreadState {
        ThreadState {
            shard: Cell::new(UNCLAIMED),
            countdown: Cell::new(1),
            spacing: Cell::new(SPACING_SEED),
            arenas: ArenaCache::new(),
            targets: TargetCache::new(),
            stack: StackFloor::new(),
        }
    }

    /// A state that owns no shard, for a thread whose own is gone (it is tearing down
    /// its thread-locals).
    pub(crate) const fn passing() -> ThreadState {
        ThreadState {
            shard: Cell::new(SHARED),
            countdown: Cell::new(1),
            spacing: Cell::new(SPACING_SEED),
            arenas: ArenaCache::new(),
            targets: TargetCache::new(),
            stack: StackFloor::new(),
        }
    }

    /// This thread's shard, claimed on first use.
    #[inline]
    pub(crate) fn shard(&self) -> usize {
        match self.shard.get() {
            UNCLAIMED => self.claim(),
            shard => shard,
        }
    }

    #[cold]
    fn claim(&self) -> usize {
        let claimed = CLAIMED.iter().position(|c| {
            // Acquire: the shard's last owner's stores happen before ours.
            c.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        let shard = claimed.unwrap_or(SHARED);
        self.shard.set(shard);
        // Threads start at different points of the sampling cycle, and space their timed
        // calls with generators of their own, so that threads started together do not
        // all time the same calls.
        self.countdown.set(1 + shard as u32);
        self.spacing
            .set((SPACING_SEED ^ (shard as u32).wrapping_mul(0x85EB_CA6B)) | 1);
        shard
    }

    /// Whether this call is one to time, when one call in `every` is, on average: counts
    /// down, and each time it says yes starts again from a count drawn from 1 to
    /// `2 * every - 1`, whose mean is `every`. A fixed count would time the same export
    /// each time round on a thread that calls exports in a fixed cycle: with 32, a
    /// thread alternating two exports timed the first only, and the second's histogram
    /// stayed empty. A count beyond that range (a thread's staggered start, or a count
    /// left by a runtime that samples more sparsely) times this call: with 1, every
    /// call is timed.
    #[inline(always)]
    pub(crate) fn time_this_call(&self, every: u32) -> bool {
        let left = self.countdown.get();
        // `left < 2 * every`, with no overflow.
        if left > 1 && (left >> 1) < every {
            self.countdown.set(left - 1);
            false
        } else {
            self.countdown.set(self.next_count(every));
            true
        }
    }

    /// A count from 1 to `2 * every - 1`, each as likely (xorshift32, scaled by the high
    /// half of a multiply rather than a division); 1 when `every` is 0 or 1. Out of
    /// line: one call in `every` comes here.
    #[cold]
    #[inline(never)]
    fn next_count(&self, every: u32) -> u32 {
        let span = every.saturating_mul(2).saturating_sub(1);
        if span <= 1 {
            return 1;
        }
        let mut x = self.spacing.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.spacing.set(x);
        1 + ((u64::from(x) * u64::from(span)) >> 32) as u32
    }
}

/// The spacing generator's start; each thread's is mixed with its shard.
const SPACING_SEED: u32 = 0x9E37_79B9;

impl Drop for ThreadState {
    fn drop(&mut self) {
        if let Some(claim) = CLAIMED.get(self.shard.get()) {
            // Release: the next owner sees every figure this thread stored.
            claim.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static STATE: ThreadState = const { ThreadState::new() };
}

/// Runs `f` with this thread's state; while the thread is tearing down its locals, with
/// a state of its own that owns no shard and caches nothing.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&ThreadState) -> R) -> R {
    // SAFETY: the state is used only by `f`, within this call.
    match unsafe { current() } {
        Some(state) => f(state),
        None => with_passing(f),
    }
}

/// This thread's state, reached without a closure (the call path's arguments are not
/// moved into one); `None` while the thread is tearing down its locals (use
/// [`ThreadState::passing`] then).
///
/// # Safety
///
/// The reference must not be used after the caller returns. (It cannot leave the thread:
/// the state is not `Sync`. Kept longer, say in another thread-local, it could outlive
/// the state, which is destroyed when the thread exits.)
#[inline]
pub(crate) unsafe fn current<'a>() -> Option<&'a ThreadState> {
    let state = STATE.try_with(core::ptr::from_ref).ok()?;
    // SAFETY: the state lives until this thread destroys its locals, and that cannot
    // happen while the caller runs: locals are destroyed one at a time, after the code
    // that uses them returned (a destructor calling here either got `Err` above or runs
    // before this state's destructor). The caller does not keep it longer.
    Some(unsafe { &*state })
}

#[cold]
#[inline(never)]
fn with_passing<R>(f: impl FnOnce(&ThreadState) -> R) -> R {
    f(&ThreadState::passing())
}

const _: () = assert!(SHARED + 1 == SHARDS);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // Counts over many thousand calls, with no memory of interest to Miri, which would
    // take minutes over them.
    #[cfg_attr(miri, ignore)]
    fn one_call_in_every_is_timed() {
        let state = ThreadState::passing();
        let timed = (0..64_000).filter(|_| state.time_this_call(32)).count();
        assert!(
            (1_800..=2_200).contains(&timed),
            "{timed} of 64,000, not about 2,000"
        );
        // The gaps between timed calls vary, from 1 to 2 * every - 1.
        let mut gaps = Vec::new();
        let mut last = 0;
        for i in 1..=20_000 {
            if state.time_this_call(4) {
                gaps.push(i - last);
                last = i;
            }
        }
        assert!(gaps.iter().all(|g| (1..=7).contains(g)), "{gaps:?}");
        assert!(
            (1..=7).all(|g| gaps.contains(&g)),
            "every gap from 1 to 7 comes"
        );
        let every_call = ThreadState::passing();
        assert!(
            (0..3).all(|_| every_call.time_this_call(1)),
            "every call when every is 1"
        );
    }

    #[test]
    fn a_count_left_from_a_sparser_cycle_never_skips_a_call_to_time() {
        // A thread that claimed a later shard starts its cycle further on, and a runtime
        // that samples one call in 32 leaves a long count behind.
        let state = ThreadState::passing();
        state.countdown.set(7);
        assert!(
            (0..3).all(|_| state.time_this_call(1)),
            "every call when every is 1"
        );
        state.countdown.set(30);
        assert!(
            state.time_this_call(2),
            "a count past 2 * every - 1 times this call"
        );
        assert!(state.countdown.get() <= 3);
    }

    /// A thread calling two exports in turn times both about equally: with a fixed
    /// count of 32, every timed call fell on the first.
    #[test]
    // Counts over many thousand calls, with no memory of interest to Miri, which would
    // take minutes over them.
    #[cfg_attr(miri, ignore)]
    fn exports_called_in_a_cycle_are_timed_alike() {
        let state = ThreadState::passing();
        let mut timed = [0u32; 2];
        for i in 0..64_000 {
            if state.time_this_call(32) {
                timed[i % 2] += 1;
            }
        }
        assert!(
            timed.iter().all(|&t| (800..=1_200).contains(&t)),
            "{timed:?}"
        );
    }

    #[test]
    fn threads_own_shards_of_their_own() {
        let mine = with(ThreadState::shard);
        let other = std::thread::spawn(|| with(ThreadState::shard))
            .join()
            .unwrap();
        assert!(mine < SHARDS && other < SHARDS);
        if mine != SHARED {
            assert_ne!(mine, other, "a live thread's shard is its own");
        }
    }

    #[test]
    fn a_shard_is_claimed_once_for_the_threads_life() {
        let (first, again) = std::thread::spawn(|| {
            let first = with(ThreadState::shard);
            (first, with(ThreadState::shard))
        })
        .join()
        .unwrap();
        assert_eq!(first, again, "the same shard for the thread's life");
    }
}
