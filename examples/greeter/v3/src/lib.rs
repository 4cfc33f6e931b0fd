//! A version of the module in `greeter/v1` that breaks its callers: `add` takes and
//! returns 64-bit numbers, `hit` is gone, `greet` (version 2's) returns a number and
//! `measure` takes its arguments the other way round. A reload to it is refused unless
//! the host allows changed method tables.

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

/// The `measure` of versions 1 and 2 with its parameters swapped: an archive of
/// `(Vec<u8>, String)` where they take one of `(String, Vec<u8>)`, so a handle made for
/// them must not send its archive here.
#[memlink_export]
pub fn measure(_ctx: &CallContext, tag: &[u8], name: &str) -> Result<u64> {
    Ok(name.len() as u64 * 1000 + tag.len() as u64)
}
