//! A watch whose paths change under it: a watched link pointed elsewhere, links into a
//! build directory, the watched directory moved, replaced or made again.

mod common;

use common::lifecycle::{fresh_dir, lib, version};
use common::watch::next;
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
