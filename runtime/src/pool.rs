//! The arena pool: buffers of one size that calls borrow, recycled without a lock and
//! without allocating.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::buffer::AlignedBuf;

/// Arena buffers of one size, recycled through a lock-free queue, with one idle buffer
/// cached per thread (for each of up to [`CACHED_POOLS`] pools a thread calls through).
///
/// The thread cache is what keeps a steady stream of calls from one thread off shared
/// memory: the buffer it returns at the end of a call is the one it takes at the start
/// of the next, with no atomic operation at all. Only a thread's second buffer (an
/// output held while the next call runs, or a nested call) goes through the queue.
#[derive(Debug)]
pub(crate) struct ArenaPool {
    free: ArrayQueue<AlignedBuf>,
    arena_size: usize,
    /// Buffers out of the queue: in a call, held by an output, or cached by a thread.
    on_loan: AtomicUsize,
    /// Threads with a cache entry for this pool (holding its buffer or not).
    caching_threads: AtomicUsize,
    /// Arenas on loan at which the pool reports full load (it still lends more).
    soft_limit: usize,
}

/// Pools whose buffer a thread caches at once: a host calling through a few runtimes
/// from one thread keeps every one of them off the shared queue.
const CACHED_POOLS: usize = 4;

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
    /// Each entry's idle buffer.
    bufs: [Cell<Option<AlignedBuf>>; CACHED_POOLS],
    /// Each entry's pool, owned: a buffer cached for it can always go back to it, and
    /// the pool counts this thread among those that cache its buffers.
    owners: RefCell<[Option<Arc<ArenaPool>>; CACHED_POOLS]>,
}

impl ArenaCache {
    /// A cache holding nothing.
    pub(crate) const fn new() -> ArenaCache {
        ArenaCache {
            pools: [const { Cell::new(core::ptr::null()) }; CACHED_POOLS],
            bufs: [const { Cell::new(None) }; CACHED_POOLS],
            owners: RefCell::new([const { None }; CACHED_POOLS]),
        }
    }

    /// The entry of `pool`, if the thread has one.
    #[inline(always)]
    fn entry(&self, pool: *const ArenaPool) -> Option<usize> {
        self.pools.iter().position(|p| p.get() == pool)
    }
}

impl Drop for ArenaCache {
    fn drop(&mut self) {
        // The thread is exiting: each cached buffer goes back to its pool's queue.
        for (owner, buf) in self.owners.get_mut().iter_mut().zip(&self.bufs) {
            if let Some(pool) = owner.take() {
                if let Some(buf) = buf.take() {
                    pool.put_shared(buf);
                }
                pool.caching_threads.fetch_sub(1, Ordering::Relaxed);
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
            caching_threads: AtomicUsize::new(0),
            soft_limit,
        })
    }

    /// Arenas on loan beyond one per thread that calls (each keeps one for its next
    /// call): what piles up on top of the calls in flight (outputs held in their arena,
    /// argument buffers filled ahead, nested calls). A pool serving calls one at a time
    /// per thread has none.
    pub(crate) fn piled_up(&self) -> usize {
        let out = self.on_loan.load(Ordering::Relaxed);
        let per_thread = self.caching_threads.load(Ordering::Relaxed);
        out.saturating_sub(per_thread)
    }

    /// Arenas piled up at which the pool counts as fully loaded.
    pub(crate) fn soft_limit(&self) -> usize {
        self.soft_limit
    }

    /// An arena for one call from this thread's `cache` (no shared memory touched), else
    /// from the queue, else a new one; returned with [`give_back`](Self::give_back) or
    /// kept by a [`PooledArena`].
    #[inline]
    pub(crate) fn take_buf(self: &Arc<Self>, cache: &ArenaCache) -> AlignedBuf {
        if let Some(i) = cache.entry(Arc::as_ptr(self)) {
            if let Some(buf) = cache.bufs[i].take() {
                return buf;
            }
        }
        self.take_shared()
    }

    #[cold]
    fn take_shared(&self) -> AlignedBuf {
        self.on_loan.fetch_add(1, Ordering::Relaxed);
        self.free
            .pop()
            .unwrap_or_else(|| AlignedBuf::zeroed(self.arena_size))
    }

    /// Returns a buffer from [`take_buf`](Self::take_buf): to this thread's `cache` when
    /// its entry for the pool is empty, else (the entry holds a buffer already, or the
    /// thread has no entry yet) through [`give_back_slow`](Self::give_back_slow).
    #[inline]
    pub(crate) fn give_back(self: &Arc<Self>, buf: AlignedBuf, cache: &ArenaCache) {
        if let Some(i) = cache.entry(Arc::as_ptr(self)) {
            match cache.bufs[i].replace(Some(buf)) {
                None => {}
                // The entry held one already: the other goes to the queue.
                Some(other) => self.put_shared(other),
            }
            return;
        }
        self.give_back_slow(buf, cache);
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
        self.caching_threads.fetch_add(1, Ordering::Relaxed);
        let old = owners[i].replace(Arc::clone(self));
        cache.pools[i].set(Arc::as_ptr(self));
        let old_buf = cache.bufs[i].replace(Some(buf));
        drop(owners);
        // The entry's former pool gets its buffer back, and stops counting this thread.
        if let Some(old) = old {
            if let Some(old_buf) = old_buf {
                old.put_shared(old_buf);
            }
            old.caching_threads.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn put_shared(&self, buf: AlignedBuf) {
        self.on_loan.fetch_sub(1, Ordering::Relaxed);
        // A full queue means enough buffers are idle: let this one go.
        let _ = self.free.push(buf);
    }
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
        CACHE.with(|c| pool.take_buf(c))
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
    fn buffers_cached_by_a_thread_go_back_when_it_exits() {
        let pool = ArenaPool::new(64, 4, 8);
        let worker = Arc::clone(&pool);
        std::thread::spawn(move || {
            let buf = take(&worker);
            let again = {
                back(&worker, buf);
                take(&worker)
            };
            let second = take(&worker);
            assert_eq!(worker.on_loan.load(Ordering::Relaxed), 2);
            back(&worker, again);
            back(&worker, second);
            // One cached by the thread, one in the queue; both still count until the
            // thread lets its cache go.
            assert_eq!(worker.on_loan.load(Ordering::Relaxed), 1);
            assert_eq!(worker.free.len(), 1);
            assert_eq!(worker.piled_up(), 0, "one arena per thread is not load");
        })
        .join()
        .unwrap();
        assert_eq!(pool.on_loan.load(Ordering::Relaxed), 0);
        assert_eq!(pool.free.len(), 2, "both buffers are idle in the queue");
        assert_eq!(pool.piled_up(), 0);
    }
}
