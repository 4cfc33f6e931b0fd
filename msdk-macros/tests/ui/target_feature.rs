// `#[target_feature]` makes a function unsafe to call where the CPU lacks the feature,
// and the wrapper would call it unchecked: refused, saying how to do it instead.

use memlink_msdk::prelude::*;

#[memlink_export]
#[target_feature(enable = "avx2")]
pub fn wide(_ctx: &CallContext<'_>, a: u32) -> Result<u32> {
    Ok(a)
}

fn main() {}
