use memlink_msdk::prelude::*;

#[memlink_export]
pub unsafe fn not_safe(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export]
pub extern "C" fn with_abi(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

fn main() {}
