use memlink_msdk::prelude::*;

#[memlink_export(nmae = "typo")]
pub fn typo(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export(name = "ok", crate::path = "x")]
pub fn path_key(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export(pure = true)]
pub fn pure_with_a_value(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export(pure, pure)]
pub fn pure_twice(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

fn main() {}
