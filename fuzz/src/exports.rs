//! Exports registered in this crate's method table, one per argument and result shape
//! the SDK supports. `call_frames` calls them through `memlink_call`.
//!
//! `boom` panics. cargo-fuzz builds with `panic = "abort"`, where nothing can catch a
//! panic, so fuzzing builds never call it (see [`callable`]); it stays in the table so
//! that an input picks the same method in a fuzzing build and in `cargo test`, which
//! does call it.

use memlink_examples::zero_copy_types::Point;
use memlink_msdk::prelude::*;
use memlink_msdk::rkyv::Archived;

use crate::types::{Profile, Tree};

/// Largest result `big` makes: far larger than any arena the harness passes, small
/// enough to keep the fuzzer fast.
pub const BIG_LIMIT: u32 = 1 << 20;

/// Raw `String` in, raw `String` out.
#[memlink_export]
pub fn echo(_ctx: &CallContext, input: String) -> Result<String> {
    Ok(input)
}

/// Raw `&[u8]` in, raw `Vec<u8>` out, reversed.
#[memlink_export]
pub fn reverse(_ctx: &CallContext, data: &[u8]) -> Result<Vec<u8>> {
    Ok(data.iter().rev().copied().collect())
}

/// Raw `&str` in, MessagePack out.
#[memlink_export]
pub fn count_words(_ctx: &CallContext, text: &str) -> Result<usize> {
    Ok(text.split_whitespace().count())
}

/// Two MessagePack arguments; overflow is an error of the export's own.
#[memlink_export]
pub fn add(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
    a.checked_add(b)
        .ok_or_else(|| ModuleError::Failed(format!("{a} + {b} overflows u32")))
}

/// No arguments.
#[memlink_export]
pub fn ping(_ctx: &CallContext) -> Result<String> {
    Ok("pong".to_owned())
}

/// A record in, the record out (structs as maps).
#[memlink_export]
pub fn profile(_ctx: &CallContext, user: Profile) -> Result<Profile> {
    Ok(user)
}

/// Recursive data in: returns its depth, which must never exceed `MAX_DEPTH`.
#[memlink_export]
pub fn tree_depth(_ctx: &CallContext, tree: Tree) -> Result<usize> {
    Ok(tree.depth())
}

/// `min(n, BIG_LIMIT)` copies of `byte`, raw: results larger than the arena.
#[memlink_export]
pub fn big(_ctx: &CallContext, n: u32, byte: u8) -> Result<Vec<u8>> {
    Ok(vec![byte; n.min(BIG_LIMIT) as usize])
}

/// `n` squares built in the arena; too many is `QuotaExceeded`.
#[memlink_export]
pub fn squares(ctx: &CallContext, n: u32) -> Result<u64> {
    let table = ctx
        .arena()
        .alloc_slice_fill_with(n as usize, |i| (i as u64).wrapping_mul(i as u64))
        .ok_or(ModuleError::QuotaExceeded)?;
    Ok(table.iter().fold(0u64, |a, &b| a.wrapping_add(b)))
}

/// Returns the error `kind` names, each variant with its payload.
#[memlink_export]
pub fn fail(_ctx: &CallContext, kind: u8, text: String) -> Result<()> {
    Err(match kind % 11 {
        0 => ModuleError::QuotaExceeded,
        1 => ModuleError::CallFailed(text),
        2 => ModuleError::Timeout(std::time::Duration::from_nanos(u64::from(kind) * 1_000)),
        3 => ModuleError::Panic(text),
        4 => ModuleError::Serialize(text),
        5 => ModuleError::ServiceUnavailable,
        6 => ModuleError::InvalidMethod,
        7 => ModuleError::ModuleNotFound(text),
        8 => ModuleError::MaxCallDepthExceeded,
        9 => ModuleError::Failed(text),
        _ => ModuleError::Abi(text),
    })
}

/// Calls `method` of `module` through the host with `args`: nested, re-entrant calls.
#[memlink_export]
pub fn relay(ctx: &CallContext, module: String, method: String, args: Vec<u8>) -> Result<Vec<u8>> {
    let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    caller.call_blocking(&module, &method, &args)
}

/// Calls `method` of this module with `(text,)` as typed arguments, through the host,
/// which converts them to the callee's format (raw for `echo`, MessagePack for others).
#[memlink_export]
pub fn relay_typed(ctx: &CallContext, method: String, text: String) -> Result<String> {
    let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    caller.call_typed(SELF, &method, &(text,))
}

/// Logs `message` at every level, with fields, then returns the context it saw.
#[memlink_export]
pub fn noisy(ctx: &CallContext, message: String) -> Result<(u64, u64, u32, f32, bool)> {
    memlink_msdk::log::error(&message, &[("level", "error")]);
    memlink_msdk::log::warn(&message, &[]);
    memlink_msdk::log::info(&message, &[("k", &message)]);
    memlink_msdk::log::debug(&message, &[]);
    memlink_msdk::log::trace(&message, &[("a", "b"), ("c", "d")]);
    Ok((
        ctx.trace_id(),
        ctx.span_id(),
        ctx.call_depth(),
        ctx.backpressure(),
        ctx.is_expired(),
    ))
}

/// An async export (no timers: it runs on the module's executor and completes at once).
#[memlink_export]
pub async fn async_len(_ctx: &CallContext, data: Vec<u8>) -> Result<u64> {
    Ok(data.len() as u64)
}

/// Archived arguments, read in place: a digest of every point and of the label
/// (`archives::points_and_label`), which the harness recomputes from its own check of
/// the same bytes.
#[memlink_export]
pub fn archived_points(
    _ctx: &CallContext,
    points: &Archived<Vec<Point>>,
    label: &str,
) -> Result<u64> {
    Ok(crate::archives::points_and_label(points, label))
}

/// Panics with `message` (never called in a fuzzing build, see the module docs).
#[memlink_export]
pub fn boom(_ctx: &CallContext, message: String) -> Result<u32> {
    panic!("{message}");
}

/// The name nested calls use for this binary's own module (the harness's host answers
/// to it).
pub const SELF: &str = "self";

/// Whether the harness may call the export `name` in this build: not a panicking one
/// under `panic = "abort"`.
pub fn callable(name: &str) -> bool {
    !(cfg!(fuzzing) && name == "boom")
}
