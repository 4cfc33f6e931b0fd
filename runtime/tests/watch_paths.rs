//! A watch whose paths change under it: a watched link pointed elsewhere, links into a
//! build directory, the watched directory moved, replaced or made again.

mod common;

use std::time::Duration;

use common::lifecycle::{fresh_dir, lib, version};
use common::watch::{drain, next, options, within};
use common::{install, module_path};
use memlink_runtime::reload::ReloadPolicy;
use memlink_runtime::watch::{WatchEvent, WatchOptions};
use memlink_runtime::{Runtime, RuntimeError};

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
