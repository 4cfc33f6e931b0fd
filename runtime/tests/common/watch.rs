//! Waiting for what a `DirectoryWatch` reports.

use memlink_runtime::watch::{DirectoryWatch, WatchEvent};

/// The watch's next event, waiting as long as a slow machine may need.
pub fn next(watch: &DirectoryWatch) -> WatchEvent {
    watch
        .events()
        .recv_timeout(super::HANG)
        .expect("the watch reports what it did")
}
