//! The clock deadlines cross the process boundary in.
//!
//! `CLOCK_MONOTONIC` is one clock for every process on the machine, so an absolute
//! deadline written by the client means the same instant to the daemon. `Instant` reads
//! the same clock on Linux but does not expose its value, so conversions go through a
//! pair of the two read together once.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::time::{clock_gettime, ClockId};

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub fn now_ns() -> u64 {
    read_ns(ClockId::Monotonic)
}

/// Nanoseconds on `CLOCK_MONOTONIC_COARSE`: the same clock as [`now_ns`], read without
/// the time-stamp counter, so in a few nanoseconds, and at the resolution of the
/// kernel's tick (a few milliseconds): for checks measured in tens of milliseconds.
pub fn coarse_ns() -> u64 {
    read_ns(ClockId::MonotonicCoarse)
}

fn read_ns(clock: ClockId) -> u64 {
    let t = clock_gettime(clock);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// An `Instant` and the nanoseconds on `CLOCK_MONOTONIC` at (within nanoseconds of) the
/// same moment, read once per process. `Instant` reads `CLOCK_MONOTONIC` on Linux (std
/// documents the system call each platform's `Instant` uses), so the two run together,
/// and each converts to the other by its distance from this pair, with no clock read.
fn base() -> (Instant, u64) {
    static BASE: OnceLock<(Instant, u64)> = OnceLock::new();
    *BASE.get_or_init(|| {
        // The pair is as close as the window between the two readings of the other clock
        // around the instant: the narrowest of a few tries is kept, since a try the
        // thread was preempted in (or the first, which also finds the clock's code) is
        // wide, tens of microseconds on a loaded machine.
        let mut best = paired();
        for _ in 0..15 {
            let next = paired();
            if next.2 < best.2 {
                best = next;
            }
        }
        (best.0, best.1)
    })
}

/// An `Instant` read between two readings of `CLOCK_MONOTONIC`, the midpoint of those,
/// and the window between them (the most the midpoint can be off by twice).
fn paired() -> (Instant, u64, u64) {
    let before = now_ns();
    let at = Instant::now();
    let after = now_ns();
    let window = after.saturating_sub(before);
    (at, before + window / 2, window)
}

/// `deadline` as nanoseconds on `CLOCK_MONOTONIC` (0 means none, so a deadline is at
/// least 1).
pub fn to_ns(deadline: Option<Instant>) -> u64 {
    let Some(d) = deadline else { return 0 };
    let (at, ns) = base();
    let ns = match d.checked_duration_since(at) {
        Some(after) => ns.saturating_add(u64::try_from(after.as_nanos()).unwrap_or(u64::MAX)),
        None => ns.saturating_sub(u64::try_from((at - d).as_nanos()).unwrap_or(u64::MAX)),
    };
    ns.max(1)
}

/// The instant nanoseconds `ns` on `CLOCK_MONOTONIC` stand for (`None` for 0).
pub fn from_ns(ns: u64) -> Option<Instant> {
    if ns == 0 {
        return None;
    }
    let (at, base_ns) = base();
    Some(if ns >= base_ns {
        // A deadline too far to represent is no deadline a call can reach.
        let after = Duration::from_nanos(ns - base_ns);
        at.checked_add(after)
            .unwrap_or(at + Duration::from_secs(86_400 * 365))
    } else {
        // Before the process began: long past, as good as the earliest instant known.
        at.checked_sub(Duration::from_nanos(base_ns - ns))
            .unwrap_or(at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_survives_the_round_trip() {
        assert_eq!(to_ns(None), 0);
        assert_eq!(from_ns(0), None);
        let d = Instant::now() + Duration::from_millis(500);
        let back = from_ns(to_ns(Some(d))).unwrap();
        let diff = if back > d { back - d } else { d - back };
        assert!(diff < Duration::from_millis(50), "{diff:?}");
        // The conversion reads no clock, so it holds only if `Instant` runs on
        // `CLOCK_MONOTONIC`: an instant read now converts to the clock's reading now.
        let (before, converted, after) = (now_ns(), to_ns(Some(Instant::now())), now_ns());
        assert!(
            before <= converted + 1_000 && converted <= after + 1_000,
            "{before} {converted} {after}"
        );
        assert!(to_ns(Some(Instant::now() - Duration::from_secs(1))) <= now_ns());
    }
}
