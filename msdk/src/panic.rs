//! Panic isolation: a panic inside a call becomes [`ModuleError::Panic`] with its
//! message and location, instead of unwinding into the host (which would abort it) or
//! printing to stderr.
//!
//! A module is a cdylib with its own copy of `std`, so the hook installed here sees
//! only the module's panics. While a call is running on a thread (the boundary has
//! filled the thread's running-call slot, see `log::with_slot`), the hook records the
//! message for the boundary to return; at any other time it defers to the hook that was
//! installed before it.
//!
//! [`ModuleError::Panic`]: crate::ModuleError::Panic

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, PanicHookInfo};
use std::sync::Once;

thread_local! {
    /// The message of the last panic caught while capturing.
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the capturing hook, once per module image.
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if crate::log::in_call() {
                let text = describe(info);
                // `try_with`: the thread may be tearing down its locals.
                let _ = LAST.try_with(|last| *last.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

/// The message of a caught panic: what the hook recorded (with the location), or the
/// payload when the hook did not run (another hook replaced ours).
pub(crate) fn message(payload: Box<dyn Any + Send>) -> String {
    let recorded = LAST.with(|last| last.borrow_mut().take());
    let text = recorded.unwrap_or_else(|| payload_text(payload.as_ref()).to_owned());
    // Dropping a payload can itself panic; that must not escape either.
    let _ = panic::catch_unwind(panic::AssertUnwindSafe(move || drop(payload)));
    text
}

fn describe(info: &PanicHookInfo<'_>) -> String {
    let text = payload_text(info.payload());
    match info.location() {
        Some(loc) => format!("{text} (at {}:{}:{})", loc.file(), loc.line(), loc.column()),
        None => text.to_owned(),
    }
}

fn payload_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "panic with a non-string payload"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_panics_carry_message_and_location() {
        install_hook();
        let payload = crate::log::with_slot(|slot| {
            slot.set(Some(crate::log::CurrentCall::starting(
                core::ptr::null_mut(),
                0,
                0,
            )));
            let payload = panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
            slot.set(None);
            payload
        });
        let text = message(payload);
        assert!(text.starts_with("boom 7 (at "), "{text}");
        assert!(text.contains("panic.rs"), "{text}");
    }

    #[test]
    fn payload_is_used_when_nothing_was_recorded() {
        let payload: Box<dyn Any + Send> = Box::new("plain");
        assert_eq!(message(payload), "plain");
        let payload: Box<dyn Any + Send> = Box::new(5u8);
        assert_eq!(message(payload), "panic with a non-string payload");
    }
}
