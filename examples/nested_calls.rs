//! Module-to-module calls through the host.
//!
//! Build: `cargo build -p memlink-examples --example nested_calls`. Load it next to
//! another module (say `basic`) and call `relay`; load two copies of it under two names
//! to have them call each other with `bounce`.

use memlink_msdk::prelude::*;

/// Calls `method` of `module` with raw `args` and returns the callee's bytes as they
/// are (the seed README's nested call, with the target chosen by the caller).
#[memlink_export]
pub async fn relay(
    ctx: &CallContext,
    module: String,
    method: String,
    args: Vec<u8>,
) -> Result<Vec<u8>> {
    let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    caller.call(&module, &method, &args).await
}

/// [`relay`] without copies of its own: synchronous, with the names and the arguments
/// borrowed from the call's bytes. What it costs beyond calling the callee directly is
/// the nested call itself, and the callee's result, which the caller receives in a
/// `Vec`.
#[memlink_export]
pub fn relay_borrowed(
    ctx: &CallContext,
    module: &str,
    method: &str,
    args: &[u8],
) -> Result<Vec<u8>> {
    let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    caller.call_blocking(module, method, args)
}

/// [`relay_borrowed`] that hands the callee's result on from its own arena: the callee's
/// bytes are read where the callee left them and copied once, into this call's arena,
/// where the host reads them. Nothing is allocated. A result larger than the room left in
/// the arena is refused with `QuotaExceeded`.
#[memlink_export]
pub fn relay_in_arena<'a>(
    ctx: &CallContext<'a>,
    module: &str,
    method: &str,
    args: &[u8],
) -> Result<&'a [u8]> {
    let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    let arena = ctx.arena();
    let kept = caller.call_in_place(module, method, args, |out| arena.alloc_slice_copy(out))?;
    kept.map(|out| &*out).ok_or(ModuleError::QuotaExceeded)
}

/// Adds through another module's `add`, with typed arguments and result.
#[memlink_export]
pub fn add_via(ctx: &CallContext, module: String, a: u32, b: u32) -> Result<u32> {
    let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    caller.call_typed(&module, "add", &(a, b))
}

/// Calls `peer`'s `bounce` with `n - 1`, swapping the names, until `n` is 0; returns
/// the call depth reached. Two modules bouncing calls off each other exercise
/// re-entrancy (A calls B calls A) and the host's depth limit.
#[memlink_export]
pub fn bounce(ctx: &CallContext, n: u32, me: String, peer: String) -> Result<u32> {
    if n == 0 {
        return Ok(ctx.call_depth());
    }
    let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    caller.call_typed(&peer, "bounce", &(n - 1, &peer, &me))
}
