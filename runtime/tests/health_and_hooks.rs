//! Circuit breakers, health checks and interceptors, through real modules.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{module_copy, module_path, mp};
use memlink_runtime::cache::CacheConfig;
use memlink_runtime::health::{BreakerConfig, BreakerState, Health};
use memlink_runtime::intercept::{CallInfo, Failed, Interceptor, Outcome};
use memlink_runtime::resolver::LocalResolver;
use memlink_runtime::{ModuleError, ModuleRef, Runtime, RuntimeConfig, RuntimeError};

fn module_error(result: Result<memlink_runtime::CallOutput, RuntimeError>) -> ModuleError {
    match result {
        Err(RuntimeError::Call { error, .. }) => error,
        other => panic!("expected a module error, got {other:?}"),
    }
}

fn breaker_of(rt: &Runtime, module: &str) -> (Option<BreakerState>, u64) {
    let m = rt
        .metrics()
        .into_iter()
        .find(|m| m.module == module)
        .unwrap();
    (m.breaker, m.breaker_opened)
}

#[test]
fn the_breaker_opens_after_a_run_of_panics_and_closes_after_a_good_trial() {
    let cool_down = Duration::from_millis(100);
    let rt = Runtime::new(
        RuntimeConfig::default().breaker(BreakerConfig::new(3, cool_down)),
        LocalResolver,
    );
    let h = rt
        .load_as(
            ModuleRef::from_path(module_copy("basic", "basic_breaker")),
            "basic_breaker",
        )
        .unwrap();
    // An ordinary error is the module working: it never opens the breaker.
    for _ in 0..5 {
        let e = module_error(rt.call(h, "fail", b"quota"));
        assert_eq!(e, ModuleError::QuotaExceeded);
    }
    for _ in 0..3 {
        assert!(matches!(
            module_error(rt.call(h, "boom", b"x")),
            ModuleError::Panic(_)
        ));
    }
    assert_eq!(
        breaker_of(&rt, "basic_breaker"),
        (Some(BreakerState::Open), 1)
    );
    // Open: calls fail fast, without reaching the module (no argument byte went in),
    // and are counted: a call, failed `service_unavailable`.
    let before = echo_figures(&rt);
    assert_eq!(
        module_error(rt.call(h, "echo", b"hi")),
        ModuleError::ServiceUnavailable
    );
    let after = echo_figures(&rt);
    assert_eq!(after.bytes_in, before.bytes_in, "the module was not called");
    assert_eq!(
        (after.calls, after.errors_of("service_unavailable")),
        (
            before.calls + 1,
            before.errors_of("service_unavailable") + 1
        ),
        "the refused call is counted"
    );
    assert!(matches!(rt.health(h).unwrap(), Health::Failing { .. }));
    let text = rt.prometheus();
    assert!(
        text.contains("memlink_breaker_state{module=\"basic_breaker\"} 1"),
        "{text}"
    );
    common::promtool::promtool_accepts(&text);

    // After the cool-down the module is live (not failing), so that a host that sends
    // calls only to modules that are not failing sends the trial; one trial call: it
    // goes well, the breaker closes.
    std::thread::sleep(cool_down + Duration::from_millis(20));
    assert!(
        matches!(rt.health(h).unwrap(), Health::Live { reason } if reason.contains("trial")),
        "{:?}",
        rt.health(h)
    );
    assert_eq!(&*rt.call(h, "echo", b"hi").unwrap(), b"hi");
    assert_eq!(
        breaker_of(&rt, "basic_breaker"),
        (Some(BreakerState::Closed), 1)
    );
    assert_eq!(rt.health(h).unwrap(), Health::Ready);

    // Open again, and a trial that panics opens it for another cool-down.
    for _ in 0..3 {
        let _ = rt.call(h, "boom", b"x");
    }
    std::thread::sleep(cool_down + Duration::from_millis(20));
    assert!(matches!(
        module_error(rt.call(h, "boom", b"x")),
        ModuleError::Panic(_)
    ));
    assert_eq!(
        breaker_of(&rt, "basic_breaker"),
        (Some(BreakerState::Open), 3)
    );
    assert_eq!(
        module_error(rt.call(h, "echo", b"hi")),
        ModuleError::ServiceUnavailable
    );
    // A reload starts the new version with a closed breaker; the count of times it
    // opened runs on, as the calls' counts do (it went back to 0).
    let calls = echo_figures(&rt).calls;
    rt.reload(
        h,
        ModuleRef::from_path(module_copy("basic", "basic_breaker")),
    )
    .unwrap();
    assert_eq!(
        breaker_of(&rt, "basic_breaker"),
        (Some(BreakerState::Closed), 3)
    );
    assert_eq!(&*rt.call(h, "echo", b"hi").unwrap(), b"hi");
    assert_eq!(echo_figures(&rt).calls, calls + 1);
}

fn echo_figures(rt: &Runtime) -> memlink_runtime::MethodMetrics {
    common::figures_of(rt, "echo")
}

#[test]
fn timeouts_count_toward_the_breaker_too() {
    let rt = Runtime::new(
        RuntimeConfig::default().breaker(BreakerConfig::new(2, Duration::from_secs(3600))),
        LocalResolver,
    );
    let h = rt
        .load(ModuleRef::from_path(module_path("async_echo")))
        .unwrap();
    for _ in 0..2 {
        let options = memlink_runtime::CallOptions::default().timeout(Duration::from_millis(5));
        let slow = rt.call_with(h, "echo_after", &mp(&(10_000u64, [1u8])), &options);
        let e = module_error(slow);
        assert!(matches!(e, ModuleError::Timeout(_)), "{e}");
    }
    assert_eq!(breaker_of(&rt, "async_echo").0, Some(BreakerState::Open));
}

#[test]
fn calls_refused_for_their_deadline_before_they_start_do_not_count() {
    let rt = Runtime::new(
        RuntimeConfig::default().breaker(BreakerConfig::new(1, Duration::from_secs(3600))),
        LocalResolver,
    );
    let h = rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    let past = memlink_runtime::CallOptions::default().deadline(std::time::Instant::now());
    for _ in 0..3 {
        let e = module_error(rt.call_with(h, "echo", b"x", &past));
        assert!(matches!(e, ModuleError::Timeout(_)), "{e}");
    }
    assert_eq!(
        breaker_of(&rt, "basic").0,
        Some(BreakerState::Closed),
        "the module never saw those calls"
    );
}

#[test]
fn health_reports_what_the_module_says() {
    let rt = Runtime::with_local_resolver();
    let greeter = rt
        .load(ModuleRef::from_path(module_path("greeter_v1")))
        .unwrap();
    assert_eq!(rt.health(greeter).unwrap(), Health::Ready);
    rt.call(greeter, "set_ready", &mp(&(false,))).unwrap();
    match rt.health(greeter).unwrap() {
        Health::Live { reason } => assert!(reason.contains("told it is not ready"), "{reason}"),
        other => panic!("{other:?}"),
    }
    rt.call(greeter, "set_ready", &mp(&(true,))).unwrap();
    assert_eq!(rt.health(greeter).unwrap(), Health::Ready);
    // A module without a health check is ready while it is loaded.
    let basic = rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    assert_eq!(rt.health(basic).unwrap(), Health::Ready);
    rt.unload(basic).unwrap();
    assert!(matches!(
        rt.health(basic),
        Err(RuntimeError::UnknownHandle(_))
    ));
}

/// A health check whose module is unloaded while it is asked (here between its
/// interceptor's `before`, which waits until the module is gone, and the slot the check
/// would take) says the handle is unknown, as a check after the unload does. Before, the
/// refusal was taken for the module's answer: `Live`, "no loaded module with handle".
#[test]
fn a_health_check_whose_module_is_unloaded_meanwhile_says_the_handle_is_unknown() {
    use std::sync::{mpsc, OnceLock};

    #[derive(Debug)]
    struct UnloadedMeanwhile {
        target: OnceLock<(Runtime, memlink_runtime::ModuleHandle)>,
        asked: Mutex<mpsc::Sender<()>>,
    }
    impl Interceptor for UnloadedMeanwhile {
        fn before(&self, call: &CallInfo<'_>, _: &[u8]) -> Result<(), ModuleError> {
            if call.method == memlink_runtime::health::HEALTH_CHECK {
                let (rt, h) = self.target.get().expect("set once loaded");
                self.asked.lock().unwrap().send(()).unwrap();
                while rt.is_loaded(*h) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Ok(())
        }
    }
    let (asked, is_asked) = mpsc::channel();
    let hook = Arc::new(UnloadedMeanwhile {
        target: OnceLock::new(),
        asked: Mutex::new(asked),
    });
    let rt = Runtime::new(
        RuntimeConfig::default().interceptor(hook.clone()),
        LocalResolver,
    );
    let h = rt
        .load(ModuleRef::from_path(module_path("greeter_v1")))
        .unwrap();
    hook.target.set((rt.clone(), h)).unwrap();
    let checking = {
        let rt = rt.clone();
        std::thread::spawn(move || rt.health(h))
    };
    is_asked.recv().unwrap();
    rt.unload(h).unwrap();
    let health = checking.join().unwrap();
    assert!(
        matches!(health, Err(RuntimeError::UnknownHandle(_))),
        "{health:?}"
    );
}

/// What an interceptor saw of one call.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    module: String,
    method: String,
    depth: u32,
    trace_id: u64,
    args_len: usize,
    outcome: Option<Result<Vec<u8>, String>>,
}

/// Records every call, and refuses methods named `admin_*`... of which `basic` has none,
/// so it refuses `ping` instead.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl Interceptor for Recorder {
    fn before(&self, call: &CallInfo<'_>, args: &[u8]) -> Result<(), ModuleError> {
        self.0.lock().unwrap().push(Seen {
            module: call.module.to_owned(),
            method: call.method.to_owned(),
            depth: call.depth,
            trace_id: call.trace_id,
            args_len: args.len(),
            outcome: None,
        });
        if call.method == "ping" {
            return Err(ModuleError::Failed("ping is not allowed here".into()));
        }
        Ok(())
    }

    fn after(&self, call: &CallInfo<'_>, outcome: &Outcome<'_>) {
        let mut seen = self.0.lock().unwrap();
        let entry = seen
            .iter_mut()
            .rev()
            .find(|s| s.method == call.method && s.depth == call.depth && s.outcome.is_none())
            .expect("`after` follows a `before`");
        entry.outcome = Some(match outcome.result {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(Failed::Module(e)) => Err(e.to_string()),
            Err(other) => Err(format!("{other:?}")),
        });
    }
}

#[test]
fn interceptors_see_every_call_from_the_host_and_from_modules() {
    let recorder = Arc::new(Recorder::default());
    let rt = Runtime::new(
        RuntimeConfig::default().interceptor(recorder.clone()),
        LocalResolver,
    );
    let basic = rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    let relay = rt
        .load(ModuleRef::from_path(module_path("nested_calls")))
        .unwrap();
    let traced = memlink_runtime::CallOptions::default().trace(77, 1);
    assert_eq!(
        &*rt.call_with(basic, "echo", b"hello", &traced).unwrap(),
        b"hello"
    );
    let _ = rt.call(basic, "boom", b"x").unwrap_err();
    let refused = module_error(rt.call(basic, "ping", b""));
    assert_eq!(
        refused,
        ModuleError::Failed("ping is not allowed here".into())
    );
    let sum: u32 = rt
        .call_typed(relay, "add_via", &("basic", 2u32, 3u32))
        .unwrap();
    assert_eq!(sum, 5);

    let seen = recorder.0.lock().unwrap().clone();
    let summary: Vec<(&str, &str, u32)> = seen
        .iter()
        .map(|s| (s.module.as_str(), s.method.as_str(), s.depth))
        .collect();
    assert_eq!(
        summary,
        [
            ("basic", "echo", 0),
            ("basic", "boom", 0),
            ("basic", "ping", 0),
            ("nested_calls", "add_via", 0),
            ("basic", "add", 1),
        ]
    );
    assert_eq!(seen[0].trace_id, 77);
    assert_eq!(seen[0].args_len, 5);
    assert_eq!(seen[0].outcome, Some(Ok(b"hello".to_vec())));
    assert!(
        matches!(&seen[1].outcome, Some(Err(e)) if e.contains("panicked")),
        "{:?}",
        seen[1].outcome
    );
    assert!(
        matches!(&seen[2].outcome, Some(Err(e)) if e.contains("not allowed")),
        "{:?}",
        seen[2].outcome
    );
    assert!(seen.iter().all(|s| s.outcome.is_some()), "every call ended");
    // The refused call never reached the module (no argument byte went in), and is
    // counted: a call, failed with the interceptor's error.
    let ping = common::figures_of(&rt, "ping");
    let failed: u64 = ping.errors.iter().map(|(_, n)| n).sum();
    assert_eq!((ping.calls, failed, ping.bytes_in), (1, 1, 0));
}

#[test]
fn results_of_pure_methods_are_cached_when_the_host_asks() {
    let rt = Runtime::new(
        RuntimeConfig::default().result_cache(CacheConfig::new(16, 1 << 20)),
        LocalResolver,
    );
    let h = rt
        .load(ModuleRef::from_path(module_path("greeter_v1")))
        .unwrap();
    let square = |x: u64| -> u64 { rt.call_typed(h, "square", &(x,)).unwrap() };
    let ran = || -> u64 { rt.call_typed(h, "squared", &()).unwrap() };
    assert_eq!((square(7), square(7), square(8)), (49, 49, 64));
    assert_eq!(ran(), 2, "the second square(7) came from the cache");
    let stats = rt.cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses, stats.entries), (1, 2, 2));
    // A method not marked pure always runs.
    let hits: Vec<u64> = (0..2)
        .map(|_| rt.call_typed(h, "hit", &()).unwrap())
        .collect();
    assert_eq!(hits, [1, 2]);
    // A reload forgets the old version's results.
    rt.reload(h, ModuleRef::from_path(module_path("greeter_v2")))
        .unwrap();
    assert_eq!(square(7), 49);
    assert_eq!(ran(), 1, "the new version computed it");
    assert_eq!(rt.cache_stats().unwrap().entries, 1);

    // Off by default. (The same file, so the same image and count as above.)
    let plain = Runtime::with_local_resolver();
    let h = plain
        .load(ModuleRef::from_path(module_path("greeter_v1")))
        .unwrap();
    let ran = || -> u64 { plain.call_typed(h, "squared", &()).unwrap() };
    let before = ran();
    for _ in 0..2 {
        let _: u64 = plain.call_typed(h, "square", &(7u64,)).unwrap();
    }
    assert_eq!(ran(), before + 2);
    assert!(plain.cache_stats().is_none());
    assert!(plain
        .methods(h)
        .unwrap()
        .iter()
        .any(|m| m.name == "square" && m.pure));
}

/// A log sink that panics on the record of a caught panic, in the breaker's trial call,
/// leaves the breaker able to close again: the trial counts as the failure it was, and
/// the sink's panic goes no further, as it goes no further from any other record.
/// Before, it unwound out of the call before the breaker heard how the trial went: the
/// breaker stayed half-open, and every later call was refused, for good.
#[test]
fn a_sink_panicking_in_the_breakers_trial_does_not_keep_the_breaker_half_open() {
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Panics on every panic record but the first.
    #[derive(Default)]
    struct PanicsOnPanics(AtomicU32);
    impl memlink_runtime::LogSink for PanicsOnPanics {
        fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
            if event.message.starts_with("panicked: ") && self.0.fetch_add(1, Ordering::Relaxed) > 0
            {
                panic!("the sink panics");
            }
        }
    }

    let rt = Runtime::new(
        RuntimeConfig::default()
            .breaker(BreakerConfig::new(1, Duration::from_millis(20)))
            .log_sink(Arc::new(PanicsOnPanics::default())),
        LocalResolver,
    );
    let name = "basic_trial_sink_panics";
    let h = rt
        .load_as(ModuleRef::from_path(module_copy("basic", name)), name)
        .unwrap();
    let live = |rt: &Runtime| {
        // Polled only to know the cool-down is over; no time is asserted.
        for _ in 0..12_000 {
            if matches!(rt.health(h).unwrap(), Health::Live { .. }) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the cool-down never ended: {:?}", rt.health(h));
    };
    assert!(matches!(
        module_error(rt.call(h, "boom", b"x")),
        ModuleError::Panic(_)
    ));
    assert_eq!(breaker_of(&rt, name).0, Some(BreakerState::Open));
    live(&rt);
    // The trial panics, and the sink with it.
    let trial = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.call(h, "boom", b"x").map(drop)
    }));
    assert!(
        matches!(
            &trial,
            Ok(Err(RuntimeError::Call {
                error: ModuleError::Panic(_),
                ..
            }))
        ),
        "{trial:?}"
    );
    assert_eq!(breaker_of(&rt, name).0, Some(BreakerState::Open));
    live(&rt);
    assert_eq!(&*rt.call(h, "echo", b"hi").unwrap(), b"hi");
    assert_eq!(breaker_of(&rt, name).0, Some(BreakerState::Closed));
}

/// What `after` was told of each call's failure, in order.
#[derive(Debug, Default)]
struct Failures(Mutex<Vec<String>>);

impl Interceptor for Failures {
    fn after(&self, _call: &CallInfo<'_>, outcome: &Outcome<'_>) {
        if let Err(failed) = outcome.result {
            self.0.lock().unwrap().push(format!("{failed:?}"));
        }
    }
}

#[test]
fn an_open_breakers_refusal_reaches_interceptors_as_the_callers_error() {
    let failures = Arc::new(Failures::default());
    let rt = Runtime::new(
        RuntimeConfig::default()
            .interceptor(failures.clone())
            .breaker(BreakerConfig::new(1, Duration::from_secs(3600))),
        LocalResolver,
    );
    let h = rt
        .load_as(
            ModuleRef::from_path(module_copy("basic", "basic_refused")),
            "basic_refused",
        )
        .unwrap();
    assert!(matches!(
        module_error(rt.call(h, "boom", b"x")),
        ModuleError::Panic(_)
    ));
    let refused = module_error(rt.call(h, "echo", b"hi"));
    assert_eq!(refused, ModuleError::ServiceUnavailable);
    let seen = failures.0.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[1],
        format!("{:?}", Failed::Module(&ModuleError::ServiceUnavailable)),
        "the error the caller got, as the intercept docs say"
    );
}

/// A `tracing` subscriber that, on the breaker's first `memlink::health` warning (it
/// opening), unloads and reloads the module it opened for, from inside the event, as a
/// host that evicts a failing module on that event would: the module is still held by
/// the call that opened the breaker, so each is refused with `InsideCall`, and the call
/// ends. Before, the unload waited for that call, its own, for ever.
#[test]
fn the_breaker_s_subscriber_may_not_unload_the_module_whose_call_opened_it() {
    use std::sync::OnceLock;
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Default)]
    struct Evicts {
        target: OnceLock<(Runtime, memlink_runtime::ModuleHandle, std::path::PathBuf)>,
        outcomes: Mutex<Vec<String>>,
    }
    impl Subscriber for Evicts {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let meta = event.metadata();
            if meta.target() != "memlink::health" || *meta.level() != tracing::Level::WARN {
                return;
            }
            let Some((rt, h, file)) = self.target.get() else {
                return;
            };
            let mut outcomes = self.outcomes.lock().unwrap();
            if outcomes.is_empty() {
                outcomes.push(format!("{:?}", rt.unload(*h)));
                let reload = rt.reload(*h, ModuleRef::from_path(file.clone()));
                outcomes.push(format!("{reload:?}"));
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    let evicts = Arc::new(Evicts::default());
    let rt = Runtime::new(
        RuntimeConfig::default().breaker(BreakerConfig::new(3, Duration::from_secs(30))),
        LocalResolver,
    );
    let file = module_copy("basic", "basic_evicted");
    let h = rt
        .load_as(ModuleRef::from_path(file.clone()), "basic_evicted")
        .unwrap();
    let _ = evicts.target.set((rt.clone(), h, file));
    let subscriber = evicts.clone();
    let runs = std::thread::spawn(move || {
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                assert!(matches!(
                    module_error(rt.call(h, "boom", b"x")),
                    ModuleError::Panic(_)
                ));
            }
            rt
        })
    });
    let deadline = std::time::Instant::now() + common::HANG;
    while !runs.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "the call that opened the breaker never returned"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let rt = runs.join().unwrap();
    let outcomes = evicts.outcomes.lock().unwrap().clone();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    for (outcome, action) in outcomes.iter().zip(["unload", "reload"]) {
        assert!(
            outcome.contains("InsideCall") && outcome.contains(action),
            "{outcome}"
        );
    }
    // Once the call is over, the module unloads.
    rt.unload(h).unwrap();
}

/// A breaker's trial call that gets no arena (the memory is exhausted) never reached
/// the module: the breaker stays open, and the next call is the trial. Before, the
/// call's `QuotaExceeded` was recorded as the trial's outcome, a module's error like
/// any, and the breaker closed ("the trial call went well") without the module having
/// run.
#[cfg(target_os = "linux")]
#[test]
fn a_trial_call_that_gets_no_arena_leaves_the_breaker_open() {
    common::in_child(
        "a_trial_call_that_gets_no_arena_leaves_the_breaker_open",
        &[],
        || {
            let cool_down = Duration::from_millis(50);
            let config = RuntimeConfig::default()
                .breaker(BreakerConfig::new(3, cool_down))
                .arena_size(128 << 20);
            let rt = Runtime::new(config, LocalResolver);
            let name = "basic_breaker_arena";
            let h = rt
                .load_as(ModuleRef::from_path(module_copy("basic", name)), name)
                .unwrap();
            for _ in 0..3 {
                assert!(matches!(
                    module_error(rt.call(h, "boom", b"x")),
                    ModuleError::Panic(_)
                ));
            }
            assert_eq!(breaker_of(&rt, name).0, Some(BreakerState::Open));
            std::thread::sleep(cool_down * 2);
            // A new thread keeps no arena of its own, and the pool has none idle (this
            // thread keeps its own): with 64 MiB of address space to spare, its call
            // can have no arena of 128 MiB.
            let was = common::limit_address_space(64 << 20);
            let other = rt.clone();
            let e = std::thread::spawn(move || module_error(other.call(h, "echo", b"hi")))
                .join()
                .unwrap();
            rustix::process::setrlimit(rustix::process::Resource::As, was).unwrap();
            assert_eq!(e, ModuleError::QuotaExceeded);
            assert_eq!(
                breaker_of(&rt, name).0,
                Some(BreakerState::Open),
                "a trial that never ran closed the breaker"
            );
            // The next call, on this thread with its arena, is the trial: it runs, and
            // closes the breaker.
            assert_eq!(rt.call(h, "echo", b"hi").unwrap(), b"hi");
            assert_eq!(breaker_of(&rt, name).0, Some(BreakerState::Closed));
        },
    );
}
