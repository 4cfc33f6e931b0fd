//! A module whose method table holds its own export and a library's
//! (`memlink-example-library`'s `library_add`): it is `calculator` 0.3.0, named by its
//! build script's `MEMLINK_MODULE_NAME`, whatever the library is called.
//!
//! Build: `cargo build -p memlink-example-library-user`.

use memlink_example_library as _;
use memlink_msdk::prelude::*;

/// Doubles a number: this crate's own export.
#[memlink_export]
pub fn double(_ctx: &CallContext, n: u32) -> Result<u32> {
    n.checked_mul(2)
        .ok_or_else(|| ModuleError::CallFailed(format!("2 * {n} overflows u32")))
}
