//! The calls the benchmark report times, through the same API (`call_method` with a
//! resolved method, typed handles, argument buffers lent by reference): they allocate
//! nothing on the host, and every guarantee holds on them: panic isolation, deadlines,
//! admission, backpressure, logs, exact per-export counts and the soundness checks.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{load, load_all, module_copy, mp, runtime_with_holding, HANG};
use memlink_runtime::{
    CallOptions, CallOutput, LogEvent, LogSink, ModuleError, ModuleRef, Runtime, RuntimeConfig,
    RuntimeError, Saturation,
};

/// Counts the heap allocations each thread makes (the modules have allocators of their
/// own: only the host's are counted).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // A thread tearing down its locals allocates uncounted.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards to the system allocator, adding only a thread-local counter that
// never allocates itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap allocations this thread makes per call of `call`, over 200 calls after 20
/// untimed ones (the first calls of a thread set up its caches).
fn allocations_per_call(mut call: impl FnMut()) -> f64 {
    for _ in 0..20 {
        call();
    }
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..200 {
        call();
    }
    (ALLOCATIONS.with(Cell::get) - before) as f64 / 200.0
}

#[test]
fn the_measured_calls_allocate_nothing_on_the_host() {
    let (rt, h) = load("basic");
    let noop = rt.method(h, "noop").unwrap();
    let echo = rt.method(h, "echo").unwrap();
    let add = rt.typed::<(u32, u32), u32>(h, "add").unwrap();
    let echo_bytes = rt.typed::<(&str,), CallOutput>(h, "echo").unwrap();
    let options = CallOptions::default();

    let cases: [(&str, &mut dyn FnMut()); 5] = [
        ("call_method(noop)", &mut || {
            let out = rt.call_method(noop, b"", &options).unwrap();
            assert_eq!(out, [0xc0]);
        }),
        ("call_method(echo, raw)", &mut || {
            let out = rt.call_method(echo, b"hello", &options).unwrap();
            assert_eq!(out, b"hello");
        }),
        ("TypedMethod<(u32, u32), u32>::call", &mut || {
            assert_eq!(add.call(&(2, 3)).unwrap(), 5);
        }),
        ("Runtime::call_typed::<_, u32>", &mut || {
            assert_eq!(rt.call_typed::<_, u32>(h, "add", &(2u32, 3u32)).unwrap(), 5);
        }),
        ("TypedMethod<(&str,), CallOutput>::call", &mut || {
            assert_eq!(echo_bytes.call(&("hello",)).unwrap(), b"hello");
        }),
    ];
    for (name, call) in cases {
        assert_eq!(allocations_per_call(call), 0.0, "{name}");
    }
}

/// A module's typed call to another's MessagePack method reaches it with the caller's
/// encoded arguments as they are: the host copies nothing (a copy was made for every
/// nested typed call, whatever the callee's format).
#[test]
fn a_nested_typed_call_to_a_messagepack_method_allocates_nothing_on_the_host() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["basic", "nested_calls"]);
    let add_via = rt.typed::<(&str, u32, u32), u32>(h[1], "add_via").unwrap();
    let per_call = allocations_per_call(|| {
        assert_eq!(add_via.call(&("basic", 2, 3)).unwrap(), 5);
    });
    assert_eq!(per_call, 0.0);
}

#[test]
fn an_argument_buffer_lent_by_reference_is_reused_without_allocating() {
    let (rt, h) = load("datasets");
    let peek = rt.method(h, "bytes_peek").unwrap();
    // 64 MiB, larger than an arena: its memory is its own, allocated and zeroed once.
    let len = 64 << 20;
    let mut buf = rt.arg_buffer(len);
    // Written once: a buffer zeroed, refilled or replaced between calls would lose them.
    buf[len / 2] = 0xab;
    buf[len - 1] = 0xcd;
    let mut round = 0u8;
    let per_call = allocations_per_call(|| {
        round = round.wrapping_add(1);
        buf[0] = round;
        let out = rt.call_method(peek, &buf, &CallOptions::default()).unwrap();
        let seen: (u64, u8, u8, u8) = common::de(&out);
        assert_eq!(
            seen,
            (len as u64, round, 0xab, 0xcd),
            "each call reads the caller's latest write and the bytes it left alone"
        );
    });
    assert_eq!(per_call, 0.0);
}

#[test]
fn a_panic_is_isolated_and_the_next_call_runs() {
    let (rt, h) = load("basic");
    let boom = rt.method(h, "boom").unwrap();
    let add = rt.typed::<(u32, u32), u32>(h, "add").unwrap();
    let err = rt
        .call_method(boom, b"kaboom", &CallOptions::default())
        .unwrap_err();
    let Some(ModuleError::Panic(message)) = err.module_error() else {
        panic!("expected a panic, got {err}");
    };
    assert!(message.starts_with("kaboom"), "{message}");
    assert_eq!(add.call(&(2, 3)).unwrap(), 5);
}

#[test]
fn a_deadline_is_kept() {
    let (rt, h) = load("async_echo");
    let slow = rt.method(h, "slow_sync").unwrap();
    let given = Duration::from_millis(30);
    let err = rt
        .call_method(
            slow,
            &mp(&(300u64,)),
            &CallOptions::default().timeout(given),
        )
        .unwrap_err();
    let Some(ModuleError::Timeout(reported)) = err.module_error() else {
        panic!("expected a timeout, got {err}");
    };
    assert!(*reported <= given, "{reported:?}");
}

#[test]
fn a_full_module_refuses_the_next_call() {
    let config = RuntimeConfig::default().concurrency(1, Saturation::Reject);
    let (rt, holding) = runtime_with_holding(config);
    let h = rt
        .load(ModuleRef::from_path(module_copy(
            "hazards",
            "hazards_fast_path",
        )))
        .unwrap();
    let hold = rt.method(h, "hold").unwrap();
    let count = rt.method(h, "count").unwrap();
    let holder = {
        let rt = rt.clone();
        std::thread::spawn(move || {
            rt.call_method(hold, &mp(&(1000u64,)), &CallOptions::default())
                .map(drop)
        })
    };
    holding.recv_timeout(HANG).expect("the slot is held");
    let err = rt
        .call_method(count, b"", &CallOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::Saturated { limit: 1, .. }),
        "{err}"
    );
    holder.join().unwrap().unwrap();
    rt.call_method(count, b"", &CallOptions::default())
        .expect("the slot is back");
}

#[test]
fn backpressure_is_measured_when_asked() {
    let rt = Runtime::new(
        RuntimeConfig::default().concurrency(2, Saturation::Wait),
        memlink_runtime::resolver::LocalResolver,
    );
    // A copy of its own: `slow_sync`'s start counter is this test's alone.
    let h = rt
        .load(ModuleRef::from_path(module_copy(
            "async_echo",
            "async_echo_fast_path",
        )))
        .unwrap();
    let slow = rt.method(h, "slow_sync").unwrap();
    let started = rt.method(h, "slow_sync_started").unwrap();
    let hold = rt.method(h, "hold").unwrap();
    let holder = {
        let rt = rt.clone();
        std::thread::spawn(move || {
            rt.call_method(slow, &mp(&(1500u64,)), &CallOptions::default())
                .map(drop)
        })
    };
    let deadline = std::time::Instant::now() + HANG;
    while common::de::<u64>(
        &rt.call_method(started, b"", &CallOptions::default())
            .unwrap(),
    ) == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the holder never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The holder takes one of the two slots; this call the other.
    let out = rt
        .call_method(hold, &mp(&(0u64,)), &CallOptions::default())
        .unwrap();
    assert_eq!(common::de::<f32>(&out), 1.0);
    holder.join().unwrap().unwrap();
}

/// Keeps every record a module logs.
#[derive(Default)]
struct Kept(Mutex<Vec<(String, String, u64)>>);

impl LogSink for Kept {
    fn record(&self, event: &LogEvent<'_>) {
        self.0.lock().unwrap().push((
            event.method.to_owned(),
            event.message.to_owned(),
            event.trace_id,
        ));
    }
}

#[test]
fn logs_name_the_export_and_the_trace() {
    let kept = Arc::new(Kept::default());
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::INFO)
        .log_sink(kept.clone());
    let (rt, h) = load_all(config, &["basic"]);
    let chatty = rt.method(h[0], "chatty").unwrap();
    rt.call_method(chatty, &mp(&(1u32,)), &CallOptions::default().trace(42, 7))
        .unwrap();
    let records = kept.0.lock().unwrap();
    let messages: Vec<&str> = records.iter().map(|(_, m, _)| m.as_str()).collect();
    assert_eq!(messages, ["an error", "a warning", "some information"]);
    assert!(records
        .iter()
        .all(|(method, _, trace)| method == "chatty" && *trace == 42));
}

#[test]
fn every_call_is_counted_and_latency_is_sampled() {
    let (rt, h) = load("basic");
    let noop = rt.method(h, "noop").unwrap();
    let n = 32_000;
    for _ in 0..n {
        rt.call_method(noop, b"", &CallOptions::default()).unwrap();
    }
    let metrics = rt.metrics();
    let m = metrics
        .iter()
        .flat_map(|m| &m.methods)
        .find(|m| m.method == "noop")
        .unwrap();
    assert_eq!(m.calls, n, "every call counted");
    // One call in 32 is timed, on average, and stands for 32: the histogram's count is
    // a multiple of 32 near the calls made (about 1,000 timed, give or take a few dozen).
    let every = u64::from(RuntimeConfig::default().latency_sampling);
    assert_eq!(m.latency_count % every, 0);
    assert!(m.latency_count.abs_diff(n) <= n / 8, "{}", m.latency_count);
}

#[test]
fn the_soundness_checks_hold() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["hazards"]);
    let unit_ref = rt.typed::<(), (u64, u64, u64)>(h[0], "unit_ref").unwrap();
    let get_unit = rt.method(h[0], "get_unit").unwrap();
    let (offset, generation, _) = unit_ref.call(&()).unwrap();
    // A handle forged past the region's end is refused, not read.
    let forged = mp(&((offset + (1 << 40), generation, 0u64),));
    let err = rt
        .call_method(get_unit, &forged, &CallOptions::default())
        .unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Failed(m)) if m.contains("outside the region")),
        "{err}"
    );
}

#[test]
fn a_runtime_clone_shares_the_calls() {
    // The same method handle through a clone of the runtime: one registry, one count.
    let (rt, h) = load("basic");
    let noop = rt.method(h, "noop").unwrap();
    let clone: Runtime = rt.clone();
    clone
        .call_method(noop, b"", &CallOptions::default())
        .unwrap();
    rt.call_method(noop, b"", &CallOptions::default()).unwrap();
    let calls: u64 = rt
        .metrics()
        .iter()
        .flat_map(|m| &m.methods)
        .filter(|m| m.method == "noop")
        .map(|m| m.calls)
        .sum();
    assert_eq!(calls, 2);
}
