//! A small result as one block: a scalar's MessagePack bytes (at most 9, from
//! `Scalar::encode`), or raw bytes of at most 16 gathered from where they lie, held in a
//! `u128` in registers and written into the frame's `small_out` with one 16-byte store.
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
        // SAFETY: SSE2, which the intrinsic needs, is part of every x86_64 target; `p`
        // is valid for writes of 16 bytes (the caller's contract); the instruction takes
        // any alignment.
        unsafe { _mm_storeu_si128(p.cast::<__m128i>(), block) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: `p` is valid for 16 bytes (the caller's contract).
    unsafe {
        p.cast::<[u8; 16]>().write_unaligned(word.to_le_bytes())
    };
}

/// The bytes of `src` (at most 16) as the little-endian `u128` whose first bytes they
/// are, the rest zero: gathered with at most two loads (overlapping where the length is
/// not a power of two; three single bytes below 4) and shifts, in registers, for
/// [`store`] to write as one block.
#[inline(always)]
pub(crate) fn gather(src: &[u8]) -> u128 {
    /// The `N` bytes of `src` at `at`, as a little-endian number.
    #[inline(always)]
    fn read<const N: usize>(src: &[u8], at: usize) -> [u8; N] {
        let mut bytes = [0; N];
        bytes.copy_from_slice(&src[at..at + N]);
        bytes
    }
    let len = src.len();
    debug_assert!(len <= 16);
    if len >= 8 {
        // The first 8 bytes and the last 8, which overlap by `16 - len`: the bytes they
        // share are the same, so or-ing them in place is exact.
        let low = u64::from_le_bytes(read(src, 0));
        let high = u64::from_le_bytes(read(src, len - 8));
        u128::from(low) | (u128::from(high) << (8 * (len - 8)))
    } else if len >= 4 {
        let low = u32::from_le_bytes(read(src, 0));
        let high = u32::from_le_bytes(read(src, len - 4));
        u128::from(low) | (u128::from(high) << (8 * (len - 4)))
    } else if len > 0 {
        // The first, middle and last bytes cover 1, 2 or 3 bytes.
        let (first, middle, last) = (src[0], src[len / 2], src[len - 1]);
        u128::from(first)
            | (u128::from(middle) << (8 * (len / 2)))
            | (u128::from(last) << (8 * (len - 1)))
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathered_bytes_are_the_slices_bytes_and_zeros_after() {
        let source: [u8; 16] = core::array::from_fn(|i| 0xf0 ^ (i as u8 * 17));
        for len in 0..=16 {
            // At every offset of a larger buffer, so that no load reads past the slice.
            for offset in 0..4 {
                let mut buf = [0x5a; 24];
                buf[offset..offset + len].copy_from_slice(&source[..len]);
                let mut want = [0; 16];
                want[..len].copy_from_slice(&source[..len]);
                assert_eq!(
                    gather(&buf[offset..offset + len]).to_le_bytes(),
                    want,
                    "{len} bytes at {offset}"
                );
            }
        }
    }

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
