//! `Runtime::watch`: a directory whose module files come, change and go, its modules
//! loaded, reloaded and unloaded in step, and what it cannot load told.

mod common;

use common::lifecycle::{fresh_dir, lib, version};
use common::watch::next;
use common::{install, module_path};
use memlink_runtime::reload::ReloadPolicy;
use memlink_runtime::watch::{WatchEvent, WatchOptions};
use memlink_runtime::{Runtime, RuntimeError};

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
