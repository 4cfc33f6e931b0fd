// A name bound twice is rustc's error on the function (E0415), and the only one: the
// argument struct gives the second its own field, so the generated code adds none.

use memlink_msdk::prelude::*;

#[memlink_export]
pub fn twice(_ctx: &CallContext<'_>, a: u32, a: u32) -> Result<u32> {
    Ok(a)
}

#[memlink_export]
pub fn raw_and_plain(_ctx: &CallContext<'_>, r#b: u32, (c, b): (u32, u32)) -> Result<u32> {
    Ok(b + c)
}

fn main() {}
