//! A scalar result as one block: its MessagePack bytes (at most 9, from
//! `Scalar::encode`) held in a `u128` in registers and written into the frame's
//! `small_out` with one 16-byte store.
//!
//! Why one store: the host copies a small result out of the frame within a few dozen
//! cycles of the module writing it, 16 bytes at a time. A load that one earlier store
//! covers whole is answered from the store buffer; a load that spans several narrower
//! stores still in flight waits until they have reached the cache (a store-forwarding
//! stall). Bytes encoded into a buffer on the stack a byte or two at a time and then
//! copied out as a block stalled the same way inside the module: on a no-op export,
//! whose `()` result took that path, about 4 ns of the module's 12
//! (`module_boundary_noop_ns`, benches/README.md).

/// Writes the 16 little-endian bytes of `word` at `p` with one store.
///
/// # Safety
///
/// `p` must be valid for writes of 16 bytes; it need not be aligned.
#[inline(always)]
pub(crate) unsafe fn store(p: *mut u8, word: u128) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{__m128i, _mm_set_epi64x, _mm_storeu_si128};
        let (low, high) = (word as u64, (word >> 64) as u64);
        // A safe function since Rust 1.87 (SSE2 is enabled); unsafe before, and this
        // crate builds from 1.85.
        #[allow(unused_unsafe)]
        // SAFETY: SSE2 is part of every x86_64 target; the function reads no memory.
        let block = unsafe { _mm_set_epi64x(high as i64, low as i64) };
        // The unaligned vector store is one instruction, which the compiler keeps: a
        // `u128` written as such would be two 8-byte stores, the split this function is
        // for.
        // SAFETY: `p` is valid for writes of 16 bytes (the caller's contract); the
        // instruction takes any alignment.
        unsafe { _mm_storeu_si128(p.cast::<__m128i>(), block) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: `p` is valid for 16 bytes (the caller's contract).
    unsafe {
        p.cast::<[u8; 16]>().write_unaligned(word.to_le_bytes())
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_stored_as_its_little_endian_bytes() {
        let word = u128::from_le_bytes(core::array::from_fn(|i| i as u8 + 1));
        // Every alignment, with the bytes before and after the block, to see the store
        // write exactly its 16.
        for offset in 0..16 {
            let mut buf = [0xaau8; 48];
            let at = buf[offset..offset + 16].as_mut_ptr();
            // SAFETY: `at` is valid for the 16 bytes after it, inside `buf`.
            unsafe { store(at, word) };
            assert!(buf[..offset].iter().all(|&b| b == 0xaa), "offset {offset}");
            assert_eq!(&buf[offset..offset + 16], &word.to_le_bytes());
            assert!(
                buf[offset + 16..].iter().all(|&b| b == 0xaa),
                "offset {offset}"
            );
        }
    }
}
