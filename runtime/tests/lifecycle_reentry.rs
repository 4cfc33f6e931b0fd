//! Host code the runtime runs (a log sink, an interceptor, code a load or a reload runs)
//! asking for a load, an unload or a reload that would wait for itself: each is refused
//! saying why, and the runtime serves on.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::lifecycle::{fresh_dir, lib};
use common::watch::{next, options};
use common::{install, module_path};
use memlink_runtime::watch::{DirectoryWatch, WatchEvent};
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

/// A reload asked from code a reload runs, on its thread, is refused: a log sink given
/// the record module `a` logs while it saves its state (`tests/fixtures/saves_loudly.c`)
/// reloads module `b`, whose save logs too, whose sink reloads `a`: the thread would wait
/// for the reload of `a` it runs in. The outer reload goes on.
#[test]
fn a_reload_asked_from_inside_a_reload_is_refused() {
    use std::sync::{Arc, Mutex, OnceLock};

    use memlink_runtime::reload::ReloadPolicy;
    use memlink_runtime::{LogEvent, LogSink, ModuleHandle, RuntimeConfig};

    /// On the record one module's save logs, reloads the other.
    #[derive(Default)]
    struct ReloadsTheOther {
        target: OnceLock<(Runtime, [(ModuleHandle, PathBuf); 2])>,
        tried: Mutex<Vec<String>>,
    }
    impl LogSink for ReloadsTheOther {
        fn record(&self, event: &LogEvent<'_>) {
            if event.message != "saving" {
                return;
            }
            let (rt, [a, b]) = self.target.get().expect("set before the reload");
            let (other, file) = if event.module == "a" { b } else { a };
            let carry = ReloadPolicy::default().carry_state(true);
            let tried = rt.reload_with(*other, ModuleRef::from_path(file), &carry);
            self.tried.lock().unwrap().push(
                tried
                    .map(|_| "reloaded".to_owned())
                    .unwrap_or_else(|e| e.to_string()),
            );
        }
    }

    let fixture = common::compile_c(
        &["runtime/tests/fixtures/saves_loudly.c"],
        "libsaves_loudly.so",
        true,
    );
    let sink = Arc::new(ReloadsTheOther::default());
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::INFO)
        .log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let files = ["a", "b"].map(|n| common::module_copy_of(&fixture, &format!("saves_loudly_{n}")));
    let a = rt.load_as(ModuleRef::from_path(&files[0]), "a").unwrap();
    let b = rt.load_as(ModuleRef::from_path(&files[1]), "b").unwrap();
    let _ = sink
        .target
        .set((rt.clone(), [(a, files[0].clone()), (b, files[1].clone())]));
    let (done, ended) = std::sync::mpsc::channel();
    let file = files[0].clone();
    let reloading = std::thread::spawn(move || {
        let carry = ReloadPolicy::default().carry_state(true);
        let _ = done.send(
            rt.reload_with(a, ModuleRef::from_path(&file), &carry)
                .map(drop),
        );
    });
    // Only a hang reaches this watchdog; it asserts nothing about speed.
    let outer = ended
        .recv_timeout(Duration::from_secs(60))
        .expect("the reload ended");
    reloading.join().unwrap();
    outer.unwrap();
    let tried = sink.tried.lock().unwrap().clone();
    assert_eq!(tried.len(), 1, "{tried:?}");
    assert!(tried[0].contains("inside another reload"), "{tried:?}");
}

/// A watch dropped from a log sink, inside a call to a module the watch is unloading
/// (its file was removed), returns: the watch's thread waits for that very call to
/// leave the module, so waiting for the thread there would wait for ever. Before, the
/// drop joined the thread and the call, the unload and the host hung.
#[test]
fn a_watch_dropped_inside_a_call_it_waits_for_does_not_wait_for_itself() {
    use std::sync::{mpsc, Arc, Mutex, OnceLock};

    use memlink_runtime::{LogEvent, LogSink, ModuleHandle, RuntimeConfig};

    /// On the module's first record: removes its file, waits for the watch to start
    /// unloading it (a call from another thread is refused), then drops the watch.
    #[derive(Default)]
    struct DropsTheWatch {
        watch: Mutex<Option<DirectoryWatch>>,
        target: OnceLock<(Runtime, ModuleHandle, PathBuf)>,
    }
    impl LogSink for DropsTheWatch {
        fn record(&self, event: &LogEvent<'_>) {
            let Some(watch) = self.watch.lock().unwrap().take() else {
                return;
            };
            assert_eq!(event.module, "basic");
            let (rt, h, file) = self.target.get().expect("set before the call").clone();
            std::fs::remove_file(&file).unwrap();
            // Another thread, not in this call: its calls are refused once the unload
            // closed the module to new calls, and the unload then waits for this one.
            std::thread::spawn(move || {
                while rt.call(h, "noop", b"").is_ok() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
            .join()
            .unwrap();
            drop(watch);
        }
    }

    let dir = fresh_dir("dropped-inside-a-call");
    let file = lib(&dir, "basic");
    install(&module_path("basic"), &file);
    let sink = Arc::new(DropsTheWatch::default());
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::INFO)
        .log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let watch = rt.watch(&dir, options()).unwrap();
    let h = match next(&watch) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    let _ = sink.target.set((rt.clone(), h, file.clone()));
    *sink.watch.lock().unwrap() = Some(watch);
    let (done, ended) = mpsc::channel();
    let caller = rt.clone();
    std::thread::spawn(move || {
        let _ = done.send(caller.call(h, "chatty", &common::mp(&(1u32,))).map(drop));
    });
    // Only a hang reaches this watchdog; it asserts nothing about speed.
    let called = ended
        .recv_timeout(common::HANG)
        .expect("the call whose sink dropped the watch returned");
    called.unwrap();
    assert!(sink.watch.lock().unwrap().is_none(), "the sink dropped it");
    // The unload the watch began ends once the call is over: the module goes.
    let mut gone = false;
    for _ in 0..12_000 {
        if rt.modules().iter().all(|(_, m)| m.name != "basic") {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(gone, "the unload the watch began ended");
}

/// A log sink given the record a module logs from its `memlink_dependencies` export,
/// while the module loads, that loads, unloads or reloads a module of the same runtime
/// (after a load into another runtime, which is made) is refused, saying why: the load holds the lock those wait for until it returns.
/// Before, the sink's load waited for that lock for ever, and the host's load with it
/// (`tests/fixtures/depends_on.c`, built to log as it declares).
#[test]
fn a_load_asked_for_by_a_sink_the_module_being_loaded_logs_to_is_refused() {
    use std::sync::{mpsc, Arc, Mutex, OnceLock};

    use memlink_runtime::{LogEvent, LogSink, ModuleHandle, RuntimeConfig};

    /// On the record the module logs as it declares, asks for a load, an unload and a
    /// reload.
    #[derive(Default)]
    struct Reenters {
        target: OnceLock<(Runtime, ModuleHandle)>,
        said: Mutex<Vec<String>>,
    }
    impl LogSink for Reenters {
        fn record(&self, event: &LogEvent<'_>) {
            if event.message != "declaring" {
                return;
            }
            let (rt, basic) = self.target.get().expect("set before the load");
            // Another runtime's load is its own, and made; this load is still running.
            let other = Runtime::with_local_resolver();
            let elsewhere = other.load(ModuleRef::from_path(module_path("basic")));
            self.said
                .lock()
                .unwrap()
                .push(format!("{:?}", elsewhere.map(drop)));
            let file = ModuleRef::from_path(module_path("greeter_v1"));
            let tried = [
                rt.load(file).map(drop),
                rt.unload(*basic),
                rt.reload(*basic, ModuleRef::from_path(module_path("basic")))
                    .map(drop),
            ];
            let mut said = self.said.lock().unwrap();
            said.extend(tried.map(|t| t.map_or_else(|e| e.to_string(), |()| "done".into())));
        }
    }

    let logs = common::compile_c_with(
        &["runtime/tests/fixtures/depends_on.c"],
        "libdepends_on_logs.so",
        true,
        &["-DDEPENDS_ON_LOGS"],
    );
    let sink = Arc::new(Reenters::default());
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::TRACE)
        .log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let basic = rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    let _ = sink.target.set((rt.clone(), basic));
    let (done, ended) = mpsc::channel();
    let loader = rt.clone();
    std::thread::spawn(move || {
        let _ = done.send(loader.load(ModuleRef::from_path(&logs)).map(drop));
    });
    // Only a hang reaches this watchdog; it asserts nothing about speed.
    let loaded = ended.recv_timeout(common::HANG).expect("the load returned");
    loaded.unwrap();
    let said = sink.said.lock().unwrap().clone();
    assert_eq!(said.len(), 4, "{said:?}");
    assert_eq!(said[0], "Ok(())");
    for (told, action) in said[1..].iter().zip(["load", "unload", "reload"]) {
        assert_eq!(
            *told,
            format!("cannot {action} a module from inside the load of `depends_on`")
        );
    }
    // The runtime serves on, and the same requests from the host are made.
    assert_eq!(&*rt.call(basic, "echo", b"on").unwrap(), b"on");
    rt.handle_of("depends_on").unwrap();
    let greeter = rt
        .load(ModuleRef::from_path(module_path("greeter_v1")))
        .unwrap();
    rt.unload(greeter).unwrap();
    rt.unload(basic).unwrap();
}

/// Two runtimes, each loading a module that logs as it declares its dependencies, on a
/// thread of its own, with a log sink that loads a module into the other runtime on that
/// record once both loads are there: a load from inside another runtime's load is made
/// (see above), unless it would wait in a loop: here the second of the two sinks' loads
/// is refused, saying why, and the first made once the other load is done. Before, each
/// sink's load waited for the other runtime's lock of loads, which the other thread's
/// load held while its sink waited for this one's: neither load returned.
#[test]
fn loads_into_each_other_from_inside_two_runtimes_loads_do_not_deadlock() {
    use std::sync::{mpsc, Barrier, Mutex, OnceLock};

    use memlink_runtime::{LogEvent, LogSink};

    /// On the record the module logs as it declares, once both runtimes' loads are at
    /// it, loads `basic` into the other runtime.
    struct LoadsOther {
        other: OnceLock<Runtime>,
        both_loading: Arc<Barrier>,
        said: Mutex<Vec<String>>,
    }
    impl LogSink for LoadsOther {
        fn record(&self, event: &LogEvent<'_>) {
            if event.message != "declaring" {
                return;
            }
            let other = self.other.get().expect("set before the loads");
            self.both_loading.wait();
            let loaded = other.load(ModuleRef::from_path(module_path("basic")));
            self.said
                .lock()
                .unwrap()
                .push(format!("{:?}", loaded.map(drop)));
        }
    }

    let logs = common::compile_c_with(
        &["runtime/tests/fixtures/depends_on.c"],
        "libdepends_on_logs.so",
        true,
        &["-DDEPENDS_ON_LOGS"],
    );
    let both_loading = Arc::new(Barrier::new(2));
    let runtime = || {
        logging_to(Arc::new(LoadsOther {
            other: OnceLock::new(),
            both_loading: Arc::clone(&both_loading),
            said: Mutex::new(Vec::new()),
        }))
    };
    let (a, to_b) = runtime();
    let (b, to_a) = runtime();
    let _ = to_b.other.set(b.clone());
    let _ = to_a.other.set(a.clone());
    let (done, ended) = mpsc::channel();
    for rt in [a.clone(), b.clone()] {
        let (done, logs) = (done.clone(), logs.clone());
        std::thread::spawn(move || {
            let _ = done.send(rt.load(ModuleRef::from_path(&logs)).map(drop));
        });
    }
    each_returns_ok(&ended, 2, "both loads");
    // One sink's load was made, the other's refused saying why; both runtimes serve on.
    let said = sorted(&[&to_a.said, &to_b.said]);
    assert_eq!(
        said,
        [
            "Err(InsideLoad { loading: \"depends_on\", action: \"load\" })",
            "Ok(())"
        ]
    );
    for rt in [&a, &b] {
        let basic = rt
            .handle_of("basic")
            .or_else(|_| rt.load(ModuleRef::from_path(module_path("basic"))));
        assert_eq!(&*rt.call(basic.unwrap(), "echo", b"on").unwrap(), b"on");
    }
}

/// A reload in one runtime and a load in another, each on a thread of its own, each
/// module logging as it declares its dependencies, each runtime's log sink asking for
/// the other's lock once both are there: the reload's sink loads into the load's runtime
/// (whose lock of loads the load holds), and the load's sink reloads the same module
/// (whose lock of reloads the reload holds). One of the two is refused, saying why, and
/// the other made once the first is done. Before, the waits for a slot's lock of
/// reloads were not recorded: each sink waited for the other thread's lock, for ever.
#[test]
fn a_reload_and_a_load_asking_for_each_others_locks_do_not_deadlock() {
    let logs = depends_on_logs();
    // `reloads` runs the reload; `loads` the load.
    let [(reloads, reloads_sink), (loads, loads_sink)] = errand_runtimes(["declaring"; 2]);
    let reloaded = reloads.load(ModuleRef::from_path(&logs)).unwrap();
    reloads_sink.set(loads_basic(loads.clone()));
    loads_sink.set({
        let (reloads, logs) = (reloads.clone(), logs.clone());
        move || {
            reloads
                .reload(reloaded, ModuleRef::from_path(&logs))
                .map(drop)
        }
    });
    let (rt, path) = (reloads.clone(), logs.clone());
    let reload = move || rt.reload(reloaded, ModuleRef::from_path(&path)).map(drop);
    let (rt, path) = (loads.clone(), logs.clone());
    let load = move || rt.load(ModuleRef::from_path(&path)).map(drop);
    one_refused_one_done(
        reload,
        load,
        [&reloads_sink, &loads_sink],
        &[
            "Err(InsideLoad { loading: \"depends_on\", action: \"reload\" })",
            "Err(InsideReload { reloading: \"depends_on\", action: \"load\" })",
        ],
    );
    // Both runtimes serve on.
    serves_basic(&loads);
    reloads
        .reload(reloaded, ModuleRef::from_path(&logs))
        .unwrap();
}

/// A call in one runtime and a load in another, each on a thread of its own, each
/// runtime's log sink asking, once both are there, for what the other thread holds: the
/// call's sink (given a record the call logs) loads into the load's runtime, whose lock
/// of loads the load holds, and the load's sink (given a record the module logs as it
/// declares its dependencies) unloads the called module, which waits for the call to
/// end. One of the two is refused, saying why, and the other made once the first is
/// done. Before, an unload's wait for calls was no wait the loop check knew of: each
/// sink waited for the other thread for ever.
#[test]
fn an_unload_and_a_load_asking_for_each_others_holds_from_a_call_do_not_deadlock() {
    let logs = depends_on_logs();
    // `calls` runs `basic::chatty`, whose first record is "an error"; `loads` the load.
    let [(calls, calls_sink), (loads, loads_sink)] = errand_runtimes(["an error", "declaring"]);
    let basic = calls
        .load(ModuleRef::from_path(module_path("basic")))
        .unwrap();
    calls_sink.set(loads_basic(loads.clone()));
    loads_sink.set({
        let calls = calls.clone();
        move || calls.unload(basic)
    });
    let rt = calls.clone();
    let call = move || rt.call_typed::<_, ()>(basic, "chatty", &(1u32,));
    let rt = loads.clone();
    let load = move || rt.load(ModuleRef::from_path(&logs)).map(drop);
    one_refused_one_done(
        call,
        load,
        [&calls_sink, &loads_sink],
        &[
            "Err(InsideAwaitedCall { module: \"basic\", action: \"load\" })",
            "Err(InsideLoad { loading: \"depends_on\", action: \"unload\" })",
        ],
    );
    // Whichever was made, both runtimes serve on.
    serves_basic(&loads);
    match calls.call(basic, "echo", b"on") {
        Ok(out) => assert_eq!(&*out, b"on", "not unloaded"),
        Err(e) => assert!(matches!(e, RuntimeError::UnknownHandle(_)), "unloaded: {e}"),
    }
}

/// An unload asked for by host code that a reload of the same module runs (a `tracing`
/// layer given the record the new version logs from its `memlink_init`, outside any
/// call) is refused, saying why, and the reload goes on. Before, the unload waited for
/// the old version to be let go, which the reload on the same thread holds until it
/// returns: the thread waited for itself.
#[test]
fn an_unload_asked_for_inside_the_modules_reload_is_refused() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Mutex, OnceLock};

    /// Once armed, on the first event whose message is "starting": unloads the module,
    /// keeping what that returned.
    #[derive(Default)]
    struct Unloads {
        armed: AtomicBool,
        target: OnceLock<(Runtime, ModuleHandle)>,
        said: Mutex<Vec<String>>,
    }
    struct Layer(Arc<Unloads>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Layer {
        fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            struct Starting(bool);
            impl tracing::field::Visit for Starting {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    self.0 |= f.name() == "message" && format!("{v:?}") == "starting";
                }
            }
            let mut starting = Starting(false);
            e.record(&mut starting);
            if !starting.0 || !self.0.armed.swap(false, Ordering::AcqRel) {
                return;
            }
            let (rt, handle) = self.0.target.get().expect("set before arming");
            let outcome = rt.unload(*handle);
            self.0.said.lock().unwrap().push(format!("{outcome:?}"));
        }
    }

    // In a process of its own: the layer is the process's subscriber, and `tracing`
    // caches per callsite which subscribers want it.
    let test = "an_unload_asked_for_inside_the_modules_reload_is_refused";
    common::in_child(test, &[], || {
        use tracing_subscriber::layer::SubscriberExt;
        let unloads = Arc::new(Unloads::default());
        let subscriber = tracing_subscriber::registry().with(Layer(Arc::clone(&unloads)));
        tracing::subscriber::set_global_default(subscriber).unwrap();
        let logs = common::compile_c_with(
            &["runtime/tests/fixtures/depends_on.c"],
            "libdepends_on_init_logs.so",
            true,
            &["-DFIXTURE_INIT_LOGS"],
        );
        let rt = Runtime::with_local_resolver();
        let handle = rt.load(ModuleRef::from_path(&logs)).unwrap();
        let _ = unloads.target.set((rt.clone(), handle));
        unloads.armed.store(true, Ordering::Release);
        let (done, ended) = mpsc::channel();
        {
            let (rt, logs) = (rt.clone(), logs.clone());
            std::thread::spawn(move || {
                let _ = done.send(rt.reload(handle, ModuleRef::from_path(&logs)).map(drop));
            });
        }
        // Only a hang reaches this watchdog; it asserts nothing about speed.
        let reloaded = ended
            .recv_timeout(common::HANG)
            .expect("the reload returned");
        reloaded.unwrap();
        assert_eq!(
            *unloads.said.lock().unwrap(),
            ["Err(InsideReload { reloading: \"depends_on\", action: \"unload\" })"]
        );
        // The reload put the new version in; asked for from outside it, the unload is
        // made.
        assert_eq!(rt.module_info(handle).unwrap().name, "depends_on");
        rt.unload(handle).unwrap();
    });
}

/// A reload asked for from a log sink inside a call runs the module's state save inside
/// that call's chain: a save that calls a module the chain holds re-enters it, as any
/// call from host code there does. Module `a` (one slot, as every module here) calls `b`,
/// which logs; the sink reloads `c`, whose save calls `a`
/// (`tests/fixtures/saves_calling.c`). Before, the save was made as if from outside every
/// call: it waited for `a`'s only slot, held by the call the sink runs in, for ever (or,
/// as here with `Saturation::Reject`, the reload failed as `a` saturated).
#[test]
fn a_state_save_made_inside_a_call_reenters_the_modules_of_its_chain() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, OnceLock};

    use memlink_runtime::reload::ReloadPolicy;
    use memlink_runtime::{LogEvent, LogSink, Saturation};

    /// On the first "ping" record, reloads `c`, carrying its state.
    #[derive(Default)]
    struct ReloadsC {
        target: OnceLock<(Runtime, ModuleHandle, PathBuf)>,
        fired: AtomicBool,
        tried: Mutex<Vec<String>>,
    }
    impl LogSink for ReloadsC {
        fn record(&self, event: &LogEvent<'_>) {
            if event.message != "ping" || self.fired.swap(true, Ordering::SeqCst) {
                return;
            }
            let (rt, c, file) = self.target.get().expect("set before the call");
            let carry = ReloadPolicy::default().carry_state(true);
            let tried = rt.reload_with(*c, ModuleRef::from_path(file), &carry);
            self.tried.lock().unwrap().push(
                tried
                    .map(|_| "reloaded".to_owned())
                    .unwrap_or_else(|e| e.to_string()),
            );
        }
    }

    let fixture = common::compile_c(
        &["runtime/tests/fixtures/saves_calling.c"],
        "libsaves_calling.so",
        true,
    );
    let sink = Arc::new(ReloadsC::default());
    let mut config = RuntimeConfig::default()
        .log_level(tracing::Level::INFO)
        .log_sink(sink.clone());
    config.max_concurrency = 1;
    config.saturation = Saturation::Reject;
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let files =
        ["a", "b", "c"].map(|n| common::module_copy_of(&fixture, &format!("saves_calling_{n}")));
    let a = rt.load_as(ModuleRef::from_path(&files[0]), "a").unwrap();
    rt.load_as(ModuleRef::from_path(&files[1]), "b").unwrap();
    let c = rt.load_as(ModuleRef::from_path(&files[2]), "c").unwrap();
    let _ = sink.target.set((rt.clone(), c, files[2].clone()));
    assert_eq!(rt.call(a, "relay", b"").unwrap(), b"");
    let tried = sink.tried.lock().unwrap().clone();
    assert_eq!(tried, ["reloaded"]);
    // Both serve on, `c` in its new version.
    assert_eq!(rt.call(a, "ping", b"").unwrap(), b"");
    assert_eq!(rt.call(c, "ping", b"").unwrap(), b"");
}

/// A log sink that, once armed, on the first record whose message is `trigger`: waits
/// for the other sink, then runs its errand and keeps what it returned.
struct Errand {
    trigger: &'static str,
    armed: std::sync::atomic::AtomicBool,
    both_there: Arc<std::sync::Barrier>,
    run: std::sync::OnceLock<Box<dyn Fn() -> Result<(), RuntimeError> + Send + Sync>>,
    said: std::sync::Mutex<Vec<String>>,
}

impl Errand {
    /// Sets the errand.
    fn set(&self, run: impl Fn() -> Result<(), RuntimeError> + Send + Sync + 'static) {
        assert!(self.run.set(Box::new(run)).is_ok(), "set once");
    }
}

impl memlink_runtime::LogSink for Errand {
    fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
        use std::sync::atomic::Ordering;
        if event.message != self.trigger || !self.armed.swap(false, Ordering::AcqRel) {
            return;
        }
        self.both_there.wait();
        let outcome = (self.run.get().expect("set before arming"))();
        self.said.lock().unwrap().push(format!("{outcome:?}"));
    }
}

/// Two runtimes, each logging to an [`Errand`] of its own on `triggers`, the errands
/// waiting for each other before they run.
fn errand_runtimes(triggers: [&'static str; 2]) -> [(Runtime, Arc<Errand>); 2] {
    let both_there = Arc::new(std::sync::Barrier::new(2));
    triggers.map(|trigger| {
        logging_to(Arc::new(Errand {
            trigger,
            armed: std::sync::atomic::AtomicBool::new(false),
            both_there: Arc::clone(&both_there),
            run: std::sync::OnceLock::new(),
            said: std::sync::Mutex::new(Vec::new()),
        }))
    })
}

/// Arms both `sinks`, then runs `a` and `b` on threads of their own: each must return
/// `Ok`, one sink's errand must have been refused with one of `refused` (which one
/// depends on which thread asked last), and the other's done.
fn one_refused_one_done(
    a: impl FnOnce() -> Result<(), RuntimeError> + Send + 'static,
    b: impl FnOnce() -> Result<(), RuntimeError> + Send + 'static,
    sinks: [&Errand; 2],
    refused: &[&str],
) {
    use std::sync::atomic::Ordering;
    for sink in sinks {
        sink.armed.store(true, Ordering::Release);
    }
    let (done, ended) = std::sync::mpsc::channel();
    let done_too = done.clone();
    std::thread::spawn(move || {
        let _ = done.send(a());
    });
    std::thread::spawn(move || {
        let _ = done_too.send(b());
    });
    each_returns_ok(&ended, 2, "both");
    let said = sorted(&[&sinks[0].said, &sinks[1].said]);
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(refused.contains(&said[0].as_str()), "{said:?}");
    assert_eq!(said[1], "Ok(())", "{said:?}");
}

/// An errand that loads `basic` into `rt`.
fn loads_basic(rt: Runtime) -> impl Fn() -> Result<(), RuntimeError> + Send + Sync {
    move || {
        rt.load(ModuleRef::from_path(module_path("basic")))
            .map(drop)
    }
}

/// Calls `basic` in `rt`, loading it first unless an errand did.
fn serves_basic(rt: &Runtime) {
    let basic = rt
        .handle_of("basic")
        .or_else(|_| rt.load(ModuleRef::from_path(module_path("basic"))))
        .unwrap();
    assert_eq!(&*rt.call(basic, "echo", b"on").unwrap(), b"on");
}

/// `depends_on.c` built to log "declaring" (at info) as it declares its dependencies.
fn depends_on_logs() -> PathBuf {
    common::compile_c_with(
        &["runtime/tests/fixtures/depends_on.c"],
        "libdepends_on_logs.so",
        true,
        &["-DDEPENDS_ON_LOGS"],
    )
}

/// Takes `n` outcomes from `ended`, each of which must be `Ok`: those of `what`, run on
/// threads of their own. Only a hang reaches its watchdog; it asserts nothing about
/// speed.
fn each_returns_ok(
    ended: &std::sync::mpsc::Receiver<Result<(), RuntimeError>>,
    n: usize,
    what: &str,
) {
    for _ in 0..n {
        let outcome = ended
            .recv_timeout(common::HANG)
            .unwrap_or_else(|_| panic!("{what} returned"));
        outcome.unwrap();
    }
}

/// What the sinks kept, together, sorted.
fn sorted(said: &[&std::sync::Mutex<Vec<String>>]) -> Vec<String> {
    let mut all: Vec<String> = said
        .iter()
        .flat_map(|s| s.lock().unwrap().clone())
        .collect();
    all.sort();
    all
}

/// A runtime whose module records, at every level, go to `sink`; and the sink.
fn logging_to<S: memlink_runtime::LogSink + 'static>(sink: Arc<S>) -> (Runtime, Arc<S>) {
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::TRACE)
        .log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    (rt, sink)
}
