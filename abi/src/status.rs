//! [`Status`]: what every entry point and host service returns.

/// Outcome of an entry point, as the `i32` it returns.
///
/// `Ok` is 0. Every other value names a [`crate::ModuleError`] variant by its
/// [`code`](crate::ModuleError::code); the frame's output then holds the error's payload
/// (see [`CallFrame::out`](crate::CallFrame::out)). Values not listed here are reported
/// by the host as an ABI error rather than guessed at.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Success: the output holds the result.
    Ok = 0,
    /// [`crate::ModuleError::QuotaExceeded`].
    QuotaExceeded = 1,
    /// [`crate::ModuleError::CallFailed`].
    CallFailed = 2,
    /// [`crate::ModuleError::Timeout`]; the payload is the duration in nanoseconds, `u64` LE.
    Timeout = 3,
    /// [`crate::ModuleError::Panic`].
    Panic = 4,
    /// [`crate::ModuleError::Serialize`].
    Serialize = 5,
    /// [`crate::ModuleError::ServiceUnavailable`].
    ServiceUnavailable = 6,
    /// [`crate::ModuleError::InvalidMethod`].
    InvalidMethod = 7,
    /// [`crate::ModuleError::ModuleNotFound`].
    ModuleNotFound = 8,
    /// [`crate::ModuleError::MaxCallDepthExceeded`].
    MaxCallDepthExceeded = 9,
    /// [`crate::ModuleError::Failed`].
    Failed = 10,
    /// [`crate::ModuleError::Abi`].
    Abi = 11,
}

impl Status {
    /// The status for a raw code, or `None` for a code this ABI does not define.
    pub const fn from_code(code: i32) -> Option<Status> {
        Some(match code {
            0 => Status::Ok,
            1 => Status::QuotaExceeded,
            2 => Status::CallFailed,
            3 => Status::Timeout,
            4 => Status::Panic,
            5 => Status::Serialize,
            6 => Status::ServiceUnavailable,
            7 => Status::InvalidMethod,
            8 => Status::ModuleNotFound,
            9 => Status::MaxCallDepthExceeded,
            10 => Status::Failed,
            11 => Status::Abi,
            _ => return None,
        })
    }
}
