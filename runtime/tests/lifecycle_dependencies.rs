//! Modules that call others: refused until what they call is loaded (a watched file
//! tried again once a module loads), and for good when what they declare could never be.

mod common;

use std::time::Duration;

use common::lifecycle::{fresh_dir, greeter, lib};
use common::watch::{drain, next, options, within};
use common::{install, module_path};
use memlink_runtime::watch::WatchEvent;
use memlink_runtime::{ModuleRef, Runtime, RuntimeError};

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

/// A module that calls itself, and declares so, is its own dependency: the one it waits
/// for is the one being loaded, which answers its name once loaded. Before, it was
/// refused with `MissingDependency`, "load it first", which no load could answer
/// (`tests/fixtures/depends_on.c`, built to declare itself). A requirement its own
/// version does not meet is still missing.
#[test]
fn a_module_that_declares_itself_is_loaded() {
    let source = ["runtime/tests/fixtures/depends_on.c"];
    let itself = common::compile_c_with(
        &source,
        "libdepends_on_itself.so",
        true,
        &["-DDEPENDS_ON_ITSELF"],
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(&itself)).unwrap();
    assert_eq!(rt.handle_of("depends_on").unwrap(), h);
    rt.reload(h, ModuleRef::from_path(&itself)).unwrap();

    let other = common::compile_c_with(
        &source,
        "libdepends_on_version_2.so",
        true,
        &["-DDEPENDS_ON_VERSION_2"],
    );
    let err = Runtime::with_local_resolver()
        .load(ModuleRef::from_path(&other))
        .unwrap_err();
    assert!(
        matches!(&err, RuntimeError::MissingDependency { module, dependency }
            if module == "depends_on" && dependency == "depends_on@^2"),
        "{err}"
    );
    // Said as its own name at another version: "which is not loaded" of a module being
    // loaded sent the reader to load what is there.
    assert!(
        err.to_string().contains(
            "calls `depends_on@^2`, its own name at a version this one is not, and no such version is loaded"
        ),
        "{err}"
    );

    // A reload to a version (2.0.0) that declares a requirement only the version it
    // replaces (0.1.0) meets is refused: once reloaded, nothing would answer it. Before,
    // the version leaving answered it, and the reload was made.
    let next = common::compile_c_with(
        &source,
        "libdepends_on_version_0_1.so",
        true,
        &["-DDEPENDS_ON_VERSION_0_1", "-DFIXTURE_VERSION=\"2.0.0\""],
    );
    let plain = common::compile_c(&source, "libdepends_on.so", true);
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(&plain)).unwrap();
    let err = rt.reload(h, ModuleRef::from_path(&next)).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::MissingDependency { module, dependency }
            if module == "depends_on" && dependency == "depends_on@^0.1"),
        "{err}"
    );
    assert_eq!(
        rt.module_info(h).unwrap().version,
        "0.1.0",
        "the old version serves on"
    );
    // With 0.1.0 loaded beside 0.1.5, the reload of 0.1.5 to that version is made: 0.1.0
    // answers the requirement, whichever version the name leads to first.
    let beside = common::compile_c_with(
        &source,
        "libdepends_on_0_1_5.so",
        true,
        &["-DFIXTURE_VERSION=\"0.1.5\""],
    );
    let later = rt.load(ModuleRef::from_path(&beside)).unwrap();
    let reloaded = rt.reload(later, ModuleRef::from_path(&next)).unwrap();
    assert_eq!(reloaded.to_version, "2.0.0");
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
    assert!(matches!(err, RuntimeError::InvalidModule { .. }), "{err}");
    assert!(
        err.to_string().contains(
            "`memlink_dependencies` names `basic@>>1`: what follows `@` is not a semver requirement"
        ),
        "{err}"
    );
}

/// A `memlink_dependencies` result with bytes after its list is not a list: the module is
/// refused saying so (`tests/fixtures/bad_dependency.c` built with `-DTRAILING`, naming a
/// module that is loaded). Before, the list was read and the rest went unseen.
#[test]
fn a_dependency_list_followed_by_more_bytes_is_refused() {
    let file = format!(
        "libbad_dependency_trailing.{}",
        std::env::consts::DLL_EXTENSION
    );
    let fixture = common::compile_c_with(
        &["runtime/tests/fixtures/bad_dependency.c"],
        &file,
        true,
        &["-DTRAILING", "-DDEPENDENCY=\"basic\""],
    );
    let rt = Runtime::with_local_resolver();
    rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    let err = rt.load(ModuleRef::from_path(fixture)).unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidModule { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("`memlink_dependencies` returned something other than a list of strings")
            && err.to_string().contains("1 trailing bytes"),
        "{err}"
    );
}

/// A module refused for a missing dependency is tried again once a module loads; each
/// try opens a fresh image of it (never unmapped) and runs its init. Tried on every
/// event in the directory instead, it mapped one more image, ran its init and told the
/// same failure for each file written nearby.
#[test]
fn a_module_waiting_for_its_dependency_is_tried_again_only_when_a_module_loads() {
    let dir = fresh_dir("waiting");
    install(&module_path("uses_greeter"), &lib(&dir, "uses"));
    let rt = Runtime::with_local_resolver();
    let watch = rt.watch(&dir, options()).unwrap();
    match next(&watch) {
        WatchEvent::Failed { path, error } => {
            assert_eq!(path, lib(&dir, "uses"));
            assert!(
                matches!(error, RuntimeError::MissingDependency { .. }),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Files that load nothing: a note, and a file that is no library.
    for i in 0..3 {
        std::fs::write(dir.join("NOTES.txt"), format!("{i}")).unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    std::fs::write(lib(&dir, "junk"), b"no library").unwrap();
    let events = drain(&watch, Duration::from_secs(1));
    let told: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Failed { path, .. } => Some(path),
            _ => None,
        })
        .collect();
    assert_eq!(
        told,
        [&lib(&dir, "junk")],
        "only the junk file is told: {events:?}"
    );
    // Its dependency comes: both load.
    install(&module_path("greeter_v1"), &lib(&dir, "greeter"));
    let mut loaded = Vec::new();
    while loaded.len() < 2 {
        match next(&watch) {
            WatchEvent::Loaded { path, .. } => loaded.push(path),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(loaded, [lib(&dir, "greeter"), lib(&dir, "uses")]);
    let uses = rt.handle_of("uses_greeter").unwrap();
    let sum: u32 = rt.call_typed(uses, "add_through", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);
}

/// A changed file whose new version calls a module not loaded is refused, and its old
/// version serves on. It was tried again only when the file changed again: the module
/// it waited for loaded, and the old version went on serving though the file held the
/// new one. It is tried again after a module loads or reloads, as a new file is
/// (`tests/fixtures/depends_on.c`: the same module built to declare `greeter`, or not).
#[test]
fn a_reload_refused_for_a_dependency_is_made_once_the_dependency_loads() {
    let source = ["runtime/tests/fixtures/depends_on.c"];
    let alone = common::compile_c(&source, "libdepends_on_alone.so", true);
    let needs = common::compile_c_with(
        &source,
        "libdepends_on_greeter.so",
        true,
        &["-DDEPENDS_ON_GREETER"],
    );
    let wait = Duration::from_secs(20);
    let dir = fresh_dir("reload_waits");
    install(&alone, &lib(&dir, "depends_on"));
    let rt = Runtime::with_local_resolver();
    let watch = rt.watch(&dir, options()).unwrap();
    let h = match next(&watch) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    let declared = |rt: &Runtime| -> Vec<String> {
        common::de(&rt.call(h, "memlink_dependencies", &[]).unwrap())
    };
    assert!(declared(&rt).is_empty());
    install(&needs, &lib(&dir, "depends_on"));
    match within(&watch, wait) {
        WatchEvent::Failed { path, error } => {
            assert_eq!(path, lib(&dir, "depends_on"));
            assert!(
                matches!(&error, RuntimeError::MissingDependency { dependency, .. } if dependency == "greeter"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(declared(&rt).is_empty(), "the old version serves on");
    // The module it calls comes: it loads, and the waiting version takes over.
    install(&module_path("greeter_v1"), &lib(&dir, "greeter"));
    match within(&watch, wait) {
        WatchEvent::Loaded { path, .. } => assert_eq!(path, lib(&dir, "greeter")),
        other => panic!("{other:?}"),
    }
    match within(&watch, wait) {
        WatchEvent::Reloaded { path, handle, .. } => {
            assert_eq!((path, handle), (lib(&dir, "depends_on"), h));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(declared(&rt), ["greeter"], "the file's version serves");
}
