//! Module logs and metrics reach the host: a sink and a `tracing` subscriber see every
//! field, disabled levels never leave the module, and the figures are exact.

mod common;

use std::sync::{Arc, Mutex};

use common::records::Collect;
use common::{module_copy, mp};
use memlink_runtime::{CallOptions, MetricValue, ModuleRef, Runtime, RuntimeConfig};

fn runtime_with(
    sink: Arc<Collect>,
    level: tracing::Level,
    copy: &str,
) -> (Runtime, memlink_runtime::ModuleHandle) {
    let config = RuntimeConfig::default().log_sink(sink).log_level(level);
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt
        .load_as(ModuleRef::from_path(module_copy("basic", copy)), copy)
        .unwrap();
    (rt, h)
}

#[test]
fn log_records_arrive_with_every_field() {
    let sink = Arc::new(Collect::default());
    let (rt, h) = runtime_with(sink.clone(), tracing::Level::TRACE, "basic_logs_all");
    rt.call_with(
        h,
        "chatty",
        &mp(&(3u32,)),
        &CallOptions::default().trace(7, 9),
    )
    .unwrap();
    let got = sink.0.lock().unwrap().clone();
    let levels: Vec<_> = got.iter().map(|r| r.0).collect();
    use tracing::Level;
    assert_eq!(
        levels,
        [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE
        ]
    );
    let (_, module, method, message, fields, trace, span) = &got[2];
    assert_eq!(
        (module.as_str(), method.as_str(), message.as_str()),
        ("basic_logs_all", "chatty", "some information")
    );
    assert_eq!(
        fields,
        &[
            ("user".to_owned(), "alice".to_owned()),
            ("n".to_owned(), "3".to_owned())
        ]
    );
    assert_eq!((*trace, *span), (7, 9));
}

#[test]
fn a_disabled_level_never_reaches_the_host() {
    let sink = Arc::new(Collect::default());
    let (rt, h) = runtime_with(sink.clone(), tracing::Level::WARN, "basic_logs_warn");
    for _ in 0..10 {
        rt.call(h, "chatty", &mp(&(1u32,))).unwrap();
    }
    // The module drops what is past WARN itself (and the host would drop what a module
    // sent past it anyway: `c_abi`'s `log_records_at_no_level_or_past_the_hosts_are_dropped`).
    let levels: Vec<_> = sink.0.lock().unwrap().iter().map(|r| r.0).collect();
    assert_eq!(levels.len(), 20, "{levels:?}");
    assert!(
        levels.iter().all(|l| *l <= tracing::Level::WARN),
        "{levels:?}"
    );
}

#[test]
fn records_reach_a_tracing_subscriber() {
    // In a process of its own: which subscribers `tracing` thinks want an event is
    // cached per callsite for the whole process, and the other tests of this file log
    // through the same callsites from their own threads, with no subscriber, while this
    // one sets its own up (it failed that way in two full test runs out of many).
    common::in_child("records_reach_a_tracing_subscriber", &[], || {
        use tracing_subscriber::layer::SubscriberExt;
        #[derive(Default, Clone)]
        struct Fields(Arc<Mutex<Vec<String>>>);
        struct Visitor<'a>(&'a mut Vec<String>);
        impl tracing::field::Visit for Visitor<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push(format!("{}={:?}", field.name(), value));
            }
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                self.0.push(format!("{}={value}", field.name()));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.push(format!("{}={value}", field.name()));
            }
        }
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Fields {
            fn on_event(
                &self,
                e: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                let mut all = vec![format!("target={}", e.metadata().target())];
                e.record(&mut Visitor(&mut all));
                self.0.lock().unwrap().push(all.join(" "));
            }
        }
        let seen = Fields::default();
        let subscriber = tracing_subscriber::registry().with(seen.clone());
        tracing::subscriber::with_default(subscriber, || {
            let config = RuntimeConfig::default().log_level(tracing::Level::INFO);
            let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
            let h = rt
                .load_as(
                    ModuleRef::from_path(module_copy("basic", "basic_logs_tracing")),
                    "basic_logs_tracing",
                )
                .unwrap();
            rt.call_with(
                h,
                "chatty",
                &mp(&(5u32,)),
                &CallOptions::default().trace(11, 12),
            )
            .unwrap();
        });
        let lines = seen.0.lock().unwrap().clone();
        let info = lines
            .iter()
            .find(|l| l.contains("some information"))
            .expect("the info record");
        for part in [
            "target=memlink::module",
            "module=basic_logs_tracing",
            "method=chatty",
            "trace_id=11",
            "span_id=12",
            "user=alice n=5",
        ] {
            assert!(info.contains(part), "{part} missing from {info}");
        }
        assert!(
            !lines.iter().any(|l| l.contains("a detail")),
            "debug is off: {lines:?}"
        );
    });
}

#[test]
fn module_metrics_are_exact_from_several_threads() {
    let rt = Runtime::with_local_resolver();
    let h = rt
        .load_as(
            ModuleRef::from_path(module_copy("basic", "basic_metrics")),
            "basic_metrics",
        )
        .unwrap();
    std::thread::scope(|s| {
        for t in 1..=4u32 {
            let rt = &rt;
            s.spawn(move || {
                for _ in 0..250 {
                    rt.call(h, "observe", &mp(&(t,))).unwrap();
                }
            });
        }
    });
    let all = rt.metrics();
    let custom = &all
        .iter()
        .find(|m| m.module == "basic_metrics")
        .unwrap()
        .custom;
    let get = |n: &str| custom.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(
        get("observed_total"),
        Some(MetricValue::Counter(250 * (1 + 2 + 3 + 4)))
    );
    assert_eq!(get("last_batch"), Some(MetricValue::Gauge(7.5)));
    let Some(MetricValue::Histogram {
        count,
        sum,
        buckets,
    }) = get("batch_size")
    else {
        panic!()
    };
    assert_eq!((count, sum), (1000, 2500.0));
    assert_eq!(buckets.iter().sum::<u64>(), 1000);
    // 1 falls in the ≤1 bucket, 2 in ≤2.5, 3 and 4 in ≤5.
    assert_eq!((buckets[9], buckets[10], buckets[11]), (250, 250, 500));
}

/// By default one call in 32 is timed, on average, and counts for 32 in the histogram:
/// call counts stay exact, the histogram's count estimates them (32,000 calls from one
/// thread time about 1,000 of them, give or take a few dozen).
#[test]
fn sampled_latency_stands_for_every_call() {
    let rt = Runtime::with_local_resolver();
    let h = rt
        .load_as(
            ModuleRef::from_path(module_copy("basic", "basic_sampled")),
            "basic_sampled",
        )
        .unwrap();
    assert_eq!(RuntimeConfig::default().latency_sampling, 32);
    for _ in 0..32_000 {
        rt.call(h, "noop", b"").unwrap();
    }
    let all = rt.metrics();
    let noop = all
        .iter()
        .find(|m| m.module == "basic_sampled")
        .unwrap()
        .methods
        .iter()
        .find(|m| m.method == "noop")
        .unwrap()
        .clone();
    assert_eq!(noop.calls, 32_000);
    assert_eq!(noop.latency_count % 32, 0, "each timed call stands for 32");
    assert!(
        (28_000..=36_000).contains(&noop.latency_count),
        "{} estimates 32,000",
        noop.latency_count
    );
    assert!(noop.latency_sum_micros > 0.0);
}

#[test]
fn built_in_figures_are_exact_after_a_known_sequence() {
    // Every call timed: the latency histogram counts exactly too.
    let rt = Runtime::new(
        RuntimeConfig::default().latency_sampling(1),
        memlink_runtime::resolver::LocalResolver,
    );
    let h = rt
        .load_as(
            ModuleRef::from_path(module_copy("basic", "basic_builtins")),
            "basic_builtins",
        )
        .unwrap();
    for i in 0..100u32 {
        rt.call(h, "add", &mp(&(i, 1u32))).unwrap();
    }
    for _ in 0..3 {
        rt.call(h, "boom", b"x").unwrap_err();
    }
    rt.call(h, "fail", b"timeout").unwrap_err();
    rt.call(h, "fail", b"quota").unwrap_err();
    let all = rt.metrics();
    let methods = &all
        .iter()
        .find(|m| m.module == "basic_builtins")
        .unwrap()
        .methods;
    let by = |n: &str| methods.iter().find(|m| m.method == n).unwrap();
    let add = by("add");
    assert_eq!(
        (add.calls, add.latency_count, add.errors.len()),
        (100, 100, 0)
    );
    assert_eq!(add.latency_buckets.iter().sum::<u64>(), 100);
    let args: u64 = (0..100u32).map(|i| mp(&(i, 1u32)).len() as u64).sum();
    let outs: u64 = (0..100u32).map(|i| mp(&(i + 1)).len() as u64).sum();
    assert_eq!((add.bytes_in, add.bytes_out), (args, outs));
    assert_eq!((by("boom").calls, by("boom").errors_of("panic")), (3, 3));
    let fail = by("fail");
    assert_eq!(
        (
            fail.calls,
            fail.errors_of("timeout"),
            fail.errors_of("quota_exceeded")
        ),
        (2, 1, 1)
    );
    assert_eq!(by("echo").calls, 0);
}

#[test]
fn the_arena_high_water_mark_is_tracked() {
    let rt = Runtime::with_local_resolver();
    let h = rt
        .load(ModuleRef::from_path(common::module_path("arena_usage")))
        .unwrap();
    for take in [10u32, 5000, 300] {
        rt.call(h, "arena_stats", &mp(&(take,))).unwrap();
    }
    let all = rt.metrics();
    let m = all[0]
        .methods
        .iter()
        .find(|m| m.method == "arena_stats")
        .unwrap();
    assert!(
        (5000..5100).contains(&m.arena_high_water),
        "{}",
        m.arena_high_water
    );
}

#[test]
fn prometheus_output_parses_and_counts_once() {
    let rt = Runtime::new(
        RuntimeConfig::default().latency_sampling(1),
        memlink_runtime::resolver::LocalResolver,
    );
    let h = rt
        .load_as(
            ModuleRef::from_path(module_copy("basic", "basic_prom")),
            "basic_prom",
        )
        .unwrap();
    for _ in 0..5 {
        rt.call(h, "echo", b"hi").unwrap();
    }
    rt.call(h, "observe", &mp(&(3u32,))).unwrap();
    rt.call(h, "boom", b"x").unwrap_err();
    let text = rt.prometheus();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition format");
    let sample = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| s.value.clone())
    };
    use prometheus_parse::Value;
    let echo = [("module", "basic_prom"), ("method", "echo")];
    assert_eq!(
        sample("memlink_calls_total", &echo),
        Some(Value::Counter(5.0))
    );
    assert_eq!(
        sample(
            "memlink_errors_total",
            &[("method", "boom"), ("status", "panic")]
        ),
        Some(Value::Counter(1.0))
    );
    match sample("memlink_call_duration_seconds", &echo) {
        Some(Value::Histogram(buckets)) => {
            let inf = buckets
                .iter()
                .find(|b| b.less_than == f64::INFINITY)
                .unwrap();
            assert_eq!(
                inf.count, 5.0,
                "cumulative buckets end at the call count, not twice it"
            );
        }
        other => panic!("expected a histogram, got {other:?}"),
    }
    assert_eq!(
        sample("memlink_module_observed_total", &[("module", "basic_prom")]),
        Some(Value::Counter(3.0))
    );
    // A module's own histogram keeps the unit it observes in: 3 falls under the bound 5,
    // not under 5e-6 as the built-in latency's microseconds-to-seconds would put it.
    match sample("memlink_module_batch_size", &[("module", "basic_prom")]) {
        Some(Value::Histogram(buckets)) => {
            let count_under = |bound: f64| {
                buckets
                    .iter()
                    .find(|b| b.less_than == bound)
                    .map(|b| b.count)
            };
            assert_eq!(count_under(2.5), Some(0.0), "{buckets:?}");
            assert_eq!(count_under(5.0), Some(1.0), "{buckets:?}");
        }
        other => panic!("expected a histogram, got {other:?}"),
    }
}

#[test]
fn a_caught_panic_is_logged_at_error_level_with_its_location() {
    let sink = Arc::new(Collect::default());
    let (rt, h) = runtime_with(sink.clone(), tracing::Level::ERROR, "basic_logs_panic");
    rt.call(h, "boom", b"kaboom").unwrap_err();
    let got = sink.0.lock().unwrap().clone();
    let (level, module, method, message, ..) = got.last().expect("a record").clone();
    assert_eq!(
        (level, module.as_str(), method.as_str()),
        (tracing::Level::ERROR, "basic_logs_panic", "boom")
    );
    assert!(message.starts_with("panicked: kaboom (at "), "{message}");
    assert!(message.contains("basic.rs:"), "the location: {message}");
}

/// A runtime with `sink` at INFO and copies of `hazards` and `basic` loaded as
/// `hazards_<tag>` and `basic_<tag>`.
fn hazards_and_basic(sink: Arc<Collect>, tag: &str) -> (Runtime, memlink_runtime::ModuleHandle) {
    let config = RuntimeConfig::default()
        .log_sink(sink)
        .log_level(tracing::Level::INFO);
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let hazards = format!("hazards_{tag}");
    let basic = format!("basic_{tag}");
    let h = rt
        .load_as(
            ModuleRef::from_path(module_copy("hazards", &hazards)),
            &hazards,
        )
        .unwrap();
    rt.load_as(ModuleRef::from_path(module_copy("basic", &basic)), &basic)
        .unwrap();
    (rt, h)
}

/// The host keeps the running call, and the module asks for it when it logs: a record
/// names the export that logged it, before, during and after a nested call, and carries
/// the trace the call came with.
#[test]
fn records_name_their_own_call_across_a_nested_one() {
    let sink = Arc::new(Collect::default());
    let (rt, h) = hazards_and_basic(sink.clone(), "nested_logs");
    let args = ("basic_nested_logs", "chatty", mp(&(3u32,)), "");
    let options = CallOptions::default().trace(7, 9);
    let out = rt
        .call_with(h, "around_nested", &mp(&args), &options)
        .unwrap();
    assert_eq!(
        out.as_bytes(),
        b"1 bytes",
        "a raw string result: the nested call gave nil"
    );
    let got = sink.0.lock().unwrap().clone();
    let seen: Vec<(&str, &str, &str, u64)> = got
        .iter()
        .map(|r| (r.1.as_str(), r.2.as_str(), r.3.as_str(), r.5))
        .collect();
    assert_eq!(
        seen,
        [
            ("hazards_nested_logs", "around_nested", "before", 7),
            ("basic_nested_logs", "chatty", "an error", 7),
            ("basic_nested_logs", "chatty", "a warning", 7),
            ("basic_nested_logs", "chatty", "some information", 7),
            ("hazards_nested_logs", "around_nested", "after", 7),
        ]
    );
    assert_eq!(got[0].6, 9, "the call's own span");
}

/// A panic's message and location go back through its own call's boundary: a call that
/// re-enters the module and panics there does not lend its record to its caller's
/// panic, nor its caller's to it.
#[test]
fn a_panic_is_returned_by_its_own_call_when_the_module_re_enters_itself() {
    let sink = Arc::new(Collect::default());
    let (rt, h) = hazards_and_basic(sink.clone(), "nested_panics");
    let inner = mp(&(
        "basic_nested_panics",
        "noop",
        Vec::<u8>::new(),
        "the inner panic",
    ));
    let args = (
        "hazards_nested_panics",
        "around_nested",
        inner,
        "the outer panic",
    );
    let err = rt.call(h, "around_nested", &mp(&args)).unwrap_err();
    let Some(memlink_runtime::ModuleError::Panic(outer)) = err.module_error() else {
        panic!("expected a panic, got {err}");
    };
    assert!(outer.starts_with("the outer panic (at "), "{outer}");
    assert!(outer.contains("hazards.rs:"), "the location: {outer}");
    let got = sink.0.lock().unwrap().clone();
    let panicked: Vec<&str> = got
        .iter()
        .filter(|r| r.3.starts_with("panicked: "))
        .map(|r| r.3.as_str())
        .collect();
    assert_eq!(panicked.len(), 2, "{panicked:?}");
    assert!(
        panicked[0].starts_with("panicked: the inner panic (at ")
            && panicked[0].contains("hazards.rs:"),
        "the inner call's own message and location: {panicked:?}"
    );
    let own: Vec<&str> = got
        .iter()
        .filter(|r| !r.3.starts_with("panicked: "))
        .map(|r| r.3.as_str())
        .collect();
    assert_eq!(own, ["before", "before", "after", "after"]);
}

/// The latency histogram counts the calls the module ran: a call refused before it
/// started (here, its deadline passed) is a call and an error, but was never timed, so
/// even with every call timed the histogram's `_count` falls short of
/// `memlink_calls_total` by the refused calls, as the metrics docs say.
#[test]
fn refused_calls_count_as_calls_but_not_in_the_latency_histogram() {
    let rt = Runtime::new(
        RuntimeConfig::default().latency_sampling(1),
        memlink_runtime::resolver::LocalResolver,
    );
    let h = rt
        .load_as(
            ModuleRef::from_path(module_copy("basic", "basic_refused")),
            "basic_refused",
        )
        .unwrap();
    for _ in 0..5 {
        rt.call(h, "echo", b"x").unwrap();
    }
    let past = CallOptions::default().deadline(std::time::Instant::now());
    for _ in 0..3 {
        rt.call_with(h, "echo", b"x", &past).unwrap_err();
    }
    let echo = common::figures_of(&rt, "echo");
    assert_eq!(
        (echo.calls, echo.errors_of("timeout"), echo.latency_count),
        (8, 3, 5)
    );
    let text = rt.prometheus();
    let value = |sample: &str| {
        let line = format!("{sample}{{module=\"basic_refused\",method=\"echo\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {sample}:\n{text}"))
            .to_owned()
    };
    assert_eq!(value("memlink_calls_total"), "8");
    assert_eq!(value("memlink_call_duration_seconds_count"), "5");
}

/// A reload carries an export's built-in counters to the new version; the module's own
/// metrics live in its image, which a reload loads afresh: they start from zero, the
/// counter reset the metrics docs describe.
#[test]
fn a_reload_carries_the_built_in_counters_and_starts_the_modules_own_afresh() {
    let rt = Runtime::with_local_resolver();
    let file = module_copy("basic", "basic_reloaded");
    let h = rt
        .load_as(ModuleRef::from_path(file.clone()), "basic_reloaded")
        .unwrap();
    rt.call(h, "observe", &mp(&(3u32,))).unwrap();
    rt.reload(h, ModuleRef::from_path(file)).unwrap();
    rt.call(h, "observe", &mp(&(2u32,))).unwrap();
    assert_eq!(common::figures_of(&rt, "observe").calls, 2);
    let all = rt.metrics();
    let own = all.iter().find(|m| m.module == "basic_reloaded").unwrap();
    let observed = own.custom.iter().find(|(n, _)| n == "observed_total");
    assert_eq!(
        observed.map(|(_, v)| v),
        Some(&MetricValue::Counter(2)),
        "{own:?}"
    );
}

/// Latency is timed one call in 32 by default. A thread that calls two exports in turn
/// has both timed, about equally, each timed call standing for 32: the spacing between
/// timed calls varies. Before, a fixed count of 32 fell on the same export of the pair
/// every time, and the other's histogram stayed empty.
#[test]
fn exports_called_in_turn_are_both_timed() {
    let (rt, h) = common::load("basic");
    for _ in 0..16_000 {
        rt.call(h, "noop", b"").unwrap();
        rt.call(h, "echo", b"x").unwrap();
    }
    for method in ["noop", "echo"] {
        let f = common::figures_of(&rt, method);
        assert_eq!(f.calls, 16_000);
        // About 500 timed calls each: 16,000 give or take sampling, far from 0 or 32,000.
        assert!(
            (8_000..=24_000).contains(&f.latency_count),
            "`{method}` stands for {} calls in its histogram",
            f.latency_count
        );
    }
}

/// Sampling as sparse as the setting holds (`u32::MAX`): a timed call stands for at most
/// 65 536, so the latency sum, a counter, only grows. Before, a timed call counted
/// `u32::MAX` times its latency, and five seconds of timed calls overflowed the sum: it
/// fell back to almost nothing (and, summed across threads, the figures panicked).
#[test]
fn the_sparsest_sampling_keeps_the_latency_sum_growing() {
    // A runtime that times every call leaves the thread's count at its end, so that the
    // next call, the sparse runtime's, is timed too.
    let dense = Runtime::new(
        RuntimeConfig::default().latency_sampling(1),
        memlink_runtime::resolver::LocalResolver,
    );
    let basic = dense
        .load(ModuleRef::from_path(module_copy("basic", "basic_dense")))
        .unwrap();
    let sparse = Runtime::new(
        RuntimeConfig::default().latency_sampling(u32::MAX),
        memlink_runtime::resolver::LocalResolver,
    );
    let slow = sparse
        .load(ModuleRef::from_path(module_copy(
            "async_echo",
            "async_echo_sparse",
        )))
        .unwrap();
    let mut before = 0.0;
    for timed in 1..=5u64 {
        dense.call(basic, "noop", b"").unwrap();
        sparse.call(slow, "slow_sync", &mp(&(1000u64,))).unwrap();
        let figures = common::figures_of(&sparse, "slow_sync");
        assert!(
            figures.latency_sum_micros > before,
            "the sum went from {before} to {}",
            figures.latency_sum_micros
        );
        assert_eq!(figures.latency_count, timed * 65_536);
        before = figures.latency_sum_micros;
    }
}
