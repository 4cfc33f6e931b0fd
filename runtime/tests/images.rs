#![cfg(target_os = "linux")] // the C library's thread-local keys, through `libc`
//! A process that has all but used up the C library's thread-local keys (as a host that
//! reloads all day does: each module image keeps its keys for good) is refused a load,
//! saying why, where before a module's thread aborted the whole process ("out of TLS
//! keys"). A file of its own: the test takes nearly every key of its process, which
//! would starve the threads of tests running beside it.

mod common;

use common::{module_path, mp};
use memlink_runtime::{ModuleRef, Runtime, RuntimeError};

#[test]
fn a_load_with_too_few_thread_local_keys_left_is_refused_saying_why() {
    let runtime = Runtime::with_local_resolver();
    // The module is loaded once first, so that its image, and the keys it takes as its
    // threads start, are the process's before the rest are taken.
    let first = runtime
        .load(ModuleRef::from_path(module_path("async_echo")))
        .unwrap();
    let mut held = Vec::new();
    loop {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: a valid place for the key; no destructor.
        if unsafe { libc::pthread_key_create(&raw mut key, None) } != 0 {
            break;
        }
        held.push(key);
    }
    // Four left: fewer than a load keeps free.
    for key in held.drain(..4) {
        // SAFETY: made above, not deleted yet.
        unsafe { libc::pthread_key_delete(key) };
    }
    let refused = runtime.reload(first, ModuleRef::from_path(module_path("async_echo")));
    for key in held {
        // SAFETY: made above, not deleted yet.
        unsafe { libc::pthread_key_delete(key) };
    }
    match refused {
        Err(RuntimeError::NoRoomForImage { reason, .. }) => {
            // Four were left; the reload's own work may have taken one before it looked.
            assert!(
                reason.contains("thread-local keys left, fewer than the 16 a load keeps free"),
                "{reason}"
            )
        }
        other => panic!("not refused for its keys: {other:?}"),
    }
    // The version loaded serves on, and with the keys back a reload maps a new image.
    let echoed = runtime
        .call(first, "echo_after", &mp(&(0u64, b"still".to_vec())))
        .unwrap();
    assert_eq!(&*echoed, b"still");
    runtime
        .reload(first, ModuleRef::from_path(module_path("async_echo")))
        .unwrap();
}
