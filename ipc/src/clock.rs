//! The clock deadlines cross the process boundary in.
//!
//! `CLOCK_MONOTONIC` is one clock for every process on the machine, so an absolute
//! deadline written by the client means the same instant to the daemon. `Instant` reads
//! the same clock on Linux but does not expose its value, so conversions go through the
//! time left.

use std::time::{Duration, Instant};

use rustix::time::{clock_gettime, ClockId};

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// `deadline` as nanoseconds on `CLOCK_MONOTONIC` (0 means none, so a deadline is at
/// least 1).
pub fn to_ns(deadline: Option<Instant>) -> u64 {
    match deadline {
        None => 0,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            let left = u64::try_from(left.as_nanos()).unwrap_or(u64::MAX);
            now_ns().saturating_add(left).max(1)
        }
    }
}

/// The instant nanoseconds `ns` on `CLOCK_MONOTONIC` stand for (`None` for 0).
pub fn from_ns(ns: u64) -> Option<Instant> {
    if ns == 0 {
        return None;
    }
    let left = Duration::from_nanos(ns.saturating_sub(now_ns()));
    let now = Instant::now();
    // A deadline too far to represent is no deadline a call can reach.
    Some(
        now.checked_add(left)
            .unwrap_or(now + Duration::from_secs(86_400 * 365)),
    )
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
        assert!(to_ns(Some(Instant::now() - Duration::from_secs(1))) <= now_ns());
    }
}
