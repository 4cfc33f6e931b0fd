//! A loaded module: its library, its checked description and its entry points.

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use libloading::Library;
use memlink_msdk::abi::{self, Format, ModuleInfo, StrRef};

use crate::admission::{Gate, Refused, Saturation};
use crate::arena::AlignedBuf;
use crate::error::RuntimeError;
use crate::metrics::MethodStats;

/// One method as the module's table describes it, checked and copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// The exported name.
    pub name: String,
    /// FNV-1a of the name: the id on the wire.
    pub id: u32,
    /// How the arguments are encoded.
    pub args_format: Format,
    /// How the result is encoded.
    pub result_format: Format,
    /// Number of arguments after the context.
    pub arg_count: u16,
    /// Whether the export is an `async fn`.
    pub is_async: bool,
    /// For archived arguments: the type the archive must hold and its fingerprint.
    pub args_type: Option<(String, u64)>,
    /// For an archived result: the type the archive holds and its fingerprint.
    pub result_type: Option<(String, u64)>,
}

/// The entry points, as plain function pointers: the library is never unloaded (see
/// [`Module::library`]), so they stay valid for the life of the process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryPoints {
    pub(crate) init: abi::InitFn,
    pub(crate) call: abi::CallFn,
    pub(crate) shutdown: abi::ShutdownFn,
    /// Optional: a module built without metrics support has none.
    pub(crate) metrics: Option<abi::MetricsFn>,
}

/// A module the runtime loaded.
#[derive(Debug)]
pub(crate) struct Module {
    /// Never dropped: unloading a Rust cdylib (`dlclose`) unmaps code that thread-local
    /// destructors it registered still point to, and they crash the process at thread
    /// exit. Retiring a module stops calls into it; the image stays mapped. `None` for a
    /// module linked into the host itself.
    _library: Option<ManuallyDrop<Library>>,
    pub(crate) path: PathBuf,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) sdk_version: String,
    /// Sorted by id, as the module's table is.
    pub(crate) methods: Vec<Method>,
    pub(crate) entry: EntryPoints,
    /// Admission: the concurrency limit, and whether the module still takes calls (its
    /// gate closes when it is retired).
    pub(crate) gate: Gate,
    /// Memory the module keeps across calls; a new region (and generation) per load.
    pub(crate) persistent: Option<PersistentRegion>,
    /// Built-in figures, one per method (same order as `methods`).
    pub(crate) stats: Box<[MethodStats]>,
}

/// A module's persistent region (see `memlink_msdk::persist`): zeroed, stamped with a
/// generation no other region has had, then written only by the module's calls.
#[derive(Debug)]
pub(crate) struct PersistentRegion {
    buf: AlignedBuf,
    ptr: *mut u8,
}

// SAFETY: after construction the runtime never touches the buffer; the module's calls,
// from any thread, follow the region's protocol (atomics for the header and bitmap,
// records written once before they are published).
unsafe impl Send for PersistentRegion {}
// SAFETY: as above.
unsafe impl Sync for PersistentRegion {}

static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

impl PersistentRegion {
    /// A region of `len` bytes, or `None` for 0.
    pub(crate) fn new(len: usize) -> Option<PersistentRegion> {
        if len == 0 {
            return None;
        }
        let mut buf = AlignedBuf::zeroed(len.max(size_of::<abi::PersistentHeader>()));
        let ptr = buf.as_mut_ptr();
        let generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the buffer is 64-aligned (as `PersistentHeader` needs), at least one
        // header long, zeroed, and not shared with anyone yet.
        unsafe { (*ptr.cast::<abi::PersistentHeader>()).generation = generation };
        Some(PersistentRegion { buf, ptr })
    }

    /// Where the region is and how long, for a call frame.
    pub(crate) fn raw(&self) -> (*mut u8, usize) {
        (self.ptr, self.buf.len())
    }
}

impl Module {
    /// Opens the library at `path` (already resolved) and checks that it is a memlink
    /// module this runtime can call. Does not call `memlink_init`.
    pub(crate) fn open(path: &Path, concurrency: usize) -> Result<Module, RuntimeError> {
        // A truncated file would load, then crash the process with SIGBUS when its pages
        // are touched: refuse it before the loader maps anything.
        crate::elf::check(path).map_err(|reason| RuntimeError::NotALibrary {
            path: path.to_owned(),
            reason,
            source: None,
        })?;
        // SAFETY: loading a library runs its initializers; a memlink module is native code
        // the host chose to trust (see docs/security.md). Nothing else is assumed here.
        let library =
            unsafe { Library::new(path) }.map_err(|source| RuntimeError::NotALibrary {
                path: path.to_owned(),
                reason: source.to_string(),
                source: Some(source),
            })?;
        let library = ManuallyDrop::new(library);
        // SAFETY: `memlink_abi_version` is declared `extern "C" fn() -> u32` by every
        // version of the ABI, so reading it is sound before the version is known.
        let version_fn: abi::AbiVersionFn = unsafe { get(&library, path, abi::SYM_ABI_VERSION)? };
        // SAFETY: a nullary function returning a `u32`, as above.
        let version = unsafe { version_fn() };
        if version != abi::ABI_VERSION {
            return Err(RuntimeError::AbiMismatch {
                path: path.to_owned(),
                module: version,
                host: abi::ABI_VERSION,
            });
        }
        // SAFETY: the version matched, so each symbol has the signature this ABI version
        // gives it in `memlink_msdk::abi`.
        let (info_fn, init, call, shutdown) = unsafe {
            (
                get::<abi::ModuleInfoFn>(&library, path, abi::SYM_MODULE_INFO)?,
                get::<abi::InitFn>(&library, path, abi::SYM_INIT)?,
                get::<abi::CallFn>(&library, path, abi::SYM_CALL)?,
                get::<abi::ShutdownFn>(&library, path, abi::SYM_SHUTDOWN)?,
            )
        };
        // SAFETY: declared with the ABI's `MetricsFn` signature (the version matched
        // above); a module without it simply has no metrics of its own.
        let metrics = unsafe { get::<abi::MetricsFn>(&library, path, abi::SYM_METRICS) }.ok();
        let entry = EntryPoints {
            init,
            call,
            shutdown,
            metrics,
        };
        // SAFETY: the module's ABI version matched, so its entry points have the ABI's
        // signatures, and `info_fn` returns null or a `ModuleInfo` in its static memory,
        // valid while the library is mapped (forever: it is never unloaded).
        unsafe { Module::from_entry_points(path, Some(library), info_fn, entry, concurrency) }
    }

    /// A module from its entry points: checks the description `info` returns.
    ///
    /// # Safety
    ///
    /// `info` and the entry points must be the ABI's functions of one module, valid (with
    /// everything `info` points to) for the life of the process.
    pub(crate) unsafe fn from_entry_points(
        path: &Path,
        library: Option<ManuallyDrop<Library>>,
        info: abi::ModuleInfoFn,
        entry: EntryPoints,
        concurrency: usize,
    ) -> Result<Module, RuntimeError> {
        // SAFETY: the caller's contract: null or a `ModuleInfo` valid forever.
        let info = unsafe { info().as_ref() };
        let described = describe(info).map_err(|reason| RuntimeError::InvalidModule {
            path: path.to_owned(),
            reason,
        })?;
        Ok(Module {
            _library: library,
            path: path.to_owned(),
            name: described.name,
            version: described.version,
            sdk_version: described.sdk_version,
            stats: (0..described.methods.len())
                .map(|_| MethodStats::default())
                .collect(),
            methods: described.methods,
            entry,
            gate: Gate::new(concurrency),
            persistent: None,
        })
    }

    /// The method named `name`: an FNV hash and a binary search, no map.
    pub(crate) fn method(&self, name: &str) -> Option<(u32, &Method)> {
        let id = abi::method_id(name);
        let i = self.methods.binary_search_by_key(&id, |m| m.id).ok()?;
        let m = &self.methods[i];
        (m.name == name).then_some((i as u32, m))
    }
}

fn symbol_name(name: &'static [u8]) -> &'static str {
    std::str::from_utf8(&name[..name.len() - 1]).unwrap_or("?")
}

/// Looks up `name` and copies the function pointer out of the symbol.
///
/// # Safety
///
/// `T` must be the symbol's true type.
unsafe fn get<T: Copy>(
    library: &Library,
    path: &Path,
    name: &'static [u8],
) -> Result<T, RuntimeError> {
    // SAFETY: the caller promises `T` is the symbol's type.
    match unsafe { library.get::<T>(name) } {
        Ok(symbol) => Ok(*symbol),
        Err(_) => Err(RuntimeError::NotAModule {
            path: path.to_owned(),
            missing: symbol_name(name),
        }),
    }
}

struct Described {
    name: String,
    version: String,
    sdk_version: String,
    methods: Vec<Method>,
}

/// The most methods a module may export: far more than any real module has, and small
/// enough that a garbage count is refused before the table is read or anything is
/// allocated for it.
const MAX_METHODS: usize = 1 << 16;

/// Checks a module's self-description and copies it into owned values.
fn describe(info: Option<&ModuleInfo>) -> Result<Described, String> {
    let info = info.ok_or("memlink_module_info returned null")?;
    if info.magic != abi::MODULE_MAGIC {
        return Err(format!(
            "module info has magic {:#x}, expected {:#x}",
            info.magic,
            abi::MODULE_MAGIC
        ));
    }
    if (info.size as usize) < size_of::<ModuleInfo>() {
        return Err(format!(
            "module info is {} bytes, expected at least {}",
            info.size,
            size_of::<ModuleInfo>()
        ));
    }
    let text = |s: StrRef, what: &str| -> Result<String, String> {
        // SAFETY: the module's strings are in its static memory, alive while it is
        // mapped, and never written.
        unsafe { s.as_str() }
            .map(str::to_owned)
            .ok_or_else(|| format!("{what} is not UTF-8"))
    };
    if info.method_count > MAX_METHODS {
        return Err(format!(
            "its method table claims {} methods, more than the {MAX_METHODS} a module may have",
            info.method_count
        ));
    }
    let rows: &[abi::MethodInfo] = if info.method_count == 0 {
        &[]
    } else if info.methods.is_null() {
        return Err("method table is null".into());
    } else {
        // SAFETY: a non-null table of `method_count` rows in the module's static memory;
        // the count is bounded above, so the slice's size fits an `isize`.
        unsafe { std::slice::from_raw_parts(info.methods, info.method_count) }
    };
    let mut methods = Vec::with_capacity(rows.len());
    for row in rows {
        methods.push(method(row, &text)?);
    }
    check_ids(&methods)?;
    check_format(info.rkyv_format, &methods)?;
    Ok(Described {
        name: text(info.name, "module name")?,
        version: text(info.version, "module version")?,
        sdk_version: text(info.sdk_version, "sdk version")?,
        methods,
    })
}

fn method(
    row: &abi::MethodInfo,
    text: &impl Fn(StrRef, &str) -> Result<String, String>,
) -> Result<Method, String> {
    let name = text(row.name, "a method name")?;
    if row.id != abi::method_id(&name) {
        return Err(format!(
            "method `{name}` has id {:#010x}, expected {:#010x}",
            row.id,
            abi::method_id(&name)
        ));
    }
    let format = |tag| {
        Format::from_u8(tag).ok_or_else(|| format!("method `{name}` has unknown format {tag}"))
    };
    let archive_type = |s: StrRef, fingerprint: u64| -> Result<Option<(String, u64)>, String> {
        let type_name = text(s, "an archive type name")?;
        Ok((fingerprint != 0).then_some((type_name, fingerprint)))
    };
    Ok(Method {
        args_format: format(row.args_format)?,
        result_format: format(row.result_format)?,
        arg_count: row.arg_count,
        is_async: row.flags & abi::METHOD_ASYNC != 0,
        args_type: archive_type(row.args_type, row.args_fingerprint)?,
        result_type: archive_type(row.result_type, row.result_fingerprint)?,
        id: row.id,
        name,
    })
}

/// Archives can only cross between two builds of rkyv with the same format settings.
fn check_format(module_format: u32, methods: &[Method]) -> Result<(), String> {
    let uses_archives = methods
        .iter()
        .any(|m| m.args_format == Format::Archived || m.result_format == Format::Archived);
    let host_format = memlink_msdk::archive::format();
    if uses_archives && module_format != host_format {
        return Err(format!(
            "its archives use rkyv with {}, this runtime's with {}; rkyv's format features \
             (endianness, alignment, pointer width) must match on both sides",
            memlink_msdk::archive::describe_format(module_format),
            memlink_msdk::archive::describe_format(host_format)
        ));
    }
    Ok(())
}

/// The table must be sorted by id with no id twice (same name twice, or two names
/// whose FNV-1a hashes collide).
fn check_ids(methods: &[Method]) -> Result<(), String> {
    for w in methods.windows(2) {
        if w[0].id == w[1].id {
            return Err(format!(
                "methods `{}` and `{}` share id {:#010x}; rename one with #[memlink_export(name = \"...\")]",
                w[0].name, w[1].name, w[0].id
            ));
        }
        if w[0].id > w[1].id {
            return Err("method table is not sorted by id".into());
        }
    }
    Ok(())
}

/// Why a call could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotEntered {
    Retired,
    Refused(Refused),
}

impl Module {
    /// Takes a slot for a call unless the module is retired or saturated.
    pub(crate) fn enter(
        &self,
        policy: Saturation,
        deadline: Option<Instant>,
    ) -> Result<(), NotEntered> {
        let entered = self.gate.enter(policy, deadline);
        // Checked after taking the slot: `unload` closes the gate first and then drains
        // the slots, so a call either sees it closed or is waited for. A call refused
        // while the drain holds the slots is told the module is gone.
        if self.is_retired() {
            if entered.is_ok() {
                self.gate.leave();
            }
            return Err(NotEntered::Retired);
        }
        entered.map_err(|refused| match refused {
            Refused::Closed => NotEntered::Retired,
            other => NotEntered::Refused(other),
        })
    }

    /// Marks a call as finished.
    pub(crate) fn leave(&self) {
        self.gate.leave();
    }

    /// Whether the module was retired (unloaded): it takes no more calls.
    pub(crate) fn is_retired(&self) -> bool {
        self.gate.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> Method {
        Method {
            name: name.into(),
            id: abi::method_id(name),
            args_format: Format::MessagePack,
            result_format: Format::MessagePack,
            arg_count: 0,
            is_async: false,
            args_type: None,
            result_type: None,
        }
    }

    #[test]
    fn duplicate_ids_name_both_methods() {
        let err = check_ids(&[m("add"), m("add")]).unwrap_err();
        assert!(
            err.contains("`add` and `add`") && err.contains("0x3b391274"),
            "{err}"
        );
        assert!(check_ids(&[m("add"), m("echo")]).is_ok());
        assert!(check_ids(&[m("echo"), m("add")])
            .unwrap_err()
            .contains("sorted"));
    }
}
