//! Hot reload, through real modules: `greeter_v1`, `greeter_v2` (one more export) and
//! `greeter_v3` (a breaking change) are three builds of one module. What a reload
//! replaces, what it keeps (the handle, resolved methods, figures, state when asked),
//! and what it refuses (a breaking change, a bad file, another module's), the old
//! version serving on.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::lifecycle::{fresh_dir, greeter, lib, version, with_v1};
use common::watch::{next, options, within};
use common::{de, fixture, fixture_named, install, module_path, mp};
use memlink_runtime::reload::{MethodChange, ReloadPolicy};
use memlink_runtime::watch::WatchEvent;
use memlink_runtime::{CallOptions, ModuleRef, Runtime, RuntimeError};

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

/// A reload takes a version of the same module. Given another module's file, it loaded
/// it under the old name (with changes allowed), or refused it for its methods alone; the
/// new module's own name then led nowhere. A watched file that comes to hold another
/// module is that module's now: the one it held is unloaded, the other loaded.
#[test]
fn a_file_of_another_module_is_no_new_version() {
    use memlink_runtime::reload::ReloadPolicy;
    let rt = Runtime::with_local_resolver();
    let basic = rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    let other = ModuleRef::from_path(module_path("arena_usage"));
    for policy in [
        ReloadPolicy::default(),
        ReloadPolicy::default().allow_changes(true),
    ] {
        let err = rt.reload_with(basic, other.clone(), &policy).unwrap_err();
        assert!(
            matches!(&err, RuntimeError::OtherModule { found, expected, .. }
                if found == "arena_usage" && expected == "basic"),
            "{err}"
        );
        assert!(
            err.to_string().contains("not a version of `basic`"),
            "{err}"
        );
    }
    // The old version serves on, under its name.
    assert_eq!(
        rt.call_typed::<_, String>(basic, "ping", &()).unwrap(),
        "pong"
    );
    assert_eq!(rt.handle_of("basic").unwrap(), basic);

    let dir = fresh_dir("other_module");
    install(&module_path("greeter_v1"), &lib(&dir, "plugin"));
    let watch = rt.watch(&dir, options()).unwrap();
    let greeter = match next(&watch) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    install(&module_path("zero_copy"), &lib(&dir, "plugin"));
    let events = [0, 1].map(|_| within(&watch, Duration::from_secs(10)));
    assert!(
        matches!(&events[0], WatchEvent::Unloaded { handle, .. } if *handle == greeter),
        "{events:?}"
    );
    assert!(
        matches!(&events[1], WatchEvent::Loaded { path, .. } if *path == lib(&dir, "plugin")),
        "{events:?}"
    );
    assert!(rt.handle_of("greeter").is_err());
    rt.handle_of("zero_copy").unwrap();
}
