//! Interceptors that panic, the result cache beside an open breaker, and whose breaker a
//! nested call's panic counts toward, through real modules.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{module_copy, mp};
use memlink_runtime::cache::CacheConfig;
use memlink_runtime::health::{BreakerConfig, BreakerState};
use memlink_runtime::intercept::{CallInfo, Interceptor};
use memlink_runtime::resolver::LocalResolver;
use memlink_runtime::{CallOptions, ModuleError, ModuleRef, Runtime, RuntimeConfig, RuntimeError};

/// Panics in `before` while armed.
#[derive(Debug, Default)]
struct Panicky(AtomicBool);

impl Interceptor for Panicky {
    fn before(&self, _call: &CallInfo<'_>, _args: &[u8]) -> Result<(), ModuleError> {
        if self.0.swap(false, Ordering::Relaxed) {
            panic!("an interceptor's bug");
        }
        Ok(())
    }
}

#[test]
fn a_panicking_interceptor_leaves_the_module_callable_and_unloadable() {
    let hook = Arc::new(Panicky(AtomicBool::new(true)));
    let rt = Runtime::new(
        RuntimeConfig::default().interceptor(hook.clone()),
        LocalResolver,
    );
    let h = rt
        .load_as(
            ModuleRef::from_path(module_copy("basic", "basic_hook_panics")),
            "basic_hook_panics",
        )
        .unwrap();
    let panicked = catch_unwind(AssertUnwindSafe(|| rt.call(h, "echo", b"hi")));
    assert!(panicked.is_err());
    assert_eq!(&*rt.call(h, "echo", b"hi").unwrap(), b"hi");
    // On a thread of its own, so that an unload waiting for good fails the test rather
    // than hanging it.
    let rt = Arc::new(rt);
    let (done, unloaded) = mpsc::channel();
    let unloading = Arc::clone(&rt);
    std::thread::spawn(move || done.send(unloading.unload(h).is_ok()).unwrap());
    let result = unloaded.recv_timeout(Duration::from_secs(30));
    assert_eq!(result, Ok(true), "the unload ended");
}

#[test]
fn a_pure_call_its_open_breaker_refuses_is_a_miss_of_the_cache() {
    let rt = Runtime::new(
        RuntimeConfig::default()
            .result_cache(CacheConfig::new(16, 1 << 20))
            .breaker(BreakerConfig::new(1, Duration::from_secs(3600))),
        LocalResolver,
    );
    let h = rt
        .load_as(
            ModuleRef::from_path(module_copy("greeter_v1", "greeter_cache_open")),
            "greeter_cache_open",
        )
        .unwrap();
    // A call that outlives its deadline: a timeout, which opens the breaker.
    let options = CallOptions::default().timeout(Duration::from_millis(10));
    let late = rt.call_with(h, "linger", &mp(&()), &options);
    assert!(
        matches!(
            late,
            Err(RuntimeError::Call {
                error: ModuleError::Timeout(_),
                ..
            })
        ),
        "{late:?}"
    );
    let refused = rt.call_typed::<_, u64>(h, "square", &(7u64,));
    assert!(
        matches!(
            refused,
            Err(RuntimeError::Call {
                error: ModuleError::ServiceUnavailable,
                ..
            })
        ),
        "{refused:?}"
    );
    let stats = rt.cache_stats().unwrap();
    assert_eq!(
        (stats.hits, stats.misses, stats.entries),
        (0, 1, 0),
        "looked up and not found, though it never ran"
    );
}

#[test]
fn a_callees_panic_passed_on_by_its_caller_opens_the_callees_breaker_only() {
    let (rt, h) = common::load_all(
        RuntimeConfig::default().breaker(BreakerConfig::new(1, Duration::from_secs(3600))),
        &["nested_calls", "basic"],
    );
    let relay =
        |method: &str, args: &[u8]| rt.call(h[0], "relay", &mp(&("basic", method, args.to_vec())));
    let passed_on = relay("boom", b"deep");
    assert!(
        matches!(
            &passed_on,
            Err(RuntimeError::Call { error: ModuleError::Panic(m), .. }) if m.starts_with("deep")
        ),
        "{passed_on:?}"
    );
    let state = |module: &str| {
        rt.metrics()
            .into_iter()
            .find(|m| m.module == module)
            .and_then(|m| m.breaker)
    };
    assert_eq!(state("basic"), Some(BreakerState::Open), "basic panicked");
    assert_eq!(
        state("nested_calls"),
        Some(BreakerState::Closed),
        "nested_calls returned basic's panic, and did not panic itself"
    );
    // Passed on twice: by nested_calls, then by a module relaying to it.
    let outer = rt
        .load_as(
            ModuleRef::from_path(module_copy("nested_calls", "relay_outer")),
            "relay_outer",
        )
        .unwrap();
    // A basic of its own, its breaker closed.
    rt.load_as(
        ModuleRef::from_path(module_copy("basic", "basic_again")),
        "basic_again",
    )
    .unwrap();
    let inner = mp(&("basic_again", "boom", b"again".to_vec()));
    let twice = rt.call(outer, "relay", &mp(&("nested_calls", "relay", inner)));
    assert!(
        matches!(
            &twice,
            Err(RuntimeError::Call { error: ModuleError::Panic(m), .. }) if m.starts_with("again")
        ),
        "{twice:?}"
    );
    assert_eq!(state("basic_again"), Some(BreakerState::Open));
    assert_eq!(state("relay_outer"), Some(BreakerState::Closed));
    assert_eq!(state("nested_calls"), Some(BreakerState::Closed));
}
