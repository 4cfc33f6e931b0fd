//! Panic isolation: a panic inside a call becomes [`ModuleError::Panic`] with its
//! message and location, instead of unwinding into the host (which would abort it) or
//! printing to stderr.
//!
//! A module is a cdylib with its own copy of `std`, so the hook installed here sees
//! only the module's panics. While a call is running on a thread (the boundary has
//! pointed the thread's running-call slot at it, see `current::enter`), the hook records the
//! message for the boundary to return; at any other time it defers to the hook that was
//! installed before it.
//!
//! Some panics cannot unwind, and then no boundary will ever return their message: the
//! process aborts right after the hook. That happens for a panic in a `Drop` that runs
//! while another panic unwinds, for the standard library's checks of undefined behaviour
//! (a misaligned pointer dereference in a debug build, an unsafe precondition), and for
//! every panic of a module built with `panic = "abort"`. For those the hook prints, on
//! stderr, the module, the export and every message the call had recorded, so the host's
//! last words say what happened instead of only "non-unwinding panic".
//!

use std::any::Any;
use std::cell::RefCell;
use std::io::Write as _;
use std::panic::{self, PanicHookInfo};
use std::sync::Once;

use crate::current::CurrentCall;
use crate::error::ModuleError;

/// A panic the hook recorded during a call.
#[derive(Debug, Clone)]
struct Recorded {
    /// The number of the call it happened in (`CurrentCall::seq`): a panic of an earlier
    /// call (one the export caught itself) never names a later one.
    seq: u64,
    /// The message with its location: what the host receives.
    text: String,
    /// The payload's own text, when it is a string: `message` matches the payload it is
    /// handed against it, so a panic that user code caught (and that the boundary never
    /// saw) cannot lend its message to another in the same call.
    payload: Option<String>,
}

/// Panics recorded and not yet returned. Bounded: only the most recent matter.
const KEPT: usize = 4;

thread_local! {
    static RECORDED: RefCell<Vec<Recorded>> = const { RefCell::new(Vec::new()) };
}

/// Installs the capturing hook, once per module image.
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| match crate::current::current_call() {
            Some(call) => record(info, &call),
            None => previous(info),
        }));
    });
}

/// Runs `f` as the call boundary runs an export: a panic inside it becomes
/// [`ModuleError::Panic`] with its message and location instead of unwinding further,
/// and is not printed. For work a module does outside a call that the host made (on a
/// thread of its own, say) and wants contained the same way.
///
/// ```
/// use memlink_msdk::{panic::isolate, ModuleError};
///
/// let caught = isolate(|| -> u32 { panic!("no answer") });
/// assert!(matches!(caught, Err(ModuleError::Panic(m)) if m.starts_with("no answer (at ")));
/// assert_eq!(isolate(|| 42), Ok(42));
/// ```
pub fn isolate<R>(f: impl FnOnce() -> R) -> Result<R, ModuleError> {
    install_hook();
    // Outside a host's call, the slot names no host: panics are recorded for this
    // boundary, and log records go to the host the module was initialized by.
    crate::current::enter(CurrentCall::isolated, |seq| {
        panic::catch_unwind(panic::AssertUnwindSafe(f))
            .map_err(|payload| ModuleError::Panic(message(payload, seq)))
    })
}

fn record(info: &PanicHookInfo<'_>, call: &CurrentCall) {
    let recorded = Recorded {
        seq: call.seq,
        text: describe(info),
        payload: payload_text(info.payload()).map(str::to_owned),
    };
    let pending = RECORDED
        .try_with(|r| {
            let mut r = r.borrow_mut();
            if r.len() == KEPT {
                r.remove(0);
            }
            r.push(recorded.clone());
            r.iter()
                .filter(|p| p.seq == call.seq)
                .map(|p| p.text.clone())
                .collect()
        })
        .unwrap_or_else(|_| vec![recorded.text]);
    if cannot_unwind(info) {
        last_words(call.module(), call.method(), &pending);
    }
}

/// Whether the panic will abort the process instead of unwinding to the boundary.
///
/// `PanicHookInfo::can_unwind` is not stable yet; its `Debug` output carries the same
/// flag (`can_unwind: false`), which is what this reads. Should that output change, the
/// only loss is the message on stderr before an abort, never a caught panic.
fn cannot_unwind(info: &PanicHookInfo<'_>) -> bool {
    cfg!(panic = "abort") || format!("{info:?}").contains("can_unwind: false")
}

/// Writes what the call recorded to stderr, just before the process aborts.
fn last_words(module: &str, method: &str, messages: &[String]) {
    let mut text = format!(
        "memlink: module `{module}` panicked in export `{method}` in a way that cannot unwind; the process aborts\n"
    );
    for m in messages {
        text.push_str("memlink:   panicked: ");
        text.push_str(m);
        text.push('\n');
    }
    // Nothing else can be done with a failed write on the way to an abort.
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// The message of a panic caught at the boundary of call `seq`: what the hook recorded
/// for this payload in this call (with the location), or the payload's text when the
/// hook did not record it (another hook replaced ours, or the panic was resumed with
/// `resume_unwind`, which runs no hook).
pub(crate) fn message(payload: Box<dyn Any + Send>, seq: u64) -> String {
    let own = payload_text(payload.as_ref()).map(str::to_owned);
    let recorded = RECORDED
        .try_with(|r| {
            let mut r = r.borrow_mut();
            let found = r.iter().rposition(|p| p.seq == seq && p.payload == own);
            let text = found.map(|i| r.remove(i).text);
            r.retain(|p| p.seq != seq);
            text
        })
        .ok()
        .flatten();
    let text = recorded
        .or(own)
        .unwrap_or_else(|| "panic with a non-string payload".to_owned());
    // Dropping a payload can itself panic; that must not escape either.
    let _ = panic::catch_unwind(panic::AssertUnwindSafe(move || drop(payload)));
    text
}

fn describe(info: &PanicHookInfo<'_>) -> String {
    let text = payload_text(info.payload()).unwrap_or("panic with a non-string payload");
    match info.location() {
        Some(loc) => format!("{text} (at {}:{}:{})", loc.file(), loc.line(), loc.column()),
        None => text.to_owned(),
    }
}

fn payload_text(payload: &(dyn Any + Send)) -> Option<&str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Some(s)
    } else {
        payload.downcast_ref::<String>().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` as if inside a call, as the boundary does; gives the call's number.
    fn in_call<R>(f: impl FnOnce() -> R) -> (R, u64) {
        install_hook();
        crate::current::enter(CurrentCall::isolated, |seq| (f(), seq))
    }

    #[test]
    fn captured_panics_carry_message_and_location() {
        let (payload, seq) = in_call(|| panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err());
        let text = message(payload, seq);
        assert!(text.starts_with("boom 7 (at "), "{text}");
        assert!(text.contains("panic.rs"), "{text}");
    }

    #[test]
    fn payload_is_used_when_nothing_was_recorded() {
        let payload: Box<dyn Any + Send> = Box::new("plain");
        assert_eq!(message(payload, 0), "plain");
        let payload: Box<dyn Any + Send> = Box::new(5u8);
        assert_eq!(message(payload, 0), "panic with a non-string payload");
    }

    #[test]
    fn a_panic_caught_by_user_code_does_not_name_a_later_one() {
        let (payload, seq) = in_call(|| {
            // The export catches a panic of its own and carries on...
            let _ = panic::catch_unwind(|| panic!("handled inside"));
            // ...then fails with a payload the hook never sees.
            panic::catch_unwind(|| panic::resume_unwind(Box::new(42u32))).unwrap_err()
        });
        assert_eq!(message(payload, seq), "panic with a non-string payload");
        let (payload, seq) = in_call(|| {
            let _ = panic::catch_unwind(|| panic!("handled inside"));
            panic::catch_unwind(|| panic::resume_unwind(Box::new("resumed"))).unwrap_err()
        });
        assert_eq!(message(payload, seq), "resumed");
    }

    #[test]
    fn a_new_call_ignores_what_the_last_one_recorded() {
        in_call(|| {
            let _ = panic::catch_unwind(|| panic::panic_any(1u8));
        });
        let (payload, seq) =
            in_call(|| panic::catch_unwind(|| panic::resume_unwind(Box::new(2u8))).unwrap_err());
        assert_eq!(
            message(payload, seq),
            "panic with a non-string payload",
            "not the earlier call's panic, with its location"
        );
    }
}
