//! The host's side of a running call: what `CallFrame::host_call` points at (the
//! handle a module passes back to the host's services, which find the call itself in
//! the thread's chain of calls, `crate::chain`), and what they reach through it.

use std::cell::Cell;

use crate::buffer::AlignedBuf;
pub(crate) use crate::meta::CallMeta;
use crate::module::Module;
use crate::registry::Registry;

/// A module-to-module call a module asked for, read from its `NestedCall`. The names
/// are as the module passed them, checked as UTF-8 only when they are looked up (a
/// thread's cached targets compare them as bytes: `crate::targets`).
#[derive(Debug)]
pub(crate) struct NestedRequest<'a> {
    pub(crate) module: &'a [u8],
    pub(crate) method: &'a [u8],
    pub(crate) args: &'a [u8],
    /// The request's `NESTED_*` flags: whether the arguments are MessagePack of a typed
    /// value, to convert to the callee's format, and whether that value may be raw.
    pub(crate) flags: u32,
}

/// The host's side of a running call.
pub(crate) struct HostCall<'r> {
    pub(crate) registry: &'r Registry,
    pub(crate) module: &'r Module,
    pub(crate) meta: &'r CallMeta,
    /// The index of the method called in `module`'s table, kept here for the services
    /// (a log record that names no method is the call's method's): the frame is the
    /// module's while it runs, and the host reads nothing from it until it returns.
    pub(crate) index: u32,
    /// The buffer `alloc_output` handed out, the only place besides the arena (and, for
    /// a result of at most 16 bytes, the frame's `small_out`) where the module may put
    /// its output. In a `Cell`, as the host holds shared references to
    /// the call while the module runs, and the module may ask for a buffer meanwhile.
    pub(crate) output: Cell<Option<AlignedBuf>>,
    /// The mark ([`panic_mark`]) of the panic the last nested call of this one ended
    /// with, 0 for none: a panic this call returns with the same message is its
    /// callee's, passed on, which was logged where it happened (not again as this call's
    /// own). A number, not the message: a field with a destructor cost every call a call
    /// to drop the frame's host side.
    pub(crate) nested_panic: Cell<u64>,
    /// The call that made this one, for a nested call.
    pub(crate) parent: Option<&'r HostCall<'r>>,
    /// The handle the module is given for the call (`CallFrame::host_call`), by which
    /// the services know it: a number, not an address (`crate::chain::next_handle`).
    pub(crate) handle: usize,
}

impl<'a> HostCall<'a> {
    /// The host's side of the innermost call a thread runs in a module, as
    /// `crate::chain::running_call` answers it, or `None` for null.
    ///
    /// # Safety
    ///
    /// `call` is null or the `HostCall` of a call this thread runs in a module
    /// (`crate::invoke::run_call` sets it around the entry point and puts the outer one
    /// back after), and the reference is not used after that call returns.
    #[inline]
    pub(crate) unsafe fn of_running(call: *const core::ffi::c_void) -> Option<&'a Self> {
        // SAFETY: `run_call` points `running_call` at the `HostCall` on its stack, alive
        // until the call returns, after the caller's use (the contract), and only shared
        // references to it are made while the module runs.
        unsafe { call.cast::<HostCall<'a>>().as_ref() }
    }

    /// Whether `module` runs a call on this chain (this call or one that led to it), in
    /// this version or another: a chain that holds a module's slot and reaches a version
    /// a reload put in its place meanwhile re-enters it, as it would the same version.
    /// (Waiting for the new version's slot could wait forever: its holder may be waiting
    /// for a module this chain holds.)
    pub(crate) fn chain_holds(&self, module: &Module) -> bool {
        let mut call = Some(self);
        while let Some(c) = call {
            if c.module.lineage == module.lineage {
                return true;
            }
            call = c.parent;
        }
        false
    }

    /// What a call made on behalf of this one carries: the same trace, the same
    /// deadline, one level deeper; made from a module's sink, deeper than the call whose
    /// output the sink is given too (`crate::chain::in_sink`).
    pub(crate) fn nested_meta(&self) -> CallMeta {
        CallMeta {
            depth: (self.meta.depth + 1).max(crate::chain::sink_floor()),
            ..*self.meta
        }
    }
}

/// A panic message's mark for [`HostCall::nested_panic`]: its FNV-1a hash, never 0.
#[cold]
pub(crate) fn panic_mark(message: &str) -> u64 {
    crate::names::fnv1a(message).max(1)
}
