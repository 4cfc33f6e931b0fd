//! Target `host_side`: the runtime's own host side, driven by a module that hands back
//! whatever the input says.
//!
//! The module is this binary's method table (the exports in [`crate::exports`]), loaded
//! into a real `memlink_runtime::Runtime` with the runtime's `load_linked`, so every
//! call goes through the runtime's real call path: admission, the frame, the arena from
//! its pool, its `HostApi` services, and `collect`, which decides what of the module's
//! output the caller may read. The module's `memlink_call` is `hostile_call`: at depth
//! 0 it does what a [`Hostile`] spec says (any status code, output claimed anywhere:
//! inside the arena, past its end, inside or past a buffer from `alloc_output`, in its
//! own memory; requests to `alloc_output` of any length; nested calls with any size, any
//! names, any bytes, itself included; log records with any level and size) and returns;
//! deeper calls (nested ones) run the real exports.
//!
//! Pointers it hands the host are always valid for what they claim to point to,
//! lengths aside: memory safety is the module's side of the contract, which no host can
//! check. What the harness checks is what the runtime promises for the rest: the call
//! ends in `Ok` with exactly the bytes the module wrote where it is allowed to write
//! them, or in a named error (an unknown status or output out of place is `Abi`); the
//! runtime never reads output out of place, never crashes, and serves the next call.

use core::ffi::c_void;
use std::cell::RefCell;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use memlink_msdk::abi::{
    self, CallFrame, HostApi, LogField, LogRecord, NestedCall, Status, StrRef,
};
use memlink_msdk::exports::{memlink_call, memlink_init, memlink_module_info, memlink_shutdown};
use memlink_msdk::ModuleError;
use memlink_runtime::linked::LinkedModule;
use memlink_runtime::{CallOptions, MethodRef, ModuleHandle, Runtime, RuntimeConfig, RuntimeError};

/// The name the module is loaded under (nested calls to it re-enter it).
pub const NAME: &str = "hostile";

/// What the module does in one call.
#[derive(Arbitrary, Debug, Clone)]
pub struct Hostile {
    /// The status it returns.
    pub status: StatusSpec,
    /// What it asks `alloc_output` for, before it places its output.
    pub alloc: Option<AllocLen>,
    /// Where it says its output is.
    pub out: OutSpec,
    /// A nested call it makes first.
    pub nested: Option<NestedSpec>,
    /// A log record it sends first.
    pub log: Option<LogSpec>,
    /// What it reports as `arena_used`.
    pub arena_used: u64,
    /// The method the host calls (modulo the table).
    pub method: u8,
    /// The byte the module fills its output with.
    pub fill: u8,
}

/// A status code.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum StatusSpec {
    /// `Ok`.
    Ok,
    /// One the ABI defines (modulo 12).
    Known(u8),
    /// Any `i32`.
    Raw(i32),
}

/// A length for `alloc_output`.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum AllocLen {
    /// Up to 64 KiB.
    Small(u16),
    /// Up to 16 MiB.
    Large(u32),
    /// `isize::MAX + 1`: more than any allocation may be.
    PastIsize,
    /// `usize::MAX`.
    Max,
}

/// Where the module claims its output is.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum OutSpec {
    /// Nowhere: no output.
    None,
    /// At this offset into the arena, this long (both modulo the arena: inside it).
    Arena(u32, u32),
    /// Starting inside the arena and running past its end by 1 + the value.
    PastArena(u32, u16),
    /// The whole buffer from `alloc_output`.
    Alloc,
    /// The buffer from `alloc_output`, starting this far in (1 + the value, clamped): its
    /// rest is the output.
    AllocOffset(u16),
    /// The buffer from `alloc_output`, longer than it by 1 + the value.
    AllocTooLong(u16),
    /// The module's own memory (a static of 64 bytes), this long (modulo 65).
    Own(u8),
    /// Null, with this length.
    Null(u16),
    /// The frame's `small_out`, this long (modulo 33: up to twice the field's 16 bytes).
    /// Only a result (status `Ok`) of at most 16 bytes may be there.
    Frame(u8),
}

/// A nested call.
#[derive(Arbitrary, Debug, Clone)]
pub struct NestedSpec {
    /// The request's `size` field: smaller than the ABI's is refused.
    pub size: RequestSize,
    /// The module's name: this module, an unknown one, or any bytes.
    pub module: NameSpec,
    /// The method's name, as bytes (maybe not UTF-8).
    pub method: Vec<u8>,
    /// The arguments.
    pub args: Vec<u8>,
    /// The request's flags: `NESTED_TYPED` (typed MessagePack to convert),
    /// `NESTED_NOT_RAW`, and bits the ABI does not define, which a host ignores.
    pub flags: u8,
}

/// `NestedCall::size`.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum RequestSize {
    /// The ABI's.
    Exact,
    /// Smaller by 1 + the value (saturating).
    Smaller(u8),
}

/// A module name in a nested call.
#[derive(Arbitrary, Debug, Clone)]
pub enum NameSpec {
    /// This module: the call re-enters it.
    Itself,
    /// Any bytes.
    Bytes(Vec<u8>),
}

/// A log record.
#[derive(Arbitrary, Debug, Clone)]
pub struct LogSpec {
    /// Its level (any value).
    pub level: u32,
    /// Its `size` field (any value).
    pub size: u32,
    /// The message, as bytes (maybe not UTF-8).
    pub message: Vec<u8>,
    /// Key/value pairs.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

thread_local! {
    /// The spec the next top-level call follows, and what the module did.
    static PLAN: RefCell<Option<(Hostile, Vec<u8>)>> = const { RefCell::new(None) };
    /// Where the module placed its output, for the check.
    static PLACED: RefCell<Option<Expect>> = const { RefCell::new(None) };
}

/// The module's own memory, which output must never point into.
static OWN: [u8; 64] = [0x5a; 64];

/// The runtime with this binary's module loaded under [`NAME`], and a resolved `echo`.
fn runtime() -> &'static (Runtime, ModuleHandle, MethodRef) {
    static RT: OnceLock<(Runtime, ModuleHandle, MethodRef)> = OnceLock::new();
    RT.get_or_init(|| {
        let config = RuntimeConfig::default().arena_size(4096);
        let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
        let module = LinkedModule {
            info: memlink_module_info_fn,
            init: memlink_init_fn,
            call: hostile_call,
            shutdown: memlink_shutdown_fn,
        };
        // SAFETY: the functions are this binary's memlink-msdk entry points (and
        // `hostile_call`, which keeps the call contract's memory rules), valid for the
        // life of the process.
        let h = unsafe { rt.load_linked(NAME, module) }.expect("load the linked module");
        let echo = rt.method(h, "echo").expect("echo is exported");
        (rt, h, echo)
    })
}

unsafe extern "C" fn memlink_module_info_fn() -> *const abi::ModuleInfo {
    memlink_module_info()
}

unsafe extern "C" fn memlink_init_fn(frame: *mut abi::InitFrame) -> i32 {
    // SAFETY: forwarded.
    unsafe { memlink_init(frame) }
}

unsafe extern "C" fn memlink_shutdown_fn() -> i32 {
    // SAFETY: forwarded: the fuzzed host calls it as a host does, once per init.
    unsafe { memlink_shutdown() }
}

/// Runs one input: a [`Hostile`] spec, then the call's argument bytes.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(spec) = Hostile::arbitrary(&mut u) else {
        return;
    };
    let args = u.take_rest().to_vec();
    call(spec, &args);
}

/// Calls the module through the runtime with `spec` in force, checks the outcome, then
/// checks the runtime still serves a well-formed call.
pub fn call(spec: Hostile, args: &[u8]) {
    let (rt, h, echo) = runtime();
    let methods = rt.methods(*h).expect("the module is loaded");
    let method = &methods[usize::from(spec.method) % methods.len()];
    PLAN.with(|p| *p.borrow_mut() = Some((spec.clone(), args.to_vec())));
    PLACED.with(|w| *w.borrow_mut() = None);
    let result = rt.call_with(*h, &method.name, args, &CallOptions::default());
    PLAN.with(|p| *p.borrow_mut() = None);
    let placed = PLACED
        .with(|w| w.borrow_mut().take())
        .expect("the module ran");
    check(&spec, placed, result);
    // The runtime keeps serving: the module is well-behaved again for this call.
    let out = rt
        .call_method(*echo, b"still serving", &CallOptions::default())
        .expect("a good call after a hostile one");
    assert_eq!(&*out, b"still serving");
}

/// What the host must make of the module's claim, as the module placed its output.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// These bytes, which the module wrote where it may: the result or the error's
    /// payload.
    Bytes(Vec<u8>),
    /// An `Abi` error: the output was claimed out of place (and must not be read).
    Abi,
}

fn status_code(spec: StatusSpec) -> i32 {
    match spec {
        StatusSpec::Ok => 0,
        StatusSpec::Known(n) => i32::from(n % 12),
        StatusSpec::Raw(code) => code,
    }
}

fn check(
    spec: &Hostile,
    placed: Expect,
    result: Result<memlink_runtime::CallOutput, RuntimeError>,
) {
    let code = status_code(spec.status);
    let module_error = match &result {
        Err(RuntimeError::Call { error, .. }) => Some(error.clone()),
        _ => None,
    };
    let known = Status::from_code(code).is_some();
    // A status whose payload is empty: the output fields are not read, wherever the
    // module put them (docs/abi.md), and the error is that status.
    let bare = Status::from_code(code).is_some_and(|s| !s.has_payload());
    if bare {
        let error = module_error
            .unwrap_or_else(|| panic!("{spec:?}: expected a module error, got {result:?}"));
        assert_eq!(error, ModuleError::from_status(code, &[]), "{spec:?}");
        return;
    }
    match placed {
        Expect::Bytes(bytes) if known => {
            if code == 0 {
                let out = result.unwrap_or_else(|e| panic!("{spec:?}: expected Ok, got {e}"));
                assert_eq!(
                    &*out,
                    &bytes[..],
                    "{spec:?}: the result is what the module wrote"
                );
            } else {
                let error = module_error
                    .unwrap_or_else(|| panic!("{spec:?}: expected a module error, got {result:?}"));
                assert_eq!(error, ModuleError::from_status(code, &bytes), "{spec:?}");
            }
        }
        // An unknown status, or output out of place.
        _ => assert!(
            matches!(module_error, Some(ModuleError::Abi(_))),
            "{spec:?}: expected an Abi error, got {result:?}"
        ),
    }
}

/// The module's `memlink_call`: the real one below depth 0, the spec's at depth 0.
///
/// # Safety
///
/// The runtime's frame, valid for the call.
unsafe extern "C" fn hostile_call(frame: *mut CallFrame) -> i32 {
    // SAFETY: the runtime passes a valid frame, ours for the call.
    let frame = unsafe { &mut *frame };
    let plan = if frame.depth == 0 {
        PLAN.with(|p| p.borrow().clone())
    } else {
        None
    };
    let Some((spec, _)) = plan else {
        // SAFETY: forwarded: the runtime's frame.
        return unsafe { memlink_call(frame) };
    };
    // SAFETY: the frame's `host` is the runtime's table, valid for the call.
    let host = unsafe { &*frame.host };
    if let Some(log) = &spec.log {
        send_log(host, frame.host_call, log);
    }
    if let Some(nested) = &spec.nested {
        nested_call(host, frame.host_call, nested);
    }
    let granted = spec.alloc.and_then(|len| {
        let len = match len {
            AllocLen::Small(n) => usize::from(n),
            AllocLen::Large(n) => n as usize % (16 << 20),
            AllocLen::PastIsize => isize::MAX as usize + 1,
            AllocLen::Max => usize::MAX,
        };
        // SAFETY: the running call's handle.
        let ptr = unsafe { (host.alloc_output)(frame.host_call, len) };
        let refused = matches!(spec.alloc, Some(AllocLen::PastIsize | AllocLen::Max));
        assert_eq!(ptr.is_null(), refused, "alloc_output({len})");
        (!ptr.is_null()).then_some((ptr, len))
    });
    place_output(frame, &spec, granted);
    frame.arena_used = spec.arena_used as usize;
    status_code(spec.status)
}

/// Points the frame's output where `spec.out` says, writing the fill byte where the
/// module may write, and records what the host must make of it.
fn place_output(frame: &mut CallFrame, spec: &Hostile, granted: Option<(*mut u8, usize)>) {
    let arena_len = frame.arena_len;
    let none = (core::ptr::null(), 0, true);
    // Where, how long, and whether the module may put output there.
    let (out, len, allowed): (*const u8, usize, bool) = match spec.out {
        OutSpec::None => none,
        OutSpec::Arena(at, len) if arena_len > 0 => {
            let at = at as usize % arena_len;
            let len = len as usize % (arena_len - at + 1);
            (frame.arena.wrapping_add(at).cast_const(), len, true)
        }
        OutSpec::Arena(..) => none,
        OutSpec::PastArena(at, by) => {
            let at = if arena_len == 0 {
                0
            } else {
                at as usize % arena_len
            };
            let len = arena_len - at + 1 + usize::from(by);
            (frame.arena.wrapping_add(at).cast_const(), len, false)
        }
        OutSpec::Alloc => match granted {
            Some((ptr, len)) => (ptr.cast_const(), len, true),
            None => none,
        },
        OutSpec::AllocOffset(by) => match granted {
            Some((ptr, len)) if len > 1 => {
                // Anywhere in the buffer is the output's place, as anywhere in the arena.
                let by = 1 + usize::from(by) % (len - 1);
                (ptr.wrapping_add(by).cast_const(), len - by, true)
            }
            _ => none,
        },
        OutSpec::AllocTooLong(by) => match granted {
            Some((ptr, len)) => (ptr.cast_const(), len + 1 + usize::from(by), false),
            None => none,
        },
        OutSpec::Own(len) => (OWN.as_ptr(), usize::from(len) % 65, false),
        OutSpec::Null(len) => (core::ptr::null(), usize::from(len), false),
        OutSpec::Frame(len) => {
            let len = usize::from(len) % (2 * abi::SMALL_OUT_LEN + 1);
            // An error's payload may not be there: the host reads the field only for a
            // result.
            let result = status_code(spec.status) == Status::Ok as i32;
            let out = frame.small_out.as_mut_ptr().cast_const();
            (out, len, len <= abi::SMALL_OUT_LEN && result)
        }
    };
    let expect = if len == 0 {
        Expect::Bytes(Vec::new())
    } else if allowed {
        // SAFETY: `out..out + len` lies inside the call's arena, the buffer the host just
        // granted or the frame's `small_out`, all this call's to write.
        unsafe { core::ptr::write_bytes(out.cast_mut(), spec.fill, len) };
        Expect::Bytes(vec![spec.fill; len])
    } else {
        Expect::Abi
    };
    PLACED.with(|w| *w.borrow_mut() = Some(expect));
    frame.out = out;
    frame.out_len = len;
}

unsafe extern "C" fn collect_bytes(ctx: *mut c_void, ptr: *const u8, len: usize) {
    // SAFETY: `ctx` is the `Vec` `nested_call` passed; the host vouches for the bytes.
    unsafe {
        let out = &mut *ctx.cast::<Vec<u8>>();
        if len > 0 {
            out.extend_from_slice(std::slice::from_raw_parts(ptr, len));
        }
    }
}

fn nested_call(host: &HostApi, call: *mut c_void, spec: &NestedSpec) {
    let module: &[u8] = match &spec.module {
        NameSpec::Itself => NAME.as_bytes(),
        NameSpec::Bytes(b) => b,
    };
    let mut out: Vec<u8> = Vec::new();
    let size = match spec.size {
        RequestSize::Exact => size_of::<NestedCall>() as u32,
        RequestSize::Smaller(by) => {
            (size_of::<NestedCall>() as u32).saturating_sub(1 + u32::from(by))
        }
    };
    let mut request = NestedCall {
        size,
        flags: u32::from(spec.flags),
        module: StrRef {
            ptr: module.as_ptr(),
            len: module.len(),
        },
        method: StrRef {
            ptr: spec.method.as_ptr(),
            len: spec.method.len(),
        },
        args: spec.args.as_ptr(),
        args_len: spec.args.len(),
        sink: collect_bytes,
        sink_ctx: (&raw mut out).cast(),
        result_format: 0xff,
    };
    // SAFETY: the running call's handle; the request and everything it points to live
    // on this stack until the call returns.
    let code = unsafe { (host.call_module)(call, &mut request) };
    let status = Status::from_code(code).unwrap_or_else(|| panic!("call_module returned {code}"));
    if (size as usize) < size_of::<NestedCall>() {
        assert_eq!(status, Status::Abi, "a short request is refused");
    }
    if status == Status::Ok {
        assert!(
            abi::Format::from_u8(request.result_format).is_some(),
            "the host names the result's format"
        );
    } else {
        // The payload decodes like any error's.
        let _ = ModuleError::from_status(code, &out);
    }
}

fn send_log(host: &HostApi, call: *mut c_void, spec: &LogSpec) {
    let fields: Vec<LogField> = spec
        .fields
        .iter()
        .map(|(k, v)| LogField {
            key: StrRef {
                ptr: k.as_ptr(),
                len: k.len(),
            },
            value: StrRef {
                ptr: v.as_ptr(),
                len: v.len(),
            },
        })
        .collect();
    let record = LogRecord {
        size: spec.size,
        level: spec.level,
        module: StrRef::new(NAME),
        method: StrRef::new("hostile"),
        message: StrRef {
            ptr: spec.message.as_ptr(),
            len: spec.message.len(),
        },
        fields: fields.as_ptr(),
        field_count: fields.len(),
        trace_id: 0,
        span_id: 0,
    };
    // SAFETY: the running call's handle; the record and its fields outlive the call.
    unsafe { (host.log)(call, &record) };
}
