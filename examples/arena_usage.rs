//! Arena allocation: scratch memory that costs a pointer bump and vanishes after the
//! call.
//!
//! Build: `cargo build -p memlink-examples --example arena_usage`.

use memlink_msdk::prelude::*;

/// The SDK README's example: one `u64` in the arena.
#[memlink_export]
pub fn use_arena(ctx: &CallContext) -> Result<u64> {
    let slot = ctx
        .arena()
        .alloc::<u64>()
        .ok_or(ModuleError::QuotaExceeded)?;
    *slot = 42;
    Ok(*slot)
}

/// Builds a table of squares in the arena and sums it.
#[memlink_export]
pub fn sum_of_squares(ctx: &CallContext, n: u32) -> Result<u64> {
    let squares = ctx
        .arena()
        .alloc_slice_fill_with(n as usize, |i| (i as u64) * (i as u64))
        .ok_or(ModuleError::QuotaExceeded)?;
    Ok(squares.iter().sum())
}

/// Reverses words through arena scratch space instead of the heap.
#[memlink_export]
pub fn reverse_words(ctx: &CallContext, text: &str) -> Result<String> {
    let arena = ctx.arena();
    let words = arena
        .alloc_slice_fill_with(text.split_whitespace().count(), |_| "")
        .ok_or(ModuleError::QuotaExceeded)?;
    for (slot, word) in words.iter_mut().zip(text.split_whitespace()) {
        *slot = word;
    }
    words.reverse();
    Ok(words.join(" "))
}

/// How much of the call's arena is left, after taking `take` bytes.
#[memlink_export]
pub fn arena_stats(ctx: &CallContext, take: u32) -> Result<(usize, usize, usize)> {
    let arena = ctx.arena();
    arena
        .alloc_bytes(take as usize)
        .ok_or(ModuleError::QuotaExceeded)?;
    Ok((arena.capacity(), arena.used(), arena.remaining()))
}
