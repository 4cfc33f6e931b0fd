//! The directory a daemon's workers make their private copies of modules in.
//!
//! A worker loads a watched file from a private copy, which it removes once the loader
//! has mapped it. A worker that dies while the loader maps one (the library's
//! constructor crashed it, or the watchdog ended it for taking too long) cannot: each
//! such death left a module file's copy in the temporary directory. A daemon that
//! watches a directory gives its workers a directory of its own for their copies (told
//! through [`ENV`]); the supervisor removes what a dead worker left there before it
//! reaps the process (until then the process's number is no new process's, whose copies
//! would have the same names), and the whole directory when the daemon stops (killed,
//! the last of its workers to end removes it: `super::orphan`).

use std::fs;
use std::path::{Path, PathBuf};

/// The environment variable that tells a worker where to make its private copies.
pub(super) const ENV: &str = "MEMLINK_WORKER_COPIES";

/// A directory of the daemon's own (mode 0700) in the temporary directory, removed with
/// what is in it when the daemon stops ([`remove`](CopiesDir::remove)).
pub(super) struct CopiesDir(PathBuf);

impl CopiesDir {
    /// Makes the directory; `None` (the workers then make their copies in the temporary
    /// directory, and a dead worker's are left there) when it cannot be made, which
    /// keeps no daemon from starting: most serve no watched directory.
    pub(super) fn new() -> Option<CopiesDir> {
        let base = std::env::temp_dir();
        let prefix = format!("memlink-serve-{}-", std::process::id());
        match crate::reload::new_dir(&base, &prefix) {
            Ok(dir) => Some(CopiesDir(dir)),
            Err(e) => {
                tracing::warn!(
                    "cannot make a directory for the workers' private copies of modules in \
                     {}: {e}; a worker that dies while it loads one leaves it there",
                    base.display()
                );
                None
            }
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }

    /// Removes the directory and what is in it: once the workers have ended.
    pub(super) fn remove(&self) {
        let _ = fs::remove_dir_all(&self.0);
    }

    /// Removes what worker process `pid` (ended, not yet reaped) left of its private
    /// copies here.
    pub(super) fn remove_copies_of(&self, pid: u32) {
        // The directory is the daemon's alone (0700): nothing in it is another user's.
        crate::reload::remove_copies_in(&self.0, pid, |copy, e| {
            tracing::warn!(
                "cannot remove {}, a dead worker's private copy: {e}",
                copy.display()
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reload::copies_prefix;

    /// A process's copies are removed, and not another's whose number begins the same.
    #[test]
    fn a_workers_copies_go_and_nothing_else() {
        let copies = CopiesDir::new().unwrap();
        let ended = copies
            .path()
            .join(format!("{}0-1234abcd0", copies_prefix(12)));
        let other = copies
            .path()
            .join(format!("{}0-1234abcd0", copies_prefix(123)));
        for dir in [&ended, &other] {
            fs::create_dir_all(dir).unwrap();
            fs::write(dir.join("libm.so"), b"copy").unwrap();
        }
        copies.remove_copies_of(12);
        assert!(!ended.exists());
        assert!(other.join("libm.so").exists());
        copies.remove();
        assert!(!copies.path().exists());
    }
}
