//! The socket's files: the lock beside it, opened without following a link, and the
//! socket bound with its configured mode, given without following one either.
//!
//! A socket's directory may be writable by other users (a sticky `/tmp`, a group's run
//! directory), and the daemon may run as root: another user who can put a link where
//! the lock or the socket is about to be would otherwise have the daemon create, lock or
//! change the mode of the file the link names.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;

use super::config::DaemonConfig;

/// Opens (creating it if need be, readable and writable by this user alone) the lock file
/// at `lock_path` beside the socket `socket`. A symbolic link there is refused, not
/// followed, and so is anything but a regular file of this process's user with no other
/// name (a hard link to a file elsewhere would have the daemon lock that file): another
/// user's lock means another user's daemon serves, or served, this path. A lock others
/// may read (made or changed by hand) is made this user's alone, so that no other user
/// can open it to hold the lock.
///
/// The file is opened before its type is known: without waiting (a FIFO there would
/// wait for a writer) and without becoming the process's terminal (a terminal there
/// would be the daemon's).
pub(super) fn open_lock(socket: &Path, lock_path: &Path) -> Result<File, String> {
    use rustix::fs::OFlags;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32)
        .open(lock_path)
        .map_err(|e| not_opened(socket, lock_path, &e))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot look at {}: {e}", lock_path.display()))?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_file() {
        return Err(not_regular(socket, lock_path));
    }
    if meta.uid() != me {
        return Err(another_users(socket, lock_path, meta.uid()));
    }
    if meta.nlink() != 1 {
        let why = format!(
            "has {} names (a hard link to another file): {REMOVE}",
            meta.nlink()
        );
        return Err(refused(socket, lock_path, &why));
    }
    if meta.mode() & 0o077 != 0 {
        rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(0o600))
            .map_err(|e| format!("cannot make {} this user's alone: {e}", lock_path.display()))?;
    }
    Ok(file)
}

/// What a failed open of the lock file says, of the path the operator gave (the lock is
/// the first file made beside the socket).
fn not_opened(socket: &Path, lock_path: &Path, e: &std::io::Error) -> String {
    let dir = socket.parent().filter(|dir| !dir.as_os_str().is_empty());
    match dir {
        Some(dir) if e.kind() == std::io::ErrorKind::NotFound && !dir.is_dir() => {
            return format!(
                "cannot create the socket {}: its directory {} does not exist",
                socket.display(),
                dir.display()
            )
        }
        _ => {}
    }
    let errno = rustix::io::Errno::from_io_error(e);
    // `O_NOFOLLOW` on a link: `ELOOP`.
    if errno == Some(rustix::io::Errno::LOOP) {
        return a_link(socket, lock_path);
    }
    // A directory (`EISDIR`), a socket or a device (`ENXIO`, ...): no regular file.
    if errno == Some(rustix::io::Errno::ISDIR) || errno == Some(rustix::io::Errno::NXIO) {
        return not_regular(socket, lock_path);
    }
    // What this user may not open (in a sticky directory, another user's link too): said
    // for what it is, not as a bare refusal.
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        if let Ok(meta) = std::fs::symlink_metadata(lock_path) {
            if meta.file_type().is_symlink() {
                return a_link(socket, lock_path);
            }
            if !meta.is_file() {
                return not_regular(socket, lock_path);
            }
            if meta.uid() != rustix::process::geteuid().as_raw() {
                return another_users(socket, lock_path, meta.uid());
            }
        }
    }
    format!(
        "cannot create the socket {}: cannot open {} beside it: {e}",
        socket.display(),
        lock_path.display()
    )
}

/// What the daemon says to a lock file it will not take: what `why` says of it, after
/// the socket it was for.
fn refused(socket: &Path, lock_path: &Path, why: &str) -> String {
    format!(
        "cannot create the socket {}: {} beside it {why}",
        socket.display(),
        lock_path.display()
    )
}

const REMOVE: &str = "remove it or choose another socket path";

fn a_link(socket: &Path, lock_path: &Path) -> String {
    let why = format!("is a symbolic link, which the daemon does not follow: {REMOVE}");
    refused(socket, lock_path, &why)
}

fn not_regular(socket: &Path, lock_path: &Path) -> String {
    refused(
        socket,
        lock_path,
        &format!("is not a regular file: {REMOVE}"),
    )
}

fn another_users(socket: &Path, lock_path: &Path, uid: u32) -> String {
    let why = format!(
        "belongs to user {uid}, whose daemon serves or served this path: choose another \
         socket path (in a directory only this user can write)"
    );
    refused(socket, lock_path, &why)
}

/// Binds the socket at the path `claim` made free, with the configured mode.
///
/// `bind` creates the file with the process's umask, and a mode set afterwards leaves a
/// window in which a permissive umask lets another user connect. So the file is created
/// under a umask that also masks every bit the configured mode leaves out (no more
/// permissive than the process's own). When the process's umask left all of the mode's
/// bits, that is the mode already; else the bits it masked are added afterwards,
/// through a descriptor of the file bound, never through the path, which another user
/// who can write the directory could meanwhile have replaced with a link to a file of
/// their choosing.
pub(super) fn bind(config: &DaemonConfig) -> Result<UnixListener, String> {
    let path = &config.socket;
    let mode = config.socket_mode & 0o777;
    let (listener, umask) = with_umask_at_least(!mode & 0o777, || UnixListener::bind(path));
    let listener = listener.map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    if mode & umask != 0 {
        if let Err(e) = set_mode(path, mode) {
            // Only the file this daemon bound is removed: `set_mode` found it there.
            return Err(format!("cannot set the mode of {}: {e}", path.display()));
        }
    }
    Ok(listener)
}

/// Gives the socket at `path` `mode`, through a descriptor opened on the path without
/// following a link (`O_PATH`): refused unless what is there is a socket of this user
/// with no other name; and through `/proc/self/fd`, since a descriptor of a socket's file
/// takes no `fchmod`.
fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use rustix::fs::{FileType, Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| e.to_string())?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| e.to_string())?;
    let mine = stat.st_uid == rustix::process::geteuid().as_raw();
    // A socket just bound has one name: another (a hard link of another socket of this
    // user, renamed over it) is not the one bound.
    if FileType::from_raw_mode(stat.st_mode) != FileType::Socket || !mine || stat.st_nlink != 1 {
        return Err(
            "the file at the path is no longer the socket this daemon bound (replaced meanwhile)"
                .to_owned(),
        );
    }
    let result = rustix::fs::chmod(
        format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)),
        Mode::from_raw_mode(mode),
    );
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result.map_err(|e| match e {
        rustix::io::Errno::NOENT => {
            "the mode is given through /proc/self/fd, and /proc is not mounted: mount it, or \
             give the process a umask that leaves the mode's bits (then none is needed)"
                .to_owned()
        }
        e => e.to_string(),
    })
}

/// Runs `create` with the process's umask widened by `mask`: the files it creates have
/// none of `mask`'s bits, nor any the umask already masked. The umask is the process's,
/// so a file another thread creates meanwhile is made only less permissive, never more.
/// Returns what `create` made and the process's own umask.
fn with_umask_at_least<T>(mask: u32, create: impl FnOnce() -> T) -> (T, u32) {
    use rustix::fs::Mode;
    let old = rustix::process::umask(Mode::from_bits_truncate(0o777));
    rustix::process::umask(old | Mode::from_bits_truncate(mask));
    let made = create();
    rustix::process::umask(old);
    (made, old.bits())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::with_umask_at_least;

    fn mode_of(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// A file made inside has none of the masked bits when it appears (no window in which
    /// it has more), and the process's umask is as it was afterwards.
    #[test]
    fn a_file_is_created_without_the_masked_bits_and_the_umask_is_restored() {
        let dir = std::env::temp_dir().join(format!("memlink-umask-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (inside, after) = (dir.join("inside"), dir.join("after"));
        // `File::create` asks for 0o666; the umask takes bits away from it.
        let (made, umask) = with_umask_at_least(0o077, || std::fs::File::create(&inside));
        made.unwrap();
        std::fs::File::create(&after).unwrap();
        let old = rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o022));
        rustix::process::umask(old);
        assert_eq!(umask, old.bits());
        assert_eq!(mode_of(&inside), 0o666 & !0o077 & !old.bits());
        assert_eq!(mode_of(&after), 0o666 & !old.bits());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
