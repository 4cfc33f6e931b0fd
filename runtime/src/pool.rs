//! The arena pool: buffers of one size that calls borrow, recycled without a lock and
//! without allocating.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::buffer::AlignedBuf;

/// Arena buffers of one size, recycled through a lock-free queue, with up to
/// [`DEPTH`] idle buffers cached per thread (for each of up to [`CACHED_POOLS`] pools a
/// thread calls through).
///
/// The thread cache is what keeps a steady stream of calls from one thread off shared
/// memory: the buffer it returns at the end of a call is the one it takes at the start
/// of the next, with no atomic operation at all. Its second buffer serves a nested call
/// (a module calling another on the same thread) or an output held while the next call
/// runs; only a third goes through the queue.
#[derive(Debug)]
pub(crate) struct ArenaPool {
    free: ArrayQueue<AlignedBuf>,
    arena_size: usize,
    /// Buffers out of the queue: in a call, held by an output, or cached by a thread.
    on_loan: AtomicUsize,
    /// Buffers the threads keep for their own calls: one per thread with a cache entry
    /// for this pool (holding its buffer or not), one more for each such thread that has
    /// used its entry's second place (from then on, whether it holds one or not: so a
    /// thread whose second buffer was returned elsewhere, an output dropped on another
    /// thread, hides one buffer of pile-up, which keeps the nested path free of atomic
    /// operations).
    kept: AtomicUsize,
    /// Arenas on loan at which the pool reports full load (it still lends more).
    soft_limit: usize,
}

/// Pools whose buffer a thread caches at once: a host calling through a few runtimes
/// from one thread keeps every one of them off the shared queue.
const CACHED_POOLS: usize = 4;

/// Idle buffers a thread caches per pool: one for its calls, one for the call a module
/// makes while the thread's first is running (or an output it holds meanwhile).
const DEPTH: usize = 2;

/// A thread's idle arenas, one per pool it calls through (up to [`CACHED_POOLS`]): part
/// of the thread's state (the `thread` module), which the call path reaches once per call.
///
/// The path every call takes reads only `Cell`s: an entry's pool by address, and its
/// buffer taken or put back. Which pools the entries belong to changes only on a slow
/// path, which also keeps each pool alive (through `owners`) while its entry may hold
/// one of its buffers.
pub(crate) struct ArenaCache {
    /// Each entry's pool, by address; null for an entry not in use.
    pools: [Cell<*const ArenaPool>; CACHED_POOLS],
    /// Each entry's idle buffers, the first place filled first.
    bufs: [[Cell<Option<AlignedBuf>>; DEPTH]; CACHED_POOLS],
    /// Whether each entry's second place has held a buffer: the pool then counts two
    /// buffers kept by this thread (`ArenaPool::kept`).
    deep: [Cell<bool>; CACHED_POOLS],
    /// Each entry's pool, owned: a buffer cached for it can always go back to it, and
    /// the pool counts this thread among those that cache its buffers.
    owners: RefCell<[Option<Arc<ArenaPool>>; CACHED_POOLS]>,
}

impl ArenaCache {
    /// A cache holding nothing.
    pub(crate) const fn new() -> ArenaCache {
        ArenaCache {
            pools: [const { Cell::new(core::ptr::null()) }; CACHED_POOLS],
            bufs: [const { [const { Cell::new(None) }; DEPTH] }; CACHED_POOLS],
            deep: [const { Cell::new(false) }; CACHED_POOLS],
            owners: RefCell::new([const { None }; CACHED_POOLS]),
        }
    }

    /// The entry of `pool`, if the thread has one.
    #[inline(always)]
    fn entry(&self, pool: *const ArenaPool) -> Option<usize> {
        self.pools.iter().position(|p| p.get() == pool)
    }

    /// Lets entry `i` go: its buffers back to `pool`'s queue, and the pool no longer
    /// counts what the entry kept.
    fn release(&self, i: usize, pool: &ArenaPool) {
        for buf in &self.bufs[i] {
            if let Some(buf) = buf.take() {
                pool.put_shared(buf);
            }
        }
        let kept = 1 + usize::from(self.deep[i].replace(false));
        pool.kept.fetch_sub(kept, Ordering::Relaxed);
    }
}

impl Drop for ArenaCache {
    fn drop(&mut self) {
        // The thread is exiting: each cached buffer goes back to its pool's queue.
        let owners = std::mem::take(self.owners.get_mut());
        for (i, owner) in owners.into_iter().enumerate() {
            if let Some(pool) = owner {
                self.release(i, &pool);
            }
        }
    }
}

impl std::fmt::Debug for ArenaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArenaCache").finish_non_exhaustive()
    }
}

impl ArenaPool {
    /// A pool that keeps up to `keep` idle buffers of `arena_size` bytes and reports full
    /// load at `soft_limit` arenas on loan.
    pub(crate) fn new(arena_size: usize, keep: usize, soft_limit: usize) -> Arc<ArenaPool> {
        Arc::new(ArenaPool {
            free: ArrayQueue::new(keep.max(1)),
            arena_size,
            on_loan: AtomicUsize::new(0),
            kept: AtomicUsize::new(0),
            soft_limit,
        })
    }

    /// Arenas on loan beyond those the calling threads keep for their own calls (one
    /// each, two for a thread that has made a nested call or held an output while it
    /// called): what piles up on top of the calls in flight (outputs held in their
    /// arena, argument buffers filled ahead). A pool serving calls one at a time per
    /// thread has none.
    pub(crate) fn piled_up(&self) -> usize {
        let out = self.on_loan.load(Ordering::Relaxed);
        let kept = self.kept.load(Ordering::Relaxed);
        out.saturating_sub(kept)
    }

    /// Arenas piled up at which the pool counts as fully loaded.
    pub(crate) fn soft_limit(&self) -> usize {
        self.soft_limit
    }

    /// An arena for one call from this thread's `cache` (no shared memory touched), else
    /// from the queue, else a new one; returned with [`give_back`](Self::give_back) or
    /// kept by a [`PooledArena`]. `None` when none is idle and the allocator cannot give
    /// a new one: the call fails, where an abort would take the host down (a nested
    /// chain takes an arena a level, which the check at load, of one arena, cannot
    /// promise). Always inlined, as [`give_back`](Self::give_back) is.
    #[inline(always)]
    pub(crate) fn take_buf(self: &Arc<Self>, cache: &ArenaCache) -> Option<AlignedBuf> {
        if let Some(buf) = self.cached(cache) {
            return Some(buf);
        }
        self.take_shared()
    }

    /// An idle arena of this pool from this thread's `cache`, if it keeps one.
    #[inline(always)]
    fn cached(self: &Arc<Self>, cache: &ArenaCache) -> Option<AlignedBuf> {
        let i = cache.entry(Arc::as_ptr(self))?;
        let [first, second] = &cache.bufs[i];
        first.take().or_else(|| second.take())
    }

    #[cold]
    fn take_shared(&self) -> Option<AlignedBuf> {
        let buf = self
            .free
            .pop()
            .or_else(|| AlignedBuf::try_zeroed(self.arena_size));
        match buf {
            // Counted once it is had: `give_back` uncounts it.
            Some(_) => {
                self.on_loan.fetch_add(1, Ordering::Relaxed);
            }
            None => self.cannot_allocate(),
        }
        buf
    }

    /// Says, once a second at most, that an arena could not be allocated: each call
    /// that needed one fails with `QuotaExceeded`, which alone does not say whose quota.
    #[cold]
    fn cannot_allocate(&self) {
        static LAST: AtomicU64 = AtomicU64::new(0);
        if first_this_second(&LAST) {
            tracing::warn!(
                target: "memlink::runtime",
                arena_size = self.arena_size,
                "cannot allocate an arena of {} bytes (RuntimeConfig::arena_size) for a call: \
                 the memory is exhausted, and calls that need a new arena fail with \
                 QuotaExceeded until some is free",
                self.arena_size
            );
        }
    }

    /// Returns a buffer from [`take_buf`](Self::take_buf): to this thread's `cache`, in
    /// the first of its entry's places that is empty, else (the entry is full, or the
    /// thread has no entry yet) through [`give_back_slow`](Self::give_back_slow).
    ///
    /// Always inlined: it is on every call's path, a few instructions, and left to the
    /// compiler it was called out of line as soon as the call path grew by a branch (12
    /// more instructions a call, callgrind, `echo_raw`).
    #[inline(always)]
    pub(crate) fn give_back(self: &Arc<Self>, buf: AlignedBuf, cache: &ArenaCache) {
        if let Some(i) = cache.entry(Arc::as_ptr(self)) {
            let [first, second] = &cache.bufs[i];
            let Some(buf) = first.replace(Some(buf)) else {
                return;
            };
            // The first place held one already: the second takes it if it is empty.
            match second.replace(Some(buf)) {
                None if cache.deep[i].get() => {}
                None => self.deepen(cache, i),
                // The entry was full: the other goes to the queue.
                Some(other) => self.put_shared(other),
            }
            return;
        }
        self.give_back_slow(buf, cache);
    }

    /// Counts entry `i`'s second place among the buffers kept, the first time it holds
    /// one.
    #[cold]
    fn deepen(&self, cache: &ArenaCache, i: usize) {
        cache.deep[i].set(true);
        self.kept.fetch_add(1, Ordering::Relaxed);
    }

    /// `give_back` for a thread with no entry for this pool: it makes one, in a free
    /// entry or one of a pool nobody else uses any more, else the buffer goes to the
    /// queue.
    #[cold]
    fn give_back_slow(self: &Arc<Self>, buf: AlignedBuf, cache: &ArenaCache) {
        // Dropping a pool runs no code of this cache, but stay safe from re-entry anyway.
        let Ok(mut owners) = cache.owners.try_borrow_mut() else {
            return self.put_shared(buf);
        };
        let free = owners
            .iter()
            .position(|o| o.as_ref().is_none_or(|p| Arc::strong_count(p) == 1));
        let Some(i) = free else {
            drop(owners);
            return self.put_shared(buf);
        };
        let old = owners[i].replace(Arc::clone(self));
        drop(owners);
        // The entry's former pool gets its buffers back, and stops counting this thread.
        if let Some(old) = old {
            cache.release(i, &old);
        }
        self.kept.fetch_add(1, Ordering::Relaxed);
        cache.pools[i].set(Arc::as_ptr(self));
        cache.bufs[i][0].set(Some(buf));
    }

    fn put_shared(&self, buf: AlignedBuf) {
        self.on_loan.fetch_sub(1, Ordering::Relaxed);
        // A full queue means enough buffers are idle: let this one go.
        let _ = self.free.push(buf);
    }
}

/// Whether this is the first time in this second of the clock that `last` is asked:
/// for a warning of a lack of memory, said once a second at most however many calls meet
/// it.
pub(crate) fn first_this_second(last: &AtomicU64) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    last.swap(now, Ordering::Relaxed) != now
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// A cache of this test thread's own, as the runtime keeps one per thread.
        static CACHE: ArenaCache = const { ArenaCache::new() };
    }

    /// `take_buf` through this thread's cache, as the call path does.
    fn take(pool: &Arc<ArenaPool>) -> AlignedBuf {
        CACHE.with(|c| pool.take_buf(c)).unwrap()
    }

    /// `give_back` through this thread's cache.
    fn back(pool: &Arc<ArenaPool>, buf: AlignedBuf) {
        CACHE.with(|c| pool.give_back(buf, c))
    }

    #[test]
    fn a_thread_caches_a_buffer_of_each_pool_it_calls_through() {
        let pools: Vec<_> = (0..CACHED_POOLS)
            .map(|_| ArenaPool::new(64, 4, 8))
            .collect();
        std::thread::spawn(move || {
            let first: Vec<_> = pools
                .iter()
                .map(|p| {
                    let buf = take(p);
                    let at = buf.as_slice().as_ptr();
                    back(p, buf);
                    at
                })
                .collect();
            for _ in 0..3 {
                for (p, &at) in pools.iter().zip(&first) {
                    let buf = take(p);
                    assert_eq!(buf.as_slice().as_ptr(), at, "the cached buffer again");
                    back(p, buf);
                }
            }
            for p in &pools {
                assert_eq!(p.free.len(), 0, "the queue was never used");
                assert_eq!(p.on_loan.load(Ordering::Relaxed), 1);
            }
            // A pool past the cache's room goes through the queue.
            let extra = ArenaPool::new(64, 4, 8);
            let buf = take(&extra);
            back(&extra, buf);
            assert_eq!(extra.free.len(), 1);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_nested_call_takes_the_second_cached_buffer_and_a_third_goes_to_the_queue() {
        let pool = ArenaPool::new(64, 4, 8);
        let worker = Arc::clone(&pool);
        std::thread::spawn(move || {
            // A call, and a nested call made while it runs, twice: the second time both
            // come from the thread's cache.
            let (outer, inner) = (take(&worker), take(&worker));
            let at = [outer.as_slice().as_ptr(), inner.as_slice().as_ptr()];
            back(&worker, inner);
            back(&worker, outer);
            assert_eq!(worker.on_loan.load(Ordering::Relaxed), 2);
            assert_eq!(
                worker.piled_up(),
                0,
                "two arenas for a nested call are not load"
            );
            let (outer, inner) = (take(&worker), take(&worker));
            let mut again = [outer.as_slice().as_ptr(), inner.as_slice().as_ptr()];
            again.sort();
            let mut first = at;
            first.sort();
            assert_eq!(again, first, "both cached buffers again");
            assert_eq!(
                worker.on_loan.load(Ordering::Relaxed),
                2,
                "the queue untouched"
            );
            // A third at once comes from the queue, and counts as piled up while out.
            let third = take(&worker);
            assert_eq!(worker.piled_up(), 1);
            back(&worker, inner);
            back(&worker, outer);
            back(&worker, third);
            assert_eq!(
                worker.free.len(),
                1,
                "the cache was full: the third is queued"
            );
            assert_eq!(worker.on_loan.load(Ordering::Relaxed), 2);
            assert_eq!(worker.piled_up(), 0);
        })
        .join()
        .unwrap();
        assert_eq!(pool.on_loan.load(Ordering::Relaxed), 0);
        assert_eq!(pool.free.len(), 3, "every buffer is idle in the queue");
        assert_eq!(
            pool.kept.load(Ordering::Relaxed),
            0,
            "the thread keeps none"
        );
        assert_eq!(pool.piled_up(), 0);
    }

    #[test]
    fn an_entry_of_a_pool_nobody_else_holds_is_taken_over() {
        std::thread::spawn(|| {
            let gone = ArenaPool::new(64, 4, 8);
            let (a, b) = (take(&gone), take(&gone));
            back(&gone, a);
            back(&gone, b);
            assert_eq!(
                gone.kept.load(Ordering::Relaxed),
                2,
                "one entry, both places"
            );
            let weak = Arc::downgrade(&gone);
            drop(gone);
            assert!(weak.upgrade().is_some(), "the cache still holds it");
            // One more pool than free entries: the last takes over the entry of the
            // pool only the cache holds.
            let others: Vec<_> = (0..CACHED_POOLS)
                .map(|_| ArenaPool::new(64, 4, 8))
                .collect();
            for p in &others {
                let buf = take(p);
                back(p, buf);
                assert_eq!(p.kept.load(Ordering::Relaxed), 1);
                assert_eq!(p.free.len(), 0, "cached, not queued");
            }
            assert!(
                weak.upgrade().is_none(),
                "its entry was let go, and it with it"
            );
        })
        .join()
        .unwrap();
    }
}
