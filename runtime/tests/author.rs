//! What a careless module author does with the SDK's public API, as its docs describe
//! it, through the real runtime and the `hazards` fixture: the host stays up, answers,
//! and its figures stay valid.

mod common;

use std::sync::Arc;

use common::load_all;
use memlink_runtime::{MetricValue, RuntimeConfig};

/// A thread-local guard of the module whose `Drop` records a metric by name, on a
/// thread of the host's that ran a call and ends. The SDK's per-thread cache of metric
/// names was made after the guard, so its destructor runs first; the guard's recording
/// then asked that cache with `LocalKey::with`, which panics once it is destroyed, and a
/// panic in a thread-local destructor aborts the process: the host died with its
/// thread. Now the recording goes to the module's registry and counts.
#[test]
fn a_metric_recorded_by_a_thread_local_destructor_counts_and_the_host_lives() {
    // In a child process: before, the abort took the whole test binary down.
    common::in_child(
        "a_metric_recorded_by_a_thread_local_destructor_counts_and_the_host_lives",
        &[],
        || {
            let (rt, h) = load_all(RuntimeConfig::default(), &["hazards"]);
            let rt = Arc::new(rt);
            for _ in 0..2 {
                let (rt, h) = (rt.clone(), h[0]);
                std::thread::spawn(move || {
                    rt.call(h, "count_thread_exits", b"thread_exits_total")
                        .unwrap();
                })
                .join()
                .expect("the call's thread ends cleanly");
            }
            let metrics = rt.metrics();
            let custom = &metrics
                .iter()
                .find(|m| m.module == "hazards")
                .unwrap()
                .custom;
            let exits = custom
                .iter()
                .find(|(name, _)| name == "thread_exits_total")
                .map(|(_, v)| v.clone());
            assert_eq!(exits, Some(MetricValue::Counter(2)), "{custom:?}");
            // The host keeps serving.
            rt.call(h[0], "count_thread_exits", b"again_total").unwrap();
        },
    );
}
