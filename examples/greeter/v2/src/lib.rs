//! Version 2 of the module in `greeter/v1`: the same exports, and `greet`. With
//! `greeter/v1` and `greeter/v3`, what the reload tests switch between.

include!("../../shared.rs");

/// Which build this is.
#[memlink_export]
pub fn version(_ctx: &CallContext) -> Result<u32> {
    Ok(2)
}

/// Greets `name`: new in version 2.
#[memlink_export]
pub fn greet(_ctx: &CallContext, name: String) -> Result<String> {
    Ok(format!("hello, {name}"))
}
