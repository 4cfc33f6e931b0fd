//! [`CallOptions`]: what a caller says about one call besides its arguments.

use std::time::{Duration, Instant};

/// Per-call settings: the request's trace and span ids and its deadline.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// Trace id of the request (0: none); nested calls keep it.
    pub trace_id: u64,
    /// Span id of the caller (0: none).
    pub span_id: u64,
    /// When the call must be finished; the module sees the time left. It replaces the
    /// default timeouts, later or earlier than they would be. `None`: the module's default
    /// timeout (`ModuleSettings::default_timeout`), else the runtime's
    /// (`RuntimeConfig::default_timeout`), if either is set. Either way, a module with a
    /// most time a call is given (`ModuleSettings::max_call_time`, else
    /// `RuntimeConfig::max_call_time`) ends the call by then if that comes first.
    pub deadline: Option<Instant>,
}

impl CallOptions {
    /// Sets the trace and span ids.
    pub fn trace(mut self, trace_id: u64, span_id: u64) -> Self {
        self.trace_id = trace_id;
        self.span_id = span_id;
        self
    }

    /// Sets the deadline to `timeout` from now. A timeout later than the clock can
    /// hold (`Duration::MAX`) is the latest deadline it can: in effect none, and the
    /// runtime's default timeout does not apply (a module's `max_call_time` still does).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Some(after(Instant::now(), timeout));
        self
    }

    /// Sets the deadline.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Whether these are the default options: no trace, no deadline. Every field is
    /// named, so that an option added later does not build until it is considered here:
    /// a call this says carries nothing takes a path that reads none of its options.
    #[inline]
    pub(crate) fn carries_nothing(&self) -> bool {
        let CallOptions {
            trace_id,
            span_id,
            deadline,
        } = *self;
        trace_id == 0 && span_id == 0 && deadline.is_none()
    }
}

/// `timeout` after `now`, or the latest instant short of it that the clock can hold.
fn after(now: Instant, timeout: Duration) -> Instant {
    let mut timeout = timeout;
    loop {
        // Halving reaches zero, which every instant can take.
        match now.checked_add(timeout) {
            Some(at) => return at,
            None => timeout /= 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_past_the_clock_is_the_latest_deadline_it_can_hold() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(3)),
            now + Duration::from_secs(3)
        );
        let far = after(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(100 * 365 * 86_400));
        let options = CallOptions::default().timeout(Duration::MAX);
        assert!(options.deadline.unwrap() > now + Duration::from_secs(60));
    }
}
