// The context and borrowed arguments are lent for the call alone: a `'static` one is
// refused at its lifetime, not by rustc's "borrowed data escapes" in the wrapper.

use memlink_msdk::prelude::*;

#[memlink_export]
pub fn static_str(_ctx: &CallContext<'_>, s: &'static str) -> Result<usize> {
    Ok(s.len())
}

#[memlink_export]
pub fn static_ctx(_ctx: &'static CallContext<'static>) -> Result<u32> {
    Ok(1)
}

#[memlink_export]
pub fn static_views(_ctx: &CallContext<'_>, a: &'static str, b: &'static [u8]) -> Result<usize> {
    Ok(a.len() + b.len())
}

fn main() {}
