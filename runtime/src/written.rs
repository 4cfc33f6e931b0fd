//! Whether a file was written while this process read it, or since it looked at it.
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
//!
//! [`Contents`] covers the time before the copy's open: what the file was when a watch
//! decided to load it (its change time, which every write sets), compared with the file
//! the copy read once it is made. A writer that began in between, wrote part of the file
//! and paused through the copy is caught by it; the events of its writes reach the
//! watch later, and some only after the copy was mapped.

use std::fs::{File, Metadata};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

/// What a file was at one moment, as far as its writes go: which file (device and
/// inode), its length and its change time. A write through a descriptor, a cut, and a
/// change of its times set the change time, which no process can set back (a writer
/// that restores the modification time after it wrote, as `rsync` does, changes it
/// too). [`Writes`] sees only the writes made once the file is open; this covers the
/// time before: a watched directory takes it of a file when it decides to look at it,
/// and the copy, made later, compares it with the file it opened
/// (`crate::reload::PrivateCopy::of`), so a writer that began in between and paused is
/// caught too.
///
/// The kernel sets the change time from a clock that ticks every few milliseconds
/// (since Linux 6.13, ext4, XFS, Btrfs and tmpfs keep a finer one for a file whose change
/// time was read since it last changed, as the watch's look reads it), and a file system
/// may keep it coarser still: to the second on ext4 with small inodes, two seconds on
/// FAT. A write in the same tick as the change before it leaves it as it was, and is
/// not seen here. The watch looks at a file only once no event has touched it for its
/// debounce time (250 ms by default), so where ticks are shorter than that, the last
/// write before the look is ticks older than any after it; where they are longer, a
/// write soon after the look can be missed, and only [`Writes`] and the checks of the
/// copy's headers stand in the way of a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Contents {
    file: (u64, u64),
    len: u64,
    changed: (i64, i64),
}

impl Contents {
    /// What the file at `path` (a link followed) is now; `None` if it cannot be looked
    /// at, which the load that follows reports.
    // Only a watched directory takes it before it loads.
    #[cfg_attr(not(any(feature = "watch", test)), allow(dead_code))]
    pub(crate) fn at(path: &Path) -> Option<Contents> {
        std::fs::metadata(path).ok().map(|meta| Contents::of(&meta))
    }

    /// Whether the file changed less than `settle` before `now`, by its change time: a
    /// write the watch has not seen the event of yet, made after the file fell due
    /// and before the look took its `Contents` (which then hold that write's change
    /// time, so the copy matches them). A change time in the future by more than a
    /// second is a clock set back, or another machine's (a network file system): not
    /// told apart from an old one.
    // Only a watched directory asks, before it loads.
    #[cfg_attr(not(any(feature = "watch", test)), allow(dead_code))]
    pub(crate) fn changed_within(&self, settle: Duration, now: SystemTime) -> bool {
        let (secs, nanos) = self.changed;
        let changed = match (u64::try_from(secs), u32::try_from(nanos)) {
            (Ok(secs), Ok(nanos)) => UNIX_EPOCH + Duration::new(secs, nanos),
            // Before 1970: long settled.
            _ => return false,
        };
        match now.duration_since(changed) {
            Ok(age) => age < settle,
            Err(ahead) => ahead.duration() <= Duration::from_secs(1),
        }
    }

    /// What the file `meta` describes was when `meta` was read.
    pub(crate) fn of(meta: &Metadata) -> Contents {
        Contents {
            file: (meta.dev(), meta.ino()),
            len: meta.len(),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

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

    /// A file's contents as taken are told apart from the same file written in place at
    /// the same length, cut, or given another file, and not from the file read.
    #[test]
    fn contents_change_with_a_write_and_not_with_a_read() {
        let dir = std::env::temp_dir().join(format!("memlink-contents-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lib.so");
        std::fs::write(&path, b"one").unwrap();
        // Past the tick of the change before (see `Contents`), as a watch's debounce is:
        // a second and more where the file system keeps whole seconds.
        let coarse = Contents::at(&path).unwrap().changed.1 == 0;
        let wait = Duration::from_millis(if coarse { 1100 } else { 20 });
        let tick = || std::thread::sleep(wait);
        tick();
        let taken = Contents::at(&path).unwrap();
        let _ = std::fs::read(&path).unwrap();
        assert_eq!(Contents::at(&path), Some(taken), "a read");
        // The same bytes, in place: no length or content tells it, the change time does.
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all(b"one").unwrap();
        drop(file);
        assert_ne!(Contents::at(&path), Some(taken), "a write in place");
        tick();
        let taken = Contents::at(&path).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1)
            .unwrap();
        assert_ne!(Contents::at(&path), Some(taken), "a cut");
        tick();
        let taken = Contents::at(&path).unwrap();
        let other = dir.join("other.so");
        std::fs::write(&other, b"o").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_ne!(Contents::at(&path), Some(taken), "another file");
        assert_eq!(Contents::at(&dir.join("none.so")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A file changed within the settling time before now is unsettled; one changed
    /// before it, long ago, or (by more than a second) in the future is not.
    #[test]
    fn a_change_within_the_settling_time_is_told() {
        let at = |secs: i64, nanos: i64| Contents {
            file: (1, 2),
            len: 3,
            changed: (secs, nanos),
        };
        let second = Duration::from_secs(1);
        let now = UNIX_EPOCH + Duration::new(1_000, 500_000_000);
        let settle = Duration::from_millis(250);
        assert!(at(1_000, 400_000_000).changed_within(settle, now));
        assert!(at(1_000, 500_000_000).changed_within(settle, now));
        assert!(!at(1_000, 200_000_000).changed_within(settle, now));
        assert!(!at(999, 0).changed_within(settle, now));
        assert!(!at(-5, 0).changed_within(settle, now));
        // A tick ahead (the file system's clock, or this one's) is taken as now.
        assert!(at(1_001, 0).changed_within(settle, now));
        assert!(!at(1_002, 0).changed_within(settle, now + second / 2 - second));
        assert!(!at(5_000, 0).changed_within(settle, now));
        // Read off a real file just written.
        let dir = std::env::temp_dir().join(format!("memlink-settle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lib.so");
        std::fs::write(&path, b"one").unwrap();
        let fresh = Contents::at(&path).unwrap();
        assert!(fresh.changed_within(Duration::from_secs(60), SystemTime::now()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
