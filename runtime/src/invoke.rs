//! One run of a method on the calling thread: admission, the call's memory, the frame,
//! the module's entry point, the output found where the module says it is, the slot
//! back and the built-in figures ([`run_call`]); everything but an empty or small result
//! leaves through [`finish_slow`], out of the way of the path every call takes.

use std::cell::Cell;
use std::time::{Duration, Instant};

use memlink_abi::{self as abi, CallFrame, ModuleError, Status};

use crate::admission::Refused;
use crate::args::{CallInput, Placed};
use crate::buffer::AlignedBuf;
use crate::deadline;
use crate::host_call::{CallMeta, HostCall};
use crate::metrics::CallRecord;
use crate::module::{Module, NotEntered};
use crate::output::{self, CallOutput, Found, OwnedArgs, Receive};
use crate::registry::Registry;
use crate::thread::ThreadState;

/// Why a dispatched call did not produce output.
pub(crate) enum Failure {
    /// The module was retired (unloaded).
    Retired,
    /// The module was at its concurrency limit and the policy is to refuse.
    Saturated,
    /// The call failed: the module's error.
    Module(ModuleError),
    /// The call did not reach the module: its deadline passed before it started (a
    /// `ModuleError::Timeout` to the caller), or no arena could be had for it
    /// (`QuotaExceeded`). The caller gets the error; a breaker counts nothing of the
    /// module's.
    NotRun(ModuleError),
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
pub(crate) fn run_call<R: Receive, E>(
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
        let late = timed_out(given);
        return Err(fail(counted(registry, module, index, thread.shard(), late)));
    }
    let shard = thread.shard();
    // A module its chain already runs in is re-entered within the chain's slot: a call
    // of this runtime's chain, or one whose host code (a log sink's) this thread runs
    // while it holds its slot, through whichever runtime that code called. A call of
    // depth 0 is no chain's (a call from host code is one level below it), so the plain
    // call's constant compiles the look at the hooks away.
    let reentered = parent.is_some_and(|p| p.chain_holds(module))
        || (meta.depth > 0 && crate::chain::hooks_hold_slot(module.lineage));
    let admitted = if reentered {
        None
    } else {
        match module.enter(shard, config.saturation, meta.deadline) {
            Ok(admitted) => Some(admitted),
            Err(refused) => {
                let refused = not_entered(refused, given);
                return Err(fail(counted(registry, module, index, shard, refused)));
            }
        }
    };
    let timed = config.builtin_metrics && thread.time_this_call(config.latency_sampling);
    let start = if timed {
        Some(registry.clock.raw())
    } else {
        None
    };
    let pool = &registry.pool;
    let Some(Placed {
        mut buf,
        args,
        args_len,
        arena_offset,
        owned,
    }) = args.place(pool, &thread.arenas)
    else {
        if let Some(admitted) = admitted {
            module.leave(admitted);
        }
        return Err(fail(counted(registry, module, index, shard, no_arena())));
    };
    let handle = crate::chain::next_handle();
    let mut host_call = HostCall {
        registry,
        module,
        meta,
        index,
        output: Cell::new(None),
        nested_panic: Cell::new(0),
        parent,
        handle,
    };
    let call_ptr = &raw mut host_call;
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
        // A number the module passes back, never followed (see `HostCall::handle`).
        host_call: core::ptr::without_provenance_mut(handle),
        persistent,
        persistent_len,
        out: core::ptr::null(),
        out_len: 0,
        arena_used: 0,
        small_out: [0; abi::SMALL_OUT_LEN],
    };
    // The module asks for its running call only when it logs or records a panic
    // (`HostApi::running_call`), and the host's services find the call they serve by the
    // thread's innermost (never by the frame, which the module may write over): the host
    // keeps both, in the state it holds already, and puts the caller's back when the
    // module returns (a module catches its panics, so nothing unwinds past here).
    let frame_ptr = &raw mut frame;
    let outer = crate::chain::enter(frame_ptr.cast(), call_ptr.cast_const().cast());
    // SAFETY: the frame honours the ABI: the arguments are borrowed, owned or in the
    // arena ahead of the scratch space, and in every case alive and unwritten until the
    // call returns; the scratch space is this call's alone (taken from the pool);
    // `host_call` lives on this stack until the call returns; and the method's entry
    // point (its own or `memlink_call`) is the module's, valid for the life of the
    // process (its library is never unloaded).
    let status = unsafe { (method.enter)(frame_ptr) };
    crate::chain::leave(outer);
    let latency = start.map(|s| {
        let ns = registry.clock.delta_as_nanos(s, registry.clock.raw());
        (ns, config.latency_sampling)
    });
    if let Some(admitted) = admitted {
        module.leave(admitted);
    }
    // A result that comes after the call's deadline is not taken: the caller gets the
    // `Timeout` the deadline promised, whichever module made the call late (the SDK makes
    // its own late results `Timeout`; a module written to the ABI alone may not). Only a
    // call with a deadline reads the clock for it.
    let late = meta.deadline.is_some_and(|d| Instant::now() >= d);
    let (out, out_len) = (frame.out, frame.out_len);
    let found = if status != Status::Ok as i32 {
        Found::Elsewhere
    } else if frame.holds_small_result(status) {
        Found::InFrame
    } else {
        output::locate(&buf, arena_offset, out, out_len)
    };
    let record = CallRecord {
        status: 0,
        latency,
        bytes_in: args_len,
        bytes_out: out_len,
        // A module's figure past the arena it was given (a C module's `SIZE_MAX`, say) is
        // no arena's use: the mark it feeds is kept to what an arena can hold.
        arena_used: frame.arena_used.min(buf.len() - arena_offset),
    };
    // A late success is a timeout: its output is dropped before anyone sees it (a
    // nested caller's sink included), its memory back in the pool. A late failure stays
    // the failure it was.
    if late && status == Status::Ok as i32 {
        pool.give_back(buf, &thread.arenas);
        let timeout = ModuleError::Timeout(given.unwrap_or_default());
        return Err(fail(late_result(
            registry, module, index, shard, record, timeout,
        )));
    }
    // An empty or small result: the output is made (or handed on) while the arena is
    // the call's, then the arena goes back to the thread, and the call is counted.
    let output = match found {
        Found::Empty => receive.empty(owned),
        Found::Small(offset) => receive.small(&buf, offset, out_len, owned),
        Found::InFrame => receive.in_frame(frame.small_out, out_len, owned),
        _ => {
            let call = Finished {
                registry,
                module,
                meta,
                index,
                shard,
                record,
                status,
                buf,
                arena_offset,
                heap: host_call.output.take(),
                owned,
                nested_panic: host_call.nested_panic.get(),
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

/// The end of a call whose result came after its deadline (`timeout`, the time it was
/// given): counted as a timeout, and given to the caller as one.
#[cold]
#[inline(never)]
fn late_result(
    registry: &Registry,
    module: &Module,
    index: u32,
    shard: usize,
    mut record: CallRecord,
    timeout: ModuleError,
) -> Failure {
    record.status = timeout.code();
    record.bytes_out = timeout.payload().len();
    if registry.config.builtin_metrics {
        module.stats[index as usize].record(shard, record);
    }
    Failure::Module(timeout)
}

/// A call that returned, for [`finish_slow`].
struct Finished<'r> {
    registry: &'r Registry,
    module: &'r Module,
    meta: &'r CallMeta,
    index: u32,
    shard: usize,
    record: CallRecord,
    status: i32,
    /// The buffer the call's arena is in.
    buf: AlignedBuf,
    /// Where in `buf` the arena starts (the arguments handed over in it lie ahead).
    arena_offset: usize,
    /// The buffer `alloc_output` gave the module, if it asked for one.
    heap: Option<AlignedBuf>,
    owned: Option<OwnedArgs>,
    /// The mark of the panic the last nested call of this one ended with (see
    /// `HostCall::nested_panic`).
    nested_panic: u64,
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
        meta,
        index,
        shard,
        mut record,
        status,
        buf,
        arena_offset,
        heap,
        owned,
        nested_panic,
    } = call;
    let pool = &registry.pool;
    let len = record.bytes_out;
    let result = match found {
        Found::Large(offset) => Ok(CallOutput::in_arena(buf, pool, offset, len, owned)),
        // A status whose payload is empty ignores the output fields, as the ABI says: a
        // module that set them and then failed (asked `alloc_output` for its output, got
        // null, and returned `QuotaExceeded`) is told its own status, not that its output
        // lies where none may. A code that is no status is `Abi` whatever it sent.
        _ if Status::from_code(status).is_none_or(|s| !s.has_payload()) => {
            crate::thread::with(|t| pool.give_back(buf, &t.arenas));
            drop((heap, owned));
            Err(ModuleError::from_status(status, &[]))
        }
        _ => {
            let collected = output::collect(buf, arena_offset, pool, heap, out, len, owned);
            if status == Status::Ok as i32 {
                collected
            } else {
                Err(match collected {
                    Ok(payload) => ModuleError::from_status(status, payload.as_bytes()),
                    // The payload lies where none may: said so, with the status it came
                    // with, which is otherwise lost. Named by its code: the error an
                    // empty payload would make of it is not always of its status (an
                    // empty `Timeout` is an `Abi` error, its payload too short).
                    Err(ModuleError::Abi(why)) => ModuleError::Abi(format!(
                        "{why} (the payload of the status it returned, {:?} {status})",
                        Status::from_code(status).unwrap_or(Status::Abi)
                    )),
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
        // A panic the module passes on from a nested call (the same message) was logged
        // as the callee's: logged again here, it read as this module's own panic, once
        // for each module of the chain that passed it on.
        let own_panic = match &error {
            ModuleError::Panic(message)
                if crate::host_call::panic_mark(message) != nested_panic =>
            {
                Some(message)
            }
            _ => None,
        };
        if let Some(message) = own_panic {
            let report = || {
                crate::log::panicked(
                    (&module.name, &module.methods[index as usize].name),
                    message,
                    (meta.trace_id, meta.span_id),
                    registry.config.log_sink.as_deref(),
                )
            };
            // The record is the call's, and the sink runs as its host code: a call the
            // sink makes is part of its chain, one level deeper (a sink that calls a
            // module that panics again ends at the depth limit), not bound by the
            // deadline of a call that is over; and it may not unload or reload the
            // module, whose call it runs in.
            let chain = CallMeta {
                deadline: None,
                ..*meta
            };
            crate::chain::hooked_by(chain, module.lineage, &module.name, false, report);
        }
        Failure::Module(error)
    })
}

/// A call that could have no arena: the memory is exhausted (the pool says so in the
/// log, naming the arena's size).
#[cold]
fn no_arena() -> Failure {
    Failure::NotRun(ModuleError::QuotaExceeded)
}

/// A call refused for its deadline, which reports the time it was `given`.
#[cold]
fn timed_out(given: Option<Duration>) -> Failure {
    Failure::NotRun(ModuleError::Timeout(given.unwrap_or_default()))
}

/// `refused`, a call the module never saw, counted as a call and an error of why (but
/// for a call to a module unloaded meanwhile: no longer this module's).
#[cold]
#[inline(never)]
fn counted(
    registry: &Registry,
    module: &Module,
    index: u32,
    shard: usize,
    refused: Failure,
) -> Failure {
    let status = match &refused {
        Failure::Retired => None,
        Failure::Saturated => Some(crate::metrics::SATURATED),
        Failure::Module(e) | Failure::NotRun(e) => Some(e.code()),
    };
    if let (Some(status), true) = (status, registry.config.builtin_metrics) {
        module.stats[index as usize].refused(shard, status);
    }
    refused
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
