//! What the runtime keeps per calling thread, in one thread-local the call path reaches
//! once per call: the thread's shard (of every module's admission slots and figures),
//! its idle arenas, when to time its next call, and where its nested calls went.
//!
//! A thread owns one of [`SHARDS`] - 1 shards for its lifetime, and threads beyond those
//! share the last: a thread calling steadily touches only cache lines of its own. The
//! state is built without running code (a constant), so reaching it costs a load and a
//! compare; the shard is claimed on the thread's first call.

use core::ffi::c_void;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::meta::CallMeta;
use crate::pool::ArenaCache;
use crate::shard::{SHARDS, SHARED};
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
    /// Idle arenas, up to two per pool.
    pub(crate) arenas: ArenaCache,
    /// Where this thread's nested calls went last.
    pub(crate) targets: TargetCache,
    /// The frame of the innermost call this thread runs in a module, or null: what
    /// `HostApi::running_call` answers (`crate::invoke` sets it around a module's entry
    /// point and puts the outer call's back).
    pub(crate) running: Cell<*mut c_void>,
    /// The innermost call whose host code (its interceptors, a log sink given its panic)
    /// this thread runs, or null: a call that host code makes is part of that call's
    /// chain, though no module runs on the thread meanwhile ([`ThreadState::hooked_by`]).
    hooked: Cell<*const Hooked>,
}

/// A call whose host code runs on a thread: what a call that code makes carries, the
/// lineage of the module it runs for, and the hooked call around it (or null).
struct Hooked {
    meta: CallMeta,
    lineage: u64,
    outer: *const Hooked,
}

impl ThreadState {
    const fn new() -> ThreadState {
        ThreadState {
            shard: Cell::new(UNCLAIMED),
            countdown: Cell::new(1),
            arenas: ArenaCache::new(),
            targets: TargetCache::new(),
            running: Cell::new(core::ptr::null_mut()),
            hooked: Cell::new(core::ptr::null()),
        }
    }

    /// A state that owns no shard, for a thread whose own is gone (it is tearing down
    /// its thread-locals).
    pub(crate) const fn passing() -> ThreadState {
        ThreadState {
            shard: Cell::new(SHARED),
            countdown: Cell::new(1),
            arenas: ArenaCache::new(),
            targets: TargetCache::new(),
            running: Cell::new(core::ptr::null_mut()),
            hooked: Cell::new(core::ptr::null()),
        }
    }

    /// Runs `f`, host code of a call to the module of `lineage` (its interceptors, a log
    /// sink given its panic), with that call as this thread's hooked call: a call `f`
    /// makes carries `meta`'s chain, one level deeper, and an unload or reload of that
    /// module from `f` is refused (it would wait for the call `f` runs in). The hooked
    /// call before is put back after, `f` unwinding or not.
    pub(crate) fn hooked_by<R>(&self, meta: CallMeta, lineage: u64, f: impl FnOnce() -> R) -> R {
        /// Puts the outer hooked call back when dropped.
        struct Restore<'t>(&'t ThreadState, *const Hooked);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.hooked.set(self.1);
            }
        }
        let hook = Hooked {
            meta,
            lineage,
            outer: self.hooked.get(),
        };
        // Declared after `hook`, so dropped before it: the pointer is put back while
        // `hook` is still alive.
        let _restore = Restore(self, hook.outer);
        self.hooked.set(&hook);
        f()
    }

    /// What the innermost call whose host code this thread runs carries, if it runs any
    /// (a copy: the call's own is on the stack of a frame that ends before this state
    /// does).
    #[inline]
    pub(crate) fn hooked(&self) -> Option<CallMeta> {
        // SAFETY: the pointer is null or set by `hooked_by` to a `Hooked` on its stack
        // frame, which it puts back before that value is dropped, when it returns or
        // unwinds: while set, the value is alive in a frame outside this one (the state
        // is not `Sync`: no other thread sets it). It is read and copied here.
        unsafe { self.hooked.get().as_ref().map(|h| h.meta) }
    }

    /// Whether this thread runs host code of a call to the module of `lineage` (in this
    /// version or another).
    pub(crate) fn hooks_hold(&self, lineage: u64) -> bool {
        let mut hook = self.hooked.get();
        // SAFETY: each pointer (the cell's, then each `outer`) is null or was set by a
        // `hooked_by` still running on this thread, to a `Hooked` on its stack frame,
        // alive until it returns (it puts the one before back first); the state is not
        // `Sync`, so no other thread sets them. Each is read within this loop only.
        while let Some(h) = unsafe { hook.as_ref() } {
            if h.lineage == lineage {
                return true;
            }
            hook = h.outer;
        }
        false
    }

    /// Whether this thread runs no call: no module's code and no call's host code, so a
    /// call made now starts a chain of its own.
    #[inline(always)]
    pub(crate) fn idle(&self) -> bool {
        self.running.get().is_null() && self.hooked.get().is_null()
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
        // Threads start at different points of the sampling cycle, so that threads
        // started together do not all time the same calls.
        self.countdown.set(1 + shard as u32);
        shard
    }

    /// Whether this call is one to time, when one call in `every` is: counts down, and
    /// starts again at `every` each time it says yes. The count is capped at `every`: a
    /// thread's staggered start, or a count left by a runtime that samples more sparsely,
    /// never skips a call that `every` says to time (with 1, every call is timed).
    #[inline]
    pub(crate) fn time_this_call(&self, every: u32) -> bool {
        let left = self.countdown.get().min(every);
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

/// The frame of the innermost call this thread runs in a module, or null (none, or the
/// thread is tearing down its locals).
pub(crate) fn running_frame() -> *mut c_void {
    STATE
        .try_with(|state| state.running.get())
        .unwrap_or(core::ptr::null_mut())
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
    fn one_call_in_every_is_timed() {
        let state = ThreadState::passing();
        let timed: Vec<bool> = (0..9).map(|_| state.time_this_call(4)).collect();
        assert_eq!(
            timed,
            [true, false, false, false, true, false, false, false, true]
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
        let timed: Vec<bool> = (0..4).map(|_| state.time_this_call(2)).collect();
        assert_eq!(timed, [false, true, false, true]);
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
