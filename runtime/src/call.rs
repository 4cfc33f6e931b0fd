//! The call path: a frame on the stack, an arena from the pool, the host services a
//! module may use during the call, and the output the caller gets back.

use core::ffi::c_void;
use std::ops::Deref;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use memlink_msdk::abi::{self, CallFrame, Format, HostApi, NestedCall, Status};
use memlink_msdk::ModuleError;

use memlink_msdk::archive::{self, Checkable};

use crate::arena::{AlignedBuf, ArenaPool, PooledArena, BUFFER_ALIGN};
use crate::module::Module;
use crate::runtime::Inner;

/// What travels with a call besides its arguments.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallMeta {
    pub(crate) depth: u32,
    pub(crate) trace_id: u64,
    pub(crate) span_id: u64,
    pub(crate) deadline: Option<Instant>,
}

/// The host's side of a running call; `CallFrame::host_call` points at it.
pub(crate) struct HostCall<'r> {
    runtime: &'r Inner,
    module: &'r Module,
    meta: CallMeta,
    output: Option<AlignedBuf>,
    /// The call that made this one, for a nested call.
    parent: Option<&'r HostCall<'r>>,
}

impl HostCall<'_> {
    /// Whether `module` runs a call on this chain (this call or one that led to it).
    pub(crate) fn chain_holds(&self, module: &Module) -> bool {
        let mut call = Some(self);
        while let Some(c) = call {
            if core::ptr::eq(c.module, module) {
                return true;
            }
            call = c.parent;
        }
        false
    }

    /// What a call made on behalf of this one carries: the same trace, the same
    /// deadline, one level deeper.
    pub(crate) fn nested_meta(&self) -> CallMeta {
        CallMeta {
            depth: self.meta.depth + 1,
            ..self.meta
        }
    }
}

/// The runtime and module behind a call handle, if there is one.
///
/// # Safety
///
/// `call` must be null or the `host_call` of a frame whose call is running.
pub(crate) unsafe fn call_of<'r>(call: *mut c_void) -> Option<(&'r Inner, &'r Module)> {
    // SAFETY: the caller's contract; the `HostCall` lives until its call returns, and
    // the runtime and module it borrows live longer.
    unsafe { call.cast::<HostCall<'r>>().as_ref() }.map(|c| (c.runtime, c.module))
}

/// The services every module gets, one static table for all.
pub(crate) static HOST_API: HostApi = HostApi {
    size: size_of::<HostApi>() as u32,
    reserved: 0,
    alloc_output: host_alloc_output,
    call_module: host_call_module,
    log: crate::log::host_log,
    backpressure: host_backpressure,
};

/// A call's result: the bytes the method returned, read in place (from the call's arena
/// when they fit there, which stays on loan until this is dropped).
#[derive(Debug)]
pub struct CallOutput {
    repr: Repr,
    /// Arguments that had a buffer of their own: released with the output, not inside
    /// the call, so freeing a large input is not part of the call's cost.
    _args: Option<OwnedArgs>,
}

/// A call's own argument buffer.
struct OwnedArgs(Box<dyn Deref<Target = [u8]> + Send>);

impl std::fmt::Debug for OwnedArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnedArgs({} bytes)", self.0.len())
    }
}

#[derive(Debug)]
enum Repr {
    Empty,
    /// A result of at most [`INLINE`] bytes, copied out of the arena: copying it costs
    /// less than keeping the arena on loan (and its pool referenced) while the output lives.
    Inline(Inline),
    Arena {
        arena: PooledArena,
        offset: usize,
        len: usize,
    },
    Heap {
        buf: AlignedBuf,
        len: usize,
    },
}

/// Results up to this many bytes are copied into the [`CallOutput`] itself.
pub(crate) const INLINE: usize = 32;

/// Storage for a small result, aligned like an arena so an archive in it can be read.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
struct Inline {
    bytes: [u8; INLINE],
    len: u8,
}

impl CallOutput {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.repr {
            Repr::Empty => &[],
            Repr::Inline(inline) => &inline.bytes[..usize::from(inline.len)],
            Repr::Arena { arena, offset, len } => &arena.buf().as_slice()[*offset..*offset + *len],
            Repr::Heap { buf, len } => &buf.as_slice()[..*len],
        }
    }

    /// Whether the result sits in the call's arena (no copy was made). Results of at most
    /// 32 bytes never do: they are copied into the output and the arena goes back at once,
    /// which costs less than keeping it on loan.
    pub fn is_in_arena(&self) -> bool {
        matches!(self.repr, Repr::Arena { .. })
    }

    /// The result of a method returning `Rkyv<T>`, validated and read in place.
    pub fn archived<T>(&self) -> Result<&T::Archived, ModuleError>
    where
        T: memlink_msdk::rkyv::Archive,
        T::Archived: Checkable,
    {
        archive::check::<T>(self.as_bytes(), archive::limits(), "archived result")
    }
}

impl Deref for CallOutput {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for CallOutput {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq<[u8]> for CallOutput {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for CallOutput {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_bytes() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for CallOutput {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_bytes() == *other
    }
}

impl PartialEq<&[u8]> for CallOutput {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_bytes() == *other
    }
}

/// Where a call's arguments are.
pub(crate) enum ArgsIn<'a> {
    /// Borrowed from the caller for the duration of the call.
    Slice(&'a [u8]),
    /// The first `len` bytes of an arena from the pool; the module's scratch space
    /// follows them, so nothing writes the arguments while the module reads them.
    Arena(PooledArena, usize),
    /// A buffer of their own, for arguments larger than an arena.
    Owned(Box<dyn Deref<Target = [u8]> + Send>),
}

/// Runs method `index` of `module` with `args`. The module must already be entered
/// (`Module::enter`); the caller leaves it afterwards. Also returns the arena bytes the
/// call used and the argument length.
pub(crate) fn dispatch(
    runtime: &Inner,
    module: &Module,
    index: u32,
    args: ArgsIn<'_>,
    meta: CallMeta,
    parent: Option<&HostCall<'_>>,
) -> (Result<CallOutput, ModuleError>, usize, usize) {
    let pool = &runtime.pool;
    let (mut arena, owned, args_len, scratch) = match args {
        ArgsIn::Slice(s) => (
            CallArena::Bare(pool.take_buf()),
            None,
            s.len(),
            Scratch::Whole(s.as_ptr()),
        ),
        ArgsIn::Arena(arena, len) => (CallArena::Pooled(arena), None, len, Scratch::After(len)),
        ArgsIn::Owned(buf) => {
            let len = buf.len();
            (
                CallArena::Bare(pool.take_buf()),
                Some(buf),
                len,
                Scratch::Whole(core::ptr::null()),
            )
        }
    };
    let buf = arena.buf_mut();
    let base = buf.as_mut_ptr();
    let (args_ptr, offset) = match scratch {
        Scratch::Whole(p) => (owned.as_ref().map_or(p, |b| b.as_ptr()), 0),
        Scratch::After(len) => (
            base.cast_const(),
            len.next_multiple_of(BUFFER_ALIGN).min(buf.len()),
        ),
    };
    let mut host_call = HostCall {
        runtime,
        module,
        meta,
        output: None,
        parent,
    };
    let (persistent, persistent_len) = module
        .persistent
        .as_ref()
        .map_or((core::ptr::null_mut(), 0), |p| p.raw());
    let mut frame = CallFrame {
        size: size_of::<CallFrame>() as u32,
        method_index: index,
        method_id: module.methods[index as usize].id,
        depth: meta.depth,
        args: args_ptr,
        args_len,
        // SAFETY: `offset <= buf.len()`, so the pointer stays within (or one past) the
        // buffer.
        arena: unsafe { base.add(offset) },
        arena_len: buf.len() - offset,
        trace_id: meta.trace_id,
        span_id: meta.span_id,
        timeout_ns: timeout_ns(meta.deadline),
        // Summing the load reads every thread's shard of the module's slots, bringing
        // back the cache-line sharing the shards remove; the module asks for it through
        // `HostApi::backpressure` when it wants it.
        backpressure: abi::BACKPRESSURE_ON_REQUEST,
        flags: 0,
        host: &HOST_API,
        host_call: (&raw mut host_call).cast(),
        persistent,
        persistent_len,
        out: core::ptr::null(),
        out_len: 0,
        arena_used: 0,
    };
    // SAFETY: the frame honours the ABI: the arguments are borrowed, owned or in the
    // arena ahead of the scratch space, and in every case alive and unwritten until the
    // call returns; the scratch space is this call's alone (taken from the pool);
    // `host_call` lives on this stack until the call returns; and `call` is the module's
    // entry point, valid for the life of the process (its library is never unloaded).
    let status = unsafe { (module.entry.call)(&mut frame) };
    let (out, out_len, used) = (frame.out, frame.out_len, frame.arena_used);
    let result = collect(arena, pool, host_call.output, out, out_len).and_then(|mut output| {
        output._args = owned.map(OwnedArgs);
        match Status::from_code(status) {
            Some(Status::Ok) => Ok(output),
            _ => Err(ModuleError::from_status(status, output.as_bytes())),
        }
    });
    (result, used, args_len)
}

/// Where the module's scratch space starts in the arena.
enum Scratch {
    /// The whole arena; the arguments are elsewhere (at this pointer, unless owned).
    Whole(*const u8),
    /// After the arguments, which take the first `len` bytes.
    After(usize),
}

/// The arena of a call in progress.
enum CallArena {
    /// Taken for the call: back to the pool afterwards, unless the output is in it.
    Bare(AlignedBuf),
    /// Taken earlier, with the arguments written into it.
    Pooled(PooledArena),
}

impl CallArena {
    fn buf(&self) -> &AlignedBuf {
        match self {
            CallArena::Bare(buf) => buf,
            CallArena::Pooled(arena) => arena.buf(),
        }
    }

    fn buf_mut(&mut self) -> &mut AlignedBuf {
        match self {
            CallArena::Bare(buf) => buf,
            CallArena::Pooled(arena) => arena.buf_mut(),
        }
    }

    /// Keeps the arena for as long as an output read from it.
    fn keep(self, pool: &Arc<ArenaPool>) -> PooledArena {
        match self {
            CallArena::Bare(buf) => PooledArena::new(buf, Arc::clone(pool)),
            CallArena::Pooled(arena) => arena,
        }
    }

    fn release(self, pool: &Arc<ArenaPool>) {
        match self {
            CallArena::Bare(buf) => pool.give_back(buf),
            CallArena::Pooled(arena) => drop(arena),
        }
    }
}

/// Finds where the module put its output; anywhere but the arena or the buffer the host
/// allocated for it is a protocol error, and nothing is read from there.
fn collect(
    arena: CallArena,
    pool: &Arc<ArenaPool>,
    heap: Option<AlignedBuf>,
    out: *const u8,
    len: usize,
) -> Result<CallOutput, ModuleError> {
    if len > 0 && arena.buf().contains_range(out, len) {
        let offset = out.addr() - arena.buf().as_slice().as_ptr().addr();
        let repr = if len <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..len].copy_from_slice(&arena.buf().as_slice()[offset..offset + len]);
            arena.release(pool);
            // `len <= INLINE`, which fits a `u8`.
            let len = len as u8;
            Repr::Inline(Inline { bytes, len })
        } else {
            Repr::Arena {
                arena: arena.keep(pool),
                offset,
                len,
            }
        };
        return Ok(CallOutput { repr, _args: None });
    }
    arena.release(pool);
    if len == 0 {
        return Ok(CallOutput {
            repr: Repr::Empty,
            _args: None,
        });
    }
    match heap {
        Some(buf)
            if buf.contains_range(out, len) && out.addr() == buf.as_slice().as_ptr().addr() =>
        {
            Ok(CallOutput {
                repr: Repr::Heap { buf, len },
                _args: None,
            })
        }
        _ => Err(ModuleError::Abi(format!(
            "the module reported {len} output bytes outside the arena and the output buffer"
        ))),
    }
}

fn timeout_ns(deadline: Option<Instant>) -> u64 {
    match deadline {
        None => abi::NO_DEADLINE,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now()).as_nanos();
            u64::try_from(left).unwrap_or(abi::NO_DEADLINE - 1)
        }
    }
}

/// `HostApi::alloc_output`.
///
/// # Safety
///
/// `call` must be the `host_call` of a frame whose call is running.
unsafe extern "C" fn host_alloc_output(call: *mut c_void, len: usize) -> *mut u8 {
    if call.is_null() || isize::try_from(len).is_err() {
        return core::ptr::null_mut();
    }
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's contract: `call` is a live `HostCall` of this thread's
        // running call (not null, checked above), and no other reference to it is in use
        // while the module runs.
        let host_call = unsafe { &mut *call.cast::<HostCall<'_>>() };
        // A length the allocator cannot give is a null return, not an abort.
        let mut buf = AlignedBuf::try_zeroed(len)?;
        let ptr = buf.as_mut_ptr();
        host_call.output = Some(buf);
        Some(ptr)
    }));
    result.ok().flatten().unwrap_or(core::ptr::null_mut())
}

/// `HostApi::backpressure`: the larger of the module's load (calls running against its
/// concurrency limit) and the arena pool's.
///
/// # Safety
///
/// `call` must be the `host_call` of a frame whose call is running.
unsafe extern "C" fn host_backpressure(call: *mut c_void) -> f32 {
    // SAFETY: the caller's contract; the `HostCall` is only read.
    match unsafe { call_of(call) } {
        Some((runtime, module)) => module.gate.load().max(runtime.pool.load()),
        None => 0.0,
    }
}

/// `HostApi::call_module`.
///
/// # Safety
///
/// `call` must be the `host_call` of a frame whose call is running; `request` must point
/// to a valid [`NestedCall`] whose pointers are valid for the duration of this call.
unsafe extern "C" fn host_call_module(call: *mut c_void, request: *mut NestedCall) -> i32 {
    if call.is_null() || request.is_null() {
        // No call to act for, or no request to answer through: nothing can be reported
        // but the status.
        return Status::Abi as i32;
    }
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's contract; the nested call only reads the `HostCall`.
        let (host_call, request) = unsafe { (&*call.cast::<HostCall<'_>>(), &*request) };
        // SAFETY: forwarded from this function's contract.
        unsafe { nested(host_call, request) }
    }));
    let result =
        outcome.unwrap_or_else(|_| Err(ModuleError::CallFailed("the host panicked".into())));
    // SAFETY: `request` is valid and ours to write for this call (contract above).
    let request = unsafe { &mut *request };
    let (bytes, code): (&[u8], i32) = match &result {
        Ok((out, format)) => {
            request.result_format = *format as u8;
            (out, Status::Ok as i32)
        }
        Err(e) => {
            let payload = e.payload();
            // SAFETY: the sink's contract: the bytes are valid while it runs.
            unsafe { (request.sink)(request.sink_ctx, payload.as_ptr(), payload.len()) };
            return e.code();
        }
    };
    // SAFETY: as above.
    unsafe { (request.sink)(request.sink_ctx, bytes.as_ptr(), bytes.len()) };
    code
}

/// Runs the nested call `request` on behalf of `host_call`. Returns the output and the
/// callee's result format.
///
/// # Safety
///
/// The request's strings and arguments must be valid for the duration of this call.
unsafe fn nested(
    host_call: &HostCall<'_>,
    request: &NestedCall,
) -> Result<(CallOutput, Format), ModuleError> {
    if (request.size as usize) < size_of::<NestedCall>() {
        return Err(ModuleError::Abi("nested call request is too small".into()));
    }
    let text = |s: abi::StrRef, what: &str| {
        // SAFETY: valid for this call (the caller's contract).
        unsafe { s.as_str() }.ok_or_else(|| ModuleError::Abi(format!("{what} is not UTF-8")))
    };
    let (module, method) = (
        text(request.module, "module name")?,
        text(request.method, "method name")?,
    );
    if isize::try_from(request.args_len).is_err() {
        return Err(ModuleError::Abi(format!(
            "nested call arguments are {} bytes, more than isize::MAX",
            request.args_len
        )));
    }
    let args = if request.args_len == 0 || request.args.is_null() {
        &[][..]
    } else {
        // SAFETY: `args_len` readable bytes (the caller's contract).
        unsafe { std::slice::from_raw_parts(request.args, request.args_len) }
    };
    let typed = request.flags & abi::NESTED_TYPED != 0;
    host_call
        .runtime
        .call_nested(module, method, args, typed, host_call)
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn keep(_ctx: *mut c_void, _ptr: *const u8, _len: usize) {}

    /// A module may call a service with no running call (from a thread of its own); the
    /// handle is then null. `log` and `backpressure` take that, and so must the others:
    /// before, they dereferenced it.
    #[test]
    fn services_given_a_null_call_refuse_instead_of_dereferencing_it() {
        // SAFETY: a null handle is what is being tested; the functions must not touch it.
        let out = unsafe { (HOST_API.alloc_output)(core::ptr::null_mut(), 16) };
        assert!(out.is_null());
        let mut request = NestedCall {
            size: size_of::<NestedCall>() as u32,
            flags: 0,
            module: abi::StrRef::new("any"),
            method: abi::StrRef::new("echo"),
            args: core::ptr::null(),
            args_len: 0,
            sink: keep,
            sink_ctx: core::ptr::null_mut(),
            result_format: 0,
        };
        // SAFETY: as above; the request is valid.
        let status = unsafe { (HOST_API.call_module)(core::ptr::null_mut(), &mut request) };
        assert_eq!(status, Status::Abi as i32);
        // SAFETY: as above.
        let status =
            unsafe { (HOST_API.call_module)(core::ptr::null_mut(), core::ptr::null_mut()) };
        assert_eq!(status, Status::Abi as i32);
        // SAFETY: null is allowed here by the ABI.
        let load = unsafe { (HOST_API.backpressure)(core::ptr::null_mut()) };
        assert_eq!(load, 0.0);
    }
}
