//! The SDK README's Troubleshooting, "First parameter must be &CallContext": its Wrong
//! snippet, unchanged, is refused with those words.

use memlink_msdk::prelude::*;

// Wrong
#[memlink_export]
pub fn bad(input: String) -> Result<String> { Ok(input) }

fn main() {}
