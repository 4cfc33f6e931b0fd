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
    // Every byte of a string this short is in a lane of its own of `ends`.
    bytes.len() <= 16 && {
        let (head, tail) = ends(bytes);
        (head | tail) & 0x8080_8080_8080_8080 == 0
    }
}

/// The first and last eight bytes of `bytes`, little-endian, as two numbers:
/// overlapping when there are fewer than 16; four and four for 4 to 7 bytes; the first,
/// middle and last byte, in the first number's low three bytes, for 1 to 3; zeros for
/// none. Each byte keeps a byte of its own in the numbers, so with the length they are
/// the whole of a string of at most 16 bytes: two such strings of one length are equal
/// exactly when their ends are, and a mask tests every byte at once.
///
/// ```
/// use memlink_abi::text::ends;
///
/// let echo = u64::from_le_bytes(*b"echo\0\0\0\0");
/// assert_eq!(ends(b"echo"), (echo, echo));
/// // First, middle and last.
/// assert_eq!(ends(b"ab"), (u64::from_le_bytes(*b"abb\0\0\0\0\0"), 0));
/// ```
#[inline(always)]
pub fn ends(bytes: &[u8]) -> (u64, u64) {
    let n = bytes.len();
    match n {
        8.. => (word::<8>(bytes, 0), word::<8>(bytes, n - 8)),
        4..=7 => (word::<4>(bytes, 0), word::<4>(bytes, n - 4)),
        1..=3 => {
            let [first, middle, last] = [bytes[0], bytes[n / 2], bytes[n - 1]].map(u64::from);
            (first | middle << 8 | last << 16, 0)
        }
        0 => (0, 0),
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
