//! How much of the calling thread's stack a decode that recurses has left.
//!
//! Levels are not bytes: how much stack a level of a value takes depends on its types
//! and the build (a debug build's derived `Deserialize` of a struct with a few arrays in
//! it took 25 to 58 KiB a level), so a value well within the decoders' nesting limits
//! still overflowed a thread's stack (2 MiB by default, less where a nested call runs,
//! 128 KiB on some threads a C library makes). The decoders look at the stack at each
//! level and give up while what is left is less than twice what a level of the value
//! has taken on average, plus [`SLACK`]. That is a measure, not a proof: a level that
//! takes far more than the ones before it can still find too little left. A decode on a
//! stack other than the thread's (a coroutine's) is not judged.

use std::cell::Cell;

/// Stack a level leaves free below it beyond twice a level's average: room for the
/// decoder's own frames of the next level and for the refusal's way out.
pub(crate) const SLACK: usize = 32 * 1024;

thread_local! {
    /// The lowest address of this thread's stack: 0 before it is asked for,
    /// `usize::MAX` when it cannot be known. Asked once a thread (on the main thread the
    /// C library reads `/proc/self/maps` for it).
    static BOTTOM: Cell<usize> = const { Cell::new(0) };
}

/// Why a decode that began at stack address `start` (a local of the function that
/// decodes), now `levels` levels in, should stop: `Some((left, per_level))` in bytes,
/// when what is left is less than twice the levels' average plus [`SLACK`]. `None` when
/// there is room, or when the stack is not the thread's or its bounds are not known.
#[inline]
pub(crate) fn too_short(start: usize, levels: usize) -> Option<(usize, usize)> {
    // Miri runs no foreign calls, and its stacks are not the thread's.
    if cfg!(miri) {
        return None;
    }
    let here = here();
    let bottom = bottom()?;
    // Below the thread's stack, or above where the decode began, the level runs on a
    // stack other than the one measured.
    if here < bottom || here > start {
        return None;
    }
    let (left, used) = (here - bottom, start - here);
    let levels = levels.max(1);
    // `left < 2 * used / levels + SLACK`, without a division.
    let short = left.saturating_mul(levels)
        < used
            .saturating_mul(2)
            .saturating_add(SLACK.saturating_mul(levels));
    short.then(|| (left, used / levels))
}

/// Where the stack is now: the address of a local.
#[inline(always)]
fn here() -> usize {
    let here = 0u8;
    core::hint::black_box(&raw const here).addr()
}

/// This thread's stack bottom, asked once a thread; `None` when it cannot be known (or
/// the thread's locals are gone).
fn bottom() -> Option<usize> {
    let bottom = BOTTOM
        .try_with(|b| match b.get() {
            0 => {
                let bottom = stack_bottom().unwrap_or(usize::MAX).max(1);
                b.set(bottom);
                bottom
            }
            bottom => bottom,
        })
        .ok()?;
    (bottom != usize::MAX).then_some(bottom)
}

/// The lowest address of the calling thread's stack (which grows down on every target
/// memlink runs on), asked of the C library: `None` where it cannot say.
#[cfg(target_os = "linux")]
fn stack_bottom() -> Option<usize> {
    let mut attr = core::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: `attr` is a place for the attributes, which `pthread_getattr_np` fills
    // (initializes) when it returns 0.
    if unsafe { libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) } != 0 {
        return None;
    }
    let (mut addr, mut size) = (core::ptr::null_mut(), 0);
    // SAFETY: `attr` was initialized above; `addr` and `size` are places for the answer.
    let got = unsafe { libc::pthread_attr_getstack(attr.as_ptr(), &raw mut addr, &raw mut size) };
    // SAFETY: initialized above, and destroyed once.
    unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
    (got == 0 && size > 0).then(|| addr.addr())
}

/// Elsewhere the stack's bounds are not asked for: only the levels are counted.
#[cfg(not(target_os = "linux"))]
fn stack_bottom() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decode is short of room only when the stack left is less than twice what its
    /// levels took on average, plus the slack: on a thread of 256 KiB, one level that
    /// took 48 KiB or more is, and the same at the start is not.
    #[test]
    #[cfg_attr(miri, ignore)] // foreign calls
    fn room_is_measured_against_the_threads_own_stack() {
        fn deep(start: usize, n: u32) -> Option<(usize, usize)> {
            let pad = core::hint::black_box([0u8; 4096]);
            if n == 0 {
                return too_short(start, 1);
            }
            let found = deep(start, n - 1);
            core::hint::black_box(&pad);
            found
        }
        let asked = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let start = here();
                (too_short(start, 1), deep(start, 12))
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(asked.0, None, "room at the start");
        let (left, per_level) = asked
            .1
            .expect("12 frames of 4 KiB as one level leave too little");
        assert!(
            left < 256 * 1024 && per_level >= 12 * 4096,
            "{left} {per_level}"
        );
    }
}
