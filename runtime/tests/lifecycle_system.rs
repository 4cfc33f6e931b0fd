//! The lifecycle as the host's system limits it: the private copy a reload and a
//! watched directory load a module from (so that its file can be rewritten while it
//! runs) where it cannot be mapped, a module file the host's user cannot read.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::module_path;
use memlink_runtime::watch::{WatchEvent, WatchOptions};
use memlink_runtime::{ModuleRef, Runtime, RuntimeError};

/// A temporary directory on a file system mounted `noexec` (as a hardened `/tmp` often
/// is) can hold a private copy but not map it: a reload and a watched directory's loads
/// failed with the loader's "failed to map segment from shared object", told of the
/// module's own file, which was fine. They are refused naming `TMPDIR`, before a copy
/// is made; the module loaded serves on. Run in a child process with a mount namespace
/// of its own, where the mount ends with it.
#[test]
fn a_temporary_directory_mounted_noexec_is_named_for_a_private_copy() {
    const TEST: &str = "a_temporary_directory_mounted_noexec_is_named_for_a_private_copy";
    if std::env::var("MEMLINK_CHILD_TEST").as_deref() == Ok(TEST) {
        let tmp = std::env::var("TMPDIR").unwrap();
        let modules = std::env::var("MEMLINK_WATCHED").unwrap();
        return refused_for_noexec(Path::new(&tmp), Path::new(&modules));
    }
    // A mount namespace needs the privilege to make one: without it, there is no
    // `noexec` file system to try.
    let private = ["--mount", "--propagation", "private", "--"];
    let can = Command::new("unshare").args(private).arg("true").output();
    if !can.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no mount namespace can be made here");
        return;
    }
    let tmp = common::scratch("noexec-tmp");
    let modules = common::scratch("noexec-watched");
    common::install(&module_path("greeter_v1"), &modules.join("libgreeter.so"));
    let out = Command::new("unshare")
        .args(private)
        .arg(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env("MEMLINK_CHILD_TEST", TEST)
        .env("TMPDIR", &tmp)
        .env("MEMLINK_WATCHED", &modules)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
}

fn refused_for_noexec(tmp: &Path, modules: &Path) {
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "noexec,size=64m", "tmpfs"])
        .arg(tmp)
        .status()
        .unwrap();
    assert!(mounted.success());
    let says = |error: &RuntimeError| {
        let said = error.to_string();
        assert!(
            matches!(error, RuntimeError::BadSetting { .. })
                && said.contains("TMPDIR")
                && said.contains(&*tmp.to_string_lossy())
                && said.contains("noexec"),
            "{said}"
        );
    };
    let rt = Runtime::with_local_resolver();
    let basic = ModuleRef::from_path(module_path("basic"));
    let h = rt.load(basic.clone()).unwrap();
    says(&rt.reload(h, basic).unwrap_err());
    assert_eq!(&*rt.call(h, "echo", b"on").unwrap(), b"on");
    assert_eq!(
        std::fs::read_dir(tmp).unwrap().count(),
        0,
        "no copy was made"
    );
    let watch = rt
        .watch(
            modules,
            WatchOptions::default().debounce(Duration::from_millis(50)),
        )
        .unwrap();
    match watch.events().recv_timeout(common::HANG).unwrap() {
        WatchEvent::Failed { path, error } => {
            assert_eq!(path, modules.join("libgreeter.so"));
            says(&error);
        }
        other => panic!("{other:?}"),
    }
}

/// A watched module file the host's user cannot read is refused saying so, and loaded
/// once it is made readable. Before, a change of its permissions alone was not looked
/// at: the file stayed refused until it was written again. Run as an unprivileged user
/// (`nobody`, in a child process, when the tests run as root, who reads any file).
#[test]
fn a_watched_file_made_readable_is_loaded() {
    const TEST: &str = "a_watched_file_made_readable_is_loaded";
    let child = std::env::var("MEMLINK_CHILD_TEST").as_deref() == Ok(TEST);
    if child || !rustix::process::geteuid().is_root() {
        let [dir, module] = match child {
            true => ["MEMLINK_WATCHED", "MEMLINK_MODULE"].map(|v| std::env::var(v).unwrap()),
            false => [common::scratch("unreadable"), module_path("basic")]
                .map(|p| p.to_string_lossy().into_owned()),
        };
        return made_readable(Path::new(&dir), Path::new(&module));
    }
    let dir = common::scratch("unreadable");
    let tmp = common::scratch("unreadable-tmp");
    let owned = Command::new("chown")
        .arg("nobody")
        .args([&dir, &tmp])
        .status()
        .unwrap();
    assert!(owned.success());
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env("MEMLINK_CHILD_TEST", TEST)
        .env("MEMLINK_WATCHED", &dir)
        .env("MEMLINK_MODULE", module_path("basic"))
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
}

fn made_readable(dir: &Path, module: &Path) {
    let file: PathBuf = dir.join("libbasic.so");
    std::fs::copy(module, &file).unwrap();
    let mode = |mode| std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode));
    mode(0o000).unwrap();
    let rt = Runtime::with_local_resolver();
    let watch = rt
        .watch(
            dir,
            WatchOptions::default().debounce(Duration::from_millis(50)),
        )
        .unwrap();
    match watch.events().recv_timeout(common::HANG).unwrap() {
        WatchEvent::Failed { path, error } => {
            assert_eq!(path, file);
            assert!(error.to_string().contains("Permission denied"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    mode(0o644).unwrap();
    match watch.events().recv_timeout(Duration::from_secs(20)) {
        Ok(WatchEvent::Loaded { path, handle }) => {
            assert_eq!(path, file);
            assert_eq!(&*rt.call(handle, "echo", b"read").unwrap(), b"read");
        }
        other => panic!("{other:?}"),
    }
    // Its permissions changed again, the module loaded from it as it is stays as it is.
    mode(0o600).unwrap();
    let after = watch.events().recv_timeout(Duration::from_millis(500));
    assert!(after.is_err(), "{after:?}");
    // Touched (its time changed, as `touch` does), it is reloaded.
    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    let opened = std::fs::File::options().write(true).open(&file).unwrap();
    opened.set_modified(later).unwrap();
    match watch.events().recv_timeout(Duration::from_secs(20)) {
        Ok(WatchEvent::Reloaded { path, .. }) => assert_eq!(path, file),
        other => panic!("{other:?}"),
    }
}
