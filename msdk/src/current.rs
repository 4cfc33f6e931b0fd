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
use core::ptr;
use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::abi::{CallFrame, HostApi};
use crate::dispatch::MethodEntry;

/// The running call on this thread, for the records it logs and the panics it records.
#[derive(Clone, Copy)]
pub(crate) struct CurrentCall {
    /// The frame the host made the call with (valid while the call runs, which is while
    /// this description is used: it is made and dropped by code running under the call);
    /// null outside a host's call (`panic::isolate`).
    frame: *mut CallFrame,
    /// The host whose call it is, the one that answered for `frame`; null with it.
    host: *const HostApi,
    /// The method the frame names: its index and id.
    method: (u32, u32),
}

impl CurrentCall {
    /// Work that [`crate::panic::isolate`] runs, with no host's call behind it.
    pub(crate) fn isolated() -> CurrentCall {
        CurrentCall {
            frame: ptr::null_mut(),
            host: ptr::null(),
            method: (0, 0),
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
        // SAFETY: a non-null frame is the running call's (`running`), valid for reads
        // while it runs; one field is read through the pointer, making no reference.
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

    /// The crate the running export belongs to (the module's name).
    pub(crate) fn module(&self) -> &'static str {
        self.entry()
            .map_or_else(crate::dispatch::module_name, |e| e.crate_name)
    }

    /// The export running, when the frame names one of this module's.
    fn entry(&self) -> Option<&'static MethodEntry> {
        let (index, id) = self.method;
        self.read(|_| crate::dispatch::table().entry(index, id))
            .flatten()
    }

    fn read<T>(&self, f: impl FnOnce(*mut CallFrame) -> T) -> Option<T> {
        (!self.frame.is_null()).then(|| f(self.frame))
    }
}

/// The hosts that initialized this image, asked in turn for their running call: two
/// runtimes of one process that load the same file share its image.
static HOSTS: [AtomicPtr<HostApi>; 4] = [const { AtomicPtr::new(ptr::null_mut()) }; 4];

/// Adds `host` to the hosts asked (at `memlink_init`); a fifth host replaces the fourth.
///
/// # Safety
///
/// `host` must be valid, and large enough for this module's [`HostApi`], until the
/// image's last `memlink_shutdown` ([`disconnect`]).
pub(crate) unsafe fn connect(host: *const HostApi) {
    let host = host.cast_mut();
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

/// The call running on this thread, if any: the innermost host call a connected host
/// runs here, else isolated work.
pub(crate) fn current_call() -> Option<CurrentCall> {
    HOSTS
        .iter()
        .find_map(|h| running(h.load(Ordering::Acquire)))
        .or_else(|| {
            let isolating = ISOLATING.try_with(|n| n.get() > 0).unwrap_or(false);
            isolating.then(CurrentCall::isolated)
        })
}

/// The call `host` (null or a connected host) runs on this thread, if it says one.
fn running(host: *const HostApi) -> Option<CurrentCall> {
    // SAFETY: a connected host is valid and large enough until the image's last
    // shutdown (`connect`'s contract), which no running code of the module outlives.
    let api = unsafe { host.as_ref() }?;
    // SAFETY: the host's contract for `running_call`: callable from any thread.
    let frame = unsafe { (api.running_call?)() }.cast::<CallFrame>();
    if frame.is_null() {
        return None;
    }
    // SAFETY: the host's contract: a non-null answer is the frame of a call running
    // below us on this thread, valid for reads of what the host wrote; fields are read
    // through the pointer, making no reference.
    let (named, index, id) = unsafe {
        (
            (&raw const (*frame).host).read(),
            (&raw const (*frame).method_index).read(),
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
        method: (index, id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::tests::{call_frame, running, HOST};

    #[test]
    fn the_running_call_is_the_hosts_innermost_frame() {
        let mut arena = [0u8; 16];
        let mut outer = call_frame(&[], &mut arena);
        let mut inner = call_frame(&[], &mut arena);
        inner.trace_id = 70;
        inner.host_call = ptr::without_provenance_mut(0x10);
        let (outer_ptr, inner_ptr) = (&raw mut outer, &raw mut inner);
        running(outer_ptr, || {
            let call = current_call().expect("the host runs a call");
            assert_eq!((call.frame(), call.trace()), (outer_ptr, (7, 9)));
            assert_eq!(call.host(), &raw const HOST);
            running(inner_ptr, || {
                let call = current_call().expect("the nested call");
                assert_eq!((call.frame(), call.trace()), (inner_ptr, (70, 9)));
                assert_eq!(call.host_call(), ptr::without_provenance_mut(0x10));
            });
            assert_eq!(current_call().map(|c| c.frame()), Some(outer_ptr));
        });
        assert!(current_call().is_none(), "no call once the host returned");
    }

    #[test]
    fn a_frame_that_names_another_table_is_not_used() {
        static OTHER: HostApi = HostApi { size: 0, ..HOST };
        let mut arena = [0u8; 16];
        let mut frame = call_frame(&[], &mut arena);
        frame.host = &raw const OTHER;
        running(&raw mut frame, || assert!(current_call().is_none()));
    }

    #[test]
    fn isolated_work_is_a_call_with_no_host_behind_it() {
        assert!(current_call().is_none());
        let call = isolated(|| current_call().expect("isolated work is the running call"));
        assert!(call.frame().is_null() && call.host().is_null());
        assert_eq!((call.trace(), call.method()), ((0, 0), ""));
        assert!(current_call().is_none(), "the mark is taken down");
    }
}
