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

fn main() {}
