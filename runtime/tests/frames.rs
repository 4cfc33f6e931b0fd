//! Frames a hostile or broken host hands to a real module's entry points: the example
//! `basic` module is loaded with the dynamic loader and its `memlink_call` and
//! `memlink_init` are called with hand-built frames. Each malformed frame must be
//! refused with `Status::Abi` and a message that says what was wrong, without the module
//! reading or writing any memory the frame does not vouch for; the module must keep
//! serving well-formed frames afterwards.

mod common;

use core::ffi::c_void;
use std::mem::offset_of;
use std::sync::OnceLock;

use memlink_abi::{
    self as abi, CallFrame, HostApi, InitFrame, LogRecord, ModuleInfo, NestedCall, Status, StrRef,
};

/// The entry points of the loaded module.
struct Entry {
    init: abi::InitFn,
    call: abi::CallFn,
    info: abi::ModuleInfoFn,
}

fn entry() -> &'static Entry {
    static ENTRY: OnceLock<Entry> = OnceLock::new();
    ENTRY.get_or_init(|| {
        // A private copy: this test initializes the image itself.
        let path = common::module_copy("basic", "basic_frames");
        // SAFETY: loading a module the workspace built; its constructors are memlink's.
        let lib = unsafe { libloading::Library::new(path) }.unwrap();
        // SAFETY: the symbols have the ABI's signatures (the module is built with the same
        // msdk as this test). The library is leaked, so the pointers stay valid.
        let entry = unsafe {
            Entry {
                init: *lib.get::<abi::InitFn>(abi::SYM_INIT).unwrap(),
                call: *lib.get::<abi::CallFn>(abi::SYM_CALL).unwrap(),
                info: *lib.get::<abi::ModuleInfoFn>(abi::SYM_MODULE_INFO).unwrap(),
            }
        };
        std::mem::forget(lib);
        let mut frame = init_frame();
        // SAFETY: a well-formed frame with a static host table.
        let status = unsafe { (entry.init)(&mut frame) };
        assert_eq!(status, Status::Ok as i32, "memlink_init");
        entry
    })
}

unsafe extern "C" fn alloc_output(_call: *mut c_void, len: usize) -> *mut u8 {
    // Leaked: a test host can afford it.
    let buf = vec![0u128; len.div_ceil(16)].leak();
    buf.as_mut_ptr().cast()
}

unsafe extern "C" fn call_module(_call: *mut c_void, _request: *mut NestedCall) -> i32 {
    Status::ModuleNotFound as i32
}

unsafe extern "C" fn log(_call: *mut c_void, _record: *const LogRecord) {}

unsafe extern "C" fn backpressure(_call: *mut c_void) -> f32 {
    0.0
}

static HOST: HostApi = HostApi {
    size: size_of::<HostApi>() as u32,
    reserved: 0,
    alloc_output,
    call_module,
    log,
    backpressure,
    // A host that keeps no running call, as the ABI allows.
    running_call: None,
};

/// A host table that claims to be smaller than the module's.
static SHORT_HOST: HostApi = HostApi { size: 16, ..HOST };

fn init_frame() -> InitFrame {
    InitFrame {
        size: size_of::<InitFrame>() as u32,
        abi_version: abi::ABI_VERSION,
        host: &HOST,
        max_log_level: abi::level::OFF,
        error: StrRef::new(""),
    }
}

/// The index and id of `name` in the module's table.
fn method(name: &str) -> (u32, u32) {
    // SAFETY: the module's description lives in its static memory for good.
    let info: &ModuleInfo = unsafe { &*(entry().info)() };
    // SAFETY: `method_count` rows of the module's static table.
    let rows = unsafe { std::slice::from_raw_parts(info.methods, info.method_count) };
    let i = rows
        .iter()
        // SAFETY: the names are the module's static strings.
        .position(|r| unsafe { r.name.as_str() } == Some(name))
        .unwrap();
    (i as u32, rows[i].id)
}

/// 16-aligned scratch memory for arenas.
fn memory(bytes: usize) -> Vec<u128> {
    vec![0u128; bytes / 16]
}

/// A well-formed frame calling `name` with `args`, its arena in `arena`.
fn frame(name: &str, args: &[u8], arena: &mut [u128]) -> CallFrame {
    let (method_index, method_id) = method(name);
    CallFrame {
        size: size_of::<CallFrame>() as u32,
        method_index,
        method_id,
        depth: 0,
        args: args.as_ptr(),
        args_len: args.len(),
        arena: arena.as_mut_ptr().cast(),
        arena_len: arena.len() * 16,
        trace_id: 0,
        span_id: 0,
        timeout_ns: abi::NO_DEADLINE,
        backpressure: 0.0,
        flags: 0,
        host: &HOST,
        host_call: core::ptr::null_mut(),
        persistent: core::ptr::null_mut(),
        persistent_len: 0,
        out: core::ptr::null(),
        out_len: 0,
        arena_used: 0,
        small_out: [0; abi::SMALL_OUT_LEN],
    }
}

/// Calls the module with `frame`; returns the status and the output.
fn call(frame: &mut CallFrame) -> (i32, Vec<u8>) {
    // SAFETY: every frame built here points at live memory or is one the module must
    // refuse before touching what it points to.
    let status = unsafe { (entry().call)(frame) };
    let out = if frame.out_len == 0 {
        Vec::new()
    } else {
        // SAFETY: the module points `out` at the arena, a host buffer or the frame's
        // `small_out`, all alive.
        unsafe { std::slice::from_raw_parts(frame.out, frame.out_len) }.to_vec()
    };
    (status, out)
}

/// `frame` is refused as an ABI error whose message contains `says`, and a good call
/// works afterwards.
fn refused(mut frame: CallFrame, says: &str) {
    let (status, out) = call(&mut frame);
    let message = String::from_utf8_lossy(&out);
    assert_eq!(status, Status::Abi as i32, "refused: {message}");
    assert!(message.contains(says), "`{message}` says `{says}`");
    still_serving();
}

fn still_serving() {
    let mut arena = memory(4096);
    let args = rmp_serde::to_vec(&(2u32, 3u32)).unwrap();
    let mut good = frame("add", &args, &mut arena);
    let (status, out) = call(&mut good);
    assert_eq!(status, Status::Ok as i32);
    assert_eq!(rmp_serde::from_slice::<u32>(&out).unwrap(), 5);
}

/// Item 4: arguments inside the call's arena. The module validated them, then its own
/// allocations bumped down over them: a `&mut` aliasing a validated `&Archived`.
#[test]
fn arguments_that_overlap_the_arena_are_refused() {
    let mut arena = memory(4096);
    let mut f = frame("echo", b"", &mut arena);
    // The last 64 bytes of the arena, where allocation starts.
    f.args = f.arena.wrapping_add(4096 - 64).cast_const();
    f.args_len = 64;
    refused(f, "arguments and arena overlap");
    let mut f = frame("echo", b"", &mut arena);
    f.args = f.arena.cast_const();
    f.args_len = 1;
    refused(f, "overlap");
}

/// No arguments are no bytes: a zero-length argument pointer may point anywhere, the
/// arena included (found by fuzzing `call_frames`: such a frame was refused as
/// overlapping).
#[test]
fn empty_arguments_pointing_into_the_arena_are_accepted() {
    let mut arena = memory(4096);
    let mut f = frame("ping", b"", &mut arena);
    f.args = f.arena.wrapping_add(548).cast_const();
    f.args_len = 0;
    let (status, out) = call(&mut f);
    assert_eq!(
        status,
        Status::Ok as i32,
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(out, b"pong", "a raw result");
}

/// Item 4: the persistent region is shared by every call; an arena inside it would let
/// one call overwrite another's state.
#[test]
fn a_persistent_region_that_overlaps_the_arena_is_refused() {
    let mut arena = memory(8192);
    let mut f = frame("add", b"\x92\x02\x03", &mut arena);
    let start = f
        .arena
        .wrapping_add(f.arena.addr().next_multiple_of(64) - f.arena.addr());
    f.persistent = start;
    f.persistent_len = 4096;
    f.arena = start.wrapping_add(1024);
    f.arena_len = 1024;
    refused(f, "arena and persistent region overlap");
}

/// Item 4: lengths past `isize::MAX` reached `slice::from_raw_parts` (an abort in a debug
/// module, undefined behaviour in a release one), and a region that wraps around the end
/// of the address space was never looked at.
#[test]
fn lengths_past_isize_max_and_wrapping_regions_are_refused() {
    let mut arena = memory(4096);
    let args = [0x90u8];
    let mut f = frame("noop", &args, &mut arena);
    f.args_len = isize::MAX as usize + 1;
    refused(f, "more than isize::MAX");
    let mut f = frame("noop", &args, &mut arena);
    f.arena_len = usize::MAX - 15;
    refused(f, "more than isize::MAX");
    let mut f = frame("noop", &args, &mut arena);
    f.args = std::ptr::without_provenance(usize::MAX - 8);
    f.args_len = 64;
    refused(f, "runs past the end of the address space");
    // The arena too: `arena + arena_len` past the end of the address space, each length
    // below isize::MAX, so only the wrap can be what is refused.
    let mut f = frame("noop", &args, &mut arena);
    f.arena = std::ptr::without_provenance_mut(usize::MAX - 4095);
    f.arena_len = 8192;
    refused(f, "runs past the end of the address space");
}

/// Item 4: a host service table smaller than the module's was checked at init only; a
/// call naming another table used functions past its end.
#[test]
fn a_call_with_a_short_host_table_is_refused() {
    let mut arena = memory(4096);
    let mut f = frame("noop", b"", &mut arena);
    f.host = &SHORT_HOST;
    let (status, out) = call(&mut f);
    assert_eq!(status, Status::Abi as i32);
    assert!(
        out.is_empty(),
        "nothing can be reported through such a table"
    );
    let mut f = frame("noop", b"", &mut arena);
    f.host = core::ptr::null();
    assert_eq!(call(&mut f).0, Status::Abi as i32);
    still_serving();
}

/// Item 4: `memlink_init` refused a frame too small for this module, then wrote its
/// message into the frame's `error` field, past the end of what the host passed.
#[test]
fn init_writes_nothing_past_a_frame_it_refuses_as_too_small() {
    entry();
    #[repr(C, align(8))]
    struct Padded([u8; 64]);
    let mut memory = Padded([0xa5; 64]);
    let size = offset_of!(InitFrame, error) as u32;
    memory.0[..4].copy_from_slice(&size.to_ne_bytes());
    // SAFETY: the buffer is 64 bytes (as large as an `InitFrame`), aligned for it, and
    // its first field says it is smaller than the module's frame.
    let status = unsafe { (entry().init)(memory.0.as_mut_ptr().cast()) };
    assert_eq!(status, Status::Abi as i32);
    assert!(
        memory.0[size as usize..].iter().all(|&b| b == 0xa5),
        "the module wrote past the frame's {size} bytes"
    );
}

/// Item 7: every failed `memlink_init` reports its own reason. Before, the first failure's
/// message was kept in a static and returned for every later one.
#[test]
fn each_failed_init_reports_its_own_reason() {
    entry();
    let message = |mut frame: InitFrame| {
        // SAFETY: a frame of the right size whose fields the module checks.
        let status = unsafe { (entry().init)(&mut frame) };
        assert_eq!(status, Status::Abi as i32);
        // SAFETY: the module points `error` at a message in its own memory.
        unsafe { frame.error.as_str() }.unwrap().to_owned()
    };
    let wrong_version = message(InitFrame {
        abi_version: 999,
        ..init_frame()
    });
    assert!(
        wrong_version.contains("host speaks memlink ABI 999"),
        "{wrong_version}"
    );
    let no_host = message(InitFrame {
        host: core::ptr::null(),
        ..init_frame()
    });
    assert!(no_host.contains("null HostApi"), "{no_host}");
    let short_host = message(InitFrame {
        host: &SHORT_HOST,
        ..init_frame()
    });
    assert!(
        short_host.contains("service table is 16 bytes"),
        "{short_host}"
    );
    assert_eq!(
        message(InitFrame {
            abi_version: 999,
            ..init_frame()
        }),
        wrong_version,
        "the same failure, the same words"
    );
    still_serving();
}
