//! Module log records as module and host authors rely on them: whole however long or
//! odd their text, delivered past a sink that panics, filtered as documented.

mod common;

use std::sync::{Arc, Mutex};

use common::records::Collect;
use common::{module_copy, mp};
use memlink_runtime::{CallOptions, LogEvent, LogSink, ModuleRef, Runtime, RuntimeConfig};

/// A runtime with `config` and a copy of the example `name` loaded as `copy`.
fn loaded(
    config: RuntimeConfig,
    name: &str,
    copy: &str,
) -> (Runtime, memlink_runtime::ModuleHandle) {
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt
        .load_as(ModuleRef::from_path(module_copy(name, copy)), copy)
        .unwrap();
    (rt, h)
}

/// Unicode, empty keys and values, a thousand fields and a message of 400 KB reach the
/// sink as the module gave them: nothing is truncated or dropped.
#[test]
fn records_arrive_whole_however_long_or_odd() {
    let sink = Arc::new(Collect::default());
    let config = RuntimeConfig::default()
        .log_sink(sink.clone())
        .log_level(tracing::Level::INFO);
    let (rt, h) = loaded(config, "hazards", "hazards_whole_logs");
    let odd = vec![
        ("ключ".to_owned(), "值 🎉".to_owned()),
        (String::new(), String::new()),
        ("k y".to_owned(), "v=1\nx".to_owned()),
    ];
    let many: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("k{i}"), "ü".repeat(i)))
        .collect();
    for (message, fields) in [
        ("ünïcödé".to_owned(), odd),
        (String::new(), Vec::new()),
        ("é".repeat(200_000), Vec::new()),
        ("many".to_owned(), many),
    ] {
        let n: u32 = rt
            .call_typed(h, "log_as_given", &(message.clone(), fields.clone()))
            .unwrap();
        assert_eq!(n as usize, fields.len());
        let got = sink.0.lock().unwrap().pop().expect("the record");
        assert_eq!(
            (got.1.as_str(), got.2.as_str()),
            ("hazards_whole_logs", "log_as_given")
        );
        assert!(
            got.3 == message,
            "the message, whole ({} bytes of {})",
            got.3.len(),
            message.len()
        );
        assert_eq!(got.4, fields);
    }
}

/// A nested call's records name the callee and carry the trace and the span ids its
/// caller was called with (the runtime opens no span of its own); a call with no trace
/// gives its records none.
#[test]
fn a_callees_records_carry_its_callers_trace_and_span() {
    let sink = Arc::new(Collect::default());
    let config = RuntimeConfig::default()
        .log_sink(sink.clone())
        .log_level(tracing::Level::INFO);
    let (rt, h) = loaded(config, "hazards", "hazards_span_logs");
    rt.load_as(
        ModuleRef::from_path(module_copy("basic", "basic_span_logs")),
        "basic_span_logs",
    )
    .unwrap();
    let args = mp(&("basic_span_logs", "chatty", mp(&(3u32,)), ""));
    for (trace, span) in [(7, 9), (0, 0)] {
        let options = CallOptions::default().trace(trace, span);
        rt.call_with(h, "around_nested", &args, &options).unwrap();
        let got = std::mem::take(&mut *sink.0.lock().unwrap());
        let seen: Vec<(&str, &str, u64, u64)> = got
            .iter()
            .map(|r| (r.1.as_str(), r.3.as_str(), r.5, r.6))
            .collect();
        assert_eq!(
            seen,
            [
                ("hazards_span_logs", "before", trace, span),
                ("basic_span_logs", "an error", trace, span),
                ("basic_span_logs", "a warning", trace, span),
                ("basic_span_logs", "some information", trace, span),
                ("hazards_span_logs", "after", trace, span),
            ]
        );
    }
}

/// With no `log_level`, a module logs up to what the `tracing` subscriber installed at
/// its load enables: without a subscriber, nothing, and so the sink gets nothing either
/// (`LogSink`'s docs say so).
#[test]
fn without_a_level_or_a_subscriber_a_sink_gets_nothing() {
    common::in_child(
        "without_a_level_or_a_subscriber_a_sink_gets_nothing",
        &[],
        || {
            let sink = Arc::new(Collect::default());
            let config = RuntimeConfig::default().log_sink(sink.clone());
            let (rt, h) = loaded(config, "basic", "basic_no_level_logs");
            rt.call(h, "chatty", &mp(&(3u32,))).unwrap();
            assert!(sink.0.lock().unwrap().is_empty());
        },
    );
}

/// A sink that panics on every record.
struct Panics;

impl LogSink for Panics {
    fn record(&self, _: &LogEvent<'_>) {
        panic!("the sink panicked");
    }
}

/// The levels and targets of the events a subscriber saw, with their fields.
#[derive(Default, Clone)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields<'a>(&'a mut String);
        impl tracing::field::Visit for Fields<'_> {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={v:?}", f.name()));
            }
        }
        let meta = e.metadata();
        let mut line = format!("{} {}", meta.level(), meta.target());
        e.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
}

/// A sink that panics costs neither the call nor the record's `tracing` event, at each
/// level nor for a caught panic's record. Before, the sink ran first and its panic
/// skipped the event: the host's own logs lost every record the sink choked on.
#[test]
fn a_sink_that_panics_costs_neither_the_call_nor_the_tracing_event() {
    // In a process of its own: `tracing` caches per callsite which subscribers want it.
    common::in_child(
        "a_sink_that_panics_costs_neither_the_call_nor_the_tracing_event",
        &[],
        || {
            use tracing_subscriber::layer::SubscriberExt;
            let seen = Seen::default();
            let subscriber = tracing_subscriber::registry().with(seen.clone());
            tracing::subscriber::with_default(subscriber, || {
                let config = RuntimeConfig::default()
                    .log_sink(Arc::new(Panics))
                    .log_level(tracing::Level::TRACE);
                let (rt, h) = loaded(config, "basic", "basic_panicking_sink");
                rt.call(h, "chatty", &mp(&(3u32,))).unwrap();
                rt.call(h, "boom", b"kaboom").unwrap_err();
            });
            let lines = seen.0.lock().unwrap().clone();
            let module: Vec<&str> = lines
                .iter()
                .filter(|l| l.contains(" memlink::module "))
                .map(|l| l.split_once(' ').unwrap().0)
                .collect();
            assert_eq!(
                module,
                ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"],
                "{lines:?}"
            );
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("ERROR memlink::panic ") && l.contains("kaboom")),
                "{lines:?}"
            );
        },
    );
}

/// Two runtimes share one image: one without a `log_level` under a subscriber at INFO,
/// the other at TRACE, so the module sends everything. The first runtime's sink is to
/// get records up to INFO (`RuntimeConfig::log_level`'s default), as its module would
/// send alone. Before, `host_log` filtered only by a `log_level` set, and the sink got
/// the other runtime's DEBUG and TRACE records.
#[test]
fn without_a_level_a_shared_images_records_past_the_subscribers_are_dropped() {
    common::in_child(
        "without_a_level_a_shared_images_records_past_the_subscribers_are_dropped",
        &[],
        || {
            use tracing_subscriber::layer::SubscriberExt;
            let subscriber = tracing_subscriber::registry()
                .with(Seen::default())
                .with(tracing_subscriber::filter::LevelFilter::INFO);
            tracing::subscriber::set_global_default(subscriber).unwrap();
            let path = module_copy("basic", "basic_shared_no_level");
            let sink = Arc::new(Collect::default());
            let resolver = memlink_runtime::resolver::LocalResolver;
            let a = Runtime::new(RuntimeConfig::default().log_sink(sink.clone()), resolver);
            let ha = a.load(ModuleRef::from_path(path.clone())).unwrap();
            let config = RuntimeConfig::default().log_level(tracing::Level::TRACE);
            let b = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
            b.load(ModuleRef::from_path(path)).unwrap();
            a.call(ha, "chatty", &mp(&(3u32,))).unwrap();
            let levels: Vec<_> = sink.0.lock().unwrap().iter().map(|r| r.0).collect();
            use tracing::Level;
            assert_eq!(levels, [Level::ERROR, Level::WARN, Level::INFO]);
        },
    );
}
