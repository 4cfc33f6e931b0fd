//! [`ModuleError`]: the error a non-`Ok` status and its payload stand for, and the
//! codec between the two (the payload is the message in UTF-8, or for `Timeout` the
//! duration in nanoseconds as a `u64`, little-endian).

use core::fmt;
use std::time::Duration;

use crate::status::Status;

/// An error from a module, as the module returns it and as the host receives it.
///
/// Every variant has a stable numeric [`code`](ModuleError::code), which is the
/// [`Status`] that crosses the ABI; the message travels with it, so the host sees the
/// same variant with the same text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModuleError {
    /// Arena or resource quota exceeded.
    QuotaExceeded,
    /// A nested call could not be made (a nested call that was made and failed comes
    /// back as the callee's own error); the text says why.
    CallFailed(String),
    /// An operation ran out of time; the duration is the time it was given.
    Timeout(Duration),
    /// The module panicked; the text is the panic message and its location.
    Panic(String),
    /// Arguments or a result could not be encoded or decoded; the text is the reason.
    Serialize(String),
    /// A service the module asked for is not available.
    ServiceUnavailable,
    /// No method with the requested name or id.
    InvalidMethod,
    /// No module loaded under the name.
    ModuleNotFound(String),
    /// The nested call depth limit was reached.
    MaxCallDepthExceeded,
    /// The export failed for a reason of its own; the text says what happened.
    Failed(String),
    /// Host and module disagree on the call protocol (a malformed frame, a bad status).
    Abi(String),
}

impl ModuleError {
    /// The stable numeric code of this variant: the [`Status`] that crosses the ABI.
    pub const fn code(&self) -> i32 {
        self.status() as i32
    }

    /// The [`Status`] that carries this error across the ABI.
    pub const fn status(&self) -> Status {
        match self {
            ModuleError::QuotaExceeded => Status::QuotaExceeded,
            ModuleError::CallFailed(_) => Status::CallFailed,
            ModuleError::Timeout(_) => Status::Timeout,
            ModuleError::Panic(_) => Status::Panic,
            ModuleError::Serialize(_) => Status::Serialize,
            ModuleError::ServiceUnavailable => Status::ServiceUnavailable,
            ModuleError::InvalidMethod => Status::InvalidMethod,
            ModuleError::ModuleNotFound(_) => Status::ModuleNotFound,
            ModuleError::MaxCallDepthExceeded => Status::MaxCallDepthExceeded,
            ModuleError::Failed(_) => Status::Failed,
            ModuleError::Abi(_) => Status::Abi,
        }
    }

    /// The bytes this error sends across the ABI after its status (see
    /// [`CallFrame::out`](crate::CallFrame::out)).
    pub fn payload(&self) -> Vec<u8> {
        match self {
            ModuleError::Timeout(d) => {
                let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                nanos.to_le_bytes().to_vec()
            }
            ModuleError::CallFailed(m)
            | ModuleError::Panic(m)
            | ModuleError::Serialize(m)
            | ModuleError::ModuleNotFound(m)
            | ModuleError::Failed(m)
            | ModuleError::Abi(m) => m.as_bytes().to_vec(),
            _ => Vec::new(),
        }
    }

    /// Rebuilds an error from a non-`Ok` status and its payload, as the host does.
    ///
    /// A status this ABI does not define, `Ok`, or a malformed payload becomes
    /// [`ModuleError::Abi`] saying so.
    pub fn from_status(code: i32, payload: &[u8]) -> ModuleError {
        let text = || String::from_utf8_lossy(payload).into_owned();
        match Status::from_code(code) {
            Some(Status::QuotaExceeded) => ModuleError::QuotaExceeded,
            Some(Status::CallFailed) => ModuleError::CallFailed(text()),
            Some(Status::Timeout) => match <[u8; 8]>::try_from(payload) {
                Ok(b) => ModuleError::Timeout(Duration::from_nanos(u64::from_le_bytes(b))),
                Err(_) => ModuleError::Abi(format!(
                    "timeout payload is {} bytes, expected 8",
                    payload.len()
                )),
            },
            Some(Status::Panic) => ModuleError::Panic(text()),
            Some(Status::Serialize) => ModuleError::Serialize(text()),
            Some(Status::ServiceUnavailable) => ModuleError::ServiceUnavailable,
            Some(Status::InvalidMethod) => ModuleError::InvalidMethod,
            Some(Status::ModuleNotFound) => ModuleError::ModuleNotFound(text()),
            Some(Status::MaxCallDepthExceeded) => ModuleError::MaxCallDepthExceeded,
            Some(Status::Failed) => ModuleError::Failed(text()),
            Some(Status::Abi) => ModuleError::Abi(text()),
            Some(Status::Ok) => ModuleError::Abi("status Ok reported as an error".into()),
            None => ModuleError::Abi(format!("unknown status code {code}")),
        }
    }
}

impl fmt::Display for ModuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A message a module left empty (a module in C that returns the status and
        // forgets the payload) shows the kind alone, not a prefix with nothing after it.
        let told = |f: &mut fmt::Formatter<'_>, kind: &str, m: &str, none: &str| {
            if m.is_empty() {
                write!(f, "{kind} ({none})")
            } else {
                write!(f, "{kind}: {m}")
            }
        };
        match self {
            ModuleError::QuotaExceeded => f.write_str("quota exceeded"),
            ModuleError::CallFailed(m) => told(f, "nested call failed", m, "no reason given"),
            // No time given is a deadline that had passed when the call came to start (the
            // host does not start such a call): "after 0ns" would read as a bug.
            ModuleError::Timeout(d) if d.is_zero() => {
                f.write_str("timed out: its deadline had passed before it started")
            }
            ModuleError::Timeout(d) => write!(f, "timed out (it was given {d:?})"),
            ModuleError::Panic(m) => told(f, "module panicked", m, "no message"),
            ModuleError::Serialize(m) => told(f, "serialization error", m, "no reason given"),
            ModuleError::ServiceUnavailable => f.write_str("service unavailable"),
            ModuleError::InvalidMethod => f.write_str("invalid method"),
            ModuleError::ModuleNotFound(m) => told(f, "module not found", m, "no name given"),
            ModuleError::MaxCallDepthExceeded => f.write_str("maximum call depth exceeded"),
            // Shown as it is, with no prefix: an empty message would show nothing at all
            // (a module in C that returns the status and forgets the payload).
            ModuleError::Failed(m) if m.is_empty() => {
                f.write_str("the module failed and gave no message")
            }
            ModuleError::Failed(m) => f.write_str(m),
            ModuleError::Abi(m) => told(f, "abi error", m, "no reason given"),
        }
    }
}

impl std::error::Error for ModuleError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<ModuleError> {
        vec![
            ModuleError::QuotaExceeded,
            ModuleError::CallFailed("b refused".into()),
            ModuleError::Timeout(Duration::from_millis(1500)),
            ModuleError::Panic("boom".into()),
            ModuleError::Serialize("bad".into()),
            ModuleError::ServiceUnavailable,
            ModuleError::InvalidMethod,
            ModuleError::ModuleNotFound("other".into()),
            ModuleError::MaxCallDepthExceeded,
            ModuleError::Failed("no".into()),
            ModuleError::Abi("frame".into()),
        ]
    }

    #[test]
    fn every_variant_survives_the_boundary() {
        for e in all() {
            let back = ModuleError::from_status(e.code(), &e.payload());
            assert_eq!(back, e);
        }
    }

    #[test]
    fn codes_are_stable_and_distinct() {
        let codes: Vec<i32> = all().iter().map(ModuleError::code).collect();
        assert_eq!(codes, (1..=11).collect::<Vec<_>>());
    }

    /// A call given no time is said to have been too late to start, not "timed out
    /// after 0ns".
    #[test]
    fn a_timeout_of_no_time_says_the_deadline_had_passed() {
        assert_eq!(
            ModuleError::Timeout(Duration::ZERO).to_string(),
            "timed out: its deadline had passed before it started"
        );
        assert_eq!(
            ModuleError::Timeout(Duration::from_millis(1500)).to_string(),
            "timed out (it was given 1.5s)"
        );
    }

    /// A message left empty (a C module's status without its payload) shows the kind
    /// alone, not a prefix with nothing after it.
    #[test]
    fn an_empty_message_is_said_to_be_missing() {
        for (e, shown) in [
            (
                ModuleError::CallFailed(String::new()),
                "nested call failed (no reason given)",
            ),
            (
                ModuleError::ModuleNotFound(String::new()),
                "module not found (no name given)",
            ),
            (
                ModuleError::Panic(String::new()),
                "module panicked (no message)",
            ),
            (
                ModuleError::Failed(String::new()),
                "the module failed and gave no message",
            ),
        ] {
            assert_eq!(e.to_string(), shown);
        }
        assert_eq!(
            ModuleError::CallFailed("b refused".into()).to_string(),
            "nested call failed: b refused"
        );
    }

    #[test]
    fn malformed_status_is_an_abi_error() {
        assert!(
            matches!(ModuleError::from_status(99, b""), ModuleError::Abi(m) if m.contains("99"))
        );
        assert!(matches!(
            ModuleError::from_status(0, b""),
            ModuleError::Abi(_)
        ));
        assert!(
            matches!(ModuleError::from_status(3, b"abc"), ModuleError::Abi(m) if m.contains("3 bytes"))
        );
    }
}
