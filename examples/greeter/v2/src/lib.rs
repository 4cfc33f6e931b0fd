//! Version 2 of the module in `greeter/v1`: the same exports, and `greet`. With
//! `greeter/v1` and `greeter/v3`, what the reload tests switch between.
//!
//! Its state (a count of `hit` calls) crosses a reload when the host asks for it, through
//! `memlink_save_state` and `memlink_restore_state`; its health check says what
//! `set_ready` last told it. `square` is marked pure, and counts the times it really
//! ran (`squared`), so a host can see its result cache at work.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memlink_msdk::prelude::*;

static HITS: AtomicU64 = AtomicU64::new(0);
static NOT_READY: AtomicBool = AtomicBool::new(false);
static SQUARED: AtomicU64 = AtomicU64::new(0);

/// Which build this is.
#[memlink_export]
pub fn version(_ctx: &CallContext) -> Result<u32> {
    Ok(2)
}

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

/// Greets `name`: new in version 2.
#[memlink_export]
pub fn greet(_ctx: &CallContext, name: String) -> Result<String> {
    Ok(format!("hello, {name}"))
}
