use memlink_msdk::prelude::*;

#[memlink_export]
pub fn plain(_ctx: &CallContext<'_>) -> u32 {
    1
}

#[memlink_export]
pub fn option(_ctx: &CallContext<'_>) -> Option<u32> {
    None
}

fn main() {}
