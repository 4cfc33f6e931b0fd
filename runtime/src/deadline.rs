//! Deadlines, decided in one place.
//!
//! A call's deadline is the caller's ([`CallOptions::deadline`]), else the runtime's
//! default timeout from the moment the call comes in, else none; a nested call keeps its
//! caller's. Everything else derives from it here:
//!
//! - the time a call was given, [`given`]: the deadline minus the moment the call comes
//!   in. A call the runtime refuses for its deadline (already passed, or passed while it
//!   waited for a slot) fails with `ModuleError::Timeout(given)`;
//! - the `timeout_ns` a module receives in its frame, [`timeout_ns`]: the time left when
//!   the frame is built (the module's own deadline, and what it reports as
//!   `Timeout(d)` when it gives up).
//!
//! So `Timeout(d)` always means "the call had `d` when it reached the one that gave up":
//! the runtime or the module. The two differ only by the time a call waited for a slot.

use std::time::{Duration, Instant};

use memlink_abi::NO_DEADLINE;

use crate::options::CallOptions;

/// The deadline of a call from the host: the caller's, or `default` from now; in either
/// case no later than `max` from now (a module's `max_call_time`).
#[inline]
pub(crate) fn decide(
    options: &CallOptions,
    default: Option<Duration>,
    max: Option<Duration>,
) -> Option<Instant> {
    let own = options
        .deadline
        .or_else(|| default.and_then(|t| Instant::now().checked_add(t)));
    within(own, max)
}

/// `deadline`, brought in to `max` from now if it is later or none: a call's deadline
/// under a module's `max_call_time`. A `max` too far off for the clock is no limit.
#[inline]
pub(crate) fn within(deadline: Option<Instant>, max: Option<Duration>) -> Option<Instant> {
    match max.and_then(|t| Instant::now().checked_add(t)) {
        Some(limit) => Some(deadline.map_or(limit, |d| d.min(limit))),
        None => deadline,
    }
}

/// The time a call with `deadline` has from now: zero once it has passed.
#[inline]
pub(crate) fn given(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// `CallFrame::timeout_ns` for `deadline`, measured now.
#[inline]
pub(crate) fn timeout_ns(deadline: Option<Instant>) -> u64 {
    match given(deadline) {
        None => NO_DEADLINE,
        // A deadline too far off for 64 bits of nanoseconds is as good as none, but is
        // still sent as a deadline.
        Some(left) => u64::try_from(left.as_nanos()).unwrap_or(NO_DEADLINE - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_deadline_wins_and_the_default_counts_from_now() {
        let soon = Instant::now() + Duration::from_secs(1);
        let own = CallOptions::default().deadline(soon);
        assert_eq!(
            decide(&own, Some(Duration::from_secs(60)), None),
            Some(soon)
        );
        let later = decide(&CallOptions::default(), Some(Duration::from_secs(60)), None).unwrap();
        assert!(later > soon);
        assert_eq!(decide(&CallOptions::default(), None, None), None);
    }

    #[test]
    fn the_max_call_time_brings_in_a_later_deadline_or_none_and_keeps_an_earlier_one() {
        let max = Some(Duration::from_secs(1));
        let before = Instant::now();
        let far = CallOptions::default().deadline(before + Duration::from_secs(3600));
        for options in [far, CallOptions::default()] {
            let capped = decide(&options, Some(Duration::from_secs(60)), max).unwrap();
            assert!(
                capped >= before + Duration::from_secs(1),
                "counted from now"
            );
            assert!(
                capped <= Instant::now() + Duration::from_secs(1),
                "{options:?}"
            );
        }
        let soon = Instant::now() + Duration::from_millis(5);
        let own = CallOptions::default().deadline(soon);
        assert_eq!(decide(&own, None, max), Some(soon));
        // A limit the clock cannot hold is none.
        assert_eq!(
            decide(&CallOptions::default(), None, Some(Duration::MAX)),
            None
        );
    }

    #[test]
    fn a_passed_deadline_gives_zero_and_none_is_no_deadline() {
        let past = Instant::now() - Duration::from_millis(5);
        assert_eq!(given(Some(past)), Some(Duration::ZERO));
        assert_eq!(timeout_ns(Some(past)), 0);
        assert_eq!(timeout_ns(None), NO_DEADLINE);
        assert_eq!(given(None), None);
    }
}
