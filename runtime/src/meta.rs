//! [`CallMeta`]: what travels with a call besides its arguments, down its chain.

use std::time::Instant;

/// What travels with a call besides its arguments.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallMeta {
    /// 0 for a call from the host, one more per module-to-module hop.
    pub(crate) depth: u32,
    pub(crate) trace_id: u64,
    pub(crate) span_id: u64,
    /// See `crate::deadline`.
    pub(crate) deadline: Option<Instant>,
}

impl CallMeta {
    /// A call from the host with no trace and no deadline.
    pub(crate) const PLAIN: CallMeta = CallMeta {
        depth: 0,
        trace_id: 0,
        span_id: 0,
        deadline: None,
    };
}
