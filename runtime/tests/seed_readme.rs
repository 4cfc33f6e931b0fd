//! The SDK README's promises, end to end: its snippets (compiled unchanged in
//! `examples/seed-readme`) loaded and called through the README's runtime snippet.

mod common;

use memlink_runtime::resolver::ModuleRef;
// The README's snippet imports the trait, as hosts written against it do; the runtime's
// methods are inherent, so the import is unused here, and must still compile.
#[allow(unused_imports)]
use memlink_runtime::runtime::{ModuleRuntime, Runtime};

#[test]
fn the_runtime_snippet_returns_hello() -> Result<(), Box<dyn std::error::Error>> {
    let path = common::module_path("seed_readme");
    let path = path.to_str().unwrap();
    // The README's snippet, with its path pointed at the built module.
    let runtime = Runtime::with_local_resolver();
    let handle = runtime.load(ModuleRef::parse(path)?)?;
    let result = runtime.call(handle, "echo", b"hello")?;
    assert_eq!(result, b"hello");
    Ok(())
}

#[test]
fn every_snippet_export_answers() {
    let (rt, h) = common::load("seed_readme");
    let sum: u32 = rt.call_typed(h, "add", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);
    let data: Vec<u8> = rt.call_typed(h, "async_process", &(vec![1u8, 2],)).unwrap();
    assert_eq!(data, [1, 2]);
    let slot: u64 = rt.call_typed(h, "use_arena", &()).unwrap();
    assert_eq!(slot, 42);
    let pressure: f32 = rt.call_typed(h, "check_pressure", &()).unwrap();
    assert_eq!(pressure, 0.0);
    let deadline: Option<u64> = rt.call_typed(h, "check_deadline", &()).unwrap();
    assert_eq!(deadline, None);
    // With a deadline the snippet reports the milliseconds left, at most those given.
    let options =
        memlink_runtime::CallOptions::default().timeout(std::time::Duration::from_secs(60));
    let left: Option<u64> = common::de(
        &rt.call_with(h, "check_deadline", &common::mp(&()), &options)
            .unwrap(),
    );
    assert!(left.is_some_and(|ms| ms <= 60_000), "{left:?}");
    let (): () = rt.call_typed(h, "log_and_measure", &()).unwrap();
    let doubled: u32 = rt.call_typed(h, "may_fail", &(50u32,)).unwrap();
    assert_eq!(doubled, 100);
    let err = rt.call(h, "may_fail", &common::mp(&(101u32,))).unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&memlink_runtime::ModuleError::QuotaExceeded)
    );
    // The nested-call snippet reaches the host; no module named `nobody` is loaded.
    let err = rt.call(h, "call_other", b"nobody").unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&memlink_runtime::ModuleError::ModuleNotFound(
            "nobody".into()
        ))
    );
}

/// The logging snippet's record reaches the host's sink as the README says: its level,
/// message and field, named by the module and the export that logged it.
#[test]
fn the_logging_snippet_reaches_the_hosts_sink() {
    use std::sync::{Arc, Mutex};

    type Record = (
        tracing::Level,
        String,
        String,
        String,
        Vec<(String, String)>,
    );
    #[derive(Default)]
    struct Keep(Mutex<Vec<Record>>);
    impl memlink_runtime::LogSink for Keep {
        fn record(&self, e: &memlink_runtime::LogEvent<'_>) {
            let fields = e.fields.iter().map(|(k, v)| (k.to_string(), v.to_string()));
            self.0.lock().unwrap().push((
                e.level,
                e.module.to_owned(),
                e.method.to_owned(),
                e.message.to_owned(),
                fields.collect(),
            ));
        }
    }
    let sink = Arc::new(Keep::default());
    let config = memlink_runtime::RuntimeConfig::default()
        .log_level(tracing::Level::INFO)
        .log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let copy = common::module_copy("seed_readme", "seed_readme_logs");
    let h = rt
        .load_as(ModuleRef::from_path(copy), "seed_readme_logs")
        .unwrap();
    let (): () = rt.call_typed(h, "log_and_measure", &()).unwrap();
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(
        got,
        [(
            tracing::Level::INFO,
            "seed_readme_logs".to_owned(),
            "log_and_measure".to_owned(),
            "Processing request".to_owned(),
            vec![("user".to_owned(), "alice".to_owned())],
        )]
    );
}

/// The Custom Data Structures snippet's struct travels both ways through the runtime,
/// as the README's `process_user` promises: the name upper-cased, the score doubled.
#[test]
fn the_custom_data_structures_snippet_answers() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct UserData {
        id: u32,
        name: String,
        score: u64,
    }
    let (rt, h) = common::load("seed_readme");
    let user = UserData {
        id: 7,
        name: "alice".into(),
        score: 21,
    };
    let back: UserData = rt.call_typed(h, "process_user", &(&user,)).unwrap();
    assert_eq!(
        back,
        UserData {
            id: 7,
            name: "ALICE".into(),
            score: 42
        }
    );
}

/// The Logging and Metrics snippet's counter and histogram reach the host's snapshot,
/// under the names it recorded them by, with the values it gave.
#[test]
fn the_metrics_snippet_reaches_the_hosts_snapshot() {
    use memlink_runtime::MetricValue;

    // A copy of its own: a module's metrics live in its image, which every runtime in
    // this process that loads the same file shares, and the other tests call
    // `log_and_measure` too.
    let copy = common::module_copy("seed_readme", "seed_readme_metrics");
    let rt = Runtime::with_local_resolver();
    let h = rt
        .load_as(ModuleRef::from_path(copy), "seed_readme_metrics")
        .unwrap();
    let (): () = rt.call_typed(h, "log_and_measure", &()).unwrap();
    let metrics = rt.metrics();
    let custom = &metrics
        .iter()
        .find(|m| m.module == "seed_readme_metrics")
        .unwrap()
        .custom;
    let get = |name: &str| {
        custom
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("requests_total"),
        Some(MetricValue::Counter(1)),
        "{custom:?}"
    );
    match get("request_latency") {
        Some(MetricValue::Histogram { count, sum, .. }) => assert_eq!((count, sum), (1, 42.0)),
        other => panic!("request_latency is {other:?}, in {custom:?}"),
    }
    let text = rt.prometheus();
    assert!(
        text.contains("memlink_module_requests_total{module=\"seed_readme_metrics\"} 1"),
        "{text}"
    );
}
