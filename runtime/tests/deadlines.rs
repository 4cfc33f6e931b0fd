//! Deadlines reach the module, cancel async exports promptly and stop late sync ones.

mod common;

use std::time::{Duration, Instant};

use common::{load_all, mp};
use memlink_runtime::{CallOptions, ModuleError, ModuleRuntime, RuntimeConfig};

fn timeout_of(r: Result<memlink_runtime::CallOutput, memlink_runtime::RuntimeError>) -> Duration {
    match r.map_err(|e| e.module_error().cloned()) {
        Err(Some(ModuleError::Timeout(d))) => d,
        other => panic!("expected a timeout, got {:?}", other.map(|o| o.to_vec())),
    }
}

#[test]
fn an_async_export_is_cancelled_at_its_deadline() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["async_echo"]);
    for _ in 0..5 {
        let start = Instant::now();
        let options = CallOptions::default().timeout(Duration::from_millis(50));
        let given =
            timeout_of(rt.call_with(h[0], "echo_after", &mp(&(10_000u64, [1u8])), &options));
        let took = start.elapsed();
        assert!(
            given <= Duration::from_millis(50) && given > Duration::from_millis(40),
            "{given:?}"
        );
        assert!(
            took >= Duration::from_millis(50),
            "not before the deadline: {took:?}"
        );
        assert!(
            took < Duration::from_millis(90),
            "within a few ms of it: {took:?}"
        );
    }
    let out = rt.call(h[0], "echo_after", &mp(&(1u64, [7u8]))).unwrap();
    assert_eq!(out, [7], "the module keeps serving (a raw result)");
}

#[test]
fn a_sync_export_past_its_deadline_is_not_started() {
    // A private copy: other tests in this binary start `slow_sync` in the shared image.
    let rt = memlink_runtime::Runtime::with_local_resolver();
    let copy = common::module_copy("async_echo", "async_echo_not_started");
    let h = [rt
        .load(memlink_runtime::ModuleRef::from_path(copy))
        .unwrap()];
    let before: u64 = rt.call_typed(h[0], "slow_sync_started", &()).unwrap();
    let past = CallOptions::default().deadline(Instant::now() - Duration::from_millis(1));
    assert_eq!(
        timeout_of(rt.call_with(h[0], "slow_sync", &mp(&(1u64,)), &past)),
        Duration::ZERO
    );
    let after: u64 = rt.call_typed(h[0], "slow_sync_started", &()).unwrap();
    assert_eq!(after, before, "the export never ran");
}

#[test]
fn a_sync_export_that_finishes_late_reports_timeout() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["async_echo"]);
    let options = CallOptions::default().timeout(Duration::from_millis(30));
    let start = Instant::now();
    timeout_of(rt.call_with(h[0], "slow_sync", &mp(&(100u64,)), &options));
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "a sync export cannot be interrupted"
    );
    let ok: u64 = rt.call_typed(h[0], "slow_sync", &(1u64,)).unwrap();
    assert_eq!(ok, 1);
}

#[test]
fn the_runtime_default_timeout_applies_when_a_call_sets_none() {
    let config = RuntimeConfig::default().default_timeout(Duration::from_millis(40));
    let (rt, h) = load_all(config, &["async_echo"]);
    let left: Option<u64> = rt.call_typed(h[0], "time_left", &()).unwrap();
    assert!(left.is_some_and(|ms| ms <= 40), "{left:?}");
    let start = Instant::now();
    timeout_of(rt.call(h[0], "echo_after", &mp(&(10_000u64, [0u8]))));
    assert!(start.elapsed() < Duration::from_millis(500));
}
