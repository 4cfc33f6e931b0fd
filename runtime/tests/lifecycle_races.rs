//! Reloads racing what else goes on: calls still running on the version a reload
//! replaces, other reloads of the module, unloads, and loads of other modules.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::lifecycle::{greeter, version, with_v1};
use common::module_path;
use memlink_runtime::reload::ReloadPolicy;
use memlink_runtime::{CallOptions, ModuleError, ModuleRef, Runtime, RuntimeConfig, RuntimeError};

/// A module's concurrency limit holds across a reload: a call still running on the old
/// version holds its slot, and a call to the new version that finds the limit taken is
/// refused (`Saturation::Reject`, a limit of 1); and an unload that comes meanwhile
/// waits for that call. Before, each version had a gate of its own: the new version ran a
/// call beside the old one's, and the unload returned while the old one's ran on.
#[test]
fn the_concurrency_limit_holds_across_a_reload_and_an_unload_waits_for_the_old_calls() {
    use memlink_runtime::{resolver::LocalResolver, Saturation};
    let config = RuntimeConfig::default().concurrency(1, Saturation::Reject);
    let rt = Runtime::new(config, LocalResolver);
    let h = rt.load_as(greeter(1), "greeter").unwrap();
    let in_flight = {
        let rt = rt.clone();
        // Tried again while the probe below holds the one slot.
        std::thread::spawn(move || loop {
            let options = CallOptions::default().timeout(Duration::from_millis(3_000));
            match rt.call_with(h, "linger", b"", &options) {
                Err(RuntimeError::Saturated { .. }) => std::thread::yield_now(),
                other => return other.map(drop),
            }
        })
    };
    // The slot is `linger`'s once a call is refused for it.
    while !matches!(
        rt.call_typed::<_, u32>(h, "version", &()),
        Err(RuntimeError::Saturated { .. })
    ) {
        assert!(!in_flight.is_finished(), "{:?}", in_flight.join());
        std::thread::yield_now();
    }
    let allowed = ReloadPolicy::default().allow_changes(true);
    let reload = {
        let rt = rt.clone();
        std::thread::spawn(move || rt.reload_with(h, greeter(2), &allowed).map(drop))
    };
    // Switched: the handle describes the new version (no call needed to learn it).
    while rt.module_info(h).unwrap().version == "1.4.2" {
        assert!(!reload.is_finished(), "{:?}", reload.join());
        std::thread::yield_now();
    }
    let to_new = rt.call_typed::<_, u32>(h, "version", &());
    assert!(
        matches!(to_new, Err(RuntimeError::Saturated { .. })),
        "a call to the new version ran beside the old one's: {to_new:?}"
    );
    assert!(
        !in_flight.is_finished(),
        "the old version's call ended early"
    );
    rt.unload(h).unwrap();
    // The call leaves its slot an instant before its thread ends: given that instant,
    // not the second and more its deadline is away.
    let returned = std::time::Instant::now();
    while !in_flight.is_finished() && returned.elapsed() < Duration::from_millis(500) {
        std::thread::yield_now();
    }
    assert!(
        in_flight.is_finished(),
        "the unload returned while a call ran on the version the reload replaced"
    );
    assert!(
        in_flight.join().unwrap().is_err(),
        "it lingers until its deadline"
    );
    reload.join().unwrap().unwrap();
}

/// A call in flight keeps the version it runs on: the reload that replaces it returns
/// only once the call has, however the call holds its module (a call by resolved
/// method, typed, by name, or nested from another module, made once before so that it
/// takes the path of a known target).
#[test]
fn a_reload_waits_for_the_calls_still_running_on_the_old_version() {
    let (rt, h) = with_v1();
    let uses = rt
        .load(ModuleRef::from_path(module_path("uses_greeter")))
        .unwrap();
    let linger = rt.method(h, "linger").unwrap();
    // The nested case first: `uses_greeter` calls `greeter@^1`, which v2 is not.
    for how in ["nested", "method", "typed", "name"] {
        let (warmed, warm) = std::sync::mpsc::channel();
        let in_flight = {
            let rt = rt.clone();
            std::thread::spawn(move || {
                let options = |ms| CallOptions::default().timeout(Duration::from_millis(ms));
                match how {
                    "method" => rt.call_method(linger, b"", &options(600)).map(drop),
                    "typed" => rt
                        .typed::<(), ()>(h, "linger")
                        .and_then(|m| m.call_with(&(), &options(600))),
                    "name" => rt.call_with(h, "linger", b"", &options(600)).map(drop),
                    _ => {
                        let through = rt.typed::<(), ()>(uses, "linger_through").unwrap();
                        let warm = through.call_with(&(), &options(5));
                        assert!(warm.is_err(), "it lingers until its deadline");
                        warmed.send(()).unwrap();
                        through.call_with(&(), &options(600))
                    }
                }
            })
        };
        if how == "nested" {
            warm.recv().unwrap();
        }
        // Asked of the version the call runs on, before the reload.
        while rt.call_typed::<_, u64>(h, "lingering", &()).unwrap() == 0 {
            if in_flight.is_finished() {
                panic!("{how}: the call ended early: {:?}", in_flight.join());
            }
            std::thread::yield_now();
        }
        let allowed = ReloadPolicy::default().allow_changes(true);
        let to = if version(&rt, h) == 1 { 2 } else { 1 };
        let reload = {
            let rt = rt.clone();
            std::thread::spawn(move || rt.reload_with(h, greeter(to), &allowed).map(drop))
        };
        std::thread::sleep(Duration::from_millis(150));
        if in_flight.is_finished() {
            panic!("{how}: the call ended early: {:?}", in_flight.join());
        }
        assert!(
            !reload.is_finished(),
            "{how}: the reload returned while a call ran on the version it replaced"
        );
        let ended = in_flight.join().unwrap();
        assert!(
            matches!(
                &ended,
                Err(RuntimeError::Call {
                    error: ModuleError::Timeout(_),
                    ..
                })
            ),
            "{how}: {ended:?}"
        );
        reload.join().unwrap().unwrap();
        assert_eq!(version(&rt, h), to, "{how}");
    }
}

#[test]
fn racing_reloads_and_unloads_end_in_one_consistent_state() {
    for round in 0..20 {
        let (rt, h) = with_v1();
        let racers: Vec<_> = (0..3)
            .map(|r| {
                let rt = rt.clone();
                std::thread::spawn(move || match r {
                    0 => rt.unload(h).map(|_| 0),
                    _ => rt.reload(h, greeter(2)).map(|_| 2),
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        match rt.call_typed::<_, u32>(h, "version", &()) {
            // The unload won: the module is gone for good, its name free.
            Err(RuntimeError::UnknownHandle(_)) => {
                assert!(results[0].is_ok(), "round {round}: {results:?}");
                for reload in &results[1..] {
                    assert!(
                        matches!(reload, Ok(2) | Err(RuntimeError::UnknownHandle(_))),
                        "round {round}: {reload:?}"
                    );
                }
                assert!(rt.handle_of("greeter").is_err());
                assert!(rt.metrics().is_empty());
                rt.load_as(greeter(1), "greeter").unwrap();
            }
            Ok(v) => panic!("round {round}: the unload succeeded yet v{v} serves: {results:?}"),
            Err(e) => panic!("round {round}: {e}"),
        }
        // Two reloads racing without an unload: one version serves, the handle holds.
        let h = rt.handle_of("greeter").unwrap();
        let racers: Vec<_> = [1, 2]
            .into_iter()
            .map(|to| {
                let rt = rt.clone();
                let allowed = ReloadPolicy::default().allow_changes(true);
                std::thread::spawn(move || rt.reload_with(h, greeter(to), &allowed).map(|_| to))
            })
            .collect();
        let done: Vec<u32> = racers
            .into_iter()
            .map(|r| r.join().unwrap().unwrap())
            .collect();
        let serving = version(&rt, h);
        assert!(done.contains(&serving), "round {round}");
    }
}

/// A reload that carries state takes it with a call, which waits for the module's only
/// slot while another call holds it; meanwhile, other modules load and unload. Before,
/// the reload waited holding the lock that orders loads, so a load of another module
/// waited for the lingering call too (for good, with a call that has no deadline).
#[test]
fn a_reload_waiting_to_take_state_holds_up_no_other_load() {
    use memlink_runtime::Saturation;
    let config = RuntimeConfig::default().concurrency(1, Saturation::Wait);
    let rt = Arc::new(Runtime::new(
        config,
        memlink_runtime::resolver::LocalResolver,
    ));
    // A private copy: `linger` counts in the image, and other tests load greeter_v1's.
    let copy = common::module_copy("greeter_v1", "greeter_v1_reload_waits_for_state");
    let h = rt.load_as(ModuleRef::from_path(copy), "greeter").unwrap();
    let lingering = {
        let rt = Arc::clone(&rt);
        std::thread::spawn(move || {
            let options = CallOptions::default().timeout(Duration::from_secs(5));
            rt.call_with(h, "linger", b"", &options).map(|_| ())
        })
    };
    // The linger call holds the module's one slot.
    while rt.backpressure(h).unwrap() < 1.0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let reload = {
        let rt = Arc::clone(&rt);
        std::thread::spawn(move || {
            let carry = ReloadPolicy::default().carry_state(true);
            rt.reload_with(h, greeter(2), &carry)
        })
    };
    // Time for the reload to reach its wait for the slot.
    std::thread::sleep(Duration::from_millis(300));
    let basic = rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    rt.unload(basic).unwrap();
    assert!(
        !lingering.is_finished(),
        "another module loaded and unloaded while the call lingered"
    );
    let err = lingering.join().unwrap().unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Timeout(_))),
        "{err}"
    );
    let reloaded = reload.join().unwrap().unwrap();
    assert!(reloaded.state_carried.is_some());
    assert_eq!(version(&rt, h), 2);
}

/// Reloads of one module from two threads at once follow one another: each is made
/// ready against the version the one before it left. Every reload succeeds, state
/// crosses each, and the module serves.
#[test]
fn reloads_of_one_module_from_two_threads_each_take_effect() {
    // A private copy: the count is the image's, and other tests load greeter_v1's.
    let rt = Runtime::with_local_resolver();
    let copy = common::module_copy("greeter_v1", "greeter_v1_two_reloaders");
    let h = rt.load_as(ModuleRef::from_path(copy), "greeter").unwrap();
    let rt = Arc::new(rt);
    let hit = |rt: &Runtime| rt.call_typed::<_, u64>(h, "hit", &()).unwrap();
    assert_eq!(hit(&rt), 1);
    let policy = ReloadPolicy::default()
        .allow_changes(true)
        .carry_state(true);
    let reloaders: Vec<_> = (0..2)
        .map(|t| {
            let rt = Arc::clone(&rt);
            std::thread::spawn(move || {
                for i in 0..10 {
                    let to = if (t + i) % 2 == 0 { 2 } else { 1 };
                    let reloaded = rt.reload_with(h, greeter(to), &policy).unwrap();
                    assert_eq!(reloaded.state_carried, Some(8));
                }
            })
        })
        .collect();
    for r in reloaders {
        r.join().unwrap();
    }
    // The count crossed all twenty reloads, one `hit` before them.
    assert_eq!(hit(&rt), 2);
}

/// A reload returns once the calls on the version it took out have ended; the next
/// reload of the module does not wait for them: it replaces the version the first one
/// put in. Before, it waited for the first reload's lingering calls too.
#[test]
fn a_second_reload_does_not_wait_for_the_calls_on_the_version_the_first_took_out() {
    let rt = Arc::new(Runtime::with_local_resolver());
    // A private copy: `linger` counts in the image, and other tests load greeter_v1's.
    let copy = common::module_copy("greeter_v1", "greeter_v1_second_reload");
    let h = rt.load_as(ModuleRef::from_path(copy), "greeter").unwrap();
    let lingering = {
        let rt = Arc::clone(&rt);
        std::thread::spawn(move || {
            let options = CallOptions::default().timeout(Duration::from_secs(3));
            rt.call_with(h, "linger", b"", &options).map(drop)
        })
    };
    while rt.call_typed::<_, u64>(h, "lingering", &()).unwrap() == 0 {
        std::thread::yield_now();
    }
    let allowed = ReloadPolicy::default().allow_changes(true);
    let first = {
        let rt = Arc::clone(&rt);
        std::thread::spawn(move || rt.reload_with(h, greeter(2), &allowed).map(drop))
    };
    while version(&rt, h) != 2 {
        std::thread::yield_now();
    }
    rt.reload_with(h, greeter(1), &allowed).unwrap();
    assert!(
        !lingering.is_finished() && !first.is_finished(),
        "the second reload returned while the call on v1 lingered, and the first waited"
    );
    assert!(
        lingering.join().unwrap().is_err(),
        "it lingers to its deadline"
    );
    first.join().unwrap().unwrap();
    assert_eq!(version(&rt, h), 1);
}
