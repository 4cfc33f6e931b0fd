//! Host code the runtime runs (a log sink, an interceptor, code a load or a reload runs)
//! asking for a load, an unload or a reload that would wait for itself: each is refused
//! saying why, and the runtime serves on.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use memlink_runtime::{ModuleError, ModuleHandle, ModuleRef, Runtime, RuntimeConfig, RuntimeError};

/// Asked for from a log sink while a call to the module runs on the sink's thread, an
/// unload or a reload would wait for that call to end, and the call for the sink: both
/// are refused, saying why, and the module serves on. Before, both hung.
#[test]
fn an_unload_or_reload_asked_for_inside_a_call_to_the_module_is_refused() {
    let sink = Arc::new(AsksForUnload::default());
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::INFO)
        .log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let path = common::module_copy("hazards", "hazards_unloads_inside");
    let h = rt.load(ModuleRef::from_path(path.clone())).unwrap();
    let _ = sink.target.set((rt.clone(), h, path));
    hold_and_expect_refusals(&rt, h, "log sink", &sink.outcomes, 2);
    // The module still serves; from outside a call, the unload goes through.
    assert_eq!(rt.call_typed::<_, u64>(h, "hold", &(0u64,)).unwrap(), 0);
    rt.unload(h).unwrap();
    assert!(matches!(
        rt.call_typed::<_, u64>(h, "hold", &(0u64,)),
        Err(RuntimeError::UnknownHandle(_))
    ));
}

/// An interceptor of a call to the module (before its slot is taken, and after it is
/// given back, the module still held) that asks for an unload or a reload of it is
/// refused as a log sink is; the call and the module go on. Before, both hung.
#[test]
fn an_unload_or_reload_asked_for_by_an_interceptor_of_the_module_is_refused() {
    let hook = Arc::new(AsksForUnload::default());
    let config = RuntimeConfig::default().interceptor(hook.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let path = common::module_copy("hazards", "hazards_intercepted");
    let h = rt.load(ModuleRef::from_path(path.clone())).unwrap();
    let _ = hook.target.set((rt.clone(), h, path));
    hold_and_expect_refusals(&rt, h, "interceptor", &hook.outcomes, 4);
    // From outside the call, the unload goes through.
    rt.unload(h).unwrap();
}

/// Calls `hold(0)` of `h` on a thread of its own, whose `host_code` (a log sink or an
/// interceptor) asks for a reload and an unload of the module, `count` outcomes in all
/// (a hang fails the test), and checks each was refused as asked from inside a call.
fn hold_and_expect_refusals(
    rt: &Runtime,
    h: ModuleHandle,
    host_code: &str,
    outcomes: &std::sync::Mutex<Vec<Result<(), String>>>,
    count: usize,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let caller = rt.clone();
    std::thread::spawn(move || {
        let _ = tx.send(caller.call_typed::<_, u64>(h, "hold", &(0u64,)));
    });
    let held = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("the call whose {host_code} unloads its module hung"));
    assert_eq!(held.unwrap(), 0);
    let outcomes = outcomes.lock().unwrap().clone();
    assert_eq!(outcomes.len(), count, "{outcomes:?}");
    for (outcome, action) in outcomes.iter().zip(["reload", "unload"].iter().cycle()) {
        let err = outcome.as_ref().unwrap_err();
        assert!(
            err.contains(&format!("cannot {action} `")) && err.contains("from inside a call to it"),
            "{err}"
        );
    }
}

/// Host code that, run inside a call to its module (a log sink on the module's `holding`
/// record, an interceptor before and after the call), asks for a reload and an unload of
/// it, and keeps how each went.
#[derive(Debug, Default)]
struct AsksForUnload {
    target: std::sync::OnceLock<(Runtime, ModuleHandle, PathBuf)>,
    outcomes: std::sync::Mutex<Vec<Result<(), String>>>,
}

impl AsksForUnload {
    fn try_both(&self) {
        let Some((rt, h, path)) = self.target.get() else {
            return;
        };
        let reloaded = rt
            .reload(*h, ModuleRef::from_path(path.clone()))
            .map(drop)
            .map_err(|e| e.to_string());
        let unloaded = rt.unload(*h).map_err(|e| e.to_string());
        self.outcomes.lock().unwrap().extend([reloaded, unloaded]);
    }
}

impl memlink_runtime::LogSink for AsksForUnload {
    fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
        if event.message == "holding" {
            self.try_both();
        }
    }
}

impl memlink_runtime::intercept::Interceptor for AsksForUnload {
    fn before(
        &self,
        _: &memlink_runtime::intercept::CallInfo<'_>,
        _: &[u8],
    ) -> Result<(), ModuleError> {
        self.try_both();
        Ok(())
    }

    fn after(
        &self,
        _: &memlink_runtime::intercept::CallInfo<'_>,
        _: &memlink_runtime::intercept::Outcome<'_>,
    ) {
        self.try_both();
    }
}
