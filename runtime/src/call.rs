//! The call path, from a caller to a module's entry point and back.
//!
//! Read top-down, it follows one call:
//!
//! 1. [`method_from_host`]: a call from the host holds its module (with the thread's
//!    hazard pointer when it can, `crate::hazard`); [`on_thread`] describes it, with a
//!    constant when it carries no option and its module has no default timeout, else
//!    with the deadline [`with_options`] decides (`crate::deadline`), and turns a
//!    failure into the [`RuntimeError`] the caller gets; [`nested`] is the same for a
//!    call a module makes, turning a failure into the [`ModuleError`] the module gets.
//! 2. [`run`]: the plain path straight to `crate::invoke::run_call`, or, when the
//!    runtime has interceptors, a result cache or a breaker, through
//!    `crate::guarded::guarded`.
//! 3. `crate::invoke`: admission (a slot from the module's gate, unless the call
//!    re-enters a module its chain already runs in), the call's memory laid out
//!    (`crate::args`), the frame, the method's entry point (its own, else the module's
//!    `memlink_call`), the slot back, its output found where the module says it is
//!    (`crate::output`), the built-in figures; everything but an empty or small result
//!    (a result kept in its arena, a failure) leaves through a cold function.

use memlink_abi::{Format, ModuleError};

use crate::args::{Args, CallInput};
use crate::deadline;
use crate::error::RuntimeError;
use crate::guarded::guarded;
use crate::handle::{MethodRef, ModuleHandle};
use crate::host_call::{CallMeta, HostCall, NestedRequest};
use crate::invoke::{run_call, Failure};
use crate::locks;
use crate::module::Module;
use crate::options::CallOptions;
use crate::output::{CallOutput, Keep, Receive};
use crate::registry::{Held, Registry};
use crate::targets::Hint;
use crate::thread::ThreadState;

/// Calls `method` from the host. The module is held for the call with the calling
/// thread's hazard pointer (no locked instruction, `Registry::pin`) when the thread owns
/// a shard, else through its slot's `Arc` (`Registry::module`), which also says why a
/// handle is refused.
#[inline]
pub(crate) fn method_from_host(
    registry: &Registry,
    method: MethodRef,
    args: Args<'_>,
    options: &CallOptions,
) -> Result<CallOutput, RuntimeError> {
    handle_from_host(
        registry,
        method.handle,
        |module| module.method_at(method),
        args,
        options,
    )
}

/// Calls the method `find` picks of the module loaded as `handle` from the host, the
/// module held as [`method_from_host`] holds it.
#[inline]
pub(crate) fn handle_from_host(
    registry: &Registry,
    handle: ModuleHandle,
    find: impl FnOnce(&Module) -> Result<u32, RuntimeError>,
    args: Args<'_>,
    options: &CallOptions,
) -> Result<CallOutput, RuntimeError> {
    match args {
        Args::Borrowed(bytes) => input_from_host(registry, handle, find, bytes, options),
        args => input_from_host(registry, handle, find, args, options),
    }
}

/// [`handle_from_host`] for arguments of one kind: a path of its own for bytes lent for
/// the call (see `CallInput`).
#[inline]
fn input_from_host(
    registry: &Registry,
    handle: ModuleHandle,
    find: impl FnOnce(&Module) -> Result<u32, RuntimeError>,
    args: impl CallInput,
    options: &CallOptions,
) -> Result<CallOutput, RuntimeError> {
    // The steps of `holding`, written out: through its closure the compiler kept the
    // call path out of line, 35 more instructions a call (callgrind, `noop_by_id`).
    // SAFETY: the state is used only within this call.
    if let Some(thread) = unsafe { crate::thread::current() } {
        if let Some(module) = registry.pin(thread, handle) {
            let index = find(&module)?;
            return on_thread(thread, registry, handle, &module, index, args, options);
        }
    }
    unpinned(registry, handle, None, |module, _| {
        let index = find(module)?;
        from_host(registry, handle, module, index, args, options)
    })
}

/// Runs `f` on the module loaded as `handle`, held as [`method_from_host`] holds it: for
/// what a call from the host looks up in its module before it is made.
#[inline]
pub(crate) fn with_module<R>(
    registry: &Registry,
    handle: ModuleHandle,
    f: impl FnOnce(&Module) -> Result<R, RuntimeError>,
) -> Result<R, RuntimeError> {
    holding(registry, handle, |module, _| f(module))
}

/// Runs `f` on the module loaded as `handle` and the calling thread's state (`None` while
/// the thread tears its locals down), the module held with the thread's hazard pointer
/// when it can be, else through its slot's `Arc`.
#[inline(always)]
fn holding<R>(
    registry: &Registry,
    handle: ModuleHandle,
    f: impl FnOnce(&Module, Option<&ThreadState>) -> Result<R, RuntimeError>,
) -> Result<R, RuntimeError> {
    // SAFETY: the state is used only within this call.
    let thread = unsafe { crate::thread::current() };
    if let Some(state) = thread {
        if let Some(module) = registry.pin(state, handle) {
            return f(&module, thread);
        }
    }
    unpinned(registry, handle, thread, f)
}

/// [`holding`] for a module that could not be pinned: through its `Arc`, which also says
/// why a handle is refused.
#[cold]
#[inline(never)]
fn unpinned<R>(
    registry: &Registry,
    handle: ModuleHandle,
    thread: Option<&ThreadState>,
    f: impl FnOnce(&Module, Option<&ThreadState>) -> Result<R, RuntimeError>,
) -> Result<R, RuntimeError> {
    f(&*registry.module(handle)?, thread)
}

/// Calls method `index` of `module` (loaded as `handle`, and held by the caller) from
/// the host.
#[inline]
pub(crate) fn from_host(
    registry: &Registry,
    handle: ModuleHandle,
    module: &Module,
    index: u32,
    args: impl CallInput,
    options: &CallOptions,
) -> Result<CallOutput, RuntimeError> {
    let mut passing = None;
    // SAFETY: the state is used only within this call.
    let thread = unsafe { crate::thread::current_or_passing(&mut passing) };
    on_thread(thread, registry, handle, module, index, args, options)
}

/// [`from_host`] on the thread whose state is `thread`.
///
/// A call that carries nothing (no trace, no deadline of its own, and a module with no
/// default timeout and no most time a call is given, which is what most calls are) is
/// described by a constant, so the path it takes is compiled with no deadline to read or
/// check and no ids to copy; any other takes the same path with the options read, out of
/// line.
#[inline(always)]
fn on_thread(
    thread: &ThreadState,
    registry: &Registry,
    handle: ModuleHandle,
    module: &Module,
    index: u32,
    args: impl CallInput,
    options: &CallOptions,
) -> Result<CallOutput, RuntimeError> {
    if options.carries_nothing()
        && module.default_timeout.is_none()
        && module.max_call_time.is_none()
        && crate::chain::idle()
    {
        run(
            thread,
            registry,
            module,
            index,
            args,
            &CallMeta::PLAIN,
            None,
            Keep,
            |failure| host_error(handle, module, index, failure),
        )
    } else {
        with_options(thread, registry, handle, module, index, args, options)
    }
}

/// [`on_thread`] for a call with a trace, a deadline or a module's default timeout, or
/// one made while this thread runs a call in a module of the same runtime (from a log
/// sink, say) or runs a call's interceptors (`crate::chain::hooked_by`): that call is
/// part of the running call's chain, one
/// level deeper, as a module's nested call is: it re-enters a module the chain holds
/// instead of waiting for a slot the chain itself holds, the depth limit ends a loop of
/// such calls, it ends by the chain's deadline if that comes first, and it carries the
/// chain's trace unless its options carry one.
#[inline(never)]
fn with_options(
    thread: &ThreadState,
    registry: &Registry,
    handle: ModuleHandle,
    module: &Module,
    index: u32,
    args: impl CallInput,
    options: &CallOptions,
) -> Result<CallOutput, RuntimeError> {
    let fail = |failure| host_error(handle, module, index, failure);
    let own = CallMeta {
        depth: 0,
        trace_id: options.trace_id,
        span_id: options.span_id,
        deadline: deadline::decide(options, module.default_timeout, module.max_call_time),
    };
    // SAFETY: used only within this call, which runs inside the running call.
    let (meta, parent) = unsafe { joining(registry, own) };
    if meta.depth > registry.config.max_call_depth {
        return Err(fail(Failure::Module(ModuleError::MaxCallDepthExceeded)));
    }
    // Only a call inside a chain nests on this thread's stack.
    if meta.depth > 0 {
        if let Some(why) = thread.stack.too_little_left() {
            return Err(fail(Failure::Module(ModuleError::CallFailed(why))));
        }
    }
    run(
        thread, registry, module, index, args, &meta, parent, Keep, fail,
    )
}

/// What a call from host code that carries `own` carries when this thread runs inside a
/// call (see [`with_options`]), and the running call of `registry`'s runtime it is made
/// inside, if any: its parent, through which it re-enters the modules of its chain.
///
/// # Safety
///
/// The parent must not be used after the caller returns.
unsafe fn joining<'a>(registry: &Registry, own: CallMeta) -> (CallMeta, Option<&'a HostCall<'a>>) {
    // SAFETY: the caller's contract.
    let parent = unsafe { running_call_of(registry) };
    // The chain is the innermost of the call running in a module and the call whose
    // host code runs (an interceptor's, a sink's given a panic: no module runs then),
    // whichever runtime's: a loop through hooks of two runtimes ends too.
    let hooked = crate::chain::hooked();
    let chain = match (parent.map(|p| p.meta), hooked.as_ref()) {
        (Some(p), Some(h)) => Some(if h.depth >= p.depth { h } else { p }),
        (p, h) => p.or(h),
    };
    (chain.map_or(own, |c| within_chain(own, c)), parent)
}

/// What a host call made inside a call whose own is `chain` carries: one level deeper,
/// the earlier of the two deadlines, and the chain's trace unless `own` has one.
fn within_chain(own: CallMeta, chain: &CallMeta) -> CallMeta {
    let traced = own.trace_id != 0 || own.span_id != 0;
    let (trace_id, span_id) = if traced {
        (own.trace_id, own.span_id)
    } else {
        (chain.trace_id, chain.span_id)
    };
    let deadline = match (own.deadline, chain.deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    CallMeta {
        depth: chain.depth + 1,
        trace_id,
        span_id,
        deadline,
    }
}

/// Whether this thread runs inside a call of `registry`'s runtime whose chain holds
/// `module` (a call to it, in this version or another, or a call it led to), as a log
/// sink or an interceptor does: what waits for that module's calls to end would wait
/// there for the call it runs in.
pub(crate) fn chain_on_thread_holds(registry: &Registry, module: &Module) -> bool {
    // SAFETY: the reference is used only within this call, which runs inside the running
    // call if there is one.
    unsafe { running_call_of(registry) }.is_some_and(|c| c.chain_holds(module))
}

/// The calls this thread runs, held as `crate::locks::Lock::Calls` until the holds are
/// dropped (see `locks::hold_calls`): the calls in modules of its innermost chain, and
/// those whose host code it runs (an interceptor's, a log sink's), in any runtime. For a
/// load, unload or reload asked from host code: an unload or reload of one of those
/// modules waits for this thread's call.
pub(crate) fn hold_running_calls() -> Vec<locks::Holding> {
    let mut calls: Vec<(u64, String)> = Vec::new();
    let mut chain = |mut call: Option<&HostCall<'_>>| {
        while let Some(c) = call {
            calls.push((c.module.lineage, c.module.name.clone()));
            call = c.parent;
        }
    };
    // SAFETY: the reference is used only within this call, which runs inside the running
    // call if there is one.
    chain(unsafe { running_call() });
    // The chains the hooked calls' code runs inside, which a chain that went through
    // another runtime's module leaves out of the running call's.
    crate::chain::find_hooked_call(|call| {
        // SAFETY: a hooked call's call is still running (`find_hooked_call`), and the
        // reference is used only within this function.
        chain(unsafe { HostCall::of_running(call) });
        None::<()>
    });
    crate::chain::each_hook(|lineage, name| calls.push((lineage, name.to_owned())));
    locks::hold_calls(calls)
}

/// The innermost call of `registry`'s runtime this thread runs inside: the call it runs
/// in a module if that one is the runtime's, else the innermost of the runtime's calls
/// whose host code (a log sink's, an interceptor's) the thread runs inside. A chain that
/// went out through that code to another runtime's module, and came back through the
/// host code of that one's call, is part of the call it left: it re-enters the modules
/// that call's chain holds, and may not unload them.
///
/// # Safety
///
/// The reference must not be used after the caller returns.
unsafe fn running_call_of<'a>(registry: &Registry) -> Option<&'a HostCall<'a>> {
    let ours = |call: *const core::ffi::c_void| {
        // SAFETY: `call` is null, the running call's, or a hooked call's call, which is
        // still running (`find_hooked_call`); the caller uses the reference only within
        // its own call, which runs inside that one.
        unsafe { HostCall::of_running(call) }.filter(|c| core::ptr::eq(c.registry, registry))
    };
    ours(crate::chain::running_call()).or_else(|| crate::chain::find_hooked_call(ours))
}

/// The host's side of the call this thread runs in a module, if it runs one: the host
/// was called from inside that call.
///
/// # Safety
///
/// The reference must not be used after the caller returns.
unsafe fn running_call<'a>() -> Option<&'a HostCall<'a>> {
    // SAFETY: `running_call` is null or the host's side of the innermost call this thread
    // runs in a module, and the caller uses the reference only within that call.
    unsafe { HostCall::of_running(crate::chain::running_call()) }
}

/// The error a host caller gets for `failure`.
#[cold]
#[inline(never)]
fn host_error(handle: ModuleHandle, module: &Module, index: u32, failure: Failure) -> RuntimeError {
    let method = || module.methods[index as usize].name.clone();
    match failure {
        Failure::Retired => RuntimeError::UnknownHandle(handle),
        Failure::Saturated => RuntimeError::Saturated {
            module: module.name.clone(),
            method: method(),
            limit: module.gate.limit(),
        },
        Failure::Module(error) | Failure::NotRun(error) => RuntimeError::Call {
            module: module.name.clone(),
            method: method(),
            error,
        },
    }
}

/// Calls method `index` of `module` on the runtime's behalf (its lifecycle exports:
/// `memlink_save_state`, `memlink_dependencies`, ...), as a call from the host with the
/// default options; the output is copied out, a failure said in words. Made from host
/// code inside a call (a load, reload or unload from a log sink or an interceptor), it
/// joins that call's chain as any call from host code does (see [`with_options`]): a
/// nested call it makes re-enters a module the chain holds instead of waiting for the
/// slot the chain itself holds.
pub(crate) fn export(
    registry: &Registry,
    module: &Module,
    index: u32,
    args: &[u8],
) -> Result<Vec<u8>, String> {
    let own = CallMeta {
        depth: 0,
        trace_id: 0,
        span_id: 0,
        deadline: deadline::decide(
            &CallOptions::default(),
            module.default_timeout,
            module.max_call_time,
        ),
    };
    let method = &module.methods[index as usize].name;
    // SAFETY: used only within this call, which runs inside the running call if any.
    let (meta, parent) = unsafe { joining(registry, own) };
    if meta.depth > registry.config.max_call_depth {
        return Err(format!(
            "`{method}` failed: {}",
            ModuleError::MaxCallDepthExceeded
        ));
    }
    let out = crate::thread::with(|thread| {
        run_call(
            thread,
            registry,
            module,
            index,
            args,
            &meta,
            parent,
            Keep,
            |failure| match failure {
                Failure::Retired => format!("`{method}`: the module was unloaded"),
                Failure::Saturated => format!("`{method}`: the module is saturated"),
                Failure::Module(e) | Failure::NotRun(e) => format!("`{method}` failed: {e}"),
            },
        )
    })?;
    Ok(out.to_vec())
}

/// A call from one module to another, by name, on behalf of the running call `caller`,
/// carrying `meta` (the caller's `HostCall::nested_meta`): the host's `call_module`
/// service. With `typed`, the arguments are MessagePack and are
/// converted to the callee's argument format first. The output goes to the receiver
/// that `receive` makes of the callee's result format, once the callee is found.
///
/// The callee is found through the thread's cached targets (`crate::targets`) when the
/// same names led to it before and nothing was loaded, reloaded or unloaded since; else
/// by looking its names up, which caches them for the next call.
///
/// Always inlined into the host's service, its only caller: left to the compiler it went
/// out of line when the stack check moved into it (18 instructions a nested call,
/// callgrind, `relay_in_arena_echo`).
#[inline(always)]
pub(crate) fn nested<R: Receive>(
    caller: &HostCall<'_>,
    meta: CallMeta,
    request: &NestedRequest<'_>,
    receive: impl FnOnce(Format) -> R,
) -> Result<R::Out, ModuleError> {
    let registry = caller.registry;
    if meta.depth > registry.config.max_call_depth {
        return Err(ModuleError::MaxCallDepthExceeded);
    }
    let mut passing = None;
    // SAFETY: the state is used only within this call.
    let thread = unsafe { crate::thread::current_or_passing(&mut passing) };
    if let Some(why) = thread.stack.too_little_left() {
        return Err(ModuleError::CallFailed(why));
    }
    let (target, index) = match hinted(thread, registry, request) {
        Some(found) => found,
        None => look_up(thread, registry, request)?,
    };
    let method = &target.methods[index as usize];
    // A callee with a most time a call is given holds its caller's chain to it too.
    let meta = match target.max_call_time {
        None => meta,
        max => CallMeta {
            deadline: deadline::within(meta.deadline, max),
            ..meta
        },
    };
    // Typed arguments are MessagePack: a callee that takes MessagePack reads them as
    // they are, and only another format's callee needs them converted (copied).
    let args = memlink_abi::msgpack::nested_args(request.flags, method.args_format, request.args)?;
    let realigned;
    let args = if method.args_format == Format::Archived && !on_archive_boundary(&args) {
        realigned = aligned_copy(&args)?;
        realigned.as_slice()
    } else {
        &args[..]
    };
    let limit = target.gate.limit();
    // The caller's mark is of its last nested call's panic: this one's, if it panics.
    caller.nested_panic.set(0);
    run(
        thread,
        registry,
        &target,
        index,
        args,
        &meta,
        Some(caller),
        receive(method.result_format),
        |failure| nested_error(caller, limit, request, failure),
    )
}

/// Whether `args` start where an archive is read in place from (empty ones start
/// anywhere: they are read from memory of the runtime's own).
#[inline]
fn on_archive_boundary(args: &[u8]) -> bool {
    args.is_empty()
        || args
            .as_ptr()
            .addr()
            .is_multiple_of(memlink_abi::archive::ARCHIVE_ALIGN)
}

/// `args` copied to a 16-byte boundary, for an archive callee: a module lends bytes off
/// one when it passes on a slice of its own arguments or result (whose bytes have no
/// alignment), or a copy in its arena, and the callee reads the archive in place, as a
/// host's call places it.
#[cold]
#[inline(never)]
fn aligned_copy(args: &[u8]) -> Result<crate::buffer::AlignedBuf, ModuleError> {
    let mut copy =
        crate::buffer::AlignedBuf::try_zeroed(args.len()).ok_or(ModuleError::QuotaExceeded)?;
    copy.as_mut_slice().copy_from_slice(args);
    Ok(copy)
}

/// The callee and method index of `request`, from the thread's cached targets, if the
/// registry has not changed since the same names led there.
#[inline]
fn hinted(
    thread: &ThreadState,
    registry: &Registry,
    request: &NestedRequest<'_>,
) -> Option<(Held, u32)> {
    let hint = thread
        .targets
        .find(registry.id(), request.module, request.method)?;
    let target = registry.hinted(thread, hint.slot, hint.epoch)?;
    // The same module as when the hint was kept (the registry is at the same epoch), so
    // the index is in its table; checked all the same, as it costs a compare.
    ((hint.method as usize) < target.methods.len()).then_some((target, hint.method))
}

/// The callee and method index of `request`, looked up by its names, which are kept in
/// the thread's cached targets when the lookup saw the registry unchanging.
#[cold]
#[inline(never)]
fn look_up(
    thread: &ThreadState,
    registry: &Registry,
    request: &NestedRequest<'_>,
) -> Result<(Held, u32), ModuleError> {
    let module = utf8(request.module, "module name")?;
    let method = utf8(request.method, "method name")?;
    let (target, slot, epoch) =
        registry
            .by_name(module)
            .ok_or_else(|| match crate::names::malformed(module) {
                Some(why) => ModuleError::CallFailed(format!("module `{module}`: {why}")),
                None => ModuleError::ModuleNotFound(module.to_owned()),
            })?;
    let (index, _) = target.method(method).ok_or(ModuleError::InvalidMethod)?;
    if let Some(epoch) = epoch {
        let hint = Hint {
            slot,
            method: index,
            epoch,
        };
        thread.targets.keep(registry.id(), module, method, hint);
    }
    Ok((Held::Live(target), index))
}

/// `bytes` as a string, or the error that `what` is not UTF-8.
fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, ModuleError> {
    memlink_abi::text::utf8(bytes).map_err(|_| ModuleError::Abi(format!("{what} is not UTF-8")))
}

/// The error a module gets for its nested call's `failure`; a panic is told to the
/// `caller` too (see `HostCall::nested_panic`).
#[cold]
fn nested_error(
    caller: &HostCall<'_>,
    limit: usize,
    request: &NestedRequest<'_>,
    failure: Failure,
) -> ModuleError {
    let module = || String::from_utf8_lossy(request.module).into_owned();
    if let Failure::Module(ModuleError::Panic(message)) = &failure {
        caller
            .nested_panic
            .set(crate::host_call::panic_mark(message));
    }
    match failure {
        Failure::Retired => ModuleError::ModuleNotFound(module()),
        Failure::Saturated => ModuleError::CallFailed(format!(
            "module `{}` is saturated (at its limit of {})",
            module(),
            crate::error::in_flight(limit)
        )),
        Failure::Module(e) | Failure::NotRun(e) => e,
    }
}

/// Runs method `index` of `module` (see [`run_call`]), through the runtime's
/// interceptors, result cache and the module's breaker when it has them: three branches
/// when it has none.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the call path's own parts, passed down once
fn run<R: Receive, E>(
    thread: &ThreadState,
    registry: &Registry,
    module: &Module,
    index: u32,
    args: impl CallInput,
    meta: &CallMeta,
    parent: Option<&HostCall<'_>>,
    receive: R,
    fail: impl FnOnce(Failure) -> E,
) -> Result<R::Out, E> {
    if registry.unguarded {
        run_call(
            thread, registry, module, index, args, meta, parent, receive, fail,
        )
    } else {
        // The hooks and the cache see a whole output, so it is made first.
        guarded(thread, registry, module, index, args, meta, parent, fail)
            .map(|output| receive.output(output))
    }
}
