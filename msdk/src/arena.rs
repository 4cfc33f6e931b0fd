//! A bump-pointer arena over memory the host owns.
//!
//! Each call gets its own arena: the host hands the module a region of memory, the
//! module bumps through it, and the host takes it back (and resets it) after the call.
//! Allocation is a few instructions: the cursor moves *down* from the end of the region
//! (subtract the size, mask to the alignment, compare with the floor), as in bumpalo,
//! which is one dependent step shorter than bumping up. The one allocation that grows
//! upwards is a call's encoded result (`Arena::alloc_rest_with`), which takes the free
//! space from its bottom. Nothing is ever freed one by one, and no destructor runs: values whose
//! `Drop` matters should not live here (as with `bumpalo`).
//!
//! Every allocation hands out *initialized* memory: [`Arena::alloc`] writes
//! `T::default()`, [`Arena::alloc_with`] the closure's value, [`Arena::alloc_bytes`]
//! zeroes. The arena can only be reset through `&mut self`, so the borrow checker proves
//! no reference into it is alive at that moment; a module only ever sees `&Arena`.

use core::alloc::Layout;
use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};

/// A bump allocator over a fixed region of memory.
///
/// Not `Send` and not `Sync`: it belongs to the one call that uses it.
pub struct Arena {
    /// The region's first byte, with its provenance: every pointer handed out derives
    /// from it.
    start: NonNull<u8>,
    capacity: usize,
    /// Address of the lowest byte handed out from the top; the region's end when none.
    cursor: Cell<usize>,
    /// Address one past the bytes handed out from the bottom; the start when none.
    floor: Cell<usize>,
    /// The arena hands out `&mut` into memory it does not own; tie it to `*mut u8`'s
    /// auto-trait behaviour (neither `Send` nor `Sync`).
    _region: PhantomData<*mut u8>,
}

// Handing out `&mut T` from `&self` is what an arena is for (bumpalo does the same):
// every allocation is a fresh region that no other reference covers, so each `&mut` is
// unique; `reset` takes `&mut self`, which proves none of them is still alive.
#[allow(clippy::mut_from_ref)]
impl Arena {
    /// Makes an arena over `len` bytes at `ptr`.
    ///
    /// # Safety
    ///
    /// - `ptr` must be valid for reads and writes of `len` bytes for as long as the
    ///   arena, or any reference it hands out, is alive;
    /// - nothing else may read or write those bytes during that time;
    /// - `ptr` may be null only when `len` is 0.
    pub unsafe fn new(ptr: *mut u8, len: usize) -> Arena {
        match NonNull::new(ptr) {
            Some(start) => Arena {
                start,
                capacity: len,
                // The caller vouches for `len` bytes at `ptr`, so the end address exists.
                cursor: Cell::new(start.as_ptr().addr() + len),
                floor: Cell::new(start.as_ptr().addr()),
                _region: PhantomData,
            },
            None => {
                debug_assert_eq!(len, 0, "Arena::new: null pointer with a non-zero length");
                Arena::empty()
            }
        }
    }

    /// An arena with no space: every allocation of a non-zero size fails.
    pub const fn empty() -> Arena {
        // Any non-null address will do for a region of no bytes; the cursor and floor
        // must be that address, as for any other region.
        const ADDR: usize = 1;
        let start = match NonNull::new(ptr::without_provenance_mut(ADDR)) {
            Some(start) => start,
            None => unreachable!(),
        };
        Arena {
            start,
            capacity: 0,
            cursor: Cell::new(ADDR),
            floor: Cell::new(ADDR),
            _region: PhantomData,
        }
    }

    /// Total size of the region in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes handed out so far, alignment padding included.
    #[inline]
    pub fn used(&self) -> usize {
        self.capacity - self.remaining()
    }

    /// Bytes not handed out yet (an allocation may need some of them for alignment).
    #[inline]
    pub fn remaining(&self) -> usize {
        self.cursor.get() - self.floor.get()
    }

    /// Forgets every allocation, so the whole region can be handed out again.
    ///
    /// `&mut self` proves that no reference into the arena is alive.
    pub fn reset(&mut self) {
        let start = self.start.as_ptr().addr();
        self.cursor.set(start + self.capacity);
        self.floor.set(start);
    }

    /// Whether `ptr` points into this arena's region.
    #[inline]
    pub fn contains(&self, ptr: *const u8) -> bool {
        let start = self.start.as_ptr().addr();
        let addr = ptr.addr();
        addr >= start && addr - start < self.capacity
    }

    /// Whether the whole of `bytes` lies inside this arena's region.
    #[inline]
    pub fn contains_slice(&self, bytes: &[u8]) -> bool {
        let start = self.start.as_ptr().addr();
        let p = bytes.as_ptr().addr();
        p >= start
            && p.checked_add(bytes.len())
                .is_some_and(|end| end <= start + self.capacity)
    }

    /// Hands the free space of the arena, from its first `align`-aligned address, to
    /// `fill` as uninitialized bytes. `fill` returns how many bytes it initialized from
    /// the start; those stay allocated and are returned. With `None`, nothing stays
    /// allocated.
    ///
    /// While `fill` runs the arena counts as full, so nothing else can be allocated over
    /// the region it is writing.
    pub(crate) fn alloc_rest_with(
        &self,
        align: usize,
        fill: impl FnOnce(&mut [MaybeUninit<u8>]) -> Option<usize>,
    ) -> Option<&mut [u8]> {
        let (floor, top) = (self.floor.get(), self.cursor.get());
        let from = floor.checked_next_multiple_of(align)?;
        if from > top {
            return None;
        }
        let len = top - from;
        let offset = from - self.start.as_ptr().addr();
        self.floor.set(top);
        // SAFETY: `start <= floor <= from <= top <= start + capacity`, so `offset..offset
        // + len` lies in the region `new`'s caller vouched for; `floor` now covers it, so
        // no other allocation can overlap it; `MaybeUninit<u8>` needs no initialization.
        let region = unsafe {
            core::slice::from_raw_parts_mut(
                self.start.as_ptr().add(offset).cast::<MaybeUninit<u8>>(),
                len,
            )
        };
        match fill(region) {
            Some(n) if n <= len => {
                self.floor.set(from + n);
                // SAFETY: `fill` initialized the first `n` bytes of the region, which stay
                // allocated (below `floor`) and handed out to nobody else.
                Some(unsafe { core::slice::from_raw_parts_mut(self.start.as_ptr().add(offset), n) })
            }
            _ => {
                self.floor.set(floor);
                None
            }
        }
    }

    /// Reserves memory for `layout`, aligned on its absolute address, or `None` when the
    /// arena has no room. The memory is uninitialized.
    #[inline]
    pub fn alloc_layout(&self, layout: Layout) -> Option<NonNull<u8>> {
        if layout.size() == 0 {
            // A zero-sized value needs an aligned, non-null address and no space.
            return Some(dangling_aligned(layout.align()));
        }
        // `align` is a power of two (a `Layout` guarantees it), so the mask rounds down.
        let new = self.cursor.get().checked_sub(layout.size())? & !(layout.align() - 1);
        if new < self.floor.get() {
            return None;
        }
        self.cursor.set(new);
        // SAFETY: `start <= floor <= new` and `new + size <= cursor <= start + capacity`,
        // so the offset keeps the pointer inside the region `new`'s caller promised is
        // valid, and a pointer into it is non-null.
        Some(unsafe { self.start.add(new - self.start.as_ptr().addr()) })
    }

    /// Allocates a `T` holding `T::default()`.
    ///
    /// Returns `None` when the arena is full; exports turn that into
    /// [`ModuleError::QuotaExceeded`](crate::ModuleError::QuotaExceeded):
    ///
    /// ```
    /// # use memlink_msdk::{Arena, ModuleError};
    /// # let mut buf = vec![0u64; 8];
    /// # let arena = unsafe { Arena::new(buf.as_mut_ptr().cast(), 64) };
    /// let slot = arena.alloc::<u64>().ok_or(ModuleError::QuotaExceeded)?;
    /// *slot = 42;
    /// assert_eq!(*slot, 42);
    /// # Ok::<(), ModuleError>(())
    /// ```
    #[inline]
    pub fn alloc<T: Default>(&self) -> Option<&mut T> {
        self.alloc_with(T::default)
    }

    /// Allocates a `T` and moves `f()` into it. `f` runs only when there is room.
    #[inline]
    pub fn alloc_with<T, F: FnOnce() -> T>(&self, f: F) -> Option<&mut T> {
        let slot = self.alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: `slot` is aligned for `T`, valid for a write of `size_of::<T>()` bytes
        // and handed out to nobody else; after the write it holds an initialized `T`, so
        // the `&mut T` (tied to `&self`, which keeps the region alive) is sound.
        unsafe {
            slot.as_ptr().write(f());
            Some(&mut *slot.as_ptr())
        }
    }

    /// Allocates `len` zeroed bytes, aligned to 1.
    #[inline]
    pub fn alloc_bytes(&self, len: usize) -> Option<&mut [u8]> {
        self.alloc_bytes_aligned(len, 1)
    }

    /// Allocates `len` zeroed bytes whose address is a multiple of `align` (a power of
    /// two), or `None` when there is no room or `align` is not a power of two.
    #[inline]
    pub fn alloc_bytes_aligned(&self, len: usize, align: usize) -> Option<&mut [u8]> {
        let layout = Layout::from_size_align(len, align).ok()?;
        let p = self.alloc_layout(layout)?;
        // SAFETY: `p` is valid for `len` bytes that nobody else can reach; zeroing them
        // initializes every byte before the slice is formed.
        unsafe {
            ptr::write_bytes(p.as_ptr(), 0, len);
            Some(core::slice::from_raw_parts_mut(p.as_ptr(), len))
        }
    }

    /// Copies `src` into the arena at an address that is a multiple of `align` (a power
    /// of two), without zeroing the bytes first; `None` as for
    /// [`alloc_bytes_aligned`](Arena::alloc_bytes_aligned).
    #[inline]
    pub(crate) fn alloc_copy_aligned(&self, src: &[u8], align: usize) -> Option<&mut [u8]> {
        let layout = Layout::from_size_align(src.len(), align).ok()?;
        let p = self.alloc_layout(layout)?;
        // SAFETY: `p` is valid for `src.len()` bytes, freshly taken between the arena's
        // floor and its cursor: nothing has handed that block out since the arena was made
        // or reset (`reset` takes `&mut self`, and `alloc_rest_with`'s borrow of the free
        // space ends with its closure), so no reference can reach it, `src` included
        // (whether it lies in an earlier allocation or in other memory); the copy
        // initializes every byte before the slice is formed.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len());
            Some(core::slice::from_raw_parts_mut(p.as_ptr(), src.len()))
        }
    }

    /// Copies `src` into the arena.
    #[inline]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Option<&mut [T]> {
        let layout = Layout::array::<T>(src.len()).ok()?;
        let p = self.alloc_layout(layout)?.cast::<T>();
        // SAFETY: `p` is aligned for `T` and valid for `src.len()` elements; the arena's
        // region cannot overlap `src`, which the caller borrows from elsewhere or from an
        // earlier allocation; `T: Copy` makes the bitwise copy a valid value.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len());
            Some(core::slice::from_raw_parts_mut(p.as_ptr(), src.len()))
        }
    }

    /// Allocates `len` elements, the `i`-th being `f(i)`.
    ///
    /// If `f` panics, the elements written so far are leaked (never dropped) and the
    /// space stays used; nothing uninitialized is ever exposed.
    pub fn alloc_slice_fill_with<T, F: FnMut(usize) -> T>(
        &self,
        len: usize,
        mut f: F,
    ) -> Option<&mut [T]> {
        let layout = Layout::array::<T>(len).ok()?;
        let p = self.alloc_layout(layout)?.cast::<T>();
        for i in 0..len {
            // SAFETY: `i < len`, so the write stays in the allocation, which is aligned
            // for `T`.
            unsafe { p.as_ptr().add(i).write(f(i)) };
        }
        // SAFETY: all `len` elements were written above.
        Some(unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), len) })
    }

    /// Copies `s` into the arena.
    #[inline]
    pub fn alloc_str(&self, s: &str) -> Option<&mut str> {
        let bytes = self.alloc_slice_copy(s.as_bytes())?;
        // SAFETY: the bytes are a copy of a `str`, so they are UTF-8.
        Some(unsafe { core::str::from_utf8_unchecked_mut(bytes) })
    }
}

/// A non-null address aligned to `align`, for zero-sized allocations.
fn dangling_aligned(align: usize) -> NonNull<u8> {
    // `align` is a power of two from a `Layout`, so it is non-zero.
    NonNull::new(ptr::without_provenance_mut(align)).unwrap_or(NonNull::dangling())
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("capacity", &self.capacity)
            .field("used", &self.used())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
