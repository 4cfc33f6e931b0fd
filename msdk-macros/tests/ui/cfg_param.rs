// A `#[cfg]` on a parameter would leave the wrapper passing an argument the function
// does not have (or decoding one it does not take): refused at the attribute.

use memlink_msdk::prelude::*;

#[memlink_export]
pub fn cfg_param(_ctx: &CallContext<'_>, #[cfg(any())] a: u32, b: u32) -> Result<u32> {
    Ok(b)
}

#[memlink_export]
pub fn cfg_raw(_ctx: &CallContext<'_>, #[cfg(all())] text: &str) -> Result<usize> {
    Ok(text.len())
}

// A `#[cfg_attr]` that may apply a `#[cfg]` is one too (rustc expands it only after the
// macro has run); one that adds lint levels is fine.
#[memlink_export]
pub fn cfg_attr_param(
    _ctx: &CallContext<'_>,
    #[cfg_attr(all(), cfg(any()))] a: u32,
    #[cfg_attr(any(), allow(unused_variables), cfg_attr(all(), cfg(all())))] b: u32,
    #[cfg_attr(all(), allow(unused_variables))] c: u32,
) -> Result<u32> {
    Ok(b + c)
}

fn main() {}
