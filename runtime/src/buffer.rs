//! [`AlignedBuf`]: zeroed heap memory aligned for any archive, the memory every arena,
//! output buffer and persistent region is made of.

use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::NonNull;

/// Alignment of every buffer handed to a module: enough for any rkyv archive and for
/// SIMD loads.
pub const BUFFER_ALIGN: usize = 64;

/// A zero-initialized, [`BUFFER_ALIGN`]-aligned heap buffer.
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
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        Some(AlignedBuf {
            ptr: NonNull::new(raw)?,
            len,
        })
    }

    fn layout(len: usize) -> Option<Layout> {
        Layout::from_size_align(len, BUFFER_ALIGN).ok()
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
                // SAFETY: allocated in `try_zeroed` with this very layout (which exists,
                // or the buffer would not).
                unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) }
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
    #[should_panic(expected = "capacity overflow: a buffer of 18446744073709551615 bytes")]
    fn a_length_past_any_allocation_panics_saying_so() {
        // Not the allocator's abort for a one-byte layout, which it was.
        let _ = AlignedBuf::zeroed(usize::MAX);
    }
}
