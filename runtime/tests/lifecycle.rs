//! Hot reload and unload, through real modules: `greeter_v1`, `greeter_v2` (one more
//! export) and `greeter_v3` (a breaking change) are three builds of one module.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{de, fixture, fixture_named, install, module_path, mp};
use memlink_runtime::reload::{MethodChange, ReloadPolicy};
use memlink_runtime::resolver::DirectoryResolver;
use memlink_runtime::watch::{DirectoryWatch, WatchEvent, WatchOptions};
use memlink_runtime::{
    CallOptions, ModuleError, ModuleHandle, ModuleRef, Runtime, RuntimeConfig, RuntimeError,
};

fn greeter(version: u32) -> ModuleRef {
    ModuleRef::from_path(module_path(&format!("greeter_v{version}")))
}

/// A runtime with `greeter_v1` loaded as `greeter`.
fn with_v1() -> (Runtime, ModuleHandle) {
    let rt = Runtime::with_local_resolver();
    let h = rt.load_as(greeter(1), "greeter").unwrap();
    (rt, h)
}

fn version(rt: &Runtime, h: ModuleHandle) -> u32 {
    rt.call_typed(h, "version", &()).unwrap()
}

/// A scratch path for a module file a test rewrites.
fn scratch(name: &str) -> PathBuf {
    let dir = common::workspace().join("target/lifecycle-scratch");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.{}", std::env::consts::DLL_EXTENSION))
}

#[test]
fn calls_from_two_threads_lose_nothing_across_200_reloads() {
    let (rt, h) = with_v1();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let callers: Vec<_> = (0..2)
        .map(|t| {
            let (rt, stop, seen) = (rt.clone(), stop.clone(), seen.clone());
            std::thread::spawn(move || {
                let add = rt.typed::<(u32, u32), u32>(h, "add").unwrap();
                let mut calls = 0u64;
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) || calls < 100 {
                    i = i.wrapping_add(1);
                    let v: u32 = rt
                        .call_typed(h, "version", &())
                        .unwrap_or_else(|e| panic!("thread {t}, call {calls}: {e}"));
                    assert!(v == 1 || v == 2, "version {v}");
                    seen[v as usize - 1].fetch_add(1, Ordering::Relaxed);
                    let sum = add
                        .call(&(i, t))
                        .unwrap_or_else(|e| panic!("thread {t}, call {calls}: {e}"));
                    assert_eq!(sum, i.wrapping_add(t));
                    calls += 2;
                }
                calls
            })
        })
        .collect();
    // Going back from v2 to v1 drops `greet`, a change the policy must allow.
    let back_and_forth = ReloadPolicy::default().allow_changes(true);
    for n in 0..200 {
        let to = if n % 2 == 0 { 2 } else { 1 };
        let reloaded = rt.reload_with(h, greeter(to), &back_and_forth).unwrap();
        assert_eq!(reloaded.changes.len(), 1, "{:?}", reloaded.changes);
        assert_eq!(
            rt.handle_of("greeter").unwrap(),
            h,
            "the handle never changes"
        );
        // Every call that starts after the reload returns runs the new version.
        assert_eq!(version(&rt, h), to);
    }
    stop.store(true, Ordering::Relaxed);
    let calls: u64 = callers.into_iter().map(|c| c.join().unwrap()).sum();
    let (v1, v2) = (
        seen[0].load(Ordering::Relaxed),
        seen[1].load(Ordering::Relaxed),
    );
    assert_eq!(
        (v1 + v2) * 2,
        calls,
        "every call was answered by one version"
    );
    assert!(v1 > 0 && v2 > 0, "both versions served: {v1} and {v2}");
    assert_eq!(version(&rt, h), 1);
}

#[test]
fn a_file_rebuilt_in_place_reloads_as_a_fresh_image() {
    let path = scratch("greeter_in_place");
    install(&module_path("greeter_v1"), &path);
    let rt = Runtime::with_local_resolver();
    let h = rt.load_as(ModuleRef::from_path(&path), "greeter").unwrap();
    assert_eq!(rt.call_typed::<_, u64>(h, "hit", &()).unwrap(), 1);
    install(&module_path("greeter_v2"), &path);
    rt.reload(h, ModuleRef::from_path(&path)).unwrap();
    assert_eq!(
        version(&rt, h),
        2,
        "the rebuilt code runs, not the image mapped first"
    );
    install(&module_path("greeter_v1"), &path);
    let err = rt.reload(h, ModuleRef::from_path(&path)).unwrap_err();
    assert!(err.to_string().contains("`greet` removed"), "{err}");
    let allowed = ReloadPolicy::default().allow_changes(true);
    rt.reload_with(h, ModuleRef::from_path(&path), &allowed)
        .unwrap();
    assert_eq!(version(&rt, h), 1);
    // A fresh image of v1: its statics start over.
    assert_eq!(rt.call_typed::<_, u64>(h, "hit", &()).unwrap(), 1);
    let info = rt.module_info(h).unwrap();
    assert_eq!(
        info.path,
        path.canonicalize().unwrap(),
        "it reports the host's path"
    );
}

#[test]
fn a_breaking_version_is_refused_unless_the_policy_allows_it() {
    let (rt, h) = with_v1();
    let err = rt.reload(h, greeter(3)).unwrap_err();
    let RuntimeError::ReloadRefused { module, reason } = &err else {
        panic!("{err}");
    };
    assert_eq!(module, "greeter");
    assert!(
        reason.contains("`add` changed from `add(a: u32, b: u32) -> u32"),
        "{err}"
    );
    assert!(reason.contains("`hit` removed"), "{err}");
    assert_eq!(version(&rt, h), 1, "the old version serves on");

    let allowed = ReloadPolicy::default().allow_changes(true);
    let reloaded = rt.reload_with(h, greeter(3), &allowed).unwrap();
    assert!(reloaded.changes.contains(&MethodChange::Removed {
        method: "hit".into()
    }));
    assert_eq!(version(&rt, h), 3);
    let sum: u64 = rt.call_typed(h, "add", &(1u64 << 40, 1u64)).unwrap();
    assert_eq!(sum, (1 << 40) + 1);
    assert!(matches!(
        rt.call(h, "hit", b""),
        Err(RuntimeError::UnknownMethod { .. })
    ));
}

#[test]
fn state_crosses_a_reload_only_when_asked() {
    let (rt, h) = with_v1();
    let hit = |rt: &Runtime| rt.call_typed::<_, u64>(h, "hit", &()).unwrap();
    for _ in 0..3 {
        hit(&rt);
    }
    let carry = ReloadPolicy::default().carry_state(true);
    let reloaded = rt.reload_with(h, greeter(2), &carry).unwrap();
    assert_eq!(reloaded.state_carried, Some(8));
    assert_eq!(hit(&rt), 4, "the count crossed");
    let allowed = ReloadPolicy::default().allow_changes(true);
    rt.reload_with(h, greeter(1), &allowed).unwrap();
    assert_eq!(hit(&rt), 1, "nothing crosses by default");

    // A version without the export refuses a reload that asks to carry state.
    let allowed = carry.allow_changes(true);
    let err = rt.reload_with(h, greeter(3), &allowed).unwrap_err();
    assert!(
        err.to_string()
            .contains("exports no `memlink_restore_state`"),
        "{err}"
    );
    assert_eq!(hit(&rt), 2, "the old version serves on, its state intact");
}

#[test]
fn a_reload_to_a_bad_file_leaves_the_old_version_serving() {
    let (rt, h) = with_v1();
    let junk = scratch("not_a_library");
    std::fs::write(&junk, b"this is not an ELF file").unwrap();
    let allowed = ReloadPolicy::default().allow_changes(true);
    let cases: [(ModuleRef, &str); 5] = [
        (
            ModuleRef::from_path("/nonexistent/libnone.so"),
            "no module file at",
        ),
        (
            ModuleRef::from_path(fixture("init_fails")),
            "holds module `init_fails`, not a version of `greeter`",
        ),
        (
            ModuleRef::from_path(&junk),
            "is not a loadable shared library",
        ),
        (
            ModuleRef::from_path(fixture("abi_v999")),
            "was built for memlink ABI 999",
        ),
        (
            ModuleRef::from_path(fixture_named("init_fails", "greeter")),
            "failed to initialize",
        ),
    ];
    for (reference, says) in cases {
        let err = rt.reload_with(h, reference.clone(), &allowed).unwrap_err();
        assert!(err.to_string().contains(says), "{reference:?}: {err}");
        assert_eq!(
            version(&rt, h),
            1,
            "{reference:?}: the old version serves on"
        );
    }
    // The error names the file the host gave, not the private copy loaded, also where
    // the dynamic loader's own words name the file it opened (an empty file).
    let err = rt.reload(h, ModuleRef::from_path(&junk)).unwrap_err();
    assert!(err.to_string().contains(&*junk.to_string_lossy()), "{err}");
    let empty = scratch("empty_library");
    std::fs::write(&empty, b"").unwrap();
    let err = rt
        .reload(h, ModuleRef::from_path(&empty))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&*empty.to_string_lossy()) && !err.contains("memlink-images"),
        "{err}"
    );
    assert_eq!(version(&rt, h), 1);
}

#[test]
fn nested_callers_resolved_handles_and_figures_follow_a_reload() {
    let (rt, h) = with_v1();
    let relay = rt
        .load(ModuleRef::from_path(module_path("nested_calls")))
        .unwrap();
    let via = |rt: &Runtime| -> u32 {
        let out = rt
            .call_typed::<_, Vec<u8>>(relay, "relay", &("greeter", "version", Vec::<u8>::new()))
            .unwrap();
        de(&out)
    };
    let method = rt.method(h, "add").unwrap();
    let typed = rt.typed::<(u32, u32), u32>(h, "add").unwrap();
    assert_eq!(via(&rt), 1);
    rt.call_method(method, &mp(&(1u32, 2u32))[..], &Default::default())
        .unwrap();
    rt.reload(h, greeter(2)).unwrap();
    assert_eq!(via(&rt), 2, "a nested call by name reaches the new version");
    let out = rt
        .call_method(method, &mp(&(2u32, 3u32))[..], &Default::default())
        .unwrap();
    assert_eq!(de::<u32>(&out), 5, "a method resolved before the reload");
    assert_eq!(
        typed.call(&(3, 4)).unwrap(),
        7,
        "a typed handle made before it"
    );
    let add = rt
        .metrics()
        .into_iter()
        .flat_map(|m| m.methods)
        .find(|m| m.module == "greeter" && m.method == "add")
        .unwrap();
    assert_eq!(add.calls, 3, "the figures run on across the reload");
}

#[test]
fn unloaded_slots_are_reused_and_stale_handles_refused() {
    let rt = Runtime::new(
        RuntimeConfig::default().max_modules(2),
        memlink_runtime::resolver::LocalResolver,
    );
    let mut stale = Vec::new();
    for _ in 0..50 {
        let h = rt.load_as(greeter(1), "greeter").unwrap();
        assert_eq!(version(&rt, h), 1);
        assert!(!stale.contains(&h), "{h} was handed out before");
        rt.unload(h).unwrap();
        stale.push(h);
    }
    let live = rt.load_as(greeter(1), "greeter").unwrap();
    for h in &stale {
        assert!(matches!(
            rt.call(*h, "version", b""),
            Err(RuntimeError::UnknownHandle(_))
        ));
        assert!(matches!(rt.unload(*h), Err(RuntimeError::UnknownHandle(_))));
        assert!(rt.reload(*h, greeter(2)).is_err());
    }
    assert_eq!(version(&rt, live), 1, "stale handles reached nothing");
    rt.load_as(greeter(2), "other").unwrap();
    assert!(matches!(
        rt.load_as(greeter(1), "third"),
        Err(RuntimeError::TooManyModules { limit: 2 })
    ));
}

#[test]
fn ten_thousand_load_and_unload_cycles() {
    let rt = Runtime::new(
        RuntimeConfig::default().max_modules(4),
        memlink_runtime::resolver::LocalResolver,
    );
    for i in 0..10_000 {
        let h = rt
            .load_as(greeter(1), "greeter")
            .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
        if i % 1000 == 0 {
            assert_eq!(version(&rt, h), 1);
        }
        rt.unload(h).unwrap_or_else(|e| panic!("cycle {i}: {e}"));
    }
    assert!(rt.metrics().is_empty(), "nothing is left loaded");
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

/// A fresh directory under the scratch directory.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = common::workspace()
        .join("target/lifecycle-scratch")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn lib(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("{stem}.{}", std::env::consts::DLL_EXTENSION))
}

/// A fresh directory `name` holding `greeter` 1.4.2 and 2.0.1, and a runtime that
/// resolves references there.
fn two_versions(name: &str) -> (PathBuf, Runtime) {
    let dir = fresh_dir(name);
    install(&module_path("greeter_v1"), &lib(&dir, "greeter@1.4.2"));
    install(&module_path("greeter_v2"), &lib(&dir, "greeter@2.0.1"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    (dir, rt)
}

/// A module calling another by name from one thread reaches it without a lookup once
/// it has looked it up (the thread keeps where the name led): every load, reload and
/// unload since must send the next call where a lookup would.
#[test]
fn a_nested_call_by_name_follows_every_change_of_what_the_name_finds() {
    let (_, rt) = two_versions("nested-follows");
    let relay = rt
        .load(ModuleRef::from_path(module_path("nested_calls")))
        .unwrap();
    // Twice each time: the first call may look the name up, the second goes where the
    // first one's lookup led.
    let twice = |target: &str| -> [Result<u32, String>; 2] {
        [0, 1].map(|_| {
            rt.call_typed::<_, Vec<u8>>(relay, "relay", &(target, "version", Vec::<u8>::new()))
                .map(|out| de::<u32>(&out))
                .map_err(|e| e.to_string())
        })
    };
    let gone = |got: &[Result<u32, String>; 2]| {
        got.iter()
            .all(|r| matches!(r, Err(e) if e.contains("not found") || e.contains("greeter")))
    };
    let one = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap();
    assert_eq!(twice("greeter"), [Ok(1), Ok(1)]);
    let two = rt.load(ModuleRef::parse("greeter@^2").unwrap()).unwrap();
    assert_eq!(
        twice("greeter"),
        [Ok(2), Ok(2)],
        "a higher version loaded beside it takes the name"
    );
    assert_eq!(twice("greeter@^1"), [Ok(1), Ok(1)]);
    rt.unload(two).unwrap();
    assert_eq!(twice("greeter"), [Ok(1), Ok(1)], "back to the one left");
    let back_and_forth = ReloadPolicy::default().allow_changes(true);
    rt.reload_with(one, greeter(2), &back_and_forth).unwrap();
    assert_eq!(twice("greeter"), [Ok(2), Ok(2)], "the reloaded version");
    let missing = twice("greeter@^1");
    assert!(gone(&missing), "nothing meets ^1 any more: {missing:?}");
    rt.unload(one).unwrap();
    let missing = twice("greeter");
    assert!(gone(&missing), "unloaded: {missing:?}");
    let again = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap();
    assert_eq!(
        twice("greeter"),
        [Ok(1), Ok(1)],
        "loaded again, in a reused slot"
    );
    assert_eq!(version(&rt, again), 1);
}

#[test]
fn versions_load_side_by_side_and_callers_choose_by_requirement() {
    let (dir, rt) = two_versions("versions");
    let one = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap();
    // A module loaded as a version is labelled so from the start: its series keep their
    // labels when another version loads beside it (they were renamed then), and when it
    // goes.
    let labels =
        |rt: &Runtime| -> Vec<String> { rt.metrics().into_iter().map(|m| m.module).collect() };
    assert_eq!(labels(&rt), ["greeter@1.4.2"]);
    let two = rt.load(ModuleRef::parse("greeter@^2").unwrap()).unwrap();
    assert_eq!((version(&rt, one), version(&rt, two)), (1, 2));
    let info = rt.module_info(one).unwrap();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("greeter", "1.4.2")
    );
    assert_eq!(rt.handle_of("greeter").unwrap(), two, "the highest version");
    assert_eq!(rt.handle_of("greeter@1.4").unwrap(), one);
    assert!(matches!(
        rt.handle_of("greeter@3"),
        Err(RuntimeError::UnknownModule { .. })
    ));

    // Nested calls choose by requirement too.
    let relay = rt
        .load(ModuleRef::from_path(module_path("nested_calls")))
        .unwrap();
    let via = |target: &str| -> Result<u32, RuntimeError> {
        let out =
            rt.call_typed::<_, Vec<u8>>(relay, "relay", &(target, "version", Vec::<u8>::new()))?;
        Ok(de(&out))
    };
    assert_eq!(via("greeter@^1").unwrap(), 1);
    assert_eq!(via("greeter@>=2").unwrap(), 2);
    assert_eq!(via("greeter").unwrap(), 2);
    let missing = via("greeter@^3").unwrap_err();
    assert!(
        missing.to_string().contains("greeter@^3"),
        "the error names what was asked for: {missing}"
    );

    // The same version twice under one name is refused; a requirement nothing meets is
    // a missing file naming it.
    install(&module_path("greeter_v1"), &lib(&dir, "copy"));
    let twice = rt
        .load(ModuleRef::from_path(lib(&dir, "copy")))
        .unwrap_err();
    assert!(
        matches!(&twice, RuntimeError::NameTaken { name } if name == "greeter@1.4.2"),
        "{twice}"
    );
    let none = rt.load(ModuleRef::parse("greeter@5").unwrap()).unwrap_err();
    assert!(
        matches!(&none, RuntimeError::NoSuchVersion { versions, .. } if versions == &["1.4.2", "2.0.1"])
            && none.to_string().contains("greeter@^5")
            && none.to_string().contains("there are 1.4.2, 2.0.1"),
        "{none}"
    );
    assert!(matches!(
        Runtime::with_local_resolver().load(ModuleRef::parse("greeter@1").unwrap()),
        Err(RuntimeError::BadReference { .. })
    ));
    // Each version's figures are its own series.
    let figures: Vec<String> = rt.metrics().into_iter().map(|m| m.module).collect();
    assert!(
        figures.contains(&"greeter@1.4.2".to_owned())
            && figures.contains(&"greeter@2.0.1".to_owned()),
        "{figures:?}"
    );
    common::promtool::promtool_accepts(&rt.prometheus());
    // Unloading one version leaves the other serving under the name, and its series
    // under their labels.
    rt.unload(two).unwrap();
    assert_eq!(rt.handle_of("greeter").unwrap(), one);
    assert_eq!(via("greeter").unwrap(), 1);
    assert!(
        labels(&rt).contains(&"greeter@1.4.2".to_owned()),
        "{:?}",
        labels(&rt)
    );
}

#[test]
fn a_module_is_refused_until_what_it_calls_is_loaded() {
    let rt = Runtime::with_local_resolver();
    let uses = ModuleRef::from_path(module_path("uses_greeter"));
    let err = rt.load(uses.clone()).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::MissingDependency { module, dependency }
            if module == "uses_greeter" && dependency == "greeter@^1"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("calls `greeter@^1`, which is not loaded"),
        "{err}"
    );
    rt.load(greeter(2)).unwrap();
    assert!(
        matches!(
            rt.load(uses.clone()),
            Err(RuntimeError::MissingDependency { .. })
        ),
        "2.0.1 does not meet ^1"
    );
    rt.load(greeter(1)).unwrap();
    let h = rt.load(uses).unwrap();
    let sum: u32 = rt.call_typed(h, "add_through", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);
}

/// A dependency whose version requirement is not semver can never be loaded: the module
/// is refused saying so, not told to wait for it (`tests/fixtures/bad_dependency.c`).
/// Before, it was a `MissingDependency`, "load it first", which no load could answer.
#[test]
fn a_dependency_no_load_can_answer_is_refused_as_such() {
    let fixture = common::compile_c(
        &["runtime/tests/fixtures/bad_dependency.c"],
        "libbad_dependency.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    let err = rt.load(ModuleRef::from_path(fixture)).unwrap_err();
    assert!(matches!(err, RuntimeError::InitFailed { .. }), "{err}");
    assert!(
        err.to_string().contains(
            "`memlink_dependencies` names `basic@>>1`: what follows `@` is not a semver requirement"
        ),
        "{err}"
    );
}

/// The watch's next event, waiting as long as a slow machine may need.
fn next(watch: &DirectoryWatch) -> WatchEvent {
    watch
        .events()
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the watch reports what it did")
}

#[test]
fn a_watched_directory_loads_reloads_and_unloads_as_files_come_change_and_go() {
    let dir = fresh_dir("watched");
    // `uses_greeter` sorts before `z_greeter`, which it calls: the watch orders them.
    install(&module_path("uses_greeter"), &lib(&dir, "libuses_greeter"));
    install(&module_path("greeter_v1"), &lib(&dir, "z_greeter"));
    let rt = Runtime::with_local_resolver();
    let options = WatchOptions::default()
        .debounce(std::time::Duration::from_millis(100))
        .policy(ReloadPolicy::default().allow_changes(true));
    let watch = rt.watch(&dir, options).unwrap();
    let mut loaded = Vec::new();
    for _ in 0..2 {
        match next(&watch) {
            WatchEvent::Loaded { path, handle } => loaded.push((path, handle)),
            other => panic!("{other:?}"),
        }
    }
    let names: Vec<String> = loaded
        .iter()
        .map(|(_, h)| rt.module_info(*h).unwrap().name)
        .collect();
    assert_eq!(names, ["greeter", "uses_greeter"], "the dependency first");
    let greeter = rt.handle_of("greeter").unwrap();
    let uses = rt.handle_of("uses_greeter").unwrap();
    assert_eq!(
        rt.call_typed::<_, u32>(uses, "add_through", &(1u32, 2u32))
            .unwrap(),
        3
    );

    // A changed file hot-reloads, under the same handle.
    install(&module_path("greeter_v2"), &lib(&dir, "z_greeter"));
    match next(&watch) {
        WatchEvent::Reloaded {
            handle, reloaded, ..
        } => {
            assert_eq!(handle, greeter);
            assert_eq!(reloaded.to_version, "2.0.1");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(version(&rt, greeter), 2);

    // A file half-written when it is looked at is not loaded until it is whole.
    let whole = std::fs::read(module_path("basic")).unwrap();
    let half = lib(&dir, "libbasic");
    std::fs::write(&half, &whole[..whole.len() / 2]).unwrap();
    match next(&watch) {
        WatchEvent::Failed { path, error } => {
            assert_eq!(path, half);
            assert!(matches!(error, RuntimeError::NotALibrary { .. }), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(rt.handle_of("basic").is_err());
    std::fs::write(&half, &whole).unwrap();
    let basic = match next(&watch) {
        WatchEvent::Loaded { path, handle } => {
            assert_eq!(path, half);
            handle
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(&*rt.call(basic, "echo", b"whole").unwrap(), b"whole");

    // A removed file unloads.
    std::fs::remove_file(&half).unwrap();
    match next(&watch) {
        WatchEvent::Unloaded { handle, .. } => assert_eq!(handle, basic),
        other => panic!("{other:?}"),
    }
    assert!(rt.handle_of("basic").is_err());
    drop(watch);
    assert_eq!(
        version(&rt, greeter),
        2,
        "modules stay loaded after the watch ends"
    );
}

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

/// A method handle resolved on a version whose method a reload took away says which
/// method, and which version lacks it; once a version with it is back, it calls it
/// again. Before, the error named the method "with id 0x…" where its name goes.
#[test]
fn a_handle_to_a_method_a_reload_removed_names_it() {
    // A private copy: `hit` counts in the image, and other tests load greeter_v1's.
    let rt = Runtime::with_local_resolver();
    let copy = common::module_copy("greeter_v1", "greeter_v1_removed_method");
    let h = rt.load_as(ModuleRef::from_path(copy), "greeter").unwrap();
    let hit = rt.method(h, "hit").unwrap();
    let typed = rt.typed::<(), u64>(h, "hit").unwrap();
    let allowed = ReloadPolicy::default().allow_changes(true);
    rt.reload_with(h, greeter(3), &allowed).unwrap();
    // Through a version in between too: the name is carried.
    rt.reload_with(h, greeter(3), &allowed).unwrap();
    let version = rt.module_info(h).unwrap().version;
    for err in [
        rt.call_method(hit, b"", &CallOptions::default())
            .unwrap_err(),
        typed.call(&()).unwrap_err(),
    ] {
        assert!(
            matches!(&err, RuntimeError::MethodRemoved { method: Some(m), .. } if m == "hit"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("module `greeter` has no method `hit` any more: a reload to version {version} removed it")
        );
    }
    rt.reload_with(h, greeter(1), &allowed).unwrap();
    assert_eq!(typed.call(&()).unwrap(), 1);
}

/// Version files that are symbolic links (`greeter@1.4.2.so -> libgreeter_v1.so`) are
/// versions by their own names: labelled so from the start and while others come and
/// go, and named in `module_info`. Before, the link was resolved first, and its target's
/// name (no version in it) was what the runtime saw.
#[test]
fn version_files_that_are_links_keep_their_names() {
    let dir = fresh_dir("version-links");
    for (version, example) in [("1.4.2", "greeter_v1"), ("2.0.1", "greeter_v2")] {
        std::os::unix::fs::symlink(
            module_path(example),
            lib(&dir, &format!("greeter@{version}")),
        )
        .unwrap();
    }
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    let labels =
        |rt: &Runtime| -> Vec<String> { rt.metrics().into_iter().map(|m| m.module).collect() };
    let one = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap();
    assert_eq!(labels(&rt), ["greeter@1.4.2"]);
    assert!(rt
        .module_info(one)
        .unwrap()
        .path
        .ends_with(lib(&dir, "greeter@1.4.2").file_name().unwrap()));
    let two = rt.load(ModuleRef::parse("greeter@2").unwrap()).unwrap();
    assert_eq!(labels(&rt), ["greeter@1.4.2", "greeter@2.0.1"]);
    rt.unload(two).unwrap();
    assert_eq!(labels(&rt), ["greeter@1.4.2"]);
}

/// A watched directory given as a symbolic link is followed where the link leads: a
/// link pointed at another directory brings the modules in step with that one, and the
/// old directory's going unloads nothing. Before, the link was resolved once; the new
/// target was never looked at, and the old one's removal unloaded its modules.
#[test]
fn a_watched_link_to_a_directory_is_followed_where_it_points() {
    let root = fresh_dir("watched-link");
    let (first, second, current) = (
        root.join("release1"),
        root.join("release2"),
        root.join("current"),
    );
    for (dir, example) in [(&first, "greeter_v1"), (&second, "greeter_v2")] {
        std::fs::create_dir_all(dir).unwrap();
        install(&module_path(example), &lib(dir, "libgreeter"));
    }
    std::os::unix::fs::symlink(&first, &current).unwrap();
    let rt = Runtime::with_local_resolver();
    let options = WatchOptions::default()
        .debounce(std::time::Duration::from_millis(100))
        .policy(ReloadPolicy::default().allow_changes(true));
    let watch = rt.watch(&current, options).unwrap();
    assert_eq!(watch.dir(), current);
    assert!(matches!(next(&watch), WatchEvent::Loaded { .. }));
    let greeter = rt.handle_of("greeter").unwrap();
    assert_eq!(version(&rt, greeter), 1);

    // Pointed at the second release, as a deployment swaps it: a new link renamed over.
    let swap = root.join("current.new");
    std::os::unix::fs::symlink(&second, &swap).unwrap();
    std::fs::rename(&swap, &current).unwrap();
    loop {
        match next(&watch) {
            WatchEvent::Reloaded {
                handle, reloaded, ..
            } => {
                assert_eq!((handle, reloaded.to_version.as_str()), (greeter, "2.0.1"));
                break;
            }
            // The directory at the path is another one: told, then followed.
            WatchEvent::Failed {
                error: RuntimeError::WatchedDirectoryGone { .. },
                ..
            } => {}
            other => panic!("{other:?}"),
        }
    }
    // The first release goes: nothing it held is served any more, and nothing unloads.
    std::fs::remove_dir_all(&first).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    while let Ok(event) = watch.events().try_recv() {
        assert!(!matches!(event, WatchEvent::Unloaded { .. }), "{event:?}");
    }
    assert_eq!(rt.handle_of("greeter").unwrap(), greeter);
    assert_eq!(version(&rt, greeter), 2);
}

/// A watched directory of links into build outputs: rebuilding the file a link leads
/// to reloads the link's module, as rewriting the link's own path does; the other files
/// of that build directory are not the watch's. Before, the watch heard only its own
/// directory, and the rebuild went unseen.
#[test]
fn a_watched_link_to_a_file_elsewhere_reloads_when_that_file_is_rebuilt() {
    let root = fresh_dir("watched-file-link");
    let (build, modules) = (root.join("build"), root.join("modules"));
    for dir in [&build, &modules] {
        std::fs::create_dir_all(dir).unwrap();
    }
    install(&module_path("greeter_v1"), &lib(&build, "libgreeter"));
    let link = lib(&modules, "libgreeter");
    std::os::unix::fs::symlink(lib(&build, "libgreeter"), &link).unwrap();
    let rt = Runtime::with_local_resolver();
    let options = WatchOptions::default()
        .debounce(std::time::Duration::from_millis(100))
        .policy(ReloadPolicy::default().allow_changes(true));
    let watch = rt.watch(&modules, options).unwrap();
    assert!(matches!(next(&watch), WatchEvent::Loaded { path, .. } if path == link));
    let greeter = rt.handle_of("greeter").unwrap();
    assert_eq!(version(&rt, greeter), 1);

    // A module file no link leads to, written into the build directory: not the watch's.
    install(&module_path("basic"), &lib(&build, "libbasic"));
    // The linked file rebuilt where the build leaves it.
    install(&module_path("greeter_v2"), &lib(&build, "libgreeter"));
    match next(&watch) {
        WatchEvent::Reloaded {
            path,
            handle,
            reloaded,
        } => {
            assert_eq!(path, link, "told under the link's path");
            assert_eq!((handle, reloaded.to_version.as_str()), (greeter, "2.0.1"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(version(&rt, greeter), 2);
    assert!(
        rt.handle_of("basic").is_err(),
        "only the watched directory's modules load"
    );
    assert!(watch.events().try_recv().is_err(), "nothing else happened");
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
