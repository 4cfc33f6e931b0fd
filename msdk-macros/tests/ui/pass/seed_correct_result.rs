//! The SDK README's Troubleshooting, "Return type must be Result": its Correct snippet,
//! unchanged, compiles.

use memlink_msdk::prelude::*;

// Correct
#[memlink_export]
pub fn good(ctx: &CallContext) -> Result<String> { Ok("hello".to_string()) }

fn main() {}
