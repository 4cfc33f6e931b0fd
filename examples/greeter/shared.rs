// The exports every compatible version of `greeter` shares (`v1` and `v2` include this
// file), so that the two builds differ only where the versions do.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memlink_msdk::prelude::*;

static HITS: AtomicU64 = AtomicU64::new(0);
static NOT_READY: AtomicBool = AtomicBool::new(false);
static SQUARED: AtomicU64 = AtomicU64::new(0);
static LINGERING: AtomicU64 = AtomicU64::new(0);

/// Adds two numbers, as every version does.
#[memlink_export]
pub fn add(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
    Ok(a.wrapping_add(b))
}

/// Counts its calls and returns the count.
#[memlink_export]
pub fn hit(_ctx: &CallContext) -> Result<u64> {
    Ok(HITS.fetch_add(1, Ordering::Relaxed) + 1)
}

/// Hands the count to the version replacing this one.
#[memlink_export]
pub fn memlink_save_state(_ctx: &CallContext) -> Result<Vec<u8>> {
    Ok(HITS.load(Ordering::Relaxed).to_le_bytes().to_vec())
}

/// Takes the count of the version this one replaces.
#[memlink_export]
pub fn memlink_restore_state(_ctx: &CallContext, state: Vec<u8>) -> Result<()> {
    let bytes: [u8; 8] = state
        .try_into()
        .map_err(|_| ModuleError::Failed("the state is not a count".into()))?;
    HITS.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
    Ok(())
}

/// Tells the module whether to report itself ready.
#[memlink_export]
pub fn set_ready(_ctx: &CallContext, ready: bool) -> Result<()> {
    NOT_READY.store(!ready, Ordering::Relaxed);
    Ok(())
}

/// The module's health check: ready unless `set_ready(false)` said otherwise.
#[memlink_export]
pub fn memlink_health(_ctx: &CallContext) -> Result<()> {
    if NOT_READY.load(Ordering::Relaxed) {
        return Err(ModuleError::Failed("told it is not ready".into()));
    }
    Ok(())
}

/// `x * x`: marked pure, so a host with a result cache may answer it without calling.
#[memlink_export(pure)]
pub fn square(_ctx: &CallContext, x: u64) -> Result<u64> {
    SQUARED.fetch_add(1, Ordering::Relaxed);
    Ok(x.wrapping_mul(x))
}

/// How many times `square` ran.
#[memlink_export]
pub fn squared(_ctx: &CallContext) -> Result<u64> {
    Ok(SQUARED.load(Ordering::Relaxed))
}

/// Stays in flight until its call's deadline passes (then the host reports the
/// timeout): a call that runs for as long as its caller wants, for a host checking what
/// waits for calls in flight. Refused at once without a deadline.
#[memlink_export]
pub fn linger(ctx: &CallContext) -> Result<()> {
    if ctx.deadline().is_none() {
        return Err(ModuleError::Failed("linger needs a deadline".into()));
    }
    LINGERING.fetch_add(1, Ordering::Relaxed);
    while !ctx.is_expired() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    LINGERING.fetch_sub(1, Ordering::Relaxed);
    Ok(())
}

/// How many `linger` calls are in flight in this image.
#[memlink_export]
pub fn lingering(_ctx: &CallContext) -> Result<u64> {
    Ok(LINGERING.load(Ordering::Relaxed))
}

/// `name`'s length in thousands plus `tag`'s: its arguments are an archive (of
/// `(String, Vec<u8>)`), read in place.
#[memlink_export]
pub fn measure(_ctx: &CallContext, name: &str, tag: &[u8]) -> Result<u64> {
    Ok(name.len() as u64 * 1000 + tag.len() as u64)
}
