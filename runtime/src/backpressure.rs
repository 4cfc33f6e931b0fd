//! Backpressure: how loaded a module is, in `[0, 1]`, as a module reads it
//! (`CallContext::backpressure`).
//!
//! The figure is the larger of two loads: the module's calls in flight against its
//! concurrency limit (its admission gate), and the arenas piled up in the runtime's pool
//! against the pool's soft limit. Gathering it reads every thread's shard of the gate,
//! so the runtime does not send it with every call: a call's frame has the ABI's
//! `CALL_BACKPRESSURE_ON_REQUEST` flag, and the module asks `HostApi::backpressure`
//! the first time it wants the figure. docs/abi.md gives the formula and the policies.

use crate::admission::Gate;
use crate::pool::ArenaPool;

/// The load a call sees now: the larger of its module's and the pool's.
pub(crate) fn now(gate: &Gate, pool: &ArenaPool) -> f32 {
    load(gate.in_flight(), gate.limit()).max(load(pool.piled_up(), pool.soft_limit()))
}

/// Load as a value in `[0, 1]`: 0 when a call is alone, 1 when it took the last slot.
///
/// `running` counts the call itself, so `(running - 1) / (limit - 1)`.
pub(crate) fn load(running: usize, limit: usize) -> f32 {
    let others = running.saturating_sub(1) as f32;
    let room = limit.saturating_sub(1).max(1) as f32;
    (others / room).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_goes_from_zero_alone_to_one_full() {
        assert_eq!(load(1, 8), 0.0);
        assert_eq!(load(8, 8), 1.0);
        assert!((load(4, 8) - 3.0 / 7.0).abs() < 1e-6);
        assert_eq!(load(1, 1), 0.0);
        assert_eq!(load(50, 8), 1.0);
    }
}
