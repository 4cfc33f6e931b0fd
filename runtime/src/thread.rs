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

    /// Whether this call is one to time, when one call in `every` is, on average: counts
    /// down, and each time it says yes starts again from a count drawn from 1 to
    /// `2 * every - 1`, whose mean is `every`. A fixed count would time the same export
    /// each time round on a thread that calls exports in a fixed cycle: with 32, a
    /// thread alternating two exports timed the first only, and the second's histogram
    /// stayed empty. With 1, every call is timed. A thread's first count, and a count
    /// beyond that range (left by a runtime that samples more sparsely), are drawn anew
    /// (see [`due`](Self::due)).
    #[inline(always)]
    pub(crate) fn time_this_call(&self, every: u32) -> bool {
        let left = self.countdown.get();
        // `left < 2 * every`, with no overflow.
        if left > 1 && (left >> 1) < every {
            self.countdown.set(left - 1);
            false
        } else {
            self.due(left, every)
        }
    }

    /// [`time_this_call`](Self::time_this_call) past its count: this call is timed when
    /// the count ran out (or every call is). With no count yet (the thread's first call)
    /// or one no draw for `every` gives (another runtime's), the count is drawn as where
    /// a thread counting all along would be at this call ([`first_count`]), so this call
    /// too is timed one time in `every`. A thread's first count was fixed: the next
    /// thread on a shard given back timed its first call, so a host that makes a thread
    /// per request, or a daemon's fresh workers, had its histogram counted up to `every`
    /// times over. Out of line: one call in `every` comes here.
    ///
    /// [`first_count`]: Self::first_count
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
            self.first_count(every)
        };
        if count == 1 {
            self.countdown.set(self.next_count(every));
            true
        } else {
            self.countdown.set(count - 1);
            false
        }
    }

    /// A count to the next timed call, that call included, as a thread counting down all
    /// along would hold at a call picked at random: a long gap between two timed calls
    /// holds more calls than a short one, so a gap is picked as likely as its length
    /// (drawn evenly, kept with a chance of its length over the longest), and the count
    /// evenly from 1 to it. 1 comes one time in `every`.
    fn first_count(&self, every: u32) -> u32 {
        let span = every.saturating_mul(2).saturating_sub(1);
        let gap = loop {
            let gap = self.uniform(span);
            if self.uniform(span) <= gap {
                break gap;
            }
        };
        self.uniform(gap)
    }

    /// A count from 1 to `2 * every - 1`, each as likely; 1 when `every` is 0 or 1.
    fn next_count(&self, every: u32) -> u32 {
        self.uniform(every.saturating_mul(2).saturating_sub(1))
    }

    /// A number from 1 to `span`, each as likely (xorshift32, scaled by the high half of
    /// a multiply rather than a division); 1 when `span` is 0 or 1.
    fn uniform(&self, span: u32) -> u32 {
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

/// This thread's state as [`current`] reaches it, or, while the thread tears its locals
/// down, a passing one put in `passing`: for the call path, which reaches it without a
/// closure (through `with`'s, whose closure has two call sites, the nested call's path
/// went out of line as soon as it grew: 43 instructions a call, callgrind `relay_echo`).
///
/// # Safety
///
/// As for [`current`].
#[inline(always)]
pub(crate) unsafe fn current_or_passing(passing: &mut Option<ThreadState>) -> &ThreadState {
    // SAFETY: the caller's contract.
    match unsafe { current() } {
        Some(state) => state,
        None => passing.insert(ThreadState::passing()),
    }
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
        assert!((1..=3).contains(&state.countdown.get()));
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
