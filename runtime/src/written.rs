//! Whether a file was written while this process read it.
//!
//! A private copy of a module (a reload's, a watched directory's, a `private_copy`
//! load's) made while another process rewrote the file in place, at its full length, as
//! `rsync --inplace` does, holds pieces of two builds; each piece's headers still pass
//! every check, and the system's loader crashed the process mapping such a copy. The
//! watch leaves alone a file whose writer it saw writing, until that writer closes it,
//! but a writer that starts once the watch has begun to look at the file is seen only
//! after the copy: the copy itself has to tell.
//!
//! [`Writes`] watches the open file's inode (not its path: a file renamed over the path
//! meanwhile is not the one read) through its own inotify instance for the time the
//! copy takes: a write through a descriptor, by any process of this machine, is an event
//! there, made as the write happens. Not seen: a write through a shared mapping of the
//! file, and one made by another machine (a network file system); nor, where no
//! inotify instance can be had (a user's 128 taken, by default), any write: a debug
//! record says so then, and the copy is kept as before.

use std::fs::File;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

/// A watch on the writes to one open file, from its making on.
pub(crate) struct Writes {
    /// `None` where no watch could be made (the user's inotify instances or watches all
    /// taken): then [`Writes::seen`] cannot tell, and says none were.
    inotify: Option<OwnedFd>,
}

impl Writes {
    /// Starts watching the writes to the file `file` is open on.
    pub(crate) fn to(file: &File) -> Writes {
        let watched =
            inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).and_then(|inotify| {
                // The descriptor's link in `/proc` leads to its inode, whatever path
                // opened it and whatever is at that path now.
                let link = format!("/proc/self/fd/{}", file.as_raw_fd());
                inotify::add_watch(&inotify, link, WatchFlags::MODIFY).map(|_| inotify)
            });
        let inotify = watched
            .inspect_err(|e| {
                tracing::debug!(
                    target: "memlink::reload",
                    "a private copy is made without watching its file's writes: {e}"
                );
            })
            .ok();
        Writes { inotify }
    }

    /// Whether the file was written (or cut) since [`Writes::to`].
    pub(crate) fn seen(&self) -> bool {
        let Some(inotify) = &self.inotify else {
            return false;
        };
        let mut buf = [MaybeUninit::uninit(); 256];
        // Nonblocking: an error is "no event yet" (`EAGAIN`), and any event is a write,
        // the only kind watched.
        inotify::Reader::new(inotify, &mut buf).next().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A write through another descriptor of the file is seen; reading it, and writing
    /// another file, are not.
    #[test]
    fn a_write_by_anyone_is_seen_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("memlink-written-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (path, other) = (dir.join("lib.so"), dir.join("other.so"));
        std::fs::write(&path, b"one").unwrap();
        std::fs::write(&other, b"one").unwrap();
        let file = File::open(&path).unwrap();
        let writes = Writes::to(&file);
        assert!(writes.inotify.is_some(), "no inotify watch could be made");
        assert!(!writes.seen());
        let _ = std::io::read_to_string(&file).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&other)
            .unwrap()
            .write_all(b"two")
            .unwrap();
        assert!(!writes.seen());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all(b"two")
            .unwrap();
        assert!(writes.seen());
        // The path given another file is not the file watched: its writes are not seen.
        let writes = Writes::to(&file);
        std::fs::rename(&other, &path).unwrap();
        std::fs::write(&path, b"three").unwrap();
        assert!(!writes.seen());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
