//! Target `call_frames`: `memlink_call` with frames built from arbitrary input.
//!
//! The input is a [`FrameSpec`] (decoded with `arbitrary`) followed by the argument
//! bytes. The spec varies everything the ABI says the module must check (frame size,
//! method index and id, a null host or one whose service table is too short, and for
//! each memory region (arguments, arena, persistent region) a null pointer with a
//! non-zero length, a length past `isize::MAX`, a range that wraps around the address
//! space, the alignment, and regions that overlap) and everything it must cope with
//! (deadlines, depth, backpressure, a host that refuses output buffers, a persistent
//! region or none). Every pointer the harness claims is valid is valid for the bytes it
//! really has: a length that lies (past `isize::MAX`, or wrapping) is one of the things
//! the module must refuse before it reads a byte.
//!
//! After each call the harness checks what a host relies on: the status is a known
//! `Status`; output lies in the arena, at the start of the host's output buffer or (a
//! result of at most 16 bytes) in the frame's `small_out`; an
//! error payload decodes to the same variant; a frame the ABI calls malformed is
//! refused with `Abi` (or `InvalidMethod` for the method) and a message naming one of
//! its faults, without a byte written to its arena or persistent region; the arguments
//! are unchanged and nothing outside the arena was written; plus what each export
//! promises.

use std::mem::offset_of;
use std::sync::atomic::{AtomicU64, Ordering};

use arbitrary::{Arbitrary, Unstructured};
use memlink_examples::zero_copy_types::Point;
use memlink_msdk::abi::{self, CallFrame, Format, HostApi, PersistentHeader, Status};
use memlink_msdk::archive;

use memlink_msdk::serialize::MAX_DEPTH;
use memlink_msdk::ModuleError;

use crate::exports::BIG_LIMIT;
use crate::host::{self, ArenaBuf, HostCall, Outcome, Place, HOST_API};
use crate::known;

/// How to build one frame. Variant 0 of each field is the well-formed choice.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub struct FrameSpec {
    /// Which method, modulo the table's length.
    pub method: u8,
    /// How `method_index` and `method_id` name it.
    pub target: Target,
    /// The frame's `size` field (the frame itself is always whole).
    pub size: Size,
    /// The host services.
    pub host: HostSpec,
    /// The argument pointer.
    pub args: ArgsSpec,
    /// The arena.
    pub arena: ArenaSpec,
    /// What `alloc_output` grants.
    pub alloc: AllocSpec,
    /// `depth`.
    pub depth: DepthSpec,
    /// `timeout_ns`.
    pub timeout: TimeoutSpec,
    /// `backpressure`, as it comes (negative, huge; NaN sends the on-request flag
    /// instead).
    pub backpressure: f32,
    /// `trace_id`.
    pub trace_id: u64,
    /// `span_id`.
    pub span_id: u64,
    /// `persistent` and `persistent_len`.
    pub persistent: PersistentSpec,
}

/// `method_index` and `method_id`.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum Target {
    /// The method's index and id, as a host resolves them.
    Resolved,
    /// An index past the table's end (by the value), the method's id.
    PastEnd(u16),
    /// The method's index with another id.
    WrongId(u32),
    /// Another method's index (modulo the table) with this method's id.
    OtherIndex(u8),
}

/// The frame's `size` field.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum Size {
    /// `size_of::<CallFrame>()`.
    Exact,
    /// Larger by the value: a newer host with more fields, which is fine.
    Larger(u16),
    /// Smaller by 1 + the value (saturating at 0).
    Smaller(u8),
    /// `u32::MAX`.
    Max,
}

/// `host` and `host_call`.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum HostSpec {
    /// The real services and a live call handle.
    Real,
    /// No services: the module must refuse the frame.
    Null,
    /// The real services with a null call handle, which they treat as "no call"
    /// (`alloc_output` refuses, nested calls fail).
    NullHandle,
    /// The real services in a table whose `size` says 16 bytes (an older host's): the
    /// module must refuse the frame, and cannot report why.
    Short,
}

/// `args` and `args_len`.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum ArgsSpec {
    /// The argument bytes.
    Real,
    /// Null with a length of 1 + the value: the module must refuse the frame.
    NullWithLen(u16),
    /// Null with length 0: no arguments, allowed.
    NullEmpty,
    /// A dangling, non-null pointer with length 0: no arguments, allowed.
    DanglingEmpty,
    /// Bytes of the arena: from the first value modulo the arena's length (its real
    /// bytes, for an oversized arena), as many as the second value and the rest of the
    /// arena allow. Overlapping arguments and arena make the module refuse the frame;
    /// with no arena, or an empty one, this is [`ArgsSpec::Real`].
    InArena(u16, u16),
    /// The argument bytes' pointer with a length of `isize::MAX + 1`: the module must
    /// refuse the frame.
    Oversized,
    /// 64 bytes at `usize::MAX - 7`, which wrap around the address space: the module
    /// must refuse the frame.
    Wrapping,
}

/// `arena` and `arena_len`.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum ArenaSpec {
    /// A 16-aligned arena of this many bytes (0 included: results then go through
    /// `alloc_output`).
    Aligned(u16),
    /// Null with length 0: allowed, no scratch space.
    Null,
    /// Null with length 1 + the value: the module must refuse the frame.
    NullWithLen(u16),
    /// An arena of the given length placed 1 to 15 bytes off a 16-byte boundary: the
    /// module must refuse the frame, unless the length is 0.
    Misaligned(u8, u16),
    /// A 16-aligned arena of [`OVERSIZED_ARENA_BACKING`] real bytes whose length says
    /// `isize::MAX + 16`: the module must refuse the frame.
    Oversized,
}

/// What `alloc_output` grants.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum AllocSpec {
    /// Anything up to 64 MiB.
    Unlimited,
    /// Nothing: every request gets null.
    Refuse,
    /// Up to this many bytes.
    Limit(u16),
}

/// `depth`.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum DepthSpec {
    /// 0: a call from the host.
    Zero,
    /// The value modulo 8: around the host's nesting limit.
    Near(u8),
    /// Any value, `u32::MAX` included.
    Raw(u32),
}

/// `timeout_ns`.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum TimeoutSpec {
    /// `NO_DEADLINE`.
    None,
    /// 0: already expired.
    Expired,
    /// Any value (`NO_DEADLINE - 1` and friends included).
    Raw(u64),
}

/// `persistent` and `persistent_len`.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum PersistentSpec {
    /// Null with length 0: no persistent region.
    None,
    /// A zeroed, 64-aligned region of [`PERSISTENT_LEN`] bytes that starts with a
    /// [`PersistentHeader`] of a fresh, non-zero generation, as the host makes one.
    Region,
    /// The arena's pointer with a length of [`PERSISTENT_LEN`] (or the arena's real
    /// bytes, if fewer): the module must refuse the frame. With no arena, or an empty
    /// one, this is [`PersistentSpec::None`].
    OverArena,
    /// A region as for [`PersistentSpec::Region`], from its 16th byte on: the module
    /// must refuse the frame.
    Misaligned,
}

/// Length of the persistent regions the harness makes.
pub const PERSISTENT_LEN: usize = 4096;

/// Real bytes behind an [`ArenaSpec::Oversized`] arena.
pub const OVERSIZED_ARENA_BACKING: usize = 4096;

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
struct PersistentBuf {
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
    fn bytes(&self) -> Vec<u8> {
        self.blocks.iter().flat_map(|b| b.0).collect()
    }
}

/// Runs one input: a spec, then the argument bytes.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(spec) = FrameSpec::arbitrary(&mut u) else {
        return;
    };
    let args = u.take_rest();
    call(&spec, args);
}

/// What the frame gets wrong, per the ABI; the module must refuse it with `Abi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// `size` is smaller than the module's `CallFrame`.
    Size,
    /// No host services.
    Host,
    /// The host's service table is shorter than the module's `HostApi`.
    HostSize,
    /// The region is null with a non-zero length.
    Null(Region),
    /// The region's length is more than `isize::MAX`.
    TooLong(Region),
    /// The region runs past the end of the address space.
    Wraps(Region),
    /// A non-empty arena is not aligned to 16.
    ArenaAlign,
    /// A non-empty persistent region is not aligned to 64.
    PersistentAlign,
    /// Two non-empty regions share bytes (named in the frame's order).
    Overlap(Region, Region),
}

/// A memory region of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    Args,
    Arena,
    Persistent,
}

impl Region {
    /// The region's name in the module's messages.
    fn name(self) -> &'static str {
        match self {
            Region::Args => "arguments",
            Region::Arena => "arena",
            Region::Persistent => "persistent region",
        }
    }
}

impl Problem {
    /// Whether the module's refusal `message` names this problem.
    fn explains(self, message: &str) -> bool {
        let has = |words: &str| message.contains(words);
        match self {
            Problem::Size => has("size") || has("smaller"),
            Problem::Host => has("host"),
            Problem::HostSize => has("service table"),
            Problem::Null(r) => has(&format!("{} pointer is null", r.name())),
            Problem::TooLong(r) => {
                has(&format!("{} length", r.name())) && has("is more than isize::MAX")
            }
            Problem::Wraps(r) => has(&format!(
                "{} region runs past the end of the address space",
                r.name()
            )),
            Problem::ArenaAlign => has("arena is not aligned to 16"),
            Problem::PersistentAlign => has("persistent region is not aligned to 64"),
            Problem::Overlap(a, b) => has(&format!("{} and {} overlap", a.name(), b.name())),
        }
    }
}

/// Builds the frame `spec` describes, calls `memlink_call` and checks the outcome.
pub fn call(spec: &FrameSpec, args: &[u8]) -> Outcome {
    let table = host::methods();
    let count = table.len() as u32;
    let chosen = u32::from(spec.method) % count;
    let (index, id) = match spec.target {
        Target::Resolved => (chosen, table[chosen as usize].id),
        Target::PastEnd(by) => (count + u32::from(by), table[chosen as usize].id),
        Target::WrongId(id) => (chosen, id),
        Target::OtherIndex(i) => (u32::from(i) % count, table[chosen as usize].id),
    };
    let size = match spec.size {
        Size::Exact => size_of::<CallFrame>() as u32,
        Size::Larger(by) => size_of::<CallFrame>() as u32 + u32::from(by),
        Size::Smaller(by) => (size_of::<CallFrame>() as u32).saturating_sub(1 + u32::from(by)),
        Size::Max => u32::MAX,
    };
    let mut arena = match spec.arena {
        ArenaSpec::Aligned(len) => Some(ArenaBuf::new(usize::from(len), 0)),
        ArenaSpec::Misaligned(off, len) => {
            Some(ArenaBuf::new(usize::from(len), 1 + usize::from(off) % 15))
        }
        ArenaSpec::Oversized => Some(ArenaBuf::new(OVERSIZED_ARENA_BACKING, 0)),
        ArenaSpec::Null | ArenaSpec::NullWithLen(_) => None,
    };
    // The arena's real bytes (`ArenaBuf` zeroes them), whatever length the frame says.
    let real_arena = arena.as_mut().map(|a| (a.ptr(), a.len()));
    let (arena_ptr, arena_len) = match (real_arena, &spec.arena) {
        (Some((ptr, _)), ArenaSpec::Oversized) => (ptr, isize::MAX as usize + 16),
        (Some(real), _) => real,
        (None, ArenaSpec::NullWithLen(len)) => (core::ptr::null_mut(), 1 + usize::from(*len)),
        (None, _) => (core::ptr::null_mut(), 0),
    };
    let nonempty_arena = real_arena.filter(|&(_, len)| len > 0);
    // The pointer, the length, and how many of those bytes are real memory the harness
    // can read (all of them unless the length lies or the pointer is not a real one).
    let (args_ptr, args_len, args_real) = match (&spec.args, nonempty_arena) {
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
    };
    let mut region = matches!(
        spec.persistent,
        PersistentSpec::Region | PersistentSpec::Misaligned
    )
    .then(PersistentBuf::new);
    let region_before = region.as_ref().map(PersistentBuf::bytes);
    let (persistent_ptr, persistent_len) = match (&spec.persistent, region.as_mut()) {
        (PersistentSpec::Region, Some(r)) => (r.ptr(0), PERSISTENT_LEN),
        (PersistentSpec::Misaligned, Some(r)) => (r.ptr(16), PERSISTENT_LEN - 16),
        // Only as many bytes as the arena really has, so that the region is real memory
        // even to a module that fails to refuse it.
        (PersistentSpec::OverArena, _) => match nonempty_arena {
            Some((ptr, real_len)) => (ptr, PERSISTENT_LEN.min(real_len)),
            None => (core::ptr::null_mut(), 0),
        },
        _ => (core::ptr::null_mut(), 0),
    };
    let depth = match spec.depth {
        DepthSpec::Zero => 0,
        DepthSpec::Near(d) => u32::from(d % 8),
        DepthSpec::Raw(d) => d,
    };
    let alloc_limit = match spec.alloc {
        AllocSpec::Unlimited => 64 << 20,
        AllocSpec::Refuse => 0,
        AllocSpec::Limit(n) => usize::from(n),
    };
    let mut host_call = HostCall::new(depth, alloc_limit);
    let (host_ptr, call_ptr) = match spec.host {
        HostSpec::Real => (&raw const HOST_API, (&raw mut host_call).cast()),
        HostSpec::Null => (core::ptr::null(), (&raw mut host_call).cast()),
        HostSpec::NullHandle => (&raw const HOST_API, core::ptr::null_mut()),
        HostSpec::Short => (&raw const SHORT_HOST_API, (&raw mut host_call).cast()),
    };
    let mut frame = CallFrame {
        size,
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
    };
    let problems = problems(&frame);
    let resolved = table.get(index as usize).filter(|m| m.id == id);
    if problems.is_empty() && resolved.is_some_and(|m| !crate::exports::callable(&m.name)) {
        return host::Outcome {
            status: Status::Ok,
            output: Vec::new(),
            place: Place::Empty,
        };
    }
    // SAFETY: `args_ptr` is valid for reads of `args_real` bytes: the argument bytes,
    // or bytes of the arena (alive until the end of this function), or none.
    let args_before = unsafe { copy_of(args_ptr, args_real) };
    // SAFETY: the frame keeps the host's promises wherever the ABI leaves the module
    // nothing to check: `args` (when non-null) points to bytes that stay unchanged, the
    // arena (when non-null) to bytes nobody else uses, the persistent region (when
    // non-null) to zeroed bytes that start with a header and live until after the call,
    // `host` is null or a static, and `host_call` is null or a `HostCall` alive on this
    // stack. What the module is required to check is left to it: null pointers with a
    // length, misaligned regions, lengths past `isize::MAX` or past the end of the
    // address space (which cover more than the real bytes behind them), overlapping
    // regions, a short frame and a short host table.
    let status = unsafe { host::call_running(&raw mut frame) };
    let outcome = host::collect(status, &frame, arena.as_ref(), &host_call);
    if let Some(a) = &arena {
        a.check_guards();
    }
    assert!(
        frame.arena_used <= frame.arena_len,
        "arena_used {} of an arena of {} bytes",
        frame.arena_used,
        frame.arena_len
    );
    assert_eq!(
        // SAFETY: as for `args_before`; the call has returned.
        unsafe { copy_of(args_ptr, args_real) },
        args_before,
        "the module wrote to its arguments"
    );
    if let (Some(r), Some(before)) = (&region, &region_before) {
        let at = offset_of!(PersistentHeader, generation);
        assert_eq!(
            r.bytes()[at..at + 8],
            before[at..at + 8],
            "the module changed its persistent region's generation"
        );
    }
    let output_refused = call_ptr.is_null() || host_call.refused > 0;
    host::check_error_decodes(&outcome, output_refused);

    if !problems.is_empty() {
        assert_eq!(
            outcome.status,
            Status::Abi,
            "a frame with {problems:?} got {outcome:?}"
        );
        // The regions of a refused frame were not proven usable: the module neither
        // writes to them nor reports into the arena.
        assert_ne!(
            outcome.place,
            Place::Arena,
            "a frame with {problems:?} was refused in its arena: {outcome:?}"
        );
        assert_eq!(
            frame.arena_used, 0,
            "a frame with {problems:?} used its arena"
        );
        assert_eq!(
            frame.small_out,
            [0xa5; abi::SMALL_OUT_LEN],
            "a frame with {problems:?} had its small_out written"
        );
        if let Some((ptr, len)) = real_arena {
            // SAFETY: the arena's real bytes, alive in `arena`; the call has returned.
            let bytes = unsafe { copy_of(ptr, len) };
            assert!(
                bytes.iter().all(|&b| b == 0),
                "a frame with {problems:?} had its arena written: {:02x?}",
                &bytes[..bytes.len().min(64)]
            );
        }
        if let (Some(r), Some(before)) = (&region, &region_before) {
            assert!(
                r.bytes() == *before,
                "a frame with {problems:?} had its persistent region written"
            );
        }
        if outcome.place == Place::Empty {
            // A frame too small for outputs gets the status alone; otherwise, without a
            // host (or a table the module can use, or a buffer from it), the message
            // cannot be delivered.
            assert!(
                problems
                    .iter()
                    .any(|p| matches!(p, Problem::Size | Problem::Host | Problem::HostSize))
                    || host_call.refused > 0
                    || call_ptr.is_null(),
                "a frame with {problems:?} was refused without a message"
            );
        } else {
            let message = String::from_utf8_lossy(&outcome.output);
            assert!(
                problems.iter().any(|p| p.explains(&message)),
                "a frame with {problems:?} was refused as `{message}`"
            );
        }
        return outcome;
    }
    let Some(method) = resolved else {
        assert_eq!(
            (outcome.status, outcome.place),
            (Status::InvalidMethod, Place::Empty),
            "index {index} with id {id:#x} got {outcome:?}"
        );
        return outcome;
    };
    // The bytes the export saw, where it saw them (an archive is checked in place): of a
    // well-formed frame, none or the argument bytes (any other non-empty arguments
    // overlap the arena or have a length that lies).
    let seen = if args_len == 0 {
        &[][..]
    } else {
        assert_eq!((args_ptr, args_len), (args.as_ptr(), args.len()));
        args
    };
    check_export(
        &method.name,
        method.args_format,
        &frame,
        seen,
        &outcome,
        output_refused,
    );
    outcome
}

/// A copy of `len` bytes at `ptr`.
///
/// # Safety
///
/// `ptr` must be valid for reads of `len` bytes (any pointer when `len` is 0).
unsafe fn copy_of(ptr: *const u8, len: usize) -> Vec<u8> {
    if len == 0 {
        return Vec::new();
    }
    // SAFETY: the caller's contract; `len` is non-zero, so `ptr` is a real pointer.
    unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
}

/// Everything the ABI says is wrong with `frame`: the module must refuse it if this is
/// not empty, and accept it (as far as the frame goes) if it is.
fn problems(frame: &CallFrame) -> Vec<Problem> {
    let mut found = Vec::new();
    if (frame.size as usize) < size_of::<CallFrame>() {
        found.push(Problem::Size);
    }
    // SAFETY: the harness's frames name no host, or one of its statics.
    match unsafe { frame.host.as_ref() } {
        None => found.push(Problem::Host),
        Some(h) if (h.size as usize) < size_of::<HostApi>() => found.push(Problem::HostSize),
        Some(_) => {}
    }
    let regions = [
        (Region::Args, frame.args.addr(), frame.args_len),
        (Region::Arena, frame.arena.addr(), frame.arena_len),
        (
            Region::Persistent,
            frame.persistent.addr(),
            frame.persistent_len,
        ),
    ];
    // The well-formed, non-empty regions as address ranges. An empty region is never
    // read or written, so its address does not matter, and it shares no byte with any
    // other region.
    let mut spans = Vec::new();
    for (region, addr, len) in regions {
        if len == 0 {
            continue;
        }
        if addr == 0 {
            found.push(Problem::Null(region));
        } else if isize::try_from(len).is_err() {
            found.push(Problem::TooLong(region));
        } else if let Some(end) = addr.checked_add(len) {
            spans.push((region, addr, end));
        } else {
            found.push(Problem::Wraps(region));
        }
    }
    if frame.arena_len > 0 && !frame.arena.addr().is_multiple_of(16) {
        found.push(Problem::ArenaAlign);
    }
    if frame.persistent_len > 0 && !frame.persistent.addr().is_multiple_of(64) {
        found.push(Problem::PersistentAlign);
    }
    for (i, &(a, a_start, a_end)) in spans.iter().enumerate() {
        for &(b, b_start, b_end) in &spans[i + 1..] {
            if a_start < b_end && b_start < a_end {
                found.push(Problem::Overlap(a, b));
            }
        }
    }
    found
}

/// What each export promises for a well-formed frame.
fn check_export(
    name: &str,
    args_format: Format,
    frame: &CallFrame,
    args: &[u8],
    outcome: &Outcome,
    output_refused: bool,
) {
    // The bytes the export saw: none when the frame said so.
    let args = if frame.args_len == 0 { &[][..] } else { args };
    let error = outcome.error();
    // The host refused the buffer for the error's payload: the status arrives without
    // its message (and a `Timeout` without its duration reads as `Abi`). The module
    // reports errors only through `alloc_output`, even when the arena has room.
    if error.is_some() && output_refused && outcome.output.is_empty() {
        return;
    }
    match &error {
        // Output that fits neither the arena nor a buffer the host granted.
        Some(ModuleError::QuotaExceeded) if output_refused => return,
        // The deadline passed before the call started or before it finished.
        Some(ModuleError::Timeout(_)) if frame.timeout_ns != abi::NO_DEADLINE => return,
        _ => {}
    }
    // These pass on errors of their own or of the calls they make.
    if matches!(name, "relay" | "relay_typed" | "fail") {
        return;
    }
    if let Some(ModuleError::Serialize(m)) = &error {
        match args_format {
            Format::MessagePack => assert!(m.starts_with("bad arguments: "), "{name}: {m}"),
            Format::Archived => {
                assert!(m.starts_with("bad archived arguments: "), "{name}: {m}");
                assert!(
                    archived_args(name, args).is_none(),
                    "{name} refused an archive that `archive::check` accepts: {m}"
                );
            }
            _ => {
                assert!(
                    std::str::from_utf8(args).is_err(),
                    "{name} refused UTF-8: {m}"
                );
                assert!(m.contains("UTF-8"), "{name}: {m}");
            }
        }
        return;
    }
    match (name, &error) {
        ("echo", None) => assert_eq!(outcome.output, args, "echo"),
        ("reverse", None) => {
            let reversed: Vec<u8> = args.iter().rev().copied().collect();
            assert_eq!(outcome.output, reversed, "reverse");
        }
        ("count_words", None) => {
            let text = std::str::from_utf8(args).expect("count_words accepted non-UTF-8");
            assert_eq!(decode::<usize>(outcome), text.split_whitespace().count());
        }
        ("ping", None) => assert_eq!(outcome.output, b"pong", "a String result is raw"),
        ("add", None) => {
            let _: u32 = decode(outcome);
        }
        ("add", Some(ModuleError::Failed(m))) => assert!(m.contains("overflows"), "{m}"),
        ("profile", None) => {
            let _: crate::types::Profile = decode(outcome);
        }
        ("tree_depth", None) => {
            let depth: usize = decode(outcome);
            assert!(
                depth <= MAX_DEPTH || known::tolerated(known::ENUM_DEPTH),
                "tree_depth accepted a tree {depth} deep, deeper than MAX_DEPTH = {MAX_DEPTH}"
            );
        }
        ("big", None) => {
            assert!(outcome.output.len() <= BIG_LIMIT as usize);
            let first = outcome.output.first().copied();
            assert!(outcome.output.iter().all(|&b| Some(b) == first), "big");
        }
        ("squares", None) => {
            let _: u64 = decode(outcome);
        }
        ("squares", Some(ModuleError::QuotaExceeded)) => {}
        ("noisy", None) => {
            let (_, _, _, load, _): (u64, u64, u32, f32, bool) = decode(outcome);
            assert!(
                (0.0..=1.0).contains(&load),
                "backpressure {load} outside [0, 1]"
            );
        }
        ("async_len", None) => assert_eq!(decode::<u64>(outcome), args.len() as u64),
        ("boom", Some(ModuleError::Panic(_))) => {}
        ("archived_points", None) => {
            let digest = archived_args(name, args)
                .unwrap_or_else(|| panic!("{name} accepted an archive `archive::check` refuses"));
            assert_eq!(
                decode::<u64>(outcome),
                digest,
                "{name}: the digest of its fields"
            );
        }
        _ => panic!("{name} gave {outcome:?} for {} argument bytes", args.len()),
    }
}

/// The harness's own check of an archived export's arguments, with the module's limits,
/// and the digest the export should return; `None` when `check` refuses them.
fn archived_args(name: &str, args: &[u8]) -> Option<u64> {
    match name {
        "archived_points" => {
            let root =
                archive::check::<(Vec<Point>, String)>(args, archive::limits(), "archive").ok()?;
            Some(crate::archives::points_and_label(&root.0, root.1.as_str()))
        }
        other => panic!("no archived export `{other}`"),
    }
}

fn decode<T: serde::de::DeserializeOwned>(outcome: &Outcome) -> T {
    memlink_msdk::serialize::from_msgpack(&outcome.output).unwrap_or_else(|e| {
        panic!(
            "cannot decode a result of {} bytes ({:?}): {e}",
            outcome.output.len(),
            outcome.place
        )
    })
}

/// Writes the bytes that [`run`] decodes into `spec` followed by `args`: the inverse of
/// `arbitrary`'s derived decoding (integers little-endian, enum variant `k` of `n` from
/// a `u32` in `[k * 2^32 / n, (k + 1) * 2^32 / n)`), for writing seed inputs.
/// `tests/replay.rs` checks that the round trip holds.
pub fn encode(spec: &FrameSpec, args: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let variant = |out: &mut Vec<u8>, k: u64, n: u64| {
        let v = ((k << 32).div_ceil(n)) as u32;
        out.extend_from_slice(&v.to_le_bytes());
    };
    out.push(spec.method);
    match spec.target {
        Target::Resolved => variant(&mut out, 0, 4),
        Target::PastEnd(by) => {
            variant(&mut out, 1, 4);
            out.extend_from_slice(&by.to_le_bytes());
        }
        Target::WrongId(id) => {
            variant(&mut out, 2, 4);
            out.extend_from_slice(&id.to_le_bytes());
        }
        Target::OtherIndex(i) => {
            variant(&mut out, 3, 4);
            out.push(i);
        }
    }
    match spec.size {
        Size::Exact => variant(&mut out, 0, 4),
        Size::Larger(by) => {
            variant(&mut out, 1, 4);
            out.extend_from_slice(&by.to_le_bytes());
        }
        Size::Smaller(by) => {
            variant(&mut out, 2, 4);
            out.push(by);
        }
        Size::Max => variant(&mut out, 3, 4),
    }
    match spec.host {
        HostSpec::Real => variant(&mut out, 0, 4),
        HostSpec::Null => variant(&mut out, 1, 4),
        HostSpec::NullHandle => variant(&mut out, 2, 4),
        HostSpec::Short => variant(&mut out, 3, 4),
    }
    match spec.args {
        ArgsSpec::Real => variant(&mut out, 0, 7),
        ArgsSpec::NullWithLen(len) => {
            variant(&mut out, 1, 7);
            out.extend_from_slice(&len.to_le_bytes());
        }
        ArgsSpec::NullEmpty => variant(&mut out, 2, 7),
        ArgsSpec::DanglingEmpty => variant(&mut out, 3, 7),
        ArgsSpec::InArena(offset, len) => {
            variant(&mut out, 4, 7);
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
        ArgsSpec::Oversized => variant(&mut out, 5, 7),
        ArgsSpec::Wrapping => variant(&mut out, 6, 7),
    }
    match spec.arena {
        ArenaSpec::Aligned(len) => {
            variant(&mut out, 0, 5);
            out.extend_from_slice(&len.to_le_bytes());
        }
        ArenaSpec::Null => variant(&mut out, 1, 5),
        ArenaSpec::NullWithLen(len) => {
            variant(&mut out, 2, 5);
            out.extend_from_slice(&len.to_le_bytes());
        }
        ArenaSpec::Misaligned(off, len) => {
            variant(&mut out, 3, 5);
            out.push(off);
            out.extend_from_slice(&len.to_le_bytes());
        }
        ArenaSpec::Oversized => variant(&mut out, 4, 5),
    }
    match spec.alloc {
        AllocSpec::Unlimited => variant(&mut out, 0, 3),
        AllocSpec::Refuse => variant(&mut out, 1, 3),
        AllocSpec::Limit(n) => {
            variant(&mut out, 2, 3);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    match spec.depth {
        DepthSpec::Zero => variant(&mut out, 0, 3),
        DepthSpec::Near(d) => {
            variant(&mut out, 1, 3);
            out.push(d);
        }
        DepthSpec::Raw(d) => {
            variant(&mut out, 2, 3);
            out.extend_from_slice(&d.to_le_bytes());
        }
    }
    match spec.timeout {
        TimeoutSpec::None => variant(&mut out, 0, 3),
        TimeoutSpec::Expired => variant(&mut out, 1, 3),
        TimeoutSpec::Raw(ns) => {
            variant(&mut out, 2, 3);
            out.extend_from_slice(&ns.to_le_bytes());
        }
    }
    out.extend_from_slice(&spec.backpressure.to_bits().to_le_bytes());
    out.extend_from_slice(&spec.trace_id.to_le_bytes());
    out.extend_from_slice(&spec.span_id.to_le_bytes());
    match spec.persistent {
        PersistentSpec::None => variant(&mut out, 0, 4),
        PersistentSpec::Region => variant(&mut out, 1, 4),
        PersistentSpec::OverArena => variant(&mut out, 2, 4),
        PersistentSpec::Misaligned => variant(&mut out, 3, 4),
    }
    out.extend_from_slice(args);
    out
}

impl Default for FrameSpec {
    /// A well-formed frame for method 0 with a 4 KiB arena and no persistent region.
    fn default() -> FrameSpec {
        FrameSpec {
            method: 0,
            target: Target::Resolved,
            size: Size::Exact,
            host: HostSpec::Real,
            args: ArgsSpec::Real,
            arena: ArenaSpec::Aligned(4096),
            alloc: AllocSpec::Unlimited,
            depth: DepthSpec::Zero,
            timeout: TimeoutSpec::None,
            backpressure: 0.0,
            trace_id: 0,
            span_id: 0,
            persistent: PersistentSpec::None,
        }
    }
}

impl FrameSpec {
    /// The default spec aimed at the method called `name`.
    pub fn for_method(name: &str) -> FrameSpec {
        let index = host::index_of(name).unwrap_or_else(|| panic!("no export `{name}`"));
        FrameSpec {
            method: u8::try_from(index).expect("fewer than 256 exports"),
            ..FrameSpec::default()
        }
    }
}
