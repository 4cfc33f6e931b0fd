//! A thread that calls async exports across many loads of one module image keeps none of
//! the stopped runtimes alive. Alone in its test binary, so that no other test's files
//! are counted.

mod common;

use memlink_runtime::{CallOptions, ModuleRef, Runtime};

/// Files this process has open.
fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Each load of the module starts its tokio runtime, which holds files (its I/O
/// driver's), and each unload stops it. A thread that called an async export of every
/// load used to keep each stopped runtime's handle, and with it those files, for good.
#[test]
fn loads_and_unloads_leave_no_runtime_behind() {
    let path = common::module_copy("async_author", "async_author_restarts");
    let rt = Runtime::with_local_resolver();
    let cycle = || {
        let h = rt.load(ModuleRef::from_path(&path)).unwrap();
        let options = CallOptions::default().timeout(common::HANG);
        let out = rt.call_with(h, "over_socket", &[1], &options).unwrap();
        assert_eq!(out, [1]);
        rt.unload(h).unwrap();
    };
    cycle();
    let baseline = open_files();
    for _ in 0..50 {
        cycle();
    }
    let after = open_files();
    assert!(
        after <= baseline + 5,
        "50 loads kept {} files open",
        after.saturating_sub(baseline)
    );
}
