//! Async exports that use tokio's own APIs (tasks, blocking work, channels, locks,
//! sockets, timeouts, `select!`), called through the host: what the SDK's README
//! promises when it says async exports are supported.

mod common;

use std::time::Duration;

use common::mp;
use memlink_runtime::{CallOptions, ModuleError, ModuleRef, Runtime, RuntimeConfig};

fn load() -> (Runtime, memlink_runtime::ModuleHandle) {
    common::load("async_author")
}

/// Calls `method` with `args` and decodes its result, within [`in_time`].
fn call<R: serde::de::DeserializeOwned>(
    rt: &Runtime,
    h: memlink_runtime::ModuleHandle,
    method: &str,
    args: &impl serde::Serialize,
) -> Result<R, memlink_runtime::RuntimeError> {
    rt.call_with(h, method, &mp(args), &in_time())
        .map(|out| common::de(&out))
}

/// Every call here is given a deadline far away, so that one that hangs fails instead.
fn in_time() -> CallOptions {
    CallOptions::default().timeout(common::HANG)
}

#[test]
fn io_on_the_modules_runtime_works() {
    let (rt, h) = load();
    // A lone `Vec<u8>` argument and result are the call's raw bytes.
    let out = rt
        .call_with(h, "over_socket", &[1, 2, 3], &in_time())
        .unwrap();
    assert_eq!(out, [1, 2, 3]);
}

#[test]
fn tasks_blocking_work_timeouts_and_select_work() {
    let (rt, h) = load();
    let spawned: u64 = call(&rt, h, "spawned_double", &(21u64,)).unwrap();
    assert_eq!(spawned, 42);
    let blocking: u64 = call(&rt, h, "blocking_double", &(4u64,)).unwrap();
    assert_eq!(blocking, 8);
    let fired: bool = call(&rt, h, "timeout_fires", &(1u64,)).unwrap();
    assert!(fired);
    let first: u8 = call(&rt, h, "first_of_two", &()).unwrap();
    assert_eq!(first, 0);
    let yielded: u64 = call(&rt, h, "yields", &(1000u64,)).unwrap();
    assert_eq!(yielded, 1000);
    let not_send: u64 = call(&rt, h, "not_send", &(1u64,)).unwrap();
    assert_eq!(not_send, 2);
}

/// The SDK's `block_on` inside a task the module spawned (which runs on the module's
/// runtime thread, the one that drives every timer of the module) waits for its timer,
/// and the module's timers serve on after. Before, it blocked that thread: the timer it
/// waited for never fired, nor did any other of the module's until it was unloaded.
#[test]
fn block_on_inside_a_spawned_task_leaves_the_modules_timers_running() {
    let (rt, h) = load();
    for n in [1u64, 2, 3] {
        let doubled: u64 = call(&rt, h, "spawned_block_on", &(n,)).unwrap();
        assert_eq!(doubled, 2 * n);
    }
    let fired: bool = call(&rt, h, "timeout_fires", &(1u64,)).unwrap();
    assert!(fired);
}

/// An async export that only yields (`yield_now` in a loop that would outlast the
/// process) is cancelled at its deadline like one that waits, and the module serves on.
/// Before, a future that woke itself was polled again without the deadline being read,
/// and the call never returned.
#[test]
fn an_async_export_that_only_yields_is_cancelled_at_its_deadline() {
    let (rt, h) = load();
    let rt = std::sync::Arc::new(rt);
    let (done, outcome) = std::sync::mpsc::channel();
    let caller = std::sync::Arc::clone(&rt);
    std::thread::spawn(move || {
        let soon = CallOptions::default().timeout(Duration::from_millis(200));
        let r = caller.call_with(h, "yields", &mp(&(u64::MAX,)), &soon);
        let _ = done.send(r.map(|out| out.to_vec()));
    });
    let r = outcome
        .recv_timeout(common::HANG)
        .expect("a call that only yields ends at its deadline");
    assert!(
        matches!(
            r.as_ref().err().and_then(|e| e.module_error()),
            Some(ModuleError::Timeout(_))
        ),
        "{r:?}"
    );
    let yielded: u64 = call(&rt, h, "yields", &(10u64,)).unwrap();
    assert_eq!(yielded, 10);
}

/// A plain `fn` export that blocks on a tokio runtime of its own (as a blocking client
/// library does), called nested from an async export, with a deadline and without: the
/// async caller's thread is no tokio runtime's (a first form of a fix this stop did not
/// keep polled deadline calls inside tokio's `block_on`, and the callee panicked:
/// "Cannot start a runtime from within a runtime").
#[test]
fn a_nested_call_that_blocks_on_a_runtime_of_its_own_runs_under_a_deadline() {
    let (rt, h) = load();
    for options in [CallOptions::default(), in_time()] {
        let out = rt
            .call_with(h, "nested_own_runtime", b"async_author", &options)
            .unwrap();
        assert_eq!(common::de::<u64>(&out), 7);
    }
}

#[test]
fn a_panic_after_an_await_fails_that_call_only() {
    let (rt, h) = load();
    let err = rt
        .call_with(h, "panics_after_await", &mp(&()), &in_time())
        .unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Panic(m)) if m.contains("late panic")),
        "{err}"
    );
    let caught: bool = call(&rt, h, "spawned_panic_is_caught", &()).unwrap();
    assert!(caught, "a spawned task's panic reaches its join handle");
    let still: u64 = call(&rt, h, "spawned_double", &(1u64,)).unwrap();
    assert_eq!(still, 2, "the module keeps serving");
}

#[test]
fn a_task_started_by_one_call_serves_later_ones() {
    let (rt, h) = load();
    call::<()>(&rt, h, "start_worker", &()).unwrap();
    // From other threads too: the task runs on the module's runtime, not the caller's.
    let sums: Vec<u64> = std::thread::scope(|s| {
        (0..4)
            .map(|_| s.spawn(|| call::<u64>(&rt, h, "to_worker", &(1u64,))))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect()
    });
    let mut sums = sums;
    sums.sort_unstable();
    assert_eq!(sums.len(), 4);
    assert!(sums.windows(2).all(|w| w[0] < w[1]), "{sums:?}");
}

#[test]
fn a_lock_held_by_a_cancelled_call_is_released() {
    let (rt, h) = load();
    let short = CallOptions::default().timeout(Duration::from_millis(20));
    let err = rt
        .call_with(h, "hold_lock", &mp(&(10_000u64,)), &short)
        .unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Timeout(_))),
        "{err}"
    );
    // The cancelled future dropped its guard: the next holder gets the lock.
    let held: u64 = call(&rt, h, "hold_lock", &(0u64,)).unwrap();
    assert!(held >= 1);
}

#[test]
fn async_recursion_through_the_host_stops_at_the_depth_limit() {
    let rt = Runtime::new(
        RuntimeConfig::default().max_call_depth(4),
        memlink_runtime::resolver::LocalResolver,
    );
    let h = rt
        .load_as(
            ModuleRef::from_path(common::module_copy("async_author", "async_author_self")),
            "me",
        )
        .unwrap();
    let depth: u32 = call(&rt, h, "recurse", &("me", 2u32)).unwrap();
    assert_eq!(depth, 2);
    let err = rt
        .call_with(h, "recurse", &mp(&("me", 100u32)), &in_time())
        .unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::MaxCallDepthExceeded)),
        "{err}"
    );
}

/// A task the module spawned ends when the module is unloaded (its runtime stops), and
/// the image loaded again serves async exports on the threads that called it before.
#[test]
fn a_spawned_task_ends_with_the_module_and_a_second_load_serves() {
    let path = common::module_copy("async_author", "async_author_unloaded");
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(&path)).unwrap();
    call::<()>(&rt, h, "start_ticking", &()).unwrap();
    let ticks = |rt: &Runtime, h| call::<u64>(rt, h, "ticks", &()).unwrap();
    let start = std::time::Instant::now();
    while ticks(&rt, h) < 3 && start.elapsed() < common::HANG {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(ticks(&rt, h) >= 3, "the task never ticked");
    rt.unload(h).unwrap();
    let h = rt.load(ModuleRef::from_path(&path)).unwrap();
    let after_unload = ticks(&rt, h);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        ticks(&rt, h),
        after_unload,
        "the task stopped with its runtime"
    );
    let doubled: u64 = call(&rt, h, "spawned_double", &(3u64,)).unwrap();
    assert_eq!(doubled, 6);
    let out = rt.call_with(h, "over_socket", &[9], &in_time()).unwrap();
    assert_eq!(out, [9]);
}

/// A plain `fn` export is never in the module's runtime, even on a thread that has just
/// run an async export: `tokio::spawn` there fails as the README says, a panic, every
/// time. Before, a thread stayed in the runtime after its first async call, so the same
/// export worked or failed by which calls the thread had made.
#[test]
fn a_plain_export_is_outside_the_runtime_after_an_async_call_too() {
    let (rt, h) = load();
    let doubled: u64 = call(&rt, h, "spawned_double", &(21u64,)).unwrap();
    assert_eq!(doubled, 42);
    match rt.call_with(h, "spawns_from_sync", &mp(&()), &in_time()) {
        Err(memlink_runtime::RuntimeError::Call {
            error: ModuleError::Panic(message),
            ..
        }) => assert!(message.contains("no reactor running"), "{message}"),
        other => panic!("expected the spawn's panic, got {other:?}"),
    }
}
