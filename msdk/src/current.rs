//! The call running on this thread: what the panic hook and the log know of it.
//!
//! The call boundary keeps no record of its call. The host does: it knows which frame it
//! passed to `memlink_call` on this thread, and answers [`HostApi::running_call`] from a
//! thread-local of its own, which it reaches with a load where the module would need a
//! call (a module is a library loaded with `dlopen`, whose thread-locals are reached
//! through `__tls_get_addr`). So a call costs the module nothing for it, and a log record
//! or a recorded panic, which need the export, the trace and the host's handle, ask the
//! hosts that initialized the module. [`crate::panic::isolate`] marks the work it runs
//! in a thread-local of the module's own, which only it touches.

use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr;
use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::abi::{CallFrame, HostApi};
use crate::dispatch::MethodEntry;

/// The running call on this thread, for the records it logs and the panics it records:
/// lent by [`with_current_call`] for `'a`, within which the call runs.
#[derive(Clone, Copy)]
pub(crate) struct CurrentCall<'a> {
    /// The frame the host made the call with, valid for reads of what the host wrote
    /// for `'a`; null outside a host's call (`panic::isolate`).
    frame: *mut CallFrame,
    /// The host whose call it is, the one that answered for `frame`; null with it.
    host: *const HostApi,
    /// The method the frame names by its id.
    method_id: u32,
    _call: PhantomData<&'a CallFrame>,
}

impl CurrentCall<'_> {
    /// Work that [`crate::panic::isolate`] runs, with no host's call behind it.
    fn isolated() -> CurrentCall<'static> {
        CurrentCall {
            frame: ptr::null_mut(),
            host: ptr::null(),
            method_id: 0,
            _call: PhantomData,
        }
    }

    /// The frame of the call, null outside a host's call: what a recorded panic is tagged
    /// with, so that the boundary of that call, and no other, returns its message.
    pub(crate) fn frame(&self) -> *mut CallFrame {
        self.frame
    }

    /// The services of the host that made the call (a record goes to the host whose call
    /// logged it, even when two hosts share the image); null outside a host's call.
    pub(crate) fn host(&self) -> *const HostApi {
        self.host
    }

    /// The host's handle of the call; null outside a host's call.
    pub(crate) fn host_call(&self) -> *mut c_void {
        // SAFETY: a non-null frame is the running call's, valid for reads for `'a`
        // (`running`); one field is read through the pointer, making no reference.
        self.read(|f| unsafe { (&raw const (*f).host_call).read() })
            .unwrap_or(ptr::null_mut())
    }

    /// The call's trace and span ids (0 outside a host's call).
    pub(crate) fn trace(&self) -> (u64, u64) {
        // SAFETY: as in `host_call`.
        self.read(|f| unsafe {
            (
                (&raw const (*f).trace_id).read(),
                (&raw const (*f).span_id).read(),
            )
        })
        .unwrap_or((0, 0))
    }

    /// The running export's name, `""` outside a host's call.
    pub(crate) fn method(&self) -> &'static str {
        self.entry().map_or("", |e| e.name)
    }

    /// The module's name (an export from a library crate is named for the module it is
    /// linked into, not for its crate).
    pub(crate) fn module(&self) -> &'static str {
        crate::dispatch::module_name()
    }

    /// The export running, when the frame names one of this module's (by its id: an
    /// export's own entry point does not read the frame's index).
    fn entry(&self) -> Option<&'static MethodEntry> {
        let id = self.method_id;
        self.read(|_| crate::dispatch::table().entry_by_id(id))
            .flatten()
    }

    fn read<T>(&self, f: impl FnOnce(*mut CallFrame) -> T) -> Option<T> {
        (!self.frame.is_null()).then(|| f(self.frame))
    }
}

/// The hosts that initialized this image, asked in turn for their running call: two
/// runtimes of one process that load the same file share its image.
static HOSTS: [AtomicPtr<HostApi>; 4] = [const { AtomicPtr::new(ptr::null_mut()) }; 4];

/// The host that initialized this image last: where a record logged outside any host's
/// call goes (`crate::log`).
static LATEST: AtomicPtr<HostApi> = AtomicPtr::new(ptr::null_mut());

/// Adds `host` to the hosts asked (at `memlink_init`); a fifth host replaces the fourth.
///
/// # Safety
///
/// `host` must be valid, and large enough for this module's [`HostApi`], until the
/// image's last `memlink_shutdown` ([`disconnect`]), and for as long as a thread the
/// module started may still log (`memlink_init`'s contract).
pub(crate) unsafe fn connect(host: *const HostApi) {
    let host = host.cast_mut();
    LATEST.store(host, Ordering::Release);
    if HOSTS.iter().any(|h| h.load(Ordering::Acquire) == host) {
        return;
    }
    let free = HOSTS.iter().find(|h| {
        h.compare_exchange(ptr::null_mut(), host, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    });
    if free.is_none() {
        HOSTS[HOSTS.len() - 1].store(host, Ordering::Release);
    }
}

/// Forgets every host (at the image's last `memlink_shutdown`).
pub(crate) fn disconnect() {
    for h in &HOSTS {
        h.store(ptr::null_mut(), Ordering::Release);
    }
    LATEST.store(ptr::null_mut(), Ordering::Release);
}

/// The host that initialized this image last, null before the first `memlink_init` and
/// after the last `memlink_shutdown`; valid as long as [`connect`]'s contract says.
pub(crate) fn latest_host() -> *const HostApi {
    LATEST.load(Ordering::Acquire)
}

thread_local! {
    /// How many `panic::isolate`s run on this thread.
    static ISOLATING: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` as isolated work: with no host's call running on the thread, it is the
/// running call the panic hook records for.
pub(crate) fn isolated<R>(f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let _ = ISOLATING.try_with(|n| n.set(n.get().saturating_sub(1)));
        }
    }
    let _ = ISOLATING.try_with(|n| n.set(n.get() + 1));
    let _leave = Leave;
    f()
}

/// Runs `f` with the call running on this thread, if any: the innermost host call a
/// connected host runs here (the first host that answers), else isolated work. The
/// description is lent to `f` alone: the call runs while `f` does, and no copy of it
/// outlives `f`.
pub(crate) fn with_current_call<R>(f: impl FnOnce(Option<CurrentCall<'_>>) -> R) -> R {
    let running = HOSTS
        .iter()
        .find_map(|h| running(h.load(Ordering::Acquire)));
    let call = running.or_else(|| {
        let isolating = ISOLATING.try_with(|n| n.get() > 0).unwrap_or(false);
        isolating.then(CurrentCall::isolated)
    });
    f(call)
}

/// The frame of the call running on this thread, null outside a host's call: a tag to
/// compare, never read.
pub(crate) fn running_frame() -> *mut CallFrame {
    with_current_call(|call| call.map_or(ptr::null_mut(), |c| c.frame()))
}

/// The call `host` (null or a connected host) runs on this thread, if it says one.
fn running<'a>(host: *const HostApi) -> Option<CurrentCall<'a>> {
    // SAFETY: a connected host is valid and large enough until the image's last
    // shutdown, and while the module's own threads may still log (`connect`'s
    // contract).
    let api = unsafe { host.as_ref() }?;
    // SAFETY: the host's contract for `running_call`: callable from any thread.
    let frame = unsafe { (api.running_call?)() }.cast::<CallFrame>();
    if frame.is_null() {
        return None;
    }
    // SAFETY: the host's contract: a non-null answer is the frame of a call running
    // below us on this thread, valid for reads of what the host wrote while that call
    // runs, which is longer than the caller's closure (`with_current_call`); fields are
    // read through the pointer, making no reference, `size` first (the first field of
    // every version of the frame), so nothing past a shorter frame's end is read.
    let (named, id) = unsafe {
        if ((&raw const (*frame).size).read() as usize) < size_of::<CallFrame>() {
            return None;
        }
        (
            (&raw const (*frame).host).read(),
            (&raw const (*frame).method_id).read(),
        )
    };
    // A frame that names another table is not a call of this host's to this module's
    // boundary (a host that got it wrong): nothing of it is used.
    if named != host {
        return None;
    }
    Some(CurrentCall {
        frame,
        host,
        method_id: id,
        _call: PhantomData,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_host::{call_frame, running, HOST};

    /// The call `with_current_call` lends, copied out as the values its readers see:
    /// the frame, the host, the trace and the host's handle.
    type Seen = (*mut CallFrame, *const HostApi, (u64, u64), *mut c_void);

    fn seen() -> Option<Seen> {
        // SAFETY: `HOST` is a static, as large as this module's table.
        unsafe { connect(&raw const HOST) };
        with_current_call(|call| call.map(|c| (c.frame(), c.host(), c.trace(), c.host_call())))
    }

    #[test]
    fn the_running_call_is_the_hosts_innermost_frame() {
        let mut arena = [0u8; 16];
        let mut outer = call_frame(&[], &mut arena);
        let mut inner = call_frame(&[], &mut arena);
        inner.trace_id = 70;
        inner.host_call = ptr::without_provenance_mut(0x10);
        let (outer_ptr, inner_ptr) = (&raw mut outer, &raw mut inner);
        let host = &raw const HOST;
        // SAFETY: both frames outlive their calls and name the tests' host, whose
        // services are never called here (the handle 0x10 is only compared).
        unsafe {
            running(outer_ptr, || {
                assert_eq!(seen(), Some((outer_ptr, host, (7, 9), ptr::null_mut())));
                running(inner_ptr, || {
                    let nested = (inner_ptr, host, (70, 9), ptr::without_provenance_mut(0x10));
                    assert_eq!(seen(), Some(nested));
                });
                assert_eq!(seen().map(|s| s.0), Some(outer_ptr));
                assert_eq!(running_frame(), outer_ptr);
            })
        };
        assert!(seen().is_none(), "no call once the host returned");
    }

    #[test]
    fn a_frame_that_names_another_table_or_is_short_is_not_used() {
        static OTHER: HostApi = HostApi { size: 0, ..HOST };
        let mut arena = [0u8; 16];
        let mut frame = call_frame(&[], &mut arena);
        frame.host = &raw const OTHER;
        // SAFETY: the frames outlive their calls; one names a table that is no host's,
        // the other is short: neither is used past its fields.
        unsafe { running(&raw mut frame, || assert!(seen().is_none())) };
        let mut short = call_frame(&[], &mut arena);
        short.size = 16;
        // SAFETY: as above.
        unsafe { running(&raw mut short, || assert!(seen().is_none())) };
    }

    #[test]
    fn isolated_work_is_a_call_with_no_host_behind_it() {
        assert!(seen().is_none());
        let call = isolated(seen).expect("isolated work is the running call");
        assert!(call.0.is_null() && call.1.is_null());
        assert_eq!((call.2, call.3), ((0, 0), ptr::null_mut()));
        assert!(seen().is_none(), "the mark is taken down");
    }
}
