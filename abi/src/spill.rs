//! Encodings written once: into a caller's buffer while they fit, onto the heap past
//! that ([`Encoded`]). A typed call encodes its arguments on its stack, and a module its
//! result in its arena, this way: a value too long for the room is not serialized a
//! second time into a vector (a `Serialize` that can run only once, one draining an
//! iterator through a `RefCell`, wrote nothing the second time).

use core::mem::MaybeUninit;

/// An encoding made into a caller's buffer: at its start, or, when it did not fit
/// there, in a vector of its own. Either way it derefs to the bytes.
#[derive(Debug)]
pub enum Encoded<'b> {
    /// The start of the buffer.
    Within(&'b [u8]),
    /// Too long for the buffer: all of it here.
    Spilled(Vec<u8>),
}

impl core::ops::Deref for Encoded<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Encoded::Within(bytes) => bytes,
            Encoded::Spilled(bytes) => bytes,
        }
    }
}

/// The output an encoder writes to: `buf` while the bytes fit, then a vector that takes
/// them all ([`finish`](Spilling::finish) says where they are). A `std::io::Write`, and,
/// with the `rkyv` feature, an rkyv writer.
pub struct Spilling<'b> {
    buf: &'b mut [MaybeUninit<u8>],
    /// Bytes of `buf` written (initialized) so far.
    len: usize,
    /// Every byte, once one did not fit `buf`.
    heap: Option<Vec<u8>>,
}

impl<'b> Spilling<'b> {
    /// An output that writes into `buf` first.
    #[inline]
    pub fn new(buf: &'b mut [MaybeUninit<u8>]) -> Spilling<'b> {
        Spilling {
            buf,
            len: 0,
            heap: None,
        }
    }

    /// Bytes written so far.
    #[inline]
    pub fn pos(&self) -> usize {
        self.heap.as_ref().map_or(self.len, Vec::len)
    }

    /// The last byte written, if any.
    #[cfg(feature = "msgpack")] // the MessagePack writer's alone
    #[inline]
    pub(crate) fn last(&self) -> Option<u8> {
        match &self.heap {
            Some(heap) => heap.last().copied(),
            // SAFETY: `put` initialized the first `len` bytes of `buf`.
            None => self
                .len
                .checked_sub(1)
                .map(|i| unsafe { self.buf[i].assume_init() }),
        }
    }

    /// Writes `bytes` after those written so far.
    #[inline(always)]
    pub fn put(&mut self, bytes: &[u8]) {
        if self.heap.is_none() {
            // `len <= buf.len()` and a slice is at most `isize::MAX` bytes: no overflow.
            if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
                for (d, s) in dst.iter_mut().zip(bytes) {
                    d.write(*s);
                }
                self.len += bytes.len();
                return;
            }
        }
        self.spill(bytes);
    }

    /// Puts `bytes` on the heap, with what `buf` holds first if they are the first.
    #[cold]
    #[inline(never)]
    fn spill(&mut self, bytes: &[u8]) {
        let (buf, len) = (&*self.buf, self.len);
        let heap = self.heap.get_or_insert_with(|| {
            let mut heap = Vec::with_capacity(len.saturating_add(bytes.len()));
            // SAFETY: `put` initialized the first `len` bytes of `buf`, which is at
            // least that long; `MaybeUninit<u8>` and `u8` have the same layout.
            let written = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
            heap.extend_from_slice(written);
            heap
        });
        heap.extend_from_slice(bytes);
    }

    /// What was written.
    #[inline]
    pub fn finish(self) -> Encoded<'b> {
        match self.heap {
            Some(heap) => Encoded::Spilled(heap),
            // SAFETY: `put` initialized the first `len` bytes of `buf`, which is at least
            // that long; `[MaybeUninit<u8>]` and `[u8]` have the same layout.
            None => Encoded::Within(unsafe {
                core::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), self.len)
            }),
        }
    }
}

impl core::fmt::Debug for Spilling<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Spilling")
            .field("room", &self.buf.len())
            .field("written", &self.pos())
            .field("spilled", &self.heap.is_some())
            .finish()
    }
}

impl std::io::Write for Spilling<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.put(bytes);
        Ok(bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.put(bytes);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "rkyv")]
impl rkyv::ser::Positional for Spilling<'_> {
    fn pos(&self) -> usize {
        Spilling::pos(self)
    }
}

#[cfg(feature = "rkyv")]
impl<E> rkyv::ser::Writer<E> for Spilling<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), E> {
        self.put(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(out: Spilling<'_>) -> (Vec<u8>, bool) {
        match out.finish() {
            Encoded::Within(bytes) => (bytes.to_vec(), false),
            Encoded::Spilled(bytes) => (bytes, true),
        }
    }

    #[test]
    fn bytes_stay_in_the_buffer_until_one_does_not_fit_then_all_go_to_the_heap() {
        let mut buf = [MaybeUninit::uninit(); 4];
        let mut out = Spilling::new(&mut buf);
        out.put(b"ab");
        out.put(b"cd");
        assert_eq!(out.pos(), 4);
        assert_eq!(written(out), (b"abcd".to_vec(), false));

        let mut buf = [MaybeUninit::uninit(); 4];
        let mut out = Spilling::new(&mut buf);
        out.put(b"ab");
        out.put(b"cde");
        out.put(b"f");
        assert_eq!(out.pos(), 6);
        assert_eq!(written(out), (b"abcdef".to_vec(), true));

        let mut none: [MaybeUninit<u8>; 0] = [];
        let mut out = Spilling::new(&mut none);
        out.put(b"");
        assert_eq!(written(out), (Vec::new(), false));
    }
}
