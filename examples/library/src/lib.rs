//! Exports in a library crate: a module that names this crate (`use
//! memlink_example_library as _;`) has them in its method table beside its own. The
//! library does not name the module: its crate is not the module's.

use memlink_msdk::prelude::*;

/// Adds two numbers: an export every module that names this library offers.
#[memlink_export]
pub fn library_add(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
    a.checked_add(b)
        .ok_or_else(|| ModuleError::CallFailed(format!("{a} + {b} overflows u32")))
}
