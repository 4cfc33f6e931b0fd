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
//! 2. [`run`]: admission (a slot from the module's gate, unless the call re-enters a
//!    module its chain already runs in), the call's memory laid out (`crate::args`), the
//!    frame, the method's entry point (its own, else the module's `memlink_call`), the
//!    slot back, its output found where the
//!    module says it is (`crate::output`), the built-in figures.
//! 3. [`finish_slow`]: everything but an empty or small result (a result kept in its
//!    arena, a failure), out of the way of the path every call takes.

use std::cell::Cell;
use std::time::Duration;

use memlink_abi::{self as abi, CallFrame, Format, ModuleError, Status};

use crate::admission::Refused;
use crate::args::{Args, CallInput, Placed};
use crate::buffer::AlignedBuf;
use crate::deadline;
use crate::error::RuntimeError;
use crate::handle::{MethodRef, ModuleHandle};
use crate::health::Pass;
use crate::host_call::{CallMeta, HostCall, NestedRequest};
use crate::intercept::{CallInfo, Failed, Outcome};
use crate::metrics::CallRecord;
use crate::module::{Module, NotEntered};
use crate::options::CallOptions;
use crate::output::{self, CallOutput, Found, Keep, OwnedArgs, Receive};
use crate::registry::{Held, Registry};
use crate::targets::Hint;
use crate::thread::ThreadState;

/// Why a dispatched call did not produce output.
enum Failure {
    /// The module was retired (unloaded).
    Retired,
    /// The module was at its concurrency limit and the policy is to refuse.
    Saturated,
    /// The call failed: the module's error.
    Module(ModuleError),
    /// The call's deadline passed before it started (the module never saw it): a
    /// `ModuleError::Timeout` to the caller, and nothing a breaker counts.
    Late(ModuleError),
}

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
    let passing;
    // SAFETY: the state is used only within this call.
    let thread = match unsafe { crate::thread::current() } {
        Some(state) => state,
        None => {
            passing = ThreadState::passing();
            &passing
        }
    };
    on_thread(thread, registry, handle, module, index, args, options)
}

/// [`from_host`] on the thread whose state is `thread`.
///
/// A call that carries nothing (no trace, no deadline of its own, and a module without
/// a default timeout, which is what most calls are) is described by a constant, so the
/// path it takes is compiled with no deadline to read or check and no ids to copy; any
/// other takes the same path with the options read, out of line.
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
    if options.carries_nothing() && module.default_timeout.is_none() {
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

/// [`on_thread`] for a call with a trace, a deadline or a module's default timeout.
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
    let meta = CallMeta {
        depth: 0,
        trace_id: options.trace_id,
        span_id: options.span_id,
        deadline: deadline::decide(options, module.default_timeout),
    };
    run(
        thread,
        registry,
        module,
        index,
        args,
        &meta,
        None,
        Keep,
        |failure| host_error(handle, module, index, failure),
    )
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
        Failure::Module(error) | Failure::Late(error) => RuntimeError::Call {
            module: module.name.clone(),
            method: method(),
            error,
        },
    }
}

/// Calls method `index` of `module` on the runtime's behalf (its lifecycle exports:
/// `memlink_save_state`, `memlink_dependencies`, ...), as a call from the host with the
/// default options; the output is copied out, a failure said in words.
pub(crate) fn export(
    registry: &Registry,
    module: &Module,
    index: u32,
    args: &[u8],
) -> Result<Vec<u8>, String> {
    let meta = CallMeta {
        depth: 0,
        trace_id: 0,
        span_id: 0,
        deadline: deadline::decide(&CallOptions::default(), module.default_timeout),
    };
    let method = &module.methods[index as usize].name;
    let out = crate::thread::with(|thread| {
        run_call(
            thread,
            registry,
            module,
            index,
            args,
            &meta,
            None,
            Keep,
            |failure| match failure {
                Failure::Retired => format!("`{method}`: the module was unloaded"),
                Failure::Saturated => format!("`{method}`: the module is saturated"),
                Failure::Module(e) | Failure::Late(e) => format!("`{method}` failed: {e}"),
            },
        )
    })?;
    Ok(out.to_vec())
}

/// A call from one module to another, by name, on behalf of the running call `caller`:
/// the host's `call_module` service. With `typed`, the arguments are MessagePack and are
/// converted to the callee's argument format first. The output goes to the receiver
/// that `receive` makes of the callee's result format, once the callee is found.
///
/// The callee is found through the thread's cached targets (`crate::targets`) when the
/// same names led to it before and nothing was loaded, reloaded or unloaded since; else
/// by looking its names up, which caches them for the next call.
pub(crate) fn nested<R: Receive>(
    caller: &HostCall<'_>,
    request: &NestedRequest<'_>,
    receive: impl FnOnce(Format) -> R,
) -> Result<R::Out, ModuleError> {
    let registry = caller.registry;
    let meta = caller.nested_meta();
    if meta.depth > registry.config.max_call_depth {
        return Err(ModuleError::MaxCallDepthExceeded);
    }
    crate::thread::with(|thread| {
        let (target, index) = match hinted(thread, registry, request) {
            Some(found) => found,
            None => look_up(thread, registry, request)?,
        };
        let method = &target.methods[index as usize];
        let converted;
        let args = if request.typed {
            converted =
                memlink_abi::msgpack::convert_args(method.args_format, request.args.to_vec())?;
            &converted[..]
        } else {
            request.args
        };
        let limit = target.gate.limit();
        run(
            thread,
            registry,
            &target,
            index,
            args,
            &meta,
            Some(caller),
            receive(method.result_format),
            |failure| nested_error(limit, request, failure),
        )
    })
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
    let (target, slot, epoch) = registry
        .by_name(module)
        .ok_or_else(|| ModuleError::ModuleNotFound(module.to_owned()))?;
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

/// The error a module gets for its nested call's `failure`.
#[cold]
fn nested_error(limit: usize, request: &NestedRequest<'_>, failure: Failure) -> ModuleError {
    let module = || String::from_utf8_lossy(request.module).into_owned();
    match failure {
        Failure::Retired => ModuleError::ModuleNotFound(module()),
        Failure::Saturated => ModuleError::CallFailed(format!(
            "module `{}` is saturated ({} calls in flight)",
            module(),
            limit
        )),
        Failure::Module(e) | Failure::Late(e) => e,
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
    let config = &registry.config;
    if config.interceptors.is_empty() && config.breaker.is_none() && registry.cache.is_none() {
        run_call(
            thread, registry, module, index, args, meta, parent, receive, fail,
        )
    } else {
        // The hooks and the cache see a whole output, so it is made first.
        guarded(thread, registry, module, index, args, meta, parent, fail)
            .map(|output| receive.output(output))
    }
}

/// [`run_call`] with the runtime's interceptors around it (`crate::intercept`), answered
/// from its result cache for a pure method (`crate::cache`), and behind the module's
/// breaker (`crate::health`).
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)] // as `run`
fn guarded<E>(
    thread: &ThreadState,
    registry: &Registry,
    module: &Module,
    index: u32,
    args: impl CallInput,
    meta: &CallMeta,
    parent: Option<&HostCall<'_>>,
    fail: impl FnOnce(Failure) -> E,
) -> Result<CallOutput, E> {
    let hooks = &registry.config.interceptors;
    let info = CallInfo {
        module: &module.name,
        method: &module.methods[index as usize].name,
        trace_id: meta.trace_id,
        span_id: meta.span_id,
        depth: meta.depth,
    };
    let after = |outcome: Outcome<'_>| hooks.iter().for_each(|h| h.after(&info, &outcome));
    let refused = hooks
        .iter()
        .find_map(|h| h.before(&info, args.bytes()).err());
    // A pure method's earlier result for the same bytes is as good as a new one, even
    // while the module's breaker is open.
    let cache = registry
        .cache
        .as_ref()
        .filter(|_| refused.is_none() && module.methods[index as usize].pure);
    let cache_key = match cache {
        Some(cache) => {
            if let Some(hit) = cache.get(module.id, index, args.bytes()) {
                let output = CallOutput::copied(&hit);
                after(Outcome {
                    duration: Duration::ZERO,
                    result: Ok(&output),
                });
                return Ok(output);
            }
            Some(args.bytes().to_vec())
        }
        None => None,
    };
    let breaker = registry.config.breaker.as_ref();
    let pass = match (refused, breaker) {
        (Some(error), _) => Err(error),
        (None, Some(config)) => module
            .breaker
            .admit(config, &module.name)
            .ok_or(ModuleError::ServiceUnavailable),
        (None, None) => Ok(Pass::Through),
    };
    let pass = match pass {
        Ok(pass) => pass,
        Err(error) => {
            after(Outcome {
                duration: Duration::ZERO,
                result: Err(Failed::Module(&error)),
            });
            return Err(fail(Failure::Module(error)));
        }
    };
    // The runtime's clock (the time-stamp counter where it is invariant) costs less than
    // half of `Instant::now` a read.
    let clock = &registry.clock;
    let start = clock.raw();
    let elapsed = || Duration::from_nanos(clock.delta_as_nanos(start, clock.raw()));
    let result = run_call(
        thread,
        registry,
        module,
        index,
        args,
        meta,
        parent,
        Keep,
        |failure| {
            let failed = match &failure {
                Failure::Retired => Failed::Unavailable,
                Failure::Saturated => Failed::Saturated,
                Failure::Module(error) | Failure::Late(error) => Failed::Module(error),
            };
            if let Some(config) = breaker {
                match &failure {
                    Failure::Module(error) => {
                        module
                            .breaker
                            .record(config, &module.name, pass, Some(error))
                    }
                    _ if pass == Pass::Trial => module.breaker.trial_not_run(),
                    _ => {}
                }
            }
            after(Outcome {
                duration: elapsed(),
                result: Err(failed),
            });
            fail(failure)
        },
    );
    if let Ok(output) = &result {
        if let Some(config) = breaker {
            module.breaker.record(config, &module.name, pass, None);
        }
        if let (Some(cache), Some(key)) = (cache, &cache_key) {
            cache.put(module.id, index, key, output);
        }
        after(Outcome {
            duration: elapsed(),
            result: Ok(output),
        });
    }
    result
}

/// Runs method `index` of `module` on the thread whose state is `thread`: admission,
/// the frame, the module's entry point, the output found where the module says it is,
/// the slot back, the built-in figures. `parent` is the running call that makes this
/// one, for a nested call: a module already on its chain is re-entered within the
/// chain's slot. `fail` makes the caller's error of a failure.
///
/// This is the path every call takes, so it does only what a call needs, in one piece
/// of straight-line code: the clock is read only for a call with a deadline or one the
/// latency histogram samples; an empty or small result is the output's only copy; and
/// everything that is not a success leaves through cold functions ([`finish_slow`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the call path's own parts, passed down once
fn run_call<R: Receive, E>(
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
    let config = &registry.config;
    // The time the call is given, which a timeout reports; only a call with a deadline
    // reads the clock for it. A call already out of time is not started (the module
    // would refuse it too).
    let given = if meta.deadline.is_some() {
        deadline::given(meta.deadline)
    } else {
        None
    };
    if given == Some(Duration::ZERO) {
        return Err(fail(timed_out(given)));
    }
    let shard = thread.shard();
    // A module its chain already runs in is re-entered within the chain's slot.
    let admitted = match parent {
        Some(p) if p.chain_holds(module) => None,
        _ => match module.enter(shard, config.saturation, meta.deadline) {
            Ok(admitted) => Some(admitted),
            Err(refused) => return Err(fail(not_entered(refused, given))),
        },
    };
    let timed = config.builtin_metrics && thread.time_this_call(config.latency_sampling);
    let start = if timed {
        Some(registry.clock.raw())
    } else {
        None
    };
    let pool = &registry.pool;
    let Placed {
        mut buf,
        args,
        args_len,
        arena_offset,
        owned,
    } = args.place(pool, &thread.arenas);
    let mut host_call = HostCall {
        registry,
        module,
        meta,
        output: Cell::new(None),
        parent,
    };
    let (persistent, persistent_len) = match &module.persistent {
        Some(p) => p.raw(),
        None => (core::ptr::null_mut(), 0),
    };
    let method = module.calls[index as usize];
    let mut frame = CallFrame {
        size: size_of::<CallFrame>() as u32,
        method_index: index,
        method_id: method.id,
        depth: meta.depth,
        args,
        args_len,
        // SAFETY: `arena_offset <= buf.len()` (`Args::place`), so the pointer stays
        // within (or one past) the buffer.
        arena: unsafe { buf.as_mut_ptr().add(arena_offset) },
        arena_len: buf.len() - arena_offset,
        trace_id: meta.trace_id,
        span_id: meta.span_id,
        timeout_ns: deadline::timeout_ns(meta.deadline),
        backpressure: 0.0,
        // Summing the load reads every thread's shard of the module's slots, bringing
        // back the cache-line sharing the shards remove; the module asks for it through
        // `HostApi::backpressure` when it wants it.
        flags: abi::CALL_BACKPRESSURE_ON_REQUEST,
        host: registry.host,
        host_call: (&raw mut host_call).cast(),
        persistent,
        persistent_len,
        out: core::ptr::null(),
        out_len: 0,
        arena_used: 0,
    };
    // The module asks for its running call only when it logs or records a panic
    // (`HostApi::running_call`): the host keeps it, in the state it holds already, and
    // puts the caller's back when the module returns (a module catches its panics, so
    // nothing unwinds past here).
    let frame_ptr = &raw mut frame;
    let outer = thread.running.replace(frame_ptr.cast());
    // SAFETY: the frame honours the ABI: the arguments are borrowed, owned or in the
    // arena ahead of the scratch space, and in every case alive and unwritten until the
    // call returns; the scratch space is this call's alone (taken from the pool);
    // `host_call` lives on this stack until the call returns; and the method's entry
    // point (its own or `memlink_call`) is the module's, valid for the life of the
    // process (its library is never unloaded).
    let status = unsafe { (method.enter)(frame_ptr) };
    thread.running.set(outer);
    let latency = start.map(|s| {
        let ns = registry.clock.delta_as_nanos(s, registry.clock.raw());
        (ns, config.latency_sampling)
    });
    if let Some(admitted) = admitted {
        module.leave(admitted);
    }
    let (out, out_len) = (frame.out, frame.out_len);
    let found = if status == Status::Ok as i32 {
        output::locate(&buf, out, out_len)
    } else {
        Found::Elsewhere
    };
    let record = CallRecord {
        status: 0,
        latency,
        bytes_in: args_len,
        bytes_out: out_len,
        arena_used: frame.arena_used,
    };
    // An empty or small result: the output is made (or handed on) while the arena is
    // the call's, then the arena goes back to the thread, and the call is counted.
    let output = match found {
        Found::Empty => receive.empty(owned),
        Found::Small(offset) => receive.small(&buf, offset, out_len, owned),
        _ => {
            let call = Finished {
                registry,
                module,
                index,
                shard,
                record,
                status,
                buf,
                heap: host_call.output.take(),
                owned,
            };
            return finish_slow(call, found, out)
                .map(|output| receive.output(output))
                .map_err(fail);
        }
    };
    pool.give_back(buf, &thread.arenas);
    if config.builtin_metrics {
        module.stats[index as usize].record(shard, record);
    }
    Ok(output)
}

/// A call that returned, for [`finish_slow`].
struct Finished<'r> {
    registry: &'r Registry,
    module: &'r Module,
    index: u32,
    shard: usize,
    record: CallRecord,
    status: i32,
    /// The buffer the call's arena is in.
    buf: AlignedBuf,
    /// The buffer `alloc_output` gave the module, if it asked for one.
    heap: Option<AlignedBuf>,
    owned: Option<OwnedArgs>,
}

/// The end of a call whose result is not empty or small: a result kept in its arena or
/// in the buffer the host allocated, a failure with its payload, or a result the module
/// put where it may not.
#[cold]
#[inline(never)]
fn finish_slow(call: Finished<'_>, found: Found, out: *const u8) -> Result<CallOutput, Failure> {
    let Finished {
        registry,
        module,
        index,
        shard,
        mut record,
        status,
        buf,
        heap,
        owned,
    } = call;
    let pool = &registry.pool;
    let len = record.bytes_out;
    let result = match found {
        Found::Large(offset) => Ok(CallOutput::in_arena(buf, pool, offset, len, owned)),
        _ => {
            let collected = output::collect(buf, pool, heap, out, len, owned);
            if status == Status::Ok as i32 {
                collected
            } else {
                Err(match collected {
                    Ok(payload) => ModuleError::from_status(status, payload.as_bytes()),
                    Err(e) => e,
                })
            }
        }
    };
    if let Err(e) = &result {
        record.status = e.code();
        record.bytes_out = e.payload().len();
    }
    if registry.config.builtin_metrics {
        module.stats[index as usize].record(shard, record);
    }
    result.map_err(|error| {
        if let ModuleError::Panic(message) = &error {
            crate::log::panicked(
                &module.name,
                &module.methods[index as usize].name,
                message,
                registry.config.log_sink.as_deref(),
            );
        }
        Failure::Module(error)
    })
}

/// A call refused for its deadline, which reports the time it was `given`.
#[cold]
fn timed_out(given: Option<Duration>) -> Failure {
    Failure::Late(ModuleError::Timeout(given.unwrap_or_default()))
}

/// Why a call that was not admitted did not run; `given` is the time it had.
#[cold]
fn not_entered(refused: NotEntered, given: Option<Duration>) -> Failure {
    match refused {
        NotEntered::Retired | NotEntered::Refused(Refused::Closed) => Failure::Retired,
        NotEntered::Refused(Refused::Saturated) => Failure::Saturated,
        NotEntered::Refused(Refused::DeadlinePassed) => timed_out(given),
    }
}
