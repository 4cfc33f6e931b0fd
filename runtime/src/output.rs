//! [`CallOutput`]: a call's result, read in place; and how the runtime finds it where
//! the module says it put it.

use std::ops::Deref;
use std::sync::Arc;

use memlink_abi::ModuleError;

use crate::buffer::AlignedBuf;
use crate::pool::{ArenaCache, ArenaPool, PooledArena};

/// A call's result: the bytes the method returned, read in place (from the call's arena
/// when they fit there, which stays on loan until this is dropped).
#[derive(Debug)]
pub struct CallOutput {
    repr: Repr,
    /// Arguments that had a buffer of their own: released with the output, not inside
    /// the call, so freeing a large input is not part of the call's cost.
    pub(crate) args: Option<OwnedArgs>,
}

/// A call's own argument buffer.
pub(crate) struct OwnedArgs(pub(crate) Box<dyn Deref<Target = [u8]> + Send>);

impl std::fmt::Debug for OwnedArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnedArgs({} bytes)", self.0.len())
    }
}

#[derive(Debug)]
enum Repr {
    Empty,
    /// A result of at most [`INLINE`] bytes, copied out of the arena: copying it costs
    /// less than keeping the arena on loan (and its pool referenced) while the output lives.
    Inline(Inline),
    Arena {
        arena: PooledArena,
        offset: usize,
        len: usize,
    },
    Heap {
        buf: AlignedBuf,
        len: usize,
    },
}

/// Results up to this many bytes are copied into the [`CallOutput`] itself.
const INLINE: usize = 32;

/// Storage for a small result, aligned like an arena so an archive in it can be read.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
struct Inline {
    bytes: [u8; INLINE],
    len: u8,
}

impl CallOutput {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.repr {
            Repr::Empty => &[],
            Repr::Inline(inline) => &inline.bytes[..usize::from(inline.len)],
            Repr::Arena { arena, offset, len } => &arena.buf().as_slice()[*offset..*offset + *len],
            Repr::Heap { buf, len } => &buf.as_slice()[..*len],
        }
    }

    /// Whether the result sits in the call's arena (no copy was made). Results of at most
    /// 32 bytes never do: they are copied into the output and the arena goes back at once,
    /// which costs less than keeping it on loan.
    pub fn is_in_arena(&self) -> bool {
        matches!(self.repr, Repr::Arena { .. })
    }
}

impl Deref for CallOutput {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for CallOutput {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq<[u8]> for CallOutput {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for CallOutput {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_bytes() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for CallOutput {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_bytes() == *other
    }
}

impl PartialEq<&[u8]> for CallOutput {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_bytes() == *other
    }
}

/// Finds where the module put its output; anywhere but the arena or the buffer the host
/// allocated for it is a protocol error, and nothing is read from there.
#[inline]
pub(crate) fn collect(
    arena: AlignedBuf,
    pool: &Arc<ArenaPool>,
    cache: &ArenaCache,
    heap: Option<AlignedBuf>,
    out: *const u8,
    len: usize,
) -> Result<CallOutput, ModuleError> {
    if len > 0 && arena.contains_range(out, len) {
        let offset = out.addr() - arena.as_slice().as_ptr().addr();
        let repr = if len <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..len].copy_from_slice(&arena.as_slice()[offset..offset + len]);
            pool.give_back(arena, cache);
            // `len <= INLINE`, which fits a `u8`.
            let len = len as u8;
            Repr::Inline(Inline { bytes, len })
        } else {
            Repr::Arena {
                arena: PooledArena::new(arena, Arc::clone(pool)),
                offset,
                len,
            }
        };
        return Ok(CallOutput { repr, args: None });
    }
    pool.give_back(arena, cache);
    if len == 0 {
        return Ok(CallOutput {
            repr: Repr::Empty,
            args: None,
        });
    }
    match heap {
        Some(buf)
            if buf.contains_range(out, len) && out.addr() == buf.as_slice().as_ptr().addr() =>
        {
            Ok(CallOutput {
                repr: Repr::Heap { buf, len },
                args: None,
            })
        }
        _ => Err(ModuleError::Abi(format!(
            "the module reported {len} output bytes outside the arena and the output buffer"
        ))),
    }
}
