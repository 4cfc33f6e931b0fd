//! Target `arena_ops`: a sequence of arena operations, checked against a model.
//!
//! The input picks the arena's capacity and how far its start is from a 16-byte
//! boundary, then a list of [`Op`]s. The model is exact: a bump allocator places each
//! allocation at the highest address, ending at or below the start of the last one,
//! that is a multiple of its alignment, and fails, changing nothing, when that would
//! pass the region's start. After each
//! operation the harness checks:
//! - `used()` matches the model and never exceeds `capacity()`;
//! - every pointer is aligned, inside the region (zero-sized ones: aligned, non-null)
//!   and does not overlap any live allocation;
//! - fresh memory holds what the API promises (default, closure value, zeroes, copy);
//! - every live allocation still holds what was last written to it;
//! - no byte around the region was written.

use arbitrary::{Arbitrary, Unstructured};
use memlink_msdk::Arena;

/// Guard bytes on each side of the region.
const GUARD: usize = 64;
const GUARD_BYTE: u8 = 0x5a;
/// Largest arena the target builds.
const MAX_CAPACITY: usize = 8192;
/// Operations per input, so one input stays fast.
const MAX_OPS: usize = 512;

/// One arena operation.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum Op {
    /// `alloc::<u8>()`, then the value is written.
    U8(u8),
    /// `alloc::<u64>()`, then the value is written.
    U64(u64),
    /// `alloc::<u128>()`, then the value is written.
    U128(u128),
    /// `alloc::<[u8; 3]>()`, then the value is written.
    Bytes3([u8; 3]),
    /// `alloc::<()>()`: zero-sized.
    Unit,
    /// `alloc_with(|| value)` for a `u32`.
    WithU32(u32),
    /// `alloc_with(|| value)` for a 24-byte, 8-aligned value.
    WithTriple([u64; 3]),
    /// `alloc_bytes(n)`, then filled with the byte.
    AllocBytes(u16, u8),
    /// `alloc_bytes_aligned(n, align)`: `align` is `1 << (a % 16)` for `a < 200`, else
    /// any value (mostly not a power of two: refused).
    AllocBytesAligned(u16, u8),
    /// `alloc_bytes_aligned` with sizes or alignments too large for any arena.
    Huge(HugeKind),
    /// `alloc_slice_copy` of bytes.
    CopyBytes(Vec<u8>),
    /// `alloc_slice_copy` of `u32`s.
    CopyU32(Vec<u32>),
    /// `alloc_str`.
    Str(String),
    /// `alloc_slice_fill_with(n, |i| seed ^ i)` for `u64`s.
    FillWith(u8, u64),
    /// `reset()`: everything is forgotten.
    Reset,
}

/// Requests no arena can satisfy.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
pub enum HugeKind {
    /// `usize::MAX` bytes.
    MaxLen,
    /// `isize::MAX` bytes aligned to 1.
    IsizeLen,
    /// 1 byte aligned to `1 << 40`.
    HugeAlign,
    /// 1 byte aligned to `1 << 63`: not a valid `Layout`.
    TopBitAlign,
}

/// One allocation the model knows about.
#[derive(Debug)]
struct Live {
    ptr: *const u8,
    bytes: Vec<u8>,
}

/// The arena and its model.
struct Harness {
    arena: Arena,
    /// The region's first byte (the guard bytes follow its last).
    region: *const u8,
    start: usize,
    capacity: usize,
    used: usize,
    live: Vec<Live>,
}

/// Runs one input.
pub fn run(data: &[u8]) {
    if let Some((capacity, misalign, ops)) = decode(data) {
        apply(capacity, misalign, &ops);
    }
}

/// The capacity, misalignment and operations `data` stands for.
pub fn decode(data: &[u8]) -> Option<(usize, usize, Vec<Op>)> {
    let mut u = Unstructured::new(data);
    let (Ok(capacity), Ok(misalign)) = (
        u.int_in_range(0..=MAX_CAPACITY),
        u.int_in_range(0usize..=15),
    ) else {
        return None;
    };
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    Some((capacity, misalign, ops))
}

/// Writes the bytes [`decode`] turns into these values: the inverse of `arbitrary`'s
/// decoding (see `call_frames::encode`), for writing seed inputs. `Op::Str` has no
/// encoding here (`arbitrary` reads string lengths from the end of the input).
pub fn encode(capacity: usize, misalign: usize, ops: &[Op]) -> Vec<u8> {
    assert!(capacity <= MAX_CAPACITY && misalign < 16);
    let mut out = vec![(capacity >> 8) as u8, capacity as u8, misalign as u8];
    let variant = |out: &mut Vec<u8>, k: u64, n: u64| {
        out.extend_from_slice(&(((k << 32).div_ceil(n)) as u32).to_le_bytes());
    };
    for op in ops {
        match op {
            Op::U8(v) => {
                variant(&mut out, 0, 15);
                out.push(*v);
            }
            Op::U64(v) => {
                variant(&mut out, 1, 15);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Op::U128(v) => {
                variant(&mut out, 2, 15);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Op::Bytes3(v) => {
                variant(&mut out, 3, 15);
                out.extend_from_slice(v);
            }
            Op::Unit => variant(&mut out, 4, 15),
            Op::WithU32(v) => {
                variant(&mut out, 5, 15);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Op::WithTriple(v) => {
                variant(&mut out, 6, 15);
                v.iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
            Op::AllocBytes(n, fill) => {
                variant(&mut out, 7, 15);
                out.extend_from_slice(&n.to_le_bytes());
                out.push(*fill);
            }
            Op::AllocBytesAligned(n, a) => {
                variant(&mut out, 8, 15);
                out.extend_from_slice(&n.to_le_bytes());
                out.push(*a);
            }
            Op::Huge(kind) => {
                variant(&mut out, 9, 15);
                variant(&mut out, *kind as u64, 4);
            }
            Op::CopyBytes(v) => {
                variant(&mut out, 10, 15);
                v.iter().for_each(|b| out.extend_from_slice(&[1, *b]));
                out.push(0);
            }
            Op::CopyU32(v) => {
                variant(&mut out, 11, 15);
                for x in v {
                    out.push(1);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                out.push(0);
            }
            Op::Str(_) => panic!("Op::Str has no seed encoding"),
            Op::FillWith(n, seed) => {
                variant(&mut out, 13, 15);
                out.push(*n);
                out.extend_from_slice(&seed.to_le_bytes());
            }
            Op::Reset => variant(&mut out, 14, 15),
        }
    }
    out
}

/// Runs `ops` on an arena of `capacity` bytes starting `misalign` bytes past a 16-byte
/// boundary, checking each against the model.
pub fn apply(capacity: usize, misalign: usize, ops: &[Op]) {
    let total = GUARD + misalign + capacity + GUARD;
    let mut words = vec![u128::from_ne_bytes([GUARD_BYTE; 16]); total.div_ceil(16)];
    let base = words.as_mut_ptr().cast::<u8>();
    // SAFETY: `GUARD + misalign + capacity <= total`, inside the allocation.
    let region = unsafe { base.add(GUARD + misalign) };
    // SAFETY: the region is `capacity` bytes of `words`, which outlives the harness and
    // is not touched through `words` until the harness is dropped.
    let arena = unsafe { Arena::new(region, capacity) };
    let mut h = Harness {
        arena,
        region,
        start: region.addr(),
        capacity,
        used: 0,
        live: Vec::new(),
    };
    for op in ops {
        h.step(op);
        h.check_live();
    }
    drop(h);
    // SAFETY: the arena is gone; `words` is `words.len() * 16` initialized bytes.
    let bytes = unsafe { std::slice::from_raw_parts(base.cast_const(), words.len() * 16) };
    let region_at = GUARD + misalign;
    assert!(
        bytes[..region_at].iter().all(|&b| b == GUARD_BYTE),
        "the arena wrote before its region"
    );
    assert!(
        bytes[region_at + capacity..]
            .iter()
            .all(|&b| b == GUARD_BYTE),
        "the arena wrote past its region"
    );
}

impl Harness {
    fn step(&mut self, op: &Op) {
        match op {
            Op::U8(v) => {
                let r = self.arena.alloc::<u8>();
                self.record(r.map(|r| fresh(r, &0, *v)), 1, 1);
            }
            Op::U64(v) => {
                let r = self.arena.alloc::<u64>();
                self.record(r.map(|r| fresh(r, &0, *v)), 8, 8);
            }
            Op::U128(v) => {
                let r = self.arena.alloc::<u128>();
                self.record(r.map(|r| fresh(r, &0, *v)), 16, align_of::<u128>());
            }
            Op::Bytes3(v) => {
                let r = self.arena.alloc::<[u8; 3]>();
                self.record(r.map(|r| fresh(r, &[0; 3], *v)), 3, 1);
            }
            Op::Unit => {
                let r = self.arena.alloc::<()>();
                self.record(r.map(|r| fresh(r, &(), ())), 0, 1);
            }
            Op::WithU32(v) => {
                let r = self.arena.alloc_with(|| *v);
                self.record(r.map(|r| fresh(r, v, v.rotate_left(7))), 4, 4);
            }
            Op::WithTriple(v) => {
                let r = self.arena.alloc_with(|| *v);
                let next = [v[2], v[0], v[1]];
                self.record(r.map(|r| fresh(r, v, next)), 24, 8);
            }
            Op::AllocBytes(n, fill) => {
                let n = usize::from(*n);
                let r = self.arena.alloc_bytes(n);
                self.record(r.map(|s| fill_zeroed(s, *fill)), n, 1);
            }
            Op::AllocBytesAligned(n, a) => {
                let n = usize::from(*n);
                let align = if *a < 200 {
                    1usize << (a % 16)
                } else {
                    usize::from(*a)
                };
                let r = self.arena.alloc_bytes_aligned(n, align);
                if align.is_power_of_two() {
                    self.record(r.map(|s| fill_zeroed(s, *a)), n, align);
                } else {
                    assert!(r.is_none(), "alignment {align} is not a power of two");
                    self.unchanged();
                }
            }
            Op::Huge(kind) => {
                let r = match kind {
                    HugeKind::MaxLen => self.arena.alloc_bytes(usize::MAX),
                    HugeKind::IsizeLen => self.arena.alloc_bytes(isize::MAX as usize),
                    HugeKind::HugeAlign => self.arena.alloc_bytes_aligned(1, 1 << 40),
                    HugeKind::TopBitAlign => self.arena.alloc_bytes_aligned(1, 1 << 63),
                };
                assert!(r.is_none(), "{kind:?} succeeded");
                self.unchanged();
            }
            Op::CopyBytes(src) => {
                let r = self.arena.alloc_slice_copy(src);
                if let Some(s) = &r {
                    assert_eq!(&s[..], &src[..]);
                }
                let ptr = r.map(|s| (s.as_ptr(), src.clone()));
                self.record(ptr, src.len(), 1);
            }
            Op::CopyU32(src) => {
                let r = self.arena.alloc_slice_copy(src);
                let ptr = r.map(|s| {
                    assert_eq!(&s[..], &src[..]);
                    let bytes = s.iter().flat_map(|x| x.to_ne_bytes()).collect();
                    (s.as_ptr().cast::<u8>(), bytes)
                });
                self.record(ptr, 4 * src.len(), 4);
            }
            Op::Str(text) => {
                let r = self.arena.alloc_str(text);
                let ptr = r.map(|s| {
                    assert_eq!(&*s, text.as_str());
                    (s.as_ptr(), text.as_bytes().to_vec())
                });
                self.record(ptr, text.len(), 1);
            }
            Op::FillWith(n, seed) => {
                let n = usize::from(*n);
                let mut calls = 0;
                let r = self.arena.alloc_slice_fill_with(n, |i| {
                    calls += 1;
                    seed ^ i as u64
                });
                let ptr = r.map(|s| {
                    assert!(s.iter().enumerate().all(|(i, &x)| x == seed ^ i as u64));
                    let bytes = s.iter().flat_map(|x| x.to_ne_bytes()).collect();
                    (s.as_ptr().cast::<u8>(), bytes)
                });
                let expected_calls = if ptr.is_some() { n } else { 0 };
                assert_eq!(calls, expected_calls, "the fill closure ran {calls} times");
                self.record(ptr, 8 * n, 8);
            }
            Op::Reset => {
                self.arena.reset();
                self.used = 0;
                self.live.clear();
                assert_eq!(self.arena.used(), 0);
                assert_eq!(self.arena.remaining(), self.capacity);
            }
        }
    }

    /// Checks an allocation of `size` bytes aligned to `align` against the model, and
    /// records it.
    fn record(&mut self, got: Option<(*const u8, Vec<u8>)>, size: usize, align: usize) {
        if size == 0 {
            let (ptr, _) = got.expect("a zero-sized allocation always succeeds");
            assert!(
                !ptr.is_null() && ptr.addr().is_multiple_of(align),
                "zero-sized at {ptr:p}"
            );
            self.unchanged();
            return;
        }
        let top = self.start + self.capacity - self.used;
        let fits = top
            .checked_sub(size)
            .map(|at| at & !(align - 1))
            .filter(|&at| at >= self.start);
        match (got, fits) {
            (None, None) => self.unchanged(),
            (Some((ptr, bytes)), Some(at)) => {
                assert_eq!(ptr.addr(), at, "allocation not at the next aligned address down");
                assert!(self.arena.contains(ptr));
                let end_of_region = core::ptr::without_provenance::<u8>(self.start + self.capacity);
                assert!(!self.arena.contains(end_of_region), "contains() past the end");
                for other in &self.live {
                    let (a, b) = (other.ptr.addr(), other.ptr.addr() + other.bytes.len());
                    assert!(at >= b || at + size <= a, "overlaps an allocation at {a:#x}");
                }
                self.used = self.start + self.capacity - at;
                assert_eq!(self.arena.used(), self.used);
                assert!(self.arena.used() <= self.arena.capacity());
                assert_eq!(bytes.len(), size);
                self.live.push(Live { ptr, bytes });
            }
            (Some((ptr, _)), None) => panic!(
                "{size} bytes aligned to {align} at {ptr:p} with {} of {} used: the model says no room",
                self.used, self.capacity
            ),
            (None, Some(_)) => panic!(
                "{size} bytes aligned to {align} refused with {} of {} used: the model says it fits",
                self.used, self.capacity
            ),
        }
    }

    /// A failed or zero-sized allocation changed nothing.
    fn unchanged(&self) {
        assert_eq!(self.arena.used(), self.used, "a failure changed used()");
        assert_eq!(self.arena.capacity(), self.capacity);
        assert_eq!(self.arena.remaining(), self.capacity - self.used);
    }

    /// Every live allocation holds what was last written to it, and the arena knows
    /// where its region ends.
    fn check_live(&self) {
        assert!(self.arena.used() <= self.arena.capacity());
        for l in &self.live {
            // SAFETY: `l.ptr` came from the arena, which is still alive and has not been
            // reset since (a reset clears `live`); it covers `l.bytes.len()` initialized
            // bytes that no live reference writes.
            let now = unsafe { std::slice::from_raw_parts(l.ptr, l.bytes.len()) };
            assert_eq!(now, &l.bytes[..], "an allocation at {:p} changed", l.ptr);
            assert!(
                self.arena.contains_slice(now),
                "contains_slice of an allocation"
            );
        }
        if self.capacity > 0 {
            // SAFETY: the region and the guard bytes after it are initialized bytes of
            // the harness's buffer, and no reference writes them while this one lives.
            let (whole, straddling) = unsafe {
                (
                    std::slice::from_raw_parts(self.region, self.capacity),
                    std::slice::from_raw_parts(self.region.add(self.capacity - 1), 2),
                )
            };
            assert!(self.arena.contains_slice(whole), "the whole region");
            assert!(
                !self.arena.contains_slice(straddling),
                "a slice past the end"
            );
        }
    }
}

/// Checks a fresh `T` holds `initial`, writes `next`, and returns its address and bytes.
fn fresh<T: PartialEq + std::fmt::Debug + Copy>(
    slot: &mut T,
    initial: &T,
    next: T,
) -> (*const u8, Vec<u8>) {
    assert_eq!(slot, initial, "fresh memory holds the wrong value");
    *slot = next;
    let ptr = (slot as *const T).cast::<u8>();
    // SAFETY: `slot` is a valid, initialized `T` of `size_of::<T>()` bytes; the value
    // types used here have no padding, so every byte is initialized.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, size_of::<T>()) }.to_vec();
    (ptr, bytes)
}

/// Checks fresh bytes are zero, fills them, and returns their address and contents.
fn fill_zeroed(slot: &mut [u8], fill: u8) -> (*const u8, Vec<u8>) {
    assert!(
        slot.iter().all(|&b| b == 0),
        "alloc_bytes memory is not zeroed"
    );
    slot.fill(fill);
    (slot.as_ptr(), slot.to_vec())
}
