//! The body is passed through as tokens: whatever it contains, the macro only reads the
//! signature. Doc comments and other attributes stay on the function.
#![deny(warnings)]

use memlink_msdk::prelude::*;

/// Adds one, with a doc comment and an extra attribute that must survive.
#[memlink_export]
#[inline]
pub fn documented(_ctx: &CallContext, x: u32) -> Result<u32> {
    let f = |y: u32| -> u32 { y + 1 };
    Ok(f(x))
}

/// An async export keeps its doc comment and attributes when its context lifetime is
/// written out.
#[memlink_export]
#[allow(clippy::unused_async)]
pub async fn documented_async(_ctx: &memlink_msdk::CallContext, x: u32) -> Result<u32> {
    Ok(x)
}

/// A deprecated export, kept for the hosts that still call it: its registration is no
/// use of it, so it warns only where the module's own code calls it.
#[memlink_export]
#[deprecated = "call `documented`"]
pub fn old(_ctx: &CallContext, x: u32) -> Result<u32> {
    Ok(x)
}

/// The same, async.
#[memlink_export]
#[deprecated]
pub async fn old_async(_ctx: &CallContext, x: u32) -> Result<u32> {
    Ok(x)
}

fn main() {
    let arena = Arena::empty();
    let ctx = CallContext::new(&arena, 0.0, 0, 0, None, None);
    assert_eq!(documented(&ctx, 1), Ok(2));
    assert_eq!(memlink_msdk::executor::block_on(documented_async(&ctx, 1)), Ok(1));
}
