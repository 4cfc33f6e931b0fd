//! Panic isolation: a panic inside a call becomes [`ModuleError::Panic`] with its
//! message and location, instead of unwinding into the host (which would abort it) or
//! printing to stderr.
//!
//! A module is a cdylib with its own copy of `std`, so the hook installed here sees
//! only the module's panics. (Not one built with `-C prefer-dynamic`, which shares the
//! toolchain's `libstd.so`, and so one hook, with the host and every such module: the
//! last one installed records every module's panics, so a panic of another such module
//! comes back without its location, and a hook the host installs later takes the
//! modules' panics too. Build modules without it.) While a call is running on a thread (the host says so,
//! `crate::current`), the hook records the message, tagged with the call's frame, for
//! that call's boundary to return; at any other time it defers to the hook that was
//! installed before it. What a call recorded and its boundary did not return (a panic
//! the export caught itself) is forgotten when the call ends.
//!
//! Some panics cannot unwind, and then no boundary will ever return their message: the
//! process aborts right after the hook. That happens for a panic in a `Drop` that runs
//! while another panic unwinds, for the standard library's checks of undefined behaviour
//! (a misaligned pointer dereference in a debug build, an unsafe precondition), and for
//! every panic of a module built with `panic = "abort"`. For those the hook prints, on
//! stderr, the module, the export and every message the call had recorded, so the host's
//! last words say what happened instead of only "non-unwinding panic".
//!

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::io::Write as _;
use std::panic::{self, PanicHookInfo};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use crate::abi::CallFrame;
use crate::current::CurrentCall;
use crate::error::ModuleError;

/// A panic the hook recorded during a call.
#[derive(Debug, Clone)]
struct Recorded {
    /// The frame of the call it happened in (null for `isolate`'s work): a call that
    /// re-enters the module through a nested call has a frame of its own, so its
    /// boundary never returns its caller's panic.
    frame: *mut CallFrame,
    /// The message with its location: what the host receives.
    text: String,
    /// The payload's own text, when it is a string: `message` matches the payload it is
    /// handed against it, so a panic that user code caught (and that the boundary never
    /// saw) cannot lend its message to another in the same call.
    payload: Option<String>,
    /// The payload's type, matched too: two payloads that are no strings (a caught
    /// `panic_any(1u32)`, then `resume_unwind(Box::new(2u64))`, which runs no hook) have
    /// no text to tell them apart.
    kind: TypeId,
}

/// Panics recorded and not yet returned. Bounded: only the most recent matter.
const KEPT: usize = 4;

/// How many panics are recorded, on every thread: while none is, the end of a call
/// ([`end_of_call`]) is one load; else it forgets what was recorded for the ending call.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// A thread's recorded panics; what is left of them when the thread ends leaves the
/// count too.
struct Records(RefCell<Vec<Recorded>>);

impl Records {
    /// Forgets the records of the call on `frame`, and leaves the count.
    fn forget(&self, frame: *mut CallFrame) {
        let mut r = self.0.borrow_mut();
        let before = r.len();
        r.retain(|p| p.frame != frame);
        PENDING.fetch_sub(before - r.len(), Ordering::Relaxed);
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        let r = self.0.get_mut();
        PENDING.fetch_sub(r.len(), Ordering::Relaxed);
        r.clear();
    }
}

thread_local! {
    static RECORDED: Records = const { Records(RefCell::new(Vec::new())) };
}

/// Installs the capturing hook, once per module image.
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            crate::current::with_current_call(|call| match call {
                Some(call) => record(info, &call),
                None => previous(info),
            });
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
    // Outside a host's call, the work is the running call: panics are recorded for this
    // boundary, and log records go to the host the module was initialized by. Inside
    // one, the hook tags what it records with that call's frame, as here.
    crate::current::isolated(|| {
        let frame = crate::current::running_frame();
        let caught = panic::catch_unwind(panic::AssertUnwindSafe(f))
            .map_err(|payload| ModuleError::Panic(message(payload, frame)));
        // Inside a host's call, what is left of the records is the call's, for its
        // boundary (a `Drop` that isolates work while the call's panic unwinds must not
        // lose that panic's record).
        if frame.is_null() {
            end_of_call(frame);
        }
        caught
    })
}

fn record(info: &PanicHookInfo<'_>, call: &CurrentCall<'_>) {
    let recorded = Recorded {
        frame: call.frame(),
        text: describe(info),
        payload: payload_text(info.payload()).map(str::to_owned),
        // The payload's own type, not the reference's: what the boundary's box holds.
        kind: (*info.payload()).type_id(),
    };
    let pending = RECORDED
        .try_with(|r| {
            let mut r = r.0.borrow_mut();
            if r.len() == KEPT {
                r.remove(0);
            } else {
                PENDING.fetch_add(1, Ordering::Relaxed);
            }
            r.push(recorded.clone());
            r.iter()
                .filter(|p| p.frame == call.frame())
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

/// The message of a panic caught at the boundary of the call on `frame` (null for
/// `isolate`'s work): what the hook recorded for this payload in this call (with the
/// location), or the payload's text when the hook did not record it (another hook
/// replaced ours, the host keeps no running call, or the panic was resumed with
/// `resume_unwind`, which runs no hook).
pub(crate) fn message(payload: Box<dyn Any + Send>, frame: *mut CallFrame) -> String {
    let own = payload_text(payload.as_ref()).map(str::to_owned);
    // The boxed value's type, not the box's.
    let kind = (*payload).type_id();
    let recorded = RECORDED
        .try_with(|r| {
            let found = {
                let r = r.0.borrow();
                r.iter()
                    .rposition(|p| p.frame == frame && p.kind == kind && p.payload == own)
            };
            found.map(|i| {
                PENDING.fetch_sub(1, Ordering::Relaxed);
                r.0.borrow_mut().remove(i).text
            })
        })
        .ok()
        .flatten();
    let text = recorded
        .or(own)
        .unwrap_or_else(|| "panic with a non-string payload".to_owned());
    drop_payload(payload);
    text
}

/// How many payloads in a row [`drop_payload`] drops, each the panic of the one before's
/// drop, before it leaks the next.
const PAYLOAD_DROPS: usize = 16;

/// Drops a caught panic's payload where nothing unwinds out: its drop is the author's
/// code and may panic, with a payload whose own drop may panic in turn. Each is dropped
/// inside a catch of its own; past [`PAYLOAD_DROPS`] of them the last is leaked, which
/// is safe, so a drop that panics every time ends too. A panic out of a module's entry
/// point would abort the host (they are `extern "C"`).
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    let mut payload = payload;
    for _ in 0..PAYLOAD_DROPS {
        match panic::catch_unwind(panic::AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(next) => payload = next,
        }
    }
    core::mem::forget(payload);
}

/// Ends the call on `frame` (null: `isolate`'s work outside a host's call) at its
/// boundary: the panics recorded for it and not returned (ones the export caught itself)
/// are forgotten, so none names a panic of a later call whose frame lands at the same
/// address. A call's caller keeps its own records: a call made while its caller's panic
/// unwinds (from a `Drop`) does not take that panic's location away. One load while no
/// thread has a record.
#[inline(always)]
pub(crate) fn end_of_call(frame: *mut CallFrame) {
    if PENDING.load(Ordering::Relaxed) != 0 {
        forget_recorded(frame);
    }
}

#[cold]
#[inline(never)]
fn forget_recorded(frame: *mut CallFrame) {
    let _ = RECORDED.try_with(|r| r.forget(frame));
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

    /// A payload whose drop resumes unwinding with one `0` levels down, counting drops.
    struct Chained(u32, std::sync::Arc<AtomicUsize>);

    impl Drop for Chained {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::Relaxed);
            if self.0 > 0 {
                panic::resume_unwind(Box::new(Chained(self.0 - 1, self.1.clone())));
            }
        }
    }

    #[test]
    fn a_payload_whose_drops_panic_in_a_chain_is_dropped_to_its_end() {
        let drops = std::sync::Arc::new(AtomicUsize::new(0));
        drop_payload(Box::new(Chained(3, drops.clone())));
        assert_eq!(
            drops.load(Ordering::Relaxed),
            4,
            "each payload of the chain dropped"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "leaks the chain's last payload, as it is meant to")]
    fn a_payload_whose_drops_panic_without_end_is_leaked() {
        let drops = std::sync::Arc::new(AtomicUsize::new(0));
        drop_payload(Box::new(Chained(u32::MAX, drops.clone())));
        assert_eq!(
            drops.load(Ordering::Relaxed),
            PAYLOAD_DROPS,
            "a chain without end is dropped so far, then leaked"
        );
    }

    /// Runs `f` as if inside a call, as the boundary does: the message of the payload
    /// `f` returns, as that call's boundary would return it, or `None`.
    fn in_call(f: impl FnOnce() -> Option<Box<dyn Any + Send>>) -> Option<String> {
        install_hook();
        crate::current::isolated(|| {
            let text = f().map(|payload| message(payload, core::ptr::null_mut()));
            end_of_call(core::ptr::null_mut());
            text
        })
    }

    #[test]
    fn captured_panics_carry_message_and_location() {
        let text = in_call(|| panic::catch_unwind(|| panic!("boom {}", 7)).err()).unwrap();
        assert!(text.starts_with("boom 7 (at "), "{text}");
        assert!(text.contains("panic.rs"), "{text}");
    }

    #[test]
    fn payload_is_used_when_nothing_was_recorded() {
        let payload: Box<dyn Any + Send> = Box::new("plain");
        assert_eq!(message(payload, core::ptr::null_mut()), "plain");
        let payload: Box<dyn Any + Send> = Box::new(5u8);
        assert_eq!(
            message(payload, core::ptr::null_mut()),
            "panic with a non-string payload"
        );
    }

    #[test]
    fn a_panic_caught_by_user_code_does_not_name_a_later_one() {
        let text = in_call(|| {
            // The export catches a panic of its own and carries on...
            let _ = panic::catch_unwind(|| panic!("handled inside"));
            // ...then fails with a payload the hook never sees.
            panic::catch_unwind(|| panic::resume_unwind(Box::new(42u32))).err()
        });
        assert_eq!(text.unwrap(), "panic with a non-string payload");
        let text = in_call(|| {
            let _ = panic::catch_unwind(|| panic!("handled inside"));
            panic::catch_unwind(|| panic::resume_unwind(Box::new("resumed"))).err()
        });
        assert_eq!(text.unwrap(), "resumed");
        // Two payloads that are no strings: told apart by their types.
        let text = in_call(|| {
            let _ = panic::catch_unwind(|| panic::panic_any(42u32));
            panic::catch_unwind(|| panic::resume_unwind(Box::new(7u64))).err()
        });
        assert_eq!(text.unwrap(), "panic with a non-string payload");
        // One of the same type as the hook saw is that panic.
        let text = in_call(|| panic::catch_unwind(|| panic::panic_any(42u32)).err());
        assert!(
            text.as_deref()
                .is_some_and(|t| t.starts_with("panic with a non-string payload (at ")),
            "{text:?}"
        );
    }

    #[test]
    fn a_new_call_ignores_what_the_last_one_recorded() {
        in_call(|| {
            let _ = panic::catch_unwind(|| panic::panic_any(1u8));
            None
        });
        let text = in_call(|| panic::catch_unwind(|| panic::resume_unwind(Box::new(2u8))).err());
        assert_eq!(
            text.unwrap(),
            "panic with a non-string payload",
            "not the earlier call's panic, with its location"
        );
        let left = RECORDED.with(|r| r.0.borrow().len());
        assert_eq!(
            left, 0,
            "the end of a call forgets what its thread recorded"
        );
    }

    #[test]
    fn a_panic_is_returned_by_its_own_calls_boundary_only() {
        let outer = core::ptr::without_provenance_mut::<CallFrame>(0x40);
        let inner = core::ptr::without_provenance_mut::<CallFrame>(0x80);
        let recorded = |frame, text: &str| Recorded {
            frame,
            text: format!("{text} (at here)"),
            payload: Some(text.to_owned()),
            kind: TypeId::of::<&'static str>(),
        };
        RECORDED.with(|r| {
            r.0.borrow_mut().push(recorded(outer, "same"));
            PENDING.fetch_add(1, Ordering::Relaxed);
        });
        let payload: Box<dyn Any + Send> = Box::new("same");
        assert_eq!(
            message(payload, inner),
            "same",
            "the outer call's record is not the inner's"
        );
        let payload: Box<dyn Any + Send> = Box::new("same");
        assert_eq!(message(payload, outer), "same (at here)");
        end_of_call(outer);
    }

    /// What a `Drop` does while the call's panic unwinds (work it isolates, a nested call
    /// back into the module, which ends) does not take the panic's record from the
    /// call's boundary.
    #[test]
    fn cleanup_during_an_unwind_keeps_the_calls_record() {
        use crate::test_host::{call_frame, running, HOST};
        install_hook();
        // SAFETY: `HOST` is a static, as large as this module's table.
        unsafe { crate::current::connect(&raw const HOST) };
        struct Cleanup(*mut CallFrame);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                assert_eq!(isolate(|| 1), Ok(1));
                let nested = self.0;
                // SAFETY: the nested frame outlives the cleanup, and names the tests'
                // host, whose services take any handle.
                unsafe { running(nested, || end_of_call(nested)) };
            }
        }
        let mut arena = [0u8; 16];
        let mut outer = call_frame(&[], &mut arena);
        let mut nested = call_frame(&[], &mut arena);
        let (outer, nested) = (&raw mut outer, &raw mut nested);
        // SAFETY: as in `Cleanup`: the outer frame outlives the call.
        let text = unsafe {
            running(outer, || {
                let payload = panic::catch_unwind(|| {
                    let _cleanup = Cleanup(nested);
                    panic!("the call's own panic")
                })
                .unwrap_err();
                let text = message(payload, outer);
                end_of_call(outer);
                text
            })
        };
        assert!(text.starts_with("the call's own panic (at "), "{text}");
        assert_eq!(RECORDED.with(|r| r.0.borrow().len()), 0, "nothing left");
    }
}
