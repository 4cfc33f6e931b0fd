//! A runtime in a child forked from the process that made it: refused, saying so, and
//! never waited on; the child's own runtime loads and calls what its parent had loaded,
//! an async export too.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::module_path;
use memlink_runtime::watch::WatchOptions;
use memlink_runtime::{CallOptions, ModuleHandle, ModuleRef, Runtime, RuntimeError};

const ROLE: &str = "MEMLINK_TEST_FORK_ROLE";

/// The parent loads `async_echo` and `basic`, watches a directory, and forks while one of
/// its threads is inside a call. In the child the inherited runtime refuses a call, an
/// unload (which waited for good on the call its parent's thread was making) and a load;
/// the inherited watch drops (it panicked joining a thread the child never had); and a
/// runtime of the child's own loads `async_echo` and runs an async export (the image the
/// loader inherited has a tokio runtime without its thread: the call timed out).
#[test]
fn a_forked_child_refuses_the_inherited_runtime_and_serves_with_its_own() {
    if std::env::var_os(ROLE).is_some() {
        return forking();
    }
    // Built here, where the harness's threads may build them: the run below forks.
    let _ = (module_path("async_echo"), module_path("basic"));
    // A process of its own, started for it: a fork from the harness's many threads could
    // inherit a lock another test's thread held.
    let name = "a_forked_child_refuses_the_inherited_runtime_and_serves_with_its_own";
    let status = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, "fork")
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
}

fn load(runtime: &Runtime, name: &str) -> ModuleHandle {
    runtime
        .load(ModuleRef::from_path(module_path(name)))
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

fn echo_after(runtime: &Runtime, handle: ModuleHandle) -> Result<Vec<u8>, RuntimeError> {
    let options = CallOptions::default().timeout(Duration::from_secs(10));
    runtime
        .typed::<(u64, Vec<u8>), Vec<u8>>(handle, "echo_after")?
        .call_with(&(5, b"hi".to_vec()), &options)
}

fn forking() {
    let runtime = Runtime::with_local_resolver();
    let slow = load(&runtime, "async_echo");
    let basic = load(&runtime, "basic");
    assert_eq!(echo_after(&runtime, slow).unwrap(), b"hi");
    let dir = common::scratch("fork-watch");
    let watch = runtime.watch(&dir, WatchOptions::default()).unwrap();
    let started: u64 = runtime.call_typed(slow, "slow_sync_started", &()).unwrap();
    let busy = {
        let runtime = runtime.clone();
        std::thread::spawn(move || runtime.call_typed::<_, u64>(slow, "slow_sync", &(1500u64,)))
    };
    let until = Instant::now() + Duration::from_secs(30);
    while runtime
        .call_typed::<_, u64>(slow, "slow_sync_started", &())
        .unwrap()
        == started
    {
        assert!(Instant::now() < until, "the slow call never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let parent = std::process::id();
    // SAFETY: the child runs only the checks below (what a forked child of this test may
    // do is what it tests), and ends with `_exit`, running no destructor of the parent's.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // A check that waits for good is ended by the alarm, which fails the test.
        // SAFETY: `alarm` only sets the process's timer.
        unsafe { libc::alarm(60) };
        let passed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            in_the_child(&runtime, parent, slow, basic, watch)
        }));
        // SAFETY: ends the child at once, as a forked child should.
        unsafe { libc::_exit(i32::from(passed.is_err())) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above, into a local.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child failed (wait status {status}: a signal {} is the alarm of a check that \
         waited)",
        libc::SIGALRM
    );
    // The parent's runtime serves on.
    assert_eq!(busy.join().unwrap().unwrap(), 1500);
    assert_eq!(echo_after(&runtime, slow).unwrap(), b"hi");
    runtime.unload(slow).unwrap();
}

fn in_the_child(
    runtime: &Runtime,
    parent: u32,
    slow: ModuleHandle,
    basic: ModuleHandle,
    watch: memlink_runtime::watch::DirectoryWatch,
) {
    let forked = |result: Result<(), RuntimeError>, what: &str| match result {
        Err(e @ RuntimeError::Forked { made_in }) => {
            assert_eq!(made_in, parent, "{what}: {e}");
            let text = e.to_string();
            assert!(
                text.contains("forked") && text.contains("make a `Runtime` of the child's own"),
                "{what}: {text}"
            );
        }
        other => panic!("{what}: expected Forked, got {other:?}"),
    };
    forked(runtime.call(basic, "noop", &[]).map(drop), "call");
    forked(runtime.unload(slow), "unload");
    forked(
        runtime
            .load(ModuleRef::from_path(module_path("basic")))
            .map(drop),
        "load",
    );
    forked(runtime.handle_of("basic").map(drop), "handle_of");
    forked(runtime.health(basic).map(drop), "health");
    forked(runtime.backpressure(basic).map(drop), "backpressure");
    forked(
        runtime
            .reload(basic, ModuleRef::from_path(module_path("basic")))
            .map(drop),
        "reload",
    );
    forked(
        runtime
            .watch(common::scratch("fork-watch-child"), WatchOptions::default())
            .map(drop),
        "watch",
    );
    assert!(!runtime.is_loaded(basic));
    // The panic expected is not printed.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.metrics()));
    std::panic::set_hook(hook);
    let panicked = panicked.unwrap_err();
    let said = panicked
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(said.contains("forked"), "{said}");
    drop(watch);

    let own = Runtime::with_local_resolver();
    let fresh = load(&own, "async_echo");
    assert_eq!(echo_after(&own, fresh).unwrap(), b"hi");
    own.unload(fresh).unwrap();
}
