//! Per-thread shards: a thread owns one of [`SHARDS`] - 1 slots for its lifetime, and
//! threads beyond those share the last. The built-in figures and the admission slots are
//! split this way, so a thread calling steadily touches only cache lines of its own.

use std::sync::atomic::{AtomicBool, Ordering};

/// Shards: threads own the first `SHARDS - 1`, one each; the last is shared by any
/// thread beyond those.
pub(crate) const SHARDS: usize = 16;
/// The shard of threads that own none.
pub(crate) const SHARED: usize = SHARDS - 1;

/// Which owned shards a live thread holds.
static CLAIMED: [AtomicBool; SHARED] = [const { AtomicBool::new(false) }; SHARED];

/// This thread's shard, and whether it owns it; released when the thread exits.
struct Slot(usize);

impl Slot {
    fn claim() -> Slot {
        let free = CLAIMED.iter().position(|c| {
            // Acquire: the shard's last owner's stores happen before ours.
            c.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        Slot(free.unwrap_or(SHARED))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(claim) = CLAIMED.get(self.0) {
            // Release: the next owner sees every figure this thread stored.
            claim.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static SLOT: Slot = Slot::claim();
}

/// This thread's shard; [`SHARED`] when it owns none (or is exiting).
pub(crate) fn shard_index() -> usize {
    SLOT.try_with(|s| s.0).unwrap_or(SHARED)
}
