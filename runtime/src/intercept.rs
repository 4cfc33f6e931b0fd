//! Interceptors: host code that sees every call, from the host or from a module, before
//! and after it runs: middleware for auth, audit, tracing or sampling.
//!
//! Installed with [`RuntimeConfig::interceptor`](crate::RuntimeConfig::interceptor), in
//! order; a runtime with none pays one branch per call. `before` runs on the calling
//! thread before the call takes a slot, and may refuse it; `after` runs once the call is
//! over, whatever its outcome (a call an interceptor refused included).
//!
//! A panic in an interceptor is the host's own, not a module's: it unwinds out of the
//! call made from the host (`Runtime::call` panics, and no slot is kept: the module stays
//! callable and unloadable). A panic in `before` comes before the call, which is not
//! counted; one in `after` comes once the module has run it, and the call is counted
//! as it ended. A module's nested call has no Rust
//! caller to unwind to: there the host catches it, logs it, and the nested call fails
//! with `CallFailed` ("the host panicked").
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use memlink_runtime::intercept::{CallInfo, Interceptor, Outcome};
//! use memlink_runtime::{ModuleError, RuntimeConfig};
//!
//! /// Refuses calls to `admin_*` methods, and counts the rest.
//! #[derive(Debug, Default)]
//! struct Guard(AtomicU64);
//!
//! impl Interceptor for Guard {
//!     fn before(&self, call: &CallInfo<'_>, _args: &[u8]) -> Result<(), ModuleError> {
//!         if call.method.starts_with("admin_") {
//!             return Err(ModuleError::Failed(format!("{} is not for this host", call.method)));
//!         }
//!         Ok(())
//!     }
//!     fn after(&self, _call: &CallInfo<'_>, _outcome: &Outcome<'_>) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//!
//! let config = RuntimeConfig::default().interceptor(Arc::new(Guard::default()));
//! ```

use std::fmt;
use std::time::Duration;

use memlink_abi::ModuleError;

/// Sees calls before and after they run. Both methods do nothing by default.
///
/// Interceptors run on the calling thread, around module code: keep them short. An
/// unload or a reload of the intercepted module from them is refused (it would wait for
/// the very call they run in).
///
/// A call an interceptor makes through the runtime (of this runtime or another) is part
/// of the intercepted call's chain, one level deeper: it counts against
/// `max_call_depth`, so an interceptor that calls a module on every call, its own calls
/// included, stops there; it carries the chain's trace unless its options carry one;
/// from `before`, it ends by the call's deadline if that comes first (it spends the
/// call's time), from `after`, the call is over and its deadline binds it no more. While
/// a module's call runs on the thread (around a nested call, say), it also re-enters a
/// module the chain holds without waiting for a slot.
pub trait Interceptor: Send + Sync + fmt::Debug {
    /// Before the call takes a slot: `args` are its encoded arguments. An error refuses
    /// the call: the caller gets it as the call's error (`RuntimeError::Call`, or the
    /// `ModuleError` itself for a nested call), and the interceptors' `after` still run.
    fn before(&self, call: &CallInfo<'_>, args: &[u8]) -> Result<(), ModuleError> {
        let _ = (call, args);
        Ok(())
    }

    /// After the call, with how it went.
    fn after(&self, call: &CallInfo<'_>, outcome: &Outcome<'_>) {
        let _ = (call, outcome);
    }
}

/// Which call an interceptor sees.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CallInfo<'a> {
    /// The module's name (what nested calls address it by).
    pub module: &'a str,
    /// The method's name.
    pub method: &'a str,
    /// The call's trace id (0 when the caller set none).
    pub trace_id: u64,
    /// The call's span id.
    pub span_id: u64,
    /// 0 for a call from the host, one more per module-to-module hop.
    pub depth: u32,
}

/// How an intercepted call went.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Outcome<'a> {
    /// From the end of the `before` hooks to the end of the call (zero for a call an
    /// interceptor refused).
    pub duration: Duration,
    /// The encoded result, or why there is none.
    pub result: Result<&'a [u8], Failed<'a>>,
}

/// Why an intercepted call produced no result.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Failed<'a> {
    /// The module returned an error or panicked, the call ran out of time, an
    /// interceptor refused it, or the module's breaker is open
    /// (`ModuleError::ServiceUnavailable`, see `crate::health`): the error the caller
    /// gets.
    Module(&'a ModuleError),
    /// The module was at its concurrency limit, and the runtime refuses such calls.
    Saturated,
    /// The module was unloaded as the call reached it.
    Unavailable,
}
