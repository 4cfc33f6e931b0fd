//! A module that calls `greeter` (any 1.x version), and declares it: a runtime loads it
//! only once such a greeter is loaded, and a watched directory loads the greeter first.
//!
//! Build: `cargo build -p memlink-examples --example uses_greeter`.

use memlink_msdk::prelude::*;

/// The modules this one calls (what the runtime checks at load).
#[memlink_export]
pub fn memlink_dependencies(_ctx: &CallContext) -> Result<Vec<String>> {
    Ok(vec!["greeter@^1".to_owned()])
}

/// Adds through greeter 1.x's `add`.
#[memlink_export]
pub fn add_through(ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
    let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    caller.call_typed("greeter@^1", "add", &(a, b))
}

/// Calls `greeter`'s `linger` within this call's deadline: a nested call that stays in
/// flight for as long as its caller wants.
#[memlink_export]
pub fn linger_through(ctx: &CallContext) -> Result<()> {
    let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    caller.call_typed("greeter@^1", "linger", &())
}
