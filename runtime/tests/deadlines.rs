//! Deadlines reach the module, cancel async exports promptly and stop late sync ones.

mod common;

use std::time::{Duration, Instant};

use common::{load_all, mp};
use memlink_runtime::{CallOptions, ModuleError, RuntimeConfig};

fn timeout_of(r: Result<memlink_runtime::CallOutput, memlink_runtime::RuntimeError>) -> Duration {
    match r.map_err(|e| e.module_error().cloned()) {
        Err(Some(ModuleError::Timeout(d))) => d,
        other => panic!("expected a timeout, got {:?}", other.map(|o| o.to_vec())),
    }
}

/// The call ends with `Timeout` carrying the time it was given, no earlier than its
/// deadline, and the export's future was dropped at its `.await` (cancelled) rather than
/// left to finish its 10 s sleep.
#[test]
fn an_async_export_is_cancelled_at_its_deadline() {
    // A private copy: the cancellation count is the image's.
    let rt = memlink_runtime::Runtime::with_local_resolver();
    let copy = common::module_copy("async_echo", "async_echo_cancelled");
    let h = rt
        .load(memlink_runtime::ModuleRef::from_path(copy))
        .unwrap();
    let cancelled = || rt.call_typed::<_, u64>(h, "cancelled", &()).unwrap();
    let given = Duration::from_millis(50);
    for round in 1..=5 {
        let start = Instant::now();
        let options = CallOptions::default().timeout(given);
        let reported =
            timeout_of(rt.call_with(h, "echo_after", &mp(&(10_000u64, [1u8])), &options));
        assert!(
            start.elapsed() >= given,
            "not before the deadline: {:?}",
            start.elapsed()
        );
        assert!(
            reported <= given && reported > Duration::ZERO,
            "the time it was given: {reported:?}"
        );
        assert_eq!(cancelled(), round, "the future was dropped, not finished");
    }
    let out = rt.call(h, "echo_after", &mp(&(1u64, [7u8]))).unwrap();
    assert_eq!(out, [7], "the module keeps serving (a raw result)");
    assert_eq!(cancelled(), 5, "a call that finishes is not a cancellation");
}

#[test]
fn a_sync_export_past_its_deadline_is_not_started() {
    // A private copy: other tests in this binary start `slow_sync` in the shared image.
    let rt = memlink_runtime::Runtime::with_local_resolver();
    let copy = common::module_copy("async_echo", "async_echo_not_started");
    let h = [rt
        .load(memlink_runtime::ModuleRef::from_path(copy))
        .unwrap()];
    let before: u64 = rt.call_typed(h[0], "slow_sync_started", &()).unwrap();
    let past = CallOptions::default().deadline(Instant::now() - Duration::from_millis(1));
    let refused = rt.call_with(h[0], "slow_sync", &mp(&(1u64,)), &past);
    let text = refused.as_ref().err().map(ToString::to_string);
    assert_eq!(timeout_of(refused), Duration::ZERO);
    // Said as what happened, not as a timeout "after 0ns".
    assert_eq!(
        text.as_deref(),
        Some("async_echo::slow_sync failed: timed out: its deadline had passed before it started")
    );
    let after: u64 = rt.call_typed(h[0], "slow_sync_started", &()).unwrap();
    assert_eq!(after, before, "the export never ran");
    // It is counted all the same: a call, failed `timeout`.
    let slow = common::figures_of(&rt, "slow_sync");
    assert_eq!((slow.calls, slow.errors_of("timeout")), (1, 1));
}

#[test]
fn a_sync_export_that_finishes_late_reports_timeout() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["async_echo"]);
    let options = CallOptions::default().timeout(Duration::from_millis(30));
    let start = Instant::now();
    timeout_of(rt.call_with(h[0], "slow_sync", &mp(&(100u64,)), &options));
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "a sync export cannot be interrupted"
    );
    let ok: u64 = rt.call_typed(h[0], "slow_sync", &(1u64,)).unwrap();
    assert_eq!(ok, 1);
}

#[test]
fn the_runtime_default_timeout_applies_when_a_call_sets_none() {
    let config = RuntimeConfig::default().default_timeout(Duration::from_millis(40));
    let rt = memlink_runtime::Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let copy = common::module_copy("async_echo", "async_echo_default_timeout");
    let h = rt
        .load(memlink_runtime::ModuleRef::from_path(copy))
        .unwrap();
    let left: Option<u64> = rt.call_typed(h, "time_left", &()).unwrap();
    assert!(left.is_some_and(|ms| ms <= 40), "{left:?}");
    let reported = timeout_of(rt.call(h, "echo_after", &mp(&(10_000u64, [0u8]))));
    assert!(reported <= Duration::from_millis(40), "{reported:?}");
    let cancelled: u64 = rt.call_typed(h, "cancelled", &()).unwrap();
    assert_eq!(
        cancelled, 1,
        "the 10 s sleep was cancelled at the default deadline"
    );
    // A caller's own timeout replaces the default, the longest one an instant cannot
    // hold included: that is no limit, not the default's 40 ms.
    let unlimited = CallOptions::default().timeout(Duration::MAX);
    let left: Option<u64> = rt
        .typed::<(), Option<u64>>(h, "time_left")
        .unwrap()
        .call_with(&(), &unlimited)
        .unwrap();
    assert!(left.is_some_and(|ms| ms > 60_000), "{left:?}");
    let out = rt
        .call_with(h, "echo_after", &mp(&(80u64, [7u8])), &unlimited)
        .unwrap();
    assert_eq!(out, [7u8], "the 80 ms sleep finished");
}

/// A module's own settings win over the runtime's: its default timeout, and its
/// concurrency limit (the error names the module's limit); another module loaded
/// without settings keeps the runtime's.
#[test]
fn a_module_loaded_with_its_own_settings_keeps_them() {
    use memlink_runtime::{ModuleRef, ModuleSettings, RuntimeError, Saturation};
    let config = RuntimeConfig::default()
        .default_timeout(Duration::from_secs(10))
        .concurrency(8, Saturation::Reject);
    let rt = memlink_runtime::Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let own = ModuleSettings::default()
        .name("strict")
        .max_concurrency(1)
        .default_timeout(Duration::from_millis(40));
    let strict = rt
        .load_with(
            ModuleRef::from_path(common::module_copy("async_echo", "async_echo_strict")),
            &own,
        )
        .unwrap();
    let plain = rt
        .load_with(
            ModuleRef::from_path(common::module_copy("async_echo", "async_echo_plain")),
            &ModuleSettings::default().name("plain"),
        )
        .unwrap();
    assert_eq!(rt.module_info(strict).unwrap().name, "strict");

    let left: Option<u64> = rt.call_typed(strict, "time_left", &()).unwrap();
    assert!(left.is_some_and(|ms| ms <= 40), "{left:?}");
    let left: Option<u64> = rt.call_typed(plain, "time_left", &()).unwrap();
    assert!(left.is_some_and(|ms| ms > 40 && ms <= 10_000), "{left:?}");

    // One call holds `strict`'s only slot; a second is refused naming the limit of 1,
    // while `plain` (the runtime's 8) takes two at once.
    let rt = std::sync::Arc::new(rt);
    let holder = {
        let rt = std::sync::Arc::clone(&rt);
        std::thread::spawn(move || {
            let opts = CallOptions::default().timeout(Duration::from_secs(5));
            rt.call_with(strict, "hold", &mp(&(500u64,)), &opts)
        })
    };
    let until = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        match rt.call_typed::<_, Option<u64>>(strict, "time_left", &()) {
            Err(e @ RuntimeError::Saturated { .. }) => break e,
            _ if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
            other => panic!("never saturated: {other:?}"),
        }
    };
    assert!(
        matches!(refused, RuntimeError::Saturated { limit: 1, .. }),
        "{refused}"
    );
    let plain_busy: f32 = rt.call_typed(plain, "hold", &(0u64,)).unwrap();
    assert_eq!(plain_busy, 0.0);
    holder.join().unwrap().unwrap();
}

/// As `RuntimeConfig::default_timeout` says: a default too long for the clock to count
/// from now is no deadline at all (the module sees none), and a call's own deadline
/// replaces a module's default even when it is the later one.
#[test]
fn a_default_past_the_clock_is_none_and_a_later_own_deadline_wins() {
    use memlink_runtime::{ModuleRef, ModuleSettings};
    let config = RuntimeConfig::default().default_timeout(Duration::MAX);
    let rt = memlink_runtime::Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let unbounded = rt
        .load(ModuleRef::from_path(common::module_copy(
            "async_echo",
            "async_echo_default_max",
        )))
        .unwrap();
    let left: Option<u64> = rt.call_typed(unbounded, "time_left", &()).unwrap();
    assert_eq!(left, None, "no deadline reached the module");
    let short = ModuleSettings::default()
        .name("short")
        .default_timeout(Duration::from_millis(40));
    let short = rt
        .load_with(
            ModuleRef::from_path(common::module_copy("async_echo", "async_echo_short")),
            &short,
        )
        .unwrap();
    let left: Option<u64> = rt.call_typed(short, "time_left", &()).unwrap();
    assert!(
        left.is_some_and(|ms| ms <= 40),
        "the module's own default: {left:?}"
    );
    let own = CallOptions::default().timeout(Duration::from_secs(600));
    let left = rt
        .typed::<(), Option<u64>>(short, "time_left")
        .unwrap()
        .call_with(&(), &own)
        .unwrap();
    assert!(
        left.is_some_and(|ms| ms > 60_000),
        "the call's own: {left:?}"
    );
}

/// A default timeout of 0, the runtime's or the module's, is refused at load, naming it:
/// every call made without a deadline would time out before it starts. Before, the load
/// was made, and each such call failed with a timeout of 0 that named no setting.
#[test]
fn a_default_timeout_of_zero_is_refused_at_load_naming_it() {
    use memlink_runtime::{ModuleRef, ModuleSettings, Runtime, RuntimeError};
    let basic = || ModuleRef::from_path(common::module_path("basic"));
    let config = RuntimeConfig::default().default_timeout(Duration::ZERO);
    let zero = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let rt = Runtime::with_local_resolver();
    let settings = ModuleSettings::default().default_timeout(Duration::ZERO);
    for (err, setting) in [
        (
            zero.load(basic()).unwrap_err(),
            "RuntimeConfig::default_timeout",
        ),
        (
            rt.load_with(basic(), &settings).unwrap_err(),
            "ModuleSettings::default_timeout",
        ),
    ] {
        assert!(matches!(err, RuntimeError::BadSetting { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(setting) && text.contains("would time out before it starts"),
            "{text}"
        );
    }
    // The runtime serves on: the module loads with a timeout that is not 0.
    let own = ModuleSettings::default().default_timeout(Duration::from_secs(60));
    let h = rt.load_with(basic(), &own).unwrap();
    assert_eq!(rt.call_typed::<_, u32>(h, "add", &(2u32, 3u32)).unwrap(), 5);
}

/// A module's most time a call is given holds every call to it, whatever the caller
/// asks: a later deadline or none is brought in to it, an earlier one is kept, and a
/// module's nested call into it ends by it too. A limit of 0 is refused at load.
#[test]
fn a_modules_max_call_time_holds_every_call_whatever_its_caller_asks() {
    use memlink_runtime::{ModuleRef, ModuleSettings, RuntimeError};
    let rt = memlink_runtime::Runtime::with_local_resolver();
    let capped = rt
        .load_with(
            ModuleRef::from_path(common::module_copy("async_echo", "async_echo_capped")),
            &ModuleSettings::default()
                .name("capped")
                .max_call_time(Duration::from_millis(40)),
        )
        .unwrap();
    let info = rt.module_info(capped).unwrap();
    assert_eq!(info.max_call_time, Some(Duration::from_millis(40)));
    assert_eq!(info.default_timeout, None);

    let left = |options: &CallOptions| -> Option<u64> {
        rt.typed::<(), Option<u64>>(capped, "time_left")
            .unwrap()
            .call_with(&(), options)
            .unwrap()
    };
    for asked in [
        CallOptions::default(),
        CallOptions::default().timeout(Duration::from_secs(3600)),
        CallOptions::default().timeout(Duration::MAX),
    ] {
        let ms = left(&asked);
        assert!(ms.is_some_and(|ms| ms <= 40), "{asked:?}: {ms:?}");
    }
    let own = left(&CallOptions::default().timeout(Duration::from_millis(10)));
    assert!(
        own.is_some_and(|ms| ms <= 10),
        "an earlier deadline is kept: {own:?}"
    );

    // A 10 s sleep asked for with an hour's deadline ends at the limit, cancelled.
    let hour = CallOptions::default().timeout(Duration::from_secs(3600));
    let reported = timeout_of(rt.call_with(capped, "echo_after", &mp(&(10_000u64, [1u8])), &hour));
    assert!(reported <= Duration::from_millis(40), "{reported:?}");
    let cancelled: u64 = rt.call_typed(capped, "cancelled", &()).unwrap();
    assert_eq!(cancelled, 1, "the sleep was cancelled at the limit");

    // A module without a limit, called with no deadline, calls `capped`: the nested call
    // sees the limit, not its caller's lack of one.
    let relay = rt
        .load(ModuleRef::from_path(common::module_path("nested_calls")))
        .unwrap();
    let out = rt
        .call(
            relay,
            "relay",
            &mp(&("capped", "time_left", Vec::<u8>::new())),
        )
        .unwrap();
    let nested: Option<u64> = rmp_serde::from_slice(&out).unwrap();
    assert!(nested.is_some_and(|ms| ms <= 40), "{nested:?}");

    let zero = rt.load_with(
        ModuleRef::from_path(common::module_copy("async_echo", "async_echo_zero_limit")),
        &ModuleSettings::default().max_call_time(Duration::ZERO),
    );
    assert!(
        matches!(&zero, Err(RuntimeError::BadSetting { setting, .. })
            if setting == "ModuleSettings::max_call_time = 0"),
        "{zero:?}"
    );
}
