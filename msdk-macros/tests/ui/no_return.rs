use memlink_msdk::prelude::*;

#[memlink_export]
pub fn nothing(_ctx: &CallContext<'_>) {}

fn main() {}
