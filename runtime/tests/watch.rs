//! `Runtime::watch`: a directory whose module files come, change and go, its modules
//! loaded, reloaded and unloaded in step, and what it cannot load told.

mod common;

use std::time::Duration;

use common::lifecycle::{fresh_dir, lib, version};
use common::watch::{next, options, within};
use common::{install, module_path};
use memlink_runtime::reload::ReloadPolicy;
use memlink_runtime::watch::{WatchEvent, WatchOptions};
use memlink_runtime::{ModuleRef, Runtime, RuntimeError};

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
    reloaded_to_v2(&rt, &watch, greeter);

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

/// A module file masked by a link to `/dev/null` (as `systemctl mask` masks a unit) is
/// refused once, not again at every write anyone makes to `/dev/null`, which the watch
/// sees through the link: it was told at each (about four a second on a busy host, for
/// good). Pointed at a module again, it loads.
#[test]
fn a_module_file_masked_by_a_link_to_dev_null_is_told_once() {
    let dir = fresh_dir("masked");
    let rt = Runtime::with_local_resolver();
    let watch = rt.watch(&dir, options()).unwrap();
    let masked = lib(&dir, "masked");
    std::os::unix::fs::symlink("/dev/null", &masked).unwrap();
    let first = within(&watch, Duration::from_secs(10));
    assert!(
        matches!(&first, WatchEvent::Failed { path, error }
            if *path == masked && error.to_string().contains("not a regular file")),
        "{first:?}"
    );
    for _ in 0..5 {
        std::fs::write("/dev/null", b"x").unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }
    let more = common::watch::drain(&watch, Duration::from_millis(500));
    assert!(more.is_empty(), "told again: {more:?}");
    std::fs::remove_file(&masked).unwrap();
    install(&module_path("greeter_v1"), &masked);
    let events = common::watch::drain(&watch, Duration::from_millis(1000));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, WatchEvent::Loaded { path, .. } if *path == masked)),
        "{events:?}"
    );
}

/// A watched directory (made fresh as `name`) whose `greeter` 1 runs a call 4 s long,
/// then reloaded to version 2: the directory, the runtime, the watch, the module's
/// handle, and what tells when the call ends.
fn lingering_through_a_reload(
    name: &str,
) -> (
    std::path::PathBuf,
    std::sync::Arc<Runtime>,
    memlink_runtime::watch::DirectoryWatch,
    memlink_runtime::ModuleHandle,
    std::sync::mpsc::Receiver<Result<(), memlink_runtime::RuntimeError>>,
) {
    let dir = fresh_dir(name);
    let rt = std::sync::Arc::new(Runtime::with_local_resolver());
    let watch = rt.watch(&dir, options()).unwrap();
    install(&module_path("greeter_v1"), &lib(&dir, "greeter"));
    let greeter = match next(&watch) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    let (done, ended) = std::sync::mpsc::channel();
    let caller = std::sync::Arc::clone(&rt);
    std::thread::spawn(move || {
        let long = memlink_runtime::CallOptions::default().timeout(Duration::from_secs(4));
        let _ = done.send(caller.call_with(greeter, "linger", b"", &long).map(drop));
    });
    // The call is in flight on version 1.
    while rt.call_typed::<_, u64>(greeter, "lingering", &()).unwrap() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    install(&module_path("greeter_v2"), &lib(&dir, "greeter"));
    reloaded_to_v2(&rt, &watch, greeter);
    (dir, rt, watch, greeter, ended)
}

/// A file dropped into `dir` is loaded within 2 s while the call `ended` tells of still
/// runs (on `what`), which is then waited for.
fn loaded_while_it_runs(
    dir: &std::path::Path,
    watch: &memlink_runtime::watch::DirectoryWatch,
    ended: &std::sync::mpsc::Receiver<Result<(), memlink_runtime::RuntimeError>>,
    what: &str,
) {
    install(&module_path("basic"), &lib(dir, "basic"));
    match within(watch, Duration::from_secs(2)) {
        WatchEvent::Loaded { path, .. } => assert_eq!(path, lib(dir, "basic")),
        other => panic!("{other:?}"),
    }
    assert!(
        ended.try_recv().is_err(),
        "loaded only once the call on {what} ended"
    );
    let _ = ended.recv_timeout(common::HANG);
}

/// A call running on a module's old version does not hold up the watch: the reload is
/// told at its switch, and a file dropped in meanwhile is loaded while that call still
/// runs. Before, the watch waited for the old version's calls after each reload, and
/// nothing else in the directory changed until the call returned (one with no deadline
/// could hold it for hours).
#[test]
fn a_long_call_on_an_old_version_holds_up_no_other_file() {
    let (dir, _rt, watch, _greeter, ended) = lingering_through_a_reload("long-call");
    loaded_while_it_runs(&dir, &watch, &ended, "the old version");
}

/// A module file removed while a call runs on the module (here on its old version: the
/// versions share the wait): the watch goes on at once, a file dropped in meanwhile is
/// loaded while that call runs, and the unload is told once the call has returned.
/// Before, the watch waited for the call inside the unload, and nothing else in the
/// directory changed meanwhile.
#[test]
fn a_removed_file_whose_module_runs_a_call_holds_up_no_other_file() {
    let (dir, _rt, watch, greeter, ended) = lingering_through_a_reload("long-call-removed");
    std::fs::remove_file(lib(&dir, "greeter")).unwrap();
    loaded_while_it_runs(&dir, &watch, &ended, "the removed module");
    match next(&watch) {
        WatchEvent::Unloaded { handle, .. } => assert_eq!(handle, greeter),
        other => panic!("{other:?}"),
    }
}

/// A module file renamed within the directory (`mv`) keeps its module serving, under
/// the file's new name: no call in the meantime finds it gone. Before, it was unloaded
/// and loaded again, and the calls between were refused ("no module named `greeter` is
/// loaded"), 6 to 16 of them in an operator's loop.
#[test]
fn a_module_file_renamed_in_the_directory_keeps_its_module_serving() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let dir = fresh_dir("renamed");
    let rt = std::sync::Arc::new(Runtime::with_local_resolver());
    let watch = rt.watch(&dir, options()).unwrap();
    let (before, after) = (lib(&dir, "greeter"), lib(&dir, "greeter_renamed"));
    install(&module_path("greeter_v1"), &before);
    let greeter = match next(&watch) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let failed = std::sync::Arc::new(AtomicU64::new(0));
    let caller = {
        let (rt, stop, failed) = (rt.clone(), stop.clone(), failed.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let by_name = rt
                    .handle_of("greeter")
                    .and_then(|h| rt.call_typed::<_, u32>(h, "version", &()));
                if by_name.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    std::fs::rename(&before, &after).unwrap();
    match next(&watch) {
        WatchEvent::Moved { from, to, handle } => {
            assert_eq!((from, to, handle), (before.clone(), after.clone(), greeter));
        }
        other => panic!("{other:?}"),
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    caller.join().unwrap();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "calls found the module gone"
    );
    assert_eq!(version(&rt, greeter), 1);
    // Known by its new name: removed there, it goes.
    std::fs::remove_file(&after).unwrap();
    match next(&watch) {
        WatchEvent::Unloaded { path, handle } => assert_eq!((path, handle), (after, greeter)),
        other => panic!("{other:?}"),
    }
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

/// Unread events held without limit (`usize::MAX`) are taken as the most a watch holds:
/// the watch starts, and tells what it does. Before, `Runtime::watch` panicked making
/// room for each of them.
#[test]
fn a_watch_told_to_hold_events_without_limit_holds_the_most_it_can() {
    let dir = fresh_dir("events_unbounded");
    install(&module_path("basic"), &lib(&dir, "basic"));
    let rt = Runtime::with_local_resolver();
    let watch = rt
        .watch(&dir, options().events_capacity(usize::MAX))
        .unwrap();
    assert!(matches!(next(&watch), WatchEvent::Loaded { .. }));
    install(&module_path("greeter_v1"), &lib(&dir, "greeter"));
    match next(&watch) {
        WatchEvent::Loaded { path, .. } => assert_eq!(path, lib(&dir, "greeter")),
        other => panic!("{other:?}"),
    }
    assert_eq!(watch.dropped(), 0);
}

/// A watched file named `NAME@VERSION.so` is one version of `NAME`, as its name says: a
/// file so named that holds another version is refused (`WrongFile`, as a
/// `DirectoryResolver` refuses it), loaded or as a reload of the version it names, and
/// the file with the right version then loads. Before, `greeter@1.4.2.so` holding 2.0.1
/// was loaded, and a reference `greeter@1` found nothing.
#[test]
fn a_watched_file_whose_name_gives_another_version_is_refused() {
    let dir = fresh_dir("named_versions");
    let named = dir.join(format!("greeter@1.4.2.{}", std::env::consts::DLL_EXTENSION));
    install(&module_path("greeter_v2"), &named);
    let rt = Runtime::with_local_resolver();
    let watch = rt.watch(&dir, options()).unwrap();
    let refused = |event: WatchEvent| match event {
        WatchEvent::Failed { error, .. } => {
            assert!(matches!(&error, RuntimeError::WrongFile { .. }), "{error}");
            assert!(
                error.to_string().contains("which holds `greeter` 2.0.1"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    };
    refused(next(&watch));
    install(&module_path("greeter_v1"), &named);
    let h = match next(&watch) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    assert_eq!(rt.handle_of("greeter@1").unwrap(), h);
    // Rewritten with another version again: refused as a reload, 1.4.2 serves on.
    install(&module_path("greeter_v2"), &named);
    refused(next(&watch));
    assert_eq!(version(&rt, h), 1);
}

/// One runtime watching one directory twice is refused, saying so (through a symbolic
/// link to it too); once the first watch is dropped, the directory can be watched again,
/// and another runtime may watch it meanwhile. Before, the second watch was made: two
/// watches loaded and reloaded each file, and one went on serving a version the file
/// no longer held.
#[test]
fn one_runtime_watching_one_directory_twice_is_refused() {
    let dir = fresh_dir("watched_twice");
    install(&module_path("basic"), &lib(&dir, "basic"));
    let rt = Runtime::with_local_resolver();
    let first = rt.watch(&dir, options()).unwrap();
    assert!(matches!(next(&first), WatchEvent::Loaded { .. }));
    let link = dir.with_extension("link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    for again in [&dir, &link] {
        let err = rt.watch(again, options()).unwrap_err();
        assert!(
            matches!(&err, RuntimeError::BadReference { .. })
                && err
                    .to_string()
                    .contains("this runtime watches that directory already"),
            "{err}"
        );
    }
    let other = Runtime::with_local_resolver();
    let _beside = other.watch(&dir, options()).unwrap();
    drop(first);
    let again = rt.watch(&dir, options()).unwrap();
    drop(again);
    let _ = std::fs::remove_file(&link);
}

/// A module file written in place at its full length while it is watched: over the old
/// version without cutting it first (`rsync --inplace`, `dd conv=notrunc`), its writer
/// pausing longer than the debounce between pieces. Half written, its headers are the
/// new version's and its length is whole, so no check of the file tells it from a whole
/// library; loaded, it crashed the process in the system's loader. The watch looks at it
/// only once its writer closes it: until then the old version serves.
#[test]
fn a_file_rewritten_in_place_is_looked_at_once_its_writer_closes_it() {
    use std::io::{Seek, SeekFrom, Write};

    let dir = fresh_dir("watched-in-place");
    let path = lib(&dir, "greeter");
    // The same length for both versions, as a rewrite in place over a longer file has.
    let v1 = std::fs::read(module_path("greeter_v1")).unwrap();
    let v2 = std::fs::read(module_path("greeter_v2")).unwrap();
    let len = v1.len().max(v2.len());
    let padded = |mut bytes: Vec<u8>| {
        bytes.resize(len, 0);
        bytes
    };
    std::fs::write(&path, padded(v1)).unwrap();
    let rt = Runtime::with_local_resolver();
    let watch = rt
        .watch(
            &dir,
            WatchOptions::default()
                .debounce(Duration::from_millis(50))
                .policy(ReloadPolicy::default().allow_changes(true)),
        )
        .unwrap();
    let greeter = match next(&watch) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    assert_eq!(version(&rt, greeter), 1);

    let v2 = padded(v2);
    let mut writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let piece = len / 4;
    for at in (0..len).step_by(piece) {
        writer.seek(SeekFrom::Start(at as u64)).unwrap();
        writer.write_all(&v2[at..(at + piece).min(len)]).unwrap();
        writer.flush().unwrap();
        // Six debounces without an event: the file is still open, so nothing is looked
        // at, and the old version serves.
        let told = watch.events().recv_timeout(Duration::from_millis(300));
        assert!(
            told.is_err(),
            "a file still being written was looked at: {told:?}"
        );
        assert_eq!(version(&rt, greeter), 1);
    }
    drop(writer);
    reloaded_to_v2(&rt, &watch, greeter);
}

/// A writer that begins on a file once the watch has looked at it, before the watch
/// copies it for its fresh image, and pauses until the copy is made, left the copy half
/// rewritten; no write fell while the copy was made, and no check of its headers need
/// tell it. Here the watch finds two files at once, and the first one's init writes the
/// second (its first bytes, unchanged) before the second is loaded: the second is
/// refused as written, not loaded as the look found it, and loaded once its writer is
/// done. Before, it was loaded at once, and reloaded after.
#[test]
fn a_file_written_after_the_watch_looked_at_it_is_not_loaded_as_it_was() {
    let dir = fresh_dir("watched-since-looked");
    let (rt, basic) = refused_then_loaded(
        &dir,
        "a_rewriter",
        None,
        "changed (written, or its metadata) since a watched directory looked at it",
        "written",
    );
    assert_eq!(rt.call(basic, "echo", b"hi").unwrap().as_bytes(), b"hi");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A change since the look that brings the watch no event for the file (a hard link made
/// to it elsewhere: its change time moves, and nothing in the directory does) refuses
/// it all the same, and the watch looks at it again by itself: before, no event ever
/// came, and the file stayed unloaded for good.
#[test]
fn a_file_changed_since_the_look_without_an_event_is_looked_at_again() {
    let dir = fresh_dir("watched-changed-quietly");
    let elsewhere = fresh_dir("watched-changed-quietly-link").join("link");
    refused_then_loaded(
        &dir,
        "a_linker",
        Some(&elsewhere),
        "since a watched directory looked at it",
        "changed",
    );
    assert!(elsewhere.exists(), "the fixture made its link");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(elsewhere.parent().unwrap());
}

/// A watch of `dir`, which holds `basic` as `b_basic` and, named `changer` to be loaded
/// first, a [`sibling_changer`] of it (writing it, or linking it to `link`): the changer
/// loads, `b_basic` is refused with a reason that says `says`, then loads. `what` is
/// the change, for the failure's message. The runtime and `basic`'s handle.
fn refused_then_loaded(
    dir: &std::path::Path,
    changer: &str,
    link: Option<&std::path::Path>,
    says: &str,
    what: &str,
) -> (Runtime, memlink_runtime::ModuleHandle) {
    let second = lib(dir, "b_basic");
    install(&module_path("basic"), &second);
    install(&sibling_changer(&second, link), &lib(dir, changer));
    past_the_last_change(&second);
    let rt = Runtime::with_local_resolver();
    let watch = rt.watch(dir, options()).unwrap();
    match next(&watch) {
        WatchEvent::Loaded { path, .. } => assert_eq!(path, lib(dir, changer)),
        other => panic!("{other:?}"),
    }
    match next(&watch) {
        WatchEvent::Failed { path, error } => {
            assert_eq!(path, second);
            let text = error.to_string();
            assert!(text.contains(says), "{text}");
        }
        other => panic!("the file {what} since the look was not refused: {other:?}"),
    }
    let basic = match next(&watch) {
        WatchEvent::Loaded { path, handle } => {
            assert_eq!(path, second);
            handle
        }
        other => panic!("{other:?}"),
    };
    drop(watch);
    (rt, basic)
}

/// The C module `rewrites_sibling`, built to change `sibling` in its init: to write its
/// first bytes back in place, or, with `link`, to make a hard link to it there. Built for
/// this process alone (the paths are in it).
fn sibling_changer(
    sibling: &std::path::Path,
    link: Option<&std::path::Path>,
) -> std::path::PathBuf {
    // A C string literal of the path.
    let literal = |p: &std::path::Path| {
        let text = p.to_str().expect("a UTF-8 path");
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    };
    let mut defines = vec![format!("-DREWRITE_PATH={}", literal(sibling))];
    if let Some(link) = link {
        defines.push(format!("-DLINK_TO={}", literal(link)));
    }
    let kind = if link.is_some() { "linker" } else { "writer" };
    let out = format!("librewrites_sibling_{kind}_{}.so", std::process::id());
    let args: Vec<&str> = defines.iter().map(String::as_str).collect();
    common::compile_c_with(
        &["runtime/tests/fixtures/rewrites_sibling.c"],
        &out,
        true,
        &args,
    )
}

/// Waits past the tick of `file`'s last change, as the watch's debounce would (see the
/// runtime's `written::Contents`): more than a second where its file system keeps whole
/// seconds.
fn past_the_last_change(file: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let coarse = std::fs::metadata(file).unwrap().ctime_nsec() == 0;
    std::thread::sleep(Duration::from_millis(if coarse { 1100 } else { 50 }));
}

/// The watch's next event is the reload of `greeter` to its version 2, which serves.
fn reloaded_to_v2(
    rt: &Runtime,
    watch: &memlink_runtime::watch::DirectoryWatch,
    greeter: memlink_runtime::ModuleHandle,
) {
    match next(watch) {
        WatchEvent::Reloaded {
            handle, reloaded, ..
        } => {
            assert_eq!(handle, greeter);
            assert_eq!(reloaded.to_version, "2.0.1");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(version(rt, greeter), 2);
}

/// A module file replaced by another module's file: the new module is loaded first,
/// and the one the file held goes only once it is. Replaced by a module whose init
/// fails, the old one serves on (the failure told), as after any refused reload; then
/// replaced by one that loads, the old one goes and the new one comes. Before, the old
/// one was unloaded first, and a replacement that failed left nothing serving.
#[test]
fn a_module_file_replaced_by_one_that_does_not_load_leaves_its_module_serving() {
    let dir = fresh_dir("replaced-by-a-failing-module");
    let file = lib(&dir, "libplug");
    install(&module_path("basic"), &file);
    let rt = Runtime::with_local_resolver();
    let watch = rt.watch(&dir, options()).unwrap();
    let basic = match next(&watch) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    install(&common::fixture("init_fails"), &file);
    match next(&watch) {
        WatchEvent::Failed { path, error } => {
            assert_eq!(path, file);
            assert!(matches!(error, RuntimeError::InitFailed { .. }), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(&*rt.call(basic, "echo", b"still").unwrap(), b"still");

    install(&module_path("datasets"), &file);
    match next(&watch) {
        WatchEvent::Unloaded { handle, .. } => assert_eq!(handle, basic),
        other => panic!("{other:?}"),
    }
    let datasets = match next(&watch) {
        WatchEvent::Loaded { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    assert_eq!(rt.module_info(datasets).unwrap().name, "datasets");
    assert!(rt.handle_of("basic").is_err());
}
