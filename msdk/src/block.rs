//! A scalar result as one block: its MessagePack bytes (at most 9, from
//! `Scalar::encode`) held in a `u128` in registers and written into the arena with one
//! 16-byte store.
//!
//! Why one store: the host copies a small result out of the arena within a few dozen
//! cycles of the module writing it, 16 bytes at a time. A load that one earlier store
//! covers whole is answered from the store buffer; a load that spans several narrower
//! stores still in flight waits until they have reached the cache (a store-forwarding
//! stall). Bytes encoded into a buffer on the stack a byte or two at a time and then
//! copied out as a block stalled the same way inside the module: on a no-op export,
//! whose `()` result took that path, about 4 ns of the module's 12
//! (`module_boundary_noop_ns`, benches/README.md).

use core::ptr::NonNull;

/// Writes the 16 little-endian bytes of `word` at `p` with one store.
///
/// # Safety
///
/// `p` must be valid for writes of 16 bytes and aligned to 16.
#[inline(always)]
pub(crate) unsafe fn store(p: NonNull<u8>, word: u128) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{__m128i, _mm_set_epi64x};
        let (low, high) = (word as u64, (word >> 64) as u64);
        // A safe function since Rust 1.87 (SSE2 is enabled); unsafe before, and this
        // crate builds from 1.85.
        #[allow(unused_unsafe)]
        // SAFETY: SSE2 is part of every x86_64 target; the function reads no memory.
        let block = unsafe { _mm_set_epi64x(high as i64, low as i64) };
        // Volatile: the compiler would otherwise write a vector built from two general
        // registers as two 8-byte stores, which is the split this function is for.
        // SAFETY: `p` is valid for 16 bytes and aligned to 16 (the caller's contract),
        // as `__m128i` requires.
        unsafe { p.as_ptr().cast::<__m128i>().write_volatile(block) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: `p` is valid for 16 bytes (the caller's contract).
    unsafe {
        p.as_ptr()
            .cast::<[u8; 16]>()
            .write_unaligned(word.to_le_bytes())
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_stored_as_its_little_endian_bytes() {
        /// 16 bytes before and after the block, to see the store write exactly its 16.
        #[repr(C, align(16))]
        struct Around([u8; 48]);
        let word = u128::from_le_bytes(core::array::from_fn(|i| i as u8 + 1));
        let mut buf = Around([0xaa; 48]);
        let at = NonNull::from(&mut buf.0[16..32]).cast::<u8>();
        // SAFETY: `at` is 16-aligned (the buffer is, and 16 is a multiple of 16) and valid
        // for the 16 bytes after it.
        unsafe { store(at, word) };
        assert_eq!(&buf.0[..16], &[0xaa; 16]);
        assert_eq!(&buf.0[16..32], &word.to_le_bytes());
        assert_eq!(&buf.0[32..], &[0xaa; 16]);
    }
}
