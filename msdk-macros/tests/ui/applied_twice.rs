// The attribute twice under one name would register the method twice (which the host
// refuses at load): refused at compile time, at the second attribute. Two different
// names are two exports of one function (examples/fixtures/signatures.rs).

use memlink_msdk::prelude::*;

#[memlink_export]
#[memlink_export]
pub fn twice(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export(name = "same")]
#[memlink_msdk::memlink_export(pure, name = "same")]
pub fn same_name(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export]
#[memlink_export(name = "by_fn_name")]
pub fn by_fn_name(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

fn main() {}
