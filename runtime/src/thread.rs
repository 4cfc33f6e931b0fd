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
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::pool::ArenaCache;
use crate::shard::{SHARDS, SHARED};
use crate::stack::StackFloor;
use crate::targets::TargetCache;

/// Which owned shards a live thread holds.
static CLAIMED: [AtomicBool; SHARED] = [const { AtomicBool::new(false) }; SHARED];

/// `ThreadState::shard` before the thread's first call claims one.
const UNCLAIMED: usize = usize::MAX;

/// Thread states that drew a count so far: each mixes its number into its generator's
/// seed, so that no two draw the same counts.
static SEEDS: AtomicU32 = AtomicU32::new(0);

/// A count to the next timed call is at most this many times the sampling, less one: a
/// count past that was left by another runtime, which samples more sparsely (the count
/// is the thread's, across runtimes).
const SPAN: u32 = 8;

/// A thread's state. Only `Cell`s and a `RefCell` borrowed briefly: a nested call on the
/// same thread reaches the same state while its caller's call is running.
#[derive(Debug)]
pub(crate) struct ThreadState {
    /// This thread's shard: [`SHARED`] when it owns none, [`UNCLAIMED`] before its first
    /// call.
    shard: Cell<usize>,
    /// Calls left before the next one whose latency is timed, that one included (0: none
    /// drawn yet).
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
            countdown: Cell::new(0),
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
            countdown: Cell::new(0),
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
        shard
    }

    /// Whether this call is one to time, when one call in `every` is, on average: each
    /// call is timed with chance 1 in `every`, whatever came before it. The thread counts
    /// down to its next timed call, across every export it calls, from a count drawn from
    /// the geometric law of that chance (capped at `SPAN * every - 1`, which leaves out
    /// one count in 3,000). A count with memory (one drawn evenly from 1 to `2 * every -
    /// 1`, a thread's first count fixed) timed the first calls of new threads far more
    /// often than one in `every`: a host that makes a thread per request, or a daemon's
    /// fresh workers, had its histogram counted up to `every` times over. A fixed count
    /// would time the same export each time round on a thread that calls exports in a
    /// fixed cycle. With 1, every call is timed.
    #[inline(always)]
    pub(crate) fn time_this_call(&self, every: u32) -> bool {
        let left = self.countdown.get();
        // A count drawn for `every`, not yet run out: 2 to `SPAN * every - 1`.
        if left > 1 && every > 1 && (left >> SPAN.trailing_zeros()) < every {
            self.countdown.set(left - 1);
            false
        } else {
            self.due(left, every)
        }
    }

    /// [`time_this_call`](Self::time_this_call) past its count: this call is timed when
    /// the count ran out (or every call is); with no count yet (the thread's first call)
    /// or one no draw for `every` gives (another runtime's), a fresh one is drawn from
    /// this call, which so is as likely to be timed as any. Out of line: one call in
    /// `every` comes here.
    #[cold]
    #[inline(never)]
    fn due(&self, left: u32, every: u32) -> bool {
        if left == 0 {
            // The state's first count: its generator is seeded apart from every other
            // thread's, so that threads started together, or one after another, do not
            // time the same calls.
            let seed = SEEDS.fetch_add(1, Ordering::Relaxed);
            self.spacing
                .set((SPACING_SEED ^ seed.wrapping_mul(0x85EB_CA6B)) | 1);
        }
        let count = if left == 1 || every <= 1 {
            1
        } else {
            self.next_count(every)
        };
        if count == 1 {
            self.countdown.set(self.next_count(every));
            true
        } else {
            self.countdown.set(count - 1);
            false
        }
    }

    /// A count to the next timed call, that call included: 1 with chance 1 in `every`, 2
    /// with that chance of the rest, and so on (the geometric law, from xorshift32),
    /// capped at `SPAN * every - 1`; 1 when `every` is 0 or 1.
    fn next_count(&self, every: u32) -> u32 {
        if every <= 1 {
            return 1;
        }
        let mut x = self.spacing.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.spacing.set(x);
        // In (0, 1]: xorshift32 never gives 0.
        let u = f64::from(x) / f64::from(u32::MAX);
        let failures = (u.ln() / (-1.0 / f64::from(every)).ln_1p()).floor();
        let cap = every.saturating_mul(SPAN) - 1;
        // A float past `u32::MAX` (never, below the cap) saturates in the cast.
        (1.0 + failures).min(f64::from(cap)) as u32
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
        // The gaps between timed calls vary, from 1 to the cap, about 4 on average.
        let mut gaps = Vec::new();
        let mut last = 0;
        for i in 1..=40_000 {
            if state.time_this_call(4) {
                gaps.push(i - last);
                last = i;
            }
        }
        assert!(gaps.iter().all(|g| (1..=31).contains(g)), "{gaps:?}");
        assert!((1..=12).all(|g| gaps.contains(&g)), "gaps of 1 to 12 come");
        let ones = gaps.iter().filter(|&&g| g == 1).count() as f64 / gaps.len() as f64;
        assert!(
            (0.22..=0.28).contains(&ones),
            "a gap of 1 one time in 4: {ones}"
        );
        let every_call = ThreadState::passing();
        assert!(
            (0..3).all(|_| every_call.time_this_call(1)),
            "every call when every is 1"
        );
    }

    #[test]
    fn a_count_left_from_a_sparser_cycle_never_skips_a_call_to_time() {
        // A runtime that samples one call in 32 leaves a long count behind.
        let state = ThreadState::passing();
        state.countdown.set(7);
        assert!(
            (0..3).all(|_| state.time_this_call(1)),
            "every call when every is 1"
        );
        // Past any count drawn for 2: a fresh one is drawn from this call.
        state.countdown.set(30);
        state.time_this_call(2);
        assert!((1..=15).contains(&state.countdown.get()));
    }

    /// Threads that make one call each, one after another (a thread per request), time
    /// about one call in `every` between them. Before, each new thread's first count was
    /// fixed (1, on a shard the thread before had given back): every such call was
    /// timed, and the histogram counted 32 times the calls made.
    #[test]
    // Thousands of threads, with no memory of interest to Miri.
    #[cfg_attr(miri, ignore)]
    fn a_thread_s_first_call_is_timed_one_time_in_every() {
        let timed = (0..4_000)
            .filter(|_| {
                std::thread::spawn(|| with(|t| t.time_this_call(32)))
                    .join()
                    .unwrap()
            })
            .count();
        // 125 on average, give or take 11.
        assert!(
            (60..=200).contains(&timed),
            "{timed} of 4,000 first calls timed"
        );
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
