use memlink_msdk::prelude::*;

#[memlink_export]
pub fn forgot_ctx(a: u32, b: u32) -> Result<u32> {
    Ok(a + b)
}

#[memlink_export]
pub fn mutable_ctx(_ctx: &mut CallContext<'_>) -> Result<u32> {
    Ok(1)
}

fn main() {}
