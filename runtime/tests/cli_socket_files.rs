//! `memlink serve`'s files beside its socket, in a directory another user may write: no
//! link is followed to create, lock or change the mode of a file elsewhere.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;

use common::cli::memlink_os;
use common::stderr;

/// `memlink serve --socket SOCKET basic`, expected to refuse to start: its message.
fn refused(socket: &std::path::Path) -> String {
    let basic = common::module_path("basic");
    let out = memlink_os(&[
        OsStr::new("serve"),
        OsStr::new("--socket"),
        socket.as_os_str(),
        basic.as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    err
}

/// The permission bits of the file at `path` (a link's own, never its target's).
fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// A link planted where the lock file goes is refused, not followed: before, the daemon
/// created (and locked) the file the link named, as root a file anywhere (say
/// `/etc/nologin`) for any user who could write the socket's directory.
#[test]
fn a_link_at_the_lock_files_path_is_not_followed() {
    let dir = common::scratch("lock-link");
    let socket = dir.join("memlink.sock");
    let target = dir.join("planted");
    std::os::unix::fs::symlink(&target, dir.join("memlink.sock.lock")).unwrap();
    let err = refused(&socket);
    assert!(
        err.contains("memlink.sock.lock beside it is a symbolic link"),
        "{err}"
    );
    assert!(!target.exists(), "the link's target was created");
    assert!(!socket.exists());

    // A hard link to a file elsewhere: the daemon would lock that file.
    std::fs::remove_file(dir.join("memlink.sock.lock")).unwrap();
    let elsewhere = dir.join("elsewhere");
    std::fs::write(&elsewhere, b"kept").unwrap();
    std::fs::hard_link(&elsewhere, dir.join("memlink.sock.lock")).unwrap();
    let err = refused(&socket);
    assert!(
        err.contains("memlink.sock.lock beside it has 2 names"),
        "{err}"
    );
    assert_eq!(std::fs::read(&elsewhere).unwrap(), b"kept");
    std::fs::remove_file(dir.join("memlink.sock.lock")).unwrap();
    std::fs::create_dir(dir.join("memlink.sock.lock")).unwrap();
    // Anything but a regular file there is refused too.
    let err = refused(&socket);
    assert!(err.contains("is not a regular file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lock file of another user means another user's daemon serves, or served, the path:
/// said as such (before: "Permission denied", or, as root, the lock taken on the other
/// user's file). Run as root only, which can give the file away.
#[test]
fn another_users_lock_file_is_said_to_be_theirs() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("not root: no file can be given to another user here");
        return;
    }
    let dir = common::scratch("lock-owner");
    let socket = dir.join("memlink.sock");
    let lock = dir.join("memlink.sock.lock");
    std::fs::write(&lock, b"").unwrap();
    let nobody = rustix::process::Uid::from_raw(65534);
    rustix::fs::chown(&lock, Some(nobody), None).unwrap();
    let err = refused(&socket);
    assert!(
        err.contains("memlink.sock.lock beside it belongs to user 65534"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lock file others may read (made or changed by hand) is made the daemon's user's
/// alone: another user who could open it could hold
/// the lock, and keep every daemon from starting on the path.
#[test]
fn a_lock_file_others_may_read_is_made_the_users_alone() {
    let dir = common::scratch("lock-mode");
    let socket = dir.join("memlink.sock");
    let lock = dir.join("memlink.sock.lock");
    std::fs::write(&lock, b"").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
    let basic = common::module_path("basic");
    let (daemon, _) = common::cli::serve_all(&socket, &[basic.as_os_str()]);
    let mode = mode_of(&lock);
    common::cli::stop(daemon);
    assert_eq!(mode, 0o600, "{mode:o}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `socket_mode` with bits the process's umask masks gets them once the socket is
/// bound (through a descriptor of the socket, not its path). The daemon is started with
/// a umask of 022 whatever the tests run with: under 000 the mode would need no setting.
#[test]
fn a_socket_mode_past_the_umask_is_given_to_the_socket() {
    let dir = common::scratch("socket-mode");
    let socket = dir.join("memlink.sock");
    let config = dir.join("serve.toml");
    let basic = common::module_path("basic");
    std::fs::write(
        &config,
        format!(
            "socket = {:?}\nsocket_mode = 0o666\n[[modules]]\npath = {:?}\n",
            socket.to_str().unwrap(),
            basic.to_str().unwrap()
        ),
    )
    .unwrap();
    let args = [OsStr::new("--config"), config.as_os_str()];
    let (daemon, _, _) = common::cli::serve_logging_with(&socket, &args, |command| {
        // SAFETY: `umask` is async-signal-safe, as what runs between `fork` and `exec`
        // must be.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(command, || {
                libc::umask(0o022);
                Ok(())
            });
        }
    });
    let mode = mode_of(&socket);
    common::cli::stop(daemon);
    assert_eq!(mode, 0o666, "{mode:o}");
    let _ = std::fs::remove_dir_all(&dir);
}
