//! The SDK README's Troubleshooting, "Return type must be Result": its Wrong snippet,
//! unchanged, is refused with those words.

use memlink_msdk::prelude::*;

// Wrong
#[memlink_export]
pub fn bad(ctx: &CallContext) -> String { "hello".to_string() }

fn main() {}
