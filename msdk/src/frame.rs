//! Checking a call frame before anything it points to is read.
//!
//! A module trusts no frame: the host table's size, then each region (arguments, arena,
//! persistent region) for a null pointer with a length, a length over `isize::MAX` or a
//! range that wraps around the address space, the arena's and the persistent region's
//! alignment, and that no two regions share a byte. Every check is a comparison or two.

use crate::abi::{CallFrame, HostApi};
use crate::error::ModuleError;

/// The host's service table, if the frame names one that is large enough for this
/// module.
///
/// # Safety
///
/// `host` must be null or point to a [`HostApi`] valid for `'a` (`memlink_call`'s
/// contract).
#[inline]
pub(crate) unsafe fn checked_host<'a>(host: *const HostApi) -> Result<&'a HostApi, ModuleError> {
    // SAFETY: the caller's contract.
    match unsafe { host.as_ref() } {
        Some(h) if (h.size as usize) >= size_of::<HostApi>() => Ok(h),
        other => Err(unusable_host(other)),
    }
}

#[cold]
fn unusable_host(host: Option<&HostApi>) -> ModuleError {
    match host {
        None => abi_error("the call frame has no host services"),
        Some(h) => abi_error(&format!(
            "the host's service table is {} bytes, this module needs {}",
            h.size,
            size_of::<HostApi>()
        )),
    }
}

/// The memory regions of a frame, proven well formed and apart by [`check_frame`].
pub(crate) struct Regions {
    pub(crate) args: *const u8,
    pub(crate) args_len: usize,
    pub(crate) arena: *mut u8,
    pub(crate) arena_len: usize,
}

/// Checks the frame's regions before anything is read from them: each is non-null when
/// it has bytes, no longer than `isize::MAX`, does not wrap around the address space,
/// and no two overlap (the arguments must stay as they were validated while the call
/// allocates in the arena, and the persistent region is shared by every call). Every
/// check is a comparison or two, and nothing the frame points to is read.
#[inline]
pub(crate) fn check_frame(frame: &CallFrame) -> Result<Regions, ModuleError> {
    let args = (frame.args.addr(), frame.args_len);
    let arena = (frame.arena.addr(), frame.arena_len);
    let persistent = (frame.persistent.addr(), frame.persistent_len);
    let bad = malformed(args)
        | malformed(arena)
        | malformed(persistent)
        | (arena.1 > 0 && arena.0 % 16 != 0)
        | (persistent.1 > 0 && persistent.0 % 64 != 0)
        | share_a_byte(args, arena)
        | share_a_byte(args, persistent)
        | share_a_byte(arena, persistent);
    if bad {
        return Err(explain(frame));
    }
    Ok(Regions {
        args: frame.args,
        args_len: frame.args_len,
        arena: frame.arena,
        arena_len: frame.arena_len,
    })
}

/// Whether a region of `len` bytes at `addr` is one no reference may be made to: null
/// with bytes, longer than `isize::MAX`, or running past the end of the address space.
#[inline]
fn malformed((addr, len): (usize, usize)) -> bool {
    len != 0 && (addr == 0 || isize::try_from(len).is_err() || addr.checked_add(len).is_none())
}

/// Whether two regions, neither malformed, share a byte (an empty one shares none).
#[inline]
fn share_a_byte((a, a_len): (usize, usize), (b, b_len): (usize, usize)) -> bool {
    a_len != 0 && b_len != 0 && a < b.wrapping_add(b_len) && b < a.wrapping_add(a_len)
}

/// Says what is wrong with a frame `check_frame` refused: the first problem, in the order
/// a reader would look for it.
#[cold]
fn explain(frame: &CallFrame) -> ModuleError {
    let problem = || -> Result<(), ModuleError> {
        let args = region(frame.args.addr(), frame.args_len, "arguments")?;
        let arena = region(frame.arena.addr(), frame.arena_len, "arena")?;
        let persistent =
            region(frame.persistent.addr(), frame.persistent_len, "persistent region")?;
        if frame.arena_len > 0 && frame.arena.addr() % 16 != 0 {
            return Err(abi_error("the call frame's arena is not aligned to 16"));
        }
        if frame.persistent_len > 0 && frame.persistent.addr() % 64 != 0 {
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
        Ok(())
    };
    match problem() {
        Err(e) => e,
        Ok(()) => abi_error("the call frame is malformed"),
    }
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
