use memlink_msdk::prelude::*;

#[memlink_export]
pub struct NotAFunction;

fn main() {}
