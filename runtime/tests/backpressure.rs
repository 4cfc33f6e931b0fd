//! Backpressure values rise with load; saturation rejects or waits, as configured.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{load_all, mp, runtime_with_holding, HANG};
use memlink_runtime::{
    CallOptions, ModuleError, ModuleRef, RuntimeConfig, RuntimeError, Saturation,
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

/// A runtime with `config` and the `hazards` module (a private copy named `copy`), and
/// `n` calls started that each hold a slot for `ms`, running when this returns.
fn occupied(
    config: RuntimeConfig,
    copy: &str,
    n: usize,
    ms: u64,
) -> (
    memlink_runtime::Runtime,
    memlink_runtime::ModuleHandle,
    Vec<std::thread::JoinHandle<()>>,
) {
    let (rt, holding) = runtime_with_holding(config);
    let h = rt
        .load(ModuleRef::from_path(common::module_copy("hazards", copy)))
        .unwrap();
    let threads = (0..n)
        .map(|_| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                rt.call(h, "hold", &mp(&(ms,))).unwrap();
            })
        })
        .collect();
    for _ in 0..n {
        holding.recv_timeout(HANG).expect("a holding call started");
    }
    (rt, h, threads)
}

#[test]
fn reject_refuses_at_once_when_saturated() {
    let config = RuntimeConfig::default().concurrency(2, Saturation::Reject);
    let (rt, h, busy) = occupied(config, "hazards_reject", 2, 1000);
    let err = rt.call(h, "count", b"").unwrap_err();
    assert!(
        matches!(err, RuntimeError::Saturated { limit: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("saturated"), "{err}");
    assert!(
        busy.iter().all(|t| !t.is_finished()),
        "refused while both slots were held, not after waiting for one"
    );
    // The refused call is counted: a call, failed `saturated`.
    let count = common::figures_of(&rt, "count");
    assert_eq!((count.calls, count.errors_of("saturated")), (1, 1));
    let text = rt.prometheus();
    assert!(text.contains("status=\"saturated\"} 1"), "{text}");
    busy.into_iter().for_each(|t| t.join().unwrap());
    let ok: u64 = rt.call_typed(h, "count", &()).unwrap();
    assert!(ok >= 1, "capacity comes back");
}

#[test]
fn wait_queues_until_a_slot_frees_or_the_deadline_passes() {
    let config = RuntimeConfig::default().concurrency(1, Saturation::Wait);
    let (rt, h, busy) = occupied(config, "hazards_queue", 1, 300);
    let short = CallOptions::default().timeout(Duration::from_millis(50));
    let err = rt.call_with(h, "count", b"", &short).unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Timeout(_))),
        "{err}"
    );
    // The holder still holds the only slot (its 300 ms outlast the 50 ms waited), so the
    // next call can only run once the holder gives it back. (Whether the holder's thread
    // has returned by the time that call does is a race: the slot is given back before
    // the holder's call returns to its thread.)
    assert!(
        busy.iter().all(|t| !t.is_finished()),
        "the holder's slot was still taken"
    );
    let long = CallOptions::default().timeout(HANG);
    rt.call_with(h, "count", b"", &long).unwrap();
    busy.into_iter().for_each(|t| t.join().unwrap());
}

/// Four threads' async calls overlap: a call sees the others running (its backpressure
/// is above zero), which one-at-a-time calls never would.
#[test]
fn async_exports_run_concurrently() {
    let config = RuntimeConfig::default().concurrency(4, Saturation::Wait);
    let (rt, h) = load_all(config, &["async_echo"]);
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (rt, barrier, h) = (rt.clone(), Arc::clone(&barrier), h[0]);
            std::thread::spawn(move || {
                barrier.wait();
                rt.call_typed::<_, f32>(h, "hold", &(200u64,)).unwrap()
            })
        })
        .collect();
    let seen: Vec<f32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        seen.iter().any(|&b| b > 0.0),
        "no call saw another running: {seen:?}"
    );
}

/// The settings' fields are public: a limit of 0 calls at once set there (no call could
/// pass it; with `Wait`, every call waited for good) is taken as 1, as the builder makes
/// it.
#[test]
fn a_limit_of_zero_calls_set_in_the_field_is_one() {
    let mut config = RuntimeConfig::default();
    config.max_concurrency = 0;
    config.saturation = Saturation::Wait;
    config.latency_sampling = 0;
    let (rt, h) = load_all(config, &["basic"]);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let sum: Result<u32, _> = rt.call_typed(h[0], "add", &(2u32, 3u32));
        tx.send(sum.map_err(|e| e.to_string())).unwrap();
    });
    let sum = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the call ran instead of waiting for a slot that never comes");
    assert_eq!(sum, Ok(5));
}
