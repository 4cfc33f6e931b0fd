//! What each figure runs, defined once so that the criterion benches and the report
//! measure exactly the same code.
//!
//! Every operation is checked once when its fixture is built (right result, no error),
//! so no figure can time an error path or an early return by accident: the published
//! original's arena figures timed a full arena's `None`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use bumpalo::Bump;
use libloading::Library;
use memlink_msdk::Arena;
use memlink_runtime::resolver::LocalResolver;
use memlink_runtime::{
    CallOptions, CallOutput, MethodRef, ModuleHandle, ModuleRef, Runtime, RuntimeConfig,
    TypedMethod,
};

use crate::modules;

/// The plain `extern "C"` functions of `fixtures/baseline.rs`, found with `dlsym`.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    /// `fn()`, empty.
    pub noop: extern "C" fn(),
    /// `fn(a, b) -> a + b`.
    pub add: extern "C" fn(u32, u32) -> u32,
    /// Copies `len` bytes from the first pointer to the second and returns `len`.
    pub echo: unsafe extern "C" fn(*const u8, usize, *mut u8) -> usize,
}

impl Baseline {
    /// Compiles the baseline library and looks its functions up.
    pub fn load() -> Result<Baseline, String> {
        let path = modules::baseline()?;
        // SAFETY: the library is our own `fixtures/baseline.rs`, whose only initializers
        // are std's. It is leaked, never closed, so the pointers copied out below stay
        // valid for the life of the process.
        let lib: &'static Library = Box::leak(Box::new(
            unsafe { Library::new(&path) }.map_err(|e| format!("{}: {e}", path.display()))?,
        ));
        // SAFETY: each symbol is defined in fixtures/baseline.rs with exactly this type.
        unsafe {
            Ok(Baseline {
                noop: *lib
                    .get(b"memlink_bench_noop\0")
                    .map_err(|e| e.to_string())?,
                add: *lib.get(b"memlink_bench_add\0").map_err(|e| e.to_string())?,
                echo: *lib
                    .get(b"memlink_bench_echo\0")
                    .map_err(|e| e.to_string())?,
            })
        }
    }

    /// The empty function through its `dlsym` pointer (the pointer is `black_box`ed, so the
    /// call stays an indirect call even if the compiler could see through it).
    #[inline]
    pub fn call_noop(&self) {
        black_box(self.noop)();
    }

    /// `add(2, 3)` through its `dlsym` pointer, arguments and result `black_box`ed.
    #[inline]
    pub fn call_add(&self) -> u32 {
        black_box(black_box(self.add)(black_box(2), black_box(3)))
    }
}

/// The same as [`Baseline::call_add`], as a direct call of a Rust function in this
/// binary: the floor below any call through a pointer.
#[inline(never)]
pub fn rust_add(a: u32, b: u32) -> u32 {
    a.wrapping_add(b)
}

#[inline(never)]
fn rust_noop() {}

/// A direct call of `rust_add` with opaque arguments and result.
#[inline]
pub fn call_rust_direct() -> u32 {
    black_box(rust_add(black_box(2), black_box(3)))
}

/// An empty Rust function called through a `black_box`ed `fn()` pointer.
#[inline]
pub fn call_rust_pointer() {
    black_box(rust_noop as fn())();
}

/// MessagePack of `value`, as a host sends arguments.
pub fn mp<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).expect("encode MessagePack")
}

/// A runtime with `basic`, `nested_calls` and `datasets` loaded (release builds), and the
/// encoded arguments of every call the benchmarks make.
#[derive(Debug, Clone)]
pub struct Host {
    /// The runtime, default configuration.
    pub runtime: Runtime,
    /// `basic`.
    pub basic: ModuleHandle,
    /// `nested_calls`.
    pub nested: ModuleHandle,
    /// `datasets`, for its MessagePack echo.
    pub datasets: ModuleHandle,
    /// `basic::noop`, resolved once.
    pub noop: MethodRef,
    /// `basic::echo`, resolved once.
    pub echo: MethodRef,
    /// `basic::add` as a typed handle, resolved and checked once.
    pub add: TypedMethod<(u32, u32), u32>,
    /// The path `basic` was loaded from.
    pub basic_path: PathBuf,
    echo_msgpack_args: Vec<u8>,
    add_args: Vec<u8>,
    relay_echo_args: Vec<u8>,
    relay_noop_args: Vec<u8>,
    relay_borrowed_args: Vec<u8>,
}

impl Host {
    /// Builds the example modules in release, loads them into a runtime with the default
    /// configuration and checks every operation.
    pub fn new() -> Result<Host, String> {
        Host::with_config(RuntimeConfig::default())
    }

    /// As [`Host::new`], with a runtime configured by `config`.
    pub fn with_config(config: RuntimeConfig) -> Result<Host, String> {
        let basic_path = modules::example("basic")?;
        let nested_path = modules::example("nested_calls")?;
        let datasets_path = modules::example("datasets")?;
        let runtime = Runtime::new(config, LocalResolver);
        let load = |p: &Path| {
            runtime
                .load(ModuleRef::from_path(p))
                .map_err(|e| format!("load {}: {e}", p.display()))
        };
        let basic = load(&basic_path)?;
        let nested = load(&nested_path)?;
        let datasets = load(&datasets_path)?;
        let method = |module, name| runtime.method(module, name).map_err(|e| e.to_string());
        let host = Host {
            noop: method(basic, "noop")?,
            echo: method(basic, "echo")?,
            add: runtime
                .typed::<(u32, u32), u32>(basic, "add")
                .map_err(|e| e.to_string())?,
            echo_msgpack_args: mp(&("hello",)),
            add_args: mp(&(2u32, 3u32)),
            relay_echo_args: mp(&("basic", "echo", b"hello".to_vec())),
            relay_noop_args: mp(&("basic", "noop", Vec::<u8>::new())),
            // All-borrowed arguments make an archive method: the tuple archived.
            relay_borrowed_args: rkyv::to_bytes::<rkyv::rancor::Error>(&(
                "basic".to_owned(),
                "echo".to_owned(),
                b"hello".to_vec(),
            ))
            .map_err(|e| e.to_string())?
            .to_vec(),
            runtime,
            basic,
            nested,
            datasets,
            basic_path,
        };
        host.check()?;
        Ok(host)
    }

    fn check(&self) -> Result<(), String> {
        let nil = [0xc0u8];
        let expect = |what: &str, got: &[u8], want: &[u8]| {
            if got == want {
                Ok(())
            } else {
                Err(format!("{what} returned {got:?}, expected {want:?}"))
            }
        };
        expect("noop by id", &self.noop_by_id(), &nil)?;
        expect("noop by name", &self.noop_by_name(), &nil)?;
        expect("echo", &self.echo_raw(), b"hello")?;
        expect("echo by id", &self.echo_raw_by_id(), b"hello")?;
        expect("add", &self.add_msgpack(), &mp(&5u32))?;
        if self.add_typed() != 5 || self.add_call_typed() != 5 {
            return Err("typed add is not 5".into());
        }
        expect("echo_msgpack", &self.echo_msgpack(), &mp(&"hello"))?;
        expect("relay to echo", &self.relay_echo(), b"hello")?;
        expect("relay to noop", &self.relay_noop(), &nil)?;
        expect(
            "borrowed relay to echo",
            &self.relay_borrowed_echo(),
            b"hello",
        )?;
        expect(
            "relay in the arena to echo",
            &self.relay_in_arena_echo(),
            b"hello",
        )?;
        Ok(())
    }

    /// `basic::noop` by id: `call_method(m, b"", &CallOptions::default())`, `m` resolved
    /// once beforehand.
    #[inline]
    pub fn noop_by_id(&self) -> CallOutput {
        self.runtime
            .call_method(self.noop, b"", &CallOptions::default())
            .expect("noop by id")
    }

    /// `basic::noop` by name: `call(h, "noop", b"")`.
    #[inline]
    pub fn noop_by_name(&self) -> CallOutput {
        self.runtime
            .call(self.basic, "noop", b"")
            .expect("noop by name")
    }

    /// `basic::echo("hello")`, raw bytes in and out, by name.
    #[inline]
    pub fn echo_raw(&self) -> CallOutput {
        self.runtime
            .call(self.basic, "echo", b"hello")
            .expect("echo")
    }

    /// `basic::echo("hello")` by id.
    #[inline]
    pub fn echo_raw_by_id(&self) -> CallOutput {
        self.runtime
            .call_method(self.echo, b"hello", &CallOptions::default())
            .expect("echo by id")
    }

    /// `datasets::echo_msgpack("hello")` by name, arguments pre-encoded (`["hello"]`),
    /// the result (`"hello"`) left encoded.
    #[inline]
    pub fn echo_msgpack(&self) -> CallOutput {
        self.runtime
            .call(self.datasets, "echo_msgpack", &self.echo_msgpack_args)
            .expect("msgpack echo")
    }

    /// `basic::add(2, 3)` with pre-encoded MessagePack arguments, by name; the result is
    /// left encoded.
    #[inline]
    pub fn add_msgpack(&self) -> CallOutput {
        self.runtime
            .call(self.basic, "add", &self.add_args)
            .expect("add")
    }

    /// `basic::add(2, 3)` through its typed handle (`runtime.typed::<(u32, u32), u32>(h,
    /// "add")`, made once): encodes `(2, 3)`, calls, decodes the `u32`.
    #[inline]
    pub fn add_typed(&self) -> u32 {
        self.add.call(&(2, 3)).expect("typed add")
    }

    /// `basic::add(2, 3)` through `call_typed` by name: the method resolved and checked
    /// on every call, then as [`add_typed`](Host::add_typed).
    #[inline]
    pub fn add_call_typed(&self) -> u32 {
        self.runtime
            .call_typed(self.basic, "add", &(2u32, 3u32))
            .expect("typed add by name")
    }

    /// `nested_calls::relay("basic", "echo", b"hello")`: the host calls relay, which
    /// calls `basic::echo` through the host.
    #[inline]
    pub fn relay_echo(&self) -> CallOutput {
        self.runtime
            .call(self.nested, "relay", &self.relay_echo_args)
            .expect("relay to echo")
    }

    /// `nested_calls::relay_borrowed("basic", "echo", b"hello")`: as
    /// [`relay_echo`](Host::relay_echo), through a synchronous relay that borrows its
    /// arguments (an archive, read in place).
    #[inline]
    pub fn relay_borrowed_echo(&self) -> CallOutput {
        self.runtime
            .call(self.nested, "relay_borrowed", &self.relay_borrowed_args)
            .expect("borrowed relay to echo")
    }

    /// `nested_calls::relay_in_arena("basic", "echo", b"hello")`: as
    /// [`relay_borrowed_echo`](Host::relay_borrowed_echo), with the callee's result lent to
    /// the relay and copied into its arena, not into a `Vec`.
    #[inline]
    pub fn relay_in_arena_echo(&self) -> CallOutput {
        self.runtime
            .call(self.nested, "relay_in_arena", &self.relay_borrowed_args)
            .expect("relay in the arena to echo")
    }

    /// `nested_calls::relay("basic", "noop", [])`.
    #[inline]
    pub fn relay_noop(&self) -> CallOutput {
        self.runtime
            .call(self.nested, "relay", &self.relay_noop_args)
            .expect("relay to noop")
    }
}

/// Allocations per round of the arena benchmarks: the arena is reset after this many,
/// so every measured allocation really bumps (8 KiB of `u64`s, which stays in L1).
pub const ARENA_ROUND: usize = 1024;

/// A zeroed, 16-aligned heap buffer (of `u128`s) for the arena benchmarks, held as a raw
/// pointer: moving its owner never retags the memory an arena points into.
#[derive(Debug)]
pub(crate) struct RawBuf {
    ptr: NonNull<u128>,
    len: usize,
}

impl RawBuf {
    /// `bytes` zeroed bytes (a multiple of 16).
    pub(crate) fn new(bytes: usize) -> RawBuf {
        let boxed = vec![0u128; bytes / 16].into_boxed_slice();
        let len = boxed.len();
        let ptr = NonNull::new(Box::into_raw(boxed).cast::<u128>()).expect("a Box is non-null");
        RawBuf { ptr, len }
    }

    /// The start of the buffer.
    pub(crate) fn as_ptr(&self) -> NonNull<u8> {
        self.ptr.cast()
    }

    /// Its length in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.len * size_of::<u128>()
    }
}

impl Drop for RawBuf {
    fn drop(&mut self) {
        let slice = core::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
        // SAFETY: `ptr` and `len` come from `Box::into_raw` of a `Box<[u128]>` in `new`,
        // and this is the only place that turns them back into a box.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// A memlink [`Arena`] over exactly [`ARENA_ROUND`] `u64`s of memory it owns.
#[derive(Debug)]
pub struct MemlinkRound {
    // Declared first, so dropped before the buffer it points into.
    arena: Arena,
    _buf: RawBuf,
}

impl Default for MemlinkRound {
    fn default() -> Self {
        Self::new()
    }
}

impl MemlinkRound {
    /// A fresh arena of `ARENA_ROUND * 8` bytes, 16-aligned.
    pub fn new() -> MemlinkRound {
        let buf = RawBuf::new(ARENA_ROUND * 8);
        // SAFETY: the buffer is heap memory owned by the returned value, freed only after
        // the arena is dropped (field order) and never touched except through the arena.
        let arena = unsafe { Arena::new(buf.as_ptr().as_ptr(), buf.bytes()) };
        let mut round = MemlinkRound { arena, _buf: buf };
        round.check_round();
        round
    }

    /// Checks that `ARENA_ROUND` allocations fill the arena exactly; then resets it.
    pub fn check_round(&mut self) {
        let ok = (0..ARENA_ROUND)
            .filter(|_| self.arena.alloc::<u64>().is_some())
            .count();
        assert_eq!(ok, ARENA_ROUND, "every allocation of a round succeeds");
        assert!(
            self.arena.alloc::<u64>().is_none(),
            "the round fills the arena"
        );
        self.arena.reset();
    }

    /// `ARENA_ROUND` times `arena.alloc::<u64>()` (each result `black_box`ed), then one
    /// `reset`.
    #[inline]
    pub fn alloc_round(&mut self) {
        for _ in 0..ARENA_ROUND {
            black_box(self.arena.alloc::<u64>());
        }
        self.arena.reset();
    }

    /// `ARENA_ROUND` times `arena.alloc_with(|| 42u64)`, then one `reset`.
    #[inline]
    pub fn alloc_with_round(&mut self) {
        for _ in 0..ARENA_ROUND {
            black_box(self.arena.alloc_with(|| black_box(42u64)));
        }
        self.arena.reset();
    }
}

/// A [`bumpalo::Bump`] with room for [`ARENA_ROUND`] `u64`s in one chunk.
#[derive(Debug)]
pub struct BumpRound {
    bump: Bump,
}

impl Default for BumpRound {
    fn default() -> Self {
        Self::new()
    }
}

impl BumpRound {
    /// A bump allocator with one chunk of at least `ARENA_ROUND * 8` bytes.
    pub fn new() -> BumpRound {
        let mut round = BumpRound {
            bump: Bump::with_capacity(ARENA_ROUND * 8),
        };
        round.check_round();
        round
    }

    /// Checks that a round allocates in the one chunk it has (no new chunk from the
    /// system allocator, which would time `malloc`), then resets it.
    pub fn check_round(&mut self) {
        let before = self.bump.allocated_bytes();
        self.alloc_round();
        self.alloc_round();
        assert_eq!(
            self.bump.allocated_bytes(),
            before,
            "a round stays in the first chunk"
        );
    }

    /// `ARENA_ROUND` times `bump.alloc(0u64)` (what `Arena::alloc::<u64>` writes), then
    /// one `reset`.
    #[inline]
    pub fn alloc_round(&mut self) {
        for _ in 0..ARENA_ROUND {
            black_box(self.bump.alloc(0u64));
        }
        self.bump.reset();
    }

    /// `ARENA_ROUND` times `bump.alloc_with(|| 42u64)`, then one `reset`.
    #[inline]
    pub fn alloc_with_round(&mut self) {
        for _ in 0..ARENA_ROUND {
            black_box(self.bump.alloc_with(|| black_box(42u64)));
        }
        self.bump.reset();
    }
}

/// Loads per runtime in the load benchmarks: a runtime has 256 module slots for its
/// whole life, and each load takes one.
pub const LOADS_PER_RUNTIME: u64 = 200;

/// Times `iters` cycles of `load(path)` + `unload`, on fresh default runtimes of
/// [`LOADS_PER_RUNTIME`] cycles each. Only the cycles are timed: making and dropping the
/// runtimes is not.
pub fn time_load_unload(path: &Path, iters: u64) -> std::time::Duration {
    time_load_unload_with(&RuntimeConfig::default(), path, iters)
}

/// As [`time_load_unload`], on runtimes configured by `config`.
pub fn time_load_unload_with(
    config: &RuntimeConfig,
    path: &Path,
    iters: u64,
) -> std::time::Duration {
    let mut total = std::time::Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(LOADS_PER_RUNTIME);
        let runtime = Runtime::new(config.clone(), LocalResolver);
        let start = std::time::Instant::now();
        for _ in 0..n {
            let h = runtime
                .load(ModuleRef::from_path(path))
                .expect("load basic");
            runtime.unload(h).expect("unload basic");
        }
        total += start.elapsed();
        left -= n;
        drop(runtime);
    }
    total
}

/// Resident memory of this process in KiB (Linux: `VmRSS` of /proc/self/status).
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How much resident memory one `load` + `unload` cycle of `path` leaves behind, in KiB,
/// over `cycles` cycles on one runtime (what a host that reloads a module sees until
/// it drops its runtime).
pub fn rss_growth_per_cycle(path: &Path, cycles: u64) -> Option<f64> {
    let runtime = Runtime::with_local_resolver();
    // One cycle first, so one-time costs (the first image mapping, lazy statics) are
    // not counted as growth.
    time_load_unload(path, 1);
    let before = rss_kib()?;
    for _ in 0..cycles {
        let h = runtime.load(ModuleRef::from_path(path)).ok()?;
        runtime.unload(h).ok()?;
    }
    let after = rss_kib()?;
    Some(after.saturating_sub(before) as f64 / cycles as f64)
}

/// Reloads the module at `path` (as `basic_reload`, on a runtime of its own) `reloads`
/// times, each time from a fresh image of the file: the nanoseconds from each `reload`
/// call to the first call the new image answered (`noop`), and the resident memory one
/// reload left behind, in KiB (the new image's mapping and relocations: the old image
/// is never unmapped), when the platform reports it.
pub fn reload_figures(path: &Path, reloads: usize) -> Result<(Vec<f64>, Option<f64>), String> {
    let runtime = Runtime::with_local_resolver();
    let h = runtime
        .load_as(ModuleRef::from_path(path), "basic_reload")
        .map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(reloads);
    let reload = |times: &mut Vec<f64>| -> Result<(), String> {
        let start = std::time::Instant::now();
        runtime
            .reload(h, ModuleRef::from_path(path))
            .map_err(|e| e.to_string())?;
        runtime.call(h, "noop", &[]).map_err(|e| e.to_string())?;
        times.push(start.elapsed().as_nanos() as f64);
        Ok(())
    };
    // One reload first, so one-time costs are not counted as growth.
    reload(&mut Vec::new())?;
    let before = rss_kib();
    for _ in 0..reloads {
        reload(&mut times)?;
    }
    let growth = before
        .zip(rss_kib())
        .map(|(b, a)| a.saturating_sub(b) as f64 / reloads as f64);
    Ok((times, growth))
}

/// A copy of the module at `path` under another name, mapped as an image of its own.
pub fn private_copy(path: &std::path::Path) -> Result<std::path::PathBuf, String> {
    private_copy_as(path, "libbasic_lifecycle")
}

/// [`private_copy`] named `stem`: each user of a private image names its own, so none
/// maps another's.
pub fn private_copy_as(path: &std::path::Path, stem: &str) -> Result<std::path::PathBuf, String> {
    let dir = modules::workspace().join("target/bench-fixtures");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let to = dir.join(format!("{stem}.{}", std::env::consts::DLL_EXTENSION));
    // Copied under a temporary name and renamed: a process that has the previous copy
    // mapped keeps its file instead of seeing it rewritten under it.
    let tmp = dir.join(format!("{stem}.{}.tmp", std::process::id()));
    std::fs::copy(path, &tmp).map_err(|e| format!("copy {}: {e}", path.display()))?;
    std::fs::rename(&tmp, &to).map_err(|e| format!("rename to {}: {e}", to.display()))?;
    Ok(to)
}
