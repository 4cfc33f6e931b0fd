//! Stress: real modules called from several threads at once while other threads change
//! what they call (reloads back and forth, unloads and loads, a watched directory whose
//! file is replaced) and look at it (Prometheus scrapes, a log sink and an interceptor
//! that call into the runtime). Every call's outcome is checked: a result must be right,
//! an error one the docs allow for what was going on. Each scenario is bounded by counts,
//! not by time, and runs under a watchdog that turns a hang into a failure (`HANG`).

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{de, install, module_path, mp, HANG};
use memlink_runtime::intercept::{CallInfo, Interceptor, Outcome};
use memlink_runtime::reload::ReloadPolicy;
use memlink_runtime::watch::{WatchEvent, WatchOptions};
use memlink_runtime::{
    CallOptions, CallOutput, LogEvent, LogSink, ModuleError, ModuleHandle, ModuleRef, Runtime,
    RuntimeConfig, RuntimeError, Saturation,
};

/// Runs `scenario` on a thread of its own and waits for it, failing the test if it has
/// not ended by `HANG` (a hang), and passing on its panic (a wrong outcome).
fn watchdog(name: &str, scenario: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            scenario();
            let _ = tx.send(());
        })
        .unwrap();
    match rx.recv_timeout(HANG) {
        Ok(()) => thread.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: hung (not done after {HANG:?})")
        }
    }
}

/// Joins `thread`, passing on its panic.
fn join<T>(thread: JoinHandle<T>) -> T {
    thread
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Joins `threads` and adds up what they returned, passing on the first panic.
fn join_sum(threads: Vec<JoinHandle<u32>>) -> u32 {
    threads.into_iter().map(join).sum()
}

/// Starts `threads` callers of `rt`. Caller `t` runs `round(rt, t, i)` for i = 1, 2, …:
/// `at_least` rounds, then on until `stop` is set, `at_most` rounds at the most. Each
/// returns the sum of what its rounds returned (a round, a refusal, a timeout).
fn callers(
    rt: &Runtime,
    threads: u32,
    (at_least, at_most): (u32, u32),
    stop: &Arc<AtomicBool>,
    round: impl Fn(&Runtime, u32, u32) -> u32 + Send + Sync + 'static,
) -> Vec<JoinHandle<u32>> {
    let round = Arc::new(round);
    (0..threads)
        .map(|t| {
            let (rt, stop, round) = (rt.clone(), Arc::clone(stop), Arc::clone(&round));
            std::thread::spawn(move || {
                let (mut i, mut sum) = (0u32, 0u32);
                while i < at_least || (!stop.load(Ordering::Relaxed) && i < at_most) {
                    i += 1;
                    sum += round(&rt, t, i);
                }
                sum
            })
        })
        .collect()
}

/// Starts a thread that makes `change(rt, n)` for n = 1 to `times`, then sets `stop`; it
/// returns `times`.
fn churner(
    rt: &Runtime,
    stop: &Arc<AtomicBool>,
    times: u32,
    change: impl Fn(&Runtime, u32) + Send + 'static,
) -> JoinHandle<u32> {
    let (rt, stop) = (rt.clone(), Arc::clone(stop));
    std::thread::spawn(move || {
        for n in 1..=times {
            change(&rt, n);
        }
        stop.store(true, Ordering::Relaxed);
        times
    })
}

fn runtime(config: RuntimeConfig) -> Runtime {
    Runtime::new(config, memlink_runtime::resolver::LocalResolver)
}

/// `nested_calls`, whose `relay` calls a module by name.
fn load_relay(rt: &Runtime) -> ModuleHandle {
    rt.load(ModuleRef::from_path(module_path("nested_calls")))
        .unwrap()
}

/// The version of whichever `greeter` serves, asked through `relay`.
fn version_via(rt: &Runtime, relay: ModuleHandle) -> Result<u32, RuntimeError> {
    rt.call_typed::<_, Vec<u8>>(relay, "relay", &("greeter", "version", Vec::<u8>::new()))
        .map(|out| de(&out))
}

/// A call of `linger` whose deadline of `ms` passes while it runs.
fn linger(rt: &Runtime, h: ModuleHandle, ms: u64) -> Result<CallOutput, RuntimeError> {
    let short = CallOptions::default().timeout(Duration::from_millis(ms));
    rt.call_with(h, "linger", b"", &short)
}

fn timed_out(e: &RuntimeError) -> bool {
    matches!(
        e,
        RuntimeError::Call {
            error: ModuleError::Timeout(_),
            ..
        }
    )
}

/// Refused while the breaker is open.
fn unavailable(e: &RuntimeError) -> bool {
    matches!(
        e,
        RuntimeError::Call {
            error: ModuleError::ServiceUnavailable,
            ..
        }
    )
}

/// Reloads `h` to version 1 or 2 of greeter, the one `n` names.
fn reload_to(rt: &Runtime, h: ModuleHandle, n: u32) {
    rt.reload_with(h, greeter(1 + n % 2), &back_and_forth())
        .unwrap_or_else(|e| panic!("reload {n}: {e:?}"));
}

fn greeter(version: u32) -> ModuleRef {
    ModuleRef::from_path(module_path(&format!("greeter_v{version}")))
}

fn back_and_forth() -> ReloadPolicy {
    ReloadPolicy::default().allow_changes(true)
}

/// The handle `greeter` is loaded under now (it changes with each unload and load).
#[derive(Default, Debug)]
struct Current(RwLock<Option<ModuleHandle>>);

impl Current {
    fn get(&self) -> ModuleHandle {
        self.0.read().unwrap().expect("greeter was loaded")
    }
    fn set(&self, h: ModuleHandle) {
        *self.0.write().unwrap() = Some(h);
    }
}

/// Checks a call to `greeter` that may race an unload: the right `value`, or
/// `UnknownHandle` naming `h`, which is then stale for good.
fn right_or_gone<T: PartialEq + std::fmt::Debug>(
    rt: &Runtime,
    h: ModuleHandle,
    what: &str,
    got: Result<T, RuntimeError>,
    want: T,
) -> bool {
    match got {
        Ok(v) => {
            assert_eq!(v, want, "{what}");
            true
        }
        Err(RuntimeError::UnknownHandle(stale)) if stale == h => {
            assert!(!rt.is_loaded(h), "{what}: refused a handle still loaded");
            false
        }
        Err(e) => panic!("{what}: {e:?}"),
    }
}

/// Every sample line of a scrape parses, and no series (name and labels) appears twice.
fn check_scrape(text: &str) {
    let mut series = HashSet::new();
    let mut families = HashSet::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let family = rest.split(' ').next().unwrap().to_owned();
            assert!(families.insert(family), "TYPE twice: {line}\n{text}");
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(
            value.parse::<f64>().is_ok() || matches!(value, "+Inf" | "-Inf" | "NaN"),
            "a sample's value: {line}"
        );
        assert!(
            series.insert(key.to_owned()),
            "series twice: {line}\n{text}"
        );
    }
}

/// The runtime a hook calls into, set once it exists.
#[derive(Default, Debug)]
struct Hooked {
    runtime: OnceLock<(Runtime, ModuleHandle)>,
    greeter: Arc<Current>,
    calls: AtomicU64,
}

impl Hooked {
    /// A call from a hook: `add` of `basic` (always loaded), and of `greeter` (which
    /// may be gone), and a scrape.
    fn call_in(&self, seed: u32) {
        let Some((rt, basic)) = self.runtime.get() else {
            return;
        };
        let sum: u32 = rt.call_typed(*basic, "add", &(seed, 1u32)).unwrap();
        assert_eq!(sum, seed.wrapping_add(1), "a hook's call to basic");
        let h = self.greeter.get();
        right_or_gone(
            rt,
            h,
            "a hook's call to greeter",
            rt.call_typed::<_, u32>(h, "add", &(seed, 2u32)),
            seed.wrapping_add(2),
        );
        if seed.is_multiple_of(8) {
            check_scrape(&rt.prometheus());
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

struct Sink(Arc<Hooked>);

impl LogSink for Sink {
    fn record(&self, event: &LogEvent<'_>) {
        if event.message == "some information" {
            let n = event
                .fields
                .iter()
                .find(|(k, _)| *k == "n")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            self.0.call_in(n);
        }
    }
}

#[derive(Debug)]
struct AfterGreeterAdd(Arc<AtomicU64>, Arc<OnceLock<Arc<Hooked>>>);

impl Interceptor for AfterGreeterAdd {
    fn after(&self, call: &CallInfo<'_>, _: &Outcome<'_>) {
        if call.module == "greeter" && call.method == "add" && call.depth == 0 {
            let n = self.0.fetch_add(1, Ordering::Relaxed);
            if n.is_multiple_of(4) {
                if let Some(h) = self.1.get() {
                    h.call_in(n as u32);
                }
            }
        }
    }
}

/// Four threads call `greeter` every way there is (by name, by resolved method, typed,
/// through a nested relay, with a deadline that passes) while one thread reloads it
/// back and forth between two versions, one unloads it and loads it again, one scrapes
/// the figures, and a log sink and an interceptor call into the runtime from inside
/// calls.
#[test]
fn calls_of_every_shape_survive_reloads_unloads_scrapes_and_hooks() {
    watchdog("every shape", || {
        let hooked = Arc::new(Hooked::default());
        let slot = Arc::new(OnceLock::new());
        let config = RuntimeConfig::default()
            .log_level(tracing::Level::INFO)
            .log_sink(Arc::new(Sink(Arc::clone(&hooked))))
            .interceptor(Arc::new(AfterGreeterAdd(
                Arc::new(AtomicU64::new(0)),
                Arc::clone(&slot),
            )));
        let rt = runtime(config);
        let basic = rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
        let relay = load_relay(&rt);
        let current = Arc::clone(&hooked.greeter);
        current.set(rt.load_as(greeter(1), "greeter").unwrap());
        hooked.runtime.set((rt.clone(), basic)).ok().unwrap();
        slot.set(Arc::clone(&hooked)).ok().unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        // Until the churn is over (at least 50 rounds, at most 5,000); each counts its
        // rounds.
        let callers = callers(&rt, 4, (50, 5_000), &stop, {
            let (current, answered) = (Arc::clone(&current), Arc::clone(&answered));
            move |rt, t, i| {
                let h = current.get();
                let want = i.wrapping_add(t);
                let args = mp(&(i, t));
                let what = |how: &str| format!("thread {t}, call {i}, {how}");
                let by_name = rt.call(h, "add", &args).map(|o| de::<u32>(&o));
                right_or_gone(rt, h, &what("by name"), by_name, want);
                let by_ref = rt
                    .method(h, "add")
                    .and_then(|m| rt.call_method(m, &args[..], &CallOptions::default()))
                    .map(|o| de::<u32>(&o));
                right_or_gone(rt, h, &what("by method"), by_ref, want);
                let typed = rt
                    .typed::<(u32, u32), u32>(h, "add")
                    .and_then(|add| add.call(&(i, t)));
                right_or_gone(rt, h, &what("typed"), typed, want);
                // Through a module: the name finds whichever version serves, or none
                // between an unload and the next load.
                match version_via(rt, relay) {
                    Ok(v) => assert!(v == 1 || v == 2, "{}: v{v}", what("relay")),
                    Err(RuntimeError::Call {
                        error: ModuleError::ModuleNotFound(name),
                        ..
                    }) if name == "greeter" => {}
                    Err(e) => panic!("{}: {e:?}", what("relay")),
                }
                // A deadline that passes while the call runs.
                match linger(rt, h, 1) {
                    Err(e) if timed_out(&e) => {}
                    Err(RuntimeError::UnknownHandle(stale)) if stale == h => {}
                    other => panic!("{}: {other:?}", what("linger")),
                }
                // Logs, so the sink calls in from inside this call.
                let chatty = rt.call_typed::<_, ()>(basic, "chatty", &(i,));
                assert!(chatty.is_ok(), "{}: {chatty:?}", what("chatty"));
                answered.fetch_add(1, Ordering::Relaxed);
                1
            }
        });

        let reloads = Arc::new(AtomicU64::new(0));
        let reloader = {
            let (rt, current, stop) = (rt.clone(), Arc::clone(&current), Arc::clone(&stop));
            let counted = Arc::clone(&reloads);
            std::thread::spawn(move || {
                let mut reloads = 0u32;
                let mut n = 0u32;
                while reloads < 40 && n < 2_000 {
                    n += 1;
                    let h = current.get();
                    let to = 1 + n % 2;
                    match rt.reload_with(h, greeter(to), &back_and_forth()) {
                        Ok(r) => {
                            assert_eq!(r.to_version.split('.').next(), Some(&*to.to_string()));
                            reloads += 1;
                            counted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(RuntimeError::UnknownHandle(stale)) if stale == h => {
                            // Unloaded: wait for the load that follows.
                            while current.get() == h {
                                std::thread::yield_now();
                            }
                        }
                        Err(e) => panic!("reload {n} to v{to}: {e:?}"),
                    }
                }
                stop.store(true, Ordering::Relaxed);
                reloads
            })
        };
        let unloader = {
            let (rt, current, stop) = (rt.clone(), Arc::clone(&current), Arc::clone(&stop));
            let reloads = Arc::clone(&reloads);
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) && n < 200 {
                    // A few reloads between two unloads, so that both happen often.
                    let seen = reloads.load(Ordering::Relaxed);
                    while !stop.load(Ordering::Relaxed)
                        && reloads.load(Ordering::Relaxed) < seen + 4
                    {
                        std::thread::yield_now();
                    }
                    n += 1;
                    let h = current.get();
                    rt.unload(h).unwrap_or_else(|e| panic!("unload {n}: {e:?}"));
                    let again = rt
                        .load_as(greeter(1), "greeter")
                        .unwrap_or_else(|e| panic!("load {n}: {e:?}"));
                    current.set(again);
                    std::thread::yield_now();
                }
                n
            })
        };
        let scraper = {
            let (rt, stop) = (rt.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) && n < 2_000 {
                    n += 1;
                    check_scrape(&rt.prometheus());
                    let _ = rt.modules();
                }
            })
        };
        let rounds = join_sum(callers);
        let reloads = join(reloader);
        let cycles = join(unloader);
        join(scraper);
        assert_eq!(
            answered.load(Ordering::Relaxed),
            u64::from(rounds),
            "no call was lost"
        );
        assert!(
            hooked.calls.load(Ordering::Relaxed) > 0,
            "the hooks called in"
        );
        eprintln!("{rounds} rounds, {reloads} reloads, {cycles} unload-load cycles");
        // The runtime serves on, with one greeter.
        let h = current.get();
        assert_eq!(rt.handle_of("greeter").unwrap(), h);
        let sum: u32 = rt.call_typed(h, "add", &(2u32, 3u32)).unwrap();
        assert_eq!(sum, 5);
        check_scrape(&rt.prometheus());
    });
}

/// With one slot per module and `Wait`, calls that re-enter their own module (directly,
/// and through a second module and back) never wait for the slot their chain holds,
/// also while each module is reloaded under them; calls from other threads queue for
/// the slot, and end by their deadline when the two modules' chains wait on each other
/// (which the docs of `Saturation::Wait` allow).
#[test]
fn one_slot_waits_and_reentry_survive_reloads() {
    watchdog("one slot", || {
        let rt = runtime(RuntimeConfig::default().concurrency(1, Saturation::Wait));
        let hz_path = common::module_copy("hazards", "hazards_stress");
        let hz = rt
            .load_as(ModuleRef::from_path(hz_path.clone()), "hz")
            .unwrap();
        let nested = module_path("nested_calls");
        let a = rt
            .load_as(ModuleRef::from_path(nested.clone()), "a")
            .unwrap();
        let b_path = common::module_copy("nested_calls", "nested_calls_stress");
        let b = rt
            .load_as(ModuleRef::from_path(b_path.clone()), "b")
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // Each caller counts its bounces that timed out.
        let callers = callers(&rt, 4, (20, 5_000), &stop, move |rt, t, i| {
            // Re-enters itself by name: never waits for its own slot.
            let count: u64 = rt
                .call_typed(hz, "reenter_after", &(0u64, "hz"))
                .unwrap_or_else(|e| panic!("thread {t}, call {i}: {e:?}"));
            assert!(count >= 1);
            // a -> b -> a -> ... from both ends at once: a chain may wait for the other's
            // slot, so it has a deadline.
            let (from, me, peer) = if (i + t).is_multiple_of(2) {
                (a, "a", "b")
            } else {
                (b, "b", "a")
            };
            let options = CallOptions::default().timeout(Duration::from_millis(50));
            let bounced = rt
                .typed::<(u32, &str, &str), u32>(from, "bounce")
                .unwrap()
                .call_with(&(3, me, peer), &options);
            match bounced {
                Ok(depth) => {
                    assert_eq!(depth, 3, "thread {t}, call {i}");
                    0
                }
                Err(e) if timed_out(&e) => 1,
                Err(e) => panic!("thread {t}, call {i}: bounce: {e:?}"),
            }
        });
        let reloader = churner(&rt, &stop, 30, move |rt, n| {
            let (h, path) = match (n - 1) % 3 {
                0 => (hz, &hz_path),
                1 => (a, &nested),
                _ => (b, &b_path),
            };
            rt.reload(h, ModuleRef::from_path(path.clone()))
                .unwrap_or_else(|e| panic!("reload {n}: {e:?}"));
        });
        let timeouts = join_sum(callers);
        let reloads = join(reloader);
        eprintln!("{reloads} reloads, {timeouts} bounces timed out");
        let count: u64 = rt.call_typed(hz, "reenter_after", &(0u64, "hz")).unwrap();
        assert!(count >= 1);
        let depth: u32 = rt.call_typed(a, "bounce", &(4u32, "a", "b")).unwrap();
        assert_eq!(depth, 4);
    });
}

/// With two slots and `Reject`, six threads calling at once (directly and through a
/// relay) get a right result or `Saturated` (`CallFailed` saying so, for a nested call),
/// while the module is reloaded.
#[test]
fn reject_refuses_cleanly_under_reloads() {
    watchdog("reject", || {
        let rt = runtime(RuntimeConfig::default().concurrency(2, Saturation::Reject));
        let g = rt.load_as(greeter(1), "greeter").unwrap();
        let relay = load_relay(&rt);
        let stop = Arc::new(AtomicBool::new(false));
        // Each caller counts its calls refused.
        let callers = callers(&rt, 6, (50, 20_000), &stop, move |rt, t, i| {
            let mut refused = 0;
            match rt.call_typed::<_, u32>(g, "add", &(i, t)) {
                Ok(sum) => assert_eq!(sum, i + t),
                Err(RuntimeError::Saturated { limit: 2, .. }) => refused += 1,
                Err(e) => panic!("thread {t}, call {i}: {e:?}"),
            }
            let via = rt.call_typed::<_, u32>(relay, "add_via", &("greeter", i, t));
            match via {
                Ok(sum) => assert_eq!(sum, i + t),
                Err(RuntimeError::Saturated { limit: 2, .. }) => refused += 1,
                Err(RuntimeError::Call {
                    error: ModuleError::CallFailed(why),
                    ..
                }) if why.contains("saturated") => refused += 1,
                Err(e) => panic!("thread {t}, call {i}: add_via: {e:?}"),
            }
            refused
        });
        let reloader = churner(&rt, &stop, 30, move |rt, n| reload_to(rt, g, n));
        let refused = join_sum(callers);
        let reloads = join(reloader);
        eprintln!("{reloads} reloads, {refused} calls refused");
        let sum: u32 = rt.call_typed(g, "add", &(2u32, 3u32)).unwrap();
        assert_eq!(sum, 5);
        // Every slot came back: idle, each module reads as unloaded.
        assert_eq!(
            rt.backpressure(g).unwrap(),
            0.0,
            "a slot of greeter was lost"
        );
        assert_eq!(
            rt.backpressure(relay).unwrap(),
            0.0,
            "a slot of the relay was lost"
        );
    });
}

/// A watched directory whose module file is replaced again and again (each version in
/// turn) while three threads call the module by name, directly and through a relay:
/// every replacement hot-reloads, and every call is answered by one version or the
/// other.
#[test]
fn a_watched_file_replaced_again_and_again_while_calls_run() {
    watchdog("watch", || {
        let dir = common::scratch("stress-watch");
        let file: PathBuf = dir.join(format!("greeter.{}", std::env::consts::DLL_EXTENSION));
        install(&module_path("greeter_v1"), &file);
        let rt = Runtime::with_local_resolver();
        let relay = load_relay(&rt);
        let options = WatchOptions::default()
            .debounce(Duration::from_millis(10))
            .policy(back_and_forth());
        let watch = rt.watch(&dir, options).unwrap();
        let h = match watch.events().recv_timeout(HANG).expect("the first scan") {
            WatchEvent::Loaded { handle, .. } => handle,
            other => panic!("{other:?}"),
        };
        let stop = Arc::new(AtomicBool::new(false));
        // Each caller counts its rounds.
        let callers = callers(&rt, 3, (0, 20_000), &stop, move |rt, t, calls| {
            let found = rt.handle_of("greeter").expect("greeter stays loaded");
            assert_eq!(found, h, "a reload keeps the handle");
            let v: u32 = rt.call_typed(h, "version", &()).unwrap();
            assert!(v == 1 || v == 2);
            let sum: u32 = rt.call_typed(h, "add", &(calls, t)).unwrap();
            assert_eq!(sum, calls + t);
            let v = version_via(rt, relay).unwrap();
            assert!(v == 1 || v == 2);
            1
        });
        for n in 0..20u32 {
            let to = 2 - n % 2;
            install(&module_path(&format!("greeter_v{to}")), &file);
            loop {
                match watch
                    .events()
                    .recv_timeout(HANG)
                    .expect("the watch reports")
                {
                    WatchEvent::Reloaded {
                        handle, reloaded, ..
                    } => {
                        assert_eq!(handle, h);
                        if reloaded.to_version.starts_with(&to.to_string()) {
                            break;
                        }
                    }
                    other => panic!("replacement {n}: {other:?}"),
                }
            }
            let v: u32 = rt.call_typed(h, "version", &()).unwrap();
            assert_eq!(v, to, "replacement {n}: what the file holds serves");
        }
        stop.store(true, Ordering::Relaxed);
        let calls = join_sum(callers);
        eprintln!("{calls} rounds of calls across 20 replacements");
        drop(watch);
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// With one slot and `Wait`, calls without a deadline queue for the slot while other
/// calls hold it until their short deadline, and the module is reloaded, unloaded and
/// loaded again meanwhile: a queued call runs (right result) or is told the module is
/// gone, and none waits for a slot nobody gives back.
#[test]
fn one_slot_waiters_survive_unloads_and_reloads() {
    watchdog("one slot waiters", || {
        let rt = runtime(RuntimeConfig::default().concurrency(1, Saturation::Wait));
        let current = Arc::new(Current::default());
        current.set(rt.load_as(greeter(1), "greeter").unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        // Each caller counts its rounds.
        let callers = callers(&rt, 4, (20, 100_000), &stop, {
            let current = Arc::clone(&current);
            move |rt, t, i| {
                let h = current.get();
                let what = format!("thread {t}, call {i}");
                if (i + t).is_multiple_of(4) {
                    match linger(rt, h, 2) {
                        Err(e) if timed_out(&e) => {}
                        Err(RuntimeError::UnknownHandle(stale)) if stale == h => {}
                        other => panic!("{what}: linger: {other:?}"),
                    }
                } else {
                    let got = rt.call_typed::<_, u32>(h, "add", &(i, t));
                    right_or_gone(rt, h, &what, got, i + t);
                }
                1
            }
        });
        // Changes 0 to 29: each third an unload and a load, the others reloads.
        let churn = churner(&rt, &stop, 30, {
            let current = Arc::clone(&current);
            move |rt, n| {
                let (n, h) = (n - 1, current.get());
                if n % 3 == 2 {
                    rt.unload(h).unwrap_or_else(|e| panic!("unload {n}: {e:?}"));
                    current.set(rt.load_as(greeter(1), "greeter").unwrap());
                } else {
                    reload_to(rt, h, n);
                }
            }
        });
        let rounds = join_sum(callers);
        join(churn);
        eprintln!("{rounds} rounds across 20 reloads and 10 unload-load cycles");
        let sum: u32 = rt.call_typed(current.get(), "add", &(2u32, 3u32)).unwrap();
        assert_eq!(sum, 5);
    });
}

/// A breaker that opens after a few timeouts, with calls that time out and calls that
/// go well from four threads while the module is reloaded: a call goes well, fails by
/// its deadline, or is refused while the breaker is open; and once the failing calls
/// stop, the breaker closes again (a trial call is never lost, leaving it half-open for
/// good).
#[test]
fn a_breaker_under_concurrent_timeouts_and_reloads_closes_again() {
    watchdog("breaker", || {
        let breaker = memlink_runtime::health::BreakerConfig::new(3, Duration::from_millis(1));
        let config = RuntimeConfig::default().breaker(breaker);
        let rt = runtime(config);
        let g = rt.load_as(greeter(1), "greeter").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // Each caller counts its calls refused.
        let callers = callers(&rt, 4, (20, 20_000), &stop, move |rt, t, i| {
            let what = format!("thread {t}, call {i}");
            if t % 2 == 0 {
                match linger(rt, g, 1) {
                    Err(e) if timed_out(&e) => 0,
                    Err(e) if unavailable(&e) => 1,
                    other => panic!("{what}: linger: {other:?}"),
                }
            } else {
                match rt.call_typed::<_, u32>(g, "add", &(i, t)) {
                    Ok(sum) => {
                        assert_eq!(sum, i + t, "{what}");
                        0
                    }
                    Err(e) if unavailable(&e) => 1,
                    Err(e) => panic!("{what}: {e:?}"),
                }
            }
        });
        // Reloads 0 to 19.
        let reloader = churner(&rt, &stop, 20, move |rt, n| reload_to(rt, g, n - 1));
        let refused = join_sum(callers);
        join(reloader);
        eprintln!("{refused} calls refused by the breaker");
        // Quiet now: past its cool-down, a trial call closes the breaker. Tried until it
        // does (the watchdog ends a breaker that never closes).
        let mut tries = 0u64;
        loop {
            tries += 1;
            match rt.call_typed::<_, u32>(g, "add", &(2u32, 3u32)) {
                Ok(sum) => {
                    assert_eq!(sum, 5);
                    break;
                }
                Err(e) if unavailable(&e) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => panic!("after {tries} tries: {e:?}"),
            }
        }
        assert!(matches!(
            rt.health(g).unwrap(),
            memlink_runtime::health::Health::Ready
        ));
    });
}
