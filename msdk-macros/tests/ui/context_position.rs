// A context that is not first, or a second one, is reported once, at that parameter:
// not as a missing context at the first parameter, nor as a borrowed or undecodable
// argument.

use memlink_msdk::prelude::*;

#[memlink_export]
pub fn ctx_second(a: u32, _ctx: &CallContext<'_>) -> Result<u32> {
    Ok(a)
}

#[memlink_export]
pub fn two_ctx(_ctx: &CallContext<'_>, _other: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export]
pub fn two_ctx_value(_ctx: &CallContext<'_>, _other: CallContext<'_>, n: u32) -> Result<u32> {
    Ok(n)
}

fn main() {}
