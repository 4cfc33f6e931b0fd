//! Target `call_frames`: `memlink_call` with frames built from arbitrary input.
//!
//! The input is a [`FrameSpec`] (decoded with `arbitrary`) followed by the argument
//! bytes. The spec varies everything the ABI says the module must check (frame size,
//! method index and id, null pointers with non-zero lengths, a null host, the arena's
//! alignment and size) and everything it must cope with (deadlines, depth, backpressure,
//! a host that refuses output buffers). Every pointer the harness claims is valid is
//! valid: that is the host's promise, which the module cannot check.
//!
//! After each call the harness checks what a host relies on: the status is a known
//! `Status`; output lies in the arena or at the start of the host's output buffer; an
//! error payload decodes to the same variant; a frame the ABI calls malformed is
//! refused with `Abi` (or `InvalidMethod` for the method), the arguments are unchanged
//! and nothing outside the arena was written; plus what each export promises.

use arbitrary::{Arbitrary, Unstructured};
use memlink_examples::zero_copy_types::Point;
use memlink_msdk::abi::{self, CallFrame, Format, Status};
use memlink_msdk::archive;
use memlink_msdk::exports::memlink_call;
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
    /// `backpressure`, as it comes (NaN, negative, huge).
    pub backpressure: f32,
    /// `trace_id`.
    pub trace_id: u64,
    /// `span_id`.
    pub span_id: u64,
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
    Size,
    Host,
    Args,
    ArenaNull,
    ArenaAlign,
}

impl Problem {
    /// Words one of which the module's message must contain.
    fn keywords(self) -> &'static [&'static str] {
        match self {
            Problem::Size => &["size", "smaller"],
            Problem::Host => &["host"],
            Problem::Args => &["argument"],
            Problem::ArenaNull => &["arena"],
            Problem::ArenaAlign => &["align"],
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
        ArenaSpec::Null | ArenaSpec::NullWithLen(_) => None,
    };
    let (arena_ptr, arena_len) = match (&mut arena, &spec.arena) {
        (Some(a), _) => (a.ptr(), a.len()),
        (None, ArenaSpec::NullWithLen(len)) => (core::ptr::null_mut(), 1 + usize::from(*len)),
        (None, _) => (core::ptr::null_mut(), 0),
    };
    let (args_ptr, args_len) = match spec.args {
        ArgsSpec::Real => (args.as_ptr(), args.len()),
        ArgsSpec::NullWithLen(len) => (core::ptr::null(), 1 + usize::from(len)),
        ArgsSpec::NullEmpty => (core::ptr::null(), 0),
        ArgsSpec::DanglingEmpty => (
            core::ptr::NonNull::<u8>::dangling().as_ptr().cast_const(),
            0,
        ),
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
        flags: 0,
        host: host_ptr,
        host_call: call_ptr,
        // No persistent region: the module must cope without one.
        persistent: core::ptr::null_mut(),
        persistent_len: 0,
        // Junk: the module must overwrite both before it returns.
        out: 0xdead_beef as *const u8,
        out_len: 12_345,
        arena_used: 0,
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
    let args_before = args.to_vec();
    // SAFETY: the frame keeps the host's promises: `args` (when non-null) points to
    // `args_len` bytes that stay unchanged, the arena (when non-null) to `arena_len`
    // bytes nobody else uses, `host` is null or a static, and `host_call` is null or a
    // `HostCall` alive on this stack. The null, misaligned or mis-sized values are the
    // ones the module is required to check.
    let status = unsafe { memlink_call(&mut frame) };
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
    assert_eq!(args, &args_before[..], "the module wrote to its arguments");
    let output_refused = call_ptr.is_null() || host_call.refused > 0;
    host::check_error_decodes(&outcome, output_refused);

    if !problems.is_empty() {
        assert_eq!(
            outcome.status,
            Status::Abi,
            "a frame with {problems:?} got {outcome:?}"
        );
        if outcome.place == Place::Empty {
            // A frame too small for outputs gets the status alone; otherwise, without a
            // host (or a buffer from it) or room in the arena, the message cannot be
            // delivered.
            assert!(
                problems.contains(&Problem::Size)
                    || host_ptr.is_null()
                    || host_call.refused > 0
                    || call_ptr.is_null()
            );
        } else {
            let message = String::from_utf8_lossy(&outcome.output);
            assert!(
                problems
                    .iter()
                    .any(|p| p.keywords().iter().any(|k| message.contains(k))),
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
    check_export(
        &method.name,
        method.args_format,
        &frame,
        args,
        &outcome,
        output_refused,
    );
    outcome
}

fn problems(frame: &CallFrame) -> Vec<Problem> {
    let mut found = Vec::new();
    if (frame.size as usize) < size_of::<CallFrame>() {
        found.push(Problem::Size);
    }
    if frame.host.is_null() {
        found.push(Problem::Host);
    }
    if frame.args.is_null() && frame.args_len > 0 {
        found.push(Problem::Args);
    }
    if frame.arena.is_null() && frame.arena_len > 0 {
        found.push(Problem::ArenaNull);
    }
    // An empty arena is never read or written, so its address does not matter.
    if frame.arena_len > 0 && !frame.arena.addr().is_multiple_of(16) {
        found.push(Problem::ArenaAlign);
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
        HostSpec::Real => variant(&mut out, 0, 3),
        HostSpec::Null => variant(&mut out, 1, 3),
        HostSpec::NullHandle => variant(&mut out, 2, 3),
    }
    match spec.args {
        ArgsSpec::Real => variant(&mut out, 0, 4),
        ArgsSpec::NullWithLen(len) => {
            variant(&mut out, 1, 4);
            out.extend_from_slice(&len.to_le_bytes());
        }
        ArgsSpec::NullEmpty => variant(&mut out, 2, 4),
        ArgsSpec::DanglingEmpty => variant(&mut out, 3, 4),
    }
    match spec.arena {
        ArenaSpec::Aligned(len) => {
            variant(&mut out, 0, 4);
            out.extend_from_slice(&len.to_le_bytes());
        }
        ArenaSpec::Null => variant(&mut out, 1, 4),
        ArenaSpec::NullWithLen(len) => {
            variant(&mut out, 2, 4);
            out.extend_from_slice(&len.to_le_bytes());
        }
        ArenaSpec::Misaligned(off, len) => {
            variant(&mut out, 3, 4);
            out.push(off);
            out.extend_from_slice(&len.to_le_bytes());
        }
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
    out.extend_from_slice(args);
    out
}

impl Default for FrameSpec {
    /// A well-formed frame for method 0 with a 4 KiB arena.
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
