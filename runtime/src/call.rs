//! The call path, from a caller to a module's entry point and back.
//!
//! Read top-down, it follows one call:
//!
//! 1. [`from_host`]: a call from the host decides its deadline (`crate::deadline`) and
//!    turns a failure into the [`RuntimeError`] the caller gets; [`nested`] is the same
//!    for a call a module makes, turning a failure into the [`ModuleError`] the module
//!    gets.
//! 2. [`run`]: admission (a slot from the module's gate, unless the call re-enters a
//!    module its chain already runs in), the call, the slot back, the built-in figures.
//! 3. [`dispatch`]: the call's memory laid out (`crate::args`), the frame, the module's
//!    `memlink_call`, and its output found where the module says it is
//!    (`crate::output`).

use std::time::Duration;

use memlink_abi::{self as abi, CallFrame, Format, ModuleError, Status};

use crate::admission::Refused;
use crate::args::Args;
use crate::deadline;
use crate::error::RuntimeError;
use crate::handle::ModuleHandle;
use crate::host_call::{CallMeta, HostCall, NestedRequest};
use crate::metrics::CallRecord;
use crate::module::{Module, NotEntered};
use crate::options::CallOptions;
use crate::output::{collect, CallOutput};
use crate::registry::Registry;
use crate::thread::ThreadState;

/// Why a dispatched call did not produce output.
enum Failure {
    /// The module was retired (unloaded).
    Retired,
    /// The module was at its concurrency limit and the policy is to refuse.
    Saturated,
    /// The call failed: the module's error, or the runtime's timeout before it started.
    Module(ModuleError),
}

/// Calls method `index` of `module` (loaded as `handle`) from the host.
pub(crate) fn from_host(
    registry: &Registry,
    handle: ModuleHandle,
    module: &Module,
    index: u32,
    args: Args<'_>,
    options: &CallOptions,
) -> Result<CallOutput, RuntimeError> {
    let meta = CallMeta {
        depth: 0,
        trace_id: options.trace_id,
        span_id: options.span_id,
        deadline: deadline::decide(options, registry.config.default_timeout),
    };
    crate::thread::with(|t| run(t, registry, module, index, args, meta, None)).map_err(|failure| {
        let method = || module.methods[index as usize].name.clone();
        match failure {
            Failure::Retired => RuntimeError::UnknownHandle(handle),
            Failure::Saturated => RuntimeError::Saturated {
                module: module.name.clone(),
                method: method(),
                limit: registry.config.max_concurrency,
            },
            Failure::Module(error) => RuntimeError::Call {
                module: module.name.clone(),
                method: method(),
                error,
            },
        }
    })
}

/// A call from one module to another, by name, on behalf of the running call `caller`:
/// the host's `call_module` service. With `typed`, the arguments are MessagePack and are
/// converted to the callee's argument format first. Returns the output and the callee's
/// result format.
pub(crate) fn nested(
    caller: &HostCall<'_>,
    request: &NestedRequest<'_>,
) -> Result<(CallOutput, Format), ModuleError> {
    let registry = caller.registry;
    let meta = caller.nested_meta();
    if meta.depth > registry.config.max_call_depth {
        return Err(ModuleError::MaxCallDepthExceeded);
    }
    let target = registry
        .by_name(request.module)
        .ok_or_else(|| ModuleError::ModuleNotFound(request.module.to_owned()))?;
    let (index, method) = target
        .method(request.method)
        .ok_or(ModuleError::InvalidMethod)?;
    let converted;
    let args = if request.typed {
        converted = memlink_abi::msgpack::convert_args(method.args_format, request.args.to_vec())?;
        &converted[..]
    } else {
        request.args
    };
    let out = crate::thread::with(|t| {
        run(t, registry, target, index, Args::Borrowed(args), meta, Some(caller))
    })
    .map_err(|failure| match failure {
        Failure::Retired => ModuleError::ModuleNotFound(request.module.to_owned()),
        Failure::Saturated => ModuleError::CallFailed(format!(
            "module `{}` is saturated ({} calls in flight)",
            request.module, registry.config.max_concurrency
        )),
        Failure::Module(e) => e,
    })?;
    Ok((out, method.result_format))
}

/// Runs method `index` of `module` on the thread whose state is `thread`: admission,
/// the call, the built-in figures. `parent` is the running call that makes this one, for
/// a nested call: a module already on its chain is re-entered within the chain's slot.
#[inline]
fn run(
    thread: &ThreadState,
    registry: &Registry,
    module: &Module,
    index: u32,
    args: Args<'_>,
    meta: CallMeta,
    parent: Option<&HostCall<'_>>,
) -> Result<CallOutput, Failure> {
    let config = &registry.config;
    let given = deadline::given(meta.deadline);
    let timed_out = || Failure::Module(ModuleError::Timeout(given.unwrap_or_default()));
    // A call already out of time is not started (the module would refuse it too).
    if given == Some(Duration::ZERO) {
        return Err(timed_out());
    }
    // A module its chain already runs in is re-entered within the chain's slot.
    let admitted = if parent.is_some_and(|p| p.chain_holds(module)) {
        None
    } else {
        match module.enter(thread.shard, config.saturation, meta.deadline) {
            Ok(admitted) => Some(admitted),
            Err(NotEntered::Retired | NotEntered::Refused(Refused::Closed)) => {
                return Err(Failure::Retired)
            }
            Err(NotEntered::Refused(Refused::Saturated)) => return Err(Failure::Saturated),
            Err(NotEntered::Refused(Refused::DeadlinePassed)) => return Err(timed_out()),
        }
    };
    let timed = config.builtin_metrics && thread.time_this_call(config.latency_sampling);
    let start = timed.then(|| registry.clock.raw());
    let (result, arena_used, bytes_in) =
        dispatch(thread, registry, module, index, args, meta, parent);
    let latency = start.map(|s| {
        let ns = registry.clock.delta_as_nanos(s, registry.clock.raw());
        (ns, config.latency_sampling)
    });
    if let Some(admitted) = admitted {
        module.leave(admitted);
    }
    if config.builtin_metrics {
        let (status, bytes_out) = match &result {
            Ok(out) => (0, out.len()),
            Err(e) => (e.code(), e.payload().len()),
        };
        module.stats[index as usize].record(
            thread.shard,
            CallRecord {
                status,
                latency,
                bytes_in,
                bytes_out,
                arena_used,
            },
        );
    }
    if let Err(ModuleError::Panic(message)) = &result {
        crate::log::panicked(
            &module.name,
            &module.methods[index as usize].name,
            message,
            config.log_sink.as_deref(),
        );
    }
    result.map_err(Failure::Module)
}

/// Calls method `index` of `module` with `args`. The module must already be entered
/// (`Module::enter`); the caller leaves it afterwards. Also returns the arena bytes the
/// call used and the argument length.
#[inline]
fn dispatch(
    thread: &ThreadState,
    registry: &Registry,
    module: &Module,
    index: u32,
    args: Args<'_>,
    meta: CallMeta,
    parent: Option<&HostCall<'_>>,
) -> (Result<CallOutput, ModuleError>, usize, usize) {
    let pool = &registry.pool;
    let mut placed = args.place(pool, &thread.arenas);
    let mut host_call = HostCall {
        registry,
        module,
        meta,
        output: None,
        parent,
        nested,
    };
    let (persistent, persistent_len) = module
        .persistent
        .as_ref()
        .map_or((core::ptr::null_mut(), 0), |p| p.raw());
    let arena_len = placed.buf.len() - placed.arena_offset;
    let mut frame = CallFrame {
        size: size_of::<CallFrame>() as u32,
        method_index: index,
        method_id: module.methods[index as usize].id,
        depth: meta.depth,
        args: placed.args,
        args_len: placed.args_len,
        // SAFETY: `arena_offset <= buf.len()` (`Args::place`), so the pointer stays
        // within (or one past) the buffer.
        arena: unsafe { placed.buf.as_mut_ptr().add(placed.arena_offset) },
        arena_len,
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
    // SAFETY: the frame honours the ABI: the arguments are borrowed, owned or in the
    // arena ahead of the scratch space, and in every case alive and unwritten until the
    // call returns; the scratch space is this call's alone (taken from the pool);
    // `host_call` lives on this stack until the call returns; and `call` is the module's
    // entry point, valid for the life of the process (its library is never unloaded).
    let status = unsafe { (module.entry.call)(&mut frame) };
    let (out, out_len, used) = (frame.out, frame.out_len, frame.arena_used);
    let args_len = placed.args_len;
    let owned = placed.owned.take();
    let result = collect(placed.buf, pool, &thread.arenas, host_call.output, out, out_len)
        .and_then(|mut output| {
            output.args = owned;
            match Status::from_code(status) {
                Some(Status::Ok) => Ok(output),
                _ => Err(ModuleError::from_status(status, output.as_bytes())),
            }
        });
    (result, used, args_len)
}
