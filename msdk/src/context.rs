//! The context every export receives: its arena, the host's load, trace ids, deadline
//! and a way to call other modules.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::abi;
use crate::arena::Arena;
use crate::caller::ModuleCaller;
use crate::frame_ref::FrameRef;
use crate::persist::Persistent;

/// What the host tells a call about the world it runs in.
///
/// An export receives it as its first parameter (`&CallContext` or `CallContext`). A
/// test builds one with [`CallContext::new`].
///
/// A context the call boundary makes reads the call's trace, span, depth, backpressure
/// and persistent region from the call's frame when asked: making it costs a few
/// stores, whatever the export uses.
#[derive(Debug, Clone)]
pub struct CallContext<'a> {
    arena: &'a Arena,
    caller: Option<&'a ModuleCaller>,
    info: Info<'a>,
    deadline: Option<Instant>,
    /// NaN until known: asked of the host on the first read when the host sends it on
    /// request (see `backpressure`).
    backpressure: Cell<f32>,
}

/// Where a context's description of its call comes from.
#[derive(Debug, Clone, Copy)]
enum Info<'a> {
    /// The frame the host made the call with, checked by the call boundary.
    Frame(FrameRef<'a>),
    /// Given by hand ([`CallContext::new`] and the `with_*` methods).
    Given {
        trace_id: u64,
        span_id: u64,
        depth: u32,
        persistent: Option<Persistent<'a>>,
    },
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
        CallContext {
            arena,
            caller,
            info: Info::Given {
                trace_id,
                span_id,
                depth: 0,
                persistent: None,
            },
            deadline,
            backpressure: Cell::new(clamp(backpressure)),
        }
    }

    /// The context of a call the boundary runs on `frame`.
    ///
    /// # Safety
    ///
    /// `frame` must have passed the boundary's checks (`frame::is_sound`), and its
    /// persistent region, when it has one, must meet [`Persistent::from_raw`]'s contract
    /// for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn for_call(
        arena: &'a Arena,
        frame: FrameRef<'a>,
        deadline: Option<Instant>,
        caller: &'a ModuleCaller,
    ) -> CallContext<'a> {
        CallContext {
            arena,
            caller: Some(caller),
            info: Info::Frame(frame),
            deadline,
            backpressure: Cell::new(f32::NAN),
        }
    }

    /// The context's description, given by hand from now on (keeping what it said).
    fn given(&mut self) -> (&mut u32, &mut Option<Persistent<'a>>) {
        if let Info::Frame(frame) = self.info {
            self.info = Info::Given {
                trace_id: frame.trace_id(),
                span_id: frame.span_id(),
                depth: frame.depth(),
                persistent: self.persistent(),
            };
        }
        match &mut self.info {
            Info::Given {
                depth, persistent, ..
            } => (depth, persistent),
            Info::Frame(_) => unreachable!("made given above"),
        }
    }

    /// The same context at nesting depth `depth` (0 for a call straight from the host).
    pub fn with_depth(mut self, depth: u32) -> CallContext<'a> {
        *self.given().0 = depth;
        self
    }

    /// The same context with the module's persistent region.
    pub fn with_persistent(mut self, persistent: Persistent<'a>) -> CallContext<'a> {
        *self.given().1 = Some(persistent);
        self
    }

    /// The module's persistent region: memory that outlives the call, for state built
    /// once (see [`crate::persist`]). `None` when the host gives none, or one too small
    /// to use (fewer than 96 bytes: the header, its bitmap and one record).
    pub fn persistent(&self) -> Option<Persistent<'a>> {
        match self.info {
            // SAFETY: `for_call`'s caller vouched for the frame's region for `'a`.
            Info::Frame(frame) => unsafe {
                Persistent::from_raw(frame.persistent(), frame.persistent_len())
            },
            Info::Given { persistent, .. } => persistent,
        }
    }

    /// The call's scratch arena; everything in it is gone after the call.
    pub fn arena(&self) -> &'a Arena {
        self.arena
    }

    /// The host's load on this module: 0 idle, 1 saturated. memlink's runtime measures
    /// it the first time a call asks (the call itself counts as running) and later reads
    /// return that figure; a context made with [`new`](CallContext::new) returns the value
    /// given there. A call alone reads 0, so under a concurrency limit of one every call
    /// does, however many wait behind it (docs/abi.md, "Backpressure").
    pub fn backpressure(&self) -> f32 {
        let known = self.backpressure.get();
        if !known.is_nan() {
            return known;
        }
        let value = match self.info {
            Info::Frame(frame) if frame.flags() & abi::CALL_BACKPRESSURE_ON_REQUEST == 0 => {
                clamp(frame.backpressure())
            }
            _ => clamp(self.caller.map_or(0.0, ModuleCaller::backpressure)),
        };
        self.backpressure.set(value);
        value
    }

    /// Trace id of the request this call belongs to (0: none).
    pub fn trace_id(&self) -> u64 {
        match self.info {
            Info::Frame(frame) => frame.trace_id(),
            Info::Given { trace_id, .. } => trace_id,
        }
    }

    /// Span id of the caller (0: none).
    pub fn span_id(&self) -> u64 {
        match self.info {
            Info::Frame(frame) => frame.span_id(),
            Info::Given { span_id, .. } => span_id,
        }
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
        match self.info {
            Info::Frame(frame) => frame.depth(),
            Info::Given { depth, .. } => depth,
        }
    }
}

/// A backpressure figure in `[0, 1]`; NaN reads as 0.
fn clamp(backpressure: f32) -> f32 {
    if backpressure.is_nan() {
        0.0
    } else {
        backpressure.clamp(0.0, 1.0)
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
