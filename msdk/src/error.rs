//! Errors a module returns, and the [`Result`] alias exports use.
//!
//! [`ModuleError`] is defined by the ABI (`memlink_abi::error`), which also holds how it
//! crosses the boundary (a status code and a payload): the host receives the same
//! variant with the same text.

pub use memlink_abi::ModuleError;

/// `Result` with [`ModuleError`] as the default error: the return type of every export.
pub type Result<T, E = ModuleError> = core::result::Result<T, E>;
