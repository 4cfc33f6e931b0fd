//! How a call's end at the connection becomes the runtime's error values.

use std::time::Duration;

use memlink_ipc::client::CallError;
use memlink_ipc::Failure;
use memlink_runtime::{ModuleError, RuntimeError};

/// The reason of a [`RuntimeError::DaemonGone`] for a call the daemon never took: the
/// client sends such a call again, once, on a new connection.
pub(crate) const NOT_TAKEN: &str = "its socket closed before it took the call";

/// Whether `e` is a call the daemon never took (safe to send again).
pub(crate) fn not_taken(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::DaemonGone { reason } if reason == NOT_TAKEN)
}

/// The [`RuntimeError`] for `e`, a failed call of `module::method` that had `given` time
/// when it was made (for a timeout).
pub(crate) fn runtime_error(
    e: CallError,
    module: &str,
    method: &str,
    given: Option<Duration>,
) -> RuntimeError {
    match e {
        CallError::Failed(f) => from_failure(f),
        CallError::TimedOut => RuntimeError::Call {
            module: module.to_owned(),
            method: method.to_owned(),
            error: ModuleError::Timeout(given.unwrap_or_default()),
        },
        CallError::Gone(reason) => RuntimeError::DaemonGone { reason },
        CallError::NotTaken(_) => RuntimeError::DaemonGone {
            reason: NOT_TAKEN.to_owned(),
        },
        CallError::Invalid(reason) => RuntimeError::Daemon { reason },
        CallError::SlotsHeld { slots } => RuntimeError::SlotsHeld { slots },
        // `CallError` may grow; what it says is still the best account of the failure.
        other => RuntimeError::Daemon {
            reason: other.to_string(),
        },
    }
}

fn from_failure(f: Failure) -> RuntimeError {
    match f {
        Failure::Module {
            module,
            method,
            code,
            payload,
        } => RuntimeError::Call {
            module,
            method,
            error: ModuleError::from_status(code, &payload),
        },
        Failure::UnknownModule(name) => RuntimeError::UnknownModule { name },
        Failure::UnknownMethod { module, method } => RuntimeError::UnknownMethod { module, method },
        Failure::Saturated {
            module,
            method,
            limit,
        } => RuntimeError::Saturated {
            module,
            method,
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        },
        Failure::WorkerDied(reason) => RuntimeError::WorkerDied { reason },
        Failure::MethodChanged {
            module,
            method,
            version,
            signature,
        } => RuntimeError::MethodChanged {
            module,
            method,
            version,
            signature,
        },
        other => RuntimeError::Daemon {
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_becomes_the_runtime_error_of_the_same_meaning() {
        let e = runtime_error(
            CallError::Failed(Failure::Module {
                module: "m".into(),
                method: "f".into(),
                code: ModuleError::Failed("x".into()).status() as i32,
                payload: b"x".to_vec(),
            }),
            "m",
            "f",
            None,
        );
        assert_eq!(e.module_error(), Some(&ModuleError::Failed("x".into())));
        let e = runtime_error(
            CallError::TimedOut,
            "m",
            "f",
            Some(Duration::from_millis(5)),
        );
        assert_eq!(
            e.module_error(),
            Some(&ModuleError::Timeout(Duration::from_millis(5)))
        );
        assert!(matches!(
            runtime_error(CallError::Gone("eof".into()), "m", "f", None),
            RuntimeError::DaemonGone { .. }
        ));
        assert!(matches!(
            runtime_error(
                CallError::Failed(Failure::WorkerDied("SIGSEGV".into())),
                "m",
                "f",
                None
            ),
            RuntimeError::WorkerDied { .. }
        ));
        assert!(matches!(
            runtime_error(
                CallError::Failed(Failure::UnknownModule("z".into())),
                "m",
                "f",
                None
            ),
            RuntimeError::UnknownModule { .. }
        ));
    }
}
