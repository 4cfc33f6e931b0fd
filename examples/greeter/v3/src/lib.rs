//! A version of the module in `greeter/v1` that breaks its callers: `add` takes and
//! returns 64-bit numbers, `hit` is gone, and `greet` (version 2's) returns a number. A
//! reload to it is refused unless the host allows changed method tables.

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

/// `greet` with the parameter of version 2 (`greet(name: String) -> String`) but another
/// result: the name's length in bytes, a number (MessagePack) where version 2 returns
/// the greeting's raw bytes. A handle made for version 2's `greet` must not read it as
/// text.
#[memlink_export]
pub fn greet(_ctx: &CallContext, name: String) -> Result<u32> {
    u32::try_from(name.len()).map_err(|_| ModuleError::Failed("the name is too long".into()))
}
