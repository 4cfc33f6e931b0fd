// An error type that does not convert into `ModuleError`, and an `Ok` type that is not
// `Serialize`, are reported once, at that type, not at the attribute.

use memlink_msdk::prelude::*;

#[memlink_export]
pub fn string_err(_ctx: &CallContext<'_>, n: u32) -> std::result::Result<u32, String> {
    Ok(n)
}

#[memlink_export]
pub fn io_result(_ctx: &CallContext<'_>, n: u32) -> std::io::Result<u32> {
    Ok(n)
}

pub struct NotSerde;

#[memlink_export]
pub fn not_serialize(_ctx: &CallContext<'_>) -> Result<NotSerde> {
    Ok(NotSerde)
}

fn main() {}
