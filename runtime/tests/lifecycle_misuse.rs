//! The lifecycle API used carelessly: a watched directory holding what is not a module
//! file, changing under the watch, or losing the directory itself; references that
//! name nothing loadable. Each case is told clearly, and the runtime serves on.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::module_path;
use memlink_runtime::watch::{DirectoryWatch, WatchEvent, WatchOptions};
use memlink_runtime::{ModuleRef, Runtime, RuntimeError};

/// A fresh directory for one test.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = common::workspace()
        .join("target/lifecycle-misuse")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn lib(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("{stem}.{}", std::env::consts::DLL_EXTENSION))
}

/// Puts a copy of `from` at `to` the way a build does: written beside it, then renamed.
fn install(from: &Path, to: &Path) {
    let tmp = to.with_extension("partial");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

fn options() -> WatchOptions {
    WatchOptions::default().debounce(Duration::from_millis(50))
}

/// The watch's next event, waiting as long as a slow machine may need.
fn next(watch: &DirectoryWatch) -> WatchEvent {
    watch
        .events()
        .recv_timeout(common::HANG)
        .expect("the watch reports what it did")
}

/// The events the watch reports within `quiet` of each other.
fn drain(watch: &DirectoryWatch, quiet: Duration) -> Vec<WatchEvent> {
    let mut events = Vec::new();
    while let Ok(event) = watch.events().recv_timeout(quiet) {
        events.push(event);
    }
    events
}

/// The next event, within `wait` (short where the event follows at once, so that a
/// watch that never tells fails the test instead of stalling it).
fn within(watch: &DirectoryWatch, wait: Duration) -> WatchEvent {
    watch
        .events()
        .recv_timeout(wait)
        .unwrap_or_else(|_| panic!("the watch told nothing in {wait:?}"))
}

#[test]
fn a_watched_directory_moved_away_or_replaced_is_told_and_followed_again() {
    let dir = fresh_dir("replaced");
    install(&module_path("greeter_v1"), &lib(&dir, "greeter"));
    let rt = Runtime::with_local_resolver();
    let watch = rt.watch(&dir, options()).unwrap();
    let greeter = match next(&watch) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    // Moved away: the watch says its directory is gone; the module serves on, and what
    // happens to the moved directory's files is no longer taken for the watched path's.
    let away = dir.with_extension("away");
    let _ = std::fs::remove_dir_all(&away);
    std::fs::rename(&dir, &away).unwrap();
    match within(&watch, Duration::from_secs(10)) {
        WatchEvent::Failed { path, error } => {
            assert_eq!(path, dir.canonicalize().unwrap_or(dir.clone()));
            assert!(
                matches!(&error, RuntimeError::WatchedDirectoryGone { dir: gone } if *gone == path)
                    && error.to_string().contains("is gone"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    install(&module_path("greeter_v2"), &lib(&away, "greeter"));
    let quiet = drain(&watch, Duration::from_millis(500));
    assert!(quiet.is_empty(), "{quiet:?}");
    assert_eq!(rt.call_typed::<_, u32>(greeter, "version", &()).unwrap(), 1);

    // A new directory at the path: followed from now on, the modules in step with it
    // (its file loads; the file the module came from is not there, so it unloads).
    std::fs::create_dir(&dir).unwrap();
    install(&module_path("basic"), &lib(&dir, "basic"));
    let mut events = Vec::new();
    while events.len() < 2 {
        events.push(within(&watch, Duration::from_secs(10)));
    }
    assert!(
        events.iter().any(|e| matches!(e,
            WatchEvent::Unloaded { handle, .. } if *handle == greeter)),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e,
            WatchEvent::Loaded { path, .. } if *path == lib(&dir, "basic"))),
        "{events:?}"
    );
    let basic = rt.handle_of("basic").unwrap();
    // Its changes are seen, as before.
    std::fs::remove_file(lib(&dir, "basic")).unwrap();
    match within(&watch, Duration::from_secs(10)) {
        WatchEvent::Unloaded { handle, .. } => assert_eq!(handle, basic),
        other => panic!("{other:?}"),
    }

    // Removed and made again: the same.
    std::fs::remove_dir_all(&dir).unwrap();
    match within(&watch, Duration::from_secs(10)) {
        WatchEvent::Failed { error, .. } => {
            assert!(error.to_string().contains("gone"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    std::fs::create_dir(&dir).unwrap();
    install(&module_path("greeter_v1"), &lib(&dir, "again"));
    match within(&watch, Duration::from_secs(10)) {
        WatchEvent::Loaded { path, .. } => assert_eq!(path, lib(&dir, "again")),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&away).unwrap();
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

/// What has a module file's name but is no file a module loads from is told, not passed
/// over in silence; a file whose name is not UTF-8 is a module file like any other.
#[test]
fn what_is_no_module_file_in_a_watched_directory_is_told() {
    use std::os::unix::ffi::OsStrExt;
    let dir = fresh_dir("odd");
    let rt = Runtime::with_local_resolver();
    let watch = rt.watch(&dir, options()).unwrap();
    let not_utf8 = dir.join(std::ffi::OsStr::from_bytes(b"gr\xfcn.so"));
    install(&module_path("greeter_v1"), &not_utf8);
    std::os::unix::fs::symlink(lib(&dir, "loop"), lib(&dir, "loop")).unwrap();
    std::os::unix::fs::symlink(lib(&dir, "nowhere"), lib(&dir, "dangling")).unwrap();
    std::fs::create_dir(lib(&dir, "a_dir")).unwrap();
    let fifo = lib(&dir, "fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    let mut told = std::collections::BTreeMap::new();
    while told.len() < 5 {
        match within(&watch, Duration::from_secs(10)) {
            WatchEvent::Loaded { path, .. } => told.insert(path, "loaded".to_owned()),
            WatchEvent::Failed { path, error } => told.insert(path, error.to_string()),
            other => panic!("{other:?}"),
        };
    }
    assert_eq!(told[&not_utf8], "loaded");
    let says = |stem: &str, what: &str| {
        let error = &told[&lib(&dir, stem)];
        assert!(error.contains(what), "{stem}: {error}");
    };
    says("loop", "symbolic link");
    says("loop", "Too many levels of symbolic links");
    says("dangling", "symbolic link");
    says("dangling", "nowhere");
    says("a_dir", "names a directory");
    says("fifo", "not a regular file");
    let greeter = rt.handle_of("greeter").unwrap();
    assert_eq!(rt.call_typed::<_, u32>(greeter, "version", &()).unwrap(), 1);

    // A module file replaced by something else: its module goes, and what is there now
    // is told.
    std::fs::remove_file(&not_utf8).unwrap();
    std::os::unix::fs::symlink(lib(&dir, "nowhere"), &not_utf8).unwrap();
    let events = [0, 1].map(|_| within(&watch, Duration::from_secs(10)));
    assert!(
        matches!(&events[0], WatchEvent::Unloaded { handle, .. } if *handle == greeter),
        "{events:?}"
    );
    assert!(
        matches!(&events[1], WatchEvent::Failed { path, error }
            if *path == not_utf8 && error.to_string().contains("symbolic link")),
        "{events:?}"
    );

    // Loaded directly, a link that leads nowhere says so too (not "no module file").
    let err = rt
        .load(ModuleRef::from_path(lib(&dir, "loop")))
        .unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
}

/// A name given at load holding an `@` took the calls and met the dependencies meant
/// for versions of another module: `basic` loaded as `greeter@^1` let `uses_greeter`
/// load with no greeter at all, and its calls to `greeter@^1` ran `basic`.
#[test]
fn a_name_holding_an_at_sign_is_refused_at_load() {
    let rt = Runtime::with_local_resolver();
    let basic = ModuleRef::from_path(module_path("basic"));
    let err = rt.load_as(basic.clone(), "greeter@^1").unwrap_err();
    assert!(
        matches!(&err, RuntimeError::BadSetting { .. }) && err.to_string().contains("`@`"),
        "{err}"
    );
    let uses = ModuleRef::from_path(module_path("uses_greeter"));
    let err = rt.load(uses).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::MissingDependency { dependency, .. } if dependency == "greeter@^1"),
        "{err}"
    );
    assert!(rt.handle_of("greeter@^1").is_err());
    // The runtime serves on: the same module loads under a usable name.
    let h = rt.load_as(basic, "greeter_like").unwrap();
    assert_eq!(&*rt.call(h, "echo", b"on").unwrap(), b"on");
}

/// Two files giving one version (`greeter@1.4.2.so` and `libgreeter@1.4.2.so`, here of
/// different builds): the reference chose whichever the directory listed last.
#[test]
fn two_files_of_one_version_are_refused_as_ambiguous() {
    use memlink_runtime::resolver::DirectoryResolver;
    use memlink_runtime::RuntimeConfig;
    let dir = fresh_dir("ambiguous");
    install(&module_path("greeter_v1"), &lib(&dir, "greeter@1.4.2"));
    install(&module_path("greeter_v1"), &lib(&dir, "libgreeter@1.4.2"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    let references = [
        ModuleRef::parse("greeter@1").unwrap(),
        ModuleRef::parse("greeter@=1.4.2").unwrap(),
        ModuleRef::named("greeter", None),
    ];
    for reference in references {
        let err = rt.load(reference.clone()).unwrap_err();
        let said = err.to_string();
        assert!(said.contains("ambiguous"), "{reference:?}: {said}");
        assert!(
            said.contains("greeter@1.4.2.so") && said.contains("libgreeter@1.4.2.so"),
            "{reference:?}: names both files: {said}"
        );
    }
    // A higher version beside them is no ambiguity: it is the one meant.
    install(&module_path("greeter_v2"), &lib(&dir, "greeter@2.0.1"));
    let h = rt.load(ModuleRef::named("greeter", None)).unwrap();
    assert_eq!(rt.module_info(h).unwrap().path, lib(&dir, "greeter@2.0.1"));
    let err = rt
        .load(ModuleRef::parse("greeter@=1.4.2").unwrap())
        .unwrap_err();
    assert!(
        matches!(err, memlink_runtime::RuntimeError::Ambiguous { .. })
            && err.to_string().contains("ambiguous"),
        "{err}"
    );
    // Versions that differ in build metadata alone are one version.
    install(&module_path("greeter_v1"), &lib(&dir, "greeter@1.6.0+a"));
    install(&module_path("greeter_v2"), &lib(&dir, "greeter@1.6.0+b"));
    let err = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap_err();
    let said = err.to_string();
    assert!(
        said.contains("ambiguous") && said.contains("1.6.0+a") && said.contains("1.6.0+b"),
        "{said}"
    );
}

#[test]
fn a_watch_whose_events_go_unread_holds_only_so_many_and_goes_on() {
    let dir = fresh_dir("unread");
    for (module, stem) in [
        ("basic", "basic"),
        ("greeter_v1", "greeter"),
        ("arena_usage", "arena_usage"),
    ] {
        install(&module_path(module), &lib(&dir, stem));
    }
    let rt = Runtime::with_local_resolver();
    // The first scan tells of three loads; two fit, the third is dropped and counted.
    let watch = rt.watch(&dir, options().events_capacity(2)).unwrap();
    assert_eq!(watch.dropped(), 1);
    for _ in 0..2 {
        assert!(matches!(next(&watch), WatchEvent::Loaded { .. }));
    }
    // What the dropped event told happened all the same: every module serves.
    for name in ["basic", "greeter", "arena_usage"] {
        rt.handle_of(name)
            .unwrap_or_else(|e| panic!("{name} is loaded: {e}"));
    }
    // With room again, the watch tells what it does next.
    install(&module_path("zero_copy"), &lib(&dir, "zero_copy"));
    match within(&watch, Duration::from_secs(10)) {
        WatchEvent::Loaded { path, .. } => assert_eq!(path, lib(&dir, "zero_copy")),
        other => panic!("{other:?}"),
    }
    assert_eq!(watch.dropped(), 1);
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

/// A file's name gives its module's name and version, and a reference by name is
/// answered by the file's: a file whose module is another, or of another version, was
/// loaded all the same, and the name it was asked for then led nowhere
/// (`handle_of("basic@2")` said no such module was loaded). It is now refused, naming
/// what the file holds; a module loaded under the name asked for is that module.
#[test]
fn a_file_named_for_another_module_or_version_is_refused() {
    use memlink_runtime::resolver::DirectoryResolver;
    use memlink_runtime::{ModuleSettings, RuntimeConfig};
    let dir = fresh_dir("misnamed");
    install(&module_path("basic"), &lib(&dir, "basic@2.0.0"));
    install(&module_path("greeter_v1"), &lib(&dir, "hello@1.4.2"));
    install(&module_path("greeter_v2"), &lib(&dir, "greeter@2.0.1"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    for (reference, holds) in [
        ("basic@2", "holds `basic` 0.1.0"),
        ("hello@1", "holds `greeter` 1.4.2"),
    ] {
        let err = rt.load(ModuleRef::parse(reference).unwrap()).unwrap_err();
        assert!(
            matches!(err, RuntimeError::WrongFile { .. }) && err.to_string().contains(holds),
            "{reference}: {err}"
        );
    }
    assert!(rt.modules().is_empty(), "nothing was loaded");
    // Loaded under the name asked for, the module answers to it.
    let hello = rt
        .load_with(
            ModuleRef::parse("hello@1").unwrap(),
            &ModuleSettings::default().name("hello"),
        )
        .unwrap();
    assert_eq!(rt.handle_of("hello@1").unwrap(), hello);
    // A file that holds what its name says loads, and answers to that name.
    let greeter = rt.load(ModuleRef::parse("greeter@2").unwrap()).unwrap();
    assert_eq!(rt.handle_of("greeter@2").unwrap(), greeter);
    // A reload by name is held to the same, and the old version serves on.
    install(&module_path("greeter_v1"), &lib(&dir, "greeter@3.0.0"));
    let err = rt
        .reload(greeter, ModuleRef::parse("greeter@3").unwrap())
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::WrongFile { .. }) && err.to_string().contains("1.4.2"),
        "{err}"
    );
    assert_eq!(rt.handle_of("greeter@2").unwrap(), greeter);
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

/// A file refused because another file's module holds what it needs (its name and
/// version, or the runtime's last slot) was tried again only when it changed: once that
/// module went (its file removed, as a build that writes the new file before removing
/// the old one does, or a rename the watch sees in two looks), the directory held a
/// module file and the runtime no module of it. It is tried again when a module the
/// watch unloads or reloads frees what it waited for.
#[test]
fn a_file_refused_for_what_another_module_holds_loads_once_that_module_goes() {
    use memlink_runtime::reload::ReloadPolicy;
    use memlink_runtime::resolver::LocalResolver;
    use memlink_runtime::RuntimeConfig;
    let wait = Duration::from_secs(20);
    let dir = fresh_dir("name_freed");
    install(&module_path("greeter_v1"), &lib(&dir, "greeter"));
    let rt = Runtime::with_local_resolver();
    let options = options().policy(ReloadPolicy::default().allow_changes(true));
    let watch = rt.watch(&dir, options).unwrap();
    let first = match next(&watch) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    // The same module and version in a second file: refused, the name is taken.
    install(&module_path("greeter_v1"), &lib(&dir, "greeter_copy"));
    match within(&watch, wait) {
        WatchEvent::Failed { path, error } => {
            assert_eq!(path, lib(&dir, "greeter_copy"));
            assert!(matches!(error, RuntimeError::NameTaken { .. }), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // The first file goes: its module is unloaded, and the second file's loaded.
    std::fs::remove_file(lib(&dir, "greeter")).unwrap();
    match within(&watch, wait) {
        WatchEvent::Unloaded { handle, .. } => assert_eq!(handle, first),
        other => panic!("{other:?}"),
    }
    let second = match within(&watch, wait) {
        WatchEvent::Loaded { path, handle } => {
            assert_eq!(path, lib(&dir, "greeter_copy"));
            handle
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(rt.handle_of("greeter").unwrap(), second);

    // A reload to the version another file serves is refused for the name too, and
    // made once that version goes.
    install(&module_path("greeter_v2"), &lib(&dir, "greeter_two"));
    let two = match within(&watch, wait) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    install(&module_path("greeter_v1"), &lib(&dir, "greeter_two"));
    match within(&watch, wait) {
        WatchEvent::Failed { path, error } => {
            assert_eq!(path, lib(&dir, "greeter_two"));
            assert!(matches!(error, RuntimeError::NameTaken { .. }), "{error}");
        }
        other => panic!("{other:?}"),
    }
    let v = |h| rt.call_typed::<_, u32>(h, "version", &()).unwrap();
    assert_eq!(v(two), 2, "the old version serves on meanwhile");
    std::fs::remove_file(lib(&dir, "greeter_copy")).unwrap();
    match within(&watch, wait) {
        WatchEvent::Unloaded { handle, .. } => assert_eq!(handle, second),
        other => panic!("{other:?}"),
    }
    match within(&watch, wait) {
        WatchEvent::Reloaded { handle, .. } => assert_eq!(handle, two),
        other => panic!("{other:?}"),
    }
    assert_eq!(v(two), 1, "the file's version serves");
    assert_eq!(rt.handle_of("greeter@1").unwrap(), two);
    drop(watch);

    // A runtime full: the file waits for a slot an unload frees.
    let dir = fresh_dir("slot_freed");
    install(&module_path("basic"), &lib(&dir, "basic"));
    let rt = Runtime::new(RuntimeConfig::default().max_modules(1), LocalResolver);
    let watch = rt.watch(&dir, options).unwrap();
    let basic = match next(&watch) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    install(&module_path("greeter_v1"), &lib(&dir, "greeter"));
    match within(&watch, wait) {
        WatchEvent::Failed { error, .. } => {
            assert!(
                matches!(error, RuntimeError::TooManyModules { .. }),
                "{error}"
            )
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(lib(&dir, "basic")).unwrap();
    match within(&watch, wait) {
        WatchEvent::Unloaded { handle, .. } => assert_eq!(handle, basic),
        other => panic!("{other:?}"),
    }
    match within(&watch, wait) {
        WatchEvent::Loaded { path, .. } => assert_eq!(path, lib(&dir, "greeter")),
        other => panic!("{other:?}"),
    }
    rt.handle_of("greeter").unwrap();
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

/// A watched directory removed and made again at once (`rm -r modules && mkdir
/// modules`), while the watch was busy loading, was taken for the one watched: the new
/// directory was given the inode the old one freed. The platform's watch had ended with
/// the old one, so nothing put in the new one was ever loaded, and nothing said so. The
/// removal is told, and the new directory followed. The watch is held busy by a log
/// sink, inside the load of a module that logs as it declares its dependencies
/// (`tests/fixtures/depends_on.c`).
#[test]
fn a_watched_directory_removed_and_made_again_at_once_is_followed() {
    use std::sync::{mpsc, Arc, Mutex};

    use memlink_runtime::{LogEvent, LogSink, RuntimeConfig};

    /// Holds the first load that logs "declaring" until told to go on.
    struct Holds {
        inside: Mutex<Option<mpsc::Sender<()>>>,
        go: Mutex<mpsc::Receiver<()>>,
    }
    impl LogSink for Holds {
        fn record(&self, event: &LogEvent<'_>) {
            if event.message != "declaring" {
                return;
            }
            if let Some(inside) = self.inside.lock().unwrap().take() {
                inside.send(()).unwrap();
                let _ = self.go.lock().unwrap().recv();
            }
        }
    }

    let logs = common::compile_c_with(
        &["runtime/tests/fixtures/depends_on.c"],
        "libdepends_on_logs.so",
        true,
        &["-DDEPENDS_ON_LOGS"],
    );
    let (inside, held) = mpsc::channel();
    let (go, wait) = mpsc::channel();
    let sink = Arc::new(Holds {
        inside: Mutex::new(Some(inside)),
        go: Mutex::new(wait),
    });
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::INFO)
        .log_sink(sink);
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let dir = fresh_dir("made_again");
    let watch = rt.watch(&dir, options()).unwrap();
    install(&logs, &lib(&dir, "depends_on"));
    held.recv_timeout(common::HANG)
        .expect("the watch loads the module");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    go.send(()).unwrap();
    let wait = Duration::from_secs(20);
    // The removal is told, and the module whose file went with it unloaded, in
    // whichever order the watch sees them.
    let gone = |e: &WatchEvent| {
        matches!(e, WatchEvent::Failed { path, error }
            if *path == dir && matches!(error, RuntimeError::WatchedDirectoryGone { .. }))
    };
    let unloaded = |e: &WatchEvent| matches!(e, WatchEvent::Unloaded { .. });
    let mut told = Vec::new();
    while !(told.iter().any(gone) && told.iter().any(unloaded)) {
        told.push(within(&watch, wait));
    }
    // What the new directory holds loads.
    install(&module_path("basic"), &lib(&dir, "basic"));
    match within(&watch, wait) {
        WatchEvent::Loaded { path, .. } => assert_eq!(path, lib(&dir, "basic")),
        other => panic!("{other:?}"),
    }
    rt.handle_of("basic").unwrap();
}

/// A watched link into a build directory whose file is removed (a clean, a build that
/// removes its output before writing it) and built again: its module goes, and comes
/// back with the file. Before, the link that led nowhere was no longer followed into
/// the build directory, so the file's return went unseen and the module stayed gone.
#[test]
fn a_watched_link_whose_file_is_removed_and_built_again_loads_again() {
    let root = fresh_dir("link_rebuilt");
    let (build, modules) = (root.join("build"), root.join("modules"));
    for dir in [&build, &modules] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let built = lib(&build, "libgreeter");
    install(&module_path("greeter_v1"), &built);
    let link = lib(&modules, "greeter");
    std::os::unix::fs::symlink(&built, &link).unwrap();
    let rt = Runtime::with_local_resolver();
    let watch = rt.watch(&modules, options()).unwrap();
    let first = match next(&watch) {
        WatchEvent::Loaded { path, handle } => {
            assert_eq!(path, link);
            handle
        }
        other => panic!("{other:?}"),
    };
    let wait = Duration::from_secs(20);
    std::fs::remove_file(&built).unwrap();
    match within(&watch, wait) {
        WatchEvent::Unloaded { handle, .. } => assert_eq!(handle, first),
        other => panic!("{other:?}"),
    }
    match within(&watch, wait) {
        WatchEvent::Failed { path, error } => {
            assert_eq!(path, link);
            assert!(error.to_string().contains("symbolic link"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    install(&module_path("greeter_v2"), &built);
    match within(&watch, wait) {
        WatchEvent::Loaded { path, .. } => assert_eq!(path, link),
        other => panic!("{other:?}"),
    }
    let greeter = rt.handle_of("greeter").unwrap();
    assert_eq!(rt.call_typed::<_, u32>(greeter, "version", &()).unwrap(), 2);
}
