//! The context every export receives: its arena, the host's load, trace ids, deadline
//! and a way to call other modules.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::arena::Arena;
use crate::caller::ModuleCaller;
use crate::persist::Persistent;

/// What the host tells a call about the world it runs in.
///
/// An export receives it as its first parameter (`&CallContext` or `CallContext`). A
/// test builds one with [`CallContext::new`].
#[derive(Debug, Clone)]
pub struct CallContext<'a> {
    arena: &'a Arena,
    /// NaN until asked for when the host sends it on request (see `backpressure`).
    backpressure: Cell<f32>,
    trace_id: u64,
    span_id: u64,
    deadline: Option<Instant>,
    caller: Option<&'a ModuleCaller>,
    depth: u32,
    persistent: Option<Persistent<'a>>,
    /// The host's persistent region as the frame gave it, made into a [`Persistent`] only
    /// when the export asks for it (null when there is none, or when `persistent` was set
    /// by hand).
    persistent_raw: (*mut u8, usize),
}

impl<'a> CallContext<'a> {
    /// A context over `arena`, with the host's `backpressure` in `[0, 1]` (clamped; NaN
    /// reads as 0), the request's `trace_id` and `span_id`, an optional `deadline` and an
    /// optional [`ModuleCaller`] for nested calls.
    pub fn new(
        arena: &'a Arena,
        backpressure: f32,
        trace_id: u64,
        span_id: u64,
        deadline: Option<Instant>,
        caller: Option<&'a ModuleCaller>,
    ) -> CallContext<'a> {
        let backpressure = if backpressure.is_nan() {
            0.0
        } else {
            backpressure.clamp(0.0, 1.0)
        };
        CallContext {
            arena,
            backpressure: Cell::new(backpressure),
            trace_id,
            span_id,
            deadline,
            caller,
            depth: 0,
            persistent: None,
            persistent_raw: (core::ptr::null_mut(), 0),
        }
    }

    /// The context of a call the boundary runs: everything from its checked frame, the
    /// persistent region as it lies.
    ///
    /// # Safety
    ///
    /// A non-null `persistent.0` must meet [`Persistent::from_raw`]'s contract for `'a`.
    #[allow(clippy::too_many_arguments)] // one field each, of one frame
    pub(crate) unsafe fn for_call(
        arena: &'a Arena,
        backpressure: Option<f32>,
        trace_id: u64,
        span_id: u64,
        deadline: Option<Instant>,
        caller: &'a ModuleCaller,
        depth: u32,
        persistent: (*mut u8, usize),
    ) -> CallContext<'a> {
        CallContext {
            arena,
            // NaN: not known yet, asked of the host on the first read.
            backpressure: Cell::new(backpressure.map_or(f32::NAN, |b| {
                if b.is_nan() {
                    0.0
                } else {
                    b.clamp(0.0, 1.0)
                }
            })),
            trace_id,
            span_id,
            deadline,
            caller: Some(caller),
            depth,
            persistent: None,
            persistent_raw: persistent,
        }
    }

    /// The same context at nesting depth `depth` (0 for a call straight from the host).
    pub fn with_depth(mut self, depth: u32) -> CallContext<'a> {
        self.depth = depth;
        self
    }

    /// The same context with the module's persistent region.
    pub fn with_persistent(mut self, persistent: Persistent<'a>) -> CallContext<'a> {
        self.persistent = Some(persistent);
        self
    }

    /// The module's persistent region: memory that outlives the call, for state built
    /// once (see [`crate::persist`]). `None` when the host gives none.
    pub fn persistent(&self) -> Option<Persistent<'a>> {
        // SAFETY: `persistent_raw` is null (a context made by hand) or set by `for_call`,
        // whose caller vouched for it for `'a`.
        self.persistent.or_else(|| unsafe {
            Persistent::from_raw(self.persistent_raw.0, self.persistent_raw.1)
        })
    }

    /// The call's scratch arena; everything in it is gone after the call.
    pub fn arena(&self) -> &'a Arena {
        self.arena
    }

    /// The host's load on this module: 0 idle, 1 saturated. memlink's runtime measures
    /// it the first time a call asks (the call itself counts as running) and later reads
    /// return that figure; a context made with [`new`](CallContext::new) returns the value
    /// given there.
    pub fn backpressure(&self) -> f32 {
        let known = self.backpressure.get();
        if !known.is_nan() {
            return known;
        }
        let asked = self.caller.map_or(0.0, ModuleCaller::backpressure);
        let value = if asked.is_nan() {
            0.0
        } else {
            asked.clamp(0.0, 1.0)
        };
        self.backpressure.set(value);
        value
    }

    /// Trace id of the request this call belongs to (0: none).
    pub fn trace_id(&self) -> u64 {
        self.trace_id
    }

    /// Span id of the caller (0: none).
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// When the call must be finished, if it has a deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline; `Some(ZERO)` once it has passed, `None` without a
    /// deadline.
    pub fn remaining_time(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// A handle for calling other modules through the host, when the host offers it.
    pub fn module_caller(&self) -> Option<&'a ModuleCaller> {
        self.caller
    }

    /// How deep in a chain of module-to-module calls this call is (0: from the host).
    pub fn call_depth(&self) -> u32 {
        self.depth
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_matches_the_seed_and_clamps() {
        let arena = Arena::empty();
        let ctx = CallContext::new(&arena, 0.0, 7, 9, None, None);
        assert_eq!((ctx.trace_id(), ctx.span_id()), (7, 9));
        assert!(ctx.remaining_time().is_none() && !ctx.is_expired());
        assert!(ctx.module_caller().is_none());
        assert_eq!(
            CallContext::new(&arena, 3.0, 0, 0, None, None).backpressure(),
            1.0
        );
        assert_eq!(
            CallContext::new(&arena, f32::NAN, 0, 0, None, None).backpressure(),
            0.0
        );
    }

    #[test]
    fn deadlines_count_down() {
        let arena = Arena::empty();
        let later = Instant::now() + Duration::from_secs(60);
        let ctx = CallContext::new(&arena, 0.5, 0, 0, Some(later), None);
        let left = ctx.remaining_time().unwrap();
        assert!(left > Duration::from_secs(59) && left <= Duration::from_secs(60));
        assert!(!ctx.is_expired());
        let past = CallContext::new(&arena, 0.5, 0, 0, Some(Instant::now()), None);
        assert!(past.is_expired());
        assert_eq!(past.remaining_time(), Some(Duration::ZERO));
    }
}
