//! A sketch of the faster `Arena::alloc_layout` proposed in README.md, measured next to
//! the real one so the proposal comes with a figure. It is not memlink's code and
//! nothing uses it but the benchmarks.
//!
//! The difference: the real arena keeps `used` (an offset) and, per allocation, adds the
//! start address, rounds up with `checked_next_multiple_of` and checks three overflows,
//! a chain of about five dependent operations from one cursor to the next. The sketch
//! keeps the cursor as an address and bumps it down (as bumpalo does): subtract, mask,
//! compare with the start.

use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::NonNull;
use std::hint::black_box;

use crate::fixture::{RawBuf, ARENA_ROUND};

/// A bump allocator over `ARENA_ROUND` `u64`s of memory it owns, bumping downwards.
#[derive(Debug)]
pub struct SketchRound {
    /// The buffer's start, with its provenance; every pointer handed out derives from it.
    base: NonNull<u8>,
    /// `base`'s address and the address one past the buffer.
    start: usize,
    end: usize,
    /// Address of the lowest allocated byte: allocations go downwards from `end`.
    cursor: Cell<usize>,
    _buf: RawBuf,
}

impl Default for SketchRound {
    fn default() -> Self {
        Self::new()
    }
}

impl SketchRound {
    /// A fresh arena of `ARENA_ROUND * 8` bytes.
    pub fn new() -> SketchRound {
        let buf = RawBuf::new(ARENA_ROUND * 8);
        let base = buf.as_ptr();
        let start = base.as_ptr().addr();
        let mut round = SketchRound {
            base,
            start,
            end: start + buf.bytes(),
            cursor: Cell::new(start + buf.bytes()),
            _buf: buf,
        };
        round.check_round();
        round
    }

    /// Reserves `layout`, aligned on its absolute address, or `None` when full.
    ///
    /// The cursor moves down, as bumpalo's does: the next cursor is `(cursor - size) &
    /// !(align - 1)`, two dependent operations, where bumping up needs three (add the
    /// mask, mask, add the size) plus the overflow checks. Allocations are that chain
    /// back to back, so its length is what a tight loop of them costs.
    #[inline]
    pub fn alloc_layout(&self, layout: Layout) -> Option<NonNull<u8>> {
        let new = self.cursor.get().checked_sub(layout.size())? & !(layout.align() - 1);
        if new < self.start {
            return None;
        }
        self.cursor.set(new);
        // SAFETY: `start <= new` and `new + size <= cursor <= end`, so the offset stays
        // inside the buffer `base` points to, and a pointer into a live allocation is
        // non-null.
        Some(unsafe { self.base.add(new - self.start) })
    }

    /// Allocates `T::default()`.
    // `&mut T` from `&self` is what an arena is for, as in memlink's `Arena::alloc`: each
    // allocation is a fresh region no other reference covers.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub fn alloc<T: Default>(&self) -> Option<&mut T> {
        let slot = self.alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: `slot` is aligned for `T`, inside the buffer and handed out to nobody
        // else; it is initialized before the reference is formed, and the reference is
        // tied to `&self`, which keeps the buffer alive and un-reset.
        unsafe {
            slot.as_ptr().write(T::default());
            Some(&mut *slot.as_ptr())
        }
    }

    /// Forgets every allocation (`&mut self`: no reference into the buffer is alive).
    pub fn reset(&mut self) {
        self.cursor.set(self.end);
    }

    /// Checks that `ARENA_ROUND` allocations fill the arena exactly; then resets it.
    pub fn check_round(&mut self) {
        let ok = (0..ARENA_ROUND)
            .filter(|_| self.alloc::<u64>().is_some())
            .count();
        assert_eq!(ok, ARENA_ROUND, "every allocation of a round succeeds");
        assert!(self.alloc::<u64>().is_none(), "the round fills the arena");
        self.reset();
    }

    /// `ARENA_ROUND` times `alloc::<u64>()`, then one `reset`, as
    /// [`MemlinkRound::alloc_round`](crate::fixture::MemlinkRound::alloc_round).
    #[inline]
    pub fn alloc_round(&mut self) {
        for _ in 0..ARENA_ROUND {
            black_box(self.alloc::<u64>());
        }
        self.reset();
    }
}
