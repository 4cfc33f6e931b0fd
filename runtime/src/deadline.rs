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

/// The deadline of a call from the host: the caller's, or `default` from now.
#[inline]
pub(crate) fn decide(options: &CallOptions, default: Option<Duration>) -> Option<Instant> {
    options
        .deadline
        .or_else(|| default.and_then(|t| Instant::now().checked_add(t)))
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
        assert_eq!(decide(&own, Some(Duration::from_secs(60))), Some(soon));
        let later = decide(&CallOptions::default(), Some(Duration::from_secs(60))).unwrap();
        assert!(later > soon);
        assert_eq!(decide(&CallOptions::default(), None), None);
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
