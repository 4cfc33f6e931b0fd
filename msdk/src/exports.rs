//! The `#[no_mangle]` entry points of a module (see [`crate::abi`]).
//!
//! They live in this crate, so every cdylib that links memlink-msdk exports them with no
//! code of its own: a `#[no_mangle]` item of an rlib is exported from the cdylib that
//! links it. Each one catches every panic: unwinding out of an `extern "C"` function
//! would abort the host.

use core::ffi::c_void;
use core::ptr::NonNull;
use std::mem::offset_of;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::abi::{self, CallFrame, HostApi, InitFrame, ModuleInfo, Status, StrRef};
use crate::arena::Arena;
use crate::caller::ModuleCaller;
use crate::context::CallContext;
use crate::dispatch;
use crate::error::ModuleError;
use crate::frame;
use crate::frame_ref::FrameRef;
use crate::panic as guard;
use crate::request::{write_through_host, Invocation};

/// Returns [`abi::ABI_VERSION`]. The host reads it before anything else.
#[no_mangle]
pub extern "C" fn memlink_abi_version() -> u32 {
    abi::ABI_VERSION
}

/// How a panic in this module ends: [`abi::PANIC_UNWIND`], caught at the entry point
/// and told as the call's error, unless the module was built with `panic = "abort"`
/// ([`abi::PANIC_ABORT`]), where a panic ends the process that loaded it. The host
/// reads it at load to warn of such a module.
///
/// Cargo builds every crate of a module with its profile's one strategy, but a module
/// crate built with `-C panic=abort` alone (`cargo rustc -- -C panic=abort`) links this
/// crate built to unwind, and aborts all the same: so each export records how the crate
/// that defines it was built, and one built to abort tells for the module.
#[no_mangle]
pub extern "C" fn memlink_panic_strategy() -> u32 {
    // Building the table may panic (an export's type description): such a module is
    // refused at load all the same (`memlink_module_info` answers null).
    let exports_unwind =
        panic::catch_unwind(|| dispatch::table().unwinds()).unwrap_or_else(|payload| {
            guard::drop_payload(payload);
            true
        });
    if cfg!(panic = "unwind") && exports_unwind {
        abi::PANIC_UNWIND
    } else {
        abi::PANIC_ABORT
    }
}

/// Returns the module's description and method table, which live as long as the module.
/// Null only if building the table panicked.
#[no_mangle]
pub extern "C" fn memlink_module_info() -> *const ModuleInfo {
    panic::catch_unwind(|| dispatch::table().info() as *const ModuleInfo).unwrap_or_else(
        |payload| {
            guard::drop_payload(payload);
            core::ptr::null()
        },
    )
}

/// Prepares the module for calls; the host calls it once after loading.
///
/// # Safety
///
/// `frame` must be null or point to an [`InitFrame`] valid for reads and writes of its
/// `size` field and of as many bytes as that field says, for the duration of the call,
/// whose `host` stays valid until the image's last `memlink_shutdown` and while threads
/// the module started may still log (see `InitFrame::host`). A frame smaller than this
/// module's (an older host's) is refused with `Abi`: only its `size` is read, and its
/// `error` written if it has one.
#[no_mangle]
pub unsafe extern "C" fn memlink_init(frame: *mut InitFrame) -> i32 {
    let Some(frame) = NonNull::new(frame) else {
        return Status::Abi as i32;
    };
    // SAFETY: the caller's contract makes `size`, the first field of every version of the
    // frame, readable; no reference to the whole frame is made before it is known to
    // hold one.
    let size = unsafe { (&raw const (*frame.as_ptr()).size).read() } as usize;
    if size < size_of::<InitFrame>() {
        let message = format!(
            "the init frame is {size} bytes, this module needs {}",
            size_of::<InitFrame>()
        );
        // A frame too small to hold `error` gets nothing written past its end.
        if size >= offset_of!(InitFrame, error) + size_of::<StrRef>() {
            // SAFETY: the field lies within the frame's `size` bytes, writable for the
            // call (the caller's contract), and is written through the pointer alone.
            unsafe {
                (&raw mut (*frame.as_ptr()).error).write(StrRef::new(static_message(message)));
            }
        }
        return Status::Abi as i32;
    }
    // SAFETY: the caller's contract: the frame holds a whole `InitFrame` (its size, just
    // read), valid and exclusively ours for the call.
    let frame = unsafe { &mut *frame.as_ptr() };
    let outcome = guard::isolate(|| init(frame)).unwrap_or_else(|panicked| {
        Err(match panicked {
            ModuleError::Panic(message) => format!("memlink_init panicked: {message}"),
            other => other.to_string(),
        })
    });
    match outcome {
        Ok(()) => Status::Ok as i32,
        Err(message) => {
            // The frame is whole here (a smaller one was refused above): it has `error`.
            frame.error = StrRef::new(static_message(message));
            Status::Abi as i32
        }
    }
}

/// `message` in memory that lives as long as the module, as `InitFrame::error` requires.
/// Each distinct message is kept once: a host that retries a failing init does not grow
/// the module's memory, and every failure reports its own reason.
fn static_message(message: String) -> &'static str {
    static MESSAGES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    // A panic cannot leave the list half-written: a push either happened or did not.
    let mut kept = MESSAGES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&same) = kept.iter().find(|&&m| m == message) {
        return same;
    }
    let leaked: &'static str = Box::leak(message.into_boxed_str());
    kept.push(leaked);
    leaked
}

/// Init on a frame as large as this module's.
fn init(frame: &InitFrame) -> Result<(), String> {
    // SAFETY: `host` is null or valid until shutdown (`memlink_init`'s contract), for
    // reads of its size first.
    if let Some(why) = unsafe { frame::table_problem(frame.host) } {
        return Err(why);
    }
    if frame.abi_version != abi::ABI_VERSION {
        return Err(format!(
            "host speaks memlink ABI {}, module speaks {}",
            frame.abi_version,
            abi::ABI_VERSION
        ));
    }
    if let Some(refusal) = dispatch::table().refusal() {
        return Err(refusal.to_owned());
    }
    guard::install_hook();
    let mut loads = lock_loads();
    if *loads == 0 {
        #[cfg(feature = "async")]
        crate::executor::runtime::start()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    }
    *loads += 1;
    crate::log::connect(frame.max_log_level);
    // SAFETY: checked above: the table is large enough, and valid until the image's
    // last shutdown and while the module's threads may log (`memlink_init`'s contract);
    // the image forgets it at its last shutdown.
    unsafe { crate::current::connect(frame.host) };
    Ok(())
}

/// How many hosts have this image initialized: loading one file twice (from two
/// runtimes in one process) maps one image, so shared state stops only at the last
/// shutdown.
static LOADS: Mutex<u32> = Mutex::new(0);

fn lock_loads() -> MutexGuard<'static, u32> {
    // The counter is a single integer: a panic cannot leave it half-written.
    LOADS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Stops the module's background work (its async runtime) when the last host that
/// initialized this image retires it; the library stays mapped (see the runtime's docs).
///
/// # Safety
///
/// Only a host calls it: once for each [`memlink_init`] of this image that succeeded,
/// when it retires the module, with none of its calls running in the module. Each call
/// ends one host's use of the image, and the last disconnects every host's services
/// from it: the module's own code calling it would cut off the hosts still using it
/// (their log records dropped, their async calls failing).
#[no_mangle]
pub unsafe extern "C" fn memlink_shutdown() -> i32 {
    let outcome = panic::catch_unwind(|| {
        let mut loads = lock_loads();
        *loads = loads.saturating_sub(1);
        if *loads == 0 {
            crate::log::disconnect();
            crate::current::disconnect();
            #[cfg(feature = "async")]
            crate::executor::runtime::stop();
        }
    });
    match outcome {
        Ok(()) => Status::Ok as i32,
        Err(payload) => {
            guard::drop_payload(payload);
            Status::Panic as i32
        }
    }
}

/// Reports the module's own metrics (see [`crate::metrics`]) to `visit`, one record per
/// metric, each valid only during its `visit`.
///
/// A null `visit` (a C host's mistake: the ABI's `MetricsFn` takes a function) is
/// refused with [`Status::Abi`], nothing visited; taken as an `Option`, which has the
/// same representation as the plain function pointer, null being `None`.
///
/// # Safety
///
/// `visit` must be null or safe to call with `ctx` and a valid record.
#[no_mangle]
pub unsafe extern "C" fn memlink_metrics(
    visit: Option<
        unsafe extern "C" fn(ctx: *mut core::ffi::c_void, record: *const abi::MetricRecord),
    >,
    ctx: *mut core::ffi::c_void,
) -> i32 {
    let Some(visit) = visit else {
        return Status::Abi as i32;
    };
    // SAFETY: forwarded from this function's contract.
    match panic::catch_unwind(|| unsafe { crate::metrics::visit_all(visit, ctx) }) {
        Ok(()) => Status::Ok as i32,
        Err(payload) => {
            guard::drop_payload(payload);
            Status::Panic as i32
        }
    }
}

/// Runs one call described by `frame`.
///
/// # Safety
///
/// `frame` must be null or point to a [`CallFrame`] valid for the duration of the call
/// whose pointers honour the contract documented on each field: `args` readable and
/// unchanging, `arena` readable, writable and used by no one else, `host` and
/// `host_call` valid. The frame is the module's until the call returns: the host neither
/// reads nor writes it meanwhile (the module writes `out`, `out_len`, `arena_used` and
/// `small_out` while the call runs, and may withdraw a result it set).
#[no_mangle]
pub unsafe extern "C" fn memlink_call(frame: *mut CallFrame) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        run(
            frame,
            |index, id| dispatch::table().entry(index, id),
            |entry, call| (entry.invoke)(call),
        )
    }
}

/// An export as its own entry point ([`export_call`]) knows it, at compile time:
/// `#[memlink_export]` implements it for a type of its own per export.
#[doc(hidden)]
pub trait OwnEntry {
    /// [`abi::method_id`] of the export's name.
    const ID: u32;
    /// The export's row of the method table.
    fn entry() -> &'static dispatch::MethodEntry;
    /// The export's wrapper: decode, call, encode.
    fn invoke(call: &Invocation<'_>) -> Result<(), ModuleError>;
}

/// The entry point of the one export `E` (`ModuleInfo::method_calls`): the boundary of
/// [`memlink_call`] with the export's wrapper compiled into it and nothing looked up. A
/// frame that names another method (by its id) is refused as `memlink_call` refuses an
/// unknown one. Generic, so that no `unsafe` is written in the crate that defines the
/// export.
///
/// # Safety
///
/// As for [`memlink_call`].
#[doc(hidden)]
pub unsafe extern "C" fn export_call<E: OwnEntry>(frame: *mut CallFrame) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        run(
            frame,
            |_, id| (id == E::ID).then(E::entry),
            |_, call| E::invoke(call),
        )
    }
}

/// [`memlink_call`] with the export found by `lookup` (from the method's index and id):
/// the boundary itself, which the tests run on exports of their own under Miri (the
/// table `linkme` gathers is out of its reach).
///
/// # Safety
///
/// As for [`memlink_call`].
#[inline(always)]
unsafe fn run(
    frame: *mut CallFrame,
    lookup: impl FnOnce(u32, u32) -> Option<&'static dispatch::MethodEntry>,
    invoke: impl FnOnce(&'static dispatch::MethodEntry, &Invocation<'_>) -> Result<(), ModuleError>,
) -> i32 {
    let Some(frame) = NonNull::new(frame) else {
        return Status::Abi as i32;
    };
    // SAFETY: the caller's contract makes the frame readable; `size` is the first field
    // of every version of it. A frame smaller than this module's may not be made a
    // reference to one: it is refused on its size alone, with nothing written.
    if (unsafe { (&raw const (*frame.as_ptr()).size).read() } as usize) < size_of::<CallFrame>() {
        return Status::Abi as i32;
    }
    // SAFETY: the caller's contract: the frame is valid and ours for the call, and as
    // large as this module's; the reference lives for the check alone (`host` is null
    // or valid, as it requires).
    if !unsafe { frame::is_sound(frame.as_ref()) } {
        return refuse(frame);
    }
    // SAFETY: the caller's contract makes the frame valid, and its outputs ours to write,
    // for the call; until the call below is over no reference to it is made (`fail`'s
    // comes after, when no copy of the pointer is used again); and it passed `is_sound`.
    let frame = unsafe { FrameRef::new(frame) };
    frame.set_place(core::ptr::null(), 0);
    frame.set_arena_used(0);
    let Some(entry) = lookup(frame.method_index(), frame.method_id()) else {
        return Status::InvalidMethod as i32;
    };
    let host = frame.host_api();
    // The running call is the host's to keep (`crate::current`): the boundary records
    // nothing of it. The export's result and the arena it used are written into the
    // frame where they are known (`FrameRef`); only an error comes back here, so the
    // common case moves nothing through the unwinding boundary.
    // SAFETY: forwarded from this function's contract; `is_sound` proved the regions
    // well formed and apart.
    let failed = match panic::catch_unwind(AssertUnwindSafe(|| unsafe {
        call(frame, entry, |call| invoke(entry, call))
    })) {
        Ok(outcome) => outcome.err(),
        Err(payload) => Some(Failed::from(ModuleError::Panic(guard::message(
            payload,
            frame.as_mut_ptr(),
        )))),
    };
    guard::end_of_call(frame.as_mut_ptr());
    match failed {
        None => Status::Ok as i32,
        Some(failed) => fail(frame, host, failed, entry),
    }
}

/// An export's call that failed: its error, and whether the error refuses the call's own
/// arguments (one the export returns otherwise, from a nested call say, is not about
/// them, and is not told with this export's signature).
struct Failed {
    error: ModuleError,
    own_args: bool,
}

impl From<ModuleError> for Failed {
    fn from(error: ModuleError) -> Failed {
        Failed {
            error,
            own_args: false,
        }
    }
}

/// Answers a call that failed: a result it may have set is withdrawn, and its error's
/// payload goes into the arena, or through the host's buffer when it does not fit. The
/// frame is written through its pointer, as during the call: until the boundary returns,
/// the host still answers `running_call` with it, so a panic recorded while the payload
/// is written reads it through the host's copy.
#[cold]
#[inline(never)]
fn fail(frame: FrameRef<'_>, host: &HostApi, failed: Failed, entry: &dispatch::MethodEntry) -> i32 {
    let Failed { error, own_args } = failed;
    // SAFETY: the frame passed `is_sound` (`fail` answers only such frames), so its
    // arguments are readable and unchanged for the call, as `call` reads them.
    let args = unsafe { slice_or_empty(frame.args(), frame.args_len()) };
    // Naming the argument decodes the arguments again, through the author's types,
    // whose code may panic: nothing unwinds out of here, and the error goes as it was.
    let told = own_args
        .then(|| panic::catch_unwind(AssertUnwindSafe(|| in_context(&error, entry, args))))
        .and_then(|told| match told {
            Ok(told) => told,
            // The payload is the author's value, whose drop may panic too: dropped
            // where nothing unwinds out, as every caught panic's is.
            Err(payload) => {
                guard::drop_payload(payload);
                None
            }
        });
    let error = told.as_ref().unwrap_or(&error);
    frame.set_place(core::ptr::null(), 0);
    let arena = Some((frame.arena(), frame.arena_len()));
    // Reporting must not unwind either (an allocation failure in the host, say).
    let reported = panic::catch_unwind(AssertUnwindSafe(|| {
        report(frame.host_call(), Some(host), arena, error)
    }));
    match reported {
        Ok(Some((out, len))) => frame.set_place(out, len),
        Ok(None) => {}
        Err(payload) => guard::drop_payload(payload),
    }
    error.code()
}

/// Answers a frame that failed its checks: the payload goes through the host's buffer,
/// if the host's table is usable, and never into the arena, which was not proven so. A
/// frame too small to hold the outputs gets nothing written. The frame is read and
/// written through its pointer, as `fail` does.
#[cold]
#[inline(never)]
fn refuse(frame: NonNull<CallFrame>) -> i32 {
    let frame = frame.as_ptr();
    // SAFETY: `memlink_call`'s contract: the frame is valid for reads, and `host` is
    // null or valid for the call; the reference lives for the check alone.
    let Some(problem) = (unsafe { frame::problem(&*frame) }) else {
        return Status::Abi as i32;
    };
    // SAFETY: `problem` found the frame as large as this module's (a smaller one is
    // `None` above), so each field is within it; the contract makes it readable, and
    // `host` null or valid for reads of its size. Fields are read through the pointer,
    // making no reference; a table too small for this module, out of alignment, or
    // lying in the frame (whose outputs are written below, over its functions) is not
    // used, nor made a reference to. Read before the outputs are written.
    let (host_call, host) = unsafe {
        let host = (&raw const (*frame).host).read();
        let whole = frame::host_size(host).is_some_and(|s| s as usize >= size_of::<HostApi>());
        let in_frame = frame::table_in_frame(frame.addr(), host.addr());
        (
            (&raw const (*frame).host_call).read(),
            if whole && !in_frame {
                host.as_ref()
            } else {
                None
            },
        )
    };
    // SAFETY: as above; the contract makes the frame's outputs writable for the call.
    unsafe {
        (&raw mut (*frame).out).write(core::ptr::null());
        (&raw mut (*frame).out_len).write(0);
        (&raw mut (*frame).arena_used).write(0);
    }
    let reported =
        panic::catch_unwind(AssertUnwindSafe(|| report(host_call, host, None, &problem)));
    match reported {
        // SAFETY: as above.
        Ok(Some((out, len))) => unsafe {
            (&raw mut (*frame).out).write(out);
            (&raw mut (*frame).out_len).write(len);
        },
        Ok(None) => {}
        Err(payload) => guard::drop_payload(payload),
    }
    problem.code()
}

/// Runs the export `entry` on `frame` through `invoke` (its wrapper): its result's place and the arena it used go into
/// the frame (the arena used whatever the outcome, unless the export panicked), and an
/// error is returned.
///
/// # Safety
///
/// As for [`memlink_call`], with `frame` proven sound (`frame::is_sound`).
#[inline]
unsafe fn call(
    frame: FrameRef<'_>,
    entry: &'static dispatch::MethodEntry,
    invoke: impl FnOnce(&Invocation<'_>) -> Result<(), ModuleError>,
) -> Result<(), Failed> {
    // SAFETY: `is_sound` verified the pointers are non-null where lengths are
    // non-zero, the lengths fit an `isize` and the regions do not overlap; the caller
    // guarantees they are valid, unchanging (args) and exclusive (arena) for the call,
    // which outlives every borrow made here.
    let (args, arena) = unsafe {
        (
            slice_or_empty(frame.args(), frame.args_len()),
            Arena::new(frame.arena(), frame.arena_len()),
        )
    };
    // SAFETY: `host` and `host_call` are valid for the call (the caller's contract).
    let caller = unsafe { ModuleCaller::new(frame.host(), frame.host_call()) };
    let timeout_ns = frame.timeout_ns();
    let budget = (timeout_ns != abi::NO_DEADLINE).then(|| Duration::from_nanos(timeout_ns));
    let deadline = match budget {
        Some(b) => Instant::now().checked_add(b),
        None => None,
    };
    // SAFETY: `is_sound` checked the frame; its persistent region is the host's for this
    // load, valid for the call (the caller's contract), aligned and apart from the
    // arguments and the arena.
    let ctx = unsafe { CallContext::for_call(&arena, frame, deadline, &caller) };
    // SAFETY: `host_call` is the handle of this running call, and the frame's outputs
    // are the call's to write.
    let invocation = unsafe { Invocation::new(ctx, args, frame, budget) };
    // A call whose deadline has passed is not started, and one that finishes after it
    // reports the timeout rather than a result nobody waits for any more. Checked on
    // the locals, not through the context: a call that takes the context's address
    // keeps the whole invocation in memory, where the export's wrapper, compiled into
    // this function, would otherwise keep its parts in registers.
    let expired = || deadline.is_some_and(|d| Instant::now() >= d);
    let timed_out = || ModuleError::Timeout(budget.unwrap_or_default());
    if budget.is_some() && expired() {
        return Err(timed_out().into());
    }
    let outcome = invoke(&invocation);
    frame.set_arena_used(arena.used());
    if let Err(error) = outcome {
        return Err(Failed {
            error,
            own_args: invocation.args_refused(),
        });
    }
    if budget.is_some() && expired() {
        return Err(timed_out().into());
    }
    if !invocation.produced() {
        return Err(no_result(entry).into());
    }
    Ok(())
}

/// An error refusing the call's arguments `args`, told with the argument it is about
/// (`argument `b`: `, when the export can tell) and the export's signature after it: the
/// shape the caller's bytes missed (`bad arguments: argument `a`: … (the export is
/// `add(a: u32, b: u32) -> u32`)`). `None` for any other error, reported as it is.
#[cold]
fn in_context(
    error: &ModuleError,
    entry: &dispatch::MethodEntry,
    args: &[u8],
) -> Option<ModuleError> {
    const BAD_ARGUMENTS: &str = "bad arguments: ";
    let ModuleError::Serialize(m) = error else {
        return None;
    };
    let archived = m.starts_with("bad archived arguments");
    if !m.starts_with("bad arguments") && !archived {
        return None;
    }
    let mut told = m.clone();
    if let (Some(which), Some(why)) = (entry.which_argument, m.strip_prefix(BAD_ARGUMENTS)) {
        told = format!("{BAD_ARGUMENTS}{}{why}", which(args));
    }
    // Raw arguments are no MessagePack: nothing about their shape is told.
    if entry.args_format == abi::Format::MessagePack {
        told.push_str(shape_hint(args, m));
    }
    // A caller that sent MessagePack (or anything else) to an export whose arguments are
    // an archive reads the validator's words alone (`subtree pointer overran range`) as
    // a fault of the module: what the export takes is said.
    const TAKES: &str = "takes the rkyv archive of its arguments' tuple";
    let signature = entry.signature;
    match (signature.is_empty(), archived) {
        (false, true) => told.push_str(&format!(" (the export is `{signature}`, which {TAKES})")),
        (false, false) => told.push_str(&format!(" (the export is `{signature}`)")),
        (true, true) => told.push_str(&format!(" (the export {TAKES})")),
        (true, false) => {}
    }
    Some(ModuleError::Serialize(told))
}

/// What MessagePack arguments `args`, refused with `message`, missed in their shape, if
/// that is what is wrong: one value alone where the arguments are a list (a host that
/// passed `5` for `(5,)`), or a map read as the arguments by name where one struct
/// argument was meant.
fn shape_hint(args: &[u8], message: &str) -> &'static str {
    let map = matches!(args.first(), Some(0x80..=0x8f | 0xde | 0xdf));
    if !memlink_abi::msgpack::is_argument_list(args) {
        "; the arguments are one MessagePack array of the parameters (`[x]` for one), or a \
         map keyed by their names"
    } else if map && message.contains("unknown field") {
        "; a map is read as the arguments keyed by their names: one struct argument goes \
         inside an array, `[{...}]`"
    } else {
        ""
    }
}

/// The error of an export that returned without a result.
#[cold]
fn no_result(entry: &dispatch::MethodEntry) -> ModuleError {
    ModuleError::Abi(format!("export `{}` produced no result", entry.name))
}

/// # Safety
///
/// `ptr` must be valid for reads of `len` bytes, unchanged, for `'a`; it may be null
/// only when `len` is 0.
#[inline]
unsafe fn slice_or_empty<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { core::slice::from_raw_parts(ptr, len) }
}

/// Hands the error's payload to the host: into the arena when the frame's arena was
/// proven usable and the payload fits (the failed call no longer needs it), else through
/// `alloc_output` of `host` for the call `host_call`. Returns where the payload is.
fn report(
    host_call: *mut c_void,
    host: Option<&HostApi>,
    arena: Option<(*mut u8, usize)>,
    error: &ModuleError,
) -> Option<(*const u8, usize)> {
    let payload = error.payload();
    if payload.is_empty() {
        return None;
    }
    if let Some((ptr, _)) = arena.filter(|&(_, len)| payload.len() <= len) {
        // SAFETY: `is_sound` proved the arena non-null (it holds at least the
        // payload's bytes), 16-aligned and apart from the other regions; it is this
        // call's alone by the caller's contract; nothing of the failed call is used any
        // more, and the payload is the module's own memory.
        unsafe { core::ptr::copy_nonoverlapping(payload.as_ptr(), ptr, payload.len()) };
        return Some((ptr, payload.len()));
    }
    let ptr = write_through_host(host?, host_call, &payload).ok()?;
    Some((ptr, payload.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Format;

    /// An export of the tests' own, found without the module's table.
    const fn export(
        name: &'static str,
        invoke: fn(&Invocation<'_>) -> Result<(), ModuleError>,
    ) -> dispatch::MethodEntry {
        dispatch::MethodEntry {
            name,
            args_format: Format::MessagePack,
            result_format: Format::MessagePack,
            arg_count: 0,
            is_async: false,
            pure: false,
            crate_name: "tests",
            named: false,
            crate_version: "0.0.0",
            location: "exports.rs",
            unwinds: true,
            args_type: None,
            result_type: None,
            signature: "",
            which_argument: None,
            invoke,
            call: None,
        }
    }

    /// Reads the call's description through the context and the running call the host
    /// keeps (what logs see) before and after setting results, then keeps the second.
    static READS_AND_WRITES: dispatch::MethodEntry = export("reads_and_writes", |call| {
        let seen = |call: &Invocation<'_>| {
            let running = crate::current::with_current_call(|c| c.map(|c| c.trace()));
            let ctx = call.context();
            (running, ctx.trace_id(), ctx.span_id(), ctx.call_depth())
        };
        assert_eq!(seen(call), (Some((7, 9)), 7, 9, 2));
        call.encode_scalar_result(5u32)?;
        assert_eq!(seen(call), (Some((7, 9)), 7, 9, 2));
        call.encode_scalar_result(300u32)
    });
    static SETS_THEN_FAILS: dispatch::MethodEntry = export("sets_then_fails", |call| {
        call.encode_scalar_result(5u32)?;
        Err(ModuleError::CallFailed("after all".into()))
    });
    static SETS_THEN_PANICS: dispatch::MethodEntry = export("sets_then_panics", |call| {
        call.encode_scalar_result(5u32)?;
        panic!("boom")
    });
    static RETURNS_NOTHING: dispatch::MethodEntry = export("returns_nothing", |_| Ok(()));
    static RAW_ONE: dispatch::MethodEntry = export("raw_one", |call| call.encode_raw_result(b"x"));
    static RAW_SIXTEEN: dispatch::MethodEntry = export("raw_sixteen", |call| {
        call.encode_raw_result(b"0123456789abcdef")
    });
    static RAW_SEVENTEEN: dispatch::MethodEntry = export("raw_seventeen", |call| {
        call.encode_raw_result(b"0123456789abcdefg")
    });
    static RAW_EMPTY: dispatch::MethodEntry =
        export("raw_empty", |call| call.encode_raw_result(b""));
    /// A result the export built in its arena: it stays there, however small.
    static RAW_IN_ARENA: dispatch::MethodEntry = export("raw_in_arena", |call| {
        let kept = call.context().arena().alloc_slice_copy(b"kept").unwrap();
        call.encode_raw_result(kept)
    });
    static RAW_THEN_FAILS: dispatch::MethodEntry = export("raw_then_fails", |call| {
        call.encode_raw_result(b"small")?;
        Err(ModuleError::CallFailed("after all".into()))
    });

    /// A scalar that says it wrote more than it may.
    #[derive(Clone, Copy)]
    struct Overlong;
    impl crate::serialize::primitive::Scalar for Overlong {
        fn write(self, out: &mut [u8; 9]) -> usize {
            out[0] = 0xc0;
            100
        }
        fn read(_: &mut &[u8]) -> Option<Overlong> {
            None
        }
    }
    static OVERLONG: dispatch::MethodEntry =
        export("overlong", |call| call.encode_scalar_result(Overlong));

    #[repr(C, align(16))]
    struct Arena([u8; 64]);

    /// The tests' exports as their own entry points know them: each of id 1, the id
    /// the tests' table gives its one method.
    macro_rules! own_entries {
        ($($own:ident = $entry:ident),* $(,)?) => {$(
            struct $own;
            impl OwnEntry for $own {
                const ID: u32 = 1;
                fn entry() -> &'static dispatch::MethodEntry {
                    &$entry
                }
                fn invoke(call: &Invocation<'_>) -> Result<(), ModuleError> {
                    ($entry.invoke)(call)
                }
            }
        )*};
    }
    own_entries!(
        ReadsAndWrites = READS_AND_WRITES,
        SetsThenFails = SETS_THEN_FAILS,
        SetsThenPanics = SETS_THEN_PANICS,
        ReturnsNothing = RETURNS_NOTHING,
        OverlongResult = OVERLONG,
        RawOne = RAW_ONE,
        RawSixteen = RAW_SIXTEEN,
        RawSeventeen = RAW_SEVENTEEN,
        RawEmpty = RAW_EMPTY,
        RawInArena = RAW_IN_ARENA,
        RawThenFails = RAW_THEN_FAILS,
    );

    /// Runs export `E` through the real boundary on a frame of the tests' own, both as
    /// `memlink_call` finds it and through its own entry point, which must agree;
    /// returns the status, the output's bytes and the arena used.
    fn call<E: OwnEntry>() -> (i32, Vec<u8>, usize) {
        call_as::<E>(1)
    }

    /// [`call`] with the frame naming the method by wire id `id` (the tests' table has
    /// one method, of id 1).
    fn call_as<E: OwnEntry>(id: u32) -> (i32, Vec<u8>, usize) {
        // A panic's message says where it was once the module's hook is in (as after
        // any init): put in first, so that another test's init between the two calls
        // below does not make them differ.
        crate::panic::install_hook();
        let entry = E::entry();
        // SAFETY: `on_frame`'s frame, as `memlink_call` requires it.
        let looked_up = on_frame(id, |frame| unsafe {
            run(
                frame,
                |index, id| ((index, id) == (0, 1)).then_some(entry),
                |e, call| (e.invoke)(call),
            )
        });
        // SAFETY: as above.
        let own = on_frame(id, |frame| unsafe { export_call::<E>(frame) });
        assert_eq!(
            looked_up, own,
            "the export's own entry point answers as memlink_call does"
        );
        own
    }

    /// Runs `boundary` on a frame of the tests' own naming the method by wire id `id`;
    /// returns the status, the output's bytes and the arena used.
    fn on_frame(id: u32, boundary: impl FnOnce(*mut CallFrame) -> i32) -> (i32, Vec<u8>, usize) {
        let mut arena = Arena([0; 64]);
        let mut frame = crate::test_host::call_frame(&[], &mut arena.0);
        frame.method_id = id;
        let frame_ptr = &raw mut frame;
        // The frame is a local the boundary has for the call: its arguments are empty,
        // its arena a local buffer used by nothing else, its host table valid (its
        // services are never called: every output here fits the arena, and its running
        // call is this frame while the call runs).
        // SAFETY: the tests' host table is a static, as large as this module's.
        unsafe { crate::current::connect(&raw const crate::test_host::HOST) };
        // SAFETY: the frame is alive until after the call, and names the tests' host,
        // whose services take any handle.
        let status = unsafe { crate::test_host::running(frame_ptr, || boundary(frame_ptr)) };
        let out = if frame.out.is_null() {
            Vec::new()
        } else {
            // SAFETY: the boundary points `out` into the arena or at the frame's
            // `small_out`, both still alive.
            unsafe { core::slice::from_raw_parts(frame.out, frame.out_len) }.to_vec()
        };
        (status, out, frame.arena_used)
    }

    /// A table of an older host, shorter than this module's, is refused on its size, read
    /// through its pointer alone: the init frame's, the host table's at init and at a
    /// call. Miri runs this on tables allocated at their short size: before, a reference
    /// to a whole frame or table was made of each first, past the end of its allocation.
    #[test]
    fn short_frames_and_host_tables_are_refused_without_being_read_past() {
        // An init frame holding its size alone.
        let mut short_init = Box::new([8u32, 0]);
        // SAFETY: valid for reads and writes of the 8 bytes its size gives.
        let status = unsafe { memlink_init(short_init.as_mut_ptr().cast()) };
        assert_eq!(status, Status::Abi as i32);
        // A host table holding its size (and the version before it) alone.
        // Aligned as a table is (a `[u32; 2]` need not be, and one out of alignment is
        // refused for that first): its `size` 8 and `reserved` 0, little-endian.
        let short_host = Box::new(8u64.to_le());
        let host = (&raw const *short_host).cast::<HostApi>();
        assert_eq!(
            offset_of!(HostApi, size),
            0,
            "the table's size is its first field"
        );
        let mut init = InitFrame {
            size: size_of::<InitFrame>() as u32,
            abi_version: abi::ABI_VERSION,
            host,
            max_log_level: 0,
            error: StrRef::new(""),
        };
        // SAFETY: a whole frame, whose table is valid for reads of its size.
        let status = unsafe { memlink_init(&mut init) };
        assert_eq!(status, Status::Abi as i32);
        // SAFETY: set by the module to a static message.
        let why = unsafe { init.error.as_str() }.unwrap_or_default();
        assert!(why.contains("service table is 8 bytes"), "{why}");
        let mut arena = Arena([0; 64]);
        let mut frame = crate::test_host::call_frame(&[], &mut arena.0);
        frame.host = host;
        // SAFETY: a whole frame, whose table is valid for reads of its size.
        let status = unsafe { export_call::<ReadsAndWrites>(&mut frame) };
        assert_eq!(status, Status::Abi as i32);
        assert!(
            frame.out.is_null(),
            "nothing is reported through a short table"
        );
    }

    /// A frame that lies in its own arena (or arguments), or a host table in the arena,
    /// is refused: the module's writes to its arena (or the frame's outputs, written
    /// while the arguments are borrowed) would change the frame, or the functions it
    /// calls, under it. Before, the call ran.
    #[test]
    fn a_frame_or_host_table_inside_a_region_is_refused() {
        #[repr(C, align(64))]
        struct Big([u8; 1024]);
        let mut memory = Box::new(Big([0; 1024]));
        let base = memory.0.as_mut_ptr();
        let frame_at = base.wrapping_add(512).cast::<CallFrame>();
        let mut arena = Arena([0; 64]);
        let own_host = &raw const crate::test_host::HOST;
        /// Places a frame's regions (or table) in the memory at the pointer.
        type Place = fn(&mut CallFrame, *mut u8);
        let cases: [(&str, Place); 7] = [
            ("the call frame lies in its own arena", |f, base| {
                f.arena = base;
                f.arena_len = 1024;
            }),
            ("the call frame lies in its own arguments", |f, base| {
                f.args = base;
                f.args_len = 1024;
                f.arena = core::ptr::null_mut();
                f.arena_len = 0;
            }),
            (
                "the host's service table lies in the call frame's arena",
                |f, base| {
                    f.arena = base;
                    f.arena_len = 256;
                    f.host = base.wrapping_add(64).cast_const().cast();
                },
            ),
            (
                "the call frame lies in its own persistent region",
                |f, base| {
                    f.persistent = base;
                    f.persistent_len = 1024;
                },
            ),
            (
                "the host's service table lies in the call frame's persistent region",
                |f, base| {
                    f.persistent = base;
                    f.persistent_len = 256;
                    f.host = base.wrapping_add(64).cast_const().cast();
                },
            ),
            (
                "the host's service table lies in the call frame (whose outputs the module writes)",
                |f, base| {
                    // Over the frame's last 8 bytes (the end of `small_out`) and past it.
                    let at = 512 + size_of::<CallFrame>() - 8;
                    f.host = base.wrapping_add(at).cast_const().cast();
                },
            ),
            (
                "the host's service table lies in the call frame (whose outputs the module writes)",
                |f, base| {
                    // Its size over the frame's `persistent_len` (a region of its own,
                    // sound, at `base`), its first function over the frame's `out`:
                    // writing the outputs would replace that function.
                    f.persistent = base;
                    let at = 512 + offset_of!(CallFrame, out) - offset_of!(HostApi, alloc_output);
                    f.host = base.wrapping_add(at).cast_const().cast();
                },
            ),
        ];
        assert_eq!(
            offset_of!(CallFrame, out) - offset_of!(HostApi, alloc_output),
            offset_of!(CallFrame, persistent_len),
            "the table's size lies over the persistent region's length"
        );
        assert!(
            512 + offset_of!(CallFrame, persistent_len) + size_of::<HostApi>() <= 1024,
            "the table fits over the frame's end"
        );
        assert!(
            64 + size_of::<HostApi>() <= 512,
            "the table fits before the frame"
        );
        assert!(
            512 + size_of::<CallFrame>() - 8 + size_of::<HostApi>() <= 1024,
            "the table fits over the frame's end"
        );
        for (expected, place) in cases {
            // SAFETY: within `memory`, aligned for a frame (512 is a multiple of 16), and
            // no reference into `memory` is alive.
            unsafe { frame_at.write(crate::test_host::call_frame(&[], &mut arena.0)) };
            // SAFETY: as above; the frame is ours alone until the checks below.
            let frame = unsafe { &mut *frame_at };
            place(frame, base);
            let table = frame.host;
            if table != own_host {
                // SAFETY: the table goes 64 bytes into `memory`, before the frame, or over
                // the frame's last 8 bytes (the assertions above), aligned (both offsets
                // are multiples of 8): a bitwise copy of the tests' own, so it is whole;
                // the frame's reference is not used again.
                unsafe { table.cast_mut().write(core::ptr::read(own_host)) };
            }
            // SAFETY: the frame refers to memory alive for the call.
            let reason = unsafe { frame::problem(&*frame_at) };
            assert!(
                matches!(&reason, Some(ModuleError::Abi(why)) if why == expected),
                "{reason:?}"
            );
            // SAFETY: as above.
            assert!(!unsafe { frame::is_sound(&*frame_at) }, "{expected}");
            // Through the boundary: refused, with the message through the table when it
            // may be used (not one in the frame, whose outputs the refusal writes). Before,
            // a table from the frame's outputs on had its first function cleared, then
            // called (`SIGSEGV`).
            // SAFETY: the frame, its regions and its table are memory alive for the call.
            let status = unsafe { export_call::<ReadsAndWrites>(frame_at) };
            assert_eq!(status, Status::Abi as i32, "{expected}");
        }
    }

    /// A C host that passes no function to visit the metrics with is refused, not
    /// called back at address 0 (which crashed the process once a metric was recorded).
    #[test]
    fn metrics_without_a_visit_function_are_refused() {
        crate::metrics::increment_counter("refused_visit", 1);
        // SAFETY: a null `visit` is what is tested; `ctx` is never used.
        let status = unsafe { memlink_metrics(None, core::ptr::null_mut()) };
        assert_eq!(status, Status::Abi as i32);
    }

    #[test]
    fn a_result_is_read_where_the_export_set_it_through_the_frame() {
        assert_eq!(call::<ReadsAndWrites>(), (0, vec![0xcd, 0x01, 0x2c], 0));
    }

    /// A raw result of 1 to 16 bytes from outside the arena goes into the frame (no
    /// arena used); a longer one is copied into the arena; one the export built in the
    /// arena stays there; an empty one is empty; a failure withdraws it.
    #[test]
    fn a_short_raw_result_goes_into_the_frame_and_any_other_where_it_was() {
        assert_eq!(call::<RawOne>(), (0, b"x".to_vec(), 0));
        assert_eq!(call::<RawSixteen>(), (0, b"0123456789abcdef".to_vec(), 0));
        let (status, out, used) = call::<RawSeventeen>();
        assert_eq!((status, &out[..]), (0, &b"0123456789abcdefg"[..]));
        assert!(
            used >= 17,
            "17 bytes are copied into the arena ({used} used)"
        );
        let (status, out, used) = call::<RawInArena>();
        assert_eq!((status, &out[..]), (0, &b"kept"[..]));
        assert!(
            used >= 4,
            "the export's own block of the arena ({used} used)"
        );
        assert_eq!(call::<RawEmpty>(), (0, vec![], 0));
        let (status, payload, _) = call::<RawThenFails>();
        assert_eq!(status, ModuleError::CallFailed(String::new()).code());
        assert_eq!(payload, b"after all", "the error's payload, not the result");
    }

    #[test]
    fn a_failure_withdraws_a_result_set_before_it() {
        let (status, payload, used) = call::<SetsThenFails>();
        assert_eq!(status, ModuleError::CallFailed(String::new()).code());
        assert_eq!(payload, b"after all", "the error's payload, not the result");
        assert_eq!(
            used, 0,
            "the withdrawn scalar was in the frame, not the arena"
        );
        let (status, payload, used) = call::<SetsThenPanics>();
        assert_eq!(status, Status::Panic as i32);
        assert!(String::from_utf8_lossy(&payload).contains("boom"));
        assert_eq!(used, 0, "a panic reports no arena use");
    }

    #[test]
    fn a_missing_or_overlong_result_is_an_error_and_an_unknown_method_is_refused() {
        let (status, payload, _) = call::<ReturnsNothing>();
        assert_eq!(status, Status::Abi as i32);
        assert!(String::from_utf8_lossy(&payload).contains("produced no result"));
        let (status, payload, _) = call::<OverlongResult>();
        assert_eq!(status, ModuleError::Serialize(String::new()).code());
        assert!(String::from_utf8_lossy(&payload).contains("more than 9"));
        let (status, payload, used) = call_as::<ReadsAndWrites>(2);
        assert_eq!(
            (status, payload, used),
            (Status::InvalidMethod as i32, vec![], 0)
        );
    }
}
