//! [`Args`]: where a call's arguments are, and where that puts the module's scratch
//! arena.

use std::ops::Deref;
use std::sync::Arc;

use crate::buffer::{AlignedBuf, BUFFER_ALIGN};
use crate::output::OwnedArgs;
use crate::pool::{ArenaPool, PooledArena};

/// Where a call's arguments are.
pub(crate) enum Args<'a> {
    /// Borrowed from the caller for the duration of the call; the module gets a whole
    /// arena from the pool for scratch.
    Borrowed(&'a [u8]),
    /// The first `len` bytes of an arena from the pool, written there before the call
    /// (archived arguments, an argument buffer); the module's scratch space follows them,
    /// so nothing writes the arguments while the module reads them.
    InArena(PooledArena, usize),
    /// A buffer of their own, for arguments larger than an arena: kept until the output
    /// is dropped, so freeing it is not part of the call.
    Owned(Box<dyn Deref<Target = [u8]> + Send>),
}

/// A call's memory, laid out for its frame.
pub(crate) struct Placed {
    /// The buffer the module's arena is in; back to the pool after the call, unless the
    /// output stays in it.
    pub(crate) buf: AlignedBuf,
    /// The arguments.
    pub(crate) args: *const u8,
    pub(crate) args_len: usize,
    /// Where in `buf` the module's arena starts.
    pub(crate) arena_offset: usize,
    /// Arguments with a buffer of their own, to keep alive with the output.
    pub(crate) owned: Option<OwnedArgs>,
}

impl Args<'_> {
    /// Lays the call's memory out: takes an arena from `pool` unless the arguments came
    /// in one.
    pub(crate) fn place(self, pool: &Arc<ArenaPool>) -> Placed {
        match self {
            Args::Borrowed(bytes) => Placed {
                buf: pool.take_buf(),
                args: bytes.as_ptr(),
                args_len: bytes.len(),
                arena_offset: 0,
                owned: None,
            },
            Args::InArena(arena, len) => {
                let buf = arena.into_buf();
                let arena_offset = len.next_multiple_of(BUFFER_ALIGN).min(buf.len());
                Placed {
                    args: buf.as_ptr(),
                    args_len: len,
                    arena_offset,
                    buf,
                    owned: None,
                }
            }
            Args::Owned(bytes) => Placed {
                buf: pool.take_buf(),
                args: bytes.as_ptr(),
                args_len: bytes.len(),
                arena_offset: 0,
                owned: Some(OwnedArgs(bytes)),
            },
        }
    }
}
