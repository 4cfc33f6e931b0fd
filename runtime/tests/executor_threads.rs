//! A module's executor starts at init and stops at shutdown, leaving no thread behind.
//! Alone in its test binary, so that no other test's threads are counted.

mod common;

use std::time::{Duration, Instant};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn load_call_unload_leaves_no_threads() {
    let path = common::module_path("async_echo");
    let baseline = threads();
    for _ in 0..3 {
        let rt = memlink_runtime::Runtime::with_local_resolver();
        let h = rt
            .load(memlink_runtime::ModuleRef::from_path(&path))
            .unwrap();
        let out: Vec<u8> = rt.call_typed(h, "echo_after", &(1u64, vec![1u8])).unwrap();
        assert_eq!(out, [1]);
        assert!(threads() > baseline, "the executor's worker is running");
        rt.unload(h).unwrap();
        let start = Instant::now();
        // Bounded only so that a thread that never ends fails the test instead of
        // hanging it.
        while threads() > baseline && start.elapsed() < common::HANG {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            threads(),
            baseline,
            "the executor's threads are gone after unload"
        );
    }
}
