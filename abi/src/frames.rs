//! The frames a host hands a module: [`InitFrame`] once, [`CallFrame`] per call.

use core::ffi::c_void;

use crate::host::HostApi;
use crate::status::Status;
use crate::text::StrRef;

/// Passed to `memlink_init`.
#[repr(C)]
#[derive(Debug)]
pub struct InitFrame {
    /// `size_of::<InitFrame>()` in the host.
    pub size: u32,
    /// The host's [`ABI_VERSION`](crate::ABI_VERSION).
    pub abi_version: u32,
    /// Services the host offers. The module may keep the table and use it until the
    /// image's last `memlink_shutdown` (another host may have initialized the same
    /// image: the call has no argument that says which host leaves), and from threads
    /// of its own for as long as they run: a host gives a table that outlives that (a
    /// static one, as the runtime's).
    pub host: *const HostApi,
    /// The most detailed [`level`](crate::level) the host wants to receive: the module drops records
    /// above it without formatting them or calling the host.
    pub max_log_level: u32,
    /// Out: on failure, the module points this at a UTF-8 message in its own static
    /// memory.
    pub error: StrRef,
}

/// Everything one call carries, in and out. The host owns it; the module reads the
/// inputs and writes `out`/`out_len` (and a small result into `small_out`) before it
/// returns. From the call to its return the frame is the module's: the host neither
/// reads nor writes it meanwhile (not from a service the module calls either), since the
/// module may write the outputs (`out`, `out_len`, `arena_used`, `small_out`) at any time
/// during the call and withdraw a result it set. The inputs are not the module's to
/// write, but the host keeps what its services need of the running call beside the
/// frame, so a module that writes over one (`host_call` among them) changes nothing the
/// host relies on.
#[repr(C)]
#[derive(Debug)]
pub struct CallFrame {
    /// `size_of::<CallFrame>()` in the host.
    pub size: u32,
    /// Position of the method in the module's table, as the host resolved it at load.
    pub method_index: u32,
    /// The method id; must equal the id at `method_index`.
    pub method_id: u32,
    /// Nesting depth: 0 for a call from the host, one more for each module-to-module hop.
    pub depth: u32,
    /// The encoded arguments; the host keeps them alive and unchanged for the call.
    pub args: *const u8,
    /// Length of `args` in bytes.
    pub args_len: usize,
    /// Scratch memory for the call, owned by the host, aligned to 16, not touched by
    /// anyone else during the call. May be null when `arena_len` is 0.
    pub arena: *mut u8,
    /// Length of `arena` in bytes.
    pub arena_len: usize,
    /// Trace id of the request the call belongs to (0: none).
    pub trace_id: u64,
    /// Span id of the caller (0: none).
    pub span_id: u64,
    /// Time left for the call in nanoseconds, measured when the host dispatched it.
    /// [`NO_DEADLINE`] when there is none.
    pub timeout_ns: u64,
    /// The host's load on this module at dispatch, in `[0, 1]`; not meaningful when
    /// `flags` has [`CALL_BACKPRESSURE_ON_REQUEST`].
    pub backpressure: f32,
    /// Bit set of `CALL_*` flags.
    pub flags: u32,
    /// The host's services.
    pub host: *const HostApi,
    /// The host's handle for this call, passed back to every [`HostApi`] function: an
    /// opaque value (the runtime's are numbers, not addresses), valid while the call
    /// runs, on its thread. The services tell it by the calls the host keeps, not by this
    /// field: a module that writes over it still passes back the value it was given.
    pub host_call: *mut c_void,
    /// The module's persistent region: memory that outlives calls, shared by all calls
    /// into this load of the module. It starts with a [`PersistentHeader`]; null when the
    /// host gives none. Aligned to 64.
    pub persistent: *mut u8,
    /// Length of `persistent` in bytes, header included.
    pub persistent_len: usize,
    /// Out: the result (status `Ok`) or the error payload (any other status).
    ///
    /// It points into `arena`, into a buffer from [`HostApi::alloc_output`], or (a result
    /// of at most [`SMALL_OUT_LEN`] bytes with status `Ok` only) at this frame's
    /// [`small_out`](CallFrame::small_out); the module never points it at its own
    /// memory. A result in the arena stays there: the host reads it in place and reuses
    /// the arena only after it is done with the result. Error payloads are the error's
    /// message in UTF-8, except for `Timeout`, whose payload is 8 bytes: nanoseconds,
    /// `u64` LE.
    pub out: *const u8,
    /// Out: length of `out` in bytes.
    pub out_len: usize,
    /// Out: bytes of the arena the call used (its high-water mark).
    pub arena_used: usize,
    /// Out: room in the frame itself for a result (status `Ok` only) of at most
    /// [`SMALL_OUT_LEN`] bytes, in any format (the Rust SDK puts scalars and short raw
    /// results here), which the module writes instead of taking a block of its arena;
    /// `out` then points at the field's first byte. Unaligned: read and write it as
    /// bytes. The host initializes it (to any value: it means nothing), reads it only
    /// when `out` points at it, and copies it to 16-aligned memory before anyone reads
    /// the result; a nested call's sink gets the bytes with no alignment promised.
    pub small_out: [u8; SMALL_OUT_LEN],
}

/// Bytes of [`CallFrame::small_out`].
pub const SMALL_OUT_LEN: usize = 16;

impl CallFrame {
    /// Whether a call that returned `status` left its result in
    /// [`small_out`](CallFrame::small_out), as the ABI allows it there: status `Ok`,
    /// `out` at the field's first byte, `out_len` at most [`SMALL_OUT_LEN`]. The result
    /// is then `small_out[..out_len]`; any other output claimed in the field is out of
    /// place.
    #[inline(always)]
    pub fn holds_small_result(&self, status: i32) -> bool {
        status == Status::Ok as i32
            && self.out == self.small_out.as_ptr()
            && self.out_len <= SMALL_OUT_LEN
    }
}

/// The start of a persistent region (see [`CallFrame::persistent`]). The host zeroes the
/// region and sets `generation` once, when it loads the module, and never writes it
/// again; modules allocate from it by bumping `used` atomically.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct PersistentHeader {
    /// Different for every region the host ever makes: a reference into an older region
    /// (kept in a module's statics across a reload) is recognised as stale.
    pub generation: u64,
    /// The allocation counter: the offset from the start of the region of its first
    /// free byte. The host leaves it 0, not counting the header, so a module allocates
    /// from `max(used, start)` with a compare-and-swap, its `start` at least the
    /// header's size (64; the Rust SDK's is past the bitmap it keeps after the header).
    /// Only ever accessed atomically once the region is handed to a module (an
    /// `AtomicU64` in Rust, `_Atomic uint64_t` in C11): never through a reference to the
    /// header.
    pub used: u64,
}

/// [`CallFrame::flags`] bit: the host did not measure its load for this call; the module
/// asks [`HostApi::backpressure`] if and when it needs the figure (a host whose load is
/// costly to gather for every call sets this).
pub const CALL_BACKPRESSURE_ON_REQUEST: u32 = 1;

/// [`CallFrame::timeout_ns`] for a call without a deadline.
pub const NO_DEADLINE: u64 = u64::MAX;
