//! Every code snippet of the README published with memlink-msdk 0.1.0 on crates.io,
//! copied unchanged, in one module crate that depends on memlink-msdk by path. If this
//! crate stops compiling, or its test stops passing, the README's promise is broken.
//!
//! The Troubleshooting snippets live in the macro's UI tests, one file each, since
//! both pairs name their exports `bad` and `good`: the "Wrong" halves
//! (`msdk-macros/tests/ui/seed_wrong_*.rs`) must fail to compile with the words the
//! README heads them with, the "Correct" halves (`tests/ui/pass/seed_correct_*.rs`)
//! must compile.

// --- Quick Start: Basic Function Export ---
use memlink_msdk::prelude::*;

#[memlink_export]
pub fn echo(_ctx: &CallContext, input: String) -> Result<String> {
    Ok(input)
}

#[memlink_export]
pub fn add(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
    Ok(a + b)
}

// --- Async Functions ---
#[memlink_export]
pub async fn async_process(_ctx: &CallContext, data: Vec<u8>) -> Result<Vec<u8>> {
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    Ok(data)
}

// --- Arena Allocation ---
#[memlink_export]
pub fn use_arena(ctx: &CallContext) -> Result<u64> {
    let slot = ctx
        .arena()
        .alloc::<u64>()
        .ok_or(ModuleError::QuotaExceeded)?;
    unsafe {
        std::ptr::write(slot, 42);
    }
    Ok(*slot)
}

// --- Custom Data Structures ---
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct UserData {
    pub id: u32,
    pub name: String,
    pub score: u64,
}

#[memlink_export]
pub fn process_user(_ctx: &CallContext, user: UserData) -> Result<UserData> {
    Ok(UserData {
        id: user.id,
        name: user.name.to_uppercase(),
        score: user.score * 2,
    })
}

// --- Nested Module Calls ---
#[memlink_export]
pub async fn call_other(ctx: &CallContext, module: String) -> Result<Vec<u8>> {
    let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    caller.call(&module, "method", b"args").await
}

// --- Backpressure and Deadlines ---
#[memlink_export]
pub fn check_pressure(ctx: &CallContext) -> Result<f32> {
    Ok(ctx.backpressure())
}

#[memlink_export]
pub fn check_deadline(ctx: &CallContext) -> Result<Option<u64>> {
    Ok(ctx.remaining_time().map(|d| d.as_millis() as u64))
}

// --- Logging and Metrics ---
#[memlink_export]
pub fn log_and_measure(_ctx: &CallContext) -> Result<()> {
    info("Processing request", &[("user", "alice")]);

    increment_counter("requests_total", 1);
    observe_histogram("request_latency", 42.0);

    Ok(())
}

// --- Error Handling ---
#[memlink_export]
pub fn may_fail(_ctx: &CallContext, value: u32) -> Result<u32> {
    if value > 100 {
        return Err(ModuleError::QuotaExceeded);
    }
    Ok(value * 2)
}

// --- Testing ---
#[cfg(test)]
mod tests {
    use crate::echo;
    use memlink_msdk::prelude::*;

    fn create_test_context() -> CallContext<'static> {
        let arena = Box::leak(Box::new(unsafe {
            let buf = vec![0u8; 8192].into_boxed_slice();
            let ptr = Box::into_raw(buf) as *mut u8;
            Arena::new(ptr, 8192)
        }));
        CallContext::new(arena, 0.0, 0, 0, None, None)
    }

    #[test]
    fn test_echo() {
        let ctx = create_test_context();
        let result = echo(&ctx, "hello".to_string()).unwrap();
        assert_eq!(result, "hello");
    }
}
