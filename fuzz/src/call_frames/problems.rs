//! What the ABI says is wrong with a frame, and whether a refusal's message names it.

use memlink_msdk::abi::{CallFrame, HostApi};

/// What the frame gets wrong, per the ABI; the module must refuse it with `Abi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Problem {
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
pub(super) enum Region {
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
    pub(super) fn explains(self, message: &str) -> bool {
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

/// Everything the ABI says is wrong with `frame`: the module must refuse it if this is
/// not empty, and accept it (as far as the frame goes) if it is.
pub(super) fn problems(frame: &CallFrame) -> Vec<Problem> {
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
