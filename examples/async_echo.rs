//! Async exports on the module's executor, and how deadlines and backpressure look from
//! inside a module.
//!
//! Build: `cargo build -p memlink-examples --example async_echo`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use memlink_msdk::prelude::*;

static CANCELLED: AtomicU64 = AtomicU64::new(0);

/// Counts a future dropped before it finished: a cancelled call.
struct CountsCancellation;

impl Drop for CountsCancellation {
    fn drop(&mut self) {
        CANCELLED.fetch_add(1, Ordering::SeqCst);
    }
}

/// Returns `data` after sleeping `ms` milliseconds on the module's tokio timer. A
/// deadline that passes first cancels the sleep: the host gets `Timeout` at once, and
/// `cancelled` counts one more.
#[memlink_export]
pub async fn echo_after(_ctx: &CallContext, ms: u64, data: Vec<u8>) -> Result<Vec<u8>> {
    let pending = CountsCancellation;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    // Finished: not a cancellation.
    std::mem::forget(pending);
    Ok(data)
}

/// How many `echo_after` calls were cancelled at an `.await` (their future dropped
/// before it finished) since the module was loaded.
#[memlink_export]
pub fn cancelled(_ctx: &CallContext) -> Result<u64> {
    Ok(CANCELLED.load(Ordering::SeqCst))
}

/// Sleeps `ms` milliseconds asynchronously and returns the backpressure the call saw
/// when it started: many of these at once make the module's load visible.
#[memlink_export]
pub async fn hold(ctx: &CallContext, ms: u64) -> Result<f32> {
    let seen = ctx.backpressure();
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(seen)
}

static STARTED: AtomicU64 = AtomicU64::new(0);

/// Blocks the calling thread for `ms` milliseconds (a sync export doing slow work).
#[memlink_export]
pub fn slow_sync(_ctx: &CallContext, ms: u64) -> Result<u64> {
    STARTED.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(ms));
    Ok(ms)
}

/// How many `slow_sync` calls have started (a call refused at its deadline never does).
#[memlink_export]
pub fn slow_sync_started(_ctx: &CallContext) -> Result<u64> {
    Ok(STARTED.load(Ordering::SeqCst))
}

/// Milliseconds left before the call's deadline, if it has one.
#[memlink_export]
pub async fn time_left(ctx: &CallContext) -> Result<Option<u64>> {
    Ok(ctx.remaining_time().map(|d| d.as_millis() as u64))
}
