//! [`AlignedBuf`]: zeroed heap memory aligned for any archive, the memory every arena,
//! output buffer and persistent region is made of.

use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::NonNull;

/// Alignment of every buffer handed to a module: enough for any rkyv archive and for
/// SIMD loads.
pub const BUFFER_ALIGN: usize = 64;

/// The alignment asked of the allocator: what `malloc` gives anyway, so that a zeroed
/// allocation is `calloc`, whose large buffers are fresh pages from the kernel, zero and
/// not touched until used. A larger alignment is `posix_memalign` and a `memset` of the
/// whole buffer, which made every page of every arena resident at once: a 64 MiB arena
/// took 64 MiB of memory for a call that wrote 10 bytes.
const ALLOC_ALIGN: usize = 16;

/// A zero-initialized, [`BUFFER_ALIGN`]-aligned heap buffer.
///
/// A large one takes memory as its pages are written, not when it is made.
// It is allocated `BUFFER_ALIGN` bytes longer, at `ALLOC_ALIGN`, and starts at the first
// `BUFFER_ALIGN` boundary past the allocation's first byte; the byte before that start
// says how far past the allocation's start it is, for the free.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer is plain owned memory, like a `Box<[u8]>`; moving it to another
// thread moves the only owner.
unsafe impl Send for AlignedBuf {}
// SAFETY: `&AlignedBuf` only gives out `&[u8]`, and shared reads are thread-safe.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// `len` zeroed bytes. As `Vec` does, panics if `len` is too large for any
    /// allocation (past `isize::MAX`, aligned), and aborts through
    /// `handle_alloc_error` if the allocator has no memory for it.
    pub fn zeroed(len: usize) -> AlignedBuf {
        let Some(layout) = Self::layout(len) else {
            panic!("capacity overflow: a buffer of {len} bytes is larger than any allocation");
        };
        match Self::try_zeroed(len) {
            Some(buf) => buf,
            None => alloc::handle_alloc_error(layout),
        }
    }

    /// `len` zeroed bytes, or `None` when the length is too large for a `Layout` or the
    /// allocator has no memory for it.
    pub fn try_zeroed(len: usize) -> Option<AlignedBuf> {
        if len == 0 {
            return Some(AlignedBuf {
                ptr: dangling(),
                len: 0,
            });
        }
        let layout = Self::layout(len)?;
        // SAFETY: `layout` has a non-zero size.
        let base = NonNull::new(unsafe { alloc::alloc_zeroed(layout) })?;
        // `base` is `ALLOC_ALIGN`-aligned: the boundary is 16 to 64 bytes past it, and the
        // buffer's `len` bytes after it lie inside the `len + BUFFER_ALIGN` allocated.
        let offset = BUFFER_ALIGN - base.as_ptr().addr() % BUFFER_ALIGN;
        debug_assert!((ALLOC_ALIGN..=BUFFER_ALIGN).contains(&offset));
        // SAFETY: `offset <= BUFFER_ALIGN`, inside the allocation (see above); the byte
        // before it (`offset >= 1`) is the allocation's too, and no part of the buffer.
        let ptr = unsafe {
            let ptr = base.add(offset);
            ptr.sub(1).write(offset as u8);
            ptr
        };
        Some(AlignedBuf { ptr, len })
    }

    /// The layout of the allocation behind a buffer of `len` bytes.
    fn layout(len: usize) -> Option<Layout> {
        Layout::from_size_align(len.checked_add(BUFFER_ALIGN)?, ALLOC_ALIGN).ok()
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start of the buffer, for handing to a module.
    #[inline]
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Start of the buffer, for reading through (a pointer with the buffer's own
    /// provenance, not one derived from a borrow of its bytes).
    #[inline]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` initialized (zeroed, then written) bytes, and
        // `&self` excludes writers.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, for writing.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is valid for `len` initialized bytes, and `&mut self` makes this
        // the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Whether `ptr..ptr+len` lies inside the buffer.
    #[inline]
    pub fn contains_range(&self, ptr: *const u8, len: usize) -> bool {
        let start = self.ptr.as_ptr().addr();
        let p = ptr.addr();
        p >= start
            && p.checked_add(len)
                .is_some_and(|end| end <= start + self.len)
    }
}

fn dangling() -> NonNull<u8> {
    NonNull::new(std::ptr::without_provenance_mut(BUFFER_ALIGN)).unwrap_or(NonNull::dangling())
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.len > 0 {
            if let Some(layout) = Self::layout(self.len) {
                // SAFETY: `try_zeroed` allocated this buffer with this very layout (which
                // exists, or the buffer would not), `offset` bytes before `ptr`, and wrote
                // `offset` in the byte before `ptr`, which nothing else writes.
                unsafe {
                    let offset = usize::from(self.ptr.sub(1).read());
                    alloc::dealloc(self.ptr.as_ptr().sub(offset), layout);
                }
            }
        }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_zeroed_and_bounded() {
        let mut b = AlignedBuf::zeroed(100);
        assert_eq!(b.as_mut_ptr().addr() % BUFFER_ALIGN, 0);
        assert!(b.as_slice().iter().all(|&x| x == 0));
        let p = b.as_mut_ptr();
        assert!(b.contains_range(p, 100));
        assert!(!b.contains_range(p, 101));
        assert!(!b.contains_range(p.wrapping_add(50), usize::MAX));
        assert!(AlignedBuf::zeroed(0).is_empty());
    }

    #[test]
    fn buffers_of_every_small_length_are_aligned_and_freed() {
        // Each start the allocator may give (16, 32, 48 or 64 bytes before a boundary).
        let bufs: Vec<AlignedBuf> = (1..=300).map(AlignedBuf::zeroed).collect();
        for (len, b) in (1..=300).zip(&bufs) {
            assert_eq!(b.as_ptr().addr() % BUFFER_ALIGN, 0);
            assert_eq!(b.len(), len);
            assert!(b.as_slice().iter().all(|&x| x == 0));
        }
    }

    /// A large buffer takes memory as its pages are written, not when it is made: an
    /// arena is as large as the largest call needs, and most calls write a few bytes.
    /// Before, a 64-byte alignment made every allocation a `memset` of all of it.
    #[cfg(target_os = "linux")]
    #[cfg_attr(miri, ignore = "reads /proc, and Miri's allocator is no system's")]
    #[test]
    fn a_large_buffer_is_not_resident_until_written() {
        fn resident() -> usize {
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
            let pages: usize = statm.split(' ').nth(1).unwrap().parse().unwrap();
            pages * 4096
        }
        let before = resident();
        let mut b = AlignedBuf::zeroed(512 << 20);
        b.as_mut_slice()[..100].fill(1);
        let grew = resident().saturating_sub(before);
        assert!(grew < 64 << 20, "512 MiB made {grew} bytes resident");
        assert!(b.as_slice()[100..4096].iter().all(|&x| x == 0));
    }

    #[test]
    #[should_panic(expected = "capacity overflow: a buffer of 18446744073709551615 bytes")]
    fn a_length_past_any_allocation_panics_saying_so() {
        // Not the allocator's abort for a one-byte layout, which it was.
        let _ = AlignedBuf::zeroed(usize::MAX);
    }
}
