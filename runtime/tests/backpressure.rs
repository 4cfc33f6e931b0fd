//! Backpressure values rise with load; saturation rejects or waits, as configured.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{load_all, mp};
use memlink_runtime::{
    CallOptions, ModuleError, ModuleRuntime, RuntimeConfig, RuntimeError, Saturation,
};

#[test]
fn backpressure_rises_with_calls_in_flight() {
    let config = RuntimeConfig::default().concurrency(4, Saturation::Wait);
    let (rt, h) = load_all(config, &["async_echo"]);
    let alone: f32 = rt.call_typed(h[0], "hold", &(0u64,)).unwrap();
    assert_eq!(alone, 0.0, "a lone call sees an idle module");
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            let (rt, barrier, h) = (rt.clone(), Arc::clone(&barrier), h[0]);
            std::thread::spawn(move || {
                barrier.wait();
                // Staggered starts, each holding its slot long enough to overlap the rest.
                std::thread::sleep(Duration::from_millis(30 * i));
                rt.call_typed::<_, f32>(h, "hold", &(400u64,)).unwrap()
            })
        })
        .collect();
    let mut seen: Vec<f32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    seen.sort_by(f32::total_cmp);
    let expected = [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0];
    for (got, want) in seen.iter().zip(expected) {
        assert!((got - want).abs() < 1e-6, "{seen:?}");
    }
}

/// Starts `n` calls that each hold a slot for `ms`, and waits until they are running.
fn occupy(
    rt: &memlink_runtime::Runtime,
    h: memlink_runtime::ModuleHandle,
    n: usize,
    ms: u64,
) -> Vec<std::thread::JoinHandle<()>> {
    let threads = (0..n)
        .map(|_| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                rt.call(h, "hold", &mp(&(ms,))).unwrap();
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    threads
}

#[test]
fn reject_refuses_at_once_when_saturated() {
    let config = RuntimeConfig::default().concurrency(2, Saturation::Reject);
    let (rt, h) = load_all(config, &["async_echo"]);
    let busy = occupy(&rt, h[0], 2, 300);
    let start = Instant::now();
    let err = rt.call(h[0], "hold", &mp(&(0u64,))).unwrap_err();
    assert!(
        matches!(err, RuntimeError::Saturated { limit: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("saturated"), "{err}");
    assert!(
        start.elapsed() < Duration::from_millis(50),
        "refused at once"
    );
    busy.into_iter().for_each(|t| t.join().unwrap());
    let ok: f32 = rt.call_typed(h[0], "hold", &(0u64,)).unwrap();
    assert_eq!(ok, 0.0, "capacity comes back");
}

#[test]
fn wait_queues_until_a_slot_frees_or_the_deadline_passes() {
    let config = RuntimeConfig::default().concurrency(1, Saturation::Wait);
    let (rt, h) = load_all(config, &["async_echo"]);
    let busy = occupy(&rt, h[0], 1, 300);
    let start = Instant::now();
    let short = CallOptions::default().timeout(Duration::from_millis(50));
    let err = rt
        .call_with(h[0], "hold", &mp(&(0u64,)), &short)
        .unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Timeout(_))),
        "{err}"
    );
    let long = CallOptions::default().timeout(Duration::from_secs(5));
    rt.call_with(h[0], "hold", &mp(&(0u64,)), &long).unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "it waited for the slot: {waited:?}"
    );
    busy.into_iter().for_each(|t| t.join().unwrap());
}

#[test]
fn async_exports_run_concurrently() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["async_echo"]);
    let start = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let rt = rt.clone();
            let h = h[0];
            std::thread::spawn(move || {
                for i in 0..25u8 {
                    let out: Vec<u8> = rt.call_typed(h, "echo_after", &(10u64, vec![i])).unwrap();
                    assert_eq!(out, [i]);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let took = start.elapsed();
    // 100 calls of 10 ms: 1 s one after another; 4 threads at once take about 250 ms.
    assert!(took < Duration::from_millis(600), "{took:?}");
}
