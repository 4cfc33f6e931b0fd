//! Strings as they cross the boundary.

/// `bytes` as a string, as [`core::str::from_utf8`] gives it, with the same error.
///
/// Names and short arguments are nearly always ASCII: up to 16 bytes, that is checked
/// with two loads and a mask, a few instructions where `from_utf8` walks byte by byte
/// (about 90 instructions for `"hello"`, callgrind). Anything else goes to `from_utf8`.
///
/// ```
/// use memlink_abi::text::utf8;
///
/// assert_eq!(utf8(b"echo"), Ok("echo"));
/// assert_eq!(utf8("grüße".as_bytes()), Ok("grüße"));
/// assert!(utf8(b"\xff").is_err());
/// ```
#[inline]
pub fn utf8(bytes: &[u8]) -> Result<&str, core::str::Utf8Error> {
    if short_ascii(bytes) {
        // SAFETY: `short_ascii` found every byte below 0x80 (its cases cover each byte at
        // every length up to 16), and ASCII is UTF-8.
        return Ok(unsafe { core::str::from_utf8_unchecked(bytes) });
    }
    core::str::from_utf8(bytes)
}

/// Whether `bytes` are at most 16 and all ASCII; `false` says nothing of longer ones.
#[inline(always)]
fn short_ascii(bytes: &[u8]) -> bool {
    let n = bytes.len();
    match n {
        0 => true,
        1..=3 => (bytes[0] | bytes[n / 2] | bytes[n - 1]) < 0x80,
        4..=7 => (word::<4>(bytes, 0) | word::<4>(bytes, n - 4)) & 0x8080_8080 == 0,
        8..=16 => (word::<8>(bytes, 0) | word::<8>(bytes, n - 8)) & 0x8080_8080_8080_8080 == 0,
        _ => false,
    }
}

/// The `N` bytes of `bytes` at `at`, little-endian, as a number.
#[inline(always)]
fn word<const N: usize>(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word[..N].copy_from_slice(&bytes[at..at + N]);
    u64::from_le_bytes(word)
}

/// A borrowed UTF-8 string crossing the boundary: pointer and length, no terminator.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    /// First byte; may dangle when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl StrRef {
    /// Borrows `s` for as long as the pointer is used.
    pub const fn new(s: &str) -> StrRef {
        StrRef {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Reads the string back.
    ///
    /// Returns `None` when the bytes are not UTF-8, or the pointer is null or the length
    /// over `isize::MAX` with a non-zero length.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads of `len` bytes for `'a`, and nothing may write
    /// those bytes during `'a`.
    pub unsafe fn as_str<'a>(self) -> Option<&'a str> {
        // SAFETY: forwarded from this function's contract.
        utf8(unsafe { self.as_bytes() }?).ok()
    }

    /// The bytes, not checked as UTF-8; `None` if the pointer is null with a non-zero
    /// length, or the length exceeds `isize::MAX`.
    ///
    /// # Safety
    ///
    /// As for [`as_str`](Self::as_str): unless `len` is 0, `ptr` must point to `len`
    /// readable bytes that stay unchanged for `'a`.
    pub unsafe fn as_bytes<'a>(self) -> Option<&'a [u8]> {
        if self.len == 0 {
            return Some(&[]);
        }
        if self.ptr.is_null() || isize::try_from(self.len).is_err() {
            return None;
        }
        // SAFETY: non-null, no longer than `isize::MAX`, and the caller guarantees `len`
        // readable, unchanging bytes for `'a`.
        Some(unsafe { core::slice::from_raw_parts(self.ptr, self.len) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_agrees_with_from_utf8_at_every_length_and_position() {
        for len in 0..=20 {
            let ascii = vec![b'a'; len];
            assert_eq!(utf8(&ascii), core::str::from_utf8(&ascii));
            for at in 0..len {
                for byte in [0x7f, 0x80, 0xc3, 0xff] {
                    let mut bytes = ascii.clone();
                    bytes[at] = byte;
                    assert_eq!(utf8(&bytes), core::str::from_utf8(&bytes), "{bytes:?}");
                }
                // A two-byte character, whole, at this position.
                let mut bytes = ascii.clone();
                bytes.splice(at..at, "ü".bytes());
                assert_eq!(utf8(&bytes), core::str::from_utf8(&bytes), "{bytes:?}");
            }
        }
    }
}
