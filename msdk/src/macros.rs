//! The procedural macro of the SDK: [`memlink_export`], which turns a plain function
//! into an export registered in the module's method table (see the macro's docs).

pub use memlink_msdk_macros::memlink_export;
