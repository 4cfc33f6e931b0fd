//! A call's argument memory: bytes the caller lends for the call, or an [`ArgBuffer`]
//! it filled in place; and where that puts the module's scratch arena.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::buffer::{AlignedBuf, BUFFER_ALIGN};
use crate::lease::PooledArena;
use crate::output::OwnedArgs;
use crate::pool::{ArenaCache, ArenaPool};

/// The arguments of an untyped call (`Runtime::call_method`): encoded bytes the caller
/// lends for the length of the call (the module reads them where they are), or an
/// [`ArgBuffer`] the caller filled in place.
pub trait CallArgs<'a>: sealed::Sealed {
    /// Where the arguments are, for the call path.
    #[doc(hidden)]
    fn into_args(self) -> ArgsIn<'a>;
}

/// Where a call's arguments are, as the call path takes them (not a public API).
#[doc(hidden)]
#[derive(Debug)]
pub struct ArgsIn<'a>(pub(crate) Args<'a>);

mod sealed {
    pub trait Sealed {}
    impl Sealed for &[u8] {}
    impl<const N: usize> Sealed for &[u8; N] {}
    impl Sealed for &Vec<u8> {}
    impl Sealed for super::ArgBuffer {}
    impl Sealed for &super::ArgBuffer {}
}

impl<'a> CallArgs<'a> for &'a [u8] {
    fn into_args(self) -> ArgsIn<'a> {
        ArgsIn(Args::Borrowed(self))
    }
}

impl<'a, const N: usize> CallArgs<'a> for &'a [u8; N] {
    fn into_args(self) -> ArgsIn<'a> {
        ArgsIn(Args::Borrowed(self))
    }
}

impl<'a> CallArgs<'a> for &'a Vec<u8> {
    fn into_args(self) -> ArgsIn<'a> {
        ArgsIn(Args::Borrowed(self))
    }
}

/// A buffer lent for one call and kept: call after call, the caller writes new
/// arguments into the same memory (nothing is zeroed or allocated again), and the
/// module reads them where they lie. The call's scratch arena is one of its own.
impl<'a> CallArgs<'a> for &'a ArgBuffer {
    fn into_args(self) -> ArgsIn<'a> {
        ArgsIn(Args::Borrowed(self))
    }
}

impl CallArgs<'static> for ArgBuffer {
    fn into_args(self) -> ArgsIn<'static> {
        let (len, capacity) = (self.len, self.capacity);
        ArgsIn(match self.repr {
            BufRepr::Arena(arena) => Args::InArena(arena, len),
            // Kept as the buffer it is: its bytes are its first `len`.
            repr @ BufRepr::Owned(_) => Args::Owned(Box::new(ArgBuffer {
                repr,
                len,
                capacity,
            })),
        })
    }
}

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
    Owned(Box<dyn Deref<Target = [u8]> + Send + Sync>),
}

impl std::fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Args::Borrowed(b) => write!(f, "Borrowed({} bytes)", b.len()),
            Args::InArena(_, len) => write!(f, "InArena({len} bytes)"),
            Args::Owned(b) => write!(f, "Owned({} bytes)", b.len()),
        }
    }
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

/// Arguments as the call path takes them: any [`Args`], or bytes lent for the call. The
/// lent bytes, the common case, have a call path of their own (the path is generic over
/// this), which passes a slice where the other moves the whole enum through each layer:
/// 3 ns of a 38 ns call in `report --only exports` runs.
pub(crate) trait CallInput {
    /// The argument bytes.
    fn bytes(&self) -> &[u8];

    /// Lays the call's memory out: takes an arena from `pool` unless the arguments came
    /// in one; `None` when no arena can be had (see `ArenaPool::take_buf`).
    fn place(self, pool: &Arc<ArenaPool>, cache: &ArenaCache) -> Option<Placed>;
}

impl CallInput for &[u8] {
    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        self
    }

    #[inline(always)]
    fn place(self, pool: &Arc<ArenaPool>, cache: &ArenaCache) -> Option<Placed> {
        Some(Placed {
            buf: pool.take_buf(cache)?,
            args: self.as_ptr(),
            args_len: self.len(),
            arena_offset: 0,
            owned: None,
        })
    }
}

impl CallInput for Args<'_> {
    fn bytes(&self) -> &[u8] {
        Args::bytes(self)
    }

    #[inline(always)]
    fn place(self, pool: &Arc<ArenaPool>, cache: &ArenaCache) -> Option<Placed> {
        Args::place(self, pool, cache)
    }
}

impl Args<'_> {
    /// The argument bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Args::Borrowed(bytes) => bytes,
            Args::InArena(arena, len) => &arena.buf().as_slice()[..*len],
            Args::Owned(bytes) => bytes,
        }
    }

    /// Lays the call's memory out: takes an arena from `pool` unless the arguments came
    /// in one; `None` when no arena can be had.
    #[inline(always)]
    pub(crate) fn place(self, pool: &Arc<ArenaPool>, cache: &ArenaCache) -> Option<Placed> {
        Some(match self {
            Args::Borrowed(bytes) => bytes.place(pool, cache)?,
            // An `ArgBuffer` of another runtime (whose arenas may be of another size)
            // stays that runtime's: lent for the call, given back to its own pool.
            Args::InArena(arena, len) if !arena.is_of(pool) => {
                let args = arena.buf().as_ptr();
                Placed {
                    buf: pool.take_buf(cache)?,
                    args,
                    args_len: len,
                    arena_offset: 0,
                    owned: Some(OwnedArgs(Box::new(Foreign(arena, len)))),
                }
            }
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
                buf: pool.take_buf(cache)?,
                args: bytes.as_ptr(),
                args_len: bytes.len(),
                arena_offset: 0,
                owned: Some(OwnedArgs(bytes)),
            },
        })
    }
}

/// The first `.1` bytes of an arena of another runtime's pool, kept for a call and then
/// given back to that pool.
struct Foreign(PooledArena, usize);

impl Deref for Foreign {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0.buf().as_slice()[..self.1]
    }
}

/// Argument memory the caller fills in place ([`Runtime::arg_buffer`](crate::Runtime::arg_buffer)):
/// derefs to its bytes, zeroed at first, 64-byte aligned, so an archive written into it
/// can be read where it lies.
///
/// A call takes it by value (and keeps it until its output is dropped), or by reference:
/// a buffer kept and reused for call after call is zeroed and allocated once, and
/// refilling it is the caller's job, however large it is. Given by value, a buffer of at
/// most an arena's size is the call's arena too: the module's scratch follows the
/// arguments (see [`RuntimeConfig::arena_size`](crate::RuntimeConfig::arena_size)). Lent,
/// it leaves the module a whole arena.
///
/// The call passes the buffer's bytes, all of them: an archive is read from its end
/// (rkyv keeps its root last), so the buffer must end where the archive does. To reuse
/// one buffer for archives of different sizes, make it as large as the largest and set
/// each call's length with [`set_len`](ArgBuffer::set_len) before writing the archive.
///
/// ```no_run
/// # use memlink_runtime::{CallOptions, Runtime, ModuleRef};
/// # let runtime = Runtime::with_local_resolver();
/// # let h = runtime.load(ModuleRef::from_path("libzero_copy.so")).unwrap();
/// let checksum = runtime.method(h, "checksum")?;
/// let mut buf = runtime.arg_buffer(4096);
/// for size in [4096, 100, 7] {
///     buf.set_len(size);
///     buf.fill(1);
///     runtime.call_method(checksum, &buf, &CallOptions::default())?;
/// }
/// # Ok::<(), memlink_runtime::RuntimeError>(())
/// ```
#[derive(Debug)]
pub struct ArgBuffer {
    repr: BufRepr,
    /// The bytes a call passes, at most `capacity`.
    len: usize,
    /// The bytes zeroed at first, and the most `len` may be: an arena from the pool is
    /// longer, but past them it holds what earlier calls left there.
    capacity: usize,
}

#[derive(Debug)]
enum BufRepr {
    Arena(PooledArena),
    Owned(AlignedBuf),
}

impl Deref for ArgBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.repr {
            BufRepr::Arena(a) => &a.buf().as_slice()[..self.len],
            BufRepr::Owned(b) => &b.as_slice()[..self.len],
        }
    }
}

impl DerefMut for ArgBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        match &mut self.repr {
            BufRepr::Arena(a) => &mut a.buf_mut().as_mut_slice()[..len],
            BufRepr::Owned(b) => &mut b.as_mut_slice()[..len],
        }
    }
}

impl ArgBuffer {
    /// `len` zeroed bytes: an arena from `pool` when they fit in one of `arena_size`
    /// bytes, else a buffer of their own.
    ///
    /// An arena size no allocation can give (which the runtime's loads refuse) leaves
    /// the pool without arenas: the bytes are then a buffer of their own too, where
    /// taking an arena aborted the process, or panicked for a size past any allocation.
    pub(crate) fn new(pool: &Arc<ArenaPool>, arena_size: usize, len: usize) -> ArgBuffer {
        let arena = (len <= arena_size)
            .then(|| PooledArena::take(pool))
            .flatten();
        match arena {
            Some(mut arena) => {
                // A pooled arena holds whatever its last call left there: another
                // caller's bytes, and bytes a module never initialized. Only zeroes are
                // handed out.
                arena.buf_mut().as_mut_slice()[..len].fill(0);
                ArgBuffer {
                    repr: BufRepr::Arena(arena),
                    len,
                    capacity: len,
                }
            }
            None => ArgBuffer {
                repr: BufRepr::Owned(AlignedBuf::zeroed(len)),
                len,
                capacity: len,
            },
        }
    }

    /// The length the buffer was made with ([`Runtime::arg_buffer`](crate::Runtime::arg_buffer)'s
    /// `len`): the most [`set_len`](ArgBuffer::set_len) can give it.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Makes the buffer `len` bytes long, the bytes a call passes from now on. Nothing
    /// is written or moved: bytes it takes back keep what was last written there (zero
    /// if nothing was).
    ///
    /// # Panics
    ///
    /// If `len` is larger than the [`capacity`](ArgBuffer::capacity).
    pub fn set_len(&mut self, len: usize) {
        assert!(
            len <= self.capacity,
            "ArgBuffer::set_len: {len} bytes asked of a buffer of {}",
            self.capacity
        );
        self.len = len;
    }
}
