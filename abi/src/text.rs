//! Strings as they cross the boundary.

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
        core::str::from_utf8(unsafe { self.as_bytes() }?).ok()
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
