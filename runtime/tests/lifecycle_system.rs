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
        // Built here: the child builds nothing (its TMPDIR runs no code).
        .env("MEMLINK_MODULE", module_path("basic"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
}

/// A temporary directory that is not there (or cannot be written) holds no private
/// copy: a reload is refused naming `TMPDIR` and why, where it blamed the module's own
/// file ("is not a loadable shared library: cannot make a private copy ... No such file
/// or directory"). The module loaded serves on. Run in a child process, whose `TMPDIR`
/// is its own.
#[test]
fn a_temporary_directory_that_cannot_hold_a_copy_is_named() {
    const TEST: &str = "a_temporary_directory_that_cannot_hold_a_copy_is_named";
    if std::env::var("MEMLINK_CHILD_TEST").as_deref() == Ok(TEST) {
        let rt = Runtime::with_local_resolver();
        let file = ModuleRef::from_path(basic());
        let h = rt.load(file.clone()).unwrap();
        let error = rt.reload(h, file).unwrap_err();
        let said = error.to_string();
        assert!(
            matches!(error, RuntimeError::BadSetting { .. })
                && said.contains("TMPDIR (/nonexistent/memlink-tmp)")
                && said.contains("No such file or directory"),
            "{said}"
        );
        assert_eq!(&*rt.call(h, "echo", b"on").unwrap(), b"on");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env("MEMLINK_CHILD_TEST", TEST)
        .env("TMPDIR", "/nonexistent/memlink-tmp")
        .env("MEMLINK_MODULE", module_path("basic"))
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
    let file = ModuleRef::from_path(basic());
    let h = rt.load(file.clone()).unwrap();
    says(&rt.reload(h, file).unwrap_err());
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

/// Runs `body` with `dir` (a fresh directory its user owns) and `TMPDIR` as a user
/// who cannot read what its permissions refuse: this process's, or, when the tests run
/// as root (who reads any file), `nobody`'s, in a child process.
fn unprivileged(test: &str, body: impl FnOnce(&Path)) {
    if std::env::var("MEMLINK_CHILD_TEST").as_deref() == Ok(test) {
        return body(Path::new(&std::env::var("MEMLINK_DIR").unwrap()));
    }
    let dir = common::scratch(test);
    if !rustix::process::geteuid().is_root() {
        return body(&dir);
    }
    // `nobody` must reach this test binary and the module, through every directory
    // above them: a checkout under a directory only root may enter has nothing to try.
    let exe = std::env::current_exe().unwrap();
    let reaches = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg("test")
        .arg("-x")
        .arg(&exe)
        .arg("-a")
        .arg("-r")
        .arg(module_path("basic"))
        .status();
    if !reaches.is_ok_and(|s| s.success()) {
        eprintln!("skipped: `nobody` cannot reach the test binary and the module here");
        return;
    }
    let tmp = common::scratch(&format!("{test}-tmp"));
    let owned = Command::new("chown")
        .arg("nobody")
        .args([&dir, &tmp])
        .status()
        .unwrap();
    assert!(owned.success());
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("MEMLINK_CHILD_TEST", test)
        .env("MEMLINK_DIR", &dir)
        // Built here: the child builds nothing, and finds it by this.
        .env("MEMLINK_MODULE", module_path("basic"))
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
}

/// The `basic` example module's file (built by the parent process, for a child).
fn basic() -> PathBuf {
    std::env::var_os("MEMLINK_MODULE").map_or_else(|| module_path("basic"), PathBuf::from)
}

/// A watched module file the host's user cannot read is refused saying so, and loaded
/// once it is made readable. Before, a change of its permissions alone was not looked
/// at: the file stayed refused until it was written again.
#[test]
fn a_watched_file_made_readable_is_loaded() {
    unprivileged("a_watched_file_made_readable_is_loaded", |dir| {
        made_readable(dir, &basic())
    });
}

/// A directory that cannot be watched (its user may not read it) is refused saying
/// so. Before, the error said it was "not a loadable shared library".
#[test]
fn a_directory_that_cannot_be_read_is_refused_as_one_that_cannot_be_watched() {
    unprivileged(
        "a_directory_that_cannot_be_read_is_refused_as_one_that_cannot_be_watched",
        |dir| {
            let modules = dir.join("modules");
            std::fs::create_dir(&modules).unwrap();
            std::fs::copy(basic(), modules.join("libbasic.so")).unwrap();
            let mode = |mode| std::fs::set_permissions(&modules, PermissionsExt::from_mode(mode));
            mode(0o000).unwrap();
            let rt = Runtime::with_local_resolver();
            let err = rt.watch(&modules, WatchOptions::default()).unwrap_err();
            let said = err.to_string();
            assert!(
                matches!(&err, RuntimeError::CannotWatch { dir, .. } if *dir == modules)
                    && said.starts_with(&format!("cannot watch {}: ", modules.display()))
                    && said.contains("Permission denied")
                    && !said.contains("shared library"),
                "{said}"
            );
            // Readable again, it is watched.
            mode(0o755).unwrap();
            let watch = rt.watch(&modules, WatchOptions::default()).unwrap();
            match watch.events().recv_timeout(common::HANG).unwrap() {
                WatchEvent::Loaded { path, .. } => assert_eq!(path, modules.join("libbasic.so")),
                other => panic!("{other:?}"),
            }
        },
    );
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
    // Touched (its time changed, as `touch` does: opened for writing, its time set,
    // closed), it is reloaded. A file open for writing is looked at once its writer
    // closes it (setting the time alone reads as a write), as `touch` does at once.
    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    let opened = std::fs::File::options().write(true).open(&file).unwrap();
    opened.set_modified(later).unwrap();
    drop(opened);
    match watch.events().recv_timeout(Duration::from_secs(20)) {
        Ok(WatchEvent::Reloaded { path, .. }) => assert_eq!(path, file),
        other => panic!("{other:?}"),
    }
}
