//! What a careless module author does with the SDK's public API, as its docs describe
//! it, through the real runtime and the `hazards` fixture: the host stays up, answers,
//! and its figures stay valid.

mod common;

use std::sync::Arc;

use common::{load_all, module_copy};
use memlink_runtime::{MetricValue, ModuleHandle, ModuleRef, Runtime, RuntimeConfig};

/// A runtime with a copy of `hazards` of its own loaded as `name`: the module's metrics
/// are the test's alone (the tests of this binary that load `hazards` share its image,
/// and so its registry of metrics).
fn own_hazards(name: &str) -> (Runtime, Vec<ModuleHandle>) {
    let rt = Runtime::new(
        RuntimeConfig::default(),
        memlink_runtime::resolver::LocalResolver,
    );
    let h = rt
        .load_as(ModuleRef::from_path(module_copy("hazards", name)), name)
        .unwrap();
    (rt, vec![h])
}

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
            counted_at_thread_exits(rt, h[0], "hazards", "count_thread_exits");
        },
    );
}

/// A thread-local destructor of a module runs an async block on the SDK's executor
/// (`executor::block_on`, a future that needs no timer) when a host thread that called
/// the module ends, after tokio's own thread-local context is gone. The block runs and
/// the host lives. Before, the executor entered the module's runtime there, which tokio
/// refuses by panicking ("The Tokio context thread-local variable has been destroyed"),
/// and a panic in a thread-local destructor aborts the process, the host with it.
#[test]
fn an_async_block_run_by_a_thread_local_destructor_runs_and_the_host_lives() {
    // In a child process: before, the abort took the whole test binary down.
    common::in_child(
        "an_async_block_run_by_a_thread_local_destructor_runs_and_the_host_lives",
        &[],
        || {
            let (rt, h) = own_hazards("hazards_async_exit");
            counted_at_thread_exits(rt, h[0], "hazards_async_exit", "async_at_thread_exit");
        },
    );
}

/// Calls `method` of `module` (loaded as `h`), whose thread-local destructor counts the
/// counter its argument names, from two host threads that then end: the counter is 2,
/// and the host serves on.
fn counted_at_thread_exits(rt: Runtime, h: ModuleHandle, module: &str, method: &str) {
    let rt = Arc::new(rt);
    for _ in 0..2 {
        let (rt, method) = (rt.clone(), method.to_owned());
        std::thread::spawn(move || {
            rt.call(h, &method, b"exits_total").unwrap();
        })
        .join()
        .expect("the call's thread ends cleanly");
    }
    let metrics = rt.metrics();
    let custom = &metrics.iter().find(|m| m.module == module).unwrap().custom;
    let exits = custom
        .iter()
        .find(|(name, _)| name == "exits_total")
        .map(|(_, v)| v.clone());
    assert_eq!(exits, Some(MetricValue::Counter(2)), "{custom:?}");
    rt.call(h, method, b"again_total").unwrap();
}

/// A module names its own metrics as it likes, as the SDK's docs do
/// (`Counter::new("cache_hits")`): a counter without `_total`, camelCase, units such as
/// `ms` or `minutes`, a gauge ending in `_total` or `_count`, a type in the name, empty,
/// control characters, non-ASCII, 30 000 characters, one name as three kinds; values NaN
/// and infinite. The exposition passes `promtool check metrics`, which also lints the
/// names: before, most of those names failed it (exit status 3, e.g. `counter metrics
/// should have "_total" suffix`), so a scrape check failed on the module's choice of
/// names. Every metric is still there, once.
#[test]
fn module_metrics_named_carelessly_pass_promtool() {
    let (rt, h) = own_hazards("hazards_names");
    let (counter, gauge, histogram) = (0u8, 1u8, 2u8);
    let metrics: Vec<(String, u8, f64)> = vec![
        ("cache_hits".into(), counter, 1.0),
        ("requests".into(), counter, 2.0),
        ("requests".into(), gauge, 3.0),
        ("requests".into(), histogram, 4.0),
        ("requests_total".into(), counter, 5.0),
        ("cacheHits".into(), counter, 6.0),
        ("latency_ms".into(), histogram, 7.0),
        ("uptime_minutes".into(), gauge, 8.0),
        ("depth_total".into(), gauge, 9.0),
        ("queue_count".into(), gauge, 10.0),
        ("x_bucket".into(), counter, 11.0),
        ("hits_counter".into(), counter, 12.0),
        ("size_MB".into(), gauge, f64::NAN),
        ("".into(), counter, 13.0),
        ("a b".into(), gauge, f64::INFINITY),
        ("a_b".into(), gauge, f64::NEG_INFINITY),
        ("ünïcode".into(), gauge, 14.0),
        ("ctl\0\r\t\x1b[31m".into(), gauge, 15.0),
        ("quote\\\"\n".into(), histogram, f64::NAN),
        ("long".repeat(7500), counter, 16.0),
    ];
    let n: u32 = rt
        .call_typed(h[0], "record_metrics", &(metrics.clone(),))
        .unwrap();
    assert_eq!(n as usize, metrics.len());
    let text = rt.prometheus();
    common::promtool::promtool_accepts(&text);
    // Each of the module's metrics is one family of its own; a name keeps the kind it
    // was first recorded as (the SDK's rule), so `requests` is one counter.
    let module: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("# TYPE memlink_module"))
        .collect();
    let mut names: Vec<&str> = metrics.iter().map(|(n, _, _)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(module.len(), names.len(), "{module:#?}");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("valid exposition format");
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "memlink_module_cache_hits_total"
            && s.value == prometheus_parse::Value::Counter(1.0)));
    // The host keeps serving.
    let n: u32 = rt
        .call_typed(h[0], "record_metrics", &(Vec::<(String, u8, f64)>::new(),))
        .unwrap();
    assert_eq!(n, 0);
}

/// A module that makes a metric name per user (`per_user_<i>_total`), 100 000 of them:
/// every one is registered and exposed. (Registering each new name scanned every name
/// before it, and a scrape looked each family up in the module's whole list: both
/// quadratic, about 20 s and 30 s here, the registry's lock held all along. The test
/// asserts what is exposed, not the time it took.)
#[test]
fn a_metric_per_user_registers_and_scrapes_whole() {
    let (rt, h) = own_hazards("hazards_per_user");
    let n: u32 = rt
        .call_typed(h[0], "many_counters", &(100_000u32,))
        .unwrap();
    assert_eq!(n, 100_000);
    let text = rt.prometheus();
    let samples = text
        .lines()
        .filter(|l| l.starts_with("memlink_module_per_user_"))
        .count();
    assert_eq!(samples, 100_000);
}

/// Already sound, kept so: a result whose `Drop` panics after it was encoded, a panic
/// whose payload is no string and whose own `Drop` panics, and a log record of 12 MiB
/// with 10 000 fields full of control characters each end in a named outcome, and the
/// host keeps serving.
#[test]
fn panics_in_drops_and_outsized_logs_end_in_named_outcomes() {
    use memlink_runtime::{LogEvent, LogSink, ModuleError, RuntimeError};
    struct Sizes(std::sync::Mutex<Vec<(usize, usize)>>);
    impl LogSink for Sizes {
        fn record(&self, e: &LogEvent<'_>) {
            self.0
                .lock()
                .unwrap()
                .push((e.message.len(), e.fields.len()));
        }
    }
    let sink = Arc::new(Sizes(Default::default()));
    let config = RuntimeConfig::default()
        .log_sink(sink.clone())
        .log_level(tracing::Level::INFO);
    let (rt, h) = load_all(config, &["hazards"]);
    let panic_of = |method: &str, args: &[u8]| match rt.call(h[0], method, args) {
        Err(RuntimeError::Call {
            error: ModuleError::Panic(message),
            ..
        }) => message,
        other => panic!("{method}: {other:?}"),
    };
    let message = panic_of("drop_bomb", &common::mp(&(3u32,)));
    assert!(
        message.starts_with("the result's drop panicked"),
        "{message}"
    );
    let message = panic_of("payload_bomb", &[]);
    assert!(
        message.starts_with("panic with a non-string payload"),
        "{message}"
    );
    let fields: Vec<(String, String)> = (0..10_000)
        .map(|i| (format!("k\0\n{i}"), "\x1b[2J\r\n".repeat(100)))
        .collect();
    let n: u32 = rt
        .call_typed(h[0], "log_as_given", &("m\0\n".repeat(4 << 20), fields))
        .unwrap();
    assert_eq!(n, 10_000);
    // After the two caught panics' records.
    assert_eq!(sink.0.lock().unwrap().last(), Some(&(12 << 20, 10_000)));
}

/// A panic payload whose drop panics with another payload, whose drop panics in turn,
/// thrown in an export, in the reader of a nested call, and inside `isolate`: each ends
/// in `Panic` and the host keeps serving. Before, the second payload's drop unwound out
/// of the module's entry point, and the host aborted. A chain that never ends (every
/// drop panics) ends too, its last payload leaked.
#[test]
fn a_panic_payload_whose_drops_panic_in_a_chain_is_a_panic_error() {
    use memlink_runtime::{ModuleError, RuntimeError};
    let (rt, h) = load_all(RuntimeConfig::default(), &["hazards", "basic"]);
    for place in 0u8..3 {
        for levels in [1u32, 2, 3, 40, u32::MAX] {
            let args = common::mp(&(levels, place, "basic", "noop"));
            let got = rt.call(h[0], "chained_payload", &args);
            // `isolate`'s error is the export's result, the same `Panic`.
            match got {
                Err(RuntimeError::Call {
                    error: ModuleError::Panic(m),
                    ..
                }) => assert!(m.contains("non-string payload"), "{place} {levels}: {m}"),
                other => panic!("place {place}, {levels} levels: {other:?}"),
            }
        }
    }
    assert_eq!(
        rt.call_typed::<_, u32>(h[1], "add", &(2u32, 3u32)).unwrap(),
        5,
        "the host still serves"
    );
}

/// Two runtimes that load one module file share its image, and each tells it its level
/// at load. The module kept the last one: a runtime asking for debug records got none
/// once a second runtime, asking for warnings only, loaded the same file.
#[test]
fn two_runtimes_sharing_an_image_each_get_the_records_they_asked_for() {
    use memlink_runtime::{LogEvent, LogSink};
    struct Debugs(std::sync::atomic::AtomicUsize);
    impl LogSink for Debugs {
        fn record(&self, e: &LogEvent<'_>) {
            if e.level == tracing::Level::DEBUG {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
    let path = module_copy("datasets", "datasets_two_hosts");
    let runtime = |level| {
        let sink = Arc::new(Debugs(Default::default()));
        let config = RuntimeConfig::default()
            .log_sink(sink.clone())
            .log_level(level);
        let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
        let h = rt
            .load_as(ModuleRef::from_path(path.clone()), "datasets_two_hosts")
            .unwrap();
        (rt, h, sink)
    };
    let (verbose, v, verbose_sink) = runtime(tracing::Level::TRACE);
    let (terse, t, terse_sink) = runtime(tracing::Level::WARN);
    let debug_records = |rt: &Runtime, h| {
        rt.call_typed::<_, ()>(h, "quiet_log_macros", &(3u32,))
            .unwrap()
    };
    debug_records(&verbose, v);
    debug_records(&terse, t);
    let seen = |sink: &Arc<Debugs>| sink.0.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        seen(&verbose_sink),
        3,
        "the runtime that asked for debug records"
    );
    assert_eq!(
        seen(&terse_sink),
        0,
        "the runtime that asked for warnings only"
    );
}

/// A result, and a typed nested call's arguments, whose `Serialize` can run only once
/// (it drains an iterator): written whole however large, each serialized once. Before,
/// one too large for the arena (or for the 256 bytes a nested call's arguments get on
/// the stack) was serialized again, and the second run wrote an empty list: the host got
/// `[]`, and the callee an empty list, both with success.
#[test]
fn a_value_that_can_be_serialized_only_once_is_written_whole() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["hazards"]);
    let runs = || -> u64 { rt.call_typed(h[0], "drained_runs", &()).unwrap() };
    let before = runs();
    for n in [10u64, 1_000, 100_000] {
        let list: Vec<u64> = rt.call_typed(h[0], "drained", &(n,)).unwrap();
        assert!(
            list.len() as u64 == n && list.iter().enumerate().all(|(i, v)| i as u64 == *v),
            "{n} items: {} came back",
            list.len()
        );
        let counted: u64 = rt
            .call_typed(h[0], "drained_nested", &("hazards", n))
            .unwrap();
        assert_eq!(counted, n, "the callee got all {n}");
    }
    // Each result and each nested call's arguments once (and the nested call's
    // arguments asked their shape once more, as `call_typed` documents: after they were
    // written).
    assert_eq!(runs() - before, 3 * (1 + 2));
}

/// `Some(None)` of an `Option<Option<T>>` is written as nil in MessagePack, as `None`
/// is: it arrived as `None`, and a result of it was read back as `None`, a wrong answer
/// with status Ok. Now each side refuses to write it, saying why.
#[test]
fn some_none_is_refused_not_turned_into_none() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["hazards"]);
    let h = h[0];
    type Answer = (String, Option<Option<u32>>);
    let call = |given: Option<Option<u32>>, some_none: bool| {
        rt.call_typed::<_, Answer>(h, "maybe_maybe", &(given, some_none))
    };
    assert_eq!(
        call(Some(Some(3)), false).unwrap(),
        ("Some(Some(3))".to_owned(), Some(Some(3)))
    );
    assert_eq!(call(None, false).unwrap(), ("None".to_owned(), None));
    // The host refuses to send it.
    let e = call(Some(None), false).unwrap_err().to_string();
    assert!(e.contains("would read back as `None`"), "{e}");
    // The module refuses to answer it: the caller gets the module's error, not `None`.
    let e = call(None, true).unwrap_err().to_string();
    assert!(e.contains("would read back as `None`"), "{e}");
    // And the module still serves.
    assert_eq!(call(Some(Some(4)), false).unwrap().1, Some(Some(4)));
}
