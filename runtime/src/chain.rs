//! The calls a thread runs, innermost first: the call it runs in a module (its frame,
//! which `HostApi::running_call` answers, and the host's side of it, by which the host's
//! services know the call handles they are given) and the calls whose host code it runs
//! (an interceptor's, a log sink's), each with what a call made from there carries.
//!
//! In a thread-local of its own, of plain `Cell`s with no destructor, apart from the
//! thread's state (`crate::thread`), which is destroyed with the thread's locals: this
//! one is there until the thread ends, so a call made from a thread-local's destructor
//! keeps its chain (its depth limit, its deadline, the modules it re-enters) and a
//! module it calls keeps the host's services.

use core::ffi::c_void;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::meta::CallMeta;

/// A thread's calls (see the module's docs). Only pointers to values on the stacks of
/// the calls that set them, each put back before its value is dropped.
struct Chain {
    /// The frame of the innermost call this thread runs in a module, or null.
    frame: Cell<*mut c_void>,
    /// The host's side of that call (a `crate::host_call::HostCall`), or null. Kept
    /// beside the frame, not read from the frame's `host_call`: the frame lies in memory
    /// the module writes, and a module that wrote over that input would have the host
    /// follow its pointer.
    call: Cell<*const c_void>,
    /// The innermost call whose host code this thread runs, or null.
    hooked: Cell<*const Hooked>,
    /// While a module's sink is given the output of a nested call (at this depth), the
    /// depth of that call, else 0: see [`in_sink`].
    sink_depth: Cell<u32>,
    /// The handle of this thread's last call: its number in the low bits (0 before its
    /// first call), and its calls so far above them. See [`next_handle`].
    handles: Cell<u64>,
}

thread_local! {
    static CHAIN: Chain = const {
        Chain {
            frame: Cell::new(core::ptr::null_mut()),
            call: Cell::new(core::ptr::null()),
            hooked: Cell::new(core::ptr::null()),
            sink_depth: Cell::new(0),
            handles: Cell::new(0),
        }
    };
}

/// Bits of a call handle that number its thread (the low ones); the bits above count
/// the thread's calls.
const THREAD_BITS: u32 = 24;

/// Threads numbered so far (for their call handles); the first is 1, so that no handle
/// is 0 (null).
static THREADS: AtomicU64 = AtomicU64::new(0);

/// The handle of a call this thread starts, which the module passes back to the host's
/// services (`CallFrame::host_call`): the thread's number in the low bits and its count
/// of calls above them, never the same for two calls of the thread (until 2^40 of them)
/// or two threads (until 2^24 have made calls). The count wraps out of the top, never
/// into the thread's number: one add a call. The address of the host's side of the call
/// was the handle before: a call that starts at the same depth of the thread's stack as
/// an earlier one had its handle, so a handle kept past its call (a module's mistake)
/// was taken for a later call's, which docs/abi.md says it is not.
#[inline(always)]
pub(crate) fn next_handle() -> usize {
    let Some(c) = chain() else {
        return 0;
    };
    let mut handles = c.handles.get();
    if handles == 0 {
        handles = number_thread();
    }
    let next = handles.wrapping_add(1 << THREAD_BITS);
    c.handles.set(next);
    next as usize
}

/// This thread's number, for its first call: 1 to 2^24 - 1.
#[cold]
#[inline(never)]
fn number_thread() -> u64 {
    THREADS.fetch_add(1, Ordering::Relaxed) % ((1 << THREAD_BITS) - 1) + 1
}

/// This thread's chain: always there (a thread-local with no destructor is never torn
/// down), but reached through `try_with`, whose failure branch is a null check: `with`
/// keeps a panic path the compiler would not inline into the call path (60 more
/// instructions a call, callgrind, `noop_by_id`).
#[inline(always)]
fn chain<'a>() -> Option<&'a Chain> {
    let chain = CHAIN.try_with(core::ptr::from_ref).ok()?;
    // SAFETY: `CHAIN` has no destructor, so it is never torn down: its memory lasts as
    // long as its thread, and only that thread's code can use the reference (`Chain` is
    // not `Sync`, so `&Chain` is not `Send`), which it does only while it runs. Whatever
    // lifetime a caller picks, every use of the reference is within the thread's life.
    Some(unsafe { &*chain })
}

/// A call whose host code runs on a thread: what a call that code makes carries, the
/// lineage and name of the module it runs for, whether the call holds its slot of that
/// module's gate meanwhile, the call the thread ran in a module when the code started
/// (or null), and the hooked call around it (or null).
struct Hooked {
    meta: CallMeta,
    lineage: u64,
    /// Borrowed for as long as the `hooked_by` that set it runs.
    name: *const str,
    holds_slot: bool,
    /// The innermost call this thread ran in a module when the hook's code started (see
    /// [`running_call`]): alive while the hook is, which runs inside it. Through it a
    /// call made from the hook's code, back into that call's runtime by way of another
    /// runtime's module, finds the chain it is part of, whose modules it re-enters and
    /// may not unload.
    call: *const c_void,
    outer: *const Hooked,
}

/// The call a thread ran in a module before [`enter`], which [`leave`] puts back.
#[must_use]
pub(crate) struct Outer {
    frame: *mut c_void,
    call: *const c_void,
}

/// Makes the call whose frame is `frame` and whose host's side is `call` the innermost
/// this thread runs in a module, until [`leave`] puts back what this returns. Both must
/// stay alive until then.
#[inline(always)]
pub(crate) fn enter(frame: *mut c_void, call: *const c_void) -> Outer {
    match chain() {
        Some(c) => Outer {
            frame: c.frame.replace(frame),
            call: c.call.replace(call),
        },
        None => Outer {
            frame: core::ptr::null_mut(),
            call: core::ptr::null(),
        },
    }
}

/// Puts back the call [`enter`] replaced.
#[inline(always)]
pub(crate) fn leave(outer: Outer) {
    if let Some(c) = chain() {
        c.frame.set(outer.frame);
        c.call.set(outer.call);
    }
}

/// The frame of the innermost call this thread runs in a module, or null.
pub(crate) fn running_frame() -> *mut c_void {
    chain().map_or(core::ptr::null_mut(), |c| c.frame.get())
}

/// The host's side of the innermost call this thread runs in a module (a
/// `crate::host_call::HostCall`), or null.
#[inline(always)]
pub(crate) fn running_call() -> *const c_void {
    chain().map_or(core::ptr::null(), |c| c.call.get())
}

/// Whether this thread runs no call: no module's code and no call's host code, so a
/// call made now starts a chain of its own.
#[inline(always)]
pub(crate) fn idle() -> bool {
    chain().is_none_or(|c| c.frame.get().is_null() && c.hooked.get().is_null())
}

/// Runs `f`, a module's sink given the output (or the error) of a nested call at
/// `depth`, with a call the sink makes counted one level deeper than that call.
///
/// The sink runs inside the nested call's `call_module`, on the host's stack, with its
/// caller as the innermost call again: counted from the caller alone, a sink that calls
/// again from each output (a pager fetching the next page) stayed one level below it
/// however many calls it stacked, and overflowed the host thread's stack instead of
/// meeting the depth limit. The depth before is put back after, `f` unwinding or not.
pub(crate) fn in_sink<R>(depth: u32, f: impl FnOnce() -> R) -> R {
    struct Restore<'a>(Option<&'a Chain>, u32);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            if let Some(c) = self.0 {
                c.sink_depth.set(self.1);
            }
        }
    }
    let chain = chain();
    let outer = chain.map_or(0, |c| c.sink_depth.replace(c.sink_depth.get().max(depth)));
    let _restore = Restore(chain, outer);
    f()
}

/// The depth a call made now is at least, one below the nested call whose output this
/// thread's module sink is given (0 outside any sink): see [`in_sink`].
pub(crate) fn sink_floor() -> u32 {
    chain().map_or(0, |c| c.sink_depth.get().saturating_add(1))
}

/// Runs `f`, host code of a call to the module of `lineage`, loaded under `name` (its
/// interceptors, a log sink given its records), with that call as this thread's hooked
/// call: a call `f`
/// makes carries `meta`'s chain, one level deeper; with `holds_slot` (the call runs in
/// the module meanwhile, a sink's record being one it logs), a call `f` makes to that
/// module re-enters it, whichever runtime it goes through, instead of waiting for the
/// slot its own chain holds; and an unload or reload of that module from `f` is refused
/// (it would wait for the call `f` runs in). The hooked call before is put back after,
/// `f` unwinding or not.
pub(crate) fn hooked_by<R>(
    meta: CallMeta,
    lineage: u64,
    name: &str,
    holds_slot: bool,
    f: impl FnOnce() -> R,
) -> R {
    /// Puts the outer hooked call back when dropped.
    struct Restore(*const Hooked);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(c) = chain() {
                c.hooked.set(self.0);
            }
        }
    }
    let hook = Hooked {
        meta,
        lineage,
        name,
        holds_slot,
        call: running_call(),
        outer: chain().map_or(core::ptr::null(), |c| c.hooked.get()),
    };
    // Declared after `hook`, so dropped before it: the pointer is put back while `hook`
    // is still alive.
    let _restore = Restore(hook.outer);
    if let Some(c) = chain() {
        c.hooked.set(&hook);
    }
    f()
}

/// What the innermost call whose host code this thread runs carries, if it runs any
/// (a copy: the call's own is on the stack of a frame that ends before this one does).
#[inline]
pub(crate) fn hooked() -> Option<CallMeta> {
    // SAFETY: the pointer is null or set by `hooked_by` to a `Hooked` on its stack frame,
    // which it puts back before that value is dropped, when it returns or unwinds: while
    // set, the value is alive in a frame outside this one (the chain is the thread's
    // own: no other thread sets it). It is read and copied here.
    chain().and_then(|c| unsafe { c.hooked.get().as_ref().map(|h| h.meta) })
}

/// Whether this thread runs host code of a call to the module of `lineage` (in this
/// version or another).
pub(crate) fn hooks_hold(lineage: u64) -> bool {
    any_hook(|h| h.lineage == lineage)
}

/// Whether this thread runs host code of a call to the module of `lineage` (in this
/// version or another) that holds its slot of that module's gate meanwhile.
#[inline]
pub(crate) fn hooks_hold_slot(lineage: u64) -> bool {
    any_hook(|h| h.holds_slot && h.lineage == lineage)
}

/// The lineage and name of the module of each call whose host code this thread runs,
/// innermost first.
pub(crate) fn each_hook(mut f: impl FnMut(u64, &str)) {
    any_hook(|h| {
        // SAFETY: the `hooked_by` that set this hook borrowed `name` for as long as it
        // runs, which it still does (`any_hook` visits only hooks on the chain).
        let name = unsafe { &*h.name };
        f(h.lineage, name);
        false
    });
}

/// The first of what `f` finds in the calls this thread ran in a module when the code of
/// each hooked call started (see [`Hooked::call`]), innermost first: each pointer is the
/// host's side of a call (a `crate::host_call::HostCall`) that is still running, as
/// [`running_call`]'s is.
pub(crate) fn find_hooked_call<R>(mut f: impl FnMut(*const c_void) -> Option<R>) -> Option<R> {
    let mut found = None;
    any_hook(|h| {
        found = (!h.call.is_null()).then(|| f(h.call)).flatten();
        found.is_some()
    });
    found
}

/// Whether any call whose host code this thread runs is one `which` says.
#[inline]
fn any_hook(mut which: impl FnMut(&Hooked) -> bool) -> bool {
    let mut hook = chain().map_or(core::ptr::null(), |c| c.hooked.get());
    // SAFETY: each pointer (the cell's, then each `outer`) is null or was set by a
    // `hooked_by` still running on this thread, to a `Hooked` on its stack frame, alive
    // until it returns (it puts the one before back first); no other thread sets them.
    // Each is read within this loop only.
    while let Some(h) = unsafe { hook.as_ref() } {
        if which(h) {
            return true;
        }
        hook = h.outer;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(depth: u32) -> CallMeta {
        CallMeta {
            depth,
            trace_id: 0,
            span_id: 0,
            deadline: None,
        }
    }

    /// A hook keeps the call the thread ran when its code started, while calls run
    /// inside that code, and is gone with the hook.
    #[test]
    fn a_hook_keeps_the_call_its_code_started_in() {
        let (call, inner) = (1u8, 2u8);
        let call_ptr: *const c_void = (&raw const call).cast();
        let first = |c| Some(c);
        let outer = enter(core::ptr::null_mut(), call_ptr);
        hooked_by(meta(1), 7, "a", false, || {
            let nested = enter(core::ptr::null_mut(), (&raw const inner).cast());
            assert_eq!(find_hooked_call(first), Some(call_ptr));
            leave(nested);
        });
        leave(outer);
        // A hook with no call around it keeps none.
        hooked_by(meta(1), 8, "b", false, || {
            assert_eq!(find_hooked_call(first), None);
        });
        assert_eq!(find_hooked_call(first), None);
    }

    #[test]
    fn hooked_calls_nest_and_are_put_back_even_when_their_code_unwinds() {
        assert!(idle() && hooked().is_none());
        hooked_by(meta(1), 7, "a", true, || {
            assert!(!idle());
            assert_eq!(hooked().map(|m| m.depth), Some(1));
            hooked_by(meta(2), 8, "b", false, || {
                assert_eq!(hooked().map(|m| m.depth), Some(2));
                assert!(hooks_hold(7) && hooks_hold(8) && !hooks_hold(9));
                assert!(hooks_hold_slot(7) && !hooks_hold_slot(8));
            });
            let unwound =
                std::panic::catch_unwind(|| hooked_by(meta(3), 9, "c", false, || panic!()));
            assert!(unwound.is_err());
            assert_eq!(hooked().map(|m| m.depth), Some(1));
        });
        assert!(idle() && hooked().is_none() && !hooks_hold(7));
    }

    #[test]
    fn a_call_from_a_sink_is_below_the_deepest_sink_and_the_floor_is_put_back() {
        assert_eq!(sink_floor(), 1);
        in_sink(3, || {
            assert_eq!(sink_floor(), 4);
            // A sink of a shallower call inside keeps the deeper floor.
            in_sink(2, || assert_eq!(sink_floor(), 4));
            in_sink(5, || assert_eq!(sink_floor(), 6));
            let unwound = std::panic::catch_unwind(|| in_sink(7, || panic!()));
            assert!(unwound.is_err());
            assert_eq!(sink_floor(), 4);
        });
        assert_eq!(sink_floor(), 1);
    }

    #[test]
    fn a_call_entered_is_the_running_one_until_it_leaves() {
        let (mut frame, call) = (0u8, 0u8);
        let outer = enter((&raw mut frame).cast(), (&raw const call).cast());
        assert!(!idle());
        assert_eq!(running_frame(), (&raw mut frame).cast());
        assert_eq!(running_call(), (&raw const call).cast());
        leave(outer);
        assert!(idle() && running_frame().is_null() && running_call().is_null());
    }

    /// The chain is there while the thread destroys its locals: a destructor that runs
    /// after the thread's state is gone (`crate::thread`) still sees the calls around
    /// it.
    #[test]
    fn the_chain_outlives_the_threads_other_locals() {
        use std::sync::atomic::{AtomicU32, Ordering};
        /// The depth the destructor saw its hooked call carry (0: none).
        static SEEN: AtomicU32 = AtomicU32::new(0);
        struct Late;
        impl Drop for Late {
            fn drop(&mut self) {
                let depth = hooked_by(meta(4), 1, "d", false, || hooked().map(|m| m.depth));
                SEEN.store(depth.unwrap_or(0), Ordering::SeqCst);
            }
        }
        thread_local! {
            static LATE: Late = const { Late };
        }
        std::thread::spawn(|| LATE.with(|_| ())).join().unwrap();
        assert_eq!(SEEN.load(Ordering::SeqCst), 4);
    }
}
