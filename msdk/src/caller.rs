//! Calls from one module to another, through the host.

use core::ffi::c_void;
use std::fmt;
use std::panic::AssertUnwindSafe;

use crate::abi::{Format, HostApi, NestedCall, NestedSink, Status, StrRef};
use crate::error::{ModuleError, Result};

/// Calls other modules loaded in the same host. Get one from
/// [`CallContext::module_caller`](crate::CallContext::module_caller).
///
/// The nested call runs on the calling thread, through the host, which gives the callee
/// the caller's trace id, the time left before the caller's deadline and a call depth one
/// deeper (the host refuses calls past its depth limit with
/// [`ModuleError::MaxCallDepthExceeded`]).
pub struct ModuleCaller {
    host: *const HostApi,
    call: *mut c_void,
}

impl ModuleCaller {
    /// A caller for the host call `call`.
    ///
    /// # Safety
    ///
    /// `host` must point to a [`HostApi`] whose `call_module` is valid, and `call` must be
    /// the host's handle of a call that is running on this thread and outlives the
    /// caller.
    pub(crate) unsafe fn new(host: *const HostApi, call: *mut c_void) -> ModuleCaller {
        ModuleCaller { host, call }
    }

    /// The host's load on the running call's module (`HostApi::backpressure`).
    pub(crate) fn backpressure(&self) -> f32 {
        // SAFETY: `new`'s contract: `host` is a valid `HostApi` (the module checked its
        // size at init, so `backpressure` is within it) and `call` is this thread's
        // running call.
        unsafe { ((*self.host).backpressure)(self.call) }
    }

    /// Calls `method` of the module loaded under the name `module` with encoded `args`
    /// and returns its encoded result.
    ///
    /// Errors: [`ModuleError::ModuleNotFound`] for an unknown module,
    /// [`ModuleError::InvalidMethod`] for an unknown method, the callee's own error,
    /// [`ModuleError::CallFailed`] when the host cannot make the call, or
    /// [`ModuleError::Abi`] when the host breaks the ABI's hand-over (no result, or one
    /// handed over twice).
    ///
    /// The call is made, to its end, when the future is first polled, on the polling
    /// thread: a `tokio::time::timeout` or `select!` around it cannot end it sooner. What
    /// bounds it is the caller's deadline, which the callee inherits.
    pub async fn call(&self, module: &str, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        self.call_blocking(module, method, args)
    }

    /// [`call`](ModuleCaller::call) without a future, for sync exports.
    pub fn call_blocking(&self, module: &str, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        // The output is collected into the `Vec` whatever it is, and the status says what
        // it was: a plain sink, cheaper than [`lend`](ModuleCaller::lend)'s.
        let mut collected = Collected {
            out: Vec::new(),
            handovers: 0,
        };
        let mut request = request(module, method, args, 0, collect_output);
        request.sink_ctx = (&raw mut collected).cast();
        // SAFETY: `new`'s contract makes `host` valid while this call runs; `request`
        // and `collected` live on this stack frame until `call_module` returns, which is
        // the only time the host may use them, and `sink_ctx` is the `Collected`
        // `collect_output` writes.
        let code = unsafe { ((*self.host).call_module)(self.call, &mut request) };
        let Collected { out, handovers } = collected;
        match (code == Status::Ok as i32, request.result_format, handovers) {
            (_, _, 2..) => Err(ModuleError::Abi(
                "the host handed a nested call's output over twice".into(),
            )),
            (true, NO_FORMAT, _) => Err(success_without_format()),
            (true, _, 0) => Err(ModuleError::Abi(
                "the host reported success without handing over a result".into(),
            )),
            (true, _, _) => Ok(out),
            (false, _, _) => Err(ModuleError::from_status(code, &out)),
        }
    }

    /// Calls `method` of `module` with encoded `args` and lends its encoded result to
    /// `read`, where the callee left it, before the callee's arena goes back to the
    /// host: nothing is copied or allocated for it unless `read` does. (A runtime with
    /// interceptors, a result cache or a breaker makes a whole output first, and lends
    /// that.) What `read` returns is the call's result. The errors are
    /// [`call`](ModuleCaller::call)'s; on an error `read` does not run.
    ///
    /// `read` runs while the host hands the result over, inside its `call_module`: the
    /// callee's memory stays taken until it returns, so it should be short (a copy, a
    /// decode), not another nested call.
    ///
    /// A relay that hands the callee's result on from its own arena allocates nothing
    /// (a result too large for the arena is refused with
    /// [`ModuleError::QuotaExceeded`]):
    ///
    /// ```no_run
    /// # use memlink_msdk::prelude::*;
    /// fn relay<'a>(ctx: &CallContext<'a>, method: &str, args: &[u8]) -> Result<&'a [u8]> {
    ///     let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    ///     let arena = ctx.arena();
    ///     let kept = caller.call_in_place("basic", method, args, |out| {
    ///         arena.alloc_slice_copy(out)
    ///     })?;
    ///     kept.map(|out| &*out).ok_or(ModuleError::QuotaExceeded)
    /// }
    /// ```
    ///
    /// A panic in `read` is held until the host has finished the call, then unwinds
    /// from here.
    pub fn call_in_place<R>(
        &self,
        module: &str,
        method: &str,
        args: &[u8],
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        self.lend(module, method, args, 0, |out, _| read(out))
    }

    /// Calls `method` of `module` with typed arguments and result, encoded and decoded as
    /// the callee's formats require (as the host's `call_typed` does; a callee that takes
    /// or returns an archive is refused: its archive's bytes go through
    /// [`call_in_place`](Self::call_in_place)):
    ///
    /// ```no_run
    /// # use memlink_msdk::prelude::*;
    /// # fn f(ctx: &CallContext) -> Result<u32> {
    /// let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    /// let sum: u32 = caller.call_typed("basic", "add", &(2u32, 3u32))?;
    /// # Ok(sum) }
    /// ```
    ///
    /// A result that does not read as `R` is [`ModuleError::Serialize`] naming the callee
    /// and `R`. Arguments a callee that takes raw bytes cannot take (anything but one
    /// string or byte string, alone or in a tuple of one: `(2u32, 3u32)` too, though its
    /// encoding reads as the bytes `[2, 3]`) are [`ModuleError::Serialize`] as well. To
    /// tell, the value's `Serialize` runs once more, with a serializer that only looks at
    /// its shape.
    pub fn call_typed<A, R>(&self, module: &str, method: &str, args: &A) -> Result<R>
    where
        A: serde::Serialize + ?Sized,
        R: serde::de::DeserializeOwned,
    {
        // Arguments that fit are encoded on the stack (not zeroed: the encoder writes
        // every byte it hands back): nothing is allocated for them; longer ones go on the
        // heap, their `Serialize` run once all the same. One value alone (a raw callee's
        // `"hello"`) is no list of arguments, but whether it may be sent alone is the
        // host's to say, which knows the callee's format: it is not checked here.
        let mut stack = [core::mem::MaybeUninit::uninit(); 256];
        let packed = memlink_abi::msgpack::encode_spilling(args, &mut stack)?;
        let packed = &packed[..];
        // Decoded where the callee left it: the result is not copied first.
        let flags = memlink_abi::msgpack::typed_nested_flags(args);
        self.lend(module, method, packed, flags, |out, format| {
            let format = Format::from_u8(format)
                .ok_or_else(|| ModuleError::Abi(format!("unknown result format {format}")))?;
            memlink_abi::msgpack::decode_as(format, out)
                .map_err(|e| unreadable_result::<R>(module, method, e))
        })?
    }

    /// Makes the nested call and runs `read` on the callee's result and its format, in
    /// the sink, while the host lends them.
    fn lend<R, F: FnOnce(&[u8], u8) -> R>(
        &self,
        module: &str,
        method: &str,
        args: &[u8],
        flags: u32,
        read: F,
    ) -> Result<R> {
        let mut request = request(module, method, args, flags, Lend::<F, R>::sink);
        // One pointer to the request, for the host and the sink alike.
        let request_ptr = &raw mut request;
        let mut lend = Lend {
            request: request_ptr,
            read: Some(read),
            received: Received::Nothing,
            twice: false,
        };
        // SAFETY: `request_ptr` points to `request`, alive on this stack frame.
        unsafe { (*request_ptr).sink_ctx = (&raw mut lend).cast() };
        // SAFETY: `new`'s contract makes `host` valid while this call runs; `request`
        // and `lend` live on this stack frame until `call_module` returns, which is the
        // only time the host may use them, and `sink_ctx` is `lend`, of the type `sink`
        // was made for.
        let code = unsafe { ((*self.host).call_module)(self.call, request_ptr) };
        if lend.twice {
            return Err(ModuleError::Abi(
                "the host handed a nested call's output over twice".into(),
            ));
        }
        match (code == Status::Ok as i32, lend.received) {
            (_, Received::Panicked(panic)) => std::panic::resume_unwind(panic),
            (true, Received::Value(value)) => Ok(value),
            (true, Received::Nothing) => Err(ModuleError::Abi(
                "the host reported success without handing over a result".into(),
            )),
            (true, Received::Error(_)) => Err(success_without_format()),
            // A reader's value with a failure's status: the failure is the call's.
            (false, Received::Error(payload)) => Err(ModuleError::from_status(code, &payload)),
            (false, _) => Err(ModuleError::from_status(code, &[])),
        }
    }
}

/// The error of a typed nested call whose result `e` could not read as `R`: the
/// decoder's words alone (`invalid value: integer `4294967296`, expected u32`) reach the
/// host as the caller's own serialization error, as if its own arguments or result were
/// wrong, so this names the callee and the type it was read as.
#[cold]
fn unreadable_result<R>(module: &str, method: &str, e: ModuleError) -> ModuleError {
    let why = match e {
        ModuleError::Serialize(m) => m,
        other => other.to_string(),
    };
    ModuleError::Serialize(format!(
        "the result of nested call `{module}::{method}` cannot be read as `{}`: {why}",
        core::any::type_name::<R>()
    ))
}

/// A request for `method` of `module` with `args`, to `sink`, its context not yet set, with
/// no result format.
fn request(module: &str, method: &str, args: &[u8], flags: u32, sink: NestedSink) -> NestedCall {
    NestedCall {
        size: size_of::<NestedCall>() as u32,
        flags,
        module: StrRef::new(module),
        method: StrRef::new(method),
        args: args.as_ptr(),
        args_len: args.len(),
        sink,
        sink_ctx: core::ptr::null_mut(),
        result_format: NO_FORMAT,
    }
}

/// What [`ModuleCaller::call_blocking`]'s sink received: the callee's output, or its
/// error's payload, and how many times the host handed one over (the ABI does once).
struct Collected {
    out: Vec<u8>,
    handovers: u32,
}

/// The sink of [`ModuleCaller::call_blocking`]: copies the callee's output, or its error's
/// payload, into the [`Collected`] at `ctx`, the first time; a second hand-over is only
/// counted (the call then fails).
///
/// # Safety
///
/// `ctx` is null or a `&mut Collected`, alive and not otherwise borrowed while this
/// runs; `len` bytes at `ptr` are readable during this function.
unsafe extern "C" fn collect_output(ctx: *mut c_void, ptr: *const u8, len: usize) {
    if ctx.is_null() || (ptr.is_null() && len > 0) {
        return;
    }
    // SAFETY: the function's contract: `ctx` is the `Collected`, only this function uses
    // it while it runs.
    let collected = unsafe { &mut *ctx.cast::<Collected>() };
    collected.handovers = collected.handovers.saturating_add(1);
    if collected.handovers > 1 || len == 0 {
        return;
    }
    // SAFETY: the host lends `len` readable bytes at `ptr` (not null, checked above)
    // until this returns.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
    // Allocated at its size, without the growth path of `extend_from_slice`.
    collected.out = bytes.to_vec();
}

/// The value 0 can be a format; this cannot. A request carries it until the host sets
/// the callee's format, which it does, before the sink runs, only when the call succeeds.
const NO_FORMAT: u8 = u8::MAX;

/// A host that reported success without the callee's result format, which it sets before
/// the sink only on success: the bytes it handed over cannot be told from an error's.
#[cold]
fn success_without_format() -> ModuleError {
    ModuleError::Abi("the host reported success but handed over no result format".into())
}

/// What a nested call's sink works with: the request, to tell a result from an error
/// payload by its format, the reader of a result, and what the sink received.
struct Lend<F, R> {
    request: *const NestedCall,
    read: Option<F>,
    received: Received<R>,
    /// Whether the host called the sink again (the ABI calls it once): what came the
    /// second time is ignored, and the call fails.
    twice: bool,
}

/// What a nested call's sink made of what the host handed it.
enum Received<R> {
    /// The sink has not run.
    Nothing,
    /// What the reader returned.
    Value(R),
    /// The panic the reader raised.
    Panicked(Box<dyn core::any::Any + Send>),
    /// The payload of the call's error.
    Error(Vec<u8>),
}

impl<F: FnOnce(&[u8], u8) -> R, R> Lend<F, R> {
    /// The sink handed to the host: a result goes to `read`, an error's payload is kept.
    ///
    /// # Safety
    ///
    /// `ctx` is null or the `Lend<F, R>` that `lend` made, alive and not otherwise
    /// borrowed while the host runs, whose `request` is the host's request; `len` bytes
    /// at `ptr` are readable during this function.
    unsafe extern "C" fn sink(ctx: *mut c_void, ptr: *const u8, len: usize) {
        if ctx.is_null() || (ptr.is_null() && len > 0) {
            return;
        }
        // SAFETY: the function's contract: `ctx` is the `Lend` of this type, only this
        // function uses it while it runs.
        let lend = unsafe { &mut *ctx.cast::<Self>() };
        if !matches!(lend.received, Received::Nothing) {
            // Nothing is dropped here: a drop that panicked could not unwind out.
            lend.twice = true;
            return;
        }
        let out: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: the host lends `len` readable bytes at `ptr` until this returns.
            unsafe { core::slice::from_raw_parts(ptr, len) }
        };
        // SAFETY: `request` points to the request on `lend`'s caller's stack, which the
        // host no longer writes once it calls the sink.
        let format = unsafe { (*lend.request).result_format };
        if format == NO_FORMAT {
            lend.received = Received::Error(out.to_vec());
            return;
        }
        // The sink runs once (above), so the reader is there.
        if let Some(read) = lend.read.take() {
            // A panic must not unwind into the host: it is carried out of the call and
            // resumed there.
            lend.received = match std::panic::catch_unwind(AssertUnwindSafe(|| read(out, format))) {
                Ok(value) => Received::Value(value),
                Err(panic) => Received::Panicked(panic),
            };
        }
    }
}

impl fmt::Debug for ModuleCaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleCaller").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        /// Set by [`host_call_module`] when it returns (on the test's own thread).
        static RETURNED: Cell<bool> = const { Cell::new(false) };
    }

    /// A host's `call_module` that answers by the module's name, reading and writing the
    /// request through its pointer field by field, as the runtime does. As the ABI
    /// says:
    /// - `ok`: format `Raw`, then the sink with `lent`, then `Ok`;
    /// - `fail`: the sink with the payload `no such thing`, then `Failed`.
    ///
    /// Breaking it:
    /// - `silent`: `Ok` without calling the sink;
    /// - `twice`: as `ok`, with the sink called a second time;
    /// - `null`: format `Raw`, the sink with a null pointer and a length, `Ok`;
    /// - `no-format`: the sink with `lent` and no format, `Ok`;
    /// - `odd-format`: format 200, the sink with `lent`, `Ok`;
    /// - `late-failure`: as `ok`, then `Failed`;
    /// - `format-only`: format `Raw`, `Ok`, without calling the sink.
    unsafe extern "C" fn host_call_module(_call: *mut c_void, request: *mut NestedCall) -> i32 {
        // SAFETY: the module passes a valid request, alive during this call, whose
        // strings are valid; only this function uses it while it runs.
        let module = unsafe { (*request).module.as_str() }.unwrap_or_default();
        // SAFETY: as above.
        let (sink, ctx) = unsafe { ((*request).sink, (*request).sink_ctx) };
        let set_format = |format: u8| {
            // SAFETY: as above.
            unsafe { (*request).result_format = format };
        };
        let lend = |bytes: &[u8]| {
            // SAFETY: the sink and its context come from the request; the bytes are
            // valid while it runs.
            unsafe { sink(ctx, bytes.as_ptr(), bytes.len()) }
        };
        let status = match module {
            "ok" | "twice" | "late-failure" => {
                set_format(Format::Raw as u8);
                lend(b"lent");
                if module == "twice" {
                    lend(b"again");
                }
                if module == "late-failure" {
                    Status::Failed
                } else {
                    Status::Ok
                }
            }
            "fail" => {
                lend(b"no such thing");
                Status::Failed
            }
            "null" => {
                set_format(Format::Raw as u8);
                // SAFETY: the sink refuses a null pointer without reading it.
                unsafe { sink(ctx, core::ptr::null(), 5) };
                Status::Ok
            }
            "no-format" => {
                lend(b"lent");
                Status::Ok
            }
            "odd-format" => {
                set_format(200);
                lend(b"lent");
                Status::Ok
            }
            "format-only" => {
                set_format(Format::Raw as u8);
                Status::Ok
            }
            _ => Status::Ok,
        };
        RETURNED.set(true);
        status as i32
    }

    fn host() -> HostApi {
        HostApi {
            call_module: host_call_module,
            ..crate::test_host::HOST
        }
    }

    #[test]
    fn a_result_is_lent_to_the_reader_and_an_error_is_not() {
        let host = host();
        // SAFETY: `host` is a valid table that outlives the caller; its `call_module`
        // ignores the call handle.
        let caller = unsafe { ModuleCaller::new(&host, core::ptr::null_mut()) };
        let seen = caller.call_in_place("ok", "m", b"", |out| (out.to_vec(), out.len()));
        assert_eq!(seen, Ok((b"lent".to_vec(), 4)));
        assert_eq!(caller.call_blocking("ok", "m", b"").unwrap(), b"lent");
        assert_eq!(
            caller.call_blocking("fail", "m", b""),
            Err(ModuleError::Failed("no such thing".into()))
        );
        assert!(matches!(
            caller.call_blocking("silent", "m", b""),
            Err(ModuleError::Abi(m)) if m.contains("no result format")
        ));
        let mut ran = false;
        let err = caller.call_in_place("fail", "m", b"", |_| ran = true);
        assert_eq!(err, Err(ModuleError::Failed("no such thing".into())));
        assert!(!ran, "the reader does not run on an error");
        let err = caller
            .call_in_place("silent", "m", b"", |_| ())
            .unwrap_err();
        assert!(matches!(err, ModuleError::Abi(m) if m.contains("without handing over")));
    }

    #[test]
    fn a_host_that_breaks_the_hand_over_gets_an_abi_error() {
        let host = host();
        // SAFETY: as in the tests above.
        let caller = unsafe { ModuleCaller::new(&host, core::ptr::null_mut()) };
        let abi = |module: &str| match caller.call_in_place(module, "m", b"", |out| out.len()) {
            Err(ModuleError::Abi(message)) => message,
            other => panic!("{module}: {other:?}"),
        };
        assert!(abi("twice").contains("twice"));
        assert!(abi("null").contains("without handing over"));
        assert!(abi("no-format").contains("no result format"));
        assert!(abi("format-only").contains("without handing over"));
        // The plain sink of `call` and `call_blocking` holds the host to the same.
        // Before, it appended a second hand-over, and took none for an empty result.
        let plain = |module: &str| match caller.call_blocking(module, "m", b"") {
            Err(ModuleError::Abi(message)) => message,
            other => panic!("{module}: {other:?}"),
        };
        assert!(plain("twice").contains("twice"));
        assert!(plain("null").contains("without handing over"));
        assert!(plain("no-format").contains("no result format"));
        assert!(plain("format-only").contains("without handing over"));
        let typed = caller.call_typed::<_, u32>("odd-format", "m", &());
        assert!(
            matches!(typed, Err(ModuleError::Abi(m)) if m.contains("unknown result format 200"))
        );
        // A value read before the host reports a failure: the failure is the call's.
        assert_eq!(
            caller.call_in_place("late-failure", "m", b"", |out| out.len()),
            Err(ModuleError::Failed(String::new()))
        );
    }

    #[test]
    fn a_panic_in_the_reader_unwinds_after_the_host_returns() {
        let host = host();
        // SAFETY: as in the test above.
        let caller = unsafe { ModuleCaller::new(&host, core::ptr::null_mut()) };
        RETURNED.set(false);
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            caller.call_in_place("ok", "m", b"", |out| -> () { panic!("read {}", out.len()) })
        }));
        let payload = caught.expect_err("the reader's panic");
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some("read 4")
        );
        assert!(RETURNED.get(), "the host returned before the panic went on");
        // Resumed even when the host then reports a failure.
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            caller.call_in_place("late-failure", "m", b"", |_| -> () { panic!("late") })
        }));
        let payload = caught.expect_err("the reader's panic");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"late"));
    }
}
