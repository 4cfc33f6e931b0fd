//! Checking a call frame before anything it points to is read.
//!
//! A module trusts no frame: the host table's size (read through its pointer, as a table
//! of an older host may be shorter than this module's), then each region (arguments,
//! arena, persistent region) for a null pointer with a length, a length over
//! `isize::MAX` or a range that wraps around the address space, the arena's and the
//! persistent region's alignment, that no two regions share a byte, and that neither the
//! frame nor the host's table lies in a region: the module writes the arena, the
//! persistent region and the frame's outputs while it reads the arguments and calls
//! through the table. Every check is a comparison or two.

use crate::abi::{CallFrame, HostApi};
use crate::error::ModuleError;

/// Whether a call may run on `frame`: it is as large as this module's frame type, names
/// a host service table large enough for this module, and its regions are well formed
/// and apart: each is non-null when it has bytes, no longer than `isize::MAX`, does not
/// wrap around the address space, the arena and persistent region are aligned, no two
/// share a byte (the arguments must stay as they were validated while the call
/// allocates in the arena, and the persistent region is shared by every call), and
/// neither the frame nor the host's table lies in one the module reads or writes while
/// it uses them, nor the table in the frame (the frame's outputs are written while the
/// arguments are borrowed; an arena, persistent region or frame over the table would
/// let the module's own writes replace the functions it calls). Nothing the regions point to is read. [`problem`] says what
/// is wrong with a frame this refuses.
///
/// A function of its own, never inlined: its dozen comparisons then run in registers of
/// their own instead of crowding the boundary's, and their results are or-ed together
/// with one branch at the end.
///
/// # Safety
///
/// `frame.host` must be null or point to a [`HostApi`] valid for reads of its `size`
/// field, and of the whole table when that size says it holds one (`memlink_call`'s
/// contract).
#[inline(never)]
pub(crate) unsafe fn is_sound(frame: &CallFrame) -> bool {
    if (frame.size as usize) < size_of::<CallFrame>() {
        return false;
    }
    // SAFETY: the caller's contract.
    match unsafe { host_size(frame.host) } {
        Some(size) if (size as usize) >= size_of::<HostApi>() => {}
        _ => return false,
    }
    let args = Bounds::of(frame.args.addr(), frame.args_len);
    let arena = Bounds::of(frame.arena.addr(), frame.arena_len);
    let itself = core::ptr::from_ref(frame).addr();
    let table = frame.host.addr();
    let mut bad = args.bad
        | arena.bad
        | !arena.start.is_multiple_of(16)
        | args.meets(&arena)
        | args.holds::<CallFrame>(itself)
        | arena.holds::<CallFrame>(itself)
        | arena.holds::<HostApi>(table)
        | table_in_frame(itself, table);
    // Most modules keep no persistent region: its checks are skipped when it is empty
    // (an empty region is sound and apart from everything).
    if frame.persistent_len != 0 {
        let persistent = Bounds::of(frame.persistent.addr(), frame.persistent_len);
        bad |= persistent.bad
            | !persistent.start.is_multiple_of(64)
            | args.meets(&persistent)
            | arena.meets(&persistent)
            | persistent.holds::<CallFrame>(itself)
            | persistent.holds::<HostApi>(table);
    }
    !bad
}

/// Whether a host table at address `table` shares a byte with the frame at address
/// `frame` (memory the caller vouches for, so it does not wrap): the module writes the
/// frame's outputs, which would replace the table's functions.
#[inline(always)]
pub(crate) fn table_in_frame(frame: usize, table: usize) -> bool {
    Bounds::of(frame, size_of::<CallFrame>()).holds::<HostApi>(table)
}

/// The size a host service table gives, read through its pointer with no reference to
/// the whole table made (a table of an older host may be shorter than this module's):
/// `None` for a null table, or one not aligned as a table is (no reference may be made
/// to it, nor its size read).
///
/// # Safety
///
/// `host` must be null or point to memory valid for reads of a [`HostApi`]'s `size`
/// field.
#[inline(always)]
pub(crate) unsafe fn host_size(host: *const HostApi) -> Option<u32> {
    if host.is_null() || !host.is_aligned() {
        return None;
    }
    // SAFETY: non-null and aligned, so valid for reads of its `size` field (the
    // caller's contract); the field alone is read.
    Some(unsafe { (&raw const (*host).size).read() })
}

/// Why the host service table `host` cannot be used: null, out of alignment, or
/// shorter than this module's; `None` when it can.
///
/// # Safety
///
/// As for [`host_size`].
pub(crate) unsafe fn table_problem(host: *const HostApi) -> Option<String> {
    // SAFETY: the caller's contract.
    match unsafe { host_size(host) } {
        None if host.is_null() => Some("the host offers no services (a null HostApi)".to_owned()),
        None => Some(format!(
            "the host's service table at {host:p} is not aligned to {}",
            align_of::<HostApi>()
        )),
        Some(size) if (size as usize) < size_of::<HostApi>() => Some(format!(
            "the host's service table is {size} bytes, this module needs {}",
            size_of::<HostApi>()
        )),
        Some(_) => None,
    }
}

/// A region's address range, with an empty region placed at 0: there it shares no byte
/// with any other and needs no alignment, wherever its pointer points.
struct Bounds {
    start: usize,
    end: usize,
    /// Null with bytes, longer than `isize::MAX`, or running past the end of the address
    /// space: no reference may be made to it.
    bad: bool,
}

impl Bounds {
    #[inline(always)]
    fn of(addr: usize, len: usize) -> Bounds {
        let start = if len == 0 { 0 } else { addr };
        Bounds {
            start,
            end: start.wrapping_add(len),
            // With `len` bytes, the region needs `addr >= 1` and `addr + len < 2^64`
            // (the end pointer must not wrap), which is `addr - 1 < usize::MAX - len`
            // with `addr - 1` wrapping to `usize::MAX` for a null pointer.
            bad: (len != 0)
                & ((len > isize::MAX as usize) | (addr.wrapping_sub(1) >= usize::MAX - len)),
        }
    }

    /// Whether the two share a byte (neither being bad).
    #[inline(always)]
    fn meets(&self, other: &Bounds) -> bool {
        (self.start < other.end) & (other.start < self.end)
    }

    /// Whether the region (not bad) shares a byte with the `T` at `at`, memory the caller
    /// vouches for (so it does not wrap): [`meets`](Bounds::meets) in a subtraction and
    /// one comparison. The two meet when `at - start` lies in `(-size, len)`, which,
    /// shifted by `size - 1`, is `[0, len + size - 1)`, as one unsigned comparison of
    /// wrapping values; an empty region, placed at 0, has `at + size - 1` against
    /// `size - 1`, never below it.
    #[inline(always)]
    fn holds<T>(&self, at: usize) -> bool {
        const { assert!(size_of::<T>() > 0, "a region holds no zero-sized value") };
        let reach = size_of::<T>() - 1;
        at.wrapping_sub(self.start).wrapping_add(reach)
            < self.end.wrapping_sub(self.start).wrapping_add(reach)
    }
}

/// What is wrong with a frame [`is_sound`] refused, in the order a reader would look:
/// the host's table, then each region. `None` for a frame too small to hold the outputs
/// (nothing may be written to it).
///
/// # Safety
///
/// As for [`is_sound`].
#[cold]
pub(crate) unsafe fn problem(frame: &CallFrame) -> Option<ModuleError> {
    if (frame.size as usize) < size_of::<CallFrame>() {
        return None;
    }
    // SAFETY: the caller's contract.
    if let Some(why) = unsafe { table_problem(frame.host) } {
        return Some(abi_error(&why));
    }
    Some(region_problem(frame).unwrap_or_else(|| abi_error("the call frame is malformed")))
}

/// The first problem of a frame's regions, checked one by one: what [`is_sound`]
/// decides without a branch, said in words.
fn region_problem(frame: &CallFrame) -> Option<ModuleError> {
    let check = || -> Result<(), ModuleError> {
        let args = region(frame.args.addr(), frame.args_len, "arguments")?;
        let arena = region(frame.arena.addr(), frame.arena_len, "arena")?;
        let persistent = region(
            frame.persistent.addr(),
            frame.persistent_len,
            "persistent region",
        )?;
        if frame.arena_len > 0 && !frame.arena.addr().is_multiple_of(16) {
            return Err(abi_error("the call frame's arena is not aligned to 16"));
        }
        if frame.persistent_len > 0 && !frame.persistent.addr().is_multiple_of(64) {
            return Err(abi_error(
                "the call frame's persistent region is not aligned to 64",
            ));
        }
        for (a, b) in [(&args, &arena), (&args, &persistent), (&arena, &persistent)] {
            if a.overlaps(b) {
                return Err(abi_error(&format!(
                    "the call frame's {} and {} overlap",
                    a.what, b.what
                )));
            }
        }
        let itself = span(core::ptr::from_ref(frame).addr(), size_of::<CallFrame>());
        for region in [&args, &arena, &persistent] {
            if itself.overlaps(region) {
                return Err(abi_error(&format!(
                    "the call frame lies in its own {}",
                    region.what
                )));
            }
        }
        let table = span(frame.host.addr(), size_of::<HostApi>());
        if table.overlaps(&itself) {
            return Err(abi_error(
                "the host's service table lies in the call frame (whose outputs the module writes)",
            ));
        }
        for region in [&arena, &persistent] {
            if table.overlaps(region) {
                return Err(abi_error(&format!(
                    "the host's service table lies in the call frame's {}",
                    region.what
                )));
            }
        }
        Ok(())
    };
    check().err()
}

/// An address range of a frame, for the checks.
struct Span {
    start: usize,
    end: usize,
    what: &'static str,
}

impl Span {
    /// Whether the two share a byte: an empty region has none to share, wherever it
    /// points.
    fn overlaps(&self, other: &Span) -> bool {
        let empty = |s: &Span| s.start == s.end;
        !empty(self) && !empty(other) && self.start < other.end && other.start < self.end
    }
}

/// The bytes of memory the caller vouches for (the frame, the host's table): they do
/// not wrap around the address space.
fn span(addr: usize, len: usize) -> Span {
    Span {
        start: addr,
        end: addr.saturating_add(len),
        what: "",
    }
}

fn region(addr: usize, len: usize, what: &'static str) -> Result<Span, ModuleError> {
    if len == 0 {
        return Ok(Span {
            start: addr,
            end: addr,
            what,
        });
    }
    if addr == 0 {
        return Err(abi_error(&format!(
            "the call frame's {what} pointer is null with a length of {len}"
        )));
    }
    if isize::try_from(len).is_err() {
        return Err(abi_error(&format!(
            "the call frame's {what} length {len} is more than isize::MAX"
        )));
    }
    let end = addr.checked_add(len).ok_or_else(|| {
        abi_error(&format!(
            "the call frame's {what} region runs past the end of the address space"
        ))
    })?;
    Ok(Span {
        start: addr,
        end,
        what,
    })
}

fn abi_error(problem: &str) -> ModuleError {
    ModuleError::Abi(problem.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_host::HOST;

    /// A frame with the three regions, everything else zero.
    fn frame(args: (usize, usize), arena: (usize, usize), persistent: (usize, usize)) -> CallFrame {
        CallFrame {
            size: size_of::<CallFrame>() as u32,
            method_index: 0,
            method_id: 0,
            depth: 0,
            args: core::ptr::without_provenance(args.0),
            args_len: args.1,
            arena: core::ptr::without_provenance_mut(arena.0),
            arena_len: arena.1,
            trace_id: 0,
            span_id: 0,
            timeout_ns: 0,
            backpressure: 0.0,
            flags: 0,
            host: &raw const HOST,
            host_call: core::ptr::null_mut(),
            persistent: core::ptr::without_provenance_mut(persistent.0),
            persistent_len: persistent.1,
            out: core::ptr::null(),
            out_len: 0,
            arena_used: 0,
            small_out: [0; crate::abi::SMALL_OUT_LEN],
        }
    }

    /// The branch-free check agrees with the one that says what is wrong on every
    /// combination of edge addresses and lengths, including empty regions anywhere,
    /// touching and overlapping regions, and regions that wrap.
    #[test]
    fn the_fast_check_agrees_with_the_explained_one() {
        let max = usize::MAX;
        let addrs = [0, 1, 16, 48, 64, 128, max / 2 + 1, max - 63, max - 15, max];
        let lens = [
            0,
            1,
            16,
            48,
            64,
            isize::MAX as usize,
            isize::MAX as usize + 1,
            max,
        ];
        let regions: Vec<(usize, usize)> = addrs
            .iter()
            .flat_map(|&a| lens.iter().map(move |&l| (a, l)))
            .collect();
        let mut refused = 0;
        for &args in &regions {
            for &arena in &regions {
                for &persistent in [(0, 0), (64, 64), (128, 1), (max - 63, 64), (16, 16)].iter() {
                    let f = frame(args, arena, persistent);
                    // SAFETY: the frame names `HOST`, a valid table.
                    let fast = !unsafe { is_sound(&f) };
                    assert_eq!(
                        fast,
                        region_problem(&f).is_some(),
                        "args {args:x?}, arena {arena:x?}, persistent {persistent:x?}"
                    );
                    refused += usize::from(fast);
                }
            }
        }
        assert!(refused > 0 && refused < regions.len() * regions.len() * 5);
    }

    /// The one-comparison check of a region against a frame agrees with the two-sided
    /// one, for regions before, touching, inside, around and after the frame, and empty
    /// ones anywhere (inside the frame too).
    #[test]
    fn holds_agrees_with_meets() {
        let size = size_of::<CallFrame>();
        let max = usize::MAX;
        for at in [64, 4096, max / 2, max - size] {
            for start in [
                0,
                1,
                63,
                at - 1,
                at,
                at + 1,
                at + size - 1,
                at + size,
                max - 64,
            ] {
                for len in [0, 1, 2, size, size + 1, 4096, isize::MAX as usize - 4096] {
                    let region = Bounds::of(start, len);
                    if region.bad {
                        continue;
                    }
                    let frame = Bounds::of(at, size);
                    assert_eq!(
                        region.holds::<CallFrame>(at),
                        region.meets(&frame),
                        "region {start:#x}+{len:#x}, frame at {at:#x}"
                    );
                    let table = Bounds::of(at, size_of::<HostApi>());
                    assert_eq!(
                        region.holds::<HostApi>(at),
                        region.meets(&table),
                        "region {start:#x}+{len:#x}, table at {at:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_refused_frame_is_explained() {
        let explained = |f: &CallFrame| {
            // SAFETY: every frame here names `HOST` or no table at all.
            assert!(!unsafe { is_sound(f) });
            // SAFETY: as above.
            match unsafe { problem(f) } {
                Some(ModuleError::Abi(why)) => why,
                other => panic!("not explained: {other:?}"),
            }
        };
        let why = explained(&frame((64, 32), (80, 64), (0, 0)));
        assert_eq!(why, "the call frame's arguments and arena overlap");
        let why = explained(&frame((0, 4), (64, 64), (0, 0)));
        assert!(why.contains("arguments pointer is null"), "{why}");
        let mut no_host = frame((0, 0), (64, 64), (0, 0));
        no_host.host = core::ptr::null();
        assert_eq!(
            explained(&no_host),
            "the host offers no services (a null HostApi)"
        );
        // A table out of alignment: nothing of it is read (before, its size was read
        // through the misaligned pointer, and a reference made: a debug build's check
        // aborted the process).
        let words = [0u64; 8];
        let mut misaligned = frame((0, 0), (64, 64), (0, 0));
        misaligned.host = words.as_ptr().cast::<u8>().wrapping_add(4).cast();
        let why = explained(&misaligned);
        assert!(why.contains("is not aligned to 8"), "{why}");
        let mut small = frame((0, 0), (64, 64), (0, 0));
        small.size -= 1;
        // SAFETY: as above.
        assert!(!unsafe { is_sound(&small) });
        // SAFETY: as above.
        let problem = unsafe { problem(&small) };
        assert!(problem.is_none(), "nothing is written to it");
    }
}
