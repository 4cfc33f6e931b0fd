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
    /// An arena or resource quota was exceeded (for example `alloc_output` returned
    /// null); no payload. [`crate::ModuleError::QuotaExceeded`], shown as "quota exceeded".
    QuotaExceeded = 1,
    /// A nested call ([`HostApi::call_module`](crate::HostApi::call_module)) the export
    /// made could not be made: the host could not make it, or refused it (a saturated
    /// callee, a module name no module could be loaded under). A nested call that was
    /// made and failed comes back with the callee's own status instead. The payload is a
    /// UTF-8 message, shown after "nested call failed: ". An export's own failure is
    /// [`Failed`](Status::Failed), not this. [`crate::ModuleError::CallFailed`].
    CallFailed = 2,
    /// The call ran out of time; the payload is exactly 8 bytes, the time it was given in
    /// nanoseconds, `u64` LE (any other length is an ABI error).
    /// [`crate::ModuleError::Timeout`].
    Timeout = 3,
    /// The export panicked (crashed); the payload is a UTF-8 message and location.
    /// [`crate::ModuleError::Panic`].
    Panic = 4,
    /// The arguments (or a result) could not be decoded (or encoded); the payload is a
    /// UTF-8 reason, shown after "serialization error: ". [`crate::ModuleError::Serialize`].
    Serialize = 5,
    /// A service the module needs is not available; no payload.
    /// [`crate::ModuleError::ServiceUnavailable`].
    ServiceUnavailable = 6,
    /// The frame names no method of the module (index out of range, or the id at the
    /// index is another); no payload. [`crate::ModuleError::InvalidMethod`].
    InvalidMethod = 7,
    /// No module is loaded under the name a nested call gave; the payload is that name,
    /// UTF-8. [`crate::ModuleError::ModuleNotFound`].
    ModuleNotFound = 8,
    /// A nested call would go past the host's depth limit; no payload.
    /// [`crate::ModuleError::MaxCallDepthExceeded`].
    MaxCallDepthExceeded = 9,
    /// The export failed for a reason of its own: the status for an export's errors.
    /// The payload is a UTF-8 message, shown as it is. [`crate::ModuleError::Failed`].
    Failed = 10,
    /// Host and module disagree on the protocol (a malformed frame, an output where
    /// none may be); the payload is a UTF-8 message, shown after "abi error: ".
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

    /// Whether a call that returns this status has a payload (docs/abi.md's table):
    /// `false` for the statuses whose payload is empty, whose output fields the host does
    /// not read.
    pub const fn has_payload(self) -> bool {
        !matches!(
            self,
            Status::QuotaExceeded
                | Status::ServiceUnavailable
                | Status::InvalidMethod
                | Status::MaxCallDepthExceeded
        )
    }
}
