//! [`CallOutput`]: a call's result, read in place; and how the runtime finds it where
//! the module says it put it.

use std::ops::Deref;
use std::sync::Arc;

use memlink_abi::{self as abi, ModuleError};

use crate::buffer::AlignedBuf;
use crate::lease::PooledArena;
use crate::pool::ArenaPool;

/// A call's result: the bytes the method returned, read in place (from the call's arena
/// when they fit there, which stays on loan until this is dropped).
///
/// 48 bytes, whichever way it holds the result: moving one is three vector moves.
#[derive(Debug)]
pub struct CallOutput {
    repr: Repr,
}

/// A call's own argument buffer.
pub(crate) struct OwnedArgs(pub(crate) Box<dyn Deref<Target = [u8]> + Send + Sync>);

impl std::fmt::Debug for OwnedArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnedArgs({} bytes)", self.0.len())
    }
}

#[derive(Debug)]
enum Repr {
    Empty,
    /// A result of at most [`INLINE`] bytes, copied out of the arena: copying it costs
    /// less than keeping the arena on loan (and its pool referenced) while the output
    /// lives. The result is `len` bytes at `start` of the window.
    Inline {
        window: Window,
        start: u8,
        len: u8,
    },
    Arena {
        arena: PooledArena,
        offset: usize,
        len: usize,
    },
    /// The buffer `alloc_output` gave the module (or a copy of a cached result): the
    /// result is `len` bytes at `offset` of it.
    Heap {
        buf: AlignedBuf,
        offset: usize,
        len: usize,
    },
    /// An output of a call whose arguments had a buffer of their own (larger than an
    /// arena), which is released with the output, not inside the call, so freeing a
    /// large input is not part of the call's cost. Boxed: such calls are rare, and
    /// their arguments were an allocation already.
    WithArgs(Box<(Repr, OwnedArgs)>),
}

/// Results up to this many bytes are copied into the [`CallOutput`] itself.
const INLINE: usize = 32;

/// A window of [`INLINE`] bytes of the call's arena that holds a small result, aligned
/// like the arena (a window starts on a multiple of 16), so the result keeps the
/// alignment it had there and an archive in it can be read; or the 16 bytes of the
/// frame's `small_out`, at the window's start (16-aligned, whatever they hold).
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Window([u8; INLINE]);

impl std::fmt::Debug for Window {
    // The bytes around the result are the call's scratch space: not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Window(..)")
    }
}

/// A copy of the `len` (at most [`INLINE`]) bytes at `offset` of `arena`, with where
/// they start in it: one block of [`INLINE`] bytes, which is two vector moves, where a
/// call to `memcpy` for a few bytes would cost more than the call it is part of.
#[inline(always)]
fn small_copy(arena: &[u8], offset: usize, len: usize) -> (Window, u8) {
    debug_assert!(len <= INLINE && offset + len <= arena.len());
    // The window starts at the result, or ends at the arena's end when the result is
    // closer to it than a window, rounded down to a multiple of 16: it keeps the
    // result's alignment, and it holds the result unless the result is misaligned and
    // near the window's size.
    let window = (offset.min(arena.len().saturating_sub(INLINE)) & !15).min(offset);
    match arena.get(window..window + INLINE) {
        Some(block) if offset + len <= window + INLINE => {
            let mut bytes = [0; INLINE];
            bytes.copy_from_slice(block);
            // At most 15: it fits a `u8`.
            (Window(bytes), (offset - window) as u8)
        }
        _ => small_copy_short(&arena[offset..offset + len], offset % 16),
    }
}

/// `result` at `start` of a window, keeping its alignment when it fits there: for an
/// arena shorter than a window, or a result the window cannot hold.
#[cold]
fn small_copy_short(result: &[u8], start: usize) -> (Window, u8) {
    let start = if start + result.len() <= INLINE {
        start
    } else {
        0
    };
    let mut bytes = [0; INLINE];
    bytes[start..start + result.len()].copy_from_slice(result);
    // At most 32: it fits a `u8`.
    (Window(bytes), start as u8)
}

impl Repr {
    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            Repr::Empty => &[],
            Repr::Inline { window, start, len } => {
                &window.0[usize::from(*start)..][..usize::from(*len)]
            }
            Repr::Arena { arena, offset, len } => &arena.buf().as_slice()[*offset..*offset + *len],
            Repr::Heap { buf, offset, len } => &buf.as_slice()[*offset..*offset + *len],
            Repr::WithArgs(kept) => kept.0.as_bytes(),
        }
    }

    /// This output, keeping `args` (if any) alive with it.
    #[inline(always)]
    fn with_args(self, args: Option<OwnedArgs>) -> Repr {
        match args {
            None => self,
            Some(args) => Repr::WithArgs(Box::new((self, args))),
        }
    }
}

impl CallOutput {
    /// The bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.repr.as_bytes()
    }

    /// Whether the result sits in the call's arena (no copy was made). Results of at most
    /// 32 bytes never do: they are copied into the output and the arena goes back at once,
    /// which costs less than keeping it on loan.
    pub fn is_in_arena(&self) -> bool {
        match &self.repr {
            Repr::Arena { .. } => true,
            Repr::WithArgs(kept) => matches!(kept.0, Repr::Arena { .. }),
            _ => false,
        }
    }
}

impl Deref for CallOutput {
    type Target = [u8];
    #[inline]
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

/// Where a call that succeeded left its result, decided before any output is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// No bytes.
    Empty,
    /// At most [`INLINE`] bytes in the arena, at this offset: copied into the output.
    Small(usize),
    /// More bytes in the arena, at this offset: the output keeps the arena.
    Large(usize),
    /// Not in the arena: the buffer the host allocated, or nowhere the module may put it.
    Elsewhere,
    /// In the frame's `small_out`: at most [`SMALL_OUT_LEN`](abi::SMALL_OUT_LEN) bytes,
    /// copied into the output. Said by the call itself, which knows its frame
    /// ([`locate`] does not).
    InFrame,
}

/// What a call's output is made into when the call returns: the [`CallOutput`] a caller
/// keeps ([`Keep`]), or bytes handed on where they lie, so that an output used at once
/// is not first copied into a `CallOutput` (a nested call's, which the calling module
/// copies through its sink). An empty or small output is received while the call's
/// arena is still its own; any other, once it is a `CallOutput`.
pub(crate) trait Receive {
    /// What the caller gets.
    type Out;
    /// An empty output. `args` is the call's own argument buffer, if it had one.
    fn empty(self, args: Option<OwnedArgs>) -> Self::Out;
    /// The `len` (at most [`INLINE`]) bytes at `offset` of `arena`.
    fn small(
        self,
        arena: &AlignedBuf,
        offset: usize,
        len: usize,
        args: Option<OwnedArgs>,
    ) -> Self::Out;
    /// The first `len` (at most 16) bytes of `small_out`, the frame's field.
    fn in_frame(
        self,
        small_out: [u8; abi::SMALL_OUT_LEN],
        len: usize,
        args: Option<OwnedArgs>,
    ) -> Self::Out;
    /// Any other output, once it is a [`CallOutput`].
    fn output(self, output: CallOutput) -> Self::Out;
}

/// Receives a call's output as the [`CallOutput`] its caller keeps.
pub(crate) struct Keep;

impl Receive for Keep {
    type Out = CallOutput;

    #[inline(always)]
    fn empty(self, args: Option<OwnedArgs>) -> CallOutput {
        CallOutput::empty(args)
    }

    #[inline(always)]
    fn small(
        self,
        arena: &AlignedBuf,
        offset: usize,
        len: usize,
        args: Option<OwnedArgs>,
    ) -> CallOutput {
        CallOutput::small(arena, offset, len, args)
    }

    #[inline(always)]
    fn in_frame(
        self,
        small_out: [u8; abi::SMALL_OUT_LEN],
        len: usize,
        args: Option<OwnedArgs>,
    ) -> CallOutput {
        CallOutput::in_frame(small_out, len, args)
    }

    #[inline(always)]
    fn output(self, output: CallOutput) -> CallOutput {
        output
    }
}

/// Where `len` bytes at `out` are relative to the call's arena buffer `arena`, whose
/// arena (what the module was given) starts at `from`: the bytes ahead of it are the
/// arguments handed over in the buffer, where an output may not be.
#[inline(always)]
pub(crate) fn locate(arena: &AlignedBuf, from: usize, out: *const u8, len: usize) -> Found {
    if len == 0 {
        Found::Empty
    } else if arena.contains_range(out, len) && out.addr() - arena.as_ptr().addr() >= from {
        let offset = out.addr() - arena.as_ptr().addr();
        if len <= INLINE {
            Found::Small(offset)
        } else {
            Found::Large(offset)
        }
    } else {
        Found::Elsewhere
    }
}

impl CallOutput {
    /// An output of no bytes.
    #[inline(always)]
    pub(crate) fn empty(args: Option<OwnedArgs>) -> CallOutput {
        CallOutput {
            repr: Repr::Empty.with_args(args),
        }
    }

    /// An output holding a copy of `bytes` (a cached result), 64-byte aligned like an
    /// arena, so an archive in it can be read in place.
    pub(crate) fn copied(bytes: &[u8]) -> CallOutput {
        let mut buf = AlignedBuf::zeroed(bytes.len());
        buf.as_mut_slice()[..bytes.len()].copy_from_slice(bytes);
        if bytes.is_empty() {
            return CallOutput::empty(None);
        }
        if bytes.len() <= INLINE {
            return CallOutput::small(&buf, 0, bytes.len(), None);
        }
        CallOutput {
            repr: Repr::Heap {
                buf,
                offset: 0,
                len: bytes.len(),
            },
        }
    }

    /// An output of the `len` (at most [`INLINE`]) bytes at `offset` of `arena`, copied.
    #[inline(always)]
    pub(crate) fn small(
        arena: &AlignedBuf,
        offset: usize,
        len: usize,
        args: Option<OwnedArgs>,
    ) -> CallOutput {
        let (window, start) = small_copy(arena.as_slice(), offset, len);
        CallOutput {
            repr: Repr::Inline {
                window,
                start,
                // At most 32: it fits a `u8`.
                len: len as u8,
            }
            .with_args(args),
        }
    }

    /// An output of the first `len` (at most 16) bytes of a frame's `small_out`, copied.
    #[inline(always)]
    pub(crate) fn in_frame(
        small_out: [u8; abi::SMALL_OUT_LEN],
        len: usize,
        args: Option<OwnedArgs>,
    ) -> CallOutput {
        debug_assert!(len <= abi::SMALL_OUT_LEN);
        let mut bytes = [0; INLINE];
        bytes[..abi::SMALL_OUT_LEN].copy_from_slice(&small_out);
        CallOutput {
            repr: Repr::Inline {
                window: Window(bytes),
                start: 0,
                // At most 16: it fits a `u8`.
                len: len as u8,
            }
            .with_args(args),
        }
    }

    /// An output of the `len` bytes at `offset` of `arena`, read in place: the arena
    /// goes back to `pool` when the output is dropped.
    pub(crate) fn in_arena(
        arena: AlignedBuf,
        pool: &Arc<ArenaPool>,
        offset: usize,
        len: usize,
        args: Option<OwnedArgs>,
    ) -> CallOutput {
        CallOutput {
            repr: Repr::Arena {
                arena: PooledArena::new(arena, Arc::clone(pool)),
                offset,
                len,
            }
            .with_args(args),
        }
    }
}

/// Finds where the module put its output, for a call whose result is not empty or
/// small, or which failed (its error's payload is its output): anywhere but the arena or
/// the buffer the host allocated for it is a protocol error, and nothing is read from
/// there. `args`, the call's own argument buffer if it had one, is kept with the output.
/// The call's arena starts at `from` in `arena` (see [`locate`]).
pub(crate) fn collect(
    arena: AlignedBuf,
    from: usize,
    pool: &Arc<ArenaPool>,
    heap: Option<AlignedBuf>,
    out: *const u8,
    len: usize,
    args: Option<OwnedArgs>,
) -> Result<CallOutput, ModuleError> {
    let give_back = |arena| crate::thread::with(|t| pool.give_back(arena, &t.arenas));
    match locate(&arena, from, out, len) {
        Found::Empty => {
            give_back(arena);
            return Ok(CallOutput::empty(args));
        }
        Found::Small(offset) => {
            let output = CallOutput::small(&arena, offset, len, args);
            give_back(arena);
            return Ok(output);
        }
        Found::Large(offset) => return Ok(CallOutput::in_arena(arena, pool, offset, len, args)),
        // `locate` never finds the frame: an output there is a call's own finding.
        Found::Elsewhere | Found::InFrame => give_back(arena),
    }
    match heap {
        // Anywhere in the buffer, as anywhere in the arena: the ABI says the output points
        // "into" either (a C module may write a header of its own before the result).
        Some(buf) if buf.contains_range(out, len) => {
            let offset = out.addr() - buf.as_slice().as_ptr().addr();
            Ok(CallOutput {
                repr: Repr::Heap { buf, offset, len }.with_args(args),
            })
        }
        _ => Err(misplaced(len)),
    }
}

/// Why an output the module put where none may lie is refused: the places it may lie,
/// each with its rule, since the host cannot tell which rule the module meant to follow
/// (a C module that returns its input points at the arguments; one that fills
/// `small_out` may start past its first byte or put an error's message there).
#[cold]
fn misplaced(len: usize) -> ModuleError {
    ModuleError::Abi(format!(
        "the module reported {len} output bytes outside the places an output may lie: \
         its arena, a buffer from alloc_output, or the frame's small_out (a result of \
         status OK of at most 16 bytes, from its first byte); not at the arguments (a \
         module returning its input must copy it)"
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn a_small_copy_holds_exactly_the_bytes_wherever_they_are() {
        for arena_len in [0usize, 8, 31, 32, 33, 64, 128] {
            let arena: Vec<u8> = (0..arena_len).map(|i| i as u8).collect();
            for offset in 0..=arena_len {
                for len in 0..=INLINE.min(arena_len - offset) {
                    let (window, start) = small_copy(&arena, offset, len);
                    let start = usize::from(start);
                    assert_eq!(
                        &window.0[start..start + len],
                        &arena[offset..offset + len],
                        "arena {arena_len}, offset {offset}, length {len}"
                    );
                    if offset % 16 + len <= INLINE {
                        assert_eq!(start % 16, offset % 16, "the result keeps its alignment");
                    }
                }
            }
        }
    }

    #[test]
    fn an_output_from_the_frame_holds_exactly_its_bytes() {
        let small_out: [u8; abi::SMALL_OUT_LEN] = core::array::from_fn(|i| 0xa0 + i as u8);
        for len in 0..=abi::SMALL_OUT_LEN {
            let output = CallOutput::in_frame(small_out, len, None);
            assert_eq!(output.as_bytes(), &small_out[..len], "{len} bytes");
        }
    }

    /// Each kind of output releases what it holds when dropped, and only then: the arena
    /// it reads in place goes back (the pool lends the same buffer again), arguments
    /// kept with it are dropped. Under Miri, a leak or a double drop of any variant fails
    /// the test.
    #[test]
    fn an_output_releases_what_it_holds() {
        struct Kept(Arc<AtomicBool>, Vec<u8>);
        impl Deref for Kept {
            type Target = [u8];
            fn deref(&self) -> &[u8] {
                &self.1
            }
        }
        impl Drop for Kept {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let kept = |dropped: &Arc<AtomicBool>| {
            Some(OwnedArgs(Box::new(Kept(
                Arc::clone(dropped),
                vec![1, 2, 3],
            ))))
        };
        let pool = ArenaPool::new(256, 1, 4);
        let mut arena = AlignedBuf::zeroed(256);
        arena.as_mut_slice()[64..164].fill(7);
        let at = arena.as_ptr();
        let out = CallOutput::in_arena(arena, &pool, 64, 100, None);
        assert!(out.is_in_arena() && out.as_bytes() == [7; 100]);
        drop(out);
        let again = crate::lease::PooledArena::take(&pool).unwrap();
        assert_eq!(
            again.buf().as_ptr(),
            at,
            "dropped, the output gave its arena back"
        );

        for (what, out) in [
            ("empty", CallOutput::empty as fn(_) -> CallOutput),
            ("small", |args| {
                CallOutput::small(&AlignedBuf::zeroed(64), 0, 5, args)
            }),
            ("in its arena", |args| {
                CallOutput::in_arena(
                    AlignedBuf::zeroed(256),
                    &ArenaPool::new(256, 1, 4),
                    0,
                    40,
                    args,
                )
            }),
        ] {
            let dropped = Arc::new(AtomicBool::new(false));
            let out = out(kept(&dropped));
            assert!(
                !dropped.load(Ordering::Relaxed),
                "{what}: kept while the output lives"
            );
            drop(out);
            assert!(
                dropped.load(Ordering::Relaxed),
                "{what}: dropped with the output"
            );
        }
        let copied = CallOutput::copied(&[5; 40]);
        assert_eq!(copied.as_bytes(), [5; 40]);
    }

    #[test]
    fn an_output_is_three_vector_moves() {
        assert_eq!(size_of::<CallOutput>(), 48);
    }
}
