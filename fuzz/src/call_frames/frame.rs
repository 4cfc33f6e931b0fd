//! The frame a [`FrameSpec`] describes, step by step: the method it names, its size,
//! the memory it points into (arguments, arena, persistent region) and the host's
//! services, then the [`CallFrame`] itself.

use std::ffi::c_void;
use std::mem::offset_of;
use std::sync::atomic::{AtomicU64, Ordering};

use memlink_msdk::abi::{self, CallFrame, HostApi, PersistentHeader};

use super::spec::{
    AllocSpec, ArenaSpec, ArgsSpec, DepthSpec, FrameSpec, HostSpec, PersistentSpec, Size, Target,
    TimeoutSpec, OVERSIZED_ARENA_BACKING, PERSISTENT_LEN,
};
use crate::host::{ArenaBuf, HostCall, Method, HOST_API};

/// The real services in a table too short for this module: as an older host's, whose
/// `size` covers `size` and `reserved` alone.
static SHORT_HOST_API: HostApi = HostApi {
    size: 16,
    reserved: HOST_API.reserved,
    alloc_output: HOST_API.alloc_output,
    call_module: HOST_API.call_module,
    log: HOST_API.log,
    backpressure: HOST_API.backpressure,
    running_call: HOST_API.running_call,
};

/// A persistent region as the host makes one: zeroed and 64-aligned, with a header
/// whose generation differs from every other region's.
pub(super) struct PersistentBuf {
    blocks: Vec<Block>,
}

/// 64 bytes aligned to 64, the persistent region's unit.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

const _: () = assert!(
    size_of::<PersistentHeader>() <= size_of::<Block>()
        && align_of::<PersistentHeader>() <= align_of::<Block>()
        && PERSISTENT_LEN.is_multiple_of(size_of::<Block>())
);

impl PersistentBuf {
    fn new() -> PersistentBuf {
        static GENERATION: AtomicU64 = AtomicU64::new(1);
        let mut blocks = vec![Block([0; 64]); PERSISTENT_LEN / size_of::<Block>()];
        // The header's bytes: `used` 0 (already), `generation` set. Writing the field's
        // bytes rather than a `PersistentHeader` keeps every byte initialized (a value
        // written whole would leave its padding uninitialized).
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        let at = offset_of!(PersistentHeader, generation);
        blocks[0].0[at..at + 8].copy_from_slice(&generation.to_ne_bytes());
        PersistentBuf { blocks }
    }

    /// The region's byte `offset`, to hand to the module.
    fn ptr(&mut self, offset: usize) -> *mut u8 {
        self.blocks.as_mut_ptr().cast::<u8>().wrapping_add(offset)
    }

    /// A copy of the region's bytes.
    pub(super) fn bytes(&self) -> Vec<u8> {
        self.blocks.iter().flat_map(|b| b.0).collect()
    }
}

/// `method_index` and `method_id`, as `spec` names the method in `table`.
fn target(spec: &FrameSpec, table: &[Method]) -> (u32, u32) {
    let count = table.len() as u32;
    let chosen = u32::from(spec.method) % count;
    match spec.target {
        Target::Resolved => (chosen, table[chosen as usize].id),
        Target::PastEnd(by) => (count + u32::from(by), table[chosen as usize].id),
        Target::WrongId(id) => (chosen, id),
        Target::OtherIndex(i) => (u32::from(i) % count, table[chosen as usize].id),
    }
}

/// The frame's `size` field.
fn size(spec: &FrameSpec) -> u32 {
    match spec.size {
        Size::Exact => size_of::<CallFrame>() as u32,
        Size::Larger(by) => size_of::<CallFrame>() as u32 + u32::from(by),
        Size::Smaller(by) => (size_of::<CallFrame>() as u32).saturating_sub(1 + u32::from(by)),
        Size::Max => u32::MAX,
    }
}

/// The arena's real bytes, if the spec gives it any.
fn arena(spec: &FrameSpec) -> Option<ArenaBuf> {
    match spec.arena {
        ArenaSpec::Aligned(len) => Some(ArenaBuf::new(usize::from(len), 0)),
        ArenaSpec::Misaligned(off, len) => {
            Some(ArenaBuf::new(usize::from(len), 1 + usize::from(off) % 15))
        }
        ArenaSpec::Oversized => Some(ArenaBuf::new(OVERSIZED_ARENA_BACKING, 0)),
        ArenaSpec::Null | ArenaSpec::NullWithLen(_) => None,
    }
}

/// `arena` and `arena_len`: what the frame claims, given the arena's real bytes (pointer
/// and length), if it has any.
fn claimed_arena(spec: &FrameSpec, real_arena: Option<(*mut u8, usize)>) -> (*mut u8, usize) {
    match (real_arena, &spec.arena) {
        (Some((ptr, _)), ArenaSpec::Oversized) => (ptr, isize::MAX as usize + 16),
        (Some(real), _) => real,
        (None, ArenaSpec::NullWithLen(len)) => (core::ptr::null_mut(), 1 + usize::from(*len)),
        (None, _) => (core::ptr::null_mut(), 0),
    }
}

/// The argument pointer, the length, and how many of those bytes are real memory the
/// harness can read (all of them unless the length lies or the pointer is not a real
/// one), given the argument bytes and the arena's real bytes, if it has any.
fn args_region(
    spec: &FrameSpec,
    args: &[u8],
    nonempty_arena: Option<(*mut u8, usize)>,
) -> (*const u8, usize, usize) {
    match (&spec.args, nonempty_arena) {
        (ArgsSpec::InArena(offset, len), Some((ptr, real_len))) => {
            let offset = usize::from(*offset) % real_len;
            let len = usize::from(*len).min(real_len - offset);
            (ptr.wrapping_add(offset).cast_const(), len, len)
        }
        (ArgsSpec::Real | ArgsSpec::InArena(..), _) => (args.as_ptr(), args.len(), args.len()),
        (ArgsSpec::NullWithLen(len), _) => (core::ptr::null(), 1 + usize::from(*len), 0),
        (ArgsSpec::NullEmpty, _) => (core::ptr::null(), 0, 0),
        (ArgsSpec::DanglingEmpty, _) => (
            core::ptr::NonNull::<u8>::dangling().as_ptr().cast_const(),
            0,
            0,
        ),
        (ArgsSpec::Oversized, _) => (args.as_ptr(), isize::MAX as usize + 1, args.len()),
        (ArgsSpec::Wrapping, _) => (core::ptr::without_provenance(usize::MAX - 7), 64, 0),
    }
}

/// The persistent region the harness makes for `spec`, if any.
fn persistent_buf(spec: &FrameSpec) -> Option<PersistentBuf> {
    matches!(
        spec.persistent,
        PersistentSpec::Region | PersistentSpec::Misaligned
    )
    .then(PersistentBuf::new)
}

/// `persistent` and `persistent_len`, given the region the harness made (if any) and the
/// arena's real bytes (if it has any).
fn persistent(
    spec: &FrameSpec,
    region: Option<&mut PersistentBuf>,
    nonempty_arena: Option<(*mut u8, usize)>,
) -> (*mut u8, usize) {
    match (&spec.persistent, region) {
        (PersistentSpec::Region, Some(r)) => (r.ptr(0), PERSISTENT_LEN),
        (PersistentSpec::Misaligned, Some(r)) => (r.ptr(16), PERSISTENT_LEN - 16),
        // Only as many bytes as the arena really has, so that the region is real memory
        // even to a module that fails to refuse it.
        (PersistentSpec::OverArena, _) => match nonempty_arena {
            Some((ptr, real_len)) => (ptr, PERSISTENT_LEN.min(real_len)),
            None => (core::ptr::null_mut(), 0),
        },
        _ => (core::ptr::null_mut(), 0),
    }
}

/// The frame's `depth`.
fn depth(spec: &FrameSpec) -> u32 {
    match spec.depth {
        DepthSpec::Zero => 0,
        DepthSpec::Near(d) => u32::from(d % 8),
        DepthSpec::Raw(d) => d,
    }
}

/// The most `alloc_output` grants.
fn alloc_limit(spec: &FrameSpec) -> usize {
    match spec.alloc {
        AllocSpec::Unlimited => 64 << 20,
        AllocSpec::Refuse => 0,
        AllocSpec::Limit(n) => usize::from(n),
    }
}

/// `host` and `host_call`, given the call's `HostCall`.
fn host(spec: &FrameSpec, host_call: *mut HostCall) -> (*const HostApi, *mut c_void) {
    match spec.host {
        HostSpec::Real => (&raw const HOST_API, host_call.cast()),
        HostSpec::Null => (core::ptr::null(), host_call.cast()),
        HostSpec::NullHandle => (&raw const HOST_API, core::ptr::null_mut()),
        HostSpec::Short => (&raw const SHORT_HOST_API, host_call.cast()),
    }
}

/// The memory a frame points into, as the harness makes it for one call; it must
/// outlive the call.
pub(super) struct Memory {
    /// The arena's real bytes, if the spec gives it any.
    pub(super) arena: Option<ArenaBuf>,
    /// The persistent region, if the spec makes one.
    pub(super) region: Option<PersistentBuf>,
    /// A copy of the persistent region's bytes as made.
    pub(super) region_before: Option<Vec<u8>>,
    /// The host's side of the call.
    pub(super) host_call: HostCall,
}

impl Memory {
    /// The memory `spec` asks for.
    pub(super) fn new(spec: &FrameSpec) -> Memory {
        let arena = arena(spec);
        let region = persistent_buf(spec);
        let region_before = region.as_ref().map(PersistentBuf::bytes);
        Memory {
            arena,
            region,
            region_before,
            host_call: HostCall::new(depth(spec), alloc_limit(spec)),
        }
    }
}

/// What the harness put in a frame, kept apart from the frame (which the module writes
/// to), and what it knows of the memory behind it.
pub(super) struct Sent {
    /// `method_index`.
    pub(super) index: u32,
    /// `method_id`.
    pub(super) id: u32,
    /// `args`.
    pub(super) args_ptr: *const u8,
    /// `args_len`.
    pub(super) args_len: usize,
    /// How many of the argument bytes are real memory the harness can read.
    pub(super) args_real: usize,
    /// The arena's real bytes (pointer and length), if it has any.
    pub(super) real_arena: Option<(*mut u8, usize)>,
    /// `host_call`.
    pub(super) call_ptr: *mut c_void,
}

/// The frame `spec` describes, for a method of `table`, with the argument bytes `args`
/// and pointing into `memory`; and what went into it.
pub(super) fn build(
    spec: &FrameSpec,
    table: &[Method],
    args: &[u8],
    memory: &mut Memory,
) -> (CallFrame, Sent) {
    let (index, id) = target(spec, table);
    // The arena's real bytes (`ArenaBuf` zeroes them), whatever length the frame says.
    let real_arena = memory.arena.as_mut().map(|a| (a.ptr(), a.len()));
    let nonempty_arena = real_arena.filter(|&(_, len)| len > 0);
    let (args_ptr, args_len, args_real) = args_region(spec, args, nonempty_arena);
    let depth = memory.host_call.depth;
    let (host_ptr, call_ptr) = host(spec, &raw mut memory.host_call);
    let parts = Parts {
        method: (index, id),
        depth,
        args: (args_ptr, args_len),
        arena: claimed_arena(spec, real_arena),
        persistent: persistent(spec, memory.region.as_mut(), nonempty_arena),
        host: (host_ptr, call_ptr),
    };
    let sent = Sent {
        index,
        id,
        args_ptr,
        args_len,
        args_real,
        real_arena,
        call_ptr,
    };
    (call_frame(spec, parts), sent)
}

/// What a frame holds besides what its spec gives directly.
struct Parts {
    /// `method_index` and `method_id`.
    method: (u32, u32),
    /// `depth`.
    depth: u32,
    /// `args` and `args_len`.
    args: (*const u8, usize),
    /// `arena` and `arena_len`.
    arena: (*mut u8, usize),
    /// `persistent` and `persistent_len`.
    persistent: (*mut u8, usize),
    /// `host` and `host_call`.
    host: (*const HostApi, *mut c_void),
}

/// The frame `spec` describes, made of `parts`.
fn call_frame(spec: &FrameSpec, parts: Parts) -> CallFrame {
    let Parts {
        method: (index, id),
        depth,
        args: (args_ptr, args_len),
        arena: (arena_ptr, arena_len),
        persistent: (persistent_ptr, persistent_len),
        host: (host_ptr, call_ptr),
    } = parts;
    CallFrame {
        size: size(spec),
        method_index: index,
        method_id: id,
        depth,
        args: args_ptr,
        args_len,
        arena: arena_ptr,
        arena_len,
        trace_id: spec.trace_id,
        span_id: spec.span_id,
        timeout_ns: match spec.timeout {
            TimeoutSpec::None => abi::NO_DEADLINE,
            TimeoutSpec::Expired => 0,
            TimeoutSpec::Raw(ns) => ns,
        },
        backpressure: spec.backpressure,
        // A NaN load stands for "not measured": the module asks the host for it (the
        // host's answer is out of range too, which the module must clamp).
        flags: if spec.backpressure.is_nan() {
            abi::CALL_BACKPRESSURE_ON_REQUEST
        } else {
            0
        },
        host: host_ptr,
        host_call: call_ptr,
        persistent: persistent_ptr,
        persistent_len,
        // Junk: the module must overwrite both before it returns.
        out: 0xdead_beef as *const u8,
        out_len: 12_345,
        arena_used: 0,
        // Junk too: the module writes it only for a small result.
        small_out: [0xa5; abi::SMALL_OUT_LEN],
    }
}
