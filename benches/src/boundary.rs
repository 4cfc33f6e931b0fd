//! A call into a module with no runtime around it: the frame built on the stack, the
//! method's own entry point called (`memlink_call` through its `dlsym` pointer when the
//! module gives it none), the status and the result's length read.
//! It is what a call costs when the host does only what the ABI requires, so beside a
//! call through the runtime it splits that call's time between the module's side of the
//! boundary and the runtime's (admission, the arena pool, the deadline, metrics, the
//! output's copy).

use std::ffi::c_void;
use std::path::Path;

use libloading::Library;
use memlink_abi::{
    self as abi, CallFrame, HostApi, InitFrame, LogRecord, ModuleInfo, NestedCall, Status, StrRef,
};

/// A host table that offers nothing: no output buffers, no nested calls, no logs, no
/// running call. An export that asks for one of them fails (none of those measured here
/// does).
static NO_SERVICES: HostApi = HostApi {
    size: size_of::<HostApi>() as u32,
    reserved: 0,
    alloc_output: no_output,
    call_module: no_call,
    log: no_log,
    backpressure: idle,
    // The least a host can do: it keeps no running call, so the module's logs would
    // carry no export (none of those measured here logs).
    running_call: None,
};

unsafe extern "C" fn no_output(_: *mut c_void, _: usize) -> *mut u8 {
    core::ptr::null_mut()
}
unsafe extern "C" fn no_call(_: *mut c_void, _: *mut NestedCall) -> i32 {
    Status::ServiceUnavailable as i32
}
unsafe extern "C" fn no_log(_: *mut c_void, _: *const LogRecord) {}
unsafe extern "C" fn idle(_: *mut c_void) -> f32 {
    0.0
}

/// An arena's worth of memory, aligned as the ABI requires of an arena.
#[derive(Debug)]
#[repr(C, align(16))]
struct Scratch([u8; 4096]);

/// One export of a module, called straight through its entry point (its own, when the
/// module gives it one, as the runtime calls it).
#[derive(Debug)]
pub struct Boundary {
    call: unsafe extern "C" fn(*mut CallFrame) -> i32,
    index: u32,
    id: u32,
    arena: Box<Scratch>,
}

impl Boundary {
    /// Opens a private copy of the module at `path`, initializes it for a host that
    /// offers nothing, and finds `method`. The copy is an image of its own: the host it
    /// is initialized for (which receives no logs) is not the one a runtime in the same
    /// process initialized the original file for.
    pub fn load(path: &Path, method: &str) -> Result<Boundary, String> {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("{}: no file name", path.display()))?;
        let copy = crate::fixture::private_copy_as(path, &format!("{stem}_boundary"))?;
        // SAFETY: the library is a copy of one of the workspace's example modules, whose
        // initializers are std's and memlink-msdk's. It is leaked, never closed, so the
        // entry point copied out below stays valid for the life of the process.
        let lib: &'static Library = Box::leak(Box::new(
            unsafe { Library::new(&copy) }.map_err(|e| format!("{}: {e}", copy.display()))?,
        ));
        // SAFETY: every memlink module exports these three with these types (the ABI).
        let (info, init, call) = unsafe {
            (
                *lib.get::<extern "C" fn() -> *const ModuleInfo>(b"memlink_module_info\0")
                    .map_err(|e| e.to_string())?,
                *lib.get::<unsafe extern "C" fn(*mut InitFrame) -> i32>(b"memlink_init\0")
                    .map_err(|e| e.to_string())?,
                *lib.get::<unsafe extern "C" fn(*mut CallFrame) -> i32>(b"memlink_call\0")
                    .map_err(|e| e.to_string())?,
            )
        };
        // SAFETY: the module's description lives as long as the module (the ABI), which
        // is never unloaded; null only if building it panicked.
        let info = unsafe { info().as_ref() }.ok_or("the module has no description")?;
        if info.abi_version != abi::ABI_VERSION {
            return Err(format!("the module speaks ABI {}", info.abi_version));
        }
        let (index, id) = find(info, method)?;
        let mut frame = InitFrame {
            size: size_of::<InitFrame>() as u32,
            abi_version: abi::ABI_VERSION,
            host: &raw const NO_SERVICES,
            max_log_level: abi::level::OFF,
            error: StrRef::new(""),
        };
        // SAFETY: the frame is valid for the call, and its host table is a static, valid
        // for as long as the module may use it.
        if unsafe { init(&mut frame) } != Status::Ok as i32 {
            return Err("memlink_init refused the module".to_owned());
        }
        let arena = Box::new(Scratch([0; 4096]));
        Ok(Boundary {
            call: own_entry(info, index).unwrap_or(call),
            index,
            id,
            arena,
        })
    }

    /// Calls the method with `args` and returns its status and the length of its
    /// result: a frame filled on the stack, one indirect call, two fields read back.
    #[inline]
    pub fn call(&mut self, args: &[u8]) -> (i32, usize) {
        let mut frame = CallFrame {
            size: size_of::<CallFrame>() as u32,
            method_index: self.index,
            method_id: self.id,
            depth: 0,
            args: args.as_ptr(),
            args_len: args.len(),
            arena: self.arena.0.as_mut_ptr(),
            arena_len: self.arena.0.len(),
            trace_id: 0,
            span_id: 0,
            timeout_ns: abi::NO_DEADLINE,
            backpressure: 0.0,
            flags: abi::CALL_BACKPRESSURE_ON_REQUEST,
            host: &raw const NO_SERVICES,
            host_call: core::ptr::null_mut(),
            persistent: core::ptr::null_mut(),
            persistent_len: 0,
            out: core::ptr::null(),
            out_len: 0,
            arena_used: 0,
            small_out: [0; abi::SMALL_OUT_LEN],
        };
        // SAFETY: the frame honours the ABI: the arguments are borrowed for the call and
        // apart from the arena, which is this fixture's alone (`&mut self`), 16-aligned;
        // the host table is valid, and the module never calls it with `host_call`
        // (none of its services is offered). The module is initialized and never
        // unloaded.
        let status = unsafe { (self.call)(&mut frame) };
        (status, frame.out_len)
    }
}

/// Method `index`'s own entry point, if the module gives it one: what a host calls
/// instead of `memlink_call` then.
fn own_entry(info: &ModuleInfo, index: u32) -> Option<unsafe extern "C" fn(*mut CallFrame) -> i32> {
    if info.method_calls.is_null() {
        return None;
    }
    // SAFETY: a non-null `method_calls` has `method_count` entries that live as long as
    // the module (the ABI), which is never unloaded; `index` was found in the table.
    unsafe { *info.method_calls.add(index as usize) }
}

/// The index and id of `method` in the module's table.
fn find(info: &ModuleInfo, method: &str) -> Result<(u32, u32), String> {
    if info.methods.is_null() {
        return Err("the module has no method table".to_owned());
    }
    // SAFETY: `methods` points to `method_count` entries that live as long as the
    // module (the ABI), which is never unloaded.
    let methods = unsafe { std::slice::from_raw_parts(info.methods, info.method_count) };
    methods
        .iter()
        .enumerate()
        // SAFETY: a method's name is valid UTF-8 for the life of the module (the ABI).
        .find(|(_, m)| unsafe { m.name.as_str() } == Some(method))
        .map(|(i, m)| (i as u32, m.id))
        .ok_or_else(|| format!("the module has no method `{method}`"))
}
