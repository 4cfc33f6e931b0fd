//! An arena on loan from the pool for one call, given back through the calling thread's
//! cache when it drops.

use std::sync::Arc;

use crate::buffer::AlignedBuf;
use crate::pool::ArenaPool;

/// An arena on loan from the pool; it goes back when dropped.
#[derive(Debug)]
pub(crate) struct PooledArena {
    buf: Option<AlignedBuf>,
    pool: Arc<ArenaPool>,
}

impl PooledArena {
    /// An arena of `pool` for one call, from this thread's cache when it holds one;
    /// `None` when the pool has no idle arena and none can be allocated (see
    /// `ArenaPool::take_buf`).
    pub(crate) fn take(pool: &Arc<ArenaPool>) -> Option<PooledArena> {
        let buf = crate::thread::with(|t| pool.take_buf(&t.arenas))?;
        Some(PooledArena::new(buf, Arc::clone(pool)))
    }

    /// Ties `buf`, taken from `pool`, to this guard.
    pub(crate) fn new(buf: AlignedBuf, pool: Arc<ArenaPool>) -> PooledArena {
        PooledArena {
            buf: Some(buf),
            pool,
        }
    }

    pub(crate) fn buf(&self) -> &AlignedBuf {
        self.buf.as_ref().expect("arena present until drop")
    }

    pub(crate) fn buf_mut(&mut self) -> &mut AlignedBuf {
        self.buf.as_mut().expect("arena present until drop")
    }

    /// Whether the arena is on loan from `pool` (and not from another runtime's).
    pub(crate) fn is_of(&self, pool: &Arc<ArenaPool>) -> bool {
        Arc::ptr_eq(&self.pool, pool)
    }

    /// The buffer, no longer given back when this drops (the caller gives it back, or
    /// hands it to a `PooledArena` again).
    pub(crate) fn into_buf(mut self) -> AlignedBuf {
        self.buf.take().expect("arena present until drop")
    }
}

impl Drop for PooledArena {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            crate::thread::with(|t| self.pool.give_back(buf, &t.arenas));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_recycles() {
        let pool = ArenaPool::new(64, 2, 8);
        let first = PooledArena::take(&pool).unwrap().buf().as_slice().as_ptr();
        let again = PooledArena::take(&pool).unwrap();
        assert_eq!(
            again.buf().as_slice().as_ptr(),
            first,
            "the idle arena is reused"
        );
        let other = PooledArena::take(&pool).unwrap();
        assert_ne!(
            other.buf().as_slice().as_ptr(),
            first,
            "a busy arena is not shared"
        );
    }
}
