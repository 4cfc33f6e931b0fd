//! What a `call_frames` input says: the [`FrameSpec`] that `arbitrary` decodes from its
//! first bytes (each field's variant 0 the well-formed choice), and [`encode`], its
//! inverse, which writes the seed inputs.

use arbitrary::Arbitrary;

use crate::host;

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
    /// [`PersistentHeader`](memlink_msdk::abi::PersistentHeader) of a fresh, non-zero
    /// generation, as the host makes one.
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

/// Writes the bytes that [`run`](super::run) decodes into `spec` followed by `args`: the
/// inverse of `arbitrary`'s derived decoding (integers little-endian, enum variant `k` of
/// `n` from a `u32` in `[k * 2^32 / n, (k + 1) * 2^32 / n)`), for writing seed inputs.
/// `tests/replay.rs` checks that the round trip holds.
pub fn encode(spec: &FrameSpec, args: &[u8]) -> Vec<u8> {
    let mut out = vec![spec.method];
    spec.target.encode(&mut out);
    spec.size.encode(&mut out);
    spec.host.encode(&mut out);
    spec.args.encode(&mut out);
    spec.arena.encode(&mut out);
    spec.alloc.encode(&mut out);
    spec.depth.encode(&mut out);
    spec.timeout.encode(&mut out);
    out.extend_from_slice(&spec.backpressure.to_bits().to_le_bytes());
    out.extend_from_slice(&spec.trace_id.to_le_bytes());
    out.extend_from_slice(&spec.span_id.to_le_bytes());
    spec.persistent.encode(&mut out);
    out.extend_from_slice(args);
    out
}

/// Writes the `u32` that `arbitrary` decodes as variant `k` of an enum of `n` variants.
fn variant(out: &mut Vec<u8>, k: u64, n: u64) {
    let v = ((k << 32).div_ceil(n)) as u32;
    out.extend_from_slice(&v.to_le_bytes());
}

impl Target {
    /// Writes the bytes `arbitrary` decodes into this value.
    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Target::Resolved => variant(out, 0, 4),
            Target::PastEnd(by) => {
                variant(out, 1, 4);
                out.extend_from_slice(&by.to_le_bytes());
            }
            Target::WrongId(id) => {
                variant(out, 2, 4);
                out.extend_from_slice(&id.to_le_bytes());
            }
            Target::OtherIndex(i) => {
                variant(out, 3, 4);
                out.push(i);
            }
        }
    }
}

impl Size {
    /// Writes the bytes `arbitrary` decodes into this value.
    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Size::Exact => variant(out, 0, 4),
            Size::Larger(by) => {
                variant(out, 1, 4);
                out.extend_from_slice(&by.to_le_bytes());
            }
            Size::Smaller(by) => {
                variant(out, 2, 4);
                out.push(by);
            }
            Size::Max => variant(out, 3, 4),
        }
    }
}

impl HostSpec {
    /// Writes the bytes `arbitrary` decodes into this value.
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            HostSpec::Real => variant(out, 0, 4),
            HostSpec::Null => variant(out, 1, 4),
            HostSpec::NullHandle => variant(out, 2, 4),
            HostSpec::Short => variant(out, 3, 4),
        }
    }
}

impl ArgsSpec {
    /// Writes the bytes `arbitrary` decodes into this value.
    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            ArgsSpec::Real => variant(out, 0, 7),
            ArgsSpec::NullWithLen(len) => {
                variant(out, 1, 7);
                out.extend_from_slice(&len.to_le_bytes());
            }
            ArgsSpec::NullEmpty => variant(out, 2, 7),
            ArgsSpec::DanglingEmpty => variant(out, 3, 7),
            ArgsSpec::InArena(offset, len) => {
                variant(out, 4, 7);
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&len.to_le_bytes());
            }
            ArgsSpec::Oversized => variant(out, 5, 7),
            ArgsSpec::Wrapping => variant(out, 6, 7),
        }
    }
}

impl ArenaSpec {
    /// Writes the bytes `arbitrary` decodes into this value.
    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            ArenaSpec::Aligned(len) => {
                variant(out, 0, 5);
                out.extend_from_slice(&len.to_le_bytes());
            }
            ArenaSpec::Null => variant(out, 1, 5),
            ArenaSpec::NullWithLen(len) => {
                variant(out, 2, 5);
                out.extend_from_slice(&len.to_le_bytes());
            }
            ArenaSpec::Misaligned(off, len) => {
                variant(out, 3, 5);
                out.push(off);
                out.extend_from_slice(&len.to_le_bytes());
            }
            ArenaSpec::Oversized => variant(out, 4, 5),
        }
    }
}

impl AllocSpec {
    /// Writes the bytes `arbitrary` decodes into this value.
    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            AllocSpec::Unlimited => variant(out, 0, 3),
            AllocSpec::Refuse => variant(out, 1, 3),
            AllocSpec::Limit(n) => {
                variant(out, 2, 3);
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
    }
}

impl DepthSpec {
    /// Writes the bytes `arbitrary` decodes into this value.
    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            DepthSpec::Zero => variant(out, 0, 3),
            DepthSpec::Near(d) => {
                variant(out, 1, 3);
                out.push(d);
            }
            DepthSpec::Raw(d) => {
                variant(out, 2, 3);
                out.extend_from_slice(&d.to_le_bytes());
            }
        }
    }
}

impl TimeoutSpec {
    /// Writes the bytes `arbitrary` decodes into this value.
    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            TimeoutSpec::None => variant(out, 0, 3),
            TimeoutSpec::Expired => variant(out, 1, 3),
            TimeoutSpec::Raw(ns) => {
                variant(out, 2, 3);
                out.extend_from_slice(&ns.to_le_bytes());
            }
        }
    }
}

impl PersistentSpec {
    /// Writes the bytes `arbitrary` decodes into this value.
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            PersistentSpec::None => variant(out, 0, 4),
            PersistentSpec::Region => variant(out, 1, 4),
            PersistentSpec::OverArena => variant(out, 2, 4),
            PersistentSpec::Misaligned => variant(out, 3, 4),
        }
    }
}
