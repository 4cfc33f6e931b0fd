//! A version of the module in `greeter/v1` that breaks its callers: `add` takes and
//! returns 64-bit numbers, and `hit` is gone. A reload to it is refused unless the host
//! allows changed method tables.

use memlink_msdk::prelude::*;

/// Which build this is.
#[memlink_export]
pub fn version(_ctx: &CallContext) -> Result<u32> {
    Ok(3)
}

/// Adds two 64-bit numbers.
#[memlink_export]
pub fn add(_ctx: &CallContext, a: u64, b: u64) -> Result<u64> {
    Ok(a.wrapping_add(b))
}
