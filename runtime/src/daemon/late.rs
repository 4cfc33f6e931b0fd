//! When a call is late: the watchdog's rule, which an orphaned worker applies itself.

use std::sync::atomic::Ordering;

use memlink_ipc::figures::{Row, NO_DEADLINE};

/// A call of `row` past its deadline by more than `grace` at `now`: its slot, and by how
/// many milliseconds.
pub(super) fn late_call(row: &Row, now: u64, grace: u64) -> Option<(usize, u64)> {
    row.running.iter().enumerate().find_map(|(slot, running)| {
        let deadline = running.load(Ordering::Relaxed);
        (deadline != 0 && deadline != NO_DEADLINE && now > deadline.saturating_add(grace))
            .then(|| (slot, (now - deadline) / 1_000_000))
    })
}
