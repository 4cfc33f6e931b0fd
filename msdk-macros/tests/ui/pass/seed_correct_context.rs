//! The SDK README's Troubleshooting, "First parameter must be &CallContext": its Correct
//! snippet, unchanged, compiles.

use memlink_msdk::prelude::*;

// Correct
#[memlink_export]
pub fn good(ctx: &CallContext, input: String) -> Result<String> { Ok(input) }

fn main() {}
