//! Module log records as module and host authors rely on them: whole however long or
//! odd their text, delivered past a sink that panics, filtered as documented.

mod common;

use std::sync::{Arc, Mutex};

use common::{module_copy, mp};
use memlink_runtime::{LogEvent, LogSink, ModuleRef, Runtime, RuntimeConfig};

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
