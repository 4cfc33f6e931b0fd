//! Admission: how many calls a module runs at once, and what happens to the next one
//! when it is full. How loaded a module is, for backpressure, is the `backpressure`
//! module's to say from the gate's calls in flight.
//!
//! A module has `limit` slots. A thread that calls a module keeps the slot of its last
//! call as a **lease**, one per thread (per owned shard of `crate::thread`), on a cache
//! line of its own. Other slots sit in a shared count. A call that finds neither takes
//! the shared count's, else steals an idle lease of another thread. So a slot is in
//! exactly one place at a time, and no more than `limit` calls ever run. Threads beyond
//! the owned shards, and a second call from a thread whose lease is in use (a host
//! calling from inside a module's log record, say), take from the shared count and give
//! back to it.
//!
//! A thread's next call takes its idle lease one of two ways:
//!
//! - **Plain**, until the gate is first contended (below): the owner marks the lease in
//!   use (`plain`, a flag only it writes) with a plain store, then reads that the lease
//!   is still idle, with the frequent side's barrier of `crate::barrier` between. Where
//!   the process has `membarrier` that barrier is a compiler fence, and taking the lease
//!   costs no locked instruction (about 3.5 ns of a 48 ns call); elsewhere it is a
//!   `fence(SeqCst)`, no dearer than the compare-and-swap it replaces. It gives the slot
//!   back by clearing the flag.
//! - **Marked busy**, once the gate is contended: a compare-and-swap from idle to busy,
//!   and a store back to idle.
//!
//! A thief takes an idle lease with a compare-and-swap from idle to empty, which the
//! owner cannot race in the marked way (it moves its lease between idle and busy with
//! atomic operations only, and out of empty only with a compare-and-swap). The plain way
//! it races on purpose. The first call that finds the shared count empty and looks for a
//! lease to take (or a drain, at unload) makes the gate **contended**, for good: it sets
//! `contended`, which turns every owner to the marked way, and runs the rare side's
//! barrier (`membarrier`) once. From then on, an owner that marked a plain call before
//! the barrier has its flag seen by every thief, and one that did not sees `contended`
//! and takes the marked way. A thief that empties a lease whose flag is set puts the
//! slot back. So a gate with enough slots for its threads (the default limit is 256)
//! admits calls without a locked instruction for its whole life, and one that runs out
//! pays one barrier, and then a compare-and-swap per call as before. Should the barrier
//! fail (a `membarrier` refused after the process registered), no lease is taken until
//! it succeeds (calls then back off from trying it), and a drain gives up after
//! a hundred rounds (`DRAIN_TRIES`).
//!
//! Only a call that has to wait touches the lock and condition variable. A finishing
//! call looks at the waiter count without a fence, so it can miss a waiter that arrived
//! at that very moment: waiters therefore also look again every millisecond.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::barrier::Barriers;
use crate::shard::SHARED;

/// What to do with a call that finds its module at its concurrency limit.
///
/// Either way, a call a module makes into itself, directly or through other modules
/// (`A` calls `B` calls `A`), runs within the slot its chain already holds: it takes no
/// second slot and never waits for one, so re-entrancy cannot deadlock a module however
/// low its limit. That holds across a reload (the chain re-enters the new version within
/// its slot), not across an unload and a load under the same name: the module loaded
/// then is another module, whose slot the chain does not hold, and with `Wait` it waits
/// for it as for any other module's (see `Wait` on chains that wait on each other).
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

/// A lease: the slot a thread keeps between its calls, on a cache line of its own.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Lease {
    /// [`EMPTY`], [`IDLE`] or [`BUSY`].
    state: AtomicU32,
    /// Set by the owner, and only by it, while a call of its own uses the lease's slot the
    /// plain way (the state stays idle): a thief that emptied the lease puts it back.
    plain: AtomicBool,
}

/// The lease holds no slot.
const EMPTY: u32 = 0;
/// The lease holds a slot no call uses: its owner's next call takes it, or another
/// thread steals it.
const IDLE: u32 = 1;
/// The lease's slot is in use by its owner's running call, taken the marked way.
const BUSY: u32 = 2;

/// How a call was admitted, for giving its slot back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a slot taken is given back with `Gate::leave`"]
pub(crate) enum Admitted {
    /// The slot of the calling thread's lease (`shard`), taken the plain way.
    Plain(usize),
    /// The slot of the calling thread's lease (`shard`), now busy.
    Lease(usize),
    /// A slot of the shared count.
    Shared,
}

/// The slots of one module, with a waiting room.
#[derive(Debug)]
pub(crate) struct Gate {
    limit: usize,
    /// Free slots no lease holds.
    free: AtomicUsize,
    /// One lease per owned shard.
    leases: Box<[Lease]>,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
    /// Set once, when the module is retired: no call is admitted after it.
    closed: AtomicBool,
    /// Set, for good, by the first call that finds the shared count empty and looks for
    /// an idle lease to take (and by a drain): owners take their leases the marked way
    /// from then on.
    contended: AtomicBool,
    /// Set once a thief has run the barrier after setting `contended`: thieves may then
    /// trust the `plain` flags they read.
    settled: AtomicBool,
    /// Calls that found the gate unsettled: while the barrier fails, it is tried again
    /// at the 1st, 2nd, 4th, 8th... of them only.
    settle_attempts: AtomicU32,
    /// Whether a failed barrier was reported (once per gate).
    reported: AtomicBool,
    barriers: Barriers,
}

impl Gate {
    /// A gate of `limit` slots, all free.
    pub(crate) fn new(limit: usize) -> Gate {
        Gate {
            limit,
            free: AtomicUsize::new(limit),
            leases: (0..SHARED).map(|_| Lease::default()).collect(),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
            closed: AtomicBool::new(false),
            contended: AtomicBool::new(false),
            settled: AtomicBool::new(false),
            settle_attempts: AtomicU32::new(0),
            reported: AtomicBool::new(false),
            barriers: Barriers::of_process(),
        }
    }

    /// A gate of `limit` slots whose barriers are `barriers`, for tests.
    #[cfg(test)]
    fn with_barriers(limit: usize, barriers: Barriers) -> Gate {
        Gate {
            barriers,
            ..Gate::new(limit)
        }
    }

    /// Admits no call from now on and wakes every waiter, which gives up. Calls that
    /// hold a slot run on; [`drain`](Gate::drain) waits for them.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake(true);
    }

    /// Whether [`close`](Gate::close) was called.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Calls running now, as of a moment during this read (slots moving between places
    /// while it reads may make it off by the few that moved).
    pub(crate) fn in_flight(&self) -> usize {
        let idle = self
            .leases
            .iter()
            .filter(|l| l.state.load(Ordering::Relaxed) == IDLE && !l.plain.load(Ordering::Relaxed))
            .count();
        self.limit
            .saturating_sub(self.free.load(Ordering::Relaxed) + idle)
    }

    /// Most calls running at once.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Takes a slot for a call from a thread whose shard is `shard`.
    ///
    /// Always inlined, as `ArenaPool::give_back` is: on every call's path, and left to
    /// the compiler it went out of line when the path grew (13 instructions a call,
    /// callgrind, `noop_by_id`).
    #[inline(always)]
    pub(crate) fn enter(
        &self,
        shard: usize,
        policy: Saturation,
        deadline: Option<Instant>,
    ) -> Result<Admitted, Refused> {
        // `plain` relaxed: only this thread writes it (the barrier orders it against the
        // reads below); the acquire and release pair the lease's state with the thief's
        // compare-and-swaps, as the marked way's do.
        if let Some(lease) = self.leases.get(shard) {
            // A call of this thread already uses the lease the plain way (its state still
            // says idle): this one must not take it again.
            if !lease.plain.load(Ordering::Relaxed) {
                if !self.contended.load(Ordering::Relaxed) {
                    lease.plain.store(true, Ordering::Relaxed);
                    // Between the mark and the reads: a thief that empties the lease after
                    // its barrier either sees the mark or is seen here (`contended`).
                    self.barriers.light();
                    if !self.contended.load(Ordering::Relaxed)
                        && lease.state.load(Ordering::Acquire) == IDLE
                    {
                        return Ok(Admitted::Plain(shard));
                    }
                    lease.plain.store(false, Ordering::Release);
                }
                if lease
                    .state
                    .compare_exchange(IDLE, BUSY, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(Admitted::Lease(shard));
                }
            }
        }
        self.enter_slow(shard, policy, deadline)
    }

    #[cold]
    fn enter_slow(
        &self,
        shard: usize,
        policy: Saturation,
        deadline: Option<Instant>,
    ) -> Result<Admitted, Refused> {
        if let Some(admitted) = self.try_enter(shard) {
            return Ok(admitted);
        }
        match policy {
            Saturation::Reject => Err(Refused::Saturated),
            Saturation::Wait => self.wait(shard, deadline),
        }
    }

    /// A slot from anywhere: the shared count, else another thread's idle lease. It
    /// becomes the calling thread's lease when that lease is empty (and not in use the
    /// plain way by an outer call of the same thread).
    fn try_enter(&self, shard: usize) -> Option<Admitted> {
        let took = self
            .free
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
            || (self.settle() && self.leases.iter().any(|l| self.steal(l)));
        if !took {
            return None;
        }
        // Out of empty only with a compare-and-swap: a thief putting back a slot it took
        // from under a plain call does the same (see `steal`).
        match self.leases.get(shard) {
            Some(own)
                if !own.plain.load(Ordering::Relaxed)
                    && own
                        .state
                        .compare_exchange(EMPTY, BUSY, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok() =>
            {
                Some(Admitted::Lease(shard))
            }
            _ => Some(Admitted::Shared),
        }
    }

    /// [`settle_now`](Gate::settle_now) for a call, which backs off while the barrier
    /// fails: tried by the 1st, 2nd, 4th, 8th... call that finds the gate unsettled, so a
    /// process whose barrier broke does not run a failing system call per call.
    fn settle(&self) -> bool {
        if self.settled.load(Ordering::Acquire) {
            return true;
        }
        let attempt = self.settle_attempts.fetch_add(1, Ordering::Relaxed);
        if attempt > 1 && !attempt.is_power_of_two() {
            return false;
        }
        self.settle_now()
    }

    /// Turns the gate's owners to the marked way (for good) and runs the rare side's
    /// barrier, once (each thief that finds it not yet done runs its own): whether the
    /// `plain` flags may now be trusted. `false` when the barrier could not be run;
    /// nothing may be stolen then.
    fn settle_now(&self) -> bool {
        if self.settled.load(Ordering::Acquire) {
            return true;
        }
        self.contended.store(true, Ordering::SeqCst);
        if !self.barriers.heavy() {
            if !self.reported.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    target: "memlink::admission",
                    "the memory barrier taking an idle lease needs failed: idle leases of \
                     other threads are not taken until it succeeds"
                );
            }
            return false;
        }
        self.settled.store(true, Ordering::Release);
        true
    }

    /// Takes the slot of `lease` if it is idle and no call uses it the plain way: whether
    /// it did. Only after [`settle`](Gate::settle).
    fn steal(&self, lease: &Lease) -> bool {
        if lease
            .state
            .compare_exchange(IDLE, EMPTY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        if !lease.plain.load(Ordering::Acquire) {
            return true;
        }
        // Its owner marked a plain call before the barrier: the slot may be in use. Back
        // into the lease; if the owner refilled the lease meanwhile, its call had ended
        // (it refills only outside a plain call), so the slot is free for the shared count.
        if lease
            .state
            .compare_exchange(EMPTY, IDLE, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.free.fetch_add(1, Ordering::Release);
        }
        false
    }

    fn wait(&self, shard: usize, deadline: Option<Instant>) -> Result<Admitted, Refused> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = loop {
            if self.is_closed() {
                break Err(Refused::Closed);
            }
            // The deadline before a slot: a waiter woken at or after its deadline (by the
            // timed wait, or late to get the lock back) must not be admitted, or its call
            // would start with no time left.
            let now = deadline.map(|_| Instant::now());
            if let (Some(d), Some(now)) = (deadline, now) {
                if now >= d {
                    break Err(Refused::DeadlinePassed);
                }
            }
            if let Some(admitted) = self.try_enter(shard) {
                break Ok(admitted);
            }
            // A finishing call may miss this waiter (see the module's docs): look again
            // at least this often.
            let mut wait = Duration::from_millis(1);
            if let (Some(d), Some(now)) = (deadline, now) {
                wait = wait.min(d.saturating_duration_since(now));
            }
            guard = self
                .freed
                .wait_timeout(guard, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        };
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        outcome
    }

    /// Gives the slot of a call admitted as `admitted` back, and wakes one waiter, if
    /// any. Always inlined, as [`enter`](Gate::enter) is.
    #[inline(always)]
    pub(crate) fn leave(&self, admitted: Admitted) {
        match admitted {
            // The owner's flag: only it writes it.
            Admitted::Plain(shard) => self.leases[shard].plain.store(false, Ordering::Release),
            // The owner's own lease: nobody else writes it while it is busy.
            Admitted::Lease(shard) => self.leases[shard].state.store(IDLE, Ordering::Release),
            Admitted::Shared => {
                self.free.fetch_add(1, Ordering::Release);
            }
        }
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.wake(false);
        }
    }

    #[cold]
    fn wake(&self, all: bool) {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if all {
            self.freed.notify_all();
        } else {
            self.freed.notify_one();
        }
    }

    /// Returns `true` once no call holds a slot. Calls that start meanwhile must give
    /// theirs back at once (the caller has made sure they will, by closing the gate
    /// first). Calls re-entering the module from a chain that holds a slot take none (see
    /// [`Saturation`]), so nothing a running call does waits on the drain.
    ///
    /// It gathers every slot (the shared count's, and each lease's once it is idle)
    /// until it holds all `limit` of them, then frees them again: holding them all is
    /// the one proof that no call runs. Taking leases needs the rare side's barrier: if
    /// it fails [`DRAIN_TRIES`] times in a row, this gives up and returns `false` (calls
    /// may still run; the caller's other waits, for the module's hazard pointers and
    /// its `Arc`, still keep it alive until they end).
    #[must_use = "`false` says calls may still run"]
    pub(crate) fn drain(&self) -> bool {
        let mut gathered = 0;
        let mut failed = 0;
        let drained = loop {
            // Leases first: a slot `steal` puts back into the shared count is gathered
            // in the same round.
            if self.settle_now() {
                failed = 0;
                gathered += self.leases.iter().filter(|l| self.steal(l)).count();
            } else {
                failed += 1;
            }
            gathered += self.free.swap(0, Ordering::Acquire);
            if gathered >= self.limit {
                break true;
            }
            if failed == DRAIN_TRIES {
                break false;
            }
            std::thread::sleep(Duration::from_micros(100));
        };
        self.free.fetch_add(gathered, Ordering::Release);
        self.wake(true);
        drained
    }
}

/// Rounds of a drain whose barrier failed in a row before it gives up.
const DRAIN_TRIES: u32 = 100;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// This thread's shard, as the call path passes it.
    fn me() -> usize {
        crate::thread::with(crate::thread::ThreadState::shard)
    }

    fn free(g: &Gate) -> usize {
        g.free.load(Ordering::SeqCst)
    }

    #[test]
    fn reject_refuses_past_the_limit() {
        let g = Gate::new(2);
        let a = g.enter(me(), Saturation::Reject, None).unwrap();
        let b = g.enter(me(), Saturation::Reject, None).unwrap();
        assert_eq!(g.in_flight(), 2);
        assert_eq!(
            g.enter(me(), Saturation::Reject, None),
            Err(Refused::Saturated)
        );
        g.leave(b);
        let c = g.enter(me(), Saturation::Reject, None).unwrap();
        assert_eq!(g.in_flight(), g.limit());
        g.leave(a);
        g.leave(c);
        assert_eq!(g.in_flight(), 0);
    }

    #[test]
    fn a_thread_keeps_its_slot_as_a_lease_between_calls() {
        let g = Gate::new(4);
        if me() == SHARED {
            return; // this thread owns no shard: nothing to lease
        }
        let first = g.enter(me(), Saturation::Reject, None).unwrap();
        assert_eq!(first, Admitted::Lease(me()));
        g.leave(first);
        assert_eq!(free(&g), 3, "the slot stays with the thread");
        for _ in 0..3 {
            let again = g.enter(me(), Saturation::Reject, None).unwrap();
            assert_eq!(
                again,
                Admitted::Plain(me()),
                "the same lease, the plain way, no shared count"
            );
            g.leave(again);
        }
        // A second call while the lease is busy takes from the shared count.
        let outer = g.enter(me(), Saturation::Reject, None).unwrap();
        let inner = g.enter(me(), Saturation::Reject, None).unwrap();
        assert_eq!(inner, Admitted::Shared);
        assert_eq!(g.in_flight(), 2);
        g.leave(inner);
        g.leave(outer);
        assert_eq!(g.in_flight(), 0);
    }

    #[test]
    fn idle_leases_of_other_threads_are_stolen() {
        let g = Gate::new(3);
        // Three threads each leave a lease behind: every slot is leased, none shared.
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    let admitted = g.enter(me(), Saturation::Reject, None).unwrap();
                    g.leave(admitted);
                });
            }
        });
        assert_eq!(g.in_flight(), 0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let held: Vec<Admitted> = (0..3)
                    .map(|_| g.enter(me(), Saturation::Reject, None).unwrap())
                    .collect();
                assert_eq!(g.in_flight(), 3);
                assert_eq!(
                    g.enter(me(), Saturation::Reject, None),
                    Err(Refused::Saturated),
                    "never more than the limit"
                );
                held.into_iter().for_each(|a| g.leave(a));
            });
        });
        assert_eq!(g.in_flight(), 0);
    }

    #[test]
    fn many_threads_never_run_more_than_the_limit() {
        let g = Gate::new(3);
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..2_000 {
                        if let Ok(admitted) = g.enter(me(), Saturation::Reject, None) {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            running.fetch_sub(1, Ordering::SeqCst);
                            g.leave(admitted);
                        }
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert_eq!(g.in_flight(), 0);
        assert!(g.drain());
        assert_eq!(free(&g), 3, "every slot gathered back");
    }

    #[test]
    fn wait_times_out_at_the_deadline_or_gets_the_freed_slot() {
        let g = Arc::new(Gate::new(1));
        let held = g.enter(me(), Saturation::Wait, None).unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            g.enter(me(), Saturation::Wait, Some(soon)),
            Err(Refused::DeadlinePassed)
        );
        let g2 = Arc::clone(&g);
        let waiter = std::thread::spawn(move || {
            let admitted = g2.enter(me(), Saturation::Wait, None);
            admitted.map(|a| g2.leave(a))
        });
        std::thread::sleep(Duration::from_millis(20));
        g.leave(held);
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(g.in_flight(), 0);
    }

    /// A waiter back only after its deadline (kept from the lock until then) is refused,
    /// though a slot freed meanwhile: before, it took the slot first, and its call reached
    /// the module with no time left (`Timeout(0ns)`, or run in full by a C module).
    #[test]
    fn a_waiter_back_after_its_deadline_takes_no_slot() {
        // A waiter whose deadline passed before it waited (a slow start: under Miri the
        // clock runs on while a thread starts, and took all of 20 ms) tests nothing, and
        // is gone before this thread sees it wait: tried again with twice the time, until
        // one waits.
        let mut given = Duration::from_millis(20);
        for _ in 0..12 {
            let g = Arc::new(Gate::new(1));
            let held = g.enter(me(), Saturation::Wait, None).unwrap();
            let deadline = Instant::now() + given;
            let g2 = Arc::clone(&g);
            let waiter = std::thread::spawn(move || {
                let admitted = g2.enter(me(), Saturation::Wait, Some(deadline));
                admitted.map(|a| g2.leave(a))
            });
            while g.waiters.load(Ordering::SeqCst) == 0 && !waiter.is_finished() {
                std::thread::yield_now();
            }
            if g.waiters.load(Ordering::SeqCst) == 0 {
                assert_eq!(waiter.join().unwrap(), Err(Refused::DeadlinePassed));
                g.leave(held);
                given *= 2;
                continue;
            }
            {
                // The waiter cannot look again until this guard goes, after its deadline;
                // a slot frees meanwhile, and no one is woken for it.
                let _lock = g.lock.lock().unwrap();
                g.free.fetch_add(1, Ordering::SeqCst);
                while Instant::now() <= deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            assert_eq!(waiter.join().unwrap(), Err(Refused::DeadlinePassed));
            assert_eq!(free(&g), 1, "the freed slot is still free");
            g.free.fetch_sub(1, Ordering::SeqCst);
            g.leave(held);
            return;
        }
        panic!("the waiter never waited, its deadline past before it could");
    }

    #[test]
    fn closing_turns_away_waiters_at_once() {
        let g = Arc::new(Gate::new(1));
        let held = g.enter(me(), Saturation::Wait, None).unwrap();
        let g2 = Arc::clone(&g);
        let waiter = std::thread::spawn(move || g2.enter(me(), Saturation::Wait, None));
        while g.waiters.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        g.close();
        assert_eq!(waiter.join().unwrap(), Err(Refused::Closed));
        assert!(g.is_closed());
        g.leave(held);
        assert!(g.drain());
    }

    #[test]
    fn drain_returns_once_every_call_has_left() {
        let g = Arc::new(Gate::new(4));
        let first = g.enter(me(), Saturation::Reject, None).unwrap();
        let g2 = Arc::clone(&g);
        let left = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let left2 = Arc::clone(&left);
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let caller = std::thread::spawn(move || {
            let admitted = g2.enter(me(), Saturation::Reject, None).unwrap();
            entered_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            left2.store(true, Ordering::SeqCst);
            g2.leave(admitted);
        });
        // Drained only once the caller holds its slot (else the drain could hold them
        // all first, and the caller be refused).
        entered.recv().unwrap();
        g.leave(first);
        assert!(g.drain());
        assert!(
            left.load(Ordering::SeqCst),
            "drain returned with a call running"
        );
        caller.join().unwrap();
        assert_eq!(g.in_flight(), 0);
        assert_eq!(free(&g), 4, "every slot is free again");
    }

    /// A thread that leaves its lease idle, then takes it the plain way and holds it
    /// until told to leave. `None` when that thread owns no shard (many threads alive at
    /// once): it has no lease to take.
    fn holding_a_plain_call(
        g: &Arc<Gate>,
    ) -> Option<(std::thread::JoinHandle<()>, std::sync::mpsc::Sender<()>)> {
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (leave, leave_rx) = std::sync::mpsc::channel::<()>();
        let g = Arc::clone(g);
        let owner = std::thread::spawn(move || {
            if me() == SHARED {
                entered_tx.send(false).unwrap();
                return;
            }
            let first = g.enter(me(), Saturation::Reject, None).unwrap();
            g.leave(first);
            let plain = g.enter(me(), Saturation::Reject, None).unwrap();
            assert_eq!(plain, Admitted::Plain(me()));
            entered_tx.send(true).unwrap();
            leave_rx.recv().unwrap();
            g.leave(plain);
        });
        if entered.recv().unwrap() {
            Some((owner, leave))
        } else {
            owner.join().unwrap();
            None
        }
    }

    #[test]
    fn a_lease_in_use_the_plain_way_is_never_stolen() {
        let g = Arc::new(Gate::new(1));
        if me() == SHARED {
            return; // this thread owns no shard: nothing to lease
        }
        let Some((owner, leave)) = holding_a_plain_call(&g) else {
            return;
        };
        // The lease still says idle; the thief must see the owner's mark.
        assert_eq!(g.in_flight(), 1);
        for _ in 0..100 {
            assert_eq!(
                g.enter(me(), Saturation::Reject, None),
                Err(Refused::Saturated),
                "a second call while the only slot is in use"
            );
        }
        leave.send(()).unwrap();
        owner.join().unwrap();
        assert_eq!(g.in_flight(), 0);
        // Now idle: stolen, after which the gate admits the marked way.
        let stolen = g.enter(me(), Saturation::Reject, None).unwrap();
        assert_eq!(g.in_flight(), 1);
        assert_eq!(
            g.enter(me(), Saturation::Reject, None),
            Err(Refused::Saturated)
        );
        g.leave(stolen);
        let again = g.enter(me(), Saturation::Reject, None).unwrap();
        assert_eq!(
            again,
            Admitted::Lease(me()),
            "marked once a lease was stolen"
        );
        g.leave(again);
        assert!(g.drain());
        assert_eq!(free(&g), 1, "the one slot gathered back");
    }

    #[test]
    fn drain_waits_for_a_call_that_took_its_lease_the_plain_way() {
        let g = Arc::new(Gate::new(2));
        let Some((owner, leave)) = holding_a_plain_call(&g) else {
            return;
        };
        let drained = Arc::new(AtomicBool::new(false));
        let drainer = {
            let (g, drained) = (Arc::clone(&g), Arc::clone(&drained));
            std::thread::spawn(move || {
                assert!(g.drain());
                drained.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            !drained.load(Ordering::SeqCst),
            "drain returned with a call running"
        );
        leave.send(()).unwrap();
        owner.join().unwrap();
        drainer.join().unwrap();
        assert!(drained.load(Ordering::SeqCst));
        assert_eq!(free(&g), 2, "every slot gathered, then freed");
        assert_eq!(g.in_flight(), 0);
    }

    #[test]
    fn without_its_barrier_a_gate_takes_no_lease_and_a_drain_gives_up() {
        let g = Arc::new(Gate::with_barriers(1, Barriers::Failing));
        // This thread's shard, claimed first: the other thread's cannot be it.
        let mine = me();
        // Another thread's idle lease holds the one slot.
        std::thread::scope(|s| {
            s.spawn(|| {
                let admitted = g.enter(me(), Saturation::Reject, None).unwrap();
                g.leave(admitted);
            });
        });
        if g.free.load(Ordering::SeqCst) == 1 {
            return; // that thread owned no shard: its slot went back to the shared count
        }
        for _ in 0..20 {
            assert_eq!(
                g.enter(mine, Saturation::Reject, None),
                Err(Refused::Saturated),
                "an idle lease is not taken without the barrier"
            );
        }
        let soon = Instant::now() + Duration::from_millis(5);
        assert_eq!(
            g.enter(mine, Saturation::Wait, Some(soon)),
            Err(Refused::DeadlinePassed),
            "a waiter is not admitted either, and does not hang past its deadline"
        );
        assert!(!g.drain(), "the drain gives up rather than loop forever");
        assert_eq!(g.in_flight(), 0, "nothing was taken or lost");
    }
}
