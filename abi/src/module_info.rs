//! What a module says about itself: [`ModuleInfo`] and its method table.

use crate::frames::CallFrame;
use crate::text::StrRef;

/// A method's own entry point (see [`ModuleInfo::method_calls`]): `memlink_call` for that
/// method alone, with the same contract.
pub type MethodCallFn = unsafe extern "C" fn(frame: *mut CallFrame) -> i32;

/// An entry of [`ModuleInfo::method_calls`]: a method's own entry point, or null. A type
/// of its own so that C sees the table as `const MemlinkMethodCall *`, which a `const`
/// array of a module's converts to.
pub type MethodCall = Option<unsafe extern "C" fn(frame: *mut CallFrame) -> i32>;

/// FNV-1a, 32 bits, of a method name: the method's id on the wire.
///
/// ```
/// use memlink_abi::method_id;
/// assert_eq!(method_id("echo"), 0xd49d_d484);
/// assert_eq!(method_id("add"), 0x3b39_1274);
/// assert_eq!(method_id(""), 0x811c_9dc5);
/// ```
pub const fn method_id(name: &str) -> u32 {
    let bytes = name.as_bytes();
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u32;
        hash = hash.wrapping_mul(16_777_619);
        i += 1;
    }
    hash
}

/// What a module says about itself. Returned by `memlink_module_info`; lives in the
/// module's static memory and never changes.
#[repr(C)]
#[derive(Debug)]
pub struct ModuleInfo {
    /// Always [`MODULE_MAGIC`](crate::MODULE_MAGIC).
    pub magic: u64,
    /// The module's [`ABI_VERSION`](crate::ABI_VERSION).
    pub abi_version: u32,
    /// `size_of::<ModuleInfo>()` in the module.
    pub size: u32,
    /// The module's name (a Rust module's crate name): not empty, UTF-8, with no `@`
    /// (which separates a name from a version requirement) and no control character, or
    /// the host refuses to load it.
    pub name: StrRef,
    /// The module's crate version: semver (`MAJOR.MINOR.PATCH`, as `1.0.0`) for a version
    /// requirement (`name@^1`, in a nested call or `memlink_dependencies`) to admit it;
    /// another text (`1.0`) loads, but no requirement admits it. With no control
    /// character (in C, a length that does not count the terminating NUL), or the host
    /// refuses to load the module.
    pub version: StrRef,
    /// The version of memlink-msdk the module was built with (a C module's text of its
    /// own): with no control character, or the host refuses to load the module.
    pub sdk_version: StrRef,
    /// The method table, `method_count` entries, sorted by id.
    pub methods: *const MethodInfo,
    /// Number of entries in `methods`.
    pub method_count: usize,
    /// The rkyv format the module's archives use (`archive::format` with the `rkyv`
    /// feature: pointer width, endianness, alignment): host and module must agree to
    /// exchange archives.
    pub rkyv_format: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Null, or `method_count` entries, one per row of `methods` in the same order: the
    /// method's own entry point, or null where the module has none. A host may call a
    /// method through its own entry point instead of `memlink_call`, with the same frame
    /// and under the same contract; the module then does not look the method up, and can
    /// run the export's code inline. The frame's method fields are filled as for
    /// `memlink_call`; an entry point refuses a frame whose `method_id` is not its
    /// method's with [`Status::InvalidMethod`](crate::Status::InvalidMethod).
    pub method_calls: *const MethodCall,
}

/// `MethodInfo::flags` bit: the export is an `async fn`.
pub const METHOD_ASYNC: u32 = 1;

/// `MethodInfo::flags` bit: the export is pure: its result depends on its arguments
/// alone (no state, no clock, no nested calls), so a host may answer a call from an
/// earlier result for the same argument bytes.
pub const METHOD_PURE: u32 = 2;

/// One row of the method table.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MethodInfo {
    /// The exported name: not empty, UTF-8, with no control character (in C, a length
    /// that does not count the terminating NUL), or the host refuses to load the module.
    pub name: StrRef,
    /// [`method_id`] of `name`.
    pub id: u32,
    /// Bit set of `METHOD_*` flags.
    pub flags: u32,
    /// A [`Format`](crate::Format) tag for the arguments.
    pub args_format: u8,
    /// A [`Format`](crate::Format) tag for the result.
    pub result_format: u8,
    /// Number of arguments after the context.
    pub arg_count: u16,
    /// Reserved, zero.
    pub reserved: u32,
    /// For archived arguments: the type the archive holds (the parameters' tuple), as
    /// `std::any::type_name` spells it; empty otherwise.
    pub args_type: StrRef,
    /// For archived arguments: the type's fingerprint (`archive::fingerprint` with the
    /// `rkyv` feature: FNV-1a 64 of the type name, the archived size and alignment as
    /// `u64` LE and the rkyv format as `u32` LE, see docs/abi.md); 0 otherwise.
    pub args_fingerprint: u64,
    /// For an archived result: the type the archive holds; empty otherwise.
    pub result_type: StrRef,
    /// For an archived result: its fingerprint; 0 otherwise.
    pub result_fingerprint: u64,
    /// The export's signature as its source spells it, without the context parameter:
    /// `add(a: u32, b: u32) -> u32`. Empty when the module records none. UTF-8 with no
    /// control character (as the type names above), or the host refuses the module.
    pub signature: StrRef,
}
