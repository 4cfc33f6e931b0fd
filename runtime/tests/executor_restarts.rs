//! A thread that calls async exports across many loads of a module (one image loaded
//! again, or a new image each reload) keeps none of the stopped runtimes alive. Each test
//! counts in a child process of its own, so that no other test's files are counted.

mod common;

use memlink_runtime::{CallOptions, ModuleRef, Runtime};

/// Files this process has open.
fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Runs `cycle` once, then `n` times more, and checks the `n` left no more than a few
/// files open (the margin is for the process's own, a log's, say): a stopped runtime
/// kept alive keeps three (`what` names the cycles in the message).
fn keeps_no_files(cycle: impl Fn(), n: usize, what: &str) {
    cycle();
    let baseline = open_files();
    for _ in 0..n {
        cycle();
    }
    let after = open_files();
    assert!(
        after <= baseline + 5,
        "{n} {what} kept {} files open",
        after.saturating_sub(baseline)
    );
}

/// Each load of the module starts its tokio runtime, which holds files (its I/O
/// driver's), and each unload stops it. A thread that called an async export of every
/// load used to keep each stopped runtime's handle, and with it those files, for good.
#[test]
fn loads_and_unloads_leave_no_runtime_behind() {
    common::in_child("loads_and_unloads_leave_no_runtime_behind", &[], || {
        let path = common::module_copy("async_author", "async_author_restarts");
        let rt = Runtime::with_local_resolver();
        let cycle = || {
            let h = rt.load(ModuleRef::from_path(&path)).unwrap();
            let options = CallOptions::default().timeout(common::HANG);
            let out = rt.call_with(h, "over_socket", &[1], &options).unwrap();
            assert_eq!(out, [1]);
            rt.unload(h).unwrap();
        };
        keeps_no_files(cycle, 50, "loads");
    });
}

/// This process's resident memory, in KiB (Linux).
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A thread that calls an async export and ends, once per load of the module (a thread
/// per request, across reloads): the threads' stays in each load's runtime go with them.
/// Before, a thread that ended in a runtime's context kept its handle, and with it the
/// stopped runtime's state, about 36 KB a load: 300 loads grew the process by 10 MB.
#[test]
fn threads_that_end_keep_no_stopped_runtime_alive() {
    common::in_child(
        "threads_that_end_keep_no_stopped_runtime_alive",
        &[],
        || {
            let path = common::module_copy("async_echo", "async_echo_threads");
            let rt = std::sync::Arc::new(Runtime::with_local_resolver());
            let args = rmp_serde::to_vec(&(1u64, vec![7u8])).unwrap();
            let cycle = || {
                let h = rt.load(ModuleRef::from_path(&path)).unwrap();
                let (caller, args) = (rt.clone(), args.clone());
                std::thread::spawn(move || {
                    let options = CallOptions::default().timeout(common::HANG);
                    caller.call_with(h, "echo_after", &args, &options).unwrap();
                })
                .join()
                .unwrap();
                rt.unload(h).unwrap();
            };
            for _ in 0..30 {
                cycle();
            }
            let before = resident_kib();
            for _ in 0..300 {
                cycle();
            }
            let grown = resident_kib().saturating_sub(before);
            assert!(
                grown < 4 * 1024,
                "300 loads grew the process by {grown} KiB"
            );
        },
    );
}

/// A thread that calls an async export of each version a reload puts in place: each
/// reload replaces the image, whose runtime stops, and which the thread never calls
/// again. Before, the thread kept the stopped runtime's handle for its life, and with it
/// three files (the I/O driver's epolls and eventfd) a reload: a host that reloaded an
/// async module about 340 times ran out of files, and every load after failed.
#[test]
fn reloads_leave_no_runtime_files_behind_on_the_calling_thread() {
    common::in_child(
        "reloads_leave_no_runtime_files_behind_on_the_calling_thread",
        &[],
        || {
            let source = common::module_path("async_echo");
            let path = common::module_copy_of(&source, "async_echo_reloads");
            let rt = Runtime::with_local_resolver();
            let h = rt.load(ModuleRef::from_path(&path)).unwrap();
            let args = rmp_serde::to_vec(&(1u64, vec![7u8])).unwrap();
            let options = CallOptions::default().timeout(common::HANG);
            let cycle = || {
                // A new file at the path: the reload loads it as an image of its own.
                common::module_copy_of(&source, "async_echo_reloads");
                rt.reload(h, ModuleRef::from_path(&path)).unwrap();
                rt.call_with(h, "echo_after", &args, &options).unwrap();
            };
            rt.call_with(h, "echo_after", &args, &options).unwrap();
            keeps_no_files(cycle, 40, "reloads");
            rt.unload(h).unwrap();
        },
    );
}
